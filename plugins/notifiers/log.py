"""The ``log`` notifier: every event as one JSON line, to Python logging and/or a file.

Lines look like ``{"ts_ns": ..., "kind": "trade_closed", "message": "...", "payload": {...}}``,
easy to grep, to ship to a log collector, or to load into pandas.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import IO, Any

from pydantic import Field

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.types import Event, EventKind

EVENTS_LOGGER = "tradebot.events"


class LogSettings(PluginSettings):
    kinds: list[EventKind] = Field(
        default_factory=lambda: [k for k in EventKind if k is not EventKind.BAR_CLOSED]
    )
    path: Path | None = None
    """Append JSON lines here (flushed per line); none: Python logging only."""
    to_logging: bool = True
    level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


class LogNotifier:
    name = "log"
    Settings = LogSettings

    def __init__(self, settings: LogSettings, context: PluginContext | None) -> None:
        self.settings = settings
        self.kinds = settings.kinds
        self.logger = logging.getLogger(EVENTS_LOGGER)
        self.level = logging.getLevelName(settings.level)
        self._file: IO[str] | None = None

    async def start(self) -> None:
        if self.settings.path is not None:
            self.settings.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.settings.path.open("a", encoding="utf-8")

    async def stop(self, timeout_s: float = 10) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def notify(self, event: Event) -> None:
        line = json.dumps(
            {
                "ts_ns": event.ts_ns,
                "kind": event.kind.value,
                "message": event.message,
                "payload": event.payload_dict(),
            },
            default=str,
        )
        if self.settings.to_logging:
            self.logger.log(self.level, line)
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()


@hookimpl
def register_notifiers(register: Any) -> None:
    register(LogNotifier)
