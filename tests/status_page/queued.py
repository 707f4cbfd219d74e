"""A feed the test controls through a queue (imported as ``status_page.queued``)."""

from __future__ import annotations

import asyncio
from typing import Any

from kernel.scripted import BASE_CONFIG

from tradebot_core import hookimpl
from tradebot_core.types import FeedStatus, FeedStatusKind


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


STATUS_CONFIG = BASE_CONFIG.replace(
    "feed: {plugin: scripted, scripted: {batches: 1}}",
    """
feed:
  plugin: queued
  databento: {api_key: db-SECRET-key-123456}
services:
  status_page: {port: 0, token: tok-SECRET-abcdef}
""",
)
