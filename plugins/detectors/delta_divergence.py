"""``delta_divergence``: price makes a new extreme that the delta does not confirm.

**Bearish** (-> SHORT): the bar's high is above the highs of the previous ``lookback`` bars while
the order flow disagrees: with ``use: bar`` (default) the bar's delta is negative; with
``use: cumulative`` cumulative delta is below its highest of those bars; ``either`` takes both.
**Bullish** (-> LONG) mirrors it at a new low with positive delta (or cumulative delta above its
lowest). Bars with volume below ``min_volume`` are ignored. Strength: 0.5 + |delta| / volume.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.footprint import FootprintHistory
from tradebot_core.types import Direction, Signal

from ._ladder import Ladder


class DeltaDivergenceSettings(PluginSettings):
    lookback: int = Field(default=5, ge=1)
    use: Literal["bar", "cumulative", "either"] = "bar"
    min_volume: int = Field(default=100, ge=0)


class DeltaDivergenceDetector:
    name = "delta_divergence"
    Settings = DeltaDivergenceSettings

    def __init__(self, settings: DeltaDivergenceSettings, context: PluginContext | None) -> None:
        self.s = settings

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        bars = history.bars
        k = self.s.lookback
        if len(bars) <= k:
            return []
        bar, before = bars[-1], bars[-k - 1 : -1]
        volume, delta, cum = int(bar["volume"]), int(bar["delta"]), int(bar["cum_delta"])
        if volume < self.s.min_volume:
            return []
        ladder = Ladder.last(history)
        strength = 0.5 + abs(delta) / max(volume, 1)
        signals = []
        if bar["high"] > before["high"].max():
            bar_says = delta < 0
            cum_says = cum < before["cum_delta"].max()
            if self._diverges(bar_says, cum_says):
                signals.append(
                    ladder.signal(
                        "bearish_delta_divergence",
                        Direction.SHORT,
                        int(bar["high"]),
                        strength,
                        f"new {k}-bar high {ladder.price(int(bar['high']))} on delta {delta:+d}, "
                        f"cumulative {cum:+d} vs {int(before['cum_delta'].max()):+d}",
                        self.name,
                    )
                )
        if bar["low"] < before["low"].min():
            bar_says = delta > 0
            cum_says = cum > before["cum_delta"].min()
            if self._diverges(bar_says, cum_says):
                signals.append(
                    ladder.signal(
                        "bullish_delta_divergence",
                        Direction.LONG,
                        int(bar["low"]),
                        strength,
                        f"new {k}-bar low {ladder.price(int(bar['low']))} on delta {delta:+d}, "
                        f"cumulative {cum:+d} vs {int(before['cum_delta'].min()):+d}",
                        self.name,
                    )
                )
        return signals

    def _diverges(self, bar_says: bool, cum_says: bool) -> bool:
        if self.s.use == "bar":
            return bar_says
        if self.s.use == "cumulative":
            return cum_says
        return bar_says or cum_says


@hookimpl
def register_detectors(register: Any) -> None:
    register(DeltaDivergenceDetector)
