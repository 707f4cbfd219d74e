"""One backtest day: the same pipeline as ``tradebot run``, on one trading day of the feed.

:func:`run_day` is a plain function of a picklable :class:`DayJob`, so it runs the same in this
process, in a worker process, or on a Dask worker on another machine.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from tradebot_core import Event, EventKind, LoadedConfig, Pipeline, PluginManager
from tradebot_core.components import day_settings
from tradebot_core.footprint import BarSet


@dataclass(frozen=True)
class DayJob:
    loaded: LoadedConfig
    day: date
    start_balance: Decimal
    warm: BarSet | None = None
    """The closed bars before this day (the previous days of the backtest): they warm the
    history, the regime classifier and the detectors before the day trades, as in one
    continuous run."""


@cache
def _manager() -> PluginManager:
    """One plugin manager per worker process: loading entry points is not free."""
    return PluginManager()


def day_config(loaded: LoadedConfig, day: date) -> LoadedConfig:
    """The config of one day: the feed set to that day, at full speed, quiet."""
    manager = _manager()
    feed = loaded.config.feed
    info = manager.get("feed", feed.plugin, loaded.where(("feed", "plugin")))
    settings = day_settings(info.cls, feed.settings_for(feed.plugin), day)
    return loaded.override(
        [
            f"feed.{feed.plugin}={json.dumps(settings, default=str)}",
            "feed.speed=max",
            "notifiers={}",
            "services={}",
        ]
    )


class _Collector:
    def __init__(self) -> None:
        self.trades: list[dict[str, Any]] = []
        self.tier_changes: list[dict[str, Any]] = []
        self.rejections: Counter[str] = Counter()

    def __call__(self, event: Event) -> None:
        if event.kind is EventKind.TRADE_CLOSED:
            self.trades.append(event.payload.model_dump(mode="json"))
        elif event.kind is EventKind.TIER_CHANGE:
            self.tier_changes.append({**event.payload, "ts_ns": event.ts_ns})
        elif event.kind is EventKind.ROUTE_DECISION and event.payload.intent is None:
            last = event.payload.reasons[-1] if event.payload.reasons else "rejected"
            # "risk: margin: 2 x ES needs..." -> "risk: margin"
            self.rejections[": ".join(p.strip() for p in last.split(":")[:2])] += 1


def day_bars(job: DayJob) -> BarSet:
    """The closed footprint bars of one day (the first pass of a backtest: cheap, no trading)."""
    loaded = day_config(job.loaded, job.day)
    pipeline = Pipeline(loaded, _manager(), journal_path=":memory:")
    pipeline.session.warmup_ticks = 1 << 62  # every tick only builds bars...
    pipeline.session.bars_only = True  # ...and no regime or detector runs on them
    asyncio.run(pipeline.run())
    return pipeline.session.history.export()


def run_day(job: DayJob) -> dict[str, Any]:
    """Run one day; returns a JSON-ready result (no wall-clock values but ``wall_s``)."""
    started = time.perf_counter()
    loaded = day_config(job.loaded, job.day)
    pipeline = Pipeline(
        loaded, _manager(), journal_path=":memory:", starting_balance=job.start_balance
    )
    if job.warm is not None:
        warm = job.warm
        pipeline.session.warm_from_bars(warm.bars, warm.bid, warm.ask, warm.volume)
    collector = _Collector()
    pipeline.bus.subscribe(
        collector, [EventKind.TRADE_CLOSED, EventKind.TIER_CHANGE, EventKind.ROUTE_DECISION]
    )
    summary = asyncio.run(pipeline.run())
    net = sum((Decimal(t["net_pnl"]) for t in collector.trades), Decimal("0"))
    return {
        "day": job.day.isoformat(),
        "start_balance": str(job.start_balance),
        "end_balance": str(job.start_balance + net),
        "net_pnl": str(net),
        "ticks": summary.ticks,
        "bars": summary.bars,
        "warmup_bars": summary.warmup_bars,
        "signals": dict(sorted(summary.patterns.items())),
        "orders": summary.orders,
        "rejections": dict(sorted(collector.rejections.items())),
        "trades": collector.trades,
        "tier_changes": collector.tier_changes,
        "wall_s": time.perf_counter() - started,
    }
