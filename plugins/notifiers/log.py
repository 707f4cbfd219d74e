"""The ``log`` notifier: every event as one JSON line, to Python logging and/or a file.

Lines look like ``{"ts_ns": ..., "kind": "trade_closed", "message": "...", "payload": {...}}``
(decimals as strings, so no amount is rounded), easy to grep, to ship to a log collector, or to
load with ``pandas.read_json(path, lines=True)``.

The file is opened for appending by ``start()`` (or by the first event, whichever comes first),
each line is flushed as it is written, and ``stop()`` closes it. Writing is synchronous: a line
to the page cache takes microseconds.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, Field, model_validator

from tradebot_core import Event, EventKind, PluginContext, PluginSettings, hookimpl

EVENTS_LOGGER = "tradebot.events"


class LogSettings(PluginSettings):
    """The ``notifiers.log`` section."""

    kinds: list[EventKind] = Field(
        default_factory=lambda: [k for k in EventKind if k is not EventKind.BAR_CLOSED]
    )
    path: Path | None = None
    """Append JSON lines here (flushed per line); none: Python logging only."""
    to_logging: bool = True
    """Also log each line to the ``tradebot.events`` logger."""
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _somewhere_to_write(self) -> LogSettings:
        if self.path is None and not self.to_logging:
            raise ValueError("writes nowhere: give a path, or leave to_logging true")
        return self


class LogNotifier:
    """Writes each event as a JSON line."""

    name = "log"
    Settings = LogSettings

    def __init__(self, settings: LogSettings, context: PluginContext | None = None) -> None:
        self.settings = settings
        self.kinds = settings.kinds
        self.logger = logging.getLogger(EVENTS_LOGGER)
        self.level = logging.getLevelNamesMapping()[settings.level]
        self._file: IO[str] | None = None

    async def start(self) -> None:
        """Open the file (creating its folder), if there is one."""
        if self.settings.path is not None:
            self._open()

    async def stop(self, timeout_s: float = 10) -> None:
        """Close the file; every line is already flushed, so there is nothing to drain."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def notify(self, event: Event) -> None:
        """Write the event's line."""
        line = event_line(event)
        if self.settings.to_logging:
            self.logger.log(self.level, line)
        if self.settings.path is not None:
            file = self._file or self._open()
            file.write(line + "\n")
            file.flush()

    def _open(self) -> IO[str]:
        if self._file is None:
            assert self.settings.path is not None
            try:
                self.settings.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.settings.path.open("a", encoding="utf-8")
            except OSError as exc:
                raise OSError(
                    f"log notifier: cannot append to {self.settings.path}: {exc.strerror}; "
                    "check notifiers.log.path"
                ) from exc
        return self._file


def event_line(event: Event) -> str:
    """The event as one line of JSON."""
    if isinstance(event.payload, BaseModel):
        payload: Any = event.payload.model_dump(mode="json")
    else:
        payload = event.payload
    return json.dumps(
        {
            "ts_ns": event.ts_ns,
            "kind": event.kind.value,
            "message": event.message,
            "payload": payload,
        },
        default=str,
        ensure_ascii=False,
    )


@hookimpl
def register_notifiers(register: Any) -> None:
    register(LogNotifier)
