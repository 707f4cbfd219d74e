"""The status page never slows trading: 200 WebSocket clients that never read, against a
max-speed demo session, change nothing in the results, slow it boundedly, and the page's
per-client queues stay bounded."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from pathlib import Path

import aiohttp

from tradebot_core import EventKind, Pipeline
from tradebot_core.config import load_config
from tradebot_core.plugins import PluginManager

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "load-test-token"
SILENT = 200


async def run_session(tmp: Path, silent: int) -> tuple[float, dict, int, int]:
    """(trading seconds, summary, largest client queue, the page's client_queue bound)."""
    loaded = load_config(
        ROOT / "tradebot.yaml",
        [
            "feed.plugin=demo",
            "feed.speed=max",
            "feed.demo.trades_per_session=50000",
            "notifiers={}",
            f"services={{status_page: {{port: 0, token: {TOKEN}}}}}",
        ],
    )
    pipeline = Pipeline(loaded, PluginManager(), journal_path=tmp / f"j{silent}.db")
    page = pipeline.services[0]
    gate, times, largest = asyncio.Event(), {}, [0]
    stream = pipeline.feed.stream

    async def gated():
        async with aclosing(stream()) as items:
            async for item in items:
                if "start" not in times:
                    await gate.wait()
                    times["start"] = time.perf_counter()
                yield item

    def on_stop(event) -> None:
        times.setdefault("end", time.perf_counter())

    seen: set = set()  # every client queue the page held during the run

    def measure() -> None:
        seen.update(list(page.clients))

    pipeline.feed.stream = gated
    pipeline.bus.subscribe(on_stop, [EventKind.SYSTEM_STOP])
    run = asyncio.create_task(pipeline.run())
    for _ in range(500):
        if page.port and page._runner is not None:
            break
        await asyncio.sleep(0.01)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        url = f"ws://127.0.0.1:{page.port}/ws"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        sockets = []
        for _ in range(0, silent, 50):
            sockets += await asyncio.gather(
                *(http.ws_connect(url, headers=auth) for _ in range(min(50, silent)))
            )
        for _ in range(500):
            if len(page.clients) >= silent:
                break
            await asyncio.sleep(0.01)
        assert len(page.clients) == silent
        quiet = 0  # the handshakes' CPU paid off (0.1 s without debt): the page works from the
        for _ in range(3000):  # start of the run
            quiet = quiet + 1 if page.budget.debt() == 0 else 0
            if quiet == 10:
                break
            await asyncio.sleep(0.01)

        async def sample() -> None:
            while True:
                measure()
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        gate.set()
        done, _ = await asyncio.wait({run}, timeout=60)
        assert done, "the run did not end within 60 s"
        sampler.cancel()
        largest[0] = max((client.most for client in seen), default=0)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    summary = run.result()
    fields = {k: str(getattr(summary, k)) for k in ("bars", "signals", "orders", "trades")}
    fields["net_pnl"] = str(summary.net_pnl)
    fields["exit"] = summary.exit
    return times["end"] - times["start"], fields, largest[0], page.settings.client_queue


async def test_silent_clients_change_nothing_and_slow_trading_boundedly(tmp_path):
    await run_session(tmp_path, 0)  # warm-up: imports, calendar
    alone = [await run_session(tmp_path, 0) for _ in range(2)]
    loaded = await run_session(tmp_path, SILENT)
    assert loaded[1] == alone[0][1] == alone[1][1]
    assert loaded[1]["exit"] == "completed" and int(loaded[1]["trades"]) > 0
    baseline = min(wall for wall, *_ in alone)
    assert loaded[0] < 3 * baseline, (loaded[0], baseline)
    assert 0 < loaded[2] <= loaded[3]  # the queues held something, within client_queue
