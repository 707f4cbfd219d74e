"""``stacked_imbalance``: ``levels`` (3) or more consecutive prices with same-side imbalances.

Imbalances as in :mod:`plugins.detectors.imbalance` (diagonal, ``ratio``, ``min_volume``). A stack
of buy imbalances is support buyers defended level after level: stacked_buy_imbalance -> LONG,
at the bottom of the stack; stacked_sell_imbalance -> SHORT, at its top. The longest stack per
side counts. Strength: 0.5 at exactly ``levels``, 1.0 at twice as many.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext
from tradebot_core.footprint import FootprintHistory
from tradebot_core.types import Direction, Signal

from ._ladder import DiagonalSettings, Ladder, diagonal_imbalances, longest_run


class StackedImbalanceSettings(DiagonalSettings):
    levels: int = Field(default=3, ge=2)


class StackedImbalanceDetector:
    name = "stacked_imbalance"
    Settings = StackedImbalanceSettings

    def __init__(self, settings: StackedImbalanceSettings, context: PluginContext | None) -> None:
        self.s = settings

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        ladder = Ladder.last(history)
        buy, sell = diagonal_imbalances(
            ladder.bid, ladder.ask, self.s.ratio, self.s.min_volume, self.s.zero_counts
        )
        signals = []
        for side, flags in (("buy", buy), ("sell", sell)):
            length, start = longest_run(flags)
            if length < self.s.levels:
                continue
            low, high = ladder.prices[start], ladder.prices[start + length - 1]
            price = low if side == "buy" else high
            signals.append(
                ladder.signal(
                    f"stacked_{side}_imbalance",
                    Direction.LONG if side == "buy" else Direction.SHORT,
                    price,
                    0.5 + 0.5 * (length - self.s.levels) / self.s.levels,
                    f"{length} stacked {side} imbalances from {ladder.price(low)} to "
                    f"{ladder.price(high)}",
                    self.name,
                )
            )
        return signals


@hookimpl
def register_detectors(register: Any) -> None:
    register(StackedImbalanceDetector)
