"""A real headless Chromium (Debian's, driven by Playwright) watches the dashboard during a run."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import status_page.queued as queued
from status_page.queued import feed, minutes, paced

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
            "feed.demo.sessions=2",  # the run outlives the test on a loaded machine (stopped after)
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
                shown, pocs = await page.evaluate(  # one look: the chart redraws 4 times a second
                    "() => [[...document.querySelectorAll('#footprint .fp-bar')]"
                    ".map(b => Number(b.dataset.barTs)),"
                    " document.querySelectorAll('#footprint .fp-bar .fp-row.poc').length]"
                )
                assert shown == sorted(shown) and len(set(shown)) == len(shown)
                assert pocs == len(shown)  # one POC a closed bar
                assert await count(page, "#signals tbody tr") > 0
                assert (await page.locator("#regime").inner_text()) not in ("", "\u2013")
                await page.wait_for_function(
                    "document.querySelector('#trade-count').textContent !== '0'"
                )
                # a signal's whole chain of reasons: on hover (title), and in a row when clicked
                title, items = await page.evaluate(
                    "() => { const tr = document.querySelector('#signals tr.has-reasons');"
                    " tr.click(); const items = tr.nextElementSibling.querySelectorAll('li');"
                    " return [tr.title, [...items].map(l => l.textContent)]; }"
                )
                assert items and items == title.split("\n")
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


async def test_header_price_and_unrealized_pnl_move_between_bar_closes(
    start_live, monkeypatch, require_browser
):
    """At real-time pace (one tick at a time, as the market sends them), the header's price
    changes while no bar closes, and an open position shows its unrealized P&L."""
    playwright = require_browser.playwright()
    browser_path = require_browser.chromium()
    wide = "router: {plugin: approve_all, approve_all: {stop_ticks: 400, target_ticks: 400}}"
    monkeypatch.setattr(  # brackets far away: the position opened stays open during the test
        queued, "BASE_CONFIG", queued.BASE_CONFIG.replace("router: {plugin: approve_all}", wide)
    )
    live = await start_live()
    await feed(minutes(0, 5), live.pipeline)  # 10:00-10:03 closed (a position open), 10:04 forms
    assert live.pipeline.view.net_position() != 0
    closed_ts = live.page.bars[-1]["ts_open"]
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=browser_path, args=FLAGS, timeout=20_000)
        pacer = None
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 1100})
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(live.url + "/dashboard")
            last_bar = "#footprint .fp-bar"
            await page.wait_for_function(
                "(ts) => { const b = document.querySelectorAll('#footprint .fp-bar');"
                " return b.length && Number(b[b.length - 1].dataset.barTs) === ts; }",
                arg=closed_ts,
            )
            await page.wait_for_selector("#footprint .fp-forming")  # 10:04, drawn apart
            pacer = asyncio.create_task(paced(minutes(5, 1)))  # 10:05 in real time
            # the first tick of 10:05 closes 10:04: from there no bar closes for a minute
            await page.wait_for_function(
                "(ts) => { const b = document.querySelectorAll('#footprint .fp-bar');"
                " return Number(b[b.length - 1].dataset.barTs) > ts; }",
                arg=closed_ts,
            )
            bars_then = len(live.page.bars)
            newest = await page.locator(last_bar).last.get_attribute("data-bar-ts")
            price = await page.locator("#last").inner_text()
            await page.wait_for_function(
                "(p) => document.querySelector('#last').textContent !== p", arg=price
            )
            assert len(live.page.bars) == bars_then  # no bar closed meanwhile
            assert await page.locator(last_bar).last.get_attribute("data-bar-ts") == newest
            assert await page.locator("#footprint .fp-forming").count() == 1
            # the open position and its unrealized P&L, in the header and the table
            await page.wait_for_function(
                "document.querySelector('#unrealized').textContent.includes('$')"
            )
            shown = await page.locator("#unrealized").inner_text()
            assert re.fullmatch(r"-?\$[0-9,]+\.[0-9]{2}", shown), shown
            assert await page.locator("#position").inner_text() not in ("0", "\u2013")
            row = page.locator("#positions tbody tr").first
            assert re.fullmatch(r"-?\$[0-9,]+\.[0-9]{2}", await row.locator("td").last.inner_text())
            # ticks stop: within a live interval the page shows exactly what the run holds
            pacer.cancel()
            await asyncio.sleep(0.1)
            view = live.pipeline.view
            expected = _money(view.unrealized()), str(view.net_position())
            await page.wait_for_function(
                "([u, n]) => document.querySelector('#unrealized').textContent === u"
                " && document.querySelector('#position').textContent.replace('+', '') === n",
                arg=list(expected),
                timeout=5_000,
            )
            assert not errors, errors
        finally:
            if pacer is not None:
                pacer.cancel()
            await browser.close()


def _money(value: Decimal) -> str:
    """As the dashboard writes money: -$1,234.50."""
    return ("-" if value < 0 else "") + f"${abs(value):,.2f}"
