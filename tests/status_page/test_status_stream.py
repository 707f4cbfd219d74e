"""The WebSocket fan-out: one encoding per event for all clients, O(1) drops, today's drop rule."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque

import aiohttp
import tradebot_plugins.services._status_stream as stream
from hypothesis import given, settings
from hypothesis import strategies as st
from status_page.queued import feed, minutes
from tradebot_plugins.services._status_stream import RESYNC, ClientQueue, Fanout, Message

from tradebot_core.types import Event, EventKind

BAR, SIGNAL = EventKind.BAR_CLOSED, EventKind.SIGNAL


class ReferenceQueue:
    """The drop rule as it was first written (a scan for the oldest bar): the specification the
    O(1) queue must keep."""

    def __init__(self, limit: int, max_bars: int) -> None:
        self.items: deque[tuple[bool, int]] = deque()
        self.limit, self.max_bars = limit, max_bars
        self.bars = self.dropped = 0
        self.behind = False

    def put(self, is_bar: bool, seq: int) -> None:
        if (is_bar and self.bars >= self.max_bars) or len(self.items) >= self.limit:
            self.dropped += 1
            if self.bars:
                for i, (queued_bar, _) in enumerate(self.items):
                    if queued_bar:
                        del self.items[i]
                        self.bars -= 1
                        break
            else:
                self.items.popleft()
                self.behind = True
        self.items.append((is_bar, seq))
        self.bars += is_bar

    def take(self) -> list[int | str]:
        out: list[int | str] = ["resync"] if self.behind else []
        out += [seq for _, seq in self.items]
        self.items.clear()
        self.bars, self.behind = 0, False
        return out


def taken(queue: ClientQueue) -> list[int | str]:
    return [m if m != RESYNC else "resync" for m in queue.take()]


def as_seq(messages: list[int | str]) -> list[int | str]:
    return [m if m == "resync" else json.loads(m)["ts_ns"] for m in messages]


@settings(max_examples=150, deadline=None, database=None)
@given(
    limit=st.integers(1, 12),
    max_bars=st.integers(1, 6),
    ops=st.lists(st.sampled_from(["bar", "other", "take"]), max_size=80),
)
def test_the_queue_keeps_the_drop_rule(limit, max_bars, ops):
    """Any interleaving of bars, other messages and takes: the same messages, in the same order,
    the same resyncs and drop count as the reference."""
    queue, reference = ClientQueue(limit, max_bars), ReferenceQueue(limit, max_bars)
    for seq, op in enumerate(ops):
        if op == "take":
            assert as_seq(taken(queue)) == reference.take()
            continue
        kind = BAR if op == "bar" else SIGNAL
        queue.put(Message(Event(kind=kind, ts_ns=seq, payload={}), seq))
        reference.put(op == "bar", seq)
        assert len(queue) == len(reference.items) and queue.bars == reference.bars
    assert as_seq(taken(queue)) == reference.take()
    assert queue.dropped == reference.dropped


def test_drops_are_constant_time():
    """A full queue of 100,000 messages and a bar stream: each new bar pushes out the previous one,
    which sits at the far end. A scan per drop (the old queue) would take minutes here."""
    queue = ClientQueue(limit=100_000, max_bars=500)
    signal = Event(kind=SIGNAL, ts_ns=0, payload={})
    bar = Event(kind=BAR, ts_ns=0, payload={})
    for seq in range(100_000):
        queue.put(Message(signal, seq))
    start = time.perf_counter()
    for seq in range(100_000, 120_000):
        queue.put(Message(bar, seq))
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"20,000 drops took {elapsed:.2f} s"
    assert len(queue) == 100_000 and queue.bars == 1 and queue.dropped == 20_000
    assert queue.behind  # the first bar pushed out a signal: the client must resync


def test_an_event_is_encoded_once_for_all_clients(monkeypatch):
    encoded: list[int] = []
    real = stream.encode

    def counting(event: Event) -> str:
        encoded.append(event.ts_ns)
        return real(event)

    monkeypatch.setattr(stream, "encode", counting)
    fanout = Fanout()
    fanout.defer(Event(kind=SIGNAL, ts_ns=-1, payload={}))  # nobody listens: nothing kept
    clients = [ClientQueue(limit=1000, max_bars=30) for _ in range(25)]
    fanout.clients.update(clients)
    for ts in range(40):
        fanout.defer(Event(kind=BAR if ts % 3 else SIGNAL, ts_ns=ts, payload={"n": ts}))
    fanout.flush()
    outputs = [client.take() for client in clients]
    assert encoded == list(range(40))  # once each, not 25 times
    first = outputs[0]
    assert [json.loads(m)["ts_ns"] for m in first] == list(range(40))
    for output in outputs[1:]:  # the very same strings
        assert len(output) == len(first) and all(a is b for a, b in zip(output, first, strict=True))


def test_an_event_that_cannot_be_encoded_is_skipped(monkeypatch):
    def broken(event: Event) -> str:
        if event.ts_ns == 1:
            raise TypeError("not JSON")
        return json.dumps({"ts_ns": event.ts_ns})

    monkeypatch.setattr(stream, "encode", broken)
    fanout = Fanout()
    client = ClientQueue(limit=10, max_bars=3)
    fanout.clients.add(client)
    for ts in range(3):
        fanout.defer(Event(kind=SIGNAL, ts_ns=ts, payload={}))
    fanout.flush()
    assert [json.loads(m)["ts_ns"] for m in client.take()] == [0, 2]


async def test_live_clients_share_one_encoding(live, monkeypatch):
    encoded: list[str] = []
    real = stream.encode

    def counting(event: Event) -> str:
        encoded.append(event.kind.value)
        return real(event)

    monkeypatch.setattr(stream, "encode", counting)
    async with aiohttp.ClientSession() as http:
        sockets = [
            await http.ws_connect(live.ws_url, headers={"Origin": live.url}) for _ in range(3)
        ]
        for _ in range(100):
            if len(live.page.clients) == 3:
                break
            await asyncio.sleep(0.01)
        await feed(minutes(0, 10), live.pipeline)
        received = []
        for socket in sockets:
            messages = []
            while True:
                try:
                    messages.append(await asyncio.wait_for(socket.receive_str(), 0.5))
                except TimeoutError:
                    break
            received.append(messages)
            await socket.close()
    assert len(received[0]) > 20
    assert received[0] == received[1] == received[2]
    events = [m for m in received[0] if json.loads(m)["type"] != "live"]
    assert len(encoded) == len(events)  # one encoding per message, not one per client
