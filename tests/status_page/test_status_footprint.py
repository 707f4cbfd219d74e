"""The footprint panel in a real headless Chromium: as many bars as fit its width, the price axis
fitted to them, scrolling back through the session, zoom, and back to live."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import numpy as np
from kernel.scripted import et, make_ticks
from status_page.queued import feed
from status_page.test_status_browser import FLAGS

TEN = int(et(2024, 11, 13, 10, 0).timestamp() * 1e9)
TICKS = make_ticks(et(2024, 11, 13, 10, 0), 300 * 125, seed=3)  # a random walk of ES trades


def minutes(start: int, count: int) -> np.ndarray:
    """``count`` minutes of trades from ``start`` minutes after 10:00 ET."""
    t0, t1 = TEN + start * 60 * 10**9, TEN + (start + count) * 60 * 10**9
    return TICKS[(TICKS["ts_event"] >= t0) & (TICKS["ts_event"] < t1)]


VISIBLE = (
    "() => { const c = document.querySelector('#footprint .fp-chart');"
    " const cols = [...c.querySelectorAll('.fp-bar, .fp-forming')];"
    " return { ts: cols.map(b => b.dataset.barTs),"
    " forming: cols.map(b => b.classList.contains('fp-forming')),"
    " times: cols.map(b => b.querySelector('.fp-time').textContent),"
    " chart: c.getBoundingClientRect().width,"
    " panel: document.querySelector('#footprint').clientWidth,"
    " low: c.dataset.low, high: c.dataset.high,"
    " live: document.querySelector('#fp-live').classList.contains('on') }; }"
)


async def visible(page) -> dict:
    return await page.evaluate(VISIBLE)


async def test_the_footprint_fills_its_panel_scrolls_back_and_zooms(
    start_live, tmp_path, require_browser
):
    playwright = require_browser.playwright()
    browser_path = require_browser.chromium()
    live = await start_live()
    for start in range(0, 120, 30):  # 10:00-11:58 closed, 11:59 forming
        await feed(minutes(start, 30), live.pipeline)
    session = {str(b["ts_open"]): b for b in live.page.bars}
    assert len(session) == 119 > live.page.settings.recent_bars  # the page loads 30 at first
    before = live.page.bars[40]["ts_open"]  # older bars, for the page scrolling back
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{live.url}/api/bars?before={before}&limit=5") as r,
    ):
        older = await r.json()
    assert [b["ts_open"] for b in older] == [b["ts_open"] for b in list(live.page.bars)[35:40]]
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=browser_path, args=FLAGS, timeout=20_000)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 1100})
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(live.url + "/dashboard")
            await page.wait_for_selector("#footprint .fp-forming")
            now = await visible(page)
            # many bars, filling the panel's width, the newest closed one then the forming one
            assert len(now["ts"]) > 7, now["times"]
            assert now["chart"] >= 0.85 * (now["panel"] - 64), now
            assert now["live"] and now["forming"][-1] and not any(now["forming"][:-1])
            assert now["ts"][-2] == str(live.page.bars[-1]["ts_open"])
            # the price axis: the visible bars' low to high, with a small margin
            shown = [session[ts] for ts in now["ts"][:-1]]
            forming = live.pipeline.view.forming_bar()
            lows = [Decimal(b["low"]) for b in [*shown, forming]]
            highs = [Decimal(b["high"]) for b in [*shown, forming]]
            low, high = Decimal(now["low"]), Decimal(now["high"])
            assert low < min(lows) and high > max(highs)
            span = max(highs) - min(lows)
            assert high - low <= span * Decimal("1.2") + 2, (low, high, min(lows), max(highs))
            await page.screenshot(path=str(tmp_path / "footprint-live.png"), full_page=True)

            # the mouse wheel (up) scrolls back: older bars, the axis fitted to them
            await page.mouse.move(700, 400)
            await page.mouse.wheel(0, -400)  # 40 px a bar: 10 bars back
            await page.wait_for_function(
                "!document.querySelector('#fp-live').classList.contains('on')"
            )
            back = await visible(page)
            assert not any(back["forming"]) and len(back["ts"]) == len(now["ts"])
            order = list(session)  # the session's closed bars, oldest first
            assert order.index(back["ts"][-1]) == order.index(now["ts"][-2]) - 10
            assert back["times"][0] < now["times"][0]
            shown = [session[ts] for ts in back["ts"]]
            assert Decimal(back["low"]) < min(Decimal(b["low"]) for b in shown)
            assert Decimal(back["high"]) > max(Decimal(b["high"]) for b in shown)
            # new bars while scrolled back do not move the view
            held = await page.evaluate("state.bars.length")
            await feed(minutes(120, 2), live.pipeline)  # 11:59 and 12:00 close
            await page.wait_for_function("(n) => state.bars.length === n", arg=held + 2)
            assert (await visible(page))["ts"] == back["ts"]
            # Home: the session's first bar (10:00), fetched from /api/bars?before=
            await page.focus("#footprint")
            await page.keyboard.press("Home")
            await page.wait_for_function(
                "() => document.querySelector('#footprint .fp-time').textContent === '10:00'"
            )
            first = await visible(page)
            assert first["ts"][0] == str(live.page.bars[0]["ts_open"])
            assert len(first["ts"]) == len(now["ts"])  # a whole panel of bars
            # arrow right: one bar newer; dragging right: older again
            await page.keyboard.press("ArrowRight")
            await page.wait_for_function(
                "(ts) => document.querySelector('#footprint .fp-bar').dataset.barTs !== ts",
                arg=first["ts"][0],
            )
            assert (await visible(page))["ts"][0] == first["ts"][1]
            await page.screenshot(path=str(tmp_path / "footprint-back.png"), full_page=True)

            # zoom: out shows more bars, in fewer
            before = len((await visible(page))["ts"])
            await page.click("#fp-zoom-out")
            wider = len((await visible(page))["ts"])
            await page.click("#fp-zoom-in")
            await page.click("#fp-zoom-in")
            await page.keyboard.press("+")  # the toolbar's button has the focus: the key works
            narrower = len((await visible(page))["ts"])
            assert wider > before > narrower, (wider, before, narrower)
            await page.screenshot(path=str(tmp_path / "footprint-zoomed.png"), full_page=True)

            # live: the newest bars again, the forming one at the right
            await page.click("#fp-live")
            back_live = await visible(page)
            assert back_live["live"] and back_live["forming"][-1]
            assert back_live["ts"][-2] == str(live.page.bars[-1]["ts_open"])
            await page.click("#fp-zoom-out")
            await page.click("#fp-zoom-out")
            await page.screenshot(path=str(tmp_path / "footprint-out.png"), full_page=True)
            assert not errors, errors
        finally:
            await browser.close()
