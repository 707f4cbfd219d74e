"""The status page's live stream: bus events to WebSocket messages, without slowing the pipeline.

The bus calls :meth:`ClientQueue.put` from the hot path, synchronously: it only appends the event
object (no JSON, no await). Each WebSocket's sender coroutine encodes and sends what its queue
holds. A client that cannot keep up loses bar updates first (oldest first: the page only draws the
latest bars); if even that is not enough, older messages go too and the client is sent a
``resync`` message so the page reloads its tables from the REST API.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import deque
from typing import Any

from tradebot_core.types import Event, EventKind

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


class ClientQueue:
    """What one WebSocket client has yet to receive, bounded.

    ``max_bars`` bar updates at most are kept (a newer bar pushes out the oldest queued one);
    past ``limit`` items in all, the oldest bar goes first, then the oldest message of any kind
    (and the client is marked ``behind``: it is told to resync).
    """

    def __init__(self, limit: int, max_bars: int) -> None:
        self.items: deque[Event] = deque()
        self.limit = limit
        self.max_bars = max_bars
        self.bars = 0
        self.dropped = 0
        self.behind = False
        self.wake = asyncio.Event()

    def put(self, event: Event) -> None:
        """Called by the bus, in the hot path: appends, never blocks."""
        is_bar = event.kind is EventKind.BAR_CLOSED
        if (is_bar and self.bars >= self.max_bars) or len(self.items) >= self.limit:
            self._drop_one()
        self.items.append(event)
        self.bars += is_bar
        self.wake.set()

    def _drop_one(self) -> None:
        self.dropped += 1
        if self.bars:
            for i, queued in enumerate(self.items):  # the oldest bar sits near the front
                if queued.kind is EventKind.BAR_CLOSED:
                    del self.items[i]
                    self.bars -= 1
                    return
        dropped = self.items.popleft()
        self.bars -= dropped.kind is EventKind.BAR_CLOSED
        self.behind = True

    def take(self) -> list[str]:
        """Everything queued, encoded, oldest first (a ``resync`` first if messages were lost)."""
        out = [RESYNC] if self.behind else []
        self.behind = False
        while self.items:
            out.append(encode(self.items.popleft()))
        self.bars = 0
        return out
