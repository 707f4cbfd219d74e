"""The ``demo`` feed: seeded, simulated CME sessions with order flow worth trading.

A session is generated in one vectorized numpy pass (:func:`generate_session`), then streamed in
batches. The model, in order:

1. **Phases.** The session is cut into phases of 15-60 minutes, each ``trend_up``,
   ``trend_down``, ``range`` or ``volatile``. A phase sets the drift of the tick moves, their
   spread (volatile phases jump 2-4 ticks at times) and the trade intensity.
2. **Arrivals.** Trade times follow a U-shaped intraday intensity (busy open and close, quiet
   lunch) times the phase intensity: counts per second are drawn multinomially, times uniformly
   within each second, in ns.
3. **Moves and sides.** Each trade moves the price -1, 0 or +1 tick (more in volatile phases),
   biased by the phase's drift. The aggressor follows the move: an uptick is a buyer 85% of the
   time, a downtick a seller; a trade at the same price goes either way.
4. **Sizes.** Mostly 1-5 lots (geometric), with rare 50-200 lot blocks.
5. **Episodes** sprinkled over the session, so the patterns the detectors look for do occur:
   *bursts* (a run of aggressive buying or selling that lifts price level after level: stacked
   imbalances), *absorption* (heavy selling into a price that does not give, then a reversal up;
   or the mirror at a high), *exhaustion* (a push whose last trades thin to single lots at the
   extreme, then a reversal) and *divergence* (a late push to a new high on sellers, or to a new
   low on buyers).

Each session's random stream is seeded from ``(seed, date)``: the session of a given date is the
same whatever ``start_date`` and ``sessions`` are, so backtests and replays agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import Field

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.instruments import Instrument
from tradebot_core.types import TICK_DTYPE, FeedStatus, FeedStatusKind, TickBatch

EXCHANGE_TZ = ZoneInfo("America/New_York")

PHASES = ("trend_up", "trend_down", "range", "volatile")
# per phase: drift (share of the session's typical move, signed), move rate factor, jump rate,
# trade intensity factor
_PHASES = {
    "trend_up": (1.0, 1.0, 0.0, 1.0),
    "trend_down": (-1.0, 1.0, 0.0, 1.0),
    "range": (0.0, 0.7, 0.0, 0.7),
    "volatile": (0.0, 2.5, 0.02, 1.8),
}
SESSION_MOVE_TICKS = 120
"""Typical spread of a session's random walk, in ticks (ES: 30 points)."""
EPISODES_PER_KIND = 10


class DemoSettings(PluginSettings):
    seed: int = 7
    sessions: int = Field(default=1, ge=1)
    start_date: date = date(2024, 11, 11)
    """The first session's date; sessions follow on weekdays."""
    session_start: time = time(9, 30)
    session_end: time = time(16, 0)
    """Exchange time (America/New_York): regular trading hours by default."""
    trades_per_session: int = Field(default=120_000, ge=100)
    start_price: Decimal = Field(default=Decimal("5000.00"), gt=0)
    batch_size: int = Field(default=5_000, ge=1)


def session_dates(start: date, count: int) -> list[date]:
    """``count`` weekdays from ``start`` (a weekend start moves to Monday)."""
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def session_bounds(settings: DemoSettings, day: date) -> tuple[int, int]:
    """Session open and close in ns UTC (DST handled by the time zone)."""
    open_ = datetime.combine(day, settings.session_start, EXCHANGE_TZ)
    close = datetime.combine(day, settings.session_end, EXCHANGE_TZ)
    return int(open_.timestamp()) * 10**9, int(close.timestamp()) * 10**9


def generate_session(
    settings: DemoSettings, instrument: Instrument, day: date, seed: int | None = None
) -> np.ndarray:
    """One simulated session as a time-ordered :data:`TICK_DTYPE` array."""
    seed = settings.seed if seed is None else seed
    rng = np.random.default_rng(np.random.SeedSequence([seed, day.toordinal()]))
    n = settings.trades_per_session
    open_ns, close_ns = session_bounds(settings, day)
    seconds = (close_ns - open_ns) // 10**9
    if seconds <= 0:
        raise ValueError("session_end must be after session_start")

    phase_of_second = _phases(rng, seconds)
    ts = _arrivals(rng, n, open_ns, seconds, phase_of_second)
    phase = phase_of_second[(ts - open_ns) // 10**9]

    # most trades print at the last price: the chance of a one-tick move is set so that the
    # session's walk spreads about SESSION_MOVE_TICKS whatever the number of trades
    base = min(0.45, SESSION_MOVE_TICKS**2 / n)
    drift, rate, jump, _ = (np.array([_PHASES[p][i] for p in PHASES]) for i in range(4))
    p_move = np.minimum(0.9, base * rate[phase])
    bias = np.clip(drift[phase] * 6 * SESSION_MOVE_TICKS / n / p_move, -0.45, 0.45)
    u = rng.random(n)
    moves = np.where(u < p_move * (0.5 + bias), 1, np.where(u < p_move, -1, 0))
    jumps = rng.random(n) < jump[phase] * base
    moves = np.where(jumps, rng.choice([-4, -3, -2, 2, 3, 4], n), moves)
    follows = rng.random(n) < 0.85
    side = np.where(
        moves > 0,
        np.where(follows, 1, -1),
        np.where(moves < 0, np.where(follows, -1, 1), rng.choice([-1, 1], n)),
    )
    size = np.minimum(rng.geometric(0.45, n), 25)
    blocks = rng.random(n) < 0.002
    size = np.where(blocks, rng.integers(50, 201, n), size)

    _episodes(rng, moves, side, size, n)

    start_ticks = instrument.to_ticks(instrument.to_fixed(settings.start_price))
    path = start_ticks + np.cumsum(moves)
    floor = max(1, start_ticks // 10)
    path = np.where(path < floor, 2 * floor - path, path)  # reflect far above zero

    ticks = np.empty(n, dtype=TICK_DTYPE)
    ticks["ts_event"] = ts
    ticks["price"] = path * instrument.tick_fixed
    ticks["size"] = size
    ticks["side"] = side
    return ticks


def _phases(rng: np.random.Generator, seconds: int) -> np.ndarray:
    """The phase index of every second of the session."""
    phase = np.empty(seconds, dtype=np.int64)
    at = 0
    while at < seconds:
        length = int(rng.integers(15 * 60, 60 * 60))
        phase[at : at + length] = rng.integers(0, len(PHASES))
        at += length
    return phase


def _arrivals(
    rng: np.random.Generator, n: int, open_ns: int, seconds: int, phase: np.ndarray
) -> np.ndarray:
    x = np.linspace(-1.0, 1.0, seconds)
    intensity = 1.0 + 3.0 * x**6  # the U: open and close busy, lunch quiet
    intensity *= np.array([_PHASES[p][3] for p in PHASES])[phase]
    counts = rng.multinomial(n, intensity / intensity.sum())
    second = np.repeat(np.arange(seconds, dtype=np.int64), counts)
    offsets = rng.integers(0, 10**9, n)
    ts = open_ns + second * 10**9 + offsets
    ts.sort()
    return ts


def _episodes(
    rng: np.random.Generator, moves: np.ndarray, side: np.ndarray, size: np.ndarray, n: int
) -> None:
    """Bursts, absorption, exhaustion and divergence, written over the random flow in place."""
    for _ in range(EPISODES_PER_KIND):  # bursts: aggressors lifting level after level
        at, length, sign = _span(rng, n, 60, 160)
        moves[at : at + length] = np.where(rng.random(length) < 0.12, sign, 0)
        side[at : at + length] = sign
        size[at : at + length] = rng.integers(3, 15, length)
    for _ in range(EPISODES_PER_KIND):  # absorption: aggression into a price that holds
        at, length, sign = _span(rng, n, 80, 240)
        lead = max(0, at - 40)
        moves[lead:at] = np.where(rng.random(at - lead) < 0.2, -sign, 0)  # drive into it
        moves[at : at + length] = 0
        side[at : at + length] = -sign
        size[at : at + length] = rng.integers(5, 30, length)
        turn = min(n, at + length + 60)
        moves[at + length : turn] = np.where(rng.random(turn - at - length) < 0.2, sign, 0)
        side[at + length : turn] = sign
    for _ in range(EPISODES_PER_KIND):  # exhaustion: a push thinning to single lots, then turns
        at, length, sign = _span(rng, n, 60, 150)
        moves[at : at + length] = np.where(rng.random(length) < 0.15, sign, 0)
        side[at : at + length] = sign
        tail = max(5, length // 4)
        size[at + length - tail : at + length] = 1
        turn = min(n, at + length + 80)
        moves[at + length : turn] = np.where(rng.random(turn - at - length) < 0.15, -sign, 0)
        side[at + length : turn] = -sign
    for _ in range(EPISODES_PER_KIND):  # divergence: a new extreme made against the aggressors
        at, length, sign = _span(rng, n, 60, 160)
        moves[at : at + length] = np.where(rng.random(length) < 0.12, sign, 0)
        side[at : at + length] = np.where(rng.random(length) < 0.8, -sign, sign)
        size[at : at + length] = rng.integers(2, 10, length)


def _span(rng: np.random.Generator, n: int, shortest: int, longest: int) -> tuple[int, int, int]:
    length = int(rng.integers(shortest, longest))
    at = int(rng.integers(0, max(1, n - length - 100)))
    return at, min(length, n - at), int(rng.choice([-1, 1]))


class DemoFeed:
    """Simulated sessions on weekdays from ``start_date``. See the module docstring."""

    name = "demo"
    Settings = DemoSettings

    def __init__(self, settings: DemoSettings, context: PluginContext) -> None:
        self.settings = settings
        self.symbol = context.symbol
        self.instrument = context.instrument
        instrument = self.instrument
        instrument.to_ticks(instrument.to_fixed(settings.start_price))  # on the grid, or raise

    @classmethod
    def day_settings(cls, settings: dict[str, Any], day: date) -> dict[str, Any]:
        return {**settings, "start_date": day.isoformat(), "sessions": 1}

    async def stream(self) -> AsyncIterator[TickBatch | FeedStatus]:
        batch = self.settings.batch_size
        for day in session_dates(self.settings.start_date, self.settings.sessions):
            ticks = generate_session(self.settings, self.instrument, day)
            open_ns, close_ns = session_bounds(self.settings, day)
            yield FeedStatus(kind=FeedStatusKind.SESSION_START, ts_ns=open_ns, detail=str(day))
            for start in range(0, len(ticks), batch):
                yield TickBatch(self.symbol, ticks[start : start + batch])
                await asyncio.sleep(0)  # let the status page and notifiers run
            yield FeedStatus(kind=FeedStatusKind.SESSION_END, ts_ns=close_ns, detail=str(day))


@hookimpl
def register_feeds(register: Any) -> None:
    register(DemoFeed)
