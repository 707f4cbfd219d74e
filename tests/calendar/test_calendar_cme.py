"""The CME calendar: holidays, early closes, DST, the 18:00 ET day boundary."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tradebot_core import calendar

ET = ZoneInfo("America/New_York")


def ns(day: date, clock: time, tz: ZoneInfo = ET) -> int:
    return int(datetime.combine(day, clock, tz).timestamp()) * 10**9


def utc(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC)


def weekdays(start: date, end: date) -> list[date]:
    days = (start + timedelta(n) for n in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5]


# CME Globex full holidays for equity futures (cmegroup.com holiday calendar)
CLOSED_2024_2025 = {
    date(2024, 1, 1),
    date(2024, 3, 29),  # Good Friday
    date(2024, 12, 25),
    date(2025, 1, 1),
    # a national day of mourning (President Carter): CMES closes it all day, while CME's equity
    # futures in fact traded a shortened morning (a simplification of the calendar)
    date(2025, 1, 9),
    date(2025, 4, 18),  # Good Friday
    date(2025, 12, 25),
}


def test_holidays_have_no_session():
    for day in CLOSED_2024_2025:
        assert not calendar.is_trading_day(day), day
        with pytest.raises(ValueError, match="not a CMES trading day"):
            calendar.session_bounds(day)
    assert not calendar.is_trading_day(date(2024, 11, 30))  # a Saturday
    assert calendar.is_trading_day(date(2024, 11, 29))


def test_trading_days_are_the_weekdays_without_the_holidays():
    start, end = date(2024, 1, 1), date(2025, 12, 31)
    expected = [d for d in weekdays(start, end) if d not in CLOSED_2024_2025]
    assert calendar.trading_days(start, end) == expected
    assert len(calendar.trading_days(date(2024, 12, 23), date(2025, 1, 3))) == 8
    assert calendar.trading_days(date(2024, 12, 25), date(2024, 12, 25)) == []
    assert calendar.trading_days(end, start) == []


def test_thanksgiving_trades_a_morning_and_the_day_after_closes_early():
    # CMES lists Thanksgiving as a 12:00 CT early close, not a holiday: ES does trade that morning
    for day in (date(2024, 11, 28), date(2024, 11, 29), date(2024, 12, 24), date(2024, 7, 4)):
        open_ns, close_ns = calendar.session_bounds(day)
        assert close_ns == ns(day, time(13, 0)), day  # 13:00 ET = 12:00 CT
        assert open_ns == ns(day - timedelta(1), time(18, 0))
        assert calendar.rth_bounds(day) == (ns(day, time(9, 30)), ns(day, time(13, 0)))
        assert calendar.is_early_close(day)
    assert not calendar.is_early_close(date(2024, 11, 27))
    # the session after Thanksgiving opens Thursday 18:00 ET
    assert calendar.session_bounds(date(2024, 11, 29))[0] == ns(date(2024, 11, 28), time(18))


def test_an_ordinary_globex_session_runs_18_00_to_17_00_et():
    open_ns, close_ns = calendar.session_bounds(date(2024, 11, 13))
    assert open_ns == ns(date(2024, 11, 12), time(18))
    assert close_ns == ns(date(2024, 11, 13), time(17))
    assert (close_ns - open_ns) // 10**9 == 23 * 3600
    monday_open, _ = calendar.session_bounds(date(2024, 11, 18))
    assert monday_open == ns(date(2024, 11, 17), time(18))  # Sunday evening


@pytest.mark.parametrize(
    ("day", "open_utc"),
    [
        (date(2024, 3, 8), time(14, 30)),  # EST
        (date(2024, 3, 11), time(13, 30)),  # EDT from 2024-03-10
        (date(2024, 11, 1), time(13, 30)),
        (date(2024, 11, 4), time(14, 30)),  # EST again from 2024-11-03
    ],
)
def test_rth_open_moves_with_daylight_saving(day, open_utc):
    open_ns, close_ns = calendar.rth_bounds(day)
    assert open_ns == ns(day, open_utc, UTC)
    assert close_ns - open_ns == int(6.5 * 3600) * 10**9


def test_the_sunday_open_after_the_spring_switch_is_already_daylight_time():
    open_ns, _ = calendar.session_bounds(date(2024, 3, 11))
    assert utc(open_ns) == datetime(2024, 3, 10, 22, 0, tzinfo=UTC)  # 18:00 EDT
    friday_open, _ = calendar.session_bounds(date(2024, 3, 8))
    assert utc(friday_open) == datetime(2024, 3, 7, 23, 0, tzinfo=UTC)  # 18:00 EST


def test_a_trade_after_1800_et_belongs_to_the_next_trading_day():
    day = date(2024, 11, 13)
    assert calendar.trading_date_of(ns(day, time(17, 59))) == day
    assert calendar.trading_date_of(ns(day, time(18, 0))) == date(2024, 11, 14)
    assert calendar.trading_date_of(ns(day, time(18, 1))) == date(2024, 11, 14)
    globex_open, _ = calendar.session_bounds(date(2024, 11, 14))
    assert calendar.trading_date_of(globex_open) == date(2024, 11, 14)
    # Friday evening and the weekend belong to Monday; Christmas Eve's evening to the 26th
    assert calendar.trading_date_of(ns(date(2024, 11, 15), time(19))) == date(2024, 11, 18)
    assert calendar.trading_date_of(ns(date(2024, 11, 17), time(12))) == date(2024, 11, 18)
    assert calendar.trading_date_of(ns(date(2024, 12, 24), time(18, 30))) == date(2024, 12, 26)


def reference_trading_date(ts_ns: int) -> date:
    """The rule spelt out: ET date, +1 from 18:00, then on to the next session."""
    local = datetime.fromtimestamp(ts_ns // 10**9, ET)
    day = local.date() + timedelta(days=1 if local.time() >= time(18) else 0)
    while not calendar.is_trading_day(day):
        day += timedelta(days=1)
    return day


def test_trading_dates_of_an_array_agree_with_the_rule():
    rng = np.random.default_rng(3)
    start = ns(date(2024, 3, 1), time(0))
    stamps = start + rng.integers(0, 300 * 86_400, 2_000) * 10**9  # DST, holidays included
    expected = [reference_trading_date(int(t)) for t in stamps]
    assert [calendar.trading_date_of(int(t)) for t in stamps] == expected
    vector = calendar.get().trading_dates_of(stamps)
    assert [d.item() for d in vector] == expected


def test_days_outside_the_calendar_are_named():
    with pytest.raises(ValueError, match=r"outside the CMES calendar"):
        calendar.is_trading_day(date(1990, 1, 2))
    with pytest.raises(ValueError, match=r"CMES calendar covers"):
        calendar.trading_days(date(1990, 1, 1), date(1990, 2, 1))


def test_et_time_keeps_microseconds_and_the_zone():
    ts = ns(date(2024, 7, 1), time(9, 30)) + 123_456_789
    local = calendar.et_time(ts)
    assert (local.hour, local.minute, local.microsecond) == (9, 30, 123_456)
    assert local.utcoffset() == timedelta(hours=-4)
    assert calendar.et_clock(ts) == time(9, 30, 0, 123_456)


def test_the_nyse_calendar_for_equities():
    nyse = calendar.get("XNYS")
    assert calendar.get("XNYS") is nyse  # built once
    assert not nyse.is_trading_day(date(2024, 11, 28))  # Thanksgiving: closed
    assert nyse.session_bounds(date(2024, 11, 29)) == (
        ns(date(2024, 11, 29), time(9, 30)),
        ns(date(2024, 11, 29), time(13, 0)),
    )
    assert nyse.is_early_close(date(2024, 11, 29))
    assert nyse.session_bounds(date(2024, 11, 27))[1] == ns(date(2024, 11, 27), time(16))
    assert not nyse.is_early_close(date(2024, 11, 27))


def test_a_built_calendar_is_cached_on_disk_and_reads_back_the_same(tmp_path, monkeypatch):
    """A second process reads the sessions from the cache without importing pandas."""
    import subprocess
    import sys

    monkeypatch.setenv("TRADEBOT_CACHE_DIR", str(tmp_path))
    probe = (
        "import sys; from tradebot_core import calendar as c; "
        "d = c.trading_date_of(1_732_800_000 * 10**9); b = c.get().bounds(d); "
        "print(d, b.open_ns, b.close_ns, b.rth_close_ns, b.early_close, "
        "len(c.trading_days(d.replace(month=1, day=1), d)), 'pandas' in sys.modules)"
    )
    first = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert list(tmp_path.glob("calendars/*.npz"))
    second = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert first[:-1] == second[:-1]  # the same answers (Thanksgiving 2024: an early close)
    assert first[4] == "True"
    assert (first[-1], second[-1]) == ("True", "False")  # built with pandas, then read without
