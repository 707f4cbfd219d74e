"""Exhaustion, absorption, delta divergence and unfinished business: fire and near-miss."""

from __future__ import annotations

from decimal import Decimal

from detectors.ladders import bars_from, ladder

from plugins.detectors.absorption import AbsorptionDetector, AbsorptionSettings
from plugins.detectors.delta_divergence import DeltaDivergenceDetector, DeltaDivergenceSettings
from plugins.detectors.exhaustion import ExhaustionDetector, ExhaustionSettings
from plugins.detectors.unfinished_business import (
    UnfinishedBusinessDetector,
    UnfinishedBusinessSettings,
)
from tradebot_core.types import Direction


def run(detector_cls, settings_cls, history, **settings):
    return detector_cls(settings_cls(**settings), None).on_bar_closed(history)


def patterns(signals):
    return {s.pattern: s for s in signals}


# -- exhaustion ----------------------------------------------------------------------------------


def test_buying_exhaustion_when_asks_thin_to_nothing_at_the_high():
    # asks toward the high: 60, 20, 2 (falling, 2 <= 5)
    rows = [(50, 40), (40, 60), (30, 60), (20, 20), (10, 2)]
    found = patterns(run(ExhaustionDetector, ExhaustionSettings, bars_from([ladder(5000, rows)])))
    signal = found["buying_exhaustion"]
    assert signal.direction is Direction.SHORT and signal.price == Decimal("5001.00")
    assert signal.strength == round(1 - 2 / 60, 4)


def test_no_exhaustion_when_the_high_still_trades_or_volume_does_not_fall():
    # the limit is max(5, 10% of the average level volume 67.6) = 6.76: 8 is still trading
    busy_top = [(50, 40), (40, 60), (30, 60), (20, 20), (10, 8)]
    flat = [(50, 40), (40, 60), (30, 20), (20, 20), (10, 2)]  # 20, 20, 2: not strictly falling
    for rows in (busy_top, flat):
        found = run(ExhaustionDetector, ExhaustionSettings, bars_from([ladder(5000, rows)]))
        assert "buying_exhaustion" not in patterns(found)


def test_selling_exhaustion_at_the_low():
    rows = [(1, 10), (15, 20), (50, 30), (40, 40)]
    found = patterns(run(ExhaustionDetector, ExhaustionSettings, bars_from([ladder(5000, rows)])))
    assert found["selling_exhaustion"].direction is Direction.LONG
    assert found["selling_exhaustion"].price == Decimal("5000.00")


# -- absorption ----------------------------------------------------------------------------------


def absorb_rows(low_bid: int) -> list[tuple[int, int]]:
    return [(low_bid, 20), (low_bid, 30), (20, 30), (20, 25), (10, 25), (10, 20)]


def test_buying_absorption_heavy_selling_at_the_low_and_a_close_away_from_it():
    rows = absorb_rows(200)  # bid mean = (200+200+20+20+10+10)/6 = 76.7; 3x = 230 <= 400
    history = bars_from([ladder(5000, rows)], opens=[5000.0], closes=[5001.0])
    found = patterns(run(AbsorptionDetector, AbsorptionSettings, history))
    signal = found["buying_absorption"]
    assert signal.direction is Direction.LONG and signal.price == Decimal("5000.00")


def test_no_absorption_if_the_bar_closes_at_its_low_or_selling_is_not_heavy():
    at_low = bars_from([ladder(5000, absorb_rows(200))], opens=[5001.25], closes=[5000.0])
    light = bars_from([ladder(5000, absorb_rows(40))], opens=[5000.0], closes=[5001.0])
    for history in (at_low, light):
        assert "buying_absorption" not in patterns(
            run(AbsorptionDetector, AbsorptionSettings, history)
        )


def test_selling_absorption_at_the_high():
    rows = [(20, 10), (30, 10), (30, 20), (25, 20), (25, 200), (20, 200)]
    history = bars_from([ladder(5000, rows)], opens=[5001.25], closes=[5000.0])
    found = patterns(run(AbsorptionDetector, AbsorptionSettings, history))
    assert found["selling_absorption"].direction is Direction.SHORT


# -- delta divergence ----------------------------------------------------------------------------


def rising_bars(last_bid: int, last_ask: int) -> list[dict]:
    bars = [ladder(5000 + k, [(50, 60), (50, 60)]) for k in range(5)]
    bars.append(ladder(5005.25, [(last_bid, last_ask), (last_bid, last_ask)]))  # a new high
    return bars


def test_bearish_divergence_new_high_on_negative_delta():
    history = bars_from(rising_bars(last_bid=80, last_ask=40))
    found = patterns(run(DeltaDivergenceDetector, DeltaDivergenceSettings, history))
    signal = found["bearish_delta_divergence"]
    assert signal.direction is Direction.SHORT and signal.price == Decimal("5005.50")
    assert "delta -80" in signal.reason


def test_no_divergence_when_delta_confirms_the_new_high():
    history = bars_from(rising_bars(last_bid=40, last_ask=80))
    assert not run(DeltaDivergenceDetector, DeltaDivergenceSettings, history)


def test_cumulative_mode_looks_at_cumulative_delta():
    # delta +20 on the new-high bar but cumulative delta below its recent peak
    bars = [ladder(5000 + k, [(10, 200), (10, 200)]) for k in range(4)]
    bars.append(ladder(5004, [(400, 10), (400, 10)]))
    bars.append(ladder(5005.25, [(40, 50), (40, 50)]))
    history = bars_from(bars)
    assert not run(DeltaDivergenceDetector, DeltaDivergenceSettings, history, use="bar")
    found = run(DeltaDivergenceDetector, DeltaDivergenceSettings, history, use="cumulative")
    assert [s.pattern for s in found] == ["bearish_delta_divergence"]


# -- unfinished business -------------------------------------------------------------------------


def test_unfinished_business_when_both_sides_trade_at_the_extreme():
    rows = [(0, 30), (40, 40), (3, 7)]  # low: only asks (finished); high: both (unfinished)
    found = patterns(
        run(UnfinishedBusinessDetector, UnfinishedBusinessSettings, bars_from([ladder(5000, rows)]))
    )
    assert set(found) == {"unfinished_business_high"}
    assert found["unfinished_business_high"].price == Decimal("5000.50")
    assert found["unfinished_business_high"].direction is Direction.LONG
    strict = run(
        UnfinishedBusinessDetector,
        UnfinishedBusinessSettings,
        bars_from([ladder(5000, rows)]),
        min_each=4,
    )
    assert strict == []  # bid 3 at the high < 4


def test_detectors_only_see_the_bar_that_closed():
    bars = rising_bars(last_bid=80, last_ask=40)
    early = bars_from(bars[:-1])
    assert not run(DeltaDivergenceDetector, DeltaDivergenceSettings, early)
    later = bars_from(bars)
    assert len(later) == len(early) + 1
    assert run(DeltaDivergenceDetector, DeltaDivergenceSettings, later)
