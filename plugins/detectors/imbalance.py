"""``imbalance``: buy and sell imbalances in the last closed bar, by diagonal comparison."""

from __future__ import annotations

from typing import Any

from tradebot_core import (
    Detector,
    DiagonalSettings,
    Direction,
    FootprintHistory,
    Ladder,
    PluginContext,
    Signal,
    hookimpl,
    weak_ratio,
)


class ImbalanceSettings(DiagonalSettings):
    """``ratio`` (3.0), ``min_volume`` (10), ``zero_weak_side`` ('imbalance')."""


class ImbalanceDetector(Detector):
    """Buy and sell imbalances, compared diagonally as Sierra Chart (Numbers Bars, "Dominant Side
    Auction"), ATAS (Bid/Ask Imbalance) and Quantower do: a buyer lifts the offer at P while the
    sellers hit the bid one tick lower, so ask at P is weighed against bid at P - 1 tick.

    * **buy_imbalance** (LONG) at P: ``ask[P] >= min_volume`` and
      ``ask[P] >= ratio x bid[P - 1 tick]``.
    * **sell_imbalance** (SHORT) at P: ``bid[P] >= min_volume`` and
      ``bid[P] >= ratio x ask[P + 1 tick]``.
    * A weak side of 0 (``zero_weak_side``): ``imbalance`` (default) counts it, so the level
      needs only ``min_volume``; ``as_one`` compares against 1 contract (the strong side needs
      ``max(min_volume, ratio)``); ``ignore`` never calls it an imbalance (ATAS's "ignore zero
      values").
    * The bar's low has no buy comparison and its high no sell comparison (the diagonal
      neighbour is outside the bar).
    * The ratio is compared exactly (``ratio`` as a fraction): 300 vs 100 at 3.0 fires, 299 not.

    One signal per direction per bar, not one per level: at the strongest level (highest
    ``strong / max(weak, 1)``, then the larger strong side, then the lower price). The reason
    gives its numbers and how many levels qualified. Strength: ``strong / max(weak, 1)`` over
    twice ``ratio``, capped at 1 (0.5 exactly at the threshold).
    """

    name = "imbalance"
    Settings = ImbalanceSettings

    def __init__(self, settings: ImbalanceSettings, context: PluginContext | None = None) -> None:
        self.settings = settings

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        """The last closed bar's strongest buy and sell imbalance, if any."""
        ladder = Ladder.last(history)
        found = ladder.imbalances(self.settings)
        signals = []
        if found.buy:
            signals.append(self._signal(ladder, found.buy, buy=True))
        if found.sell:
            signals.append(self._signal(ladder, found.sell, buy=False))
        return signals

    def _signal(self, ladder: Ladder, levels: list[int], buy: bool) -> Signal:
        bid, ask = ladder.bid.tolist(), ladder.ask.tolist()
        shift = -1 if buy else 1  # the diagonal neighbour: one tick down (buy), up (sell)
        strong, weak = (ask, bid) if buy else (bid, ask)
        best, best_key = levels[0], (-1.0, 0)
        for i in levels:  # the qualifying levels only, usually a handful
            key = (weak_ratio(strong[i], weak[i + shift]), strong[i])
            if key > best_key:  # ties keep the lower price
                best, best_key = i, key
        s, w = strong[best], weak[best + shift]
        ratio = weak_ratio(s, w)
        names = ("ask", "bid") if buy else ("bid", "ask")
        shown = f"{ratio:.2f}x" if w else "weak side empty"
        where, other = ladder.at(best), ladder.at(best + shift)
        reason = f"{names[0]} {s} at {where} vs {names[1]} {w} at {other}: {shown}"
        if len(levels) > 1:
            reason += (
                f"; {len(levels)} levels from {ladder.at(levels[0])} to {ladder.at(levels[-1])}"
            )
        side = "buy" if buy else "sell"
        return ladder.signal(
            f"{side}_imbalance",
            Direction.LONG if buy else Direction.SHORT,
            ladder.low + best,
            ratio / (2 * self.settings.ratio),
            reason,
            self.name,
        )


@hookimpl
def register_detectors(register: Any) -> None:
    """Register the imbalance detector."""
    register(ImbalanceDetector)
