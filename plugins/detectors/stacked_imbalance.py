"""``stacked_imbalance``: several consecutive prices with same-side diagonal imbalances."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tradebot_core import (
    Detector,
    DiagonalSettings,
    Direction,
    FootprintHistory,
    Ladder,
    PluginContext,
    Signal,
    hookimpl,
    runs,
)


class StackedImbalanceSettings(DiagonalSettings):
    """``levels`` (3) plus the diagonal rule's ``ratio``, ``min_volume``, ``zero_weak_side``."""

    levels: int = Field(
        default=3, ge=2, le=100, description="consecutive imbalanced prices that make a stack"
    )


class StackedImbalanceDetector(Detector):
    """Stacked imbalances (ATAS "Imbalance Range", Quantower "Stacked Imbalances"): ``levels``
    (3) or more consecutive prices of the last closed bar each holding a diagonal imbalance of
    the same side, by the rule of :class:`~tradebot_plugins.detectors.imbalance.ImbalanceDetector`
    (``ratio``, ``min_volume``, ``zero_weak_side``).

    * **stacked_buy_imbalance** (LONG): buyers lifted offers price after price; the bottom of
      the stack is where they started, support on a retest: the signal's price.
    * **stacked_sell_imbalance** (SHORT): the mirror; the top of the stack is the signal's price.

    One signal per side per bar, for its longest stack (ties: the lower stack); the reason gives
    the range and how many stacks the bar held. Strength: 0.5 at exactly ``levels``, rising by
    0.5 / ``levels`` per extra level, capped at 1 (1.0 at twice ``levels``).
    """

    name = "stacked_imbalance"
    Settings = StackedImbalanceSettings

    def __init__(
        self, settings: StackedImbalanceSettings, context: PluginContext | None = None
    ) -> None:
        self.settings = settings

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        """The last closed bar's longest buy and sell stacks of at least ``levels`` prices."""
        ladder = Ladder.last(history)
        need = self.settings.levels
        if ladder.n < need + 1:  # a stack of k imbalances needs k + 1 prices
            return []
        found = ladder.imbalances(self.settings)
        signals = []
        for buy, levels in ((True, found.buy), (False, found.sell)):
            if len(levels) < need:
                continue
            stacks = [run for run in runs(levels) if run[1] >= need]
            if not stacks:
                continue
            first, length = max(stacks, key=lambda run: (run[1], -run[0]))
            bottom, top = ladder.at(first), ladder.at(first + length - 1)
            side = "buy" if buy else "sell"
            reason = f"{length} stacked {side} imbalances from {bottom} to {top}"
            if len(stacks) > 1:
                reason += f" ({len(stacks)} stacks in the bar)"
            signals.append(
                ladder.signal(
                    f"stacked_{side}_imbalance",
                    Direction.LONG if buy else Direction.SHORT,
                    ladder.low + (first if buy else first + length - 1),
                    0.5 + 0.5 * (length - need) / need,
                    reason,
                    self.name,
                )
            )
        return signals


@hookimpl
def register_detectors(register: Any) -> None:
    """Register the stacked imbalance detector."""
    register(StackedImbalanceDetector)
