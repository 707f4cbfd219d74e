"""How fast do backtests go? 20 demo sessions of 750,000 trades each, on the local executor.

    python benchmarks/backtest.py [--days 20] [--trades 750000] [--workers 2]

Prints wall time, ticks/s and per-day cost. Each day generates its session (as the demo feed
does in a real backtest) and runs it through the whole pipeline.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date
from pathlib import Path

from tradebot_plugins.backtest.engine import run_backtest
from tradebot_plugins.backtest.executors import make_executor
from tradebot_plugins.feeds.demo import session_dates

from tradebot_core.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--trades", type=int, default=750_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--config", default=str(ROOT / "tradebot.yaml"))
    args = parser.parse_args()
    loaded = load_config(
        args.config,
        [f"feed.demo.trades_per_session={args.trades}", "feed.plugin=demo", "feed.speed=max"],
    )
    days = session_dates(date(2024, 10, 1), args.days)
    executor = make_executor("local", args.workers)
    started = time.perf_counter()
    try:
        result = run_backtest(loaded, days, executor)
    finally:
        executor.close()
    wall = time.perf_counter() - started
    per_day = sum(d["wall_s"] for d in result.days) / len(result.days)
    print(f"{len(days)} sessions x {args.trades:,} trades on {args.workers} workers")
    print(f"wall {wall:.2f} s, {result.ticks / wall:,.0f} ticks/s, {per_day:.3f} s per day (cpu)")
    trades = len(result.trades)
    print(f"trades {trades}, final balance ${result.final_balance}, reruns {result.reruns}")


if __name__ == "__main__":
    main()
