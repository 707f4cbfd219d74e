"""The status page's live stream: bus events to WebSocket messages, without slowing the pipeline.

The bus calls :meth:`Fanout.defer` from the trading loop's hot path: it appends the event to a
thread-safe deque and returns (no JSON, no lock, O(1) whatever the number of clients). The page's
own thread takes the deferred events every :data:`FLUSH_INTERVAL_S` (:meth:`Fanout.flush`), wraps
each in one :class:`Message` shared by every client and appends it to each client's queue. The
first WebSocket sender that takes a message encodes it; the others reuse that text, so an event
is encoded once however many clients watch, and never on the trading loop.

A client that cannot keep up loses bar updates first (oldest first: the page only draws the
latest bars); if even that is not enough, older messages go too and the client is sent a
``resync`` message so the page reloads its tables from the REST API. Bars and other messages sit
in two queues, so every drop is a ``popleft`` (O(1)); :meth:`ClientQueue.take` merges them back
into publish order by sequence number.

Between bar closes the page samples the run every :data:`LIVE_INTERVAL_S` and sends a ``live``
message (last price, position, P&L, the forming bar) when something changed. A client holds at
most one of them: a newer one replaces the one not yet sent, so a slow client gets the latest
state, never a backlog, and live messages never push out events.

The page's thread may use :data:`CPU_SHARE` of one CPU on average (:class:`CpuBudget`, measured
with the thread's own CPU clock, so it counts everything the page does: accepting, parsing,
encoding, the socket writes): past it the thread sleeps, queues fill and drop by the rule above,
requests wait in the kernel, and trading goes on at full speed.
"""

from __future__ import annotations

import asyncio
import contextlib
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

CPU_SHARE = 0.02
"""The share of one CPU the page's thread may use on average while trading is busy
(:class:`CpuBudget`): a max-speed replay watched by hundreds of clients reaches it, and then the
page lags while trading keeps its speed."""

IDLE_SHARE = 0.5
"""The share of one CPU the page's thread may use while trading is not busy (a live session
between ticks)."""

BUSY = 0.3
"""Trading is busy while the process's other threads use this share of a CPU or more (measured
between two counts of :class:`CpuBudget`): the page then keeps to :data:`CPU_SHARE`. When the
page takes the CPU from a busy trading thread, trading still uses more than this, so the page
cannot talk itself into a larger share."""

FLUSH_INTERVAL_S = 0.05
"""How often the page's thread takes the deferred bus events and queues them for the clients (and
wakes the senders): at a replay's full speed, one wake-up per client for many events."""

PAUSE_SLICE_S = 0.05
"""The longest the page's thread sleeps at once to keep its share before counting again."""

MAX_PENDING = 20_000
"""Events the trading loop defers for the page's thread at most; past it (the page sleeping
through a replay at full speed) the oldest go and every client is told to resync."""

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
        self.most = 0  # the most messages it held at once (for tests and benchmarks)
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
        self.most = max(self.most, len(self))
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
        self.most = max(self.most, len(self))
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
    """The bus side of the stream: events deferred by the trading loop, then one
    :class:`Message` per event queued for every client by the page's thread."""

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self.clients: set[ClientQueue] = set()
        self.seq = 0
        # deferred: not yet in the clients' queues (past max_pending, the oldest go)
        self.pending: deque[Event] = deque(maxlen=max_pending)
        self.overflowed = False  # some were lost before a flush: every client resyncs

    def defer(self, event: Event) -> None:
        """Called by the bus, in the trading loop's hot path: one append to a thread-safe deque,
        whatever the number of clients. The event reaches the clients' queues in :meth:`flush`
        (the page's thread, every :data:`FLUSH_INTERVAL_S`)."""
        if self.clients:
            pending = self.pending
            if len(pending) == pending.maxlen:
                self.overflowed = True
            pending.append(event)

    def flush(self) -> None:
        """Queue the deferred events for every client, in publish order (the page's thread)."""
        pending = self.pending
        if not pending:
            return
        if self.overflowed:  # the page slept through more events than it keeps
            self.overflowed = False
            for client in list(self.clients):
                client.behind = True
        messages = []
        with contextlib.suppress(IndexError):
            while True:  # popleft while the trading loop may append: each one atomic
                self.seq += 1
                messages.append(Message(pending.popleft(), self.seq))
        bars = [m for m in messages if m.is_bar]
        others = [m for m in messages if not m.is_bar]
        for client in list(self.clients):
            client.extend(messages, bars, others)

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


class CpuBudget:
    """A token bucket of the calling thread's CPU seconds, called only from the thread it paces.

    :meth:`pace`, after any piece of work, takes what the thread used since the last call (its
    own CPU clock: Python, JSON, syscalls, all of it) plus what was charged for other threads
    (:meth:`charge`: journal reads, state reads on the trading loop). The bucket refills at
    ``share`` seconds per second while the process's other threads (trading, the journal) are
    busy, using :data:`BUSY` of a CPU or more since the last count (a replay at full speed), and
    at ``idle_share`` while they are not (a live session between ticks): then a dashboard
    watched by many stays responsive. Past its budget (bursts of ``burst`` seconds) the thread
    sleeps until the bucket is even again, in slices, counting again after each."""

    def __init__(
        self, share: float = CPU_SHARE, burst: float = 0.005, idle_share: float = IDLE_SHARE
    ) -> None:
        self.share = share
        self.idle_share = idle_share
        self.burst = burst
        self.tokens = burst
        self.stamp = time.perf_counter()
        self.cpu = time.thread_time()
        self.process_cpu = time.process_time()
        self.extra = 0.0  # CPU seconds of other threads, charged
        self.spent = 0.0  # seconds spent in all (for tests and benchmarks)
        self.slept = 0.0  # seconds the thread slept to keep its share
        self.pauses = 0  # times it had to

    def restart(self) -> None:
        """Start counting in the calling thread (the one :meth:`pace` will be called from)."""
        self.cpu = time.thread_time()
        self.process_cpu = time.process_time()
        self.stamp = time.perf_counter()
        self.tokens = self.burst

    def debt(self) -> float:
        """Seconds of CPU the thread is past its share now (0: it may work). Any thread may ask."""
        refilled = self.tokens + (time.perf_counter() - self.stamp) * self.share
        return max(0.0, -refilled)

    def charge(self, seconds: float) -> None:
        """CPU another thread spent for this one (a journal read, a state read on the trading
        loop), charged from the paced thread."""
        self.extra += seconds

    def pace(self) -> float:
        """Count what the thread used; sleep while that is past its budget (the seconds slept),
        in slices of :data:`PAUSE_SLICE_S`."""
        slept = 0.0
        while self._count() < 0:
            pause = min(max(-self.tokens / self.share, 0.001), PAUSE_SLICE_S)
            time.sleep(pause)  # the whole page waits: its thread's share is used
            slept += pause
        if slept:
            self.pauses += 1
            self.slept += slept
        return slept

    def _count(self) -> float:
        """Take what the thread used and refill for the time passed: the tokens left."""
        cpu, process_cpu, now = time.thread_time(), time.process_time(), time.perf_counter()
        own = cpu - self.cpu
        used = own + self.extra
        wall = now - self.stamp
        others = process_cpu - self.process_cpu - own  # trading and the journal, this interval
        busy = wall > 0 and others >= BUSY * wall
        refill = wall * (self.share if busy else max(self.share, self.idle_share))
        self.cpu, self.process_cpu, self.stamp, self.extra = cpu, process_cpu, now, 0.0
        self.tokens = min(self.burst, self.tokens + refill) - used
        self.spent += used
        return self.tokens
