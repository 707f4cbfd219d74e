"""The ``adx`` regime classifier: ADX/DI(14), ATR(14), EMA(9/21), session VWAP, market structure.

Each closed bar is classified by the first rule that holds:

1. **NO_TRADE** when the bar is at a session edge (its close, the moment a trade would be
   decided, falls in the first or last ``edge_minutes`` of ``session_start``-``session_end``,
   exchange time), overlaps a ``news_windows`` entry, comes before the indicators are warm
   (ADX needs ``2 x adx_period`` bars; the reason counts them: ``warming up (12/28 bars)``),
   or has a volume below ``low_volume_fraction`` of the median of the ``volume_window`` bars
   before it.
2. **VOLATILE** when ATR is above the ``volatile_percentile`` of the ATR of the
   ``volatile_window`` bars before it (once half that window is known).
3. **TRENDING_UP / TRENDING_DOWN** when ADX > ``trend_adx``, the direction is the leading DI, and
   at least ``trend_confirmations`` of three confirmations agree with it: EMA fast vs EMA slow,
   close vs session VWAP, market structure.
4. **RANGING** otherwise: ADX <= ``trend_adx``, or a strong ADX the confirmations do not back.

Confidence (0-1): ``0.5 x agreement + 0.5 x strength``, where *agreement* is the share of the
last ``confidence_lookback`` bars (this one included) that got the same raw regime, and
*strength* is ``(ADX - trend_adx) / trend_adx`` for a trend, ``(trend_adx - ADX) / trend_adx``
for a range (0 for an unconfirmed strong ADX), ``4 x (ATR / percentile - 1)`` for VOLATILE, each
clipped to 0-1. NO_TRADE always has confidence 1.

The indicators are streaming states: each new bar costs O(1) (plus a small sorted window), however
long the history; :meth:`AdxRegimeClassifier.classify` only reads the bars it has not seen.
docs/regime.md has the details.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from pydantic import Field, field_validator, model_validator

from tradebot_core import (
    FootprintHistory,
    PluginContext,
    PluginSettings,
    Regime,
    RegimeClassifier,
    RegimeState,
    hookimpl,
)
from tradebot_core.indicators import (
    AdxState,
    AtrState,
    EmaState,
    RollingWindow,
    StructureState,
    VwapState,
)

log = logging.getLogger(__name__)

_DAY_MINUTES = 24 * 60


class AdxRegimeSettings(PluginSettings):
    """Settings of the ``adx`` regime classifier (YAML: ``regime: {plugin: adx, adx: {...}}``)."""

    adx_period: int = Field(default=14, ge=2)
    atr_period: int = Field(default=14, ge=1)
    ema_fast: int = Field(default=9, ge=1)
    ema_slow: int = Field(default=21, ge=2)
    structure_lookback: int = Field(default=5, ge=2)
    trend_adx: float = Field(default=25.0, gt=0, lt=100)
    trend_confirmations: int = Field(default=2, ge=1, le=3)
    """How many of EMA fast/slow, close/VWAP and structure must agree with the leading DI."""
    volatile_percentile: float = Field(default=90.0, gt=0, lt=100)
    volatile_window: int = Field(default=100, ge=10)
    session_start: time = time(9, 30)
    session_end: time = time(16, 0)
    edge_minutes: int = Field(default=10, ge=0, le=240)
    news_windows: list[str] = Field(default_factory=list)
    """Exchange-time windows with no trading, e.g. ``["08:29-08:35", "13:59-14:05"]``."""
    low_volume_fraction: float = Field(default=0.2, ge=0, lt=1)
    volume_window: int = Field(default=20, ge=2)
    confidence_lookback: int = Field(default=5, ge=1)
    session_roll: time = time(18, 0)
    """Exchange time at which a new trading day (and the session VWAP) starts: 18:00 on Globex."""
    timezone: str = "America/New_York"

    @field_validator("news_windows")
    @classmethod
    def _windows(cls, windows: list[str]) -> list[str]:
        for window in windows:
            parse_window(window)
        return windows

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (use e.g. 'America/New_York')") from None
        return name

    @model_validator(mode="after")
    def _consistent(self) -> AdxRegimeSettings:
        if self.ema_fast >= self.ema_slow:
            raise ValueError(
                f"ema_fast ({self.ema_fast}) must be shorter than ema_slow ({self.ema_slow})"
            )
        if self.session_start >= self.session_end:
            raise ValueError("session_start must be before session_end (same day, exchange time)")
        return self


def parse_window(text: str) -> tuple[time, time]:
    """``"08:29-08:35"`` -> two times; a window may wrap past midnight (``"23:50-00:10"``)."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"{text!r} is not a window like '08:29-08:35'") from None
    return start, end


def _minutes(moment: time | datetime) -> float:
    return moment.hour * 60 + moment.minute + moment.second / 60


class AdxRegimeClassifier(RegimeClassifier):
    """Classifies each closed bar from streaming ADX, ATR, EMA, VWAP and market structure."""

    name = "adx"
    Settings = AdxRegimeSettings

    def __init__(self, settings: AdxRegimeSettings, context: PluginContext) -> None:
        self.s = settings
        self.tz = ZoneInfo(settings.timezone)
        self.news = [
            (_minutes(a), _minutes(b)) for a, b in map(parse_window, settings.news_windows)
        ]
        self._roll = timedelta(hours=24) - timedelta(
            hours=settings.session_roll.hour, minutes=settings.session_roll.minute
        )
        self._warm_bars = max(2 * settings.adx_period, settings.ema_slow, settings.atr_period + 1)
        self._reset()

    def _reset(self) -> None:
        s = self.s
        self.adx = AdxState(s.adx_period)
        self.atr = AtrState(s.atr_period)
        self.fast = EmaState(s.ema_fast)
        self.slow = EmaState(s.ema_slow)
        self.vwap = VwapState()
        self.structure = StructureState(s.structure_lookback)
        self.atr_window = RollingWindow(s.volatile_window)
        self.volumes = RollingWindow(s.volume_window)
        self.recent: deque[Regime] = deque(maxlen=s.confidence_lookback)
        self._seen = 0
        self._stepped = 0  # bars the indicators have taken since the start (or a reset)
        self._last: tuple[Regime, float, str, float, int, float] | None = None
        self._state: RegimeState | None = None

    # --- the hook ---------------------------------------------------------------------------

    def classify(self, history: FootprintHistory) -> RegimeState:
        """The regime after the newest closed bar; only bars not seen before are processed."""
        count = len(history)
        if count < self._seen:
            log.warning("history shrank from %d to %d bars: starting over", self._seen, count)
            self._reset()
        if count == 0:
            return RegimeState(
                regime=Regime.NO_TRADE, confidence=1.0, bar_ts_ns=0, reason="no closed bar yet"
            )
        if count == self._seen and self._state is not None:
            return self._state
        bars = history.bars
        for index in range(self._seen, count):
            self._step(bars[index])
        self._seen = count
        self._state = self._publish(history)
        return self._state

    # --- one bar ----------------------------------------------------------------------------

    def _step(self, bar: np.void) -> None:
        high, low, close = float(bar["high"]), float(bar["low"]), float(bar["close"])
        volume = int(bar["volume"])
        self._stepped += 1
        ts_open, ts_close = int(bar["ts_open"]), int(bar["ts_close"])
        start = datetime.fromtimestamp(ts_open / 1e9, self.tz)
        end = datetime.fromtimestamp(ts_close / 1e9, self.tz)
        self.adx.update(high, low, close)
        atr = self.atr.update(high, low, close)
        self.fast.update(close)
        self.slow.update(close)
        self.vwap.update(float(bar["pv"]), float(volume), self.session_of(start))
        structure = self.structure.update(high, low)
        regime, strength, reason = self._raw(start, end, close, volume, structure)
        self.atr_window.append(atr)  # after the test: ATR is compared with the bars before it
        self.volumes.append(volume)
        self.recent.append(regime)
        if regime is Regime.NO_TRADE:
            confidence = 1.0
        else:
            agreement = sum(r is regime for r in self.recent) / len(self.recent)
            confidence = 0.5 * agreement + 0.5 * min(1.0, max(0.0, strength))
        self._last = (regime, confidence, reason, float(structure), ts_open, close)

    def session_of(self, local: datetime) -> date:
        """The trading day of a bar opening at ``local``: from ``session_roll`` to the next one."""
        return (local + self._roll).date()

    def _raw(
        self, start: datetime, end: datetime, close: float, volume: int, structure: int
    ) -> tuple[Regime, float, str]:
        edge = self._edge(start, end)
        if edge:
            return Regime.NO_TRADE, 1.0, edge
        if self.adx.adx != self.adx.adx or self.slow.value != self.slow.value:
            return Regime.NO_TRADE, 1.0, self._warming_up()
        if len(self.volumes) >= max(2, self.s.volume_window // 2):
            median = self.volumes.median()
            if volume < self.s.low_volume_fraction * median:
                return Regime.NO_TRADE, 1.0, f"low volume: {volume} vs median {median:g}"
        atr = self.atr.value
        if len(self.atr_window) >= self.s.volatile_window // 2:
            threshold = self.atr_window.percentile(self.s.volatile_percentile)
            if threshold > 0 and atr > threshold:
                return (
                    Regime.VOLATILE,
                    4.0 * (atr / threshold - 1.0),
                    f"ATR {atr:.2f}t above its p{self.s.volatile_percentile:g} ({threshold:.2f}t)",
                )
        return self._trend_or_range(close, structure)

    def _warming_up(self) -> str:
        """``warming up (12/28 bars)``: how far the indicators are, as a trader reads it."""
        done, need = self._stepped, self._warm_bars
        if done < need:
            return f"warming up ({done}/{need} bars)"
        # ADX has no value yet after its bars (prices that never moved): say so, not "30/28"
        return f"warming up ({done} bars: ADX needs price movement)"

    def _trend_or_range(self, close: float, structure: int) -> tuple[Regime, float, str]:
        adx, trend = self.adx.adx, self.s.trend_adx
        if adx <= trend:
            return Regime.RANGING, (trend - adx) / trend, f"ADX {adx:.1f} <= {trend:g}"
        plus, minus = self.adx.plus_di, self.adx.minus_di
        direction = 1 if plus > minus else -1 if minus > plus else 0
        votes = {
            "EMA": _sign(self.fast.value - self.slow.value),
            "VWAP": _sign(close - self.vwap.value) if self.vwap.value == self.vwap.value else 0,
            "structure": structure,
        }
        agree = [name for name, vote in votes.items() if direction and vote == direction]
        if direction and len(agree) >= self.s.trend_confirmations:
            regime = Regime.TRENDING_UP if direction > 0 else Regime.TRENDING_DOWN
            lead = "+DI" if direction > 0 else "-DI"
            return (
                regime,
                (adx - trend) / trend,
                f"ADX {adx:.1f} > {trend:g}, {lead} leads, confirmed by {', '.join(agree)}",
            )
        return (
            Regime.RANGING,
            0.0,
            f"ADX {adx:.1f} > {trend:g} but direction unconfirmed "
            f"({len(agree)} of 3 agree, {self.s.trend_confirmations} needed)",
        )

    def _edge(self, start: datetime, end: datetime) -> str:
        """Why the bar is at a session edge or in a news window, or ``""``."""
        edge = self.s.edge_minutes
        if edge:
            decided = _minutes(end)  # a trade on this bar would be decided at its close
            open_ = _minutes(self.s.session_start)
            close = _minutes(self.s.session_end)
            if open_ <= decided < open_ + edge:
                return f"session open ({edge} min)"
            if close - edge <= decided <= close:
                return f"session close ({edge} min)"
        if self.news:
            first = _minutes(start)
            last = _minutes(end)
            if last < first:  # the bar crosses midnight
                last += _DAY_MINUTES
            for news_start, news_end in self.news:
                stop = news_end + _DAY_MINUTES if news_end < news_start else news_end
                for shift in (-_DAY_MINUTES, 0, _DAY_MINUTES):
                    if news_start + shift <= last and first <= stop + shift:
                        return f"news window {_hhmm(news_start)}-{_hhmm(news_end)}"
        return ""

    # --- the answer -------------------------------------------------------------------------

    def _publish(self, history: FootprintHistory) -> RegimeState:
        assert self._last is not None
        regime, confidence, reason, structure, ts_open, close = self._last
        tick = float(history.instrument.tick_size)
        return RegimeState(
            regime=regime,
            confidence=round(min(1.0, max(0.0, confidence)), 4),
            bar_ts_ns=ts_open,
            indicators={
                "adx": self.adx.adx,
                "plus_di": self.adx.plus_di,
                "minus_di": self.adx.minus_di,
                "atr": self.atr.value * tick,
                "ema_fast": self.fast.value * tick,
                "ema_slow": self.slow.value * tick,
                "vwap": self.vwap.value * tick,
                "structure": structure,
                "close": close * tick,
            },
            reason=reason,
        )


def _sign(value: float) -> int:
    return 1 if value > 0 else -1 if value < 0 else 0


def _hhmm(minutes: float) -> str:
    whole = int(minutes) % _DAY_MINUTES
    return f"{whole // 60:02d}:{whole % 60:02d}"


@hookimpl
def register_regime_classifiers(register: Any) -> None:
    """Register the ``adx`` regime classifier."""
    register(AdxRegimeClassifier)
