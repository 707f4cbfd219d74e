"""A real (headless) Chromium watches the dashboard update during a demo run."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tradebot_core.config import load_config
from tradebot_core.pipeline import Pipeline
from tradebot_core.plugins import PluginManager

playwright = pytest.importorskip("playwright.async_api")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


async def test_dashboard_footprint_and_trades_update_live(repo_root, tmp_path):
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        pytest.skip("no chromium: scripts/test.sh installs it")
    loaded = load_config(
        repo_root / "tradebot.yaml",
        [
            "feed.speed=2000",
            "feed.demo.trades_per_session=60000",
            "notifiers={}",
            "services={status_page: {port: 0}}",
        ],
    )
    pipeline = Pipeline(loaded, PluginManager(), journal_path=tmp_path / "j.db")
    run = asyncio.create_task(pipeline.run())
    page_service = pipeline.services[0]
    try:
        for _ in range(500):
            if page_service.port:
                break
            await asyncio.sleep(0.01)
        async with playwright.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=browser_path, args=FLAGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(f"http://127.0.0.1:{page_service.port}/dashboard")
            bars = page.locator("#footprint .fp-bar")
            await page.wait_for_function(
                "document.querySelectorAll('#footprint .fp-bar').length > 0", timeout=20_000
            )
            first = await bars.last.get_attribute("data-bar-ts")
            await page.wait_for_function(
                f"(() => {{ const b = document.querySelectorAll('#footprint .fp-bar');"
                f" return b.length && b[b.length - 1].dataset.barTs !== '{first}'; }})()",
                timeout=20_000,
            )
            await page.wait_for_function(
                "document.querySelectorAll('#trades tbody tr').length > 0", timeout=30_000
            )
            assert await page.locator("#footprint .fp-row.poc").count() > 0
            assert await page.locator("#signals tbody tr").count() > 0
            assert (await page.locator("#regime").inner_text()) != "\u2013"  # the dash placeholder
            artifacts = repo_root / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            await page.screenshot(path=str(artifacts / "dashboard.png"))
            await browser.close()
    finally:
        pipeline.request_stop()
        await asyncio.wait_for(run, 30)
