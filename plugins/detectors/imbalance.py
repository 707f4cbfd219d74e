"""``imbalance``: buy and sell imbalances, by diagonal comparison.

Rule (as Sierra Chart's Numbers Bars and ATAS compare them): a **buy imbalance** at price P is
``ask volume at P >= ratio x bid volume at P - 1 tick`` with ``ask volume at P >= min_volume``;
a **sell imbalance** at P is ``bid volume at P >= ratio x ask volume at P + 1 tick`` with
``bid volume at P >= min_volume``. A weak side of zero counts (an infinite ratio) unless
``zero_counts: false``. One signal per direction per bar, at the strongest level (highest ratio,
then volume); the reason says how many levels qualified. Strength = ratio / (2 x threshold),
capped at 1 (so exactly at the threshold: 0.5).

buy_imbalance -> LONG (aggressive buyers lifting offers); sell_imbalance -> SHORT.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext
from tradebot_core.footprint import FootprintHistory
from tradebot_core.types import Direction, Signal

from ._ladder import DiagonalSettings, Ladder, diagonal_imbalances


class ImbalanceSettings(DiagonalSettings):
    pass


class ImbalanceDetector:
    name = "imbalance"
    Settings = ImbalanceSettings

    def __init__(self, settings: ImbalanceSettings, context: PluginContext | None) -> None:
        self.s = settings

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        ladder = Ladder.last(history)
        buy, sell = diagonal_imbalances(
            ladder.bid, ladder.ask, self.s.ratio, self.s.min_volume, self.s.zero_counts
        )
        signals = []
        if buy.any():
            signals.append(self._signal(ladder, buy, "buy"))
        if sell.any():
            signals.append(self._signal(ladder, sell, "sell"))
        return signals

    def _signal(self, ladder: Ladder, flags: np.ndarray, side: str) -> Signal:
        index = np.flatnonzero(flags)
        if side == "buy":
            strong, weak = ladder.ask[index], ladder.bid[index - 1]
        else:
            strong, weak = ladder.bid[index], ladder.ask[index + 1]
        ratios = np.where(weak > 0, strong / np.maximum(weak, 1), np.inf)
        best = int(np.lexsort((strong, ratios))[-1])
        level, ratio = int(index[best]), float(ratios[best])
        price = ladder.prices[level]
        shown = "no" if np.isinf(ratio) else f"{ratio:.2f}x"
        if side == "buy":
            reason = (
                f"ask {int(strong[best])} at {ladder.price(price)} vs bid {int(weak[best])} at "
                f"{ladder.price(price - 1)}: {shown}"
            )
        else:
            reason = (
                f"bid {int(strong[best])} at {ladder.price(price)} vs ask {int(weak[best])} at "
                f"{ladder.price(price + 1)}: {shown}"
            )
        if np.isinf(ratio):
            reason = reason.replace(": no", ": opposite side empty")
        reason += f" ({len(index)} level{'s' if len(index) > 1 else ''})"
        return ladder.signal(
            f"{side}_imbalance",
            Direction.LONG if side == "buy" else Direction.SHORT,
            price,
            ratio / (2 * self.s.ratio),
            reason,
            self.name,
        )


@hookimpl
def register_detectors(register: Any) -> None:
    register(ImbalanceDetector)
