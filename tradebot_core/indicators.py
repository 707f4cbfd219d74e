"""Indicators on numpy float64 arrays, and streaming states that give the same values bar by bar.

The conventions are TA-Lib's (checked against TA-Lib 0.8 by ``tests/regime``), so values agree
with it to 1e-9 after warm-up:

* :func:`ema`: seeded with the simple average of the first ``period`` values, then
  ``ema = (x - ema) * k + ema`` with ``k = 2 / (period + 1)``; first value at index
  ``period - 1``.
* :func:`true_range`: ``max(high - low, |high - prev close|, |low - prev close|)``; NaN at index 0
  (no previous close), as TA-Lib's ``TRANGE``.
* :func:`atr`: the first value (index ``period``) is the average of the first ``period`` true
  ranges; then Wilder: ``atr = (atr * (period - 1) + tr) / period``.
* :func:`adx`: +DM is ``high - prev high`` when that is positive and larger than
  ``prev low - low`` (-DM mirrored), else 0. DM and TR are summed over the first ``period - 1``
  moves, then smoothed by Wilder (``s = s - s / period + x``). From index ``period``:
  ``+DI = 100 * (+DM / TR)`` (0 when TR is zero), ``DX = 100 * |+DI - -DI| / (+DI + -DI)``. The
  first ADX (index ``2 * period - 1``) averages ``period`` DX values, then
  ``adx = (adx * (period - 1) + dx) / period``; a bar whose DX is undefined (TR or +DI + -DI
  zero) leaves ADX unchanged.

Warm-up values are NaN. The batch functions and the streaming states are written separately (the
batch ones vectorize what does not recur); the tests check that both give the same floats.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque

import numpy as np

NAN = math.nan
_EPSILON = 1e-14  # TA-Lib 0.6+'s TA_IS_ZERO: |v| < 1e-14 is zero


def _is_zero(value: float) -> bool:
    return -_EPSILON < value < _EPSILON


def _floats(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _check_period(period: int, minimum: int = 1) -> None:
    if int(period) != period or period < minimum:
        raise ValueError(f"period must be an integer >= {minimum}, got {period!r}")


def _true_range_one(high: float, low: float, prev_close: float) -> float:
    rng = high - low
    rng = max(rng, abs(high - prev_close))
    return max(rng, abs(low - prev_close))


# --- EMA ------------------------------------------------------------------------------------


def ema(values: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average, TA-Lib's ``EMA`` (SMA seed); NaN for the first ``period - 1``."""
    _check_period(period)
    x = _floats(values)
    out = np.full(len(x), NAN)
    if len(x) < period:
        return out
    k = 2.0 / (period + 1)
    seed = 0.0
    for value in x[:period].tolist():
        seed += value
    value = seed / period
    out[period - 1] = value
    rest = x[period:].tolist()
    smoothed = []
    for price in rest:
        value = (price - value) * k + value
        smoothed.append(value)
    out[period:] = smoothed
    return out


class EmaState:
    """:func:`ema`, one value at a time: ``update(x)`` returns the EMA at that value (NaN first)."""

    def __init__(self, period: int) -> None:
        _check_period(period)
        self.period = period
        self.k = 2.0 / (period + 1)
        self._count = 0
        self._sum = 0.0
        self.value = NAN

    def update(self, x: float) -> float:
        """Take the next value; return the EMA after it."""
        if self._count < self.period:
            self._count += 1
            self._sum += float(x)
            if self._count == self.period:
                self.value = self._sum / self.period
            return self.value
        self.value = (float(x) - self.value) * self.k + self.value
        return self.value


# --- true range and ATR ---------------------------------------------------------------------


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range of each bar against the previous close; NaN at index 0 (TA-Lib's ``TRANGE``)."""
    h, lo, c = _floats(high), _floats(low), _floats(close)
    out = np.full(len(h), NAN)
    if len(h) > 1:
        prev = c[:-1]
        rng = np.maximum(h[1:] - lo[1:], np.abs(h[1:] - prev))
        out[1:] = np.maximum(rng, np.abs(lo[1:] - prev))
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Average true range with Wilder smoothing (TA-Lib's ``ATR``); first value at ``period``."""
    _check_period(period)
    tr = true_range(high, low, close)
    out = np.full(len(tr), NAN)
    if len(tr) <= period:
        return out
    seed = 0.0
    for value in tr[1 : period + 1].tolist():
        seed += value
    value = seed / period
    out[period] = value
    smoothed = []
    for rng in tr[period + 1 :].tolist():
        value = (value * (period - 1) + rng) / period
        smoothed.append(value)
    out[period + 1 :] = smoothed
    return out


class AtrState:
    """:func:`atr`, one bar at a time."""

    def __init__(self, period: int = 14) -> None:
        _check_period(period)
        self.period = period
        self._prev_close: float | None = None
        self._count = 0
        self._sum = 0.0
        self.value = NAN

    def update(self, high: float, low: float, close: float) -> float:
        """Take the next bar; return the ATR after it (NaN during warm-up)."""
        prev, self._prev_close = self._prev_close, float(close)
        if prev is None:
            return NAN
        rng = _true_range_one(float(high), float(low), prev)
        if self._count < self.period:
            self._count += 1
            self._sum += rng
            if self._count == self.period:
                self.value = self._sum / self.period
            return self.value
        self.value = (self.value * (self.period - 1) + rng) / self.period
        return self.value


# --- ADX, +DI, -DI --------------------------------------------------------------------------


def directional_movement(high: np.ndarray, low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-bar +DM and -DM from index 1 (arrays one shorter than the input)."""
    h, lo = _floats(high), _floats(low)
    up = h[1:] - h[:-1]
    down = lo[:-1] - lo[1:]
    plus = np.where((up > 0) & (up > down), up, 0.0)
    minus = np.where((down > 0) & (down > up), down, 0.0)
    return plus, minus


def adx(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(adx, plus_di, minus_di)`` as TA-Lib's ``ADX``, ``PLUS_DI``, ``MINUS_DI``.

    +DI/-DI start at index ``period``, ADX at ``2 * period - 1``; earlier values are NaN.
    """
    _check_period(period, 2)
    n = len(high)
    out = np.full((3, n), NAN)
    if n < 2:
        return out[0], out[1], out[2]
    plus_dm, minus_dm = directional_movement(high, low)
    pdm, mdm = plus_dm.tolist(), minus_dm.tolist()
    trs = true_range(high, low, close)[1:].tolist()
    warm = period - 1
    sp = sm = st = 0.0
    for j in range(min(warm, len(trs))):
        sp += pdm[j]
        sm += mdm[j]
        st += trs[j]
    adx_values, plus_values, minus_values = [], [], []
    sum_dx, value = 0.0, NAN
    for j in range(warm, len(trs)):
        sp = sp - sp / period + pdm[j]
        sm = sm - sm / period + mdm[j]
        st = st - st / period + trs[j]
        dx = NAN
        if _is_zero(st):
            plus_di = minus_di = 0.0
        else:
            plus_di = 100.0 * (sp / st)
            minus_di = 100.0 * (sm / st)
            total = minus_di + plus_di
            if not _is_zero(total):
                dx = 100.0 * (abs(minus_di - plus_di) / total)
        plus_values.append(plus_di)
        minus_values.append(minus_di)
        smoothed = j - warm  # 0 at index ``period``
        if smoothed < period:
            if dx == dx:
                sum_dx += dx
            if smoothed == period - 1:
                value = sum_dx / period
        elif dx == dx:
            value = (value * (period - 1) + dx) / period
        adx_values.append(value)
    out[0, period:] = adx_values
    out[1, period:] = plus_values
    out[2, period:] = minus_values
    return out[0], out[1], out[2]


class AdxState:
    """:func:`adx`, one bar at a time: ``update`` returns ADX; ``plus_di``/``minus_di`` follow."""

    def __init__(self, period: int = 14) -> None:
        _check_period(period, 2)
        self.period = period
        self._prev: tuple[float, float, float] | None = None
        self._moves = 0  # bars seen that had a previous bar
        self._plus_dm = self._minus_dm = self._tr = 0.0
        self._dx_sum = 0.0
        self.adx = self.plus_di = self.minus_di = NAN

    def update(self, high: float, low: float, close: float) -> float:
        """Take the next bar; return ADX after it (NaN during warm-up)."""
        high, low, close = float(high), float(low), float(close)
        prev, self._prev = self._prev, (high, low, close)
        if prev is None:
            return NAN
        prev_high, prev_low, prev_close = prev
        up, down = high - prev_high, prev_low - low
        plus = up if (up > 0 and up > down) else 0.0
        minus = down if (down > 0 and down > up) else 0.0
        rng = _true_range_one(high, low, prev_close)
        n = self.period
        self._moves += 1
        if self._moves < n:  # summing the first period - 1 moves
            self._plus_dm += plus
            self._minus_dm += minus
            self._tr += rng
            return NAN
        self._plus_dm = self._plus_dm - self._plus_dm / n + plus
        self._minus_dm = self._minus_dm - self._minus_dm / n + minus
        self._tr = self._tr - self._tr / n + rng
        dx = NAN
        if _is_zero(self._tr):
            self.plus_di = self.minus_di = 0.0
        else:
            self.plus_di = 100.0 * (self._plus_dm / self._tr)
            self.minus_di = 100.0 * (self._minus_dm / self._tr)
            total = self.minus_di + self.plus_di
            if not _is_zero(total):
                dx = 100.0 * (abs(self.minus_di - self.plus_di) / total)
        smoothed = self._moves - n  # 0 at the first DI
        if smoothed < n:
            if dx == dx:
                self._dx_sum += dx
            if smoothed == n - 1:
                self.adx = self._dx_sum / n
        elif dx == dx:
            self.adx = (self.adx * (n - 1) + dx) / n
        return self.adx


# --- session VWAP ---------------------------------------------------------------------------


def session_vwap(pv: np.ndarray, volume: np.ndarray, session_id: np.ndarray) -> np.ndarray:
    """VWAP from the start of each session: cumulative ``sum(pv) / sum(volume)``.

    ``pv`` (sum of price x size) and ``volume`` are the footprint bars' fields; a session starts
    wherever ``session_id`` differs from the bar before. The result is in the units of
    ``pv / volume`` (ticks, for footprint bars); NaN while a session has no volume.
    """
    pv, volume = _floats(pv), _floats(volume)
    session_id = np.asarray(session_id)
    if len(pv) == 0:
        return np.empty(0)
    starts = np.flatnonzero(np.r_[True, session_id[1:] != session_id[:-1]])
    lengths = np.diff(np.r_[starts, len(pv)])
    cum_pv, cum_volume = np.cumsum(pv), np.cumsum(volume)
    base_pv = np.repeat(np.r_[0.0, cum_pv][starts], lengths)
    base_volume = np.repeat(np.r_[0.0, cum_volume][starts], lengths)
    session_volume = cum_volume - base_volume
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(session_volume > 0, (cum_pv - base_pv) / session_volume, NAN)


class VwapState:
    """Session VWAP, one bar at a time; a new ``session`` value restarts it."""

    def __init__(self) -> None:
        self.session: object = None
        self._pv = self._volume = 0.0
        self.value = NAN

    def update(self, pv: float, volume: float, session: object) -> float:
        """Take the next bar's ``pv`` and ``volume``; return the session's VWAP so far."""
        if session != self.session:
            self.session, self._pv, self._volume = session, 0.0, 0.0
        self._pv += float(pv)
        self._volume += float(volume)
        self.value = self._pv / self._volume if self._volume > 0 else NAN
        return self.value


# --- market structure -----------------------------------------------------------------------


def market_structure(high: np.ndarray, low: np.ndarray, lookback: int = 5) -> np.ndarray:
    """+1 (up), -1 (down) or 0 (mixed) for the window of ``lookback`` bars ending at each bar.

    Rule: a *step* is a bar against the bar before it; it is *higher* when both its high and its
    low are above the previous bar's (a higher high and a higher low), *lower* when both are
    below. The window is +1 when higher steps are a strict majority of its ``lookback - 1`` steps
    **and** its last high is the window's highest high; -1 when lower steps are a strict majority
    and its last low is the window's lowest low; 0 otherwise, and 0 for the first
    ``lookback - 1`` bars.
    """
    _check_period(lookback, 2)
    h, lo = _floats(high), _floats(low)
    out = np.zeros(len(h), dtype=np.int64)
    if len(h) < lookback:
        return out
    higher = ((h[1:] > h[:-1]) & (lo[1:] > lo[:-1])).astype(np.int64)
    lower = ((h[1:] < h[:-1]) & (lo[1:] < lo[:-1])).astype(np.int64)
    steps = lookback - 1
    up_count = np.convolve(higher, np.ones(steps, dtype=np.int64), "valid")
    down_count = np.convolve(lower, np.ones(steps, dtype=np.int64), "valid")
    windows = np.lib.stride_tricks.sliding_window_view
    top = windows(h, lookback).max(axis=1) == h[lookback - 1 :]
    bottom = windows(lo, lookback).min(axis=1) == lo[lookback - 1 :]
    majority = steps // 2 + 1
    out[lookback - 1 :] = np.where(
        (up_count >= majority) & top, 1, np.where((down_count >= majority) & bottom, -1, 0)
    )
    return out


class StructureState:
    """:func:`market_structure`, one bar at a time (O(lookback) per bar)."""

    def __init__(self, lookback: int = 5) -> None:
        _check_period(lookback, 2)
        self.lookback = lookback
        self._highs: deque[float] = deque(maxlen=lookback)
        self._lows: deque[float] = deque(maxlen=lookback)
        self.value = 0

    def update(self, high: float, low: float) -> int:
        """Take the next bar's high and low; return the structure of the window ending there."""
        self._highs.append(float(high))
        self._lows.append(float(low))
        if len(self._highs) < self.lookback:
            self.value = 0
            return 0
        highs, lows = list(self._highs), list(self._lows)
        up = down = 0
        for i in range(1, len(highs)):
            if highs[i] > highs[i - 1] and lows[i] > lows[i - 1]:
                up += 1
            elif highs[i] < highs[i - 1] and lows[i] < lows[i - 1]:
                down += 1
        majority = (self.lookback - 1) // 2 + 1
        if up >= majority and highs[-1] == max(highs):
            self.value = 1
        elif down >= majority and lows[-1] == min(lows):
            self.value = -1
        else:
            self.value = 0
        return self.value


# --- rolling order statistics ---------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """``numpy.percentile(values, q)`` (linear interpolation) of an already sorted list."""
    if not sorted_values:
        return NAN
    position = (len(sorted_values) - 1) * q / 100
    below = int(position)
    above = min(below + 1, len(sorted_values) - 1)
    fraction = position - below
    return sorted_values[below] + (sorted_values[above] - sorted_values[below]) * fraction


class RollingWindow:
    """The last ``size`` values, also kept sorted: percentiles and medians without re-sorting.

    ``append`` costs O(size) in the worst case (a list insert), a few microseconds for the window
    sizes a classifier uses; NaN values are ignored.
    """

    def __init__(self, size: int) -> None:
        _check_period(size)
        self.size = size
        self._values: deque[float] = deque()
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._values)

    def append(self, value: float) -> None:
        """Add a value, dropping the oldest once the window is full."""
        value = float(value)
        if value != value:
            return
        if len(self._values) == self.size:
            del self._sorted[bisect_left(self._sorted, self._values.popleft())]
        self._values.append(value)
        insort(self._sorted, value)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100, linear interpolation) of the window; NaN if empty."""
        return percentile(self._sorted, q)

    def median(self) -> float:
        """The median of the window; NaN if empty."""
        return percentile(self._sorted, 50.0)
