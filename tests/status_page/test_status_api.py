"""The status page's REST API and WebSocket, against a live pipeline."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import numpy as np
import pytest
from kernel.scripted import et, make_ticks
from status_page.queued import QueuedFeed

from tradebot_core.types import TickBatch

TOKEN = "tok-SECRET-abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def minutes(start_minute: int, count: int, seed: int = 1) -> np.ndarray:
    """``count`` minutes of ES trades from 10:``start_minute`` ET."""
    ticks = make_ticks(et(2024, 11, 13, 10, 0), 300 * (start_minute + count), seed=seed)
    t0 = int(et(2024, 11, 13, 10, start_minute).timestamp() * 1e9)
    t1 = t0 + count * 60 * 10**9
    return ticks[(ticks["ts_event"] >= t0) & (ticks["ts_event"] < t1)]


async def feed(ticks: np.ndarray, pipeline) -> None:
    """Hand ticks to the run and wait until the pipeline has taken them."""
    await QueuedFeed.queue.put(TickBatch("ES", ticks))
    for _ in range(500):
        if QueuedFeed.queue.empty() and pipeline.last_ts_ns >= int(ticks["ts_event"][-1]):
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the pipeline did not take the batch")


async def test_health_and_status(live):
    pipeline, url, _ = live
    await feed(minutes(0, 5), pipeline)
    async with aiohttp.ClientSession() as http:
        health = await (await http.get(url + "/")).json()
        status = await (await http.get(url + "/api/session/status")).json()
        stats = await (await http.get(url + "/api/statistics")).json()
    assert health["status"] == "ok" and health["feed_connected"] is True
    assert 0 <= health["last_tick_age_s"] < 60
    assert status["symbol"] == "ES" and status["summary"]["bars"] >= 4
    assert status["risk"]["max_position"] == 1
    assert stats["trades"] == pipeline.summary.trades


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
)
async def test_control_needs_the_bearer_token(live, headers):
    pipeline, url, _ = live
    async with aiohttp.ClientSession() as http:
        response = await http.post(url + "/api/session/halt", headers=headers)
    assert response.status == 401
    assert not pipeline.risk.state.halted


async def test_halt_stops_new_entries_from_the_next_bar(live):
    pipeline, url, _ = live
    await feed(minutes(0, 10), pipeline)
    assert pipeline.summary.orders > 0
    async with aiohttp.ClientSession() as http:
        response = await http.post(url + "/api/session/halt", headers=AUTH)
        assert (await response.json())["halted"] is True
    halted_at = pipeline.last_ts_ns
    orders_before = pipeline.summary.orders
    await feed(minutes(10, 10), pipeline)
    assert pipeline.summary.orders == orders_before
    after = pipeline.journal.rows("SELECT reasons FROM decisions WHERE ts_ns > ?", (halted_at,))
    assert after and all("halted: halted from the status page" in r["reasons"] for r in after)
    async with aiohttp.ClientSession() as http:
        await http.post(url + "/api/session/resume", headers=AUTH)
    await feed(minutes(20, 10), pipeline)
    assert pipeline.summary.orders > orders_before


async def test_settings_are_validated_and_applied(live):
    pipeline, url, _ = live
    async with aiohttp.ClientSession() as http:
        bad = await http.post(url + "/api/settings", headers=AUTH, json={"daily_loss_limit": 5})
        assert bad.status == 400
        assert "daily_loss_limit: must be <= 0" in (await bad.json())["error"]
        unknown = await http.post(url + "/api/settings", headers=AUTH, json={"leverage": 50})
        assert unknown.status == 400 and "leverage" in (await unknown.json())["error"]
        tick_clash = await http.post(url + "/api/settings", headers=AUTH, json={"symbol": "CL"})
        assert tick_clash.status == 400 and "ticks by" in (await tick_clash.json())["error"]
        ok = await http.post(
            url + "/api/settings",
            headers=AUTH,
            json={"daily_loss_limit": "-150", "max_position": 3, "symbol": "MES"},
        )
        assert ok.status == 200
    assert str(pipeline.risk.settings.daily_loss_limit) == "-150"
    assert pipeline.risk.settings.max_position == 3
    assert pipeline.account.symbol == "MES"


async def test_websocket_streams_bars_signals_and_trades_in_order(live):
    pipeline, url, _ = live
    ws_url = url.replace("http", "ws") + "/ws"
    messages = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(ws_url, headers={"Origin": url}) as socket,
    ):
        await feed(minutes(0, 30), pipeline)
        while True:
            try:
                message = await asyncio.wait_for(socket.receive_str(), 1)
            except TimeoutError:
                break
            messages.append(json.loads(message))
    kinds = [m["type"] for m in messages]
    assert kinds.count("bar") >= 25
    assert {"signal", "decision", "order", "fill", "trade_closed"} <= set(kinds)
    stamps = [m["ts_ns"] for m in messages if m["type"] in ("bar", "signal", "decision")]
    assert stamps == sorted(stamps)
    first_bar = next(m for m in messages if m["type"] == "bar")["data"]
    assert {"open", "high", "low", "close", "poc", "levels", "delta"} <= set(first_bar)


async def test_websocket_refuses_a_foreign_origin(live):
    _, url, _ = live
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(
                url.replace("http", "ws") + "/ws", headers={"Origin": "http://evil.example"}
            )
    assert refused.value.status == 403


async def test_no_response_carries_a_secret(live):
    pipeline, url, _ = live
    await feed(minutes(0, 10), pipeline)
    bodies = []
    async with aiohttp.ClientSession() as http:
        for path in (
            "/",
            "/dashboard",
            "/api/session/status",
            "/api/trades",
            "/api/signals",
            "/api/positions",
            "/api/statistics",
            "/api/bars",
            "/static/dashboard.js",
        ):
            response = await http.get(url + path)
            assert response.status == 200, path
            bodies.append(await response.text())
        for path in ("/api/session/halt", "/api/settings"):
            bodies.append(await (await http.post(url + path, json={})).text())
    assert all("SECRET" not in body for body in bodies)


async def test_control_is_off_without_a_token(tmp_path):
    from plugins.services.status_page import StatusPage, StatusPageSettings

    page = StatusPage(StatusPageSettings(port=0), None)
    from aiohttp.test_utils import TestClient, TestServer

    page.pipeline = None
    async with TestClient(TestServer(page.app())) as client:
        response = await client.post("/api/session/halt", headers=AUTH)
        assert response.status == 403
        assert "set services.status_page.token" in (await response.json())["error"]
