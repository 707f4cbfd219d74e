"""Footprint bars, built vectorized from tick batches.

A footprint bar is a time bar (``timeframe_s`` seconds, aligned to the epoch, so 5-minute bars
open at :00, :05...) that also keeps, for every price level from its low to its high, the volume
traded by aggressive sellers (at the bid) and by aggressive buyers (at the ask).

Bars are columnar: one structured array of :data:`BAR_DTYPE` (prices in integer *ticks*), and three
flat level arrays (bid, ask, total volume) in which bar ``i`` owns the slice
``[level_start, level_start + level_count)``, one entry per tick from low to high, zeros included.
That layout makes the diagonal comparisons of imbalance detectors plain array arithmetic.

:class:`FootprintEngine` is the streaming front: feed it batches of any size and it closes a bar as
soon as a tick of a later bar arrives (or the session ends). The bars it builds are identical
whether a session arrives in one batch or in ten thousand, because each bar is computed once, from
all of its ticks, when it closes.

Rules, so a detector author knows what the numbers mean:

* ``ask_volume`` counts buy-aggressor trades, ``bid_volume`` sell-aggressor trades; trades with no
  aggressor side count in ``volume`` (and per level in the total) but in neither side nor in delta.
* ``delta = ask_volume - bid_volume``; ``cum_delta`` runs across bars until :meth:`reset_session`.
* ``poc``: the level with the most volume; on a tie, the lowest such price.
* value area: start at the POC and add the neighbouring level (above or below) with the larger
  volume, one level at a time (the higher one on a tie), until the area holds >= 70% of the bar's
  volume. ``val`` / ``vah`` are its lowest and highest levels.
* a bar with no trades does not exist: a quiet minute is a gap in ``ts_open``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from .instruments import Instrument

BAR_DTYPE = np.dtype(
    [
        ("ts_open", "<i8"),  # bar start, ns UTC (inclusive)
        ("ts_close", "<i8"),  # bar end, ns UTC (exclusive): ts_open + timeframe
        ("ts_last", "<i8"),  # time of the bar's last trade
        ("open", "<i8"),  # prices in ticks (price / tick size)
        ("high", "<i8"),
        ("low", "<i8"),
        ("close", "<i8"),
        ("volume", "<i8"),
        ("ask_volume", "<i8"),  # bought by aggressors
        ("bid_volume", "<i8"),  # sold by aggressors
        ("delta", "<i8"),
        ("cum_delta", "<i8"),
        ("trade_count", "<i8"),
        ("pv", "<i8"),  # sum(price_ticks * size): VWAP = sum(pv) / sum(volume)
        ("poc", "<i8"),
        ("val", "<i8"),
        ("vah", "<i8"),
        ("level_start", "<i8"),
        ("level_count", "<i8"),
    ]
)

VALUE_AREA_SHARE = (7, 10)  # 70%, kept as a ratio of integers so the test is exact


def compute_bars(
    ticks: np.ndarray, tick_fixed: int, timeframe_ns: int, cum_delta_start: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Build every bar that ``ticks`` (time-ordered, non-empty) touch.

    Returns ``(bars, level_bid, level_ask, level_volume)``; ``level_start`` is relative to the
    returned level arrays.
    """
    n = len(ticks)
    ts = ticks["ts_event"]
    price = ticks["price"] // tick_fixed
    size = ticks["size"]

    bar_id = ts // timeframe_ns
    starts = np.flatnonzero(np.diff(bar_id)) + 1
    starts = np.concatenate(([0], starts))
    ends = np.concatenate((starts[1:], [n]))
    nbars = len(starts)

    bars = np.zeros(nbars, dtype=BAR_DTYPE)
    bars["ts_open"] = bar_id[starts] * timeframe_ns
    bars["ts_close"] = bars["ts_open"] + timeframe_ns
    bars["ts_last"] = ts[ends - 1]
    bars["open"] = price[starts]
    bars["close"] = price[ends - 1]
    high = np.maximum.reduceat(price, starts)
    low = np.minimum.reduceat(price, starts)
    bars["high"] = high
    bars["low"] = low
    bars["trade_count"] = ends - starts
    bars["pv"] = np.add.reduceat(price * size, starts)

    level_count = high - low + 1
    level_start = np.concatenate(([0], np.cumsum(level_count)[:-1]))
    bars["level_count"] = level_count
    bars["level_start"] = level_start
    total_levels = int(level_count.sum())

    # one pass over the trades: each (level, side) pair is a slot; side -1/0/+1 -> 0/1/2
    slot = np.repeat(level_start - low, ends - starts) + price
    by_side = np.bincount(  # float64 sums: exact for integer volumes below 2**53
        slot * 3 + (ticks["side"] + 1), weights=size, minlength=3 * total_levels
    )
    by_side = by_side.astype(np.int64).reshape(total_levels, 3)
    level_bid = np.ascontiguousarray(by_side[:, 0])
    level_ask = np.ascontiguousarray(by_side[:, 2])
    level_volume = by_side.sum(axis=1)
    bars["volume"] = np.add.reduceat(level_volume, level_start)
    bars["ask_volume"] = np.add.reduceat(level_ask, level_start)
    bars["bid_volume"] = np.add.reduceat(level_bid, level_start)
    delta = bars["ask_volume"] - bars["bid_volume"]
    bars["delta"] = delta
    bars["cum_delta"] = cum_delta_start + np.cumsum(delta)

    poc_index = _poc_index(level_volume, level_start)
    bars["poc"] = low + (poc_index - level_start)
    val_index, vah_index = _value_area(level_volume, level_start, level_count, poc_index, bars)
    bars["val"] = low + (val_index - level_start)
    bars["vah"] = low + (vah_index - level_start)
    return bars, level_bid, level_ask, level_volume


def _poc_index(level_volume: np.ndarray, level_start: np.ndarray) -> np.ndarray:
    """Index (into the level arrays) of each bar's point of control; ties go to the lowest price."""
    peak = np.maximum.reduceat(level_volume, level_start)
    counts = np.diff(np.concatenate((level_start, [len(level_volume)])))
    is_peak = level_volume == np.repeat(peak, counts)
    index = np.where(is_peak, np.arange(len(level_volume)), len(level_volume))
    return np.minimum.reduceat(index, level_start)


def _value_area(
    level_volume: np.ndarray,
    level_start: np.ndarray,
    level_count: np.ndarray,
    poc_index: np.ndarray,
    bars: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Grow every bar's value area from its POC: one level per step.

    Many bars (a replay closing a whole session at once) step together in numpy; a few bars (the
    streaming case, one bar per close) step in plain Python, which is cheaper for one ladder.
    """
    num, den = VALUE_AREA_SHARE
    if len(level_start) <= _SCALAR_VALUE_AREA_MAX_BARS:
        lows, highs = [], []
        for start, count, poc, volume in zip(
            level_start.tolist(),
            level_count.tolist(),
            poc_index.tolist(),
            bars["volume"].tolist(),
            strict=True,
        ):
            ladder = level_volume[start : start + count].tolist()
            low, high = _value_area_one(ladder, poc - start, volume * num, den)
            lows.append(start + low)
            highs.append(start + high)
        return np.array(lows, dtype=np.int64), np.array(highs, dtype=np.int64)
    first = level_start
    last = level_start + level_count - 1
    lo = poc_index.copy()
    hi = poc_index.copy()
    covered = level_volume[poc_index].copy()
    target = bars["volume"] * num
    active = covered * den < target
    while active.any():
        can_up = active & (hi < last)
        can_down = active & (lo > first)
        up = np.where(can_up, level_volume[np.minimum(hi + 1, last)], -1)
        down = np.where(can_down, level_volume[np.maximum(lo - 1, first)], -1)
        go_up = can_up & (up >= down)
        go_down = can_down & ~go_up
        hi += go_up
        lo -= go_down
        covered += np.where(go_up, up, 0) + np.where(go_down, down, 0)
        active &= (covered * den < target) & (go_up | go_down)
    return lo, hi


_SCALAR_VALUE_AREA_MAX_BARS = 8


def _value_area_one(ladder: list[int], poc: int, target: int, den: int) -> tuple[int, int]:
    """The same rule as the vectorized loop, for one ladder (indices into ``ladder``)."""
    lo = hi = poc
    covered = ladder[poc]
    last = len(ladder) - 1
    while covered * den < target and (lo > 0 or hi < last):
        up = ladder[hi + 1] if hi < last else -1
        down = ladder[lo - 1] if lo > 0 else -1
        if hi < last and up >= down:
            hi += 1
            covered += up
        else:
            lo -= 1
            covered += down
    return lo, hi


@dataclass(frozen=True)
class BarSet:
    """Closed bars and their level arrays, detached from a history (to warm another one)."""

    bars: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.bars)

    @classmethod
    def empty(cls) -> BarSet:
        none = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0, dtype=BAR_DTYPE), none, none.copy(), none.copy())

    @classmethod
    def concat(cls, sets: list[BarSet], last: int | None = None) -> BarSet:
        """One set of ``sets`` in order, keeping the last ``last`` bars (all by default)."""
        sets = [s for s in sets if len(s)]
        if not sets:
            return cls.empty()
        offsets = np.cumsum([0] + [len(s.bid) for s in sets[:-1]])
        parts = []
        for offset, part in zip(offsets, sets, strict=True):
            bars = part.bars.copy()
            bars["level_start"] += offset
            parts.append(bars)
        whole = cls(
            np.concatenate(parts),
            np.concatenate([s.bid for s in sets]),
            np.concatenate([s.ask for s in sets]),
            np.concatenate([s.volume for s in sets]),
        )
        if last is None or len(whole) <= last:
            return whole
        bars = whole.bars[-last:].copy()
        lo = int(bars["level_start"][0])
        bars["level_start"] -= lo
        return cls(bars, whole.bid[lo:].copy(), whole.ask[lo:].copy(), whole.volume[lo:].copy())


class FootprintHistory:
    """The closed bars of a run, in growable columnar arrays.

    ``bars`` is a read-only view of every closed bar so far; :meth:`levels` gives one bar's ladder.
    Detectors and regime classifiers receive this object and nothing else: it never holds a bar that
    has not closed.
    """

    def __init__(self, instrument: Instrument, timeframe_s: int) -> None:
        self.instrument = instrument
        self.timeframe_s = timeframe_s
        self._bars = np.zeros(64, dtype=BAR_DTYPE)
        self._bid = np.zeros(4096, dtype=np.int64)
        self._ask = np.zeros(4096, dtype=np.int64)
        self._volume = np.zeros(4096, dtype=np.int64)
        self._nbars = 0
        self._nlevels = 0
        self._last_levels: tuple[int, Any] = (-1, None)

    def __len__(self) -> int:
        return self._nbars

    @property
    def bars(self) -> np.ndarray:
        view = self._bars[: self._nbars]
        view.flags.writeable = False
        return view

    @property
    def level_bid(self) -> np.ndarray:
        return self._bid[: self._nlevels]

    @property
    def level_ask(self) -> np.ndarray:
        return self._ask[: self._nlevels]

    @property
    def level_volume(self) -> np.ndarray:
        return self._volume[: self._nlevels]

    def levels(self, index: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(price_ticks, bid_volume, ask_volume, volume)`` of bar ``index``, from low to high."""
        if index == -1 and self._last_levels[0] == self._nbars:  # every detector asks for it
            return self._last_levels[1]
        levels = self._levels(index)
        if index == -1:
            self._last_levels = (self._nbars, levels)
        return levels

    def _levels(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        bar = self._bars[: self._nbars][index]
        start, count = int(bar["level_start"]), int(bar["level_count"])
        prices = np.arange(int(bar["low"]), int(bar["low"]) + count, dtype=np.int64)
        end = start + count
        bid, ask, volume = self._bid[start:end], self._ask[start:end], self._volume[start:end]
        for view in (bid, ask, volume):
            view.flags.writeable = False
        return prices, bid, ask, volume

    def export(self, last: int | None = None) -> BarSet:
        """The last ``last`` closed bars (all by default) with their levels, as plain arrays
        (picklable; ``level_start`` relative to the returned level arrays)."""
        first = 0 if last is None else max(0, self._nbars - last)
        bars = self._bars[first : self._nbars].copy()
        if len(bars) == 0:
            return BarSet.empty()
        lo = int(bars["level_start"][0])
        hi = int(bars["level_start"][-1] + bars["level_count"][-1])
        bars["level_start"] -= lo
        return BarSet(
            bars, self._bid[lo:hi].copy(), self._ask[lo:hi].copy(), self._volume[lo:hi].copy()
        )

    def price(self, ticks: int) -> Decimal:
        """A price in ticks as dollars and cents."""
        return self.instrument.ticks_to_decimal(ticks)

    def append(
        self,
        bars: np.ndarray,
        bid: np.ndarray,
        ask: np.ndarray,
        volume: np.ndarray,
    ) -> None:
        """Add closed bars (``level_start`` relative to the given level arrays)."""
        nb, nl = len(bars), len(bid)
        self._reserve(self._nbars + nb, self._nlevels + nl)
        stored = self._bars[self._nbars : self._nbars + nb]
        stored[:] = bars
        stored["level_start"] += self._nlevels
        self._bid[self._nlevels : self._nlevels + nl] = bid
        self._ask[self._nlevels : self._nlevels + nl] = ask
        self._volume[self._nlevels : self._nlevels + nl] = volume
        self._nbars += nb
        self._nlevels += nl

    def _reserve(self, nbars: int, nlevels: int) -> None:
        if nbars > len(self._bars):
            grown = np.zeros(max(nbars, 2 * len(self._bars)), dtype=BAR_DTYPE)
            grown[: self._nbars] = self._bars[: self._nbars]
            self._bars = grown
        if nlevels > len(self._bid):
            size = max(nlevels, 2 * len(self._bid))
            for name in ("_bid", "_ask", "_volume"):
                grown = np.zeros(size, dtype=np.int64)
                grown[: self._nlevels] = getattr(self, name)[: self._nlevels]
                setattr(self, name, grown)


class FootprintEngine:
    """Streams tick batches into :class:`FootprintHistory`.

    :meth:`update` returns, for each bar the batch closed, the index in the batch of the tick that
    closed it (the first tick of a later bar). The pipeline cuts the batch there, so that orders
    sent on a bar's close can fill on that tick at the earliest.
    """

    def __init__(self, instrument: Instrument, timeframe_s: int) -> None:
        if timeframe_s <= 0:
            raise ValueError("timeframe_s must be > 0")
        self.instrument = instrument
        self.timeframe_ns = int(timeframe_s) * 1_000_000_000
        self.history = FootprintHistory(instrument, timeframe_s)
        self._tick_fixed = instrument.tick_fixed
        self._pending: list[np.ndarray] = []
        self._open_bar: int | None = None
        self._cum_delta = 0
        self._staged: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    @property
    def open_bar_ticks(self) -> int:
        """How many ticks the bar still open holds."""
        return sum(len(chunk) for chunk in self._pending)

    @property
    def open_bar_version(self) -> tuple[int, ...] | None:
        """A key that changes whenever a tick joins the open bar (None: no open bar yet)."""
        chunks = [chunk for chunk in self._pending if len(chunk)]
        if not chunks:
            return None
        last = chunks[-1]
        return (id(last), len(last), int(last["ts_event"][-1]), len(chunks), self._cum_delta)

    def open_bar(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The bar still open, as it would close now: its row (as in :func:`compute_bars`) and
        the bid and ask volume of its levels; None before its first tick. Nothing of the engine
        changes."""
        chunks = [chunk for chunk in self._pending if len(chunk)]
        if not chunks:
            return None
        ticks = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        bars, bid, ask, _ = compute_bars(
            ticks, self._tick_fixed, self.timeframe_ns, self._cum_delta
        )
        bar = bars[-1:]
        start, count = int(bar["level_start"][0]), int(bar["level_count"][0])
        return bar, bid[start : start + count], ask[start : start + count]

    def update(self, ticks: np.ndarray, reveal: bool = True) -> np.ndarray:
        """Take a time-ordered batch; close the bars it completes; return their cut indices.

        With ``reveal=False`` the closed bars are kept aside, not in ``history``: the pipeline
        moves each into the history at its cut (:meth:`release_next`), so a detector deciding on
        bar N cannot reach bar N + 1 even when one batch closed both.
        """
        if len(ticks) == 0:
            return np.empty(0, dtype=np.int64)
        bar_id = ticks["ts_event"] // self.timeframe_ns
        if self._open_bar is None:
            self._open_bar = int(bar_id[0])
        if bar_id[-1] == self._open_bar:  # the common case: the batch stays in the open bar
            self._pending.append(ticks)
            return np.empty(0, dtype=np.int64)
        cuts = np.flatnonzero(bar_id[1:] != bar_id[:-1]) + 1
        if bar_id[0] != self._open_bar:
            cuts = np.concatenate(([0], cuts))
        last_cut = int(cuts[-1])
        self._close(ticks[:last_cut], reveal)
        self._pending = [ticks[last_cut:]]
        self._open_bar = int(bar_id[-1])
        return cuts

    def flush(self, reveal: bool = True) -> int:
        """Close the open bar (the session ended). Returns how many bars closed: 0 or 1."""
        if not self._pending or self.open_bar_ticks == 0:
            self._pending, self._open_bar = [], None
            return 0
        self._close(None, reveal)
        self._pending, self._open_bar = [], None
        return 1

    @property
    def staged(self) -> int:
        """Bars closed but not yet released into the history."""
        return sum(len(chunk[0]) for chunk in self._staged)

    def release_next(self) -> None:
        """Move the oldest staged bar into the history."""
        bars, bid, ask, volume = self._staged[0]
        first = bars[:1].copy()
        start, count = int(first["level_start"][0]), int(first["level_count"][0])
        first["level_start"] = 0
        end = start + count
        self.history.append(first, bid[start:end], ask[start:end], volume[start:end])
        if len(bars) == 1:
            self._staged.pop(0)
        else:
            self._staged[0] = (bars[1:], bid, ask, volume)

    def reset_session(self) -> None:
        """Start cumulative delta from zero at the next bar."""
        self._cum_delta = 0

    def _close(self, head: np.ndarray | None, reveal: bool) -> None:
        chunks = [c for c in self._pending if len(c)]
        if head is not None and len(head):
            chunks.append(head)
        if not chunks:
            return
        ticks = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        bars, bid, ask, volume = compute_bars(
            ticks, self._tick_fixed, self.timeframe_ns, self._cum_delta
        )
        self._cum_delta = int(bars["cum_delta"][-1])
        if reveal:
            self.history.append(bars, bid, ask, volume)
        else:
            self._staged.append((bars, bid, ask, volume))
