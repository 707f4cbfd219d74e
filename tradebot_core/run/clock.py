"""The clock: one rule for the trading day and its scheduled moments, live or replayed.

The trading day comes from the exchange calendar (:mod:`tradebot_core.calendar`): a day D runs
from 18:00 ET the evening before to its close; a timestamp at or after 18:00 ET belongs to the
next day. Each day has three scheduled moments, in the config's ``risk.timezone``:

* ``flatten``: ``risk.flatten_at`` (15:55 by default), but never later than 5 minutes before the
  day's regular close, so on an early close (the day after Thanksgiving) it comes 5 minutes
  before that close;
* ``digest``: ``risk.digest_at`` (16:00), or the regular close on an early-close day;
* ``roll``: 18:00 ET, where the next trading day starts.

A replay (demo, file, backtest) is driven by its ticks: a moment happens at the first tick at or
after it, so results do not depend on the wall clock and are byte-reproducible. A live run also
has a :class:`WallClock`, which fires the moments on time when no tick comes (a feed down at
15:55 still flattens at 15:55).
"""

from __future__ import annotations

import asyncio
import time as _time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .. import calendar
from ..config import RiskSettings

FLATTEN_BEFORE_CLOSE = timedelta(minutes=5)

Moment = tuple[int, str]  # (ns UTC, "flatten" | "digest" | "roll")


def trading_day(ts_ns: int) -> date:
    """The trading day a timestamp belongs to (18:00 ET starts the next one)."""
    return calendar.trading_date_of(ts_ns)


def day_start_ns(day: date) -> int:
    """When trading day ``day`` starts: 18:00 ET on the calendar day before its session."""
    start = datetime.combine(day - timedelta(days=1), calendar.DAY_ROLL, calendar.EXCHANGE_TZ)
    return int(start.timestamp() * 1e9)


def day_plan(day: date, risk: RiskSettings) -> list[Moment]:
    """The scheduled moments of trading day ``day``, in time order."""
    tz = ZoneInfo(risk.timezone)
    plan: list[Moment] = []
    bounds = None
    try:
        if calendar.is_trading_day(day):
            bounds = calendar.get().bounds(day)
    except ValueError:  # beyond the calendar's years: plain clock times
        bounds = None
    if risk.flatten_at is not None:
        at = _ns(day, risk.flatten_at, tz)
        if bounds is not None:
            at = min(at, bounds.rth_close_ns - int(FLATTEN_BEFORE_CLOSE.total_seconds() * 1e9))
        plan.append((at, "flatten"))
    if risk.digest_at is not None:
        at = _ns(day, risk.digest_at, tz)
        if bounds is not None and bounds.early_close:
            at = min(at, bounds.rth_close_ns)
        plan.append((at, "digest"))
    roll = datetime.combine(day, calendar.DAY_ROLL, calendar.EXCHANGE_TZ)
    plan.append((int(roll.timestamp() * 1e9), "roll"))
    return sorted(plan)


def _ns(day: date, at: object, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, at, tz).timestamp() * 1e9)  # type: ignore[arg-type]


class WallClock:
    """Calls ``tick(now_ns)`` about once a second on the wall clock (live runs only).

    ``now_ns`` and ``sleep`` can be replaced (a virtual clock in tests).
    """

    def __init__(
        self,
        tick: Callable[[int], None],
        now_ns: Callable[[], int] = _time.time_ns,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        interval_s: float = 1.0,
    ) -> None:
        self.tick = tick
        self.now_ns = now_ns
        self.sleep = sleep
        self.interval_s = interval_s

    async def run(self) -> None:
        while True:
            await self.sleep(self.interval_s)
            self.tick(self.now_ns())
