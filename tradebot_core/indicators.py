"""Indicators on numpy arrays, with streaming states that equal the batch results.

The conventions are TA-Lib's, so values agree with it after warm-up (checked by the tests):

* ``ema``: seeded with the simple average of the first ``period`` values, then
  ``ema += (x - ema) * 2 / (period + 1)``; first value at index ``period - 1``.
* ``atr``: true range from the second bar; the first ATR (index ``period``) is the average of the
  first ``period`` true ranges; then Wilder: ``atr = (atr * (period - 1) + tr) / period``.
* ``adx``: directional movement and true range summed over ``period - 1`` bars, then smoothed by
  Wilder (``s = s - s / period + x``); +DI and -DI are ``100 * DM / TR``; DX is
  ``100 * |+DI - -DI| / (+DI + -DI)``; the first ADX (index ``2 * period - 1``) is the average of
  ``period`` DX values, then ``adx = (adx * (period - 1) + dx) / period``.

Warm-up values are NaN. Each streaming state's ``update`` takes one bar and returns the value for
it, so ``[state.update(...) for each bar]`` equals the batch function.
"""

from __future__ import annotations

import math

import numpy as np

NAN = math.nan
_ZERO = 1e-8  # TA-Lib's TA_IS_ZERO


def _is_zero(value: float) -> bool:
    return -_ZERO < value < _ZERO


class EmaState:
    """Exponential moving average, one value at a time."""

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError("period must be >= 1")
        self.period = period
        self.k = 2.0 / (period + 1)
        self._seed: list[float] = []
        self.value = NAN

    def update(self, x: float) -> float:
        if len(self._seed) < self.period:
            self._seed.append(float(x))
            if len(self._seed) == self.period:
                self.value = sum(self._seed) / self.period
            return self.value
        self.value = (float(x) - self.value) * self.k + self.value
        return self.value


def ema(values: np.ndarray, period: int) -> np.ndarray:
    state = EmaState(period)
    return np.array([state.update(x) for x in np.asarray(values, dtype=float)])


def true_range(high: float, low: float, prev_close: float) -> float:
    return max(high - low, abs(high - prev_close), abs(low - prev_close))


class AtrState:
    """Average true range (Wilder), one bar at a time."""

    def __init__(self, period: int = 14) -> None:
        self.period = period
        self._prev_close: float | None = None
        self._ranges: list[float] = []
        self.value = NAN

    def update(self, high: float, low: float, close: float) -> float:
        prev, self._prev_close = self._prev_close, float(close)
        if prev is None:
            return NAN
        tr = true_range(float(high), float(low), prev)
        if len(self._ranges) < self.period:
            self._ranges.append(tr)
            if len(self._ranges) == self.period:
                self.value = sum(self._ranges) / self.period
            return self.value
        self.value = (self.value * (self.period - 1) + tr) / self.period
        return self.value


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    state = AtrState(period)
    return np.array([state.update(h, lo, c) for h, lo, c in _bars(high, low, close)])


class AdxState:
    """ADX with +DI and -DI (Wilder), one bar at a time."""

    def __init__(self, period: int = 14) -> None:
        self.period = period
        self._bars = 0
        self._prev: tuple[float, float, float] | None = None
        self._plus_dm = self._minus_dm = self._tr = 0.0
        self._dx_sum = 0.0
        self.adx = self.plus_di = self.minus_di = NAN

    def update(self, high: float, low: float, close: float) -> float:
        high, low, close = float(high), float(low), float(close)
        prev, self._prev = self._prev, (high, low, close)
        self._bars += 1
        if prev is None:
            return NAN
        prev_high, prev_low, prev_close = prev
        up, down = high - prev_high, prev_low - low
        plus = up if (up > 0 and up > down) else 0.0
        minus = down if (down > 0 and up < down) else 0.0
        tr = true_range(high, low, prev_close)
        n, seen = self.period, self._bars - 1  # bars with a previous bar
        if seen < n:  # summing the first period - 1 movements
            self._plus_dm += plus
            self._minus_dm += minus
            self._tr += tr
            return NAN
        self._plus_dm = self._plus_dm - self._plus_dm / n + plus
        self._minus_dm = self._minus_dm - self._minus_dm / n + minus
        self._tr = self._tr - self._tr / n + tr
        dx = None
        if not _is_zero(self._tr):
            self.plus_di = 100.0 * self._plus_dm / self._tr
            self.minus_di = 100.0 * self._minus_dm / self._tr
            total = self.plus_di + self.minus_di
            if not _is_zero(total):
                dx = 100.0 * abs(self.minus_di - self.plus_di) / total
        if seen <= 2 * n - 1:  # the first period DX values build the first ADX
            self._dx_sum += dx or 0.0
            if seen == 2 * n - 1:
                self.adx = self._dx_sum / n
            return self.adx
        if dx is not None:
            self.adx = (self.adx * (n - 1) + dx) / n
        return self.adx


def adx(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(adx, plus_di, minus_di)``; +DI/-DI from index ``period``, ADX from ``2 * period - 1``."""
    state = AdxState(period)
    out = np.full((3, len(high)), NAN)
    for i, (h, lo, c) in enumerate(_bars(high, low, close)):
        out[0, i] = state.update(h, lo, c)
        if i >= period:
            out[1, i], out[2, i] = state.plus_di, state.minus_di
    return out[0], out[1], out[2]


def session_vwap(pv: np.ndarray, volume: np.ndarray, session_id: np.ndarray) -> np.ndarray:
    """VWAP from the start of each session: cumulative sum(price x size) / sum(size).

    ``pv`` and ``volume`` are the footprint bars' fields; ``session_id`` changes where a session
    starts. The result is in the units of ``pv / volume`` (ticks, for footprint bars).
    """
    pv = np.asarray(pv, dtype=float)
    volume = np.asarray(volume, dtype=float)
    session_id = np.asarray(session_id)
    starts = np.flatnonzero(np.r_[True, session_id[1:] != session_id[:-1]])
    cum_pv, cum_volume = np.cumsum(pv), np.cumsum(volume)
    lengths = np.diff(np.r_[starts, len(pv)])
    base_pv = np.repeat(np.r_[0.0, cum_pv][starts], lengths)
    base_volume = np.repeat(np.r_[0.0, cum_volume][starts], lengths)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (cum_pv - base_pv) / (cum_volume - base_volume)


class VwapState:
    """Session VWAP, one bar at a time."""

    def __init__(self) -> None:
        self.session: object = None
        self._pv = self._volume = 0.0
        self.value = NAN

    def update(self, pv: float, volume: float, session: object) -> float:
        if session != self.session:
            self.session, self._pv, self._volume = session, 0.0, 0.0
        self._pv += float(pv)
        self._volume += float(volume)
        self.value = self._pv / self._volume if self._volume else NAN
        return self.value


def market_structure(high: np.ndarray, low: np.ndarray, lookback: int = 5) -> np.ndarray:
    """+1 where the last ``lookback`` bars made higher highs and higher lows, -1 for lower highs
    and lower lows, 0 otherwise.

    Rule: over the window of ``lookback`` bars ending at i, count the steps (bar j vs j - 1) with
    a higher high and a higher low, and those with a lower high and a lower low; the structure is
    up when higher steps are a strict majority of the ``lookback - 1`` steps and the window's last
    high is its highest, down in the mirror case. NaN-free: 0 during warm-up.
    """
    high = np.asarray(high, dtype=float)
    low = np.asarray(low, dtype=float)
    out = np.zeros(len(high), dtype=np.int64)
    if len(high) < lookback or lookback < 2:
        return out
    higher = (high[1:] > high[:-1]) & (low[1:] > low[:-1])
    lower = (high[1:] < high[:-1]) & (low[1:] < low[:-1])
    steps = lookback - 1
    up_count = np.convolve(higher, np.ones(steps, dtype=int), "valid")
    down_count = np.convolve(lower, np.ones(steps, dtype=int), "valid")
    windows = np.lib.stride_tricks.sliding_window_view
    top = windows(high, lookback).max(axis=1) == high[lookback - 1 :]
    bottom = windows(low, lookback).min(axis=1) == low[lookback - 1 :]
    majority = steps // 2 + 1
    out[lookback - 1 :] = np.where(
        (up_count >= majority) & top, 1, np.where((down_count >= majority) & bottom, -1, 0)
    )
    return out


def structure_of(highs: list[float], lows: list[float]) -> int:
    """:func:`market_structure` of one window (its last value), for streaming use."""
    steps = len(highs) - 1
    up = sum(highs[i] > highs[i - 1] and lows[i] > lows[i - 1] for i in range(1, len(highs)))
    down = sum(highs[i] < highs[i - 1] and lows[i] < lows[i - 1] for i in range(1, len(highs)))
    majority = steps // 2 + 1
    if up >= majority and highs[-1] == max(highs):
        return 1
    if down >= majority and lows[-1] == min(lows):
        return -1
    return 0


def percentile(sorted_values: list[float], q: float) -> float:
    """``numpy.percentile(values, q)`` (linear interpolation) of an already sorted list."""
    position = (len(sorted_values) - 1) * q / 100
    below = int(position)
    above = min(below + 1, len(sorted_values) - 1)
    fraction = position - below
    return sorted_values[below] + (sorted_values[above] - sorted_values[below]) * fraction


def _bars(high: np.ndarray, low: np.ndarray, close: np.ndarray):  # type: ignore[no-untyped-def]
    return zip(
        np.asarray(high, dtype=float).tolist(),
        np.asarray(low, dtype=float).tolist(),
        np.asarray(close, dtype=float).tolist(),
        strict=True,
    )
