"""The CME trading calendar, in exchange time, from the maintained ``exchange_calendars`` package.

A CME trading day D runs on Globex from 18:00 ET on the evening before D to 17:00 ET on D (earlier
on early-close days); regular trading hours (RTH) are 09:30-16:00 ET, cut at the session's close
on early-close days (e.g. 13:00 ET the day after Thanksgiving). Holidays have no session.
DST is handled by the time zone: RTH opens at 13:30 UTC in summer, 14:30 UTC in winter.

The calendar is built once (lazily) and each day's bounds are cached, so the functions are cheap
enough to call per bar.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, time
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from .risk import trading_date

EXCHANGE_TZ = ZoneInfo("America/New_York")
CALENDAR_NAME = "CMES"  # CME equity index futures (Globex)
RTH_OPEN = time(9, 30)
RTH_CLOSE = time(16, 0)


@cache
def _calendar() -> Any:
    import exchange_calendars

    with warnings.catch_warnings():  # its pandas calls warn of pandas 4 changes: not ours to fix
        warnings.simplefilter("ignore")
        return exchange_calendars.get_calendar(CALENDAR_NAME)


def trading_days(start: date, end: date) -> list[date]:
    """CME trading days from ``start`` to ``end``, both included."""
    if end < start:
        return []
    calendar = _calendar()
    first = max(start, calendar.first_session.date())
    last = min(end, calendar.last_session.date())
    if last < first:
        raise ValueError(
            f"the CME calendar covers {calendar.first_session.date()} to "
            f"{calendar.last_session.date()}, not {start} to {end}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sessions = calendar.sessions_in_range(first.isoformat(), last.isoformat())
    return [s.date() for s in sessions]


@cache
def is_trading_day(day: date) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(_calendar().is_session(day.isoformat()))


@cache
def session_bounds(day: date) -> tuple[int, int]:
    """Globex open and close of trading day ``day``, ns UTC."""
    if not is_trading_day(day):
        raise ValueError(f"{day} is not a CME trading day")
    row = _calendar().schedule.loc[day.isoformat()]
    return int(row["open"].value), int(row["close"].value)


@cache
def rth_bounds(day: date) -> tuple[int, int]:
    """Regular trading hours of ``day``, ns UTC: 09:30 ET to 16:00 ET or the early close."""
    _, close = session_bounds(day)
    open_ns = int(datetime.combine(day, RTH_OPEN, EXCHANGE_TZ).timestamp()) * 10**9
    rth_close = int(datetime.combine(day, RTH_CLOSE, EXCHANGE_TZ).timestamp()) * 10**9
    return open_ns, min(rth_close, close)


def is_early_close(day: date) -> bool:
    return (
        rth_bounds(day)[1] < int(datetime.combine(day, RTH_CLOSE, EXCHANGE_TZ).timestamp()) * 10**9
    )


def trading_date_of(ts_ns: int) -> date:
    """The trading day a timestamp belongs to (after 18:00 ET: the next day)."""
    return trading_date(ts_ns, EXCHANGE_TZ)


def et_time(ts_ns: int) -> datetime:
    """A timestamp in exchange time."""
    return datetime.fromtimestamp(ts_ns / 1e9, EXCHANGE_TZ)
