"""What every built-in detector promises: its registration, its settings, and that it decides on
closed bars only."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

import numpy as np
import pytest
from detectors.footprint_builder import ladder
from pydantic import ValidationError

from tradebot_core.components import Detector, PluginSettings

MODULES = (
    "imbalance",
    "stacked_imbalance",
    "exhaustion",
    "absorption",
    "delta_divergence",
    "unfinished_business",
)
LOOSE = {
    "imbalance": {"min_volume": 1},
    "stacked_imbalance": {"min_volume": 1, "ratio": 2.0, "levels": 2},
    "exhaustion": {"levels": 2, "min_start_volume": 1},
    "absorption": {"zone_levels": 1, "heavy_ratio": 1.5, "min_volume": 5},
    "delta_divergence": {"lookback": 2, "min_volume": 0, "use": "either"},
    "unfinished_business": {},
}


def registered(module_name: str) -> list[type]:
    module = importlib.import_module(f"tradebot_plugins.detectors.{module_name}")
    found: list[type] = []
    module.register_detectors(found.append)
    return found


@pytest.mark.parametrize("module_name", MODULES)
def test_each_module_registers_one_detector_named_after_it(module_name):
    (cls,) = registered(module_name)
    assert cls.name == module_name
    assert issubclass(cls.Settings, PluginSettings)
    assert isinstance(cls(cls.Settings(), None), Detector)
    assert cls.__doc__ and "LONG" in cls.__doc__ and "SHORT" in cls.__doc__


def test_the_entry_points_lead_to_these_modules():
    declared = {ep.name: ep.value for ep in entry_points(group="tradebot")}
    for name in MODULES:
        assert declared[name] == f"tradebot_plugins.detectors.{name}"


@pytest.mark.parametrize(
    ("module_name", "bad"),
    [
        ("imbalance", {"ratio": 0.99}),
        ("imbalance", {"min_volume": 0}),
        ("imbalance", {"zero_weak_side": "maybe"}),
        ("imbalance", {"ratoi": 3.0}),  # a misspelt key is an error, not a default
        ("stacked_imbalance", {"levels": 1}),
        ("exhaustion", {"levels": 1}),
        ("exhaustion", {"extreme_fraction": 1.5}),
        ("absorption", {"heavy_ratio": 0.5}),
        ("absorption", {"close_away": 0}),
        ("delta_divergence", {"lookback": 0}),
        ("delta_divergence", {"use": "sometimes"}),
        ("unfinished_business", {"min_each": 0}),
    ],
)
def test_settings_are_strict(module_name, bad):
    (cls,) = registered(module_name)
    with pytest.raises(ValidationError):
        cls.Settings(**bad)


def random_bars(seed: int, count: int) -> list:
    """Bars of 2 to 9 prices drifting up and down, with lopsided volumes: every pattern fires."""
    rng = np.random.default_rng(seed)
    bars, low = [], 20000  # in ticks
    for _ in range(count):
        n = int(rng.integers(2, 10))
        low += int(rng.integers(-4, 5))
        rows = [
            (int(rng.choice([0, 1, 3, 20, 80])), int(rng.choice([0, 2, 5, 25, 90])))
            for _ in range(n)
        ]
        rows = [(b, a) if b or a else (1, 0) for b, a in rows]
        close_level = int(rng.integers(0, n))
        low_price = low * 0.25
        bars.append(ladder(low_price, rows, close=low_price + 0.25 * close_level))
    return bars


def detectors() -> list:
    return [cls(cls.Settings(**LOOSE[name]), None) for name in MODULES for cls in registered(name)]


def test_signals_depend_only_on_closed_bars(footprint):
    """Streamed with every trade already in the engine, each call decides exactly as it would
    on a history that ends with that bar; and what it returned does not change afterwards."""
    bars = random_bars(seed=11, count=40)
    streamed = []
    for history in footprint.histories(*bars):
        streamed.append([s for d in detectors() for s in d.on_bar_closed(history)])
    kept = [list(signals) for signals in streamed]
    patterns = set()
    for k in range(len(bars)):
        alone = footprint.history(*bars[: k + 1])  # no later trade exists at all
        assert [s for d in detectors() for s in d.on_bar_closed(alone)] == streamed[k]
        patterns |= {s.pattern for s in streamed[k]}
    assert streamed == kept
    assert len(patterns) >= 10, patterns  # the comparison covered (nearly) every pattern


def test_a_later_bar_does_not_change_an_earlier_call(footprint):
    bars = random_bars(seed=5, count=12)
    histories = footprint.histories(*bars)
    for _ in range(len(bars) - 1):
        history = next(histories)
    before = {d.name: d.on_bar_closed(history) for d in detectors()}
    ts_open = int(history.bars[-1]["ts_open"])
    next(histories)  # the same history object now holds one more closed bar
    for signals in before.values():
        assert all(s.bar_ts_ns == ts_open for s in signals)
    assert before == {d.name: d.on_bar_closed(footprint.history(*bars[:-1])) for d in detectors()}


def test_alternating_histories_never_share_a_bar(footprint, detect):
    from tradebot_plugins.detectors.imbalance import ImbalanceDetector

    buying = footprint.history(ladder(5000, [(10, 10), (10, 90), (10, 10)]))
    selling = footprint.history(ladder(5000, [(10, 10), (90, 10), (10, 10)]))
    assert len(buying) == len(selling)
    for _ in range(2):
        assert set(detect(ImbalanceDetector, buying)) == {"buy_imbalance"}
        assert set(detect(ImbalanceDetector, selling)) == {"sell_imbalance"}
