"""Control and settings endpoints: the token, halt/resume/start/stop, validated settings."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import pytest
from status_page.queued import AUTH, TOKEN, QueuedFeed, feed, minutes

from tradebot_core.types import EventKind, TickBatch


async def post(url: str, headers: dict | None = None, body: object = None) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
        http.post(url, headers=headers or {}, json=body) as response,
    ):
        return response.status, await response.json()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Bearer"}],
    ids=["none", "wrong", "no-scheme", "empty"],
)
@pytest.mark.parametrize("path", ["/api/session/halt", "/api/session/stop", "/api/settings"])
async def test_control_needs_the_bearer_token(live, headers, path):
    status, body = await post(live.url + path, headers, {"max_position": 5})
    assert status == 401 and "Bearer" in body["error"]
    p = live.pipeline
    assert not p.risk.state.halted and not p.stop_requested
    assert p.risk.settings.max_position == 1


@pytest.mark.parametrize("token", ["", "'   '"])
async def test_control_is_off_without_a_token(start_live, token):
    live = await start_live(f"{{port: 0, token: {token}}}" if token else "{port: 0}")
    for path in ("/api/session/halt", "/api/session/stop", "/api/settings"):
        status, body = await post(live.url + path, AUTH, {"max_position": 5})
        assert status == 403, path
        assert "no token is configured" in body["error"]
        assert "services.status_page.token" in body["error"]
    assert not live.pipeline.risk.state.halted and not live.pipeline.stop_requested


async def test_halt_stops_new_entries_from_the_next_bar(live):
    p = live.pipeline
    await feed(minutes(0, 10), p)
    assert p.summary.orders > 0
    status, body = await post(live.url + "/api/session/halt", AUTH)
    assert status == 200 and body["halted"] is True
    halted_at = p.last_ts_ns
    orders_before = p.summary.orders
    await feed(minutes(10, 10), p)
    assert p.summary.orders == orders_before
    after = p.journal.rows("SELECT reasons FROM decisions WHERE ts_ns > ?", (halted_at,))
    assert len(after) >= 3
    assert all(
        json.loads(r["reasons"])[-1] == "risk: halted: halted from the status page" for r in after
    )
    status, body = await post(live.url + "/api/session/resume", AUTH)
    assert status == 200 and body["halted"] is False
    await feed(minutes(20, 10), p)
    assert p.summary.orders > orders_before


async def test_start_resumes_a_halted_session(live):
    p = live.pipeline
    await post(live.url + "/api/session/halt", AUTH)
    assert p.risk.state.halted
    status, body = await post(live.url + "/api/session/start", AUTH)
    assert status == 200 and body == {
        "ok": True,
        "action": "start",
        "halted": False,
        "stopping": False,
    }
    states = p.journal.rows("SELECT state FROM session_state ORDER BY id")
    assert [s["state"] for s in states][-2:] == ["halted", "resumed"]


async def test_stop_flattens_and_ends_the_run(live):
    p = live.pipeline
    for minute in range(30):
        await feed(minutes(minute, 1), p)
        if p.session.positions.open_positions():
            break
    (position,) = p.session.positions.open_positions()
    (lot,) = position.lots
    closed = []
    p.bus.subscribe(lambda e: closed.append(e.payload), [EventKind.TRADE_CLOSED])
    status, body = await post(live.url + "/api/session/stop", AUTH)
    assert status == 200 and body["stopping"] is True
    # the run ends after the next item from the feed; the flatten exits at its first trade
    await QueuedFeed.queue.put(TickBatch("ES", minutes(31, 1)))
    summary = await asyncio.wait_for(live.run, 5)
    assert summary.exit == "stopped"
    assert not p.session.positions.open_positions()
    assert [t.bracket_id for t in closed] == [lot.bracket_id]
    assert closed[0].exit_reason not in ("stop", "target")


async def test_settings_are_validated(live):
    cases = [
        ({"daily_loss_limit": 5}, "daily_loss_limit: must be <= 0"),
        ({"daily_profit_target": "-1"}, "daily_profit_target: must be >= 0"),
        ({"max_position": 0}, "max_position: must be >= 1"),
        ({"max_position": "two"}, "max_position"),
        ({"leverage": 50}, "leverage"),
        ({"symbol": "CL"}, "ticks by"),
        ({"symbol": "ZZZ"}, "unknown instrument"),
        ({"symbol": "ES; DROP"}, "symbol"),
        ([1, 2], "object"),
    ]
    p = live.pipeline
    before = p.risk.settings
    for body, expected in cases:
        status, answer = await post(live.url + "/api/settings", AUTH, body)
        assert status == 400, body
        assert expected in answer["error"], (body, answer)
    async with (
        aiohttp.ClientSession() as http,
        http.post(live.url + "/api/settings", headers=AUTH, data="{not json") as r,
    ):
        assert r.status == 400 and "JSON" in (await r.json())["error"]
    assert p.risk.settings == before and p.account.symbol == "ES"


async def test_settings_are_applied_to_the_running_session(live):
    p = live.pipeline
    status, body = await post(
        live.url + "/api/settings",
        AUTH,
        {
            "daily_loss_limit": "-150.5",
            "daily_profit_target": 800,
            "max_position": 3,
            "symbol": "mes",
        },
    )
    assert status == 200, body
    assert p.risk.settings.daily_loss_limit == Decimal("-150.5")
    assert p.risk.settings.daily_profit_target == Decimal("800")
    assert p.risk.settings.max_position == 3
    assert p.account.symbol == "MES"
    await feed(minutes(0, 10), p)
    orders = p.journal.rows("SELECT symbol FROM orders")
    assert orders and {o["symbol"] for o in orders} == {"MES"}


async def test_a_symbol_switch_is_refused_while_tiers_choose_the_symbol(start_live):
    tiers = "account: {tiers: [{name: micro, min_balance: 0, symbol: MES}]}\n"
    live = await start_live(extra=tiers)
    assert live.pipeline.account.symbol == "MES"
    status, body = await post(live.url + "/api/settings", AUTH, {"symbol": "ES"})
    assert status == 400 and "tier 'micro' decides the symbol" in body["error"]
    assert live.pipeline.account.symbol == "MES"
    assert live.pipeline.account.default_symbol == "ES"
