"""A pipeline fed from a queue the test controls, with the status page on a free port."""

from __future__ import annotations

import asyncio

import pytest
from kernel.scripted import kernel_manager
from status_page.queued import STATUS_CONFIG, QueuedFeed, QueuedPlugin

import plugins.services.status_page as status_page_plugin
from tradebot_core.config import load_config
from tradebot_core.pipeline import Pipeline


@pytest.fixture
async def live(tmp_path):
    """``(pipeline, base_url, run_task)`` with the status page listening."""
    QueuedFeed.queue = asyncio.Queue()
    manager = kernel_manager()
    manager.register(status_page_plugin, "status_page")
    manager.register(QueuedPlugin(), "queued")
    path = tmp_path / "tradebot.yaml"
    path.write_text(STATUS_CONFIG)
    pipeline = Pipeline(load_config(path), manager, journal_path=tmp_path / "j.db")
    task = asyncio.create_task(pipeline.run())
    page = pipeline.services[0]
    for _ in range(200):
        if page.port:
            break
        await asyncio.sleep(0.01)
    yield pipeline, f"http://127.0.0.1:{page.port}", task
    await QueuedFeed.queue.put(None)
    await asyncio.wait_for(task, 10)
