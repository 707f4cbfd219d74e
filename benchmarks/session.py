"""How fast is a full session through the whole pipeline?

Generates a 750,000-trade demo session (not timed), then plays it through the pipeline with the
real footprint engine, detectors, regime classifier, router, paper broker and SQLite journal, in
5,000-trade batches, and prints ticks/s, wall time and peak memory.

    python benchmarks/session.py [--trades 750000] [--batch 5000] [--config tradebot.yaml]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from tradebot_core import Pipeline, calendar, hookimpl
from tradebot_core.config import load_config
from tradebot_core.footprint import compute_bars
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.plugins import PluginManager
from tradebot_core.types import FeedStatus, FeedStatusKind, TickBatch

ROOT = Path(__file__).resolve().parents[1]


class ArrayFeed:
    """Plays a prepared tick array in fixed-size batches."""

    name = "benchmark_array"
    ticks: np.ndarray
    batch = 5000
    symbol = "ES"

    def __init__(self, settings: object, context: object) -> None:
        pass

    async def stream(self):
        ticks = ArrayFeed.ticks
        yield FeedStatus(kind=FeedStatusKind.SESSION_START, ts_ns=int(ticks["ts_event"][0]))
        for start in range(0, len(ticks), ArrayFeed.batch):
            yield TickBatch(ArrayFeed.symbol, ticks[start : start + ArrayFeed.batch])
        yield FeedStatus(kind=FeedStatusKind.SESSION_END, ts_ns=int(ticks["ts_event"][-1]))


class BenchmarkPlugin:
    @hookimpl
    def register_feeds(self, register):
        register(ArrayFeed)


def session_ticks(trades: int, symbol: str) -> np.ndarray:
    from tradebot_plugins.feeds.demo import DemoSettings, generate_session

    settings = DemoSettings(trades_per_session=trades)
    return generate_session(settings, InstrumentRegistry()[symbol], date(2024, 11, 13), seed=7)


def time_decisions(pipeline: Pipeline) -> dict[str, float]:
    """Accumulate the seconds spent in the regime classifier, the detectors and the router."""
    spent = {"regime": 0.0, "detectors": 0.0, "router": 0.0}

    def timed(obj: object, method: str, key: str) -> None:
        call = getattr(obj, method)

        def wrapper(*args: object) -> object:
            t0 = time.perf_counter()
            try:
                return call(*args)
            finally:
                spent[key] += time.perf_counter() - t0

        setattr(obj, method, wrapper)

    timed(pipeline.regime, "classify", "regime")
    for detector in pipeline.detectors:
        timed(detector, "on_bar_closed", "detectors")
    timed(pipeline.router, "route", "router")
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=750_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--config", default=str(ROOT / "tradebot.yaml"))
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    args = parser.parse_args()

    started = time.perf_counter()
    loaded = load_config(
        args.config,
        ["feed.plugin=benchmark_array", "feed.speed=max", "notifiers={}", "services={}"],
    )
    symbol = loaded.config.symbol
    ticks = session_ticks(args.trades, symbol)
    ArrayFeed.ticks, ArrayFeed.batch, ArrayFeed.symbol = ticks, args.batch, symbol
    print(f"generated {len(ticks):,} {symbol} trades in {time.perf_counter() - started:.2f} s")

    instrument = InstrumentRegistry()[symbol]
    t0 = time.perf_counter()
    bars, *_ = compute_bars(ticks, instrument.tick_fixed, loaded.config.timeframe_s * 10**9)
    footprint_s = time.perf_counter() - t0

    best = None
    for _ in range(args.repeat):
        manager = PluginManager()
        manager.register(BenchmarkPlugin(), "benchmark")
        # the exchange calendar is built once per process (start-up, see startup.py): not timed
        calendar.trading_date_of(int(ticks["ts_event"][0]))
        with tempfile.TemporaryDirectory() as tmp:
            pipeline = Pipeline(loaded, manager, journal_path=Path(tmp) / "bench.db")
            decisions = time_decisions(pipeline)
            t0 = time.perf_counter()
            summary = asyncio.run(pipeline.run())
            wall = time.perf_counter() - t0
        if best is None or wall < best[0]:
            best = (wall, summary, decisions)
    wall, summary, decisions = best
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"footprint only (one numpy pass): {footprint_s * 1000:.1f} ms for {len(bars)} bars")
    print(
        f"pipeline: {summary.ticks:,} ticks in {wall:.3f} s = {summary.ticks / wall:,.0f} ticks/s"
    )
    print(
        f"  bars {summary.bars}, signals {summary.signals}, orders {summary.orders}, "
        f"trades {summary.trades}, net ${summary.net_pnl}"
    )
    total = sum(decisions.values())
    parts = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in decisions.items())
    print(f"  of which regime + detectors + router: {total * 1000:.1f} ms ({parts})")
    print(f"peak memory (max RSS of this process): {peak_mb:.0f} MB")
    if wall > 1.0:
        print("slower than the 1 s bound for a full session", file=sys.stderr)


if __name__ == "__main__":
    main()
