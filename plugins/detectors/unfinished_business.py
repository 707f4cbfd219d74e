"""``unfinished_business``: an incomplete auction at the bar's extreme."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tradebot_core import (
    Detector,
    Direction,
    FootprintHistory,
    Ladder,
    PluginContext,
    PluginSettings,
    Signal,
    hookimpl,
)


class UnfinishedBusinessSettings(PluginSettings):
    """``min_each`` (1)."""

    min_each: int = Field(default=1, ge=1, description="contracts each side needs at the extreme")


class UnfinishedBusinessDetector(Detector):
    """Unfinished business, or unfinished auction (MarketDelta, Quantower): both aggressive
    buyers and aggressive sellers traded at the bar's extreme. A finished auction ends one-sided:
    at the high the last buyer lifts the last offer and no seller hits a bid there. With both
    sides at the extreme the auction in that direction is incomplete, and price tends to return
    to the level (footprint traders' rule of thumb: within about 30 minutes).

    * **unfinished_business_high** (LONG, at the high): ``bid[high] >= min_each`` and
      ``ask[high] >= min_each``.
    * **unfinished_business_low** (SHORT, at the low): the same at the low.

    The direction points toward the level, which price is expected to revisit: the high lies
    above the close (LONG), the low below it (SHORT). A one-price bar has no distinct extreme and
    never fires. Strength: how two-sided the extreme was, ``min(bid, ask) / max(bid, ask)``.
    """

    name = "unfinished_business"
    Settings = UnfinishedBusinessSettings

    def __init__(
        self, settings: UnfinishedBusinessSettings, context: PluginContext | None = None
    ) -> None:
        self.settings = settings

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        """Unfinished business at the last closed bar's high and low, if any."""
        ladder = Ladder.last(history)
        n = ladder.n
        if n < 2:
            return []
        signals = []
        need = self.settings.min_each
        for where, index, direction in (
            ("high", n - 1, Direction.LONG),
            ("low", 0, Direction.SHORT),
        ):
            bid, ask = int(ladder.bid[index]), int(ladder.ask[index])
            if bid >= need and ask >= need:
                ticks = ladder.low + index
                signals.append(
                    ladder.signal(
                        f"unfinished_business_{where}",
                        direction,
                        ticks,
                        min(bid, ask) / max(bid, ask),
                        f"both sides traded at the {where} {ladder.price(ticks)}: "
                        f"bid {bid} x ask {ask}",
                        self.name,
                    )
                )
        return signals


@hookimpl
def register_detectors(register: Any) -> None:
    """Register the unfinished business detector."""
    register(UnfinishedBusinessDetector)
