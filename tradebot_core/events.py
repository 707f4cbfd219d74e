"""The event bus: how the pipeline tells the journal, notifiers and services what happened.

Publishing is synchronous and cheap; a subscriber that raises is logged and skipped, so a broken
notifier never stops trading. Events are only built when someone wants their kind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel

from .types import Event, EventKind

log = logging.getLogger(__name__)

Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, frozenset[EventKind] | None]] = []
        self._wanted: set[EventKind] = set()

    def subscribe(self, callback: Subscriber, kinds: Iterable[EventKind] | None = None) -> None:
        """Call ``callback(event)`` for every event of ``kinds`` (all kinds when None)."""
        selected = frozenset(EventKind(k) for k in kinds) if kinds is not None else None
        self._subscribers.append((callback, selected))
        self._wanted.update(selected if selected is not None else EventKind)

    def unsubscribe(self, callback: Subscriber) -> None:
        self._subscribers = [(cb, k) for cb, k in self._subscribers if cb is not callback]
        self._wanted = set()
        for _, kinds in self._subscribers:
            self._wanted.update(kinds if kinds is not None else EventKind)

    def wants(self, kind: EventKind) -> bool:
        return kind in self._wanted

    def publish(
        self,
        kind: EventKind,
        ts_ns: int,
        payload: BaseModel | dict[str, Any],
        message: str = "",
    ) -> Event | None:
        if kind not in self._wanted:
            return None
        event = Event(kind=kind, ts_ns=ts_ns, payload=payload, message=message)
        for callback, kinds in self._subscribers:
            if kinds is None or kind in kinds:
                try:
                    callback(event)
                except Exception:
                    log.exception("event subscriber %r failed on %s", callback, kind.value)
        return event
