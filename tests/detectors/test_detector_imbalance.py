"""Imbalance and stacked imbalance: the diagonal rule at and around its thresholds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from detectors.ladders import bars_from, ladder

from plugins.detectors.imbalance import ImbalanceDetector, ImbalanceSettings
from plugins.detectors.stacked_imbalance import (
    StackedImbalanceDetector,
    StackedImbalanceSettings,
)
from tradebot_core.types import Direction


def imbalance(history, **settings):
    return ImbalanceDetector(ImbalanceSettings(**settings), None).on_bar_closed(history)


def stacked(history, **settings):
    return StackedImbalanceDetector(StackedImbalanceSettings(**settings), None).on_bar_closed(
        history
    )


def test_buy_imbalance_fires_at_exactly_three_to_one():
    # ask 300 at 5000.25 vs bid 100 at 5000.00: 3.0x
    history = bars_from([ladder(5000.00, [(100, 50), (40, 300), (60, 60)])])
    (signal,) = [s for s in imbalance(history) if s.pattern == "buy_imbalance"]
    assert signal.direction is Direction.LONG
    assert signal.price == Decimal("5000.25")
    assert signal.strength == 0.5
    assert "ask 300 at 5000.25 vs bid 100 at 5000.00: 3.00x" in signal.reason


def test_buy_imbalance_does_not_fire_at_two_point_nine_nine():
    history = bars_from([ladder(5000.00, [(100, 50), (40, 299), (60, 60)])])
    assert not [s for s in imbalance(history) if s.pattern == "buy_imbalance"]


def test_sell_imbalance_compares_bid_with_the_ask_one_tick_up():
    # bid 450 at 5000.00 vs ask 150 at 5000.25: 3.0x
    history = bars_from([ladder(5000.00, [(450, 40), (60, 150), (30, 30)])])
    sells = [s for s in imbalance(history) if s.pattern == "sell_imbalance"]
    assert [(s.price, s.direction) for s in sells] == [(Decimal("5000.00"), Direction.SHORT)]


def test_zero_on_the_weak_side_counts_unless_disabled_and_needs_min_volume():
    history = bars_from([ladder(5000.00, [(0, 5), (0, 25), (10, 10)])])
    buys = [s for s in imbalance(history, min_volume=20) if s.pattern == "buy_imbalance"]
    assert len(buys) == 1 and buys[0].strength == 1.0 and "opposite side empty" in buys[0].reason
    assert not [s for s in imbalance(history, min_volume=26) if s.pattern == "buy_imbalance"]
    assert not [
        s
        for s in imbalance(history, min_volume=20, zero_counts=False)
        if s.pattern == "buy_imbalance"
    ]


def test_one_signal_per_direction_at_the_strongest_level():
    history = bars_from([ladder(5000.00, [(10, 10), (10, 40), (10, 80), (10, 35)])])
    buys = [s for s in imbalance(history) if s.pattern == "buy_imbalance"]
    assert len(buys) == 1 and buys[0].price == Decimal("5000.50")
    assert "(3 levels)" in buys[0].reason


@pytest.mark.parametrize(("levels", "fires"), [(3, True), (2, False)])
def test_three_stacked_buy_imbalances_fire_two_do_not(levels, fires):
    # rows low -> high; buy imbalances at the levels whose ask >= 3x the bid below
    rows = [(20, 10)] + [(20, 90)] * levels + [(30, 30)]
    if levels == 2:
        rows = [(20, 10), (20, 90), (20, 90), (90, 30)]
    history = bars_from([ladder(5000.00, rows)])
    found = [s for s in stacked(history) if s.pattern == "stacked_buy_imbalance"]
    assert bool(found) is fires
    if fires:
        assert found[0].price == Decimal("5000.25") and found[0].direction is Direction.LONG
        assert found[0].strength == 0.5


def test_stacked_sell_imbalance_points_short_from_the_top_of_the_stack():
    rows = [(90, 10), (90, 20), (90, 20), (10, 20), (10, 10)]
    history = bars_from([ladder(5000.00, rows)])
    (found,) = [s for s in stacked(history) if s.pattern == "stacked_sell_imbalance"]
    assert found.direction is Direction.SHORT and found.price == Decimal("5000.50")
