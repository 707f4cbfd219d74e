"""The ``adx`` regime classifier: ADX(14), ATR(14), EMA(9/21), session VWAP, market structure.

Per closed bar, in this order (the first rule that holds wins):

1. **NO_TRADE** in the first and last ``edge_minutes`` of the session (``session_start``-
   ``session_end``, exchange time), inside a configured news window, while the indicators warm
   up (ADX needs ``2 x adx_period`` bars), or when the bar's volume is below
   ``low_volume_fraction`` of the median of the last 20 bars (the reason says which).
2. **VOLATILE** when ATR is above the ``volatile_percentile`` of its own last
   ``volatile_window`` values.
3. **TRENDING_UP** when ADX > ``trend_adx`` and +DI > -DI, EMA fast > EMA slow, and the market
   structure over the last ``structure_lookback`` bars is not down; **TRENDING_DOWN** mirrored.
4. **RANGING** otherwise (ADX below the threshold, or a strong ADX whose direction the EMAs and
   structure do not confirm).

Confidence (0-1) = half *agreement* (the share of the last 5 bars classified the same way) plus
half *strength*: ``(ADX - trend_adx) / trend_adx`` for trends, ``(trend_adx - ADX) / trend_adx``
for ranges, ``(ATR / percentile - 1) x 4`` for volatility, each clipped to 0-1; NO_TRADE is 1.

Indicators are kept as streaming states: each bar costs O(1), whatever the history length.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, insort
from collections import deque
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import Field, field_validator

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.footprint import FootprintHistory
from tradebot_core.indicators import (
    AdxState,
    AtrState,
    EmaState,
    VwapState,
    percentile,
    structure_of,
)
from tradebot_core.types import Regime, RegimeState


class AdxRegimeSettings(PluginSettings):
    adx_period: int = Field(default=14, ge=2)
    atr_period: int = Field(default=14, ge=2)
    ema_fast: int = Field(default=9, ge=1)
    ema_slow: int = Field(default=21, ge=2)
    structure_lookback: int = Field(default=5, ge=2)
    trend_adx: float = Field(default=25.0, gt=0, le=100)
    volatile_percentile: float = Field(default=90.0, gt=0, lt=100)
    volatile_window: int = Field(default=100, ge=10)
    session_start: time = time(9, 30)
    session_end: time = time(16, 0)
    edge_minutes: int = Field(default=10, ge=0)
    news_windows: list[str] = Field(default_factory=list)
    """Exchange-time windows with no trading, e.g. ["08:29-08:35", "13:59-14:05"]."""
    low_volume_fraction: float = Field(default=0.2, ge=0, lt=1)
    timezone: str = "America/New_York"

    @field_validator("news_windows")
    @classmethod
    def _windows(cls, windows: list[str]) -> list[str]:
        for window in windows:
            _parse_window(window)
        return windows


def _parse_window(text: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"{text!r} is not a window like '08:29-08:35'") from None
    return start, end


class AdxRegimeClassifier:
    name = "adx"
    Settings = AdxRegimeSettings

    def __init__(self, settings: AdxRegimeSettings, context: PluginContext) -> None:
        self.s = settings
        self.tz = ZoneInfo(settings.timezone)
        self.adx = AdxState(settings.adx_period)
        self.atr = AtrState(settings.atr_period)
        self.fast = EmaState(settings.ema_fast)
        self.slow = EmaState(settings.ema_slow)
        self.vwap = VwapState()
        self.atr_window: deque[float] = deque(maxlen=settings.volatile_window)
        self.atr_sorted: list[float] = []  # the same values, kept sorted for the percentile
        self.volumes: deque[int] = deque(maxlen=20)
        self.recent: deque[Regime] = deque(maxlen=5)
        self.news = [_parse_window(w) for w in settings.news_windows]
        self._seen = 0

    def classify(self, history: FootprintHistory) -> RegimeState:
        bars = history.bars
        for index in range(self._seen, len(bars)):  # only the bars not seen yet
            self._update(bars[index])
        self._seen = len(bars)
        bar = bars[-1]
        tick = float(history.instrument.tick_size)
        structure = self._structure(bars)
        regime, strength, reason = self._raw(bars, structure)
        self.recent.append(regime)
        agreement = sum(r is regime for r in self.recent) / len(self.recent)
        confidence = 1.0 if regime is Regime.NO_TRADE else 0.5 * agreement + 0.5 * strength
        return RegimeState(
            regime=regime,
            confidence=round(min(1.0, max(0.0, confidence)), 4),
            bar_ts_ns=int(bar["ts_open"]),
            indicators={
                "adx": self.adx.adx,
                "plus_di": self.adx.plus_di,
                "minus_di": self.adx.minus_di,
                "atr": self.atr.value * tick,
                "ema_fast": self.fast.value * tick,
                "ema_slow": self.slow.value * tick,
                "vwap": self.vwap.value * tick,
                "structure": float(structure),
            },
            reason=reason,
        )

    def _update(self, bar: np.void) -> None:
        high, low, close = float(bar["high"]), float(bar["low"]), float(bar["close"])
        self.adx.update(high, low, close)
        atr = self.atr.update(high, low, close)
        if atr == atr:  # not NaN
            if len(self.atr_window) == self.atr_window.maxlen:
                del self.atr_sorted[bisect_left(self.atr_sorted, self.atr_window[0])]
            self.atr_window.append(atr)
            insort(self.atr_sorted, atr)
        self.fast.update(close)
        self.slow.update(close)
        session = (self._local(int(bar["ts_open"])) + timedelta(hours=6)).date()
        self.vwap.update(float(bar["pv"]), float(bar["volume"]), session)
        self.volumes.append(int(bar["volume"]))

    def _local(self, ts_ns: int) -> datetime:
        return datetime.fromtimestamp(ts_ns / 1e9, UTC).astimezone(self.tz)

    def _structure(self, bars: np.ndarray) -> int:
        lookback = self.s.structure_lookback
        if len(bars) < lookback:
            return 0
        recent = bars[-lookback:]
        return structure_of(recent["high"].tolist(), recent["low"].tolist())

    def _raw(self, bars: np.ndarray, structure: int) -> tuple[Regime, float, str]:
        bar = bars[-1]
        adx = self.adx.adx
        edge = self._edge(int(bar["ts_open"]), int(bar["ts_close"]))
        if edge:
            return Regime.NO_TRADE, 1.0, edge
        if adx != adx or self.fast.value != self.fast.value or self.slow.value != self.slow.value:
            return Regime.NO_TRADE, 1.0, "indicators warming up"
        if len(self.volumes) >= 10:
            median = float(statistics.median(self.volumes))
            if bar["volume"] < self.s.low_volume_fraction * median:
                return Regime.NO_TRADE, 1.0, f"low volume: {bar['volume']} vs median {median:.0f}"
        if len(self.atr_window) >= self.atr_window.maxlen // 2:
            threshold = percentile(self.atr_sorted, self.s.volatile_percentile)
            if threshold > 0 and self.atr.value > threshold:
                strength = min(1.0, (self.atr.value / threshold - 1) * 4)
                return Regime.VOLATILE, strength, f"ATR above its p{self.s.volatile_percentile:g}"
        trend = self.s.trend_adx
        if adx > trend:
            strength = min(1.0, (adx - trend) / trend)
            up = self.adx.plus_di > self.adx.minus_di and self.fast.value > self.slow.value
            down = self.adx.minus_di > self.adx.plus_di and self.fast.value < self.slow.value
            if up and structure >= 0:
                return Regime.TRENDING_UP, strength, f"ADX {adx:.1f}, +DI leads, EMA9 > EMA21"
            if down and structure <= 0:
                return Regime.TRENDING_DOWN, strength, f"ADX {adx:.1f}, -DI leads, EMA9 < EMA21"
            return Regime.RANGING, 0.0, f"ADX {adx:.1f} but direction unconfirmed"
        return Regime.RANGING, min(1.0, (trend - adx) / trend), f"ADX {adx:.1f} < {trend:g}"

    def _edge(self, ts_open: int, ts_close: int) -> str:
        start, end = self._local(ts_open), self._local(ts_close)
        day = start.date()
        open_ = datetime.combine(day, self.s.session_start, self.tz)
        close = datetime.combine(day, self.s.session_end, self.tz)
        edge = timedelta(minutes=self.s.edge_minutes)
        if open_ <= start < open_ + edge:
            return "session open"
        if close - edge < end <= close:
            return "session close"
        for first, last in self.news:
            if first <= end.time() and start.time() <= last:
                return f"news window {first:%H:%M}-{last:%H:%M}"
        return ""


@hookimpl
def register_regime_classifiers(register: Any) -> None:
    register(AdxRegimeClassifier)
