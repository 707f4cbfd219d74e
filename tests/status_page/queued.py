"""Helpers of the status page tests (imported as ``status_page.queued``): a feed the test drives
through a queue, the config with a token and a fake vendor key, and tick minutes to feed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from kernel.scripted import BASE_CONFIG, et, make_ticks

from tradebot_core import hookimpl
from tradebot_core.types import FeedStatus, FeedStatusKind, TickBatch

TOKEN = "tok-SECRET-abcdef"
API_KEY = "db-SECRET-key-123456"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class QueuedFeed:
    """Yields whatever the test puts in ``QueuedFeed.queue``; None ends the run."""

    name = "queued"
    queue: asyncio.Queue

    def __init__(self, settings: Any, context: Any) -> None:
        pass

    async def stream(self):
        yield FeedStatus(kind=FeedStatusKind.CONNECTED, ts_ns=0)
        while True:
            item = await QueuedFeed.queue.get()
            if item is None:
                return
            yield item


class QueuedPlugin:
    @hookimpl
    def register_feeds(self, register):
        register(QueuedFeed)


def status_config(services: str = f"{{port: 0, token: {TOKEN}}}", extra: str = "") -> str:
    """The kernel tests' config on the queued feed, with a fake Databento key and the page
    (``extra``: more top-level YAML). No account tiers unless ``extra`` sets ``account``: the
    tests switch symbols freely."""
    if "account:" not in extra and "account:" not in BASE_CONFIG:
        extra = "account: {tiers: []}\n" + extra
    return extra + BASE_CONFIG.replace(
        "feed: {plugin: scripted, scripted: {batches: 1}}",
        f"""
feed:
  plugin: queued
  databento: {{api_key: {API_KEY}}}
services:
  status_page: {services}
""",
    )


def minutes(start_minute: int, count: int, seed: int = 1) -> np.ndarray:
    """``count`` minutes of ES trades from 10:``start_minute`` ET (one seeded random walk)."""
    ticks = make_ticks(et(2024, 11, 13, 10, 0), 300 * (start_minute + count), seed=seed)
    t0 = int(et(2024, 11, 13, 10, start_minute).timestamp() * 1e9)
    t1 = t0 + count * 60 * 10**9
    return ticks[(ticks["ts_event"] >= t0) & (ticks["ts_event"] < t1)]


async def feed(ticks: np.ndarray, pipeline: Any) -> None:
    """Hand ticks to the run and wait (bounded) until the pipeline has processed them."""
    await QueuedFeed.queue.put(TickBatch("ES", ticks))
    for _ in range(500):
        if QueuedFeed.queue.empty() and pipeline.last_ts_ns >= int(ticks["ts_event"][-1]):
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the pipeline did not take the batch within 5 s")


async def paced(ticks, speed: float = 1.0) -> None:
    """Hand ``ticks`` to the run at the pace of their timestamps (``speed`` 1: real time)."""
    t0, wall0 = int(ticks["ts_event"][0]), time.monotonic()
    for index in range(len(ticks)):  # one tick a batch, as a live feed often delivers them
        due = (int(ticks["ts_event"][index]) - t0) / 1e9 / speed
        await asyncio.sleep(max(0.0, wall0 + due - time.monotonic()))
        await QueuedFeed.queue.put(TickBatch("ES", ticks[index : index + 1]))
