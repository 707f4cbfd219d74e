"""Imbalance and stacked imbalance: the diagonal rule at and around its thresholds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from detectors.footprint_builder import ladder
from tradebot_plugins.detectors.imbalance import ImbalanceDetector
from tradebot_plugins.detectors.stacked_imbalance import StackedImbalanceDetector

from tradebot_core.types import Direction

# -- single imbalances ---------------------------------------------------------------------------


@pytest.mark.parametrize(("ask", "fires"), [(300, True), (299, False)])
def test_buy_imbalance_fires_at_three_to_one_and_not_at_two_point_nine_nine(
    footprint, detect, ask, fires
):
    # ask at 5000.25 against the bid one tick down (100 at 5000.00); the other diagonals are weak
    history = footprint.history(ladder(5000, [(100, 50), (40, ask), (60, 60)]))
    found = detect(ImbalanceDetector, history)
    assert ("buy_imbalance" in found) is fires
    assert "sell_imbalance" not in found
    if fires:
        signal = found["buy_imbalance"]
        assert signal.direction is Direction.LONG
        assert signal.price == Decimal("5000.25")
        assert signal.strength == round(ask / 100 / (2 * 3.0), 4)
        assert signal.reason == f"ask {ask} at 5000.25 vs bid 100 at 5000.00: {ask / 100:.2f}x"


@pytest.mark.parametrize(("bid", "fires"), [(450, True), (449, False)])
def test_sell_imbalance_weighs_the_bid_against_the_ask_one_tick_up(footprint, detect, bid, fires):
    history = footprint.history(ladder(5000, [(bid, 40), (60, 150), (30, 30)]))
    found = detect(ImbalanceDetector, history)
    assert ("sell_imbalance" in found) is fires
    assert "buy_imbalance" not in found
    if fires:
        signal = found["sell_imbalance"]
        assert (signal.direction, signal.price) == (Direction.SHORT, Decimal("5000.00"))
        assert signal.reason.startswith(f"bid {bid} at 5000.00 vs ask 150 at 5000.25")


def test_the_same_price_is_not_compared_only_the_diagonal(footprint, detect):
    # ask 400 vs bid 10 at the same price would be 40x horizontally; diagonally it is 1x
    history = footprint.history(ladder(5000, [(400, 10), (10, 400)]))
    # ask 400 at 5000.25 vs bid 400 at 5000.00; bid 400 at 5000.00 vs ask 400 at 5000.25
    assert detect(ImbalanceDetector, history) == {}


def test_the_ratio_setting_moves_the_threshold(footprint, detect):
    history = footprint.history(ladder(5000, [(100, 50), (40, 300), (60, 60)]))
    assert "buy_imbalance" in detect(ImbalanceDetector, history, ratio=3.0)
    assert "buy_imbalance" not in detect(ImbalanceDetector, history, ratio=3.01)
    assert "buy_imbalance" in detect(ImbalanceDetector, history, ratio=1.5)


@pytest.mark.parametrize(("min_volume", "fires"), [(30, True), (31, False)])
def test_the_strong_side_needs_min_volume(footprint, detect, min_volume, fires):
    history = footprint.history(ladder(5000, [(5, 5), (5, 30), (20, 20)]))  # 30 vs 5: 6x
    found = detect(ImbalanceDetector, history, min_volume=min_volume)
    assert ("buy_imbalance" in found) is fires


@pytest.mark.parametrize(
    ("mode", "ask", "fires"),
    [
        ("imbalance", 2, True),  # nothing sold below: any ask >= min_volume is an imbalance
        ("as_one", 2, False),  # 0 compared as 1: 2 < 3 x 1
        ("as_one", 3, True),
        ("ignore", 50, False),  # never against an empty side
    ],
)
def test_a_weak_side_of_zero_follows_zero_weak_side(footprint, detect, mode, ask, fires):
    history = footprint.history(ladder(5000, [(0, 1), (1, ask), (1, 1)]))  # bid 0 under the ask
    found = detect(ImbalanceDetector, history, min_volume=1, zero_weak_side=mode)
    assert ("buy_imbalance" in found) is fires
    if fires:
        signal = found["buy_imbalance"]
        assert signal.price == Decimal("5000.25")
        assert "weak side empty" in signal.reason
        assert signal.strength == round(min(1.0, ask / 1 / 6.0), 4)  # 0 counted as 1 contract


def test_a_zero_weak_side_on_the_sell_side(footprint, detect):
    history = footprint.history(ladder(5000, [(8, 8), (25, 8), (8, 0), (8, 8)]))
    found = detect(ImbalanceDetector, history)
    assert found["sell_imbalance"].price == Decimal("5000.25")  # bid 25 vs ask 0 one tick up
    assert "sell_imbalance" not in detect(ImbalanceDetector, history, zero_weak_side="ignore")


def test_the_bar_edges_have_no_diagonal_outside_the_bar(footprint, detect):
    # ask 50 at the low and bid 50 at the high face nothing inside the bar: no imbalance
    history = footprint.history(ladder(5000, [(30, 50), (30, 30), (50, 30)]))
    assert detect(ImbalanceDetector, history) == {}


def test_one_signal_per_direction_at_the_strongest_level_with_the_count(footprint, detect):
    rows = [(10, 10), (10, 40), (10, 80), (10, 35), (10, 10)]  # buys at 4x, 8x, 3.5x
    history = footprint.history(ladder(5000, rows))
    signal = detect(ImbalanceDetector, history)["buy_imbalance"]
    assert signal.price == Decimal("5000.50")
    assert signal.reason == (
        "ask 80 at 5000.50 vs bid 10 at 5000.25: 8.00x; 3 levels from 5000.25 to 5000.75"
    )
    assert signal.strength == 1.0  # 8x is over twice the 3x threshold


def test_both_directions_in_one_bar(footprint, detect):
    rows = [(10, 5), (10, 40), (60, 10), (10, 10)]  # buy at 5000.25 (4x), sell at 5000.50 (6x)
    found = detect(ImbalanceDetector, footprint.history(ladder(5000, rows)))
    assert found["buy_imbalance"].direction is Direction.LONG
    assert found["buy_imbalance"].price == Decimal("5000.25")
    assert found["sell_imbalance"].direction is Direction.SHORT
    assert found["sell_imbalance"].price == Decimal("5000.50")


def test_a_one_price_bar_has_no_imbalance(footprint, detect):
    assert detect(ImbalanceDetector, footprint.history(ladder(5000, [(0, 900)]))) == {}


# -- stacked imbalances --------------------------------------------------------------------------


def buy_stack(length: int) -> list[tuple[int, int]]:
    """Buy imbalances (90 vs 20: 4.5x) at levels 1..length, nothing else."""
    return [(20, 10)] + [(20, 90)] * length + [(30, 30)]


def sell_stack(length: int) -> list[tuple[int, int]]:
    """Sell imbalances (90 vs 20: 4.5x) at levels 1..length, nothing else."""
    return [(30, 30)] + [(90, 20)] * length + [(10, 20)]


@pytest.mark.parametrize(("length", "fires"), [(2, False), (3, True), (4, True)])
def test_three_stacked_buy_imbalances_fire_two_do_not(footprint, detect, length, fires):
    history = footprint.history(ladder(5000, buy_stack(length)))
    singles = detect(ImbalanceDetector, history)["buy_imbalance"]
    assert f"{length} levels" in singles.reason  # the stack really is made of `length` levels
    found = detect(StackedImbalanceDetector, history)
    assert ("stacked_buy_imbalance" in found) is fires
    assert "stacked_sell_imbalance" not in found
    if fires:
        signal = found["stacked_buy_imbalance"]
        assert signal.direction is Direction.LONG
        assert signal.price == Decimal("5000.25")  # the bottom of the stack
        assert signal.strength == round(0.5 + 0.5 * (length - 3) / 3, 4)
        top = Decimal("5000") + Decimal("0.25") * length
        assert signal.reason == f"{length} stacked buy imbalances from 5000.25 to {top}"


@pytest.mark.parametrize(("length", "fires"), [(2, False), (3, True)])
def test_stacked_sell_imbalance_points_short_from_the_top(footprint, detect, length, fires):
    history = footprint.history(ladder(5000, sell_stack(length)))
    found = detect(StackedImbalanceDetector, history)
    assert ("stacked_sell_imbalance" in found) is fires
    if fires:
        signal = found["stacked_sell_imbalance"]
        assert signal.direction is Direction.SHORT
        assert signal.price == Decimal("5000") + Decimal("0.25") * length  # the top


def test_a_gap_breaks_the_stack(footprint, detect):
    # buys at levels 1, 2, then level 3 only 2.9x, then 4, 5: two stacks of two
    rows = [(20, 10), (20, 90), (20, 90), (20, 58), (20, 90), (20, 90), (30, 30)]
    history = footprint.history(ladder(5000, rows))
    assert "buy_imbalance" in detect(ImbalanceDetector, history)
    assert detect(StackedImbalanceDetector, history) == {}
    assert "stacked_buy_imbalance" in detect(StackedImbalanceDetector, history, levels=2)


def test_the_longest_stack_wins_and_the_reason_counts_stacks(footprint, detect):
    rows = [(20, 10), (20, 90), (20, 90), (20, 90), (90, 20), (20, 10)]
    rows += [(20, 90)] * 4 + [(30, 30)]
    history = footprint.history(ladder(5000, rows))
    signal = detect(StackedImbalanceDetector, history)["stacked_buy_imbalance"]
    assert signal.price == Decimal("5001.50")  # the bottom of the 4-level stack (levels 6..9)
    assert signal.reason.endswith("(2 stacks in the bar)")


def test_the_levels_setting_and_the_shared_ratio(footprint, detect):
    history = footprint.history(ladder(5000, buy_stack(4)))
    assert "stacked_buy_imbalance" in detect(StackedImbalanceDetector, history, levels=4)
    assert detect(StackedImbalanceDetector, history, levels=5) == {}
    assert detect(StackedImbalanceDetector, history, ratio=4.51) == {}  # 90 / 20 = 4.5
    signal = detect(StackedImbalanceDetector, history, levels=2)["stacked_buy_imbalance"]
    assert signal.strength == 1.0  # twice `levels`
