"""``tradebot watchdog``: a separate process that watches the bot from outside.

Every ``check_every_s`` it reads the heartbeat file and looks at the machine, and alerts through
the config's notifiers (WATCHDOG events) when:

* ``heartbeat_stale``: the heartbeat is older than ``stale_after_s`` (or missing) while the CME
  session is open; a closed market (weekend, holiday, the 17:00-18:00 ET break) is not a stall;
* ``bot_gone``: the heartbeat's process is not alive, or no process holds the journal's lock;
* ``memory``: the bot's RSS is over ``max_rss_mb``, or the machine's memory over
  ``max_memory_pct``;
* ``disk``: the journal's disk is at or over ``max_disk_pct``;
* ``feed_reconnects``: the bot's feed reconnected more than ``max_feed_reconnects`` times.

An alert is sent when its cause appears, again every ``repeat_after_s`` while it lasts, and a
"recovered" message when it clears. After ``report_at`` (16:05 ET) on a trading day it sends
one end-of-day health report (remembered in ``watchdog.json`` beside the heartbeat, so a
restarted watchdog does not send it twice). It never stops because the bot is dead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from tradebot_core import Event, EventKind
from tradebot_core.calendar import et_time
from tradebot_core.execution.store import JournalLock

from .common import Notifiers, OpsConfig, market_open, pid_alive
from .heartbeat import read_heartbeat, rss_bytes, write_json_atomic
from .settings import WatchdogThresholds

log = logging.getLogger(__name__)

MB = 1024 * 1024


@dataclass
class Finding:
    """One thing wrong right now."""

    check: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Look:
    """What one check saw: the heartbeat, its age, the clock."""

    now_ns: int
    heartbeat: dict[str, Any] | None
    heartbeat_path: Path
    journal: Path
    limits: WatchdogThresholds

    @property
    def age_s(self) -> float | None:
        if self.heartbeat is None or not isinstance(self.heartbeat.get("written_ns"), int):
            return None
        return (self.now_ns - self.heartbeat["written_ns"]) / 1e9

    @property
    def pid(self) -> int | None:
        pid = (self.heartbeat or {}).get("pid")
        return pid if isinstance(pid, int) and pid > 0 else None


# -- the checks: each returns what it found wrong, or None --------------------------------------


def check_stale(look: Look) -> Finding | None:
    if not market_open(look.now_ns):
        return None
    age = look.age_s
    if age is None:
        return Finding(
            "heartbeat_stale",
            f"no heartbeat at {look.heartbeat_path} while the market is open",
            {"path": str(look.heartbeat_path)},
        )
    if age > look.limits.stale_after_s:
        return Finding(
            "heartbeat_stale",
            f"heartbeat {age:.0f} s old (limit {look.limits.stale_after_s:g} s) while the market "
            "is open: the bot is stuck or stopped",
            {"age_s": round(age, 1)},
        )
    return None


def check_process(look: Look) -> Finding | None:
    pid = look.pid
    holder = JournalLock.holder(look.journal)
    reasons = []
    if pid is not None and not pid_alive(pid):
        reasons.append(f"process {pid} is gone")
    if holder is None:
        reasons.append(f"nothing holds the journal {look.journal}")
    if not reasons:
        return None
    last = (look.heartbeat or {}).get("state")
    tail = f" (its last heartbeat said {last})" if last else ""
    return Finding(
        "bot_gone",
        "the bot is not running: " + "; ".join(reasons) + tail,
        {"pid": pid, "journal_holder": holder},
    )


def check_memory(look: Look) -> Finding | None:
    import psutil

    problems, details = [], {}
    pid = look.pid
    rss = rss_bytes(pid) if pid is not None and pid_alive(pid) else None
    if rss is None:
        rss = (look.heartbeat or {}).get("rss_bytes")
    if isinstance(rss, int):
        details["rss_mb"] = round(rss / MB, 1)
        if rss > look.limits.max_rss_mb * MB:
            problems.append(f"the bot uses {rss / MB:.0f} MB (limit {look.limits.max_rss_mb:g})")
    used = psutil.virtual_memory().percent
    details["memory_pct"] = used
    if used > look.limits.max_memory_pct:
        problems.append(f"the machine's memory is {used:.0f}% used")
    if not problems:
        return None
    return Finding("memory", "; ".join(problems), details)


def disk_usage(folder: Path) -> Any:
    """psutil's disk usage of the disk ``folder`` is on (its nearest existing parent)."""
    import psutil

    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return psutil.disk_usage(str(folder))


def check_disk(look: Look) -> Finding | None:
    usage = disk_usage(look.journal.parent)
    if usage.percent < look.limits.max_disk_pct:
        return None
    return Finding(
        "disk",
        f"the journal's disk is {usage.percent:.0f}% full (limit {look.limits.max_disk_pct:g}%), "
        f"{usage.free / 1e9:.1f} GB free",
        {"disk_pct": usage.percent, "free_gb": round(usage.free / 1e9, 2)},
    )


def check_reconnects(look: Look) -> Finding | None:
    count = (look.heartbeat or {}).get("feed_reconnects")
    if not isinstance(count, int) or count <= look.limits.max_feed_reconnects:
        return None
    return Finding(
        "feed_reconnects",
        f"the feed reconnected {count} times this run (limit {look.limits.max_feed_reconnects})",
        {"feed_reconnects": count},
    )


CHECKS = (check_stale, check_process, check_memory, check_disk, check_reconnects)


def findings(look: Look) -> list[Finding]:
    found = []
    for check in CHECKS:
        try:
            finding = check(look)
        except Exception as exc:  # a broken check must not stop the others
            finding = Finding(check.__name__, f"{check.__name__} failed: {exc}")
        if finding is not None:
            found.append(finding)
    return found


# -- the watchdog -------------------------------------------------------------------------------


class Watchdog:
    """Alerts once per cause (again after ``repeat_after_s``), clears, reports at day's end."""

    def __init__(self, ops: OpsConfig, notify: Any) -> None:
        self.ops = ops
        self.limits = ops.settings.watchdog
        self.notify = notify
        self.active: dict[str, int] = {}  # check -> when last sent (ns)
        self.alerts_today: list[str] = []

    def look(self, now_ns: int) -> Look:
        return Look(
            now_ns, read_heartbeat(self.ops.heartbeat), self.ops.heartbeat, self.ops.journal,
            self.limits,
        )  # fmt: skip

    def check(self, now_ns: int | None = None) -> list[Event]:
        """One round: alerts, recoveries and the day's report; returns the events sent."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        look = self.look(now_ns)
        sent = []
        found = {f.check: f for f in findings(look)}
        repeat_ns = int(self.limits.repeat_after_s * 1e9)
        for check, finding in found.items():
            last = self.active.get(check)
            if last is None or now_ns - last >= repeat_ns:
                self.active[check] = now_ns
                self.alerts_today.append(finding.message)
                sent.append(self._event(now_ns, check, True, finding.message, finding.details))
        for check in [c for c in self.active if c not in found]:
            del self.active[check]
            sent.append(self._event(now_ns, check, False, f"{check}: recovered", {}))
        report = self.daily_report(look)
        if report is not None:
            sent.append(report)
        for event in sent:
            log.warning("%s", event.message)
            self.notify(event)
        return sent

    def _event(
        self, now_ns: int, check: str, stalled: bool, message: str, details: dict[str, Any]
    ) -> Event:
        payload = {"check": check, "stalled": stalled, "message": message, **details}
        return Event(
            kind=EventKind.WATCHDOG, ts_ns=now_ns, payload=payload, message=f"watchdog: {message}"
        )

    # -- the end-of-day report ------------------------------------------------------------------

    def daily_report(self, look: Look) -> Event | None:
        from tradebot_core import calendar

        local = et_time(look.now_ns)
        today = local.date()
        if local.time() < self.limits.report_at or not calendar.is_trading_day(today):
            return None
        state = read_heartbeat(self.ops.state_file) or {}
        if state.get("report_sent") == today.isoformat():
            return None
        event = self._report_event(look, today)
        write_json_atomic(self.ops.state_file, {**state, "report_sent": today.isoformat()})
        self.alerts_today = []
        return event

    def _report_event(self, look: Look, today: date) -> Event:
        beat = look.heartbeat or {}
        usage = disk_usage(look.journal.parent)
        age = look.age_s
        payload = {
            "check": "daily_report",
            "stalled": False,
            "day": today.isoformat(),
            "bot_running": check_process(look) is None,
            "state": beat.get("state", "unknown"),
            "heartbeat_age_s": round(age, 1) if age is not None else None,
            "net_position": beat.get("net_position"),
            "day_realized": beat.get("day_realized"),
            "unrealized": beat.get("unrealized"),
            "feed_reconnects": beat.get("feed_reconnects"),
            "rss_mb": round(beat["rss_bytes"] / MB, 1)
            if isinstance(beat.get("rss_bytes"), int)
            else None,
            "disk_pct": usage.percent,
            "alerts_today": len(self.alerts_today),
        }
        running = "running" if payload["bot_running"] else "NOT running"
        message = (
            f"end-of-day health report {today}: bot {running} ({payload['state']}), position "
            f"{payload['net_position']}, day P&L ${payload['day_realized']}, "
            f"{payload['feed_reconnects']} feed reconnects, disk {usage.percent:.0f}%, "
            f"{len(self.alerts_today)} alerts today"
        )
        payload["message"] = message
        return Event(kind=EventKind.WATCHDOG, ts_ns=look.now_ns, payload=payload, message=message)


async def watch(ops: OpsConfig, once: bool, now_ns: int | None) -> list[Event]:
    """Run the watchdog (until cancelled, or one round with ``once``)."""
    notifiers = Notifiers(ops.loaded)
    await notifiers.start()
    dog = Watchdog(ops, notifiers.notify)
    sent: list[Event] = []
    try:
        while True:
            sent += dog.check(now_ns)
            if once:
                return sent
            await asyncio.sleep(ops.settings.watchdog.check_every_s)
            if now_ns is not None:  # virtual time moves on with the real one
                now_ns += int(ops.settings.watchdog.check_every_s * 1e9)
    finally:
        await notifiers.stop()
