"""The numpy model behind the demo feed: one simulated session in one vectorized pass.

See ``docs/demo-feed.md`` for the model in prose. In short: the session is cut into phases; trade
times follow a U-shaped intraday intensity; a slowly varying buying/selling *pressure* (plus the
phase's bias) draws each trade's aggressor; the aggressors move a one-tick quote (so price follows
delta); buyers print at the ask, sellers at the bid; episodes (bursts, absorption, exhaustion,
divergence) are written over that flow; range phases fold the path into a band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tradebot_core import TICK_DTYPE

from ._demo_episodes import EXTRA_PER_KIND, Episode, Flow, place_episodes

PHASES = ("trend_up", "trend_down", "range", "volatile")
TREND_UP, TREND_DOWN, RANGE, VOLATILE = range(len(PHASES))


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    """How a phase shapes the flow."""

    bias: float  # P(buy aggressor) = 0.5 + bias + pressure
    move_rate: float  # chance of a quote move, relative to the session's base chance
    jump_rate: float  # share of quote moves that jump 2-4 ticks
    intensity: float  # trade arrival rate, relative
    pressure: float  # amplitude of the slowly varying pressure, relative


PHASE_SPECS: tuple[PhaseSpec, ...] = (
    PhaseSpec(bias=0.05, move_rate=1.0, jump_rate=0.0, intensity=1.0, pressure=1.0),
    PhaseSpec(bias=-0.05, move_rate=1.0, jump_rate=0.0, intensity=1.0, pressure=1.0),
    PhaseSpec(bias=0.0, move_rate=0.8, jump_rate=0.0, intensity=0.7, pressure=0.7),
    PhaseSpec(bias=0.0, move_rate=1.6, jump_rate=0.05, intensity=1.6, pressure=1.6),
)

PHASE_MINUTES = (15, 60)
"""A phase lasts 15 to 60 minutes (the last one is cut by the session close)."""
SESSION_MOVES = 2_500
"""Quote moves in a 6.5-hour session (before phase factors; a shorter session has fewer, in
proportion): 5-minute ES bars span about 11 ticks, whatever the trade count."""
SESSION_SECONDS = 6.5 * 3600
PRESSURE_STD = 0.05
"""Typical size of the slowly varying buy/sell pressure (share of buyers above or below half)."""
PRESSURE_TAU_S = 120.0
"""Memory of the pressure, in seconds."""
FOLLOW = 0.9
"""Chance that a quote move goes the way of the trade's aggressor (an uptick is a buyer)."""
IMPACT = 3.0
"""Liquidity asymmetry: with buyers at 0.5 + b of the flow, a buy clears its level 1 + 3b times
as easily as usual and a sell 1 - 3b times (the bid refills, the ask thins), so price follows the
pressure, not only the coin flips of single trades."""
OPEN_CLOSE_BOOST = 3.0
"""The U of the intraday intensity: open and close trade 1 + 3 = 4 times as fast as midday."""
SIZE_TAIL = 1.8
"""Pareto (Lomax) shape of the lot sizes: smaller is a heavier tail."""
SIZE_CAP = 40
BLOCK_RATE = 0.0015
BLOCK_SIZES = (50, 200)
RANGE_HALF_WIDTH = (8, 20)
"""A range phase keeps the quote within this many ticks of where the phase began."""


@dataclass(frozen=True, slots=True)
class DemoSession:
    """One simulated session: the ticks, the phase of each trade and the episodes placed."""

    ticks: np.ndarray  # TICK_DTYPE, time-ordered
    phase: np.ndarray  # index into PHASES, one per trade
    episodes: tuple[Episode, ...]

    def phase_spans(self) -> list[tuple[str, int, int]]:
        """``(phase name, first trade, end trade)`` of every phase, in order."""
        if not len(self.phase):
            return []
        cuts = np.flatnonzero(np.diff(self.phase)) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [len(self.phase)]))
        return [
            (PHASES[int(self.phase[a])], int(a), int(b))
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        ]


def simulate(
    rng: np.random.Generator,
    trades: int,
    open_ns: int,
    close_ns: int,
    start_ticks: int,
    tick_fixed: int,
) -> DemoSession:
    """Simulate ``trades`` trades between ``open_ns`` and ``close_ns`` (ns UTC).

    ``start_ticks`` is the opening bid in ticks; prices come out fixed-point (``tick_fixed``
    units per tick), on the grid by construction.
    """
    seconds = (close_ns - open_ns) // 1_000_000_000
    if seconds <= 0:
        raise ValueError("the session must last at least one second (session_end > session_start)")
    specs = _spec_arrays()

    phase_of_second = _phase_timeline(rng, int(seconds))
    t_s = _arrival_seconds(rng, trades, phase_of_second, specs["intensity"])
    second = np.minimum(t_s.astype(np.int64), seconds - 1)
    phase = phase_of_second[second]
    ts = np.minimum(open_ns + (t_s * 1e9).astype(np.int64), close_ns - 1)

    pressure = _pressure(rng, int(seconds))[second] * specs["pressure"][phase]
    buy_share = np.clip(0.5 + specs["bias"][phase] + pressure, 0.1, 0.9)
    side = np.where(rng.random(trades) < buy_share, 1, -1).astype(np.int8)
    size = _sizes(rng, trades)
    planned_moves = SESSION_MOVES * seconds / SESSION_SECONDS
    moves = _quote_moves(rng, side, size, buy_share, phase, specs, planned_moves)

    flow = Flow(moves=moves, side=side, size=size)
    extra = max(1, round(EXTRA_PER_KIND * seconds / SESSION_SECONDS))  # fewer in a short session
    episodes = place_episodes(rng, flow, phase, (TREND_UP, TREND_DOWN), VOLATILE, extra)
    _fold_ranges(rng, flow, phase)

    bid = start_ticks + np.cumsum(flow.moves)
    floor = max(2, start_ticks // 10)
    bid = np.where(bid < floor, 2 * floor - bid, bid)  # reflect, far above zero
    bid_before = np.concatenate(([start_ticks], bid[:-1]))
    price_ticks = bid_before + (flow.side > 0)  # buyers lift the ask, sellers hit the bid

    ticks = np.empty(trades, dtype=TICK_DTYPE)
    ticks["ts_event"] = ts
    ticks["price"] = price_ticks * tick_fixed
    ticks["size"] = flow.size
    ticks["side"] = flow.side
    return DemoSession(ticks=ticks, phase=phase.astype(np.int8), episodes=tuple(episodes))


def _spec_arrays() -> dict[str, np.ndarray]:
    return {
        field: np.array([getattr(spec, field) for spec in PHASE_SPECS])
        for field in ("bias", "move_rate", "jump_rate", "intensity", "pressure")
    }


def _phase_timeline(rng: np.random.Generator, seconds: int) -> np.ndarray:
    """The phase of every second: 15-60 minute phases, each different from the one before."""
    lo, hi = PHASE_MINUTES
    lengths = rng.integers(lo * 60, hi * 60 + 1, size=seconds // (lo * 60) + 1)
    # each phase steps 1-3 places around the cycle of phases: never the same phase twice running
    steps = rng.integers(1, len(PHASES), size=len(lengths))
    kinds = (int(rng.integers(len(PHASES))) + np.cumsum(steps)) % len(PHASES)
    return np.repeat(kinds, lengths)[:seconds]


def _arrival_seconds(
    rng: np.random.Generator, trades: int, phase: np.ndarray, intensity_of_phase: np.ndarray
) -> np.ndarray:
    """Sorted trade times in seconds from the open.

    A Poisson process with the given intensity, conditioned on ``trades`` events: sorted uniform
    order statistics (normalised exponential spacings, no sort needed) mapped through the inverse
    of the cumulative intensity.
    """
    seconds = len(phase)
    x = np.linspace(-1.0, 1.0, seconds)
    intensity = (1.0 + OPEN_CLOSE_BOOST * x**6) * intensity_of_phase[phase]
    cumulative = np.concatenate(([0.0], np.cumsum(intensity)))
    cumulative /= cumulative[-1]
    gaps = rng.standard_exponential(trades + 1)
    quantiles = np.cumsum(gaps[:-1]) / gaps.sum()
    return np.interp(quantiles, cumulative, np.arange(seconds + 1, dtype=np.float64))


def _pressure(rng: np.random.Generator, seconds: int) -> np.ndarray:
    """Slowly varying buy/sell pressure per second: exponentially smoothed noise, std ~0.05."""
    width = int(5 * PRESSURE_TAU_S)
    kernel = np.exp(-np.arange(width) / PRESSURE_TAU_S)
    noise = rng.standard_normal(seconds + width)
    smooth = np.convolve(noise, kernel, mode="valid")[:seconds]
    return PRESSURE_STD * smooth / np.sqrt((kernel**2).sum())


def _sizes(rng: np.random.Generator, trades: int) -> np.ndarray:
    """Lots per trade: heavy-tailed (mostly 1-5), with rare 50-200 lot blocks."""
    size = 1 + np.floor(1.8 * rng.pareto(SIZE_TAIL, trades)).astype(np.int64)
    size = np.minimum(size, SIZE_CAP)
    blocks = rng.random(trades) < BLOCK_RATE
    size[blocks] = rng.integers(BLOCK_SIZES[0], BLOCK_SIZES[1] + 1, int(blocks.sum()))
    return size.astype(np.int32)


def _quote_moves(
    rng: np.random.Generator,
    side: np.ndarray,
    size: np.ndarray,
    buy_share: np.ndarray,
    phase: np.ndarray,
    specs: dict[str, np.ndarray],
    planned_moves: float,
) -> np.ndarray:
    """How far the bid moves after each trade: mostly 0, else a tick the aggressor's way.

    Bigger trades are likelier to clear a level; volatile phases move more and sometimes jump.
    """
    trades = len(side)
    base = min(0.45, planned_moves / max(trades, 1))
    weight = np.sqrt(size)
    ease = np.clip(1.0 + IMPACT * side * (buy_share - 0.5), 0.0, None)
    chance = np.minimum(0.95, base * specs["move_rate"][phase] * ease * weight / weight.mean())
    moving = rng.random(trades) < chance
    direction = np.where(rng.random(trades) < FOLLOW, side, -side).astype(np.int64)
    jumping = moving & (rng.random(trades) < specs["jump_rate"][phase])
    steps = np.where(jumping, rng.integers(2, 5, trades), 1)
    return np.where(moving, direction * steps, 0)


def _fold_ranges(rng: np.random.Generator, flow: Flow, phase: np.ndarray) -> None:
    """Keep each range phase inside a band around its starting level, in place.

    The path of a range phase is folded (reflected) at +-half width; where the fold turns a move
    around, the trades' aggressor sides turn with it, so delta still follows price.
    """
    in_range = phase == RANGE
    if not in_range.any():
        return
    edges = np.diff(np.concatenate(([False], in_range, [False])).astype(np.int8))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    index = np.flatnonzero(in_range)
    half = np.repeat(
        rng.integers(RANGE_HALF_WIDTH[0], RANGE_HALF_WIDTH[1] + 1, len(starts)), lengths
    )
    moves = flow.moves[index]
    travelled = np.cumsum(moves)
    first = np.concatenate(([0], np.cumsum(lengths)[:-1]))  # each phase's first position
    travelled -= np.repeat(travelled[first] - moves[first], lengths)  # from the phase's start
    midpoint = travelled - moves / 2.0  # where in the fold each move happens
    orientation = np.where(np.mod(midpoint + half, 4 * half) < 2 * half, 1, -1)
    flow.moves[index] = moves * orientation
    flow.side[index] = (flow.side[index] * orientation).astype(np.int8)
