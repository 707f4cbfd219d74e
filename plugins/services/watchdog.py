"""The ``watchdog`` service: notices a run that has gone quiet, and tells systemd it is alive.

Every ``interval_s`` it checks, through the run's view (:class:`tradebot_core.RunView`), how long
ago the pipeline last processed a tick batch. Past
``stall_after_s`` it publishes a WATCHDOG event (notifiers turn it into an alert) once, and
another when ticks flow again. Under systemd (``Type=notify`` with ``WatchdogSec=``), it sends
``READY=1`` at start and ``WATCHDOG=1`` each check while the pipeline is healthy, so a hung
process is restarted by systemd; the journal then brings back positions and P&L.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import Any

from pydantic import Field

from tradebot_core import EventKind, PluginContext, PluginSettings, hookimpl

log = logging.getLogger(__name__)


class WatchdogSettings(PluginSettings):
    interval_s: float = Field(default=5.0, gt=0)
    stall_after_s: float = Field(default=120.0, gt=0)
    """Seconds without a tick batch before an alert (markets do pause: keep it generous)."""


def sd_notify(message: str) -> bool:
    """Send a message to systemd's notify socket, if there is one (no dependency needed)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


class Watchdog:
    name = "watchdog"
    Settings = WatchdogSettings

    def __init__(self, settings: WatchdogSettings, context: PluginContext) -> None:
        self.settings = settings
        self.view: Any = None
        self.stalled = False
        self._task: asyncio.Task[None] | None = None

    async def start(self, pipeline: Any) -> None:
        self.view = pipeline.view
        sd_notify("READY=1")
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        sd_notify("STOPPING=1")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval_s)
            self.check()

    def check(self, now: float | None = None) -> None:
        """One look at the run: alert on a stall, clear it on recovery, ping systemd."""
        now = time.monotonic() if now is None else now
        view = self.view
        last = view.last_batch_monotonic or view.started_monotonic
        quiet_s = now - last
        if quiet_s > self.settings.stall_after_s and not self.stalled:
            self.stalled = True
            self._alert(f"no ticks for {quiet_s:.0f} s (feed {view.feed_plugin})")
        elif quiet_s <= self.settings.stall_after_s and self.stalled:
            self.stalled = False
            self._alert("ticks are flowing again")
        if not self.stalled:
            sd_notify("WATCHDOG=1")

    def _alert(self, message: str) -> None:
        log.warning("watchdog: %s", message)
        self.view.publish(
            EventKind.WATCHDOG,
            {"stalled": self.stalled, "message": message},
            f"watchdog: {message}",
        )


@hookimpl
def register_services(register: Any) -> None:
    register(Watchdog)
