"""The WebSocket: what it streams, in which order, to whom; slow clients; a clean stop."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from status_page.queued import AUTH, QueuedFeed, feed, minutes
from tradebot_plugins.services._status_stream import RESYNC, ClientQueue, Message

from tradebot_core.types import Event, EventKind


async def drain(socket: aiohttp.ClientWebSocketResponse, quiet_s: float = 0.5) -> list[dict]:
    """Messages until the socket has been quiet for ``quiet_s``."""
    messages = []
    while True:
        try:
            message = await asyncio.wait_for(socket.receive_str(), quiet_s)
        except TimeoutError:
            return messages
        messages.append(json.loads(message))


async def test_streams_bars_signals_and_trades_in_order(live):
    p = live.pipeline
    published = []
    p.bus.subscribe(lambda e: published.append((e.kind, e.ts_ns)), [EventKind.BAR_CLOSED])
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(live.ws_url, headers={"Origin": live.url}) as socket,
    ):
        await feed(minutes(0, 30), p)
        messages = await drain(socket)
    kinds = [m["type"] for m in messages]
    assert kinds.count("bar") == len(published) == p.summary.bars
    assert {"signal", "decision", "order", "fill", "trade_opened", "trade_closed"} <= set(kinds)
    assert kinds.count("trade_closed") == p.summary.trades
    stamps = [m["ts_ns"] for m in messages if m["type"] in ("bar", "signal", "decision")]
    assert stamps == sorted(stamps)
    # per signal: the signal, then its decision, then (if approved) its order
    for i, m in enumerate(messages):
        if m["type"] == "signal":
            assert messages[i + 1]["type"] == "decision"
            assert messages[i + 1]["data"]["signal"]["pattern"] == m["data"]["pattern"]
        if m["type"] == "trade_closed":
            bracket = m["data"]["bracket_id"]
            opened = [
                j
                for j, o in enumerate(messages)
                if o["type"] == "trade_opened" and o["data"]["bracket_id"] == bracket
            ]
            assert opened and opened[0] < i
    first_bar = next(m for m in messages if m["type"] == "bar")["data"]
    assert {
        "open",
        "high",
        "low",
        "close",
        "poc",
        "vah",
        "val",
        "levels",
        "delta",
        "cum_delta",
    } <= set(first_bar)


async def test_a_halt_reaches_the_stream_as_state(live):
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            live.ws_url, headers={"Origin": live.url.replace("127.0.0.1", "localhost")}
        ) as socket,
    ):
        async with http.post(live.url + "/api/session/halt", headers=AUTH) as r:
            assert r.status == 200
        message = json.loads(await asyncio.wait_for(socket.receive_str(), 5))
    assert message["type"] == "state" and message["data"]["state"] == "halted"


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "http://127.0.0.1:1", "null", "http://127.0.0.1.evil.example"]
)
async def test_a_foreign_origin_is_refused(live, origin):
    if origin == "http://127.0.0.1:1":
        assert live.page.port != 1
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(live.ws_url, headers={"Origin": origin})
    assert refused.value.status == 403
    assert not live.page.clients


async def test_the_host_header_does_not_make_an_origin_own(live):
    """DNS rebinding: evil.example resolving to 127.0.0.1 sends Host and Origin evil.example."""
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(
                live.ws_url,
                headers={
                    "Origin": f"http://evil.example:{live.page.port}",
                    "Host": f"evil.example:{live.page.port}",
                },
            )
    assert refused.value.status == 403


async def test_configured_origins_are_allowed(start_live):
    live = await start_live("{port: 0, allowed_origins: ['https://Bot.Example.com/']}")
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(live.ws_url, headers={"Origin": "https://bot.example.com"}) as socket,
    ):
        assert not socket.closed and len(live.page.clients) <= 1


async def test_no_origin_needs_the_token(live):
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(live.ws_url)  # aiohttp sends no Origin by default
        assert refused.value.status == 403
        async with http.ws_connect(live.ws_url, headers=AUTH) as socket:
            await feed(minutes(0, 3), live.pipeline)
            messages = await drain(socket, 0.3)
    assert any(m["type"] == "bar" for m in messages)


async def test_stop_closes_websockets_cleanly(live):
    async def until_closed(socket: aiohttp.ClientWebSocketResponse) -> list[aiohttp.WSMessage]:
        received = []
        async for message in socket:  # ends on the close frame (answered by aiohttp)
            received.append(message)
        return received

    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(live.ws_url, headers={"Origin": live.url}) as socket,
    ):
        for _ in range(100):
            if live.page.clients:
                break
            await asyncio.sleep(0.01)
        reader = asyncio.create_task(until_closed(socket))
        await QueuedFeed.queue.put(None)  # the feed ends: the run stops its services
        await asyncio.wait_for(live.run, 5)
        received = await asyncio.wait_for(reader, 5)
        assert socket.close_code == aiohttp.WSCloseCode.GOING_AWAY
    assert all(m.type is aiohttp.WSMsgType.TEXT for m in received)
    assert not live.page.clients and not live.page._sockets
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http:
            await http.get(live.url + "/", timeout=aiohttp.ClientTimeout(total=2))


def event(kind: EventKind, ts: int) -> Event:
    return Event(kind=kind, ts_ns=ts, payload={"n": ts})


def message(kind: EventKind, ts: int) -> Message:
    """What the fan-out queues for an event (its sequence number: ``ts``)."""
    return Message(event(kind, ts), ts)


def test_a_slow_client_loses_old_bars_first():
    queue = ClientQueue(limit=10, max_bars=3)
    kinds = [EventKind.BAR_CLOSED if i % 2 else EventKind.SIGNAL for i in range(12)]
    for i, kind in enumerate(kinds):
        queue.put(message(kind, i))
    kept = [json.loads(m) for m in queue.take()]
    bars = [m["ts_ns"] for m in m_of(kept, "bar")]
    signals = [m["ts_ns"] for m in m_of(kept, "signal")]
    all_bars = [i for i, k in enumerate(kinds) if k is EventKind.BAR_CLOSED]
    assert bars == all_bars[-3:]  # the newest three bars
    assert signals == [i for i, k in enumerate(kinds) if k is EventKind.SIGNAL]  # none lost
    assert [m["ts_ns"] for m in kept] == sorted(m["ts_ns"] for m in kept)
    assert queue.dropped == len(all_bars) - 3 and not queue.take()


def test_a_client_far_behind_is_told_to_resync():
    queue = ClientQueue(limit=10, max_bars=3)
    for i in range(25):
        queue.put(message(EventKind.TRADE_CLOSED, i))
    out = queue.take()
    assert out[0] == RESYNC
    assert [json.loads(m)["ts_ns"] for m in out[1:]] == list(range(15, 25))
    queue.put(message(EventKind.TRADE_CLOSED, 99))
    assert queue.take()[0] != RESYNC


def m_of(messages: list[dict], kind: str) -> list[dict]:
    return [m for m in messages if m["type"] == kind]


async def test_a_client_that_never_reads_does_not_hold_up_the_stop(live):
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(live.ws_url, headers={"Origin": live.url}),  # never receives
    ):
        for _ in range(100):
            if live.page.clients:
                break
            await asyncio.sleep(0.01)
        await feed(minutes(0, 5), live.pipeline)
        await QueuedFeed.queue.put(None)
        summary = await asyncio.wait_for(live.run, 8)  # its close handshake is cut after 2 s
    assert summary.exit == "completed"
    assert not live.page.clients and not live.page._sockets
