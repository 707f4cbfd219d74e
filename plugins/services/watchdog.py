"""The ``watchdog`` service: notices a feed gone quiet, and tells systemd the loop is alive.

Every ``interval_s`` it checks, through the run's view (:class:`tradebot_core.RunView`), how long
ago the pipeline last processed a tick batch. Past ``stall_after_s`` it publishes a WATCHDOG
event (notifiers turn it into an alert) once, and another when ticks flow again; on a live feed
only while the exchange is open (the CME calendar: the daily 17:00-18:00 ET break, weekends and
holidays are quiet by nature, not stalls).

Liveness that means liveness: under systemd (``Type=notify`` with ``WatchdogSec=``) it sends
``READY=1`` at start and ``WATCHDOG=1`` at every check, because a check running at all proves the
event loop is alive. A quiet market never stops the pings; a process stuck in a loop or a
blocking call does, and only then does systemd restart it (the journal brings back positions and
P&L). A quiet feed is an alert for a person, not a reason to restart.
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


def market_open(ts_ns: int) -> bool:
    """Whether the CME Globex session is open at ``ts_ns`` (its daily break, weekends and
    holidays are closed)."""
    from tradebot_core import calendar

    try:
        day = calendar.trading_date_of(ts_ns)
        if not calendar.is_trading_day(day):
            return False
        bounds = calendar.get().bounds(day)
    except ValueError:  # outside the calendar's years: assume open, and alert
        return True
    return bounds.open_ns <= ts_ns < bounds.close_ns


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

    def check(self, now: float | None = None, wall_ns: int | None = None) -> None:
        """One look at the run: alert on a stall while the market is open, clear it on
        recovery; ping systemd every time (the loop is alive)."""
        now = time.monotonic() if now is None else now
        wall_ns = time.time_ns() if wall_ns is None else wall_ns
        view = self.view
        last = view.last_batch_monotonic or view.started_monotonic
        quiet_s = now - last
        expected = not getattr(view, "feed_live", False) or market_open(wall_ns)
        if quiet_s > self.settings.stall_after_s and expected and not self.stalled:
            self.stalled = True
            self._alert(f"no ticks for {quiet_s:.0f} s (feed {view.feed_plugin})")
        elif quiet_s <= self.settings.stall_after_s and self.stalled:
            self.stalled = False
            self._alert("ticks are flowing again")
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
