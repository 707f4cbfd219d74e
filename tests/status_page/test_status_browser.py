"""A real headless Chromium (Debian's, driven by Playwright) watches the dashboard during a run."""

from __future__ import annotations

import asyncio

from tradebot_core import Pipeline
from tradebot_core.config import load_config
from tradebot_core.plugins import PluginManager

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TOKEN = "browser-test-token"


async def count(page, selector: str) -> int:
    return await page.locator(selector).count()


async def test_dashboard_footprint_and_trades_update_live(repo_root, tmp_path, require_browser):
    # skipped without them on a developer's machine, failed under TRADEBOT_REQUIRE_BROWSER=1 (CI)
    playwright = require_browser.playwright()
    browser_path = require_browser.chromium()
    # demo session paced so that its 5-minute bars close a few per second
    loaded = load_config(
        repo_root / "tradebot.yaml",
        [
            "feed.speed=1500",
            "feed.demo.trades_per_session=60000",
            "notifiers={}",
            f"services={{status_page: {{port: 0, token: {TOKEN}}}}}",
        ],
    )
    pipeline = Pipeline(loaded, PluginManager(), journal_path=tmp_path / "j.db")
    run = asyncio.create_task(pipeline.run())
    service = pipeline.services[0]
    try:
        for _ in range(500):
            if service.port and service._runner is not None:
                break
            await asyncio.sleep(0.01)
        async with playwright.async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=browser_path, args=FLAGS, timeout=20_000
            )
            try:
                page = await browser.new_page(viewport={"width": 1440, "height": 1100})
                page.set_default_timeout(30_000)
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(f"http://127.0.0.1:{service.port}/dashboard")
                await page.wait_for_selector("#footprint .fp-bar")
                first_last = await page.locator("#footprint .fp-bar").last.get_attribute(
                    "data-bar-ts"
                )
                first_trades = await count(page, "#trades tbody tr")
                # the chart gains bars: its newest bar changes as bars close
                await page.wait_for_function(
                    "(ts) => { const b = document.querySelectorAll('#footprint .fp-bar');"
                    " return b.length && b[b.length - 1].dataset.barTs !== ts; }",
                    arg=first_last,
                )
                # the trade list gains rows as trades close
                await page.wait_for_function(
                    "(n) => document.querySelectorAll('#trades tbody tr').length > n",
                    arg=first_trades,
                )
                shown = await page.locator("#footprint .fp-bar").evaluate_all(
                    "bars => bars.map(b => Number(b.dataset.barTs))"
                )
                assert shown == sorted(shown) and len(set(shown)) == len(shown)
                assert await count(page, "#footprint .fp-row.poc") == len(shown)  # one POC a bar
                assert await count(page, "#signals tbody tr") > 0
                assert (await page.locator("#regime").inner_text()) not in ("", "\u2013")
                await page.wait_for_function(
                    "document.querySelector('#trade-count').textContent !== '0'"
                )
                # a control through the page: the token, then Halt
                await page.fill("#token", TOKEN)
                await page.click("button[data-action=halt]")
                await page.wait_for_function(
                    "document.querySelector('#status').textContent === 'halted'"
                )
                assert pipeline.risk.state.halted
                await page.click("button[data-action=resume]")
                await page.wait_for_function(
                    "document.querySelector('#status').textContent === 'trading'"
                )
                artifacts = repo_root / "test-artifacts"
                artifacts.mkdir(exist_ok=True)
                await page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
                assert not errors, errors
            finally:
                await browser.close()
    finally:
        pipeline.request_stop()
        await asyncio.wait_for(run, 30)
