"""``exhaustion``: the auction runs out of participants at the bar's extreme.

**Buying exhaustion** (-> SHORT): the ask volume thins toward the high: over the top ``levels``
prices the ask volume strictly falls, and at the high it is at most ``max(max_extreme_volume,
extreme_fraction x average volume per level)``. Buyers stopped lifting offers at the top.
**Selling exhaustion** (-> LONG) mirrors it with the bid volume toward the low.
The bar must span at least ``levels + 1`` prices. Strength: how far the volume fell, 1 - (volume
at the extreme / volume ``levels - 1`` prices inside it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.footprint import FootprintHistory
from tradebot_core.types import Direction, Signal

from ._ladder import Ladder


class ExhaustionSettings(PluginSettings):
    levels: int = Field(default=3, ge=2)
    max_extreme_volume: int = Field(default=5, ge=0)
    extreme_fraction: float = Field(default=0.1, ge=0, le=1)


class ExhaustionDetector:
    name = "exhaustion"
    Settings = ExhaustionSettings

    def __init__(self, settings: ExhaustionSettings, context: PluginContext | None) -> None:
        self.s = settings

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        ladder = Ladder.last(history)
        k = self.s.levels
        if len(ladder.prices) < k + 1:
            return []
        limit = max(self.s.max_extreme_volume, self.s.extreme_fraction * ladder.volume.mean())
        signals = []
        top = ladder.ask[-k:]  # low to high, ending at the high
        if np.all(np.diff(top) < 0) and top[-1] <= limit:
            signals.append(
                ladder.signal(
                    "buying_exhaustion",
                    Direction.SHORT,
                    ladder.prices[-1],
                    1 - top[-1] / top[0],
                    f"ask volume thins to {int(top[-1])} at the high "
                    f"{ladder.price(ladder.prices[-1])} "
                    f"({', '.join(str(int(v)) for v in top[::-1])} from the top down)",
                    self.name,
                )
            )
        bottom = ladder.bid[:k]  # from the low up
        if np.all(np.diff(bottom) > 0) and bottom[0] <= limit:
            signals.append(
                ladder.signal(
                    "selling_exhaustion",
                    Direction.LONG,
                    ladder.prices[0],
                    1 - bottom[0] / bottom[-1],
                    f"bid volume thins to {int(bottom[0])} at the low "
                    f"{ladder.price(ladder.prices[0])} "
                    f"({', '.join(str(int(v)) for v in bottom)} from the low up)",
                    self.name,
                )
            )
        return signals


@hookimpl
def register_detectors(register: Any) -> None:
    register(ExhaustionDetector)
