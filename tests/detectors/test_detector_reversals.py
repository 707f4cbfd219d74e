"""Exhaustion, absorption, delta divergence, unfinished business: what fires, what nearly does."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from detectors.footprint_builder import ladder
from tradebot_plugins.detectors.absorption import AbsorptionDetector
from tradebot_plugins.detectors.delta_divergence import DeltaDivergenceDetector
from tradebot_plugins.detectors.exhaustion import ExhaustionDetector
from tradebot_plugins.detectors.unfinished_business import UnfinishedBusinessDetector

from tradebot_core.types import Direction

# -- exhaustion ----------------------------------------------------------------------------------


def thinning_top(at_high: int, below: int = 20, start: int = 60) -> list[tuple[int, int]]:
    """Asks toward the high: 40, 60, ``start``, ``below``, ``at_high`` (low to high)."""
    return [(50, 40), (40, 60), (30, start), (20, below), (10, at_high)]


def test_buying_exhaustion_when_the_asks_thin_to_nothing_at_the_high(footprint, detect):
    found = detect(ExhaustionDetector, footprint.history(ladder(5000, thinning_top(2))))
    signal = found["buying_exhaustion"]
    assert (signal.direction, signal.price) == (Direction.SHORT, Decimal("5001.00"))
    assert signal.strength == round(1 - 2 / 60, 4)
    assert signal.reason.startswith("ask volume thins 60 -> 20 -> 2 into the high 5001.00")
    assert "selling_exhaustion" not in found


@pytest.mark.parametrize(("at_high", "fires"), [(5, True), (6, False)])
def test_the_extreme_must_be_at_most_max_extreme_volume(footprint, detect, at_high, fires):
    history = footprint.history(ladder(5000, thinning_top(at_high)))
    found = detect(ExhaustionDetector, history, extreme_fraction=0.0)
    assert ("buying_exhaustion" in found) is fires


def test_or_at_most_a_fraction_of_the_average_volume_per_price(footprint, detect):
    outcomes = set()
    for at_high in range(5, 13):
        rows = thinning_top(at_high)
        average = Fraction(sum(b + a for b, a in rows), len(rows))
        expected = at_high <= Fraction(1, 10) * average
        history = footprint.history(ladder(5000, rows))
        found = detect(ExhaustionDetector, history, max_extreme_volume=0, extreme_fraction=0.1)
        assert ("buying_exhaustion" in found) is expected, at_high
        outcomes.add(expected)
    assert outcomes == {True, False}  # the threshold lies inside the range tried


def test_no_exhaustion_when_the_volume_does_not_strictly_fall(footprint, detect):
    history = footprint.history(ladder(5000, thinning_top(2, below=60)))  # 60, 60, 2
    assert "buying_exhaustion" not in detect(ExhaustionDetector, history)


@pytest.mark.parametrize(("start", "fires"), [(10, True), (9, False)])
def test_there_must_have_been_a_push_to_fade(footprint, detect, start, fires):
    history = footprint.history(ladder(5000, thinning_top(1, below=5, start=start)))
    assert ("buying_exhaustion" in detect(ExhaustionDetector, history)) is fires


def test_selling_exhaustion_at_the_low(footprint, detect):
    rows = [(0, 10), (15, 20), (50, 30), (40, 40)]  # bids from the low up: 0, 15, 50
    found = detect(ExhaustionDetector, footprint.history(ladder(5000, rows)))
    signal = found["selling_exhaustion"]
    assert (signal.direction, signal.price) == (Direction.LONG, Decimal("5000.00"))
    assert signal.strength == 1.0  # nothing sold at the low
    assert "buying_exhaustion" not in found


def test_the_window_must_be_smaller_than_the_bar(footprint, detect):
    rows = [(50, 30), (15, 12), (0, 2)]  # a 3-price bar: asks 30, 12, 2 toward the high
    history = footprint.history(ladder(5000, rows))
    assert detect(ExhaustionDetector, history) == {}
    assert "buying_exhaustion" in detect(ExhaustionDetector, history, levels=2)


# -- absorption ----------------------------------------------------------------------------------


def sold_into_the_low(zone_bid: int = 150, close_level: int = 4) -> tuple[list, str]:
    """Bids of ``zone_bid`` at the two lowest prices, 25 at each of the four above."""
    rows = [(zone_bid, 20), (zone_bid, 30), (25, 30), (25, 25), (25, 25), (25, 20)]
    return rows, str(Decimal("5000") + Decimal("0.25") * close_level)


def test_buying_absorption_heavy_selling_at_the_low_and_a_close_away(footprint, detect):
    rows, close = sold_into_the_low()
    history = footprint.history(ladder(5000, rows, open=5000.25, close=close))
    signal = detect(AbsorptionDetector, history)["buying_absorption"]
    assert (signal.direction, signal.price) == (Direction.LONG, Decimal("5000.00"))
    per_zone, per_rest = 300 / 2, 100 / 4  # 6x
    assert signal.strength == round(min(1.0, per_zone / per_rest / 6.0), 4)
    assert signal.reason.startswith("300 sold into 5000.00-5000.25 (150.0 per price vs 25.0")


@pytest.mark.parametrize(("heavy_ratio", "fires"), [(6.0, True), (6.01, False)])
def test_the_zone_must_be_heavy_ratio_times_the_rest(footprint, detect, heavy_ratio, fires):
    rows, close = sold_into_the_low()
    history = footprint.history(ladder(5000, rows, close=close))
    found = detect(AbsorptionDetector, history, heavy_ratio=heavy_ratio)
    assert ("buying_absorption" in found) is fires
    if fires:
        assert found["buying_absorption"].strength == 0.5  # exactly at the threshold


@pytest.mark.parametrize(("close_level", "fires"), [(0, False), (1, False), (2, False), (3, True)])
def test_the_bar_must_close_away_from_the_low(footprint, detect, close_level, fires):
    # range 5 ticks: the close needs (close - low) >= 0.5 x 5 = 2.5 ticks
    rows, close = sold_into_the_low(close_level=close_level)
    history = footprint.history(ladder(5000, rows, close=close))
    assert ("buying_absorption" in detect(AbsorptionDetector, history)) is fires


def test_the_zone_needs_min_volume_and_sellers_ahead_of_buyers(footprint, detect):
    rows, close = sold_into_the_low()
    history = footprint.history(ladder(5000, rows, close=close))
    assert "buying_absorption" in detect(AbsorptionDetector, history, min_volume=300)
    assert "buying_absorption" not in detect(AbsorptionDetector, history, min_volume=301)
    rows[0] = (150, 400)  # buyers outweigh the sellers in the zone: no absorption of selling
    history = footprint.history(ladder(5000, rows, close=close))
    assert "buying_absorption" not in detect(AbsorptionDetector, history, heavy_ratio=1.0)


def test_selling_absorption_at_the_high(footprint, detect):
    rows = [(20, 25), (30, 25), (30, 25), (25, 25), (25, 150), (20, 150)]
    history = footprint.history(ladder(5000, rows, open=5001.00, close=5000.25))
    found = detect(AbsorptionDetector, history)
    signal = found["selling_absorption"]
    assert (signal.direction, signal.price) == (Direction.SHORT, Decimal("5001.25"))
    assert "buying_absorption" not in found


def test_absorption_needs_a_bar_wider_than_the_zone(footprint, detect):
    history = footprint.history(ladder(5000, [(300, 10), (5, 5), (5, 5)], close=5000.50))
    assert detect(AbsorptionDetector, history) == {}
    assert "buying_absorption" in detect(AbsorptionDetector, history, zone_levels=1)


# -- delta divergence ----------------------------------------------------------------------------


def rising(last_bid: int, last_ask: int, earlier: int = 5) -> list:
    """``earlier`` two-price bars rising a point each (delta +10), then a two-price bar whose
    high is one tick above theirs, with ``(last_bid, last_ask)`` at both its prices."""
    bars = [ladder(5000 + k, [(50, 60), (50, 60)]) for k in range(earlier)]
    top = Decimal("5000.25") + earlier - 1  # the earlier bars' highest high
    return [*bars, ladder(top, [(last_bid, last_ask), (last_bid, last_ask)])]


def test_bearish_divergence_a_new_high_on_negative_delta(footprint, detect):
    history = footprint.history(*rising(last_bid=80, last_ask=40))
    found = detect(DeltaDivergenceDetector, history)
    signal = found["bearish_delta_divergence"]
    assert (signal.direction, signal.price) == (Direction.SHORT, Decimal("5004.50"))
    bar = history.bars[-1]
    assert int(bar["delta"]) == -80
    assert signal.strength == round(0.5 + 0.5 * 80 / int(bar["volume"]), 4)
    assert "new 5-bar high 5004.50 (previous 5004.25) on delta -80" in signal.reason


def test_no_divergence_when_delta_confirms_or_the_high_is_not_new(footprint, detect):
    confirmed = footprint.history(*rising(last_bid=40, last_ask=80))
    assert detect(DeltaDivergenceDetector, confirmed) == {}
    bars = rising(last_bid=80, last_ask=40)
    bars[-1] = ladder("5004.00", [(80, 40), (80, 40)])  # high 5004.25: equal, not above
    assert detect(DeltaDivergenceDetector, footprint.history(*bars)) == {}


def test_the_lookback_needs_that_many_earlier_bars(footprint, detect):
    history = footprint.history(*rising(80, 40, earlier=4))
    assert detect(DeltaDivergenceDetector, history) == {}  # 4 earlier bars < lookback 5
    assert "bearish_delta_divergence" in detect(DeltaDivergenceDetector, history, lookback=4)


def test_min_volume_skips_thin_bars(footprint, detect):
    history = footprint.history(*rising(last_bid=80, last_ask=40))
    volume = int(history.bars[-1]["volume"])
    assert detect(DeltaDivergenceDetector, history, min_volume=volume)
    assert detect(DeltaDivergenceDetector, history, min_volume=volume + 1) == {}


def test_cumulative_mode_compares_cumulative_delta_with_its_high(footprint, detect):
    # heavy buying, then a selling bar, then a new high on positive delta: cum delta stays below
    bars = [ladder(5000 + k, [(10, 200), (10, 200)]) for k in range(4)]
    bars.append(ladder(5004, [(400, 10), (400, 10)]))
    bars.append(ladder("5004.50", [(40, 50), (40, 50)]))
    history = footprint.history(*bars)
    cum = history.bars["cum_delta"].tolist()
    assert cum[-1] < max(cum[:-1]) and int(history.bars[-1]["delta"]) > 0
    assert detect(DeltaDivergenceDetector, history, use="bar") == {}
    found = detect(DeltaDivergenceDetector, history, use="cumulative")
    signal = found["bearish_delta_divergence"]
    gap = max(cum[:-1]) - cum[-1]
    assert signal.strength == round(min(1.0, 0.5 + 0.5 * gap / 180), 4)
    assert "bearish_delta_divergence" in detect(DeltaDivergenceDetector, history, use="either")


def test_bullish_divergence_a_new_low_on_positive_delta(footprint, detect):
    bars = [ladder(5010 - k, [(60, 50), (60, 50)]) for k in range(5)]
    bars.append(ladder("5005.75", [(30, 90), (30, 90)]))  # low 5005.75 < 5006.00
    found = detect(DeltaDivergenceDetector, footprint.history(*bars))
    signal = found["bullish_delta_divergence"]
    assert (signal.direction, signal.price) == (Direction.LONG, Decimal("5005.75"))
    assert "bearish_delta_divergence" not in found


# -- unfinished business -------------------------------------------------------------------------


def test_unfinished_business_when_both_sides_trade_at_the_high(footprint, detect):
    rows = [(0, 30), (40, 40), (3, 7)]  # low: asks only (finished); high: both (unfinished)
    found = detect(UnfinishedBusinessDetector, footprint.history(ladder(5000, rows)))
    assert set(found) == {"unfinished_business_high"}
    signal = found["unfinished_business_high"]
    assert (signal.direction, signal.price) == (Direction.LONG, Decimal("5000.50"))
    assert signal.strength == round(3 / 7, 4)
    assert signal.reason == "both sides traded at the high 5000.50: bid 3 x ask 7"


def test_unfinished_business_at_the_low_points_short(footprint, detect):
    rows = [(12, 12), (40, 40), (0, 9)]
    found = detect(UnfinishedBusinessDetector, footprint.history(ladder(5000, rows)))
    assert set(found) == {"unfinished_business_low"}
    signal = found["unfinished_business_low"]
    assert (signal.direction, signal.price, signal.strength) == (
        Direction.SHORT,
        Decimal("5000.00"),
        1.0,
    )


@pytest.mark.parametrize(("min_each", "fires"), [(3, True), (4, False)])
def test_each_side_needs_min_each(footprint, detect, min_each, fires):
    history = footprint.history(ladder(5000, [(9, 0), (40, 40), (3, 7)]))
    found = detect(UnfinishedBusinessDetector, history, min_each=min_each)
    assert ("unfinished_business_high" in found) is fires


def test_a_one_price_bar_has_no_extreme_to_leave_unfinished(footprint, detect):
    assert detect(UnfinishedBusinessDetector, footprint.history(ladder(5000, [(5, 5)]))) == {}
