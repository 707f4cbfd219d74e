"""``absorption``: heavy aggression at a bar's extreme that fails to move price further."""

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
    exact_ratio,
    hookimpl,
)


class AbsorptionSettings(PluginSettings):
    """``zone_levels`` (2), ``heavy_ratio`` (3.0), ``min_volume`` (100), ``close_away`` (0.5)."""

    zone_levels: int = Field(
        default=2, ge=1, le=50, description="prices at the extreme that make the zone"
    )
    heavy_ratio: float = Field(
        default=3.0,
        ge=1.0,
        le=1000.0,
        description="zone volume per price >= this x the rest of the bar's, same side",
    )
    min_volume: int = Field(
        default=100, ge=1, description="aggressive contracts the zone needs at least"
    )
    close_away: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="the close is at least this share of the bar's range away from the zone",
    )


class AbsorptionDetector(Detector):
    """Absorption: aggressive orders hit one extreme of the bar in disproportionate size, passive
    orders took them all, and price could not go further: the bar closed away from that extreme
    (MarketDelta: "disproportionate volume near the extreme of a bar with little to no price
    movement beyond that level").

    Named after the passive side that absorbed, which is also the trade it suggests:

    * **buying_absorption** (LONG, at the low): in the bottom ``zone_levels`` prices
      (the zone), the bid volume (aggressive sellers) is at least ``min_volume``, exceeds the
      zone's ask volume, and per price is at least ``heavy_ratio`` x the bid volume per price of
      the rest of the bar; and the bar closes in its upper part:
      ``close - low >= close_away x (high - low)``.
    * **selling_absorption** (SHORT, at the high): the mirror: heavy ask volume (aggressive
      buyers) in the top zone, ``high - close >= close_away x (high - low)``.

    (MarketDelta names the same pictures after the aggressor: their "selling absorption" is our
    buying_absorption.) The bar must span at least ``zone_levels + 2`` prices. Thresholds compare
    exactly. Strength: the zone's per-price volume over the rest's (the rest floored at 1
    contract per price), over twice ``heavy_ratio``, capped at 1: 0.5 at the threshold.
    """

    name = "absorption"
    Settings = AbsorptionSettings

    def __init__(self, settings: AbsorptionSettings, context: PluginContext | None = None) -> None:
        self.settings = settings
        self._heavy = exact_ratio(settings.heavy_ratio)
        self._away = exact_ratio(settings.close_away)

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        """Absorption at the last closed bar's low and high, if any."""
        ladder = Ladder.last(history)
        z, n = self.settings.zone_levels, ladder.n
        if n < z + 2:
            return []
        span = ladder.high - ladder.low
        num, den = self._away
        signals = []
        bid, ask = ladder.bid.tolist(), ladder.ask.tolist()
        if (ladder.close - ladder.low) * den >= num * span:
            sold, bought = sum(bid[:z]), sum(ask[:z])
            if self._heavy_zone(sold, bought, ladder.bid_total - sold, n):
                signals.append(self._signal(ladder, sold, ladder.bid_total - sold, buying=True))
        if (ladder.high - ladder.close) * den >= num * span:
            bought, sold = sum(ask[n - z :]), sum(bid[n - z :])
            if self._heavy_zone(bought, sold, ladder.ask_total - bought, n):
                signals.append(
                    self._signal(ladder, bought, ladder.ask_total - bought, buying=False)
                )
        return signals

    def _heavy_zone(self, aggressive: int, other_side: int, rest: int, n: int) -> bool:
        """``aggressive`` / z >= heavy_ratio x ``rest`` / (n - z), in integers."""
        z = self.settings.zone_levels
        if aggressive < self.settings.min_volume or aggressive <= other_side:
            return False
        num, den = self._heavy
        return aggressive * (n - z) * den >= num * rest * z

    def _signal(self, ladder: Ladder, zone: int, rest: int, buying: bool) -> Signal:
        z, n = self.settings.zone_levels, ladder.n
        per_zone, per_rest = zone / z, rest / (n - z)
        ratio = per_zone / max(per_rest, 1.0)
        span = ladder.high - ladder.low
        if buying:
            edge, far = ladder.low, ladder.low + z - 1
            what, where = "sold into", (ladder.close - ladder.low) / span
        else:
            edge, far = ladder.high, ladder.high - z + 1
            what, where = "bought into", (ladder.high - ladder.close) / span
        reason = (
            f"{zone} {what} {ladder.price(min(edge, far))}-{ladder.price(max(edge, far))} "
            f"({per_zone:.1f} per price vs {per_rest:.1f} in the rest of the bar: {ratio:.1f}x), "
            f"close {ladder.price(ladder.close)} {where:.0%} of the range away"
        )
        return ladder.signal(
            "buying_absorption" if buying else "selling_absorption",
            Direction.LONG if buying else Direction.SHORT,
            edge,
            ratio / (2 * self.settings.heavy_ratio),
            reason,
            self.name,
        )


@hookimpl
def register_detectors(register: Any) -> None:
    """Register the absorption detector."""
    register(AbsorptionDetector)
