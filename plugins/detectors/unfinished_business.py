"""``unfinished_business``: an incomplete auction at the bar's extreme.

A finished auction ends with one side only at the extreme (at the high, buyers lifted the last
offer and nobody sold there). **Unfinished business at the high**: both the bid and the ask
volume at the high are at least ``min_each``: the auction is likely to come back and finish
above, so the signal points to the level: unfinished_business_high -> LONG,
unfinished_business_low -> SHORT. Strength: the smaller side against ``5 x min_each``, capped
at 1.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.footprint import FootprintHistory
from tradebot_core.types import Direction, Signal

from ._ladder import Ladder


class UnfinishedBusinessSettings(PluginSettings):
    min_each: int = Field(default=1, ge=1)


class UnfinishedBusinessDetector:
    name = "unfinished_business"
    Settings = UnfinishedBusinessSettings

    def __init__(self, settings: UnfinishedBusinessSettings, context: PluginContext | None) -> None:
        self.s = settings

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        ladder = Ladder.last(history)
        if len(ladder.prices) < 2:
            return []
        signals = []
        for where, index, direction in (("high", -1, Direction.LONG), ("low", 0, Direction.SHORT)):
            bid, ask = int(ladder.bid[index]), int(ladder.ask[index])
            if min(bid, ask) >= self.s.min_each:
                price = ladder.prices[index]
                signals.append(
                    ladder.signal(
                        f"unfinished_business_{where}",
                        direction,
                        price,
                        min(bid, ask) / (5 * self.s.min_each),
                        f"both sides traded at the {where} {ladder.price(price)}: "
                        f"bid {bid} x ask {ask}",
                        self.name,
                    )
                )
        return signals


@hookimpl
def register_detectors(register: Any) -> None:
    register(UnfinishedBusinessDetector)
