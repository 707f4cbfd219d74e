"""Front-month contracts against published dates: CME's equity roll dates, NYMEX crude expiries."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from tradebot_plugins.feeds.cme_contracts import (
    crude_last_trading_day,
    equity_roll_date,
    front_month,
    is_business_day,
)

# CME Group "Equity Index Roll Dates": (contract year, month) -> roll date, expiry
PUBLISHED_EQUITY = {
    (2012, 12): (date(2012, 12, 13), date(2012, 12, 21)),
    (2014, 9): (date(2014, 9, 11), date(2014, 9, 19)),
    (2014, 12): (date(2014, 12, 11), date(2014, 12, 19)),
    (2025, 12): (date(2025, 12, 11), date(2025, 12, 19)),
}
# NYMEX CL last trading days (the CL contract specs' rule, as CME published them)
PUBLISHED_CRUDE = {
    (2020, 5): date(2020, 4, 21),  # 25 April 2020 a Saturday: 4 business days before
    (2024, 3): date(2024, 2, 20),  # 25 February 2024 a Sunday
    (2024, 7): date(2024, 6, 20),
    (2024, 12): date(2024, 11, 20),
    (2025, 1): date(2024, 12, 19),  # Christmas is not a business day
}


@pytest.mark.parametrize(("contract", "dates"), PUBLISHED_EQUITY.items())
def test_equity_roll_dates_are_cmes(contract, dates):
    roll, expiry = dates
    assert equity_roll_date(*contract) == roll == expiry - timedelta(days=8)
    code = "HMUZ"[contract[1] // 3 - 1]
    nxt = (contract[0] + 1, 3) if contract[1] == 12 else (contract[0], contract[1] + 3)
    next_code = "HMUZ"[nxt[1] // 3 - 1]
    for root in ("ES", "MES", "NQ"):
        assert front_month(root, roll - timedelta(days=1)) == f"{root}{code}{contract[0] % 10}"
        assert front_month(root, roll) == f"{root}{next_code}{nxt[0] % 10}"


@pytest.mark.parametrize(("contract", "last_day"), PUBLISHED_CRUDE.items())
def test_crude_last_trading_days_are_nymexs(contract, last_day):
    year, month = contract
    assert crude_last_trading_day(year, month) == last_day
    symbol = f"CL{'FGHJKMNQUVXZ'[month - 1]}{year % 10}"
    assert front_month("CL", last_day - timedelta(days=1)) == symbol
    assert front_month("CL", last_day) != symbol  # on its last day the next month leads


def test_business_days_skip_weekends_and_holidays():
    assert not is_business_day(date(2024, 12, 25))  # Christmas
    assert not is_business_day(date(2024, 3, 29))  # Good Friday
    assert not is_business_day(date(2024, 11, 28))  # Thanksgiving
    assert not is_business_day(date(2021, 12, 24))  # Christmas on a Saturday, observed Friday
    assert not is_business_day(date(2024, 11, 23))  # a Saturday
    assert is_business_day(date(2024, 11, 29))


def test_gold_moves_to_the_next_active_month_late_in_the_month_before():
    assert front_month("GC", date(2025, 1, 24)) == "GCG5"
    assert front_month("GC", date(2025, 1, 25)) == "GCJ5"
    assert front_month("GC", date(2025, 2, 10)) == "GCJ5"  # G expires in its own month: gone
    assert front_month("MGC", date(2024, 12, 31)) == "MGCG5"


def test_a_year_boundary_and_an_unknown_root():
    assert front_month("ES", date(2024, 12, 31)) == "ESH5"
    assert front_month("CL", date(2024, 12, 31)) == "CLG5"
    with pytest.raises(ValueError, match=r"no front-month rule for 'ZN'.*name the contract"):
        front_month("ZN", date(2024, 1, 2))
