"""The ``demo`` feed: seeded, simulated CME sessions with order flow worth trading.

A session is generated in one vectorized numpy pass (:func:`generate_session`; the model is in
:mod:`tradebot_plugins.feeds._demo_model` and :mod:`tradebot_plugins.feeds._demo_episodes`,
described in ``docs/demo-feed.md``), then streamed: ``SESSION_START``, tick batches of
``batch_size`` trades, ``SESSION_END``, for each weekday session from ``start_date``. The feed
never sleeps: the kernel paces replays; between batches it only yields control to the event loop.

Each session's random stream is seeded from ``(seed, date)``: session k is the same whatever
``sessions`` is, and a date's session is the same whatever ``start_date`` is, so a backtest day
(one session, see :meth:`DemoFeed.day_settings`) equals that day inside a multi-day run.
"""

from __future__ import annotations

import asyncio
import logging
import time as clock
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import Field, model_validator

from tradebot_core import (
    FeedStatus,
    FeedStatusKind,
    Instrument,
    PluginContext,
    PluginSettings,
    TickBatch,
    hookimpl,
)

from ._demo_model import PHASES, DemoSession, simulate

__all__ = [
    "PHASES",
    "DemoFeed",
    "DemoSession",
    "DemoSettings",
    "generate_session",
    "session_bounds",
    "session_dates",
    "simulate_session",
]

log = logging.getLogger(__name__)

EXCHANGE_TZ = ZoneInfo("America/New_York")


class DemoSettings(PluginSettings):
    """The ``feed.demo`` section."""

    seed: int = 7
    sessions: int = Field(default=1, ge=1)
    start_date: date = date(2024, 11, 11)
    """The first session's date; sessions follow on weekdays (Mon-Fri)."""
    session_start: time = time(9, 30)
    session_end: time = time(16, 0)
    """Exchange time (America/New_York, DST included): regular trading hours by default."""
    trades_per_session: int = Field(default=120_000, ge=100)
    start_price: Decimal = Field(default=Decimal("5000.00"), gt=0)
    """The opening bid; must sit on the instrument's tick grid."""
    batch_size: int = Field(default=5_000, ge=1)

    @model_validator(mode="after")
    def _session_has_length(self) -> DemoSettings:
        if self.session_end <= self.session_start:
            raise ValueError(
                f"session_end {self.session_end} must be after session_start "
                f"{self.session_start} (exchange time, same day)"
            )
        return self


def session_dates(start: date, count: int) -> list[date]:
    """``count`` weekdays from ``start`` (a weekend start moves to Monday)."""
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def session_bounds(settings: DemoSettings, day: date) -> tuple[int, int]:
    """Session open and close of ``day`` in ns UTC (the New York offset of that date)."""
    open_ = datetime.combine(day, settings.session_start, EXCHANGE_TZ)
    close = datetime.combine(day, settings.session_end, EXCHANGE_TZ)
    return _ns(open_), _ns(close)


def _ns(moment: datetime) -> int:
    whole = int(moment.replace(microsecond=0).timestamp())
    return whole * 1_000_000_000 + moment.microsecond * 1_000


def _start_ticks(settings: DemoSettings, instrument: Instrument) -> int:
    """The start price in ticks; an error naming the setting if it is off the grid."""
    try:
        return instrument.to_ticks(instrument.to_fixed(settings.start_price))
    except ValueError as exc:
        raise ValueError(
            f"demo feed: start_price {settings.start_price} is not on the tick grid of "
            f"{instrument.symbol} ({exc}); pick a multiple of {instrument.tick_size}"
        ) from None


def simulate_session(
    settings: DemoSettings, instrument: Instrument, session_date: date, seed: int | None = None
) -> DemoSession:
    """One simulated session with its phases and episodes (for tests, docs and analysis)."""
    seed = settings.seed if seed is None else seed
    rng = np.random.default_rng(np.random.SeedSequence([seed, session_date.toordinal()]))
    open_ns, close_ns = session_bounds(settings, session_date)
    return simulate(
        rng,
        settings.trades_per_session,
        open_ns,
        close_ns,
        _start_ticks(settings, instrument),
        instrument.tick_fixed,
    )


def generate_session(
    settings: DemoSettings, instrument: Instrument, session_date: date, seed: int | None = None
) -> np.ndarray:
    """One simulated session of ``session_date`` as a time-ordered ``TICK_DTYPE`` array.

    ``seed`` defaults to ``settings.seed``; the random stream is seeded from
    ``(seed, session_date)``. Benchmarks and backtests may call this directly.
    """
    return simulate_session(settings, instrument, session_date, seed).ticks


class DemoFeed:
    """Simulated sessions on weekdays from ``start_date``. See the module docstring."""

    name = "demo"
    Settings = DemoSettings

    def __init__(self, settings: DemoSettings, context: PluginContext) -> None:
        self.settings = settings
        self.symbol = context.symbol
        self.instrument = context.instrument
        _start_ticks(settings, self.instrument)  # on the grid, or a clear error now

    @classmethod
    def day_settings(cls, settings: dict[str, Any], day: date) -> dict[str, Any]:
        """The settings that play ``day`` alone (the same session as in a multi-day run)."""
        return {**settings, "start_date": day.isoformat(), "sessions": 1}

    async def stream(self) -> AsyncIterator[TickBatch | FeedStatus]:
        """``SESSION_START``, batches of ``batch_size`` trades, ``SESSION_END``, per session."""
        batch = self.settings.batch_size
        for day in session_dates(self.settings.start_date, self.settings.sessions):
            started = clock.perf_counter()
            ticks = generate_session(self.settings, self.instrument, day)
            log.debug(
                "demo session %s: %d trades generated in %.3f s",
                day,
                len(ticks),
                clock.perf_counter() - started,
            )
            open_ns, close_ns = session_bounds(self.settings, day)
            yield FeedStatus(kind=FeedStatusKind.SESSION_START, ts_ns=open_ns, detail=str(day))
            for start in range(0, len(ticks), batch):
                yield TickBatch(self.symbol, ticks[start : start + batch])
                await asyncio.sleep(0)  # let the status page and notifiers run
            yield FeedStatus(kind=FeedStatusKind.SESSION_END, ts_ns=close_ns, detail=str(day))


@hookimpl
def register_feeds(register: Any) -> None:
    register(DemoFeed)
