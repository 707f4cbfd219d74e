"""The live message: sampled from the run's view between bar closes, 4 a second at most."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from decimal import Decimal

import aiohttp
from status_page.queued import feed, minutes, paced
from tradebot_plugins.services._status_stream import LIVE_INTERVAL_S, ClientQueue, Fanout
from tradebot_plugins.services.watchdog import Watchdog, WatchdogSettings

from tradebot_core import Event, EventKind


def test_a_client_holds_only_the_newest_live_message_in_publish_order():
    fanout = Fanout()
    client = ClientQueue(limit=10, max_bars=3)
    fanout.clients.add(client)
    fanout.publish_live('{"type": "live", "n": 1}')
    fanout.defer(Event(kind=EventKind.SIGNAL, ts_ns=5, payload={}))
    fanout.publish_live('{"type": "live", "n": 2}')  # replaces n=1, comes after the signal
    taken = [json.loads(m) for m in client.take()]
    assert [m["type"] for m in taken] == ["signal", "live"] and taken[1]["n"] == 2
    assert client.dropped == 0 and not client.take()


async def test_the_forming_bar_is_the_bar_it_becomes(live):
    view = live.pipeline.view
    assert view.forming_bar() is None
    await feed(minutes(0, 5), live.pipeline)
    forming = view.forming_bar()
    assert forming is not None and forming["forming"] is True
    assert view.forming_bar() is forming  # no new tick: not built again
    await feed(minutes(5, 1)[:1], live.pipeline)  # the first tick of 10:05 closes 10:04
    closed = live.page.bars[-1]
    assert closed["ts_open"] == forming["ts_open"]
    assert {key: forming[key] for key in closed} == closed


async def test_live_messages_move_between_bar_closes_at_most_4_a_second(live):
    async with aiohttp.ClientSession() as http:
        socket = await http.ws_connect(live.ws_url, headers={"Origin": live.url})
        await feed(minutes(0, 3), live.pipeline)  # bars close; 10:02 is forming
        pacer = asyncio.create_task(paced(minutes(3, 1)[:40]))  # ~8 s of 10:03, in real time
        received: list[tuple[float, dict]] = []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(socket.receive_str(), 0.3)
            except TimeoutError:
                continue
            received.append((time.monotonic(), json.loads(raw)))
        pacer.cancel()
        await socket.close()
    after_close = received
    for index, (_, m) in enumerate(received):  # from the close of 10:02 on
        if m["type"] == "bar":
            after_close = received[index + 1 :]
    lives = [(t, m["data"]) for t, m in after_close if m["type"] == "live"]
    assert not [m for _, m in after_close if m["type"] == "bar"]  # no bar closed meanwhile
    assert len({d["last_price"] for _, d in lives}) >= 2  # the price moved between closes
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(lives)]
    assert gaps and min(gaps) >= LIVE_INTERVAL_S * 0.6  # 4 a second at most (with jitter)
    data = lives[-1][1]
    assert set(data) >= {"last_price", "last_ts_ns", "position", "unrealized_pnl", "realized_pnl"}
    assert Decimal(data["unrealized_pnl"]) == sum(
        (Decimal(p["unrealized_pnl"] or 0) for p in data["positions"]), Decimal(0)
    )
    bar = data["forming_bar"]
    assert bar["forming"] and set(bar) >= {"open", "high", "low", "close", "volume", "delta"}
    assert Decimal(bar["low"]) <= Decimal(data["last_price"]) <= Decimal(bar["high"])


class FakeView:
    """What the watchdog reads of a run's view, and where its alerts go."""

    def __init__(self) -> None:
        self.started_monotonic = 100.0
        self.last_batch_monotonic = 0.0
        self.feed_plugin = "demo"
        self.published: list[tuple] = []

    def publish(self, kind, payload, message=""):
        self.published.append((kind, payload, message))


async def test_the_watchdog_uses_the_view_only(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    view = FakeView()

    class Run:  # a run offers its view; the watchdog takes nothing else
        def __init__(self) -> None:
            self.view = view

    dog = Watchdog(WatchdogSettings(stall_after_s=30, interval_s=60), None)
    await dog.start(Run())
    try:
        dog.check(now=110)
        dog.check(now=140)
        dog.check(now=150)
        view.last_batch_monotonic = 155
        dog.check(now=156)
    finally:
        await dog.stop()
    assert [(k, p["stalled"]) for k, p, _ in view.published] == [
        (EventKind.WATCHDOG, True),
        (EventKind.WATCHDOG, False),
    ]
    assert "no ticks for 40 s (feed demo)" in view.published[0][2]
