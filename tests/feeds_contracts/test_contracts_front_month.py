"""Front-month contracts around their rolls."""

from datetime import date

import pytest
from tradebot_plugins.feeds.cme_contracts import equity_roll_date, front_month, third_friday


def test_third_friday_and_the_equity_roll_thursday():
    assert third_friday(2025, 12) == date(2025, 12, 19)
    assert equity_roll_date(2025, 12) == date(2025, 12, 11)
    assert equity_roll_date(2025, 12).weekday() == 3  # a Thursday


@pytest.mark.parametrize(
    ("root", "day", "symbol"),
    [
        ("ES", date(2025, 12, 10), "ESZ5"),
        ("ES", date(2025, 12, 11), "ESH6"),  # roll day
        ("MES", date(2024, 3, 6), "MESH4"),
        ("MES", date(2024, 3, 7), "MESM4"),
        ("NQ", date(2024, 12, 31), "NQH5"),
        ("CL", date(2024, 11, 13), "CLZ4"),
        ("CL", date(2024, 11, 21), "CLF5"),
        ("GC", date(2024, 11, 13), "GCZ4"),
        ("GC", date(2024, 11, 26), "GCG5"),
        ("GC", date(2024, 12, 5), "GCG5"),
    ],
)
def test_front_month(root, day, symbol):
    assert front_month(root, day) == symbol


def test_unknown_roots_are_refused():
    with pytest.raises(ValueError, match="no front-month rule"):
        front_month("ZZ", date(2024, 1, 2))
