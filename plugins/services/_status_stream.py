"""The status page's live stream: bus events to WebSocket messages, without slowing the pipeline.

The bus calls :meth:`Fanout.publish` from the hot path, synchronously: it wraps the event in one
:class:`Message` shared by every client and appends that to each client's queue (no JSON, no
await, O(1) per client). The first WebSocket sender that takes a message encodes it; the others
reuse that text, so an event is encoded once however many clients watch.

A client that cannot keep up loses bar updates first (oldest first: the page only draws the
latest bars); if even that is not enough, older messages go too and the client is sent a
``resync`` message so the page reloads its tables from the REST API. Bars and other messages sit
in two queues, so every drop is a ``popleft`` (O(1)); :meth:`ClientQueue.take` merges them back
into publish order by sequence number.

Between bar closes the page samples the run every :data:`LIVE_INTERVAL_S` and sends a ``live``
message (last price, position, P&L, the forming bar) when something changed. A client holds at
most one of them: a newer one replaces the one not yet sent, so a slow client gets the latest
state, never a backlog, and live messages never push out events.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import math
import time
from collections import deque
from operator import attrgetter
from typing import Any

from tradebot_core import Event, EventKind

log = logging.getLogger(__name__)

#: bus event kind -> the ``type`` of the WebSocket message
STREAMED: dict[EventKind, str] = {
    EventKind.BAR_CLOSED: "bar",
    EventKind.SIGNAL: "signal",
    EventKind.ROUTE_DECISION: "decision",
    EventKind.ORDER: "order",
    EventKind.FILL: "fill",
    EventKind.TRADE_OPENED: "trade_opened",
    EventKind.TRADE_CLOSED: "trade_closed",
    EventKind.REGIME_CHANGED: "regime",
    EventKind.SESSION_STATE: "state",
    EventKind.AUTO_FLATTEN: "state",
    EventKind.TIER_CHANGE: "state",
    EventKind.FEED_STATUS: "feed",
    EventKind.DAILY_DIGEST: "digest",
}

LIVE_INTERVAL_S = 0.25
"""How often the status page samples the run for its ``live`` message: 4 a second at most."""

SEND_SHARE = 0.05
"""The share of the event loop's time the page's WebSocket senders and REST handlers may use, on
average (a token bucket, :class:`Budget`): past it they wait, queues fill and drop, trading goes
on at full speed. A live session never comes near it; a max-speed replay watched by hundreds of
clients does."""

FLUSH_INTERVAL_S = 0.05
"""How long bus events wait before they are queued for the clients (and the senders woken): at
a replay's full speed, one wake-up per client for many events."""

RESYNC = '{"type": "resync", "data": {"reason": "this client fell behind: reload the state"}}'


def clean(data: Any) -> Any:
    """JSON-safe: NaN and infinities (indicators warming up) become null, as browsers need."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: clean(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [clean(v) for v in data]
    return data


def dumps(data: Any) -> str:
    """Strict JSON (no NaN), decimals and dates as strings."""
    return json.dumps(clean(data), default=str, allow_nan=False)


def encode(event: Event) -> str:
    """One WebSocket message: ``{type, kind, ts_ns, message, data}``."""
    return dumps(
        {
            "type": STREAMED.get(event.kind, event.kind.value),
            "kind": event.kind.value,
            "ts_ns": event.ts_ns,
            "message": event.message,
            "data": event.payload_dict(),
        }
    )


class Message:
    """One event on its way to the clients: encoded on first use, the text shared by all."""

    __slots__ = ("_text", "event", "is_bar", "seq")

    def __init__(self, event: Event | None, seq: int, text: str | None = None) -> None:
        self.event: Event | None = event
        self.seq = seq  # publish order, to merge a client's queues back
        self.is_bar = event is not None and event.kind is EventKind.BAR_CLOSED
        self._text: str | None = text

    @property
    def text(self) -> str:
        """The WebSocket message ("" if the event could not be encoded: it is skipped)."""
        if self._text is None:
            event, self.event = self.event, None
            try:
                self._text = encode(event) if event is not None else ""
            except Exception:  # a payload json cannot take: lose this message, not the stream
                log.exception("status page: cannot encode %r", event)
                self._text = ""
        return self._text


class ClientQueue:
    """What one WebSocket client has yet to receive, bounded.

    ``max_bars`` bar updates at most are kept (a newer bar pushes out the oldest queued one);
    past ``limit`` items in all, the oldest bar goes first, then the oldest message of any kind
    (and the client is marked ``behind``: it is told to resync). Every drop is O(1).
    """

    def __init__(self, limit: int, max_bars: int) -> None:
        self.bar_items: deque[Message] = deque()  # bars, oldest first
        self.other_items: deque[Message] = deque()  # everything else, oldest first
        self.live_item: Message | None = None  # the newest live state not yet sent
        self.limit = limit
        self.max_bars = max_bars
        self.dropped = 0
        self.behind = False
        self.wake = asyncio.Event()

    @property
    def bars(self) -> int:
        return len(self.bar_items)

    def __len__(self) -> int:
        return len(self.bar_items) + len(self.other_items)

    def put(self, message: Message) -> None:
        """Called by the bus (through :class:`Fanout`), in the hot path: O(1), never blocks."""
        bars = self.bar_items
        if (message.is_bar and len(bars) >= self.max_bars) or len(self) >= self.limit:
            self.dropped += 1
            if bars:  # the oldest bar goes first
                bars.popleft()
            else:  # no bar queued: the oldest message (of any kind) goes, the client resyncs
                self.other_items.popleft()
                self.behind = True
        (bars if message.is_bar else self.other_items).append(message)
        self.wake.set()

    def extend(self, messages: list[Message], bars: list[Message], others: list[Message]) -> None:
        """``put`` each of ``messages`` (split into ``bars`` and ``others``), in bulk: deque
        extends when nothing but bars overflow (the common case), else one ``put`` each."""
        kept_bars = min(len(self.bar_items) + len(bars), self.max_bars)
        if kept_bars + len(self.other_items) + len(others) < self.limit:  # exactly as put
            bar_items = self.bar_items
            if bars:
                bar_items.extend(bars)
                while len(bar_items) > self.max_bars:
                    bar_items.popleft()
                    self.dropped += 1
            if others:
                self.other_items.extend(others)
        else:
            for message in messages:
                self.put(message)
        self.wake.set()

    def put_live(self, message: Message) -> None:
        """The newest live state: it replaces one not yet sent (no backlog, nothing dropped)."""
        self.live_item = message
        self.wake.set()

    def take(self) -> list[str]:
        """Everything queued, encoded, oldest first (a ``resync`` first if messages were lost)."""
        out = [RESYNC] if self.behind else []
        self.behind = False
        live = [self.live_item] if self.live_item is not None else []
        queues = [q for q in (self.bar_items, self.other_items, live) if q]
        if len(queues) > 1:
            queued: Any = heapq.merge(*queues, key=attrgetter("seq"))
        else:
            queued = queues[0] if queues else ()
        out.extend(text for message in queued if (text := message.text))
        self.bar_items.clear()
        self.other_items.clear()
        self.live_item = None
        return out


class Fanout:
    """The bus side of the stream: one :class:`Message` per event, queued for every client."""

    def __init__(self) -> None:
        self.clients: set[ClientQueue] = set()
        self.seq = 0
        self.pending: list[Message] = []  # deferred: not yet in the clients' queues
        self._scheduled = False

    def defer(self, event: Event) -> None:
        """Called by the bus, in the hot path: O(1) whatever the number of clients. The event
        reaches the clients' queues in :meth:`flush`, :data:`FLUSH_INTERVAL_S` later at most (one
        bulk extend and one wake-up per client for all the events of that time)."""
        if not self.clients:
            return
        self.seq += 1
        self.pending.append(Message(event, self.seq))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self.flush)

    def flush(self) -> None:
        """Queue the deferred events for every client (in publish order)."""
        self._scheduled = False
        messages, self.pending = self.pending, []
        if not messages:
            return
        bars = [m for m in messages if m.is_bar]
        others = [m for m in messages if not m.is_bar]
        for client in self.clients:
            client.extend(messages, bars, others)

    def publish(self, event: Event) -> None:
        """Called by the bus, in the hot path: one small object, then O(1) per client."""
        if not self.clients:
            return
        self.seq += 1
        message = Message(event, self.seq)
        for client in self.clients:
            client.put(message)

    def live(self, text: str) -> Message:
        """A ``live`` message (already encoded), in publish order with the events."""
        self.flush()
        self.seq += 1
        return Message(None, self.seq, text)

    def publish_live(self, text: str) -> None:
        """The status page's live sample (not the hot path): the newest one per client."""
        if not self.clients:
            return
        message = self.live(text)
        for client in self.clients:
            client.put_live(message)


class Budget:
    """A token bucket of event-loop seconds: :meth:`spend` what a send or a request took,
    :meth:`wait` before the next one. It refills at ``share`` seconds per second up to
    ``burst``; once empty, waiters queue on a lock and sleep, one at a time, until it is
    positive again (each refill wakes one waiter, never the whole crowd)."""

    def __init__(self, share: float = SEND_SHARE, burst: float = 0.02) -> None:
        self.share = share
        self.burst = burst
        self.tokens = burst
        self.stamp = time.perf_counter()
        self.spent = 0.0  # seconds spent in all (for tests and benchmarks)
        self.waited = 0  # times something had to wait
        self._lock: asyncio.Lock | None = None

    def _refill(self) -> float:
        now = time.perf_counter()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.share)
        self.stamp = now
        return self.tokens

    def spend(self, seconds: float) -> None:
        self.spent += seconds
        self._refill()
        self.tokens -= seconds

    async def wait(self) -> None:
        """Return at once while there is budget left, else when there is again."""
        if self._refill() > 0 and (self._lock is None or not self._lock.locked()):
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while self._refill() <= 0:
                self.waited += 1
                await asyncio.sleep(-self.tokens / self.share + 0.001)
