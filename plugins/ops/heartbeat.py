"""The ``heartbeat`` service: the run's vital signs in a small JSON file, every few seconds.

``heartbeat.json`` (beside the journal unless ``path`` says otherwise) is replaced whole each
``interval_s``: written to a temporary file in the same folder, flushed to disk, then renamed
over the old one (``os.replace``, atomic on POSIX and Windows), so a reader never sees half a
file. It is written at start, every interval, and once more at stop (``state: stopping``).

Fields (docs/operations.md): ``pid``, ``state`` (ok, halted, stopping), ``halt_reason``,
``symbol``, ``run_id``, ``last_tick_age_s`` (seconds since the last tick batch; null before the
first), ``feed_connected``, ``feed_reconnects`` (reconnects this run), ``net_position``,
``day_realized``, ``unrealized`` (dollars, as strings), ``rss_bytes``, ``interval_s``,
``written_ns`` and ``written_at`` (UTC).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tradebot_core import Event, EventKind, FeedStatusKind, PluginContext, hookimpl

from .settings import HeartbeatSettings, heartbeat_path

log = logging.getLogger(__name__)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` as JSON, all at once: a reader sees the old file or the
    new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2, default=str)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes it 0600: a watchdog may run as another user
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def read_heartbeat(path: Path) -> dict[str, Any] | None:
    """The heartbeat file's content, or None if there is none (or it is not JSON)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def rss_bytes(pid: int | None = None) -> int | None:
    import psutil

    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return None


class Heartbeat:
    name = "heartbeat"
    Settings = HeartbeatSettings

    def __init__(self, settings: HeartbeatSettings, context: PluginContext | None = None) -> None:
        self.settings = settings
        journal = context.config.journal.path if context and context.config else "data/x.db"
        self.path = heartbeat_path(settings, journal)
        self.view: Any = None
        self.reconnects = 0
        self.writes = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self, pipeline: Any) -> None:
        self.view = pipeline.view
        self.view.subscribe(self._on_feed_status, [EventKind.FEED_STATUS])
        self.write()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._stopping = True
        if self.view is not None:
            self.write()
            self.view.unsubscribe(self._on_feed_status)

    def _on_feed_status(self, event: Event) -> None:
        if getattr(event.payload, "kind", None) is FeedStatusKind.RECONNECTED:
            self.reconnects += 1

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval_s)
            self.write()

    def snapshot(self) -> dict[str, Any]:
        view = self.view
        risk = view.risk_state
        if self._stopping or view.stopping:
            state = "stopping"
        elif risk.halted:
            state = "halted"
        else:
            state = "ok"
        age = view.last_batch_age_s
        now_ns = time.time_ns()
        return {
            "pid": os.getpid(),
            "state": state,
            "halt_reason": risk.halt_reason if risk.halted else "",
            "symbol": view.symbol,
            "run_id": view.run_id,
            "last_tick_age_s": round(age, 3) if age is not None else None,
            "feed_connected": view.feed_connected,
            "feed_reconnects": self.reconnects,
            "net_position": view.net_position(),
            "day_realized": str(risk.realized),
            "unrealized": str(view.unrealized()),
            "rss_bytes": rss_bytes(),
            "interval_s": self.settings.interval_s,
            "written_ns": now_ns,
            "written_at": datetime.fromtimestamp(now_ns / 1e9, UTC).isoformat(),
        }

    def write(self) -> None:
        """Write the file; a failure is logged, never raised into the run."""
        try:
            write_json_atomic(self.path, self.snapshot())
            self.writes += 1
        except Exception as exc:
            log.warning("heartbeat: cannot write %s: %s", self.path, exc)


@hookimpl
def register_services(register: Any) -> None:
    register(Heartbeat)
