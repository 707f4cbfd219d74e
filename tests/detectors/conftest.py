"""Fixtures of the detector tests: a footprint builder and a way to run one detector."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from detectors.footprint_builder import FootprintBuilder

from tradebot_core.footprint import FootprintHistory
from tradebot_core.types import Signal


@pytest.fixture
def footprint() -> FootprintBuilder:
    """Builds ES histories (60 s bars) from ladder specs through the real footprint engine."""
    return FootprintBuilder("ES", 60)


@pytest.fixture
def detect() -> Callable[..., dict[str, Signal]]:
    """``detect(DetectorClass, history, **settings)`` -> ``{pattern: signal}`` of one call,
    checking the contract every signal must meet on the way."""

    def run(cls: Any, history: FootprintHistory, **settings: Any) -> dict[str, Signal]:
        signals = cls(cls.Settings(**settings), None).on_bar_closed(history)
        bar = history.bars[-1]
        for signal in signals:
            assert signal.detector == cls.name
            assert signal.symbol == history.instrument.symbol
            assert signal.bar_ts_ns == int(bar["ts_open"])
            assert 0.0 <= signal.strength <= 1.0
            ticks = history.instrument.to_ticks(history.instrument.to_fixed(signal.price))
            assert int(bar["low"]) <= ticks <= int(bar["high"])
        patterns = {s.pattern: s for s in signals}
        assert len(patterns) == len(signals), "one signal per pattern per bar"
        return patterns

    return run
