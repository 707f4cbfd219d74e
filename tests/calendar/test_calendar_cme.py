"""The CME calendar: holidays, early closes, DST, the 18:00 ET day boundary."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tradebot_core import calendar


def utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


def test_holidays_have_no_session():
    assert not calendar.is_trading_day(date(2024, 12, 25))
    assert not calendar.is_trading_day(date(2024, 11, 30))  # a Saturday
    assert calendar.is_trading_day(date(2024, 11, 29))
    with pytest.raises(ValueError, match="not a CME trading day"):
        calendar.session_bounds(date(2024, 12, 25))


def test_trading_days_in_a_range():
    days = calendar.trading_days(date(2024, 12, 23), date(2025, 1, 3))
    assert date(2024, 12, 25) not in days and date(2025, 1, 1) not in days
    assert days[0] == date(2024, 12, 23) and days[-1] == date(2025, 1, 3)
    assert len(calendar.trading_days(date(2024, 10, 1), date(2024, 10, 28))) == 20


def test_early_close_the_day_after_thanksgiving():
    _, close_ns = calendar.rth_bounds(date(2024, 11, 29))
    assert utc(close_ns).hour == 18  # 13:00 ET
    assert calendar.is_early_close(date(2024, 11, 29))
    assert not calendar.is_early_close(date(2024, 11, 27))


@pytest.mark.parametrize(
    ("day", "open_hour_utc"),
    [
        (date(2024, 3, 8), 14),
        (date(2024, 3, 11), 13),
        (date(2024, 11, 1), 13),
        (date(2024, 11, 4), 14),
    ],
)
def test_rth_open_moves_with_daylight_saving(day, open_hour_utc):
    open_ns, _ = calendar.rth_bounds(day)
    assert (utc(open_ns).hour, utc(open_ns).minute) == (open_hour_utc, 30)


def test_a_trade_after_1800_et_belongs_to_the_next_trading_day():
    before = int(datetime(2024, 11, 13, 22, 59, tzinfo=UTC).timestamp() * 1e9)  # 17:59 ET
    after = int(datetime(2024, 11, 13, 23, 1, tzinfo=UTC).timestamp() * 1e9)  # 18:01 ET
    assert calendar.trading_date_of(before) == date(2024, 11, 13)
    assert calendar.trading_date_of(after) == date(2024, 11, 14)
    globex_open, _ = calendar.session_bounds(date(2024, 11, 14))
    assert calendar.trading_date_of(globex_open) == date(2024, 11, 14)
