"""``absorption``: heavy aggression at an extreme that fails to move price.

**Buying absorption** (-> LONG): in the bottom ``zone_levels`` prices of the bar, the bid volume
(aggressive sellers) is at least ``heavy_ratio`` x the bar's average bid volume per level and at
least ``min_volume``, sellers outweigh buyers there, and the bar closes in its upper part
(``close - low >= close_away x (high - low)``): passive buyers absorbed the selling.
**Selling absorption** (-> SHORT) mirrors it: heavy ask volume in the top zone, close in the
lower part. The bar must span at least ``zone_levels + 2`` prices. Strength: the zone's volume
against the heavy threshold, halved and capped at 1.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.footprint import FootprintHistory
from tradebot_core.types import Direction, Signal

from ._ladder import Ladder


class AbsorptionSettings(PluginSettings):
    zone_levels: int = Field(default=2, ge=1)
    heavy_ratio: float = Field(default=3.0, ge=1)
    min_volume: int = Field(default=100, ge=1)
    close_away: float = Field(default=0.5, gt=0, le=1)


class AbsorptionDetector:
    name = "absorption"
    Settings = AbsorptionSettings

    def __init__(self, settings: AbsorptionSettings, context: PluginContext | None) -> None:
        self.s = settings

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        ladder = Ladder.last(history)
        z, n = self.s.zone_levels, len(ladder.prices)
        if n < z + 2:
            return []
        bar = ladder.bar
        span = int(bar["high"] - bar["low"])
        signals = []
        sold = int(ladder.bid[:z].sum())
        heavy = self.s.heavy_ratio * ladder.bid.mean()
        if (
            sold >= max(heavy, self.s.min_volume)
            and sold > ladder.ask[:z].sum()
            and bar["close"] - bar["low"] >= self.s.close_away * span
        ):
            signals.append(
                ladder.signal(
                    "buying_absorption",
                    Direction.LONG,
                    ladder.prices[0],
                    0.5 * sold / max(heavy, 1),
                    f"{sold} sold into the low {ladder.price(ladder.prices[0])} "
                    f"({sold / max(ladder.bid.mean(), 1):.1f}x the average level), "
                    f"close {ladder.price(int(bar['close']))} held above",
                    self.name,
                )
            )
        bought = int(ladder.ask[-z:].sum())
        heavy = self.s.heavy_ratio * ladder.ask.mean()
        if (
            bought >= max(heavy, self.s.min_volume)
            and bought > ladder.bid[-z:].sum()
            and bar["high"] - bar["close"] >= self.s.close_away * span
        ):
            signals.append(
                ladder.signal(
                    "selling_absorption",
                    Direction.SHORT,
                    ladder.prices[-1],
                    0.5 * bought / max(heavy, 1),
                    f"{bought} bought into the high {ladder.price(ladder.prices[-1])} "
                    f"({bought / max(ladder.ask.mean(), 1):.1f}x the average level), "
                    f"close {ladder.price(int(bar['close']))} held below",
                    self.name,
                )
            )
        return signals


@hookimpl
def register_detectors(register: Any) -> None:
    register(AbsorptionDetector)
