"""Helpers shared by the ``databento_live`` tests: build a feed against the gateway, read it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from live_gateway import LoopbackLiveGateway
from tradebot_plugins.feeds.databento_live import DatabentoLiveFeed, DatabentoLiveSettings

from tradebot_core.components import PluginContext
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import FeedStatus, TickBatch

API_KEY = "db-Tr4deb0tL00pbackK3ySecret9xQ2"  # 32 characters, as Databento's keys
COLLECT_TIMEOUT_S = 20.0


def make_feed(gateway: LoopbackLiveGateway, **overrides: Any) -> DatabentoLiveFeed:
    """A feed pointed at ``gateway``, with test-sized batches and backoffs."""
    settings: dict[str, Any] = {
        "api_key": API_KEY,
        "gateway": "127.0.0.1",
        "port": gateway.port,
        "batch_max": 100,
        "reconnect_initial_s": 0.01,
        "reconnect_max_s": 0.05,
        "reconnect_max_attempts": 5,
    }
    settings.update(overrides)
    context = PluginContext(
        symbol="ES", instruments=InstrumentRegistry(), timeframe_s=60, data_dir=Path(".")
    )
    return DatabentoLiveFeed(DatabentoLiveSettings(**settings), context)


async def collect(
    feed: DatabentoLiveFeed,
    n_ticks: int | None,
    timeout: float = COLLECT_TIMEOUT_S,
    on_batch: Callable[[TickBatch], None] | None = None,
) -> tuple[list[TickBatch], list[FeedStatus], BaseException | None]:
    """Read the feed until ``n_ticks`` ticks came (or the stream ended or raised).

    Returns the batches, the statuses and the exception the stream raised (None if none).
    A hang fails the test through ``timeout``.
    """
    batches: list[TickBatch] = []
    statuses: list[FeedStatus] = []
    error: BaseException | None = None

    async def run() -> None:
        nonlocal error
        stream = feed.stream()
        try:
            async for item in stream:
                if isinstance(item, TickBatch):
                    batches.append(item)
                    if on_batch is not None:
                        on_batch(item)
                    if n_ticks is not None and sum(map(len, batches)) >= n_ticks:
                        break
                else:
                    statuses.append(item)
        except Exception as exc:
            error = exc
        finally:
            await stream.aclose()

    await asyncio.wait_for(run(), timeout)
    return batches, statuses, error


def ticks_of(batches: list[TickBatch]) -> np.ndarray:
    """All ticks of ``batches``, in order."""
    return np.concatenate([b.ticks for b in batches]) if batches else np.empty(0)
