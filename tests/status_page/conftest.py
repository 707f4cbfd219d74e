"""A pipeline fed from a queue the test controls, with the status page on a free port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import tradebot_plugins.services.status_page as status_page_plugin
from kernel.scripted import kernel_manager
from status_page.queued import QueuedFeed, QueuedPlugin, status_config

from tradebot_core import Pipeline
from tradebot_core.config import load_config


@dataclass
class Live:
    pipeline: Pipeline
    url: str
    run: asyncio.Task
    page: Any

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"


@pytest.fixture
async def start_live(tmp_path) -> AsyncIterator[Callable[..., Any]]:
    """``await start_live(services_yaml, extra_yaml)``: a running pipeline with the page; the
    run is ended after the test."""
    started: list[Live] = []

    async def start(services: str | None = None, extra: str = "") -> Live:
        QueuedFeed.queue = asyncio.Queue()
        manager = kernel_manager()
        manager.register(status_page_plugin, "status_page")
        manager.register(QueuedPlugin(), "queued")
        path = tmp_path / "tradebot.yaml"
        path.write_text(status_config(services, extra) if services else status_config(extra=extra))
        pipeline = Pipeline(load_config(path), manager, journal_path=tmp_path / "j.db")
        task = asyncio.create_task(pipeline.run())
        page = pipeline.services[0]
        for _ in range(300):
            if page.port and page._runner is not None:
                break
            await asyncio.sleep(0.01)
        else:
            raise TimeoutError("the status page did not start within 3 s")
        live = Live(pipeline, f"http://127.0.0.1:{page.port}", task, page)
        started.append(live)
        return live

    yield start
    for live in started:
        if not live.run.done():
            await QueuedFeed.queue.put(None)
        await asyncio.wait_for(live.run, 10)


@pytest.fixture
async def live(start_live) -> Live:
    """The pipeline with the page, a token and a fake vendor key configured."""
    return await start_live()
