"""Replay pace: any feed's stream, played at a speed multiplier of exchange time.

``speed = 100`` plays one hour of ticks in 36 s; ``"max"`` adds no waiting at all. Batches are cut
into slices of at most ``slice_wall_s`` of wall time, so a dashboard sees a steady flow rather than
bursts. The clock restarts at each ``SESSION_START``, so the night between two sessions is skipped.
Feeds that are live (class attribute ``live = True``) are never paced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from itertools import pairwise
from typing import cast

import numpy as np

from .types import FeedStatus, FeedStatusKind, TickBatch

Item = TickBatch | FeedStatus


async def paced(
    stream: AsyncIterator[Item],
    speed: float | str,
    slice_wall_s: float = 0.1,
    unpaced: Callable[[], bool] = lambda: False,
) -> AsyncGenerator[Item, None]:
    """``stream`` at ``speed``; while ``unpaced()`` is true (a resumed run rebuilding what it
    had already played) items pass at once and the clock starts again after them."""
    # A feed's stream() is an async generator (the Feed contract) but is annotated AsyncIterator,
    # as typing advises for generators; closing it needs the generator's aclose().
    feed = cast("AsyncGenerator[Item, None]", stream)
    if speed == "max":
        async with aclosing(feed):
            async for item in feed:
                yield item
        return
    async with aclosing(feed):
        async for item in _paced(stream, float(speed), slice_wall_s, unpaced):
            yield item


async def _paced(
    stream: AsyncIterator[Item],
    speed: float,
    slice_wall_s: float,
    unpaced: Callable[[], bool] = lambda: False,
) -> AsyncIterator[Item]:
    step_ns = max(1, int(slice_wall_s * speed * 1e9))
    anchor_ts: int | None = None
    anchor_wall = 0.0
    async for item in stream:
        if isinstance(item, FeedStatus):
            if item.kind is FeedStatusKind.SESSION_START:
                anchor_ts = None
            yield item
            continue
        if unpaced():
            anchor_ts = None
            yield item
            continue
        ts = item.ticks["ts_event"]
        if len(ts) == 0:
            continue
        if anchor_ts is None:
            anchor_ts, anchor_wall = int(ts[0]), time.monotonic()
        edges = np.arange(int(ts[0]) + step_ns, int(ts[-1]) + 1, step_ns)
        cuts = np.unique(np.searchsorted(ts, edges, side="left"))
        bounds = [0, *[int(c) for c in cuts if 0 < c < len(ts)], len(ts)]
        for start, end in pairwise(bounds):
            due = anchor_wall + (int(ts[start]) - anchor_ts) / 1e9 / speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            yield TickBatch(item.symbol, item.ticks[start:end])
        due = anchor_wall + (int(ts[-1]) - anchor_ts) / 1e9 / speed
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
