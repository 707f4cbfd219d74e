"""Footprint histories for the regime tests: made-up closes, or the real 1-minute 6E bars."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from tradebot_core.footprint import BAR_DTYPE, FootprintHistory
from tradebot_core.instruments import Instrument, InstrumentRegistry

ET = ZoneInfo("America/New_York")
REGISTRY = InstrumentRegistry(
    {"6E": Instrument(symbol="6E", tick_size=Decimal("0.00005"), tick_value=Decimal("6.25"))}
)
ES = REGISTRY["ES"]
EURO = REGISTRY["6E"]
NS = 1_000_000_000


def bars_array(
    open_ns: np.ndarray,
    timeframe_s: int,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    typical: np.ndarray | None = None,
) -> np.ndarray:
    """BAR_DTYPE rows filled directly (prices in ticks); ``pv`` = typical price x volume."""
    n = len(close)
    bars = np.zeros(n, dtype=BAR_DTYPE)
    bars["ts_open"] = open_ns
    bars["ts_close"] = bars["ts_open"] + timeframe_s * NS
    bars["ts_last"] = bars["ts_close"] - 1
    bars["high"], bars["low"], bars["close"] = high, low, close
    bars["open"] = np.r_[close[:1], close[:-1]].clip(low, high)
    bars["volume"] = volume
    bars["trade_count"] = volume
    if typical is None:
        typical = (np.asarray(high) + np.asarray(low) + np.asarray(close)) / 3
    bars["pv"] = np.round(typical * volume).astype(np.int64)
    bars["poc"] = bars["val"] = bars["vah"] = close
    bars["level_count"] = bars["high"] - bars["low"] + 1
    bars["level_start"] = np.r_[0, np.cumsum(bars["level_count"])[:-1]]
    return bars


def history_from(bars: np.ndarray, instrument: Instrument, timeframe_s: int) -> FootprintHistory:
    """A history holding ``bars`` (zero ladders: the classifier does not read them)."""
    history = FootprintHistory(instrument, timeframe_s)
    levels = np.zeros(int(bars["level_count"].sum()), dtype=np.int64)
    history.append(bars, levels, levels, levels)
    return history


def synthetic(
    closes: list[int] | np.ndarray,
    start: datetime = datetime(2024, 11, 13, 10, 0, tzinfo=ET),
    timeframe_s: int = 60,
    spread: int = 4,
    volume: int | np.ndarray = 100,
) -> np.ndarray:
    """One bar per close (ticks), each ranging from the previous close to this one +- spread/2."""
    close = np.asarray(closes, dtype=np.int64)
    previous = np.r_[close[:1], close[:-1]]
    high = np.maximum(previous, close) + spread // 2
    low = np.minimum(previous, close) - spread // 2
    t0 = int(start.timestamp()) * NS
    open_ns = t0 + np.arange(len(close), dtype=np.int64) * timeframe_s * NS
    volumes = np.broadcast_to(np.asarray(volume, dtype=np.int64), close.shape)
    return bars_array(open_ns, timeframe_s, high, low, close, volumes)


def real_6e_bars(shared_data: Path, count: int | None = None) -> np.ndarray:
    """The recorded 1-minute 6EH4 bars (their timestamp is the bar's close) in BAR_DTYPE."""
    path = shared_data / "bars" / "6EH4.XCME_1min_bars_20240101_20240131.csv.gz"
    with gzip.open(path, "rt") as handle:
        rows = list(csv.DictReader(handle))[:count]
    tick = float(EURO.tick_size)

    def ticks(key: str) -> np.ndarray:
        return np.round(np.array([float(r[key]) for r in rows]) / tick).astype(np.int64)

    closes_ns = np.array(
        [
            int(datetime.fromisoformat(r["timestamp_utc"]).replace(tzinfo=UTC).timestamp()) * NS
            for r in rows
        ],
        dtype=np.int64,
    )
    high, low, close = ticks("high"), ticks("low"), ticks("close")
    volume = np.array([int(r["volume"]) for r in rows], dtype=np.int64)
    return bars_array(closes_ns - 60 * NS, 60, high, low, close, volume)
