"""``delta_divergence``: price makes a new extreme that the order flow does not confirm."""

from __future__ import annotations

from typing import Any, Literal

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


class DeltaDivergenceSettings(PluginSettings):
    """``lookback`` (5), ``use`` ('bar'), ``min_volume`` (100)."""

    lookback: int = Field(
        default=5, ge=1, le=500, description="earlier closed bars the new extreme must exceed"
    )
    use: Literal["bar", "cumulative", "either"] = Field(
        default="bar",
        description="'bar': the bar's delta disagrees; 'cumulative': cumulative delta does; "
        "'either': one of the two",
    )
    min_volume: int = Field(default=100, ge=0, description="bars with less volume are ignored")


class DeltaDivergenceDetector(Detector):
    """Delta divergence: the last closed bar makes a new high (low) over the ``lookback`` bars
    before it, but the aggressors do not confirm it.

    * **bearish_delta_divergence** (SHORT, at the bar's high): ``high > max(high of the previous
      lookback bars)`` and, with ``use: bar`` (default), the bar's delta is negative; with
      ``use: cumulative``, the bar's cumulative delta is below the highest cumulative delta of
      those bars (it made no new high with price); ``use: either`` takes either.
    * **bullish_delta_divergence** (LONG, at the bar's low): ``low < min(low of the previous
      lookback bars)`` and the bar's delta is positive / its cumulative delta is above the lowest
      of those bars.

    Needs ``lookback`` earlier bars; bars with volume below ``min_volume`` are skipped.
    Cumulative delta is the footprint engine's (reset each session). Strength:
    ``0.5 + 0.5 x gap / volume``, capped at 1, where gap is how far the flow disagrees: the
    delta against the move (bar) or the shortfall of cumulative delta from its extreme
    (cumulative), the larger of those that fired.
    """

    name = "delta_divergence"
    Settings = DeltaDivergenceSettings

    def __init__(
        self, settings: DeltaDivergenceSettings, context: PluginContext | None = None
    ) -> None:
        self.settings = settings

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        """A divergence at the last closed bar's new high or new low, if any."""
        k = self.settings.lookback
        if len(history) <= k:
            return []
        ladder = Ladder.last(history)
        volume = ladder.total_volume
        if volume < self.settings.min_volume or volume == 0:
            return []
        before = history.bars[-k - 1 : -1]
        highs, lows = before["high"].tolist(), before["low"].tolist()
        signals = []
        if ladder.high > max(highs):
            peak = max(before["cum_delta"].tolist())
            gap = self._gap(-ladder.delta, peak - ladder.cum_delta)
            if gap is not None:
                signals.append(self._signal(ladder, gap, peak, max(highs), bearish=True))
        if ladder.low < min(lows):
            trough = min(before["cum_delta"].tolist())
            gap = self._gap(ladder.delta, ladder.cum_delta - trough)
            if gap is not None:
                signals.append(self._signal(ladder, gap, trough, min(lows), bearish=False))
        return signals

    def _gap(self, against: int, shortfall: int) -> int | None:
        """How far the flow disagrees, or None when it does not (under ``use``)."""
        use = self.settings.use
        fired = []
        if use in ("bar", "either") and against > 0:
            fired.append(against)
        if use in ("cumulative", "either") and shortfall > 0:
            fired.append(shortfall)
        return max(fired) if fired else None

    def _signal(
        self, ladder: Ladder, gap: int, cum_extreme: int, old_extreme: int, bearish: bool
    ) -> Signal:
        k = self.settings.lookback
        word, ticks = ("high", ladder.high) if bearish else ("low", ladder.low)
        best = "highest" if bearish else "lowest"
        reason = (
            f"new {k}-bar {word} {ladder.price(ticks)} (previous {ladder.price(old_extreme)}) "
            f"on delta {ladder.delta:+d} of {ladder.total_volume}; cumulative delta "
            f"{ladder.cum_delta:+d} vs {best} {cum_extreme:+d} in the {k} bars before"
        )
        return ladder.signal(
            "bearish_delta_divergence" if bearish else "bullish_delta_divergence",
            Direction.SHORT if bearish else Direction.LONG,
            ticks,
            0.5 + 0.5 * gap / ladder.total_volume,
            reason,
            self.name,
        )


@hookimpl
def register_detectors(register: Any) -> None:
    """Register the delta divergence detector."""
    register(DeltaDivergenceDetector)
