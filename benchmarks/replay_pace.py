"""Does replay keep its pace? One hour of demo ticks at speed 100 should take 36 s.

    python benchmarks/replay_pace.py [--speed 100] [--minutes 60]

Runs the whole pipeline (demo feed, detectors, paper broker, journal) paced by the kernel and
prints the wall time against the target.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from tradebot_core import Pipeline
from tradebot_core.config import load_config
from tradebot_core.plugins import PluginManager

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=100)
    parser.add_argument("--minutes", type=int, default=60)
    args = parser.parse_args()
    end = f"{9 + (30 + args.minutes) // 60:02d}:{(30 + args.minutes) % 60:02d}"
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_config(
            ROOT / "tradebot.yaml",
            [
                f"feed.speed={args.speed}",
                f"feed.demo.session_end='{end}'",
                "feed.demo.trades_per_session=120000",
                "notifiers={}",
                "services={}",
                f"journal.path={Path(tmp) / 'pace.db'}",
            ],
        )
        pipeline = Pipeline(loaded, PluginManager())
        started = time.perf_counter()
        summary = asyncio.run(pipeline.run())
        wall = time.perf_counter() - started
    target = args.minutes * 60 / args.speed
    print(
        f"{args.minutes} min of ticks ({summary.ticks:,}) at speed {args.speed:g}: {wall:.2f} s "
        f"(target {target:.2f} s, {100 * (wall / target - 1):+.1f}%)"
    )


if __name__ == "__main__":
    main()
