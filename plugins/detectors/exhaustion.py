"""``exhaustion``: the auction runs out of aggressors at the bar's extreme."""

from __future__ import annotations

from itertools import pairwise
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


class ExhaustionSettings(PluginSettings):
    """``levels`` (3), ``max_extreme_volume`` (5), ``extreme_fraction`` (0.1),
    ``min_start_volume`` (10)."""

    levels: int = Field(
        default=3, ge=2, le=50, description="prices at the extreme over which volume must fall"
    )
    max_extreme_volume: int = Field(
        default=5, ge=0, description="the extreme's volume counts as thin at or below this"
    )
    extreme_fraction: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="... or at or below this fraction of the bar's average volume per price",
    )
    min_start_volume: int = Field(
        default=10,
        ge=0,
        description="volume the innermost price of the window needs (there was a push to fade)",
    )


class ExhaustionDetector(Detector):
    """Buying and selling exhaustion: the aggressors' volume thins to (near) nothing into the
    bar's extreme, level by level, as the auction runs out of buyers at the high or of sellers at
    the low (ATAS "exhaustion of buying/selling pressure"; the "exhaustion print" of footprint
    traders).

    * **buying_exhaustion** (SHORT, at the high): over the top ``levels`` prices the ask volume
      strictly falls toward the high, the ask volume ``levels - 1`` prices below the high is at
      least ``min_start_volume``, and the ask volume at the high is at most
      ``max(max_extreme_volume, extreme_fraction x bar volume / prices in the bar)``.
    * **selling_exhaustion** (LONG, at the low): the mirror with the bid volume toward the low.

    The bar must span at least ``levels + 1`` prices (the thinning is at the edge of a larger
    bar, not the whole bar). Thresholds compare exactly (no float rounding). Strength:
    ``1 - extreme / innermost`` volume of the window: 1.0 when nothing traded at the extreme.
    """

    name = "exhaustion"
    Settings = ExhaustionSettings

    def __init__(self, settings: ExhaustionSettings, context: PluginContext | None = None) -> None:
        self.settings = settings
        self._fraction = exact_ratio(settings.extreme_fraction)

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        """Exhaustion at the last closed bar's high and low, if any."""
        ladder = Ladder.last(history)
        k, n = self.settings.levels, ladder.n
        if n < k + 1:
            return []
        signals = []
        top = ladder.ask[n - k :].tolist()[::-1]  # from the high down
        if self._thins(top, ladder):
            signals.append(self._signal(ladder, top, buying=True))
        bottom = ladder.bid[:k].tolist()  # from the low up
        if self._thins(bottom, ladder):
            signals.append(self._signal(ladder, bottom, buying=False))
        return signals

    def _thins(self, window: list[int], ladder: Ladder) -> bool:
        """``window`` runs from the extreme inward: strictly rising inward, thin at the extreme."""
        extreme, inner = window[0], window[-1]
        if inner < self.settings.min_start_volume:
            return False
        if any(a >= b for a, b in pairwise(window)):
            return False
        if extreme <= self.settings.max_extreme_volume:
            return True
        num, den = self._fraction  # extreme <= fraction x total / n, in integers
        return extreme * ladder.n * den <= num * ladder.total_volume

    def _signal(self, ladder: Ladder, window: list[int], buying: bool) -> Signal:
        extreme, inner = window[0], window[-1]
        average = ladder.total_volume / ladder.n
        limit = max(self.settings.max_extreme_volume, self.settings.extreme_fraction * average)
        side, where = ("ask", "high") if buying else ("bid", "low")
        ticks = ladder.high if buying else ladder.low
        steps = " -> ".join(str(v) for v in window[::-1])
        reason = (
            f"{side} volume thins {steps} into the {where} {ladder.price(ticks)} "
            f"(limit {limit:.1f}; average {average:.1f} per price)"
        )
        return ladder.signal(
            "buying_exhaustion" if buying else "selling_exhaustion",
            Direction.SHORT if buying else Direction.LONG,
            ticks,
            1 - extreme / inner,
            reason,
            self.name,
        )


@hookimpl
def register_detectors(register: Any) -> None:
    """Register the exhaustion detector."""
    register(ExhaustionDetector)
