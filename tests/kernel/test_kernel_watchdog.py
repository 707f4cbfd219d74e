"""The watchdog: a stall alert once, a recovery once, and systemd pings on a real socket."""

from __future__ import annotations

import socket

from tradebot_plugins.services.watchdog import Watchdog, WatchdogSettings, sd_notify

from tradebot_core.types import EventKind


class FakeView:
    """Just what the watchdog reads of a run's view: times, the feed, publish."""

    def __init__(self, bus, live=False):
        self.bus = bus
        self.started_monotonic = 100.0
        self.last_batch_monotonic = 0.0
        self.feed_plugin = "demo"
        self.feed_live = live

    def publish(self, kind, payload, message=""):
        self.bus.publish(kind, 0, payload, message)


def ns(text: str) -> int:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    when = datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("America/New_York"))
    return int(when.timestamp() * 1e9)


def listening(tmp_path, monkeypatch):
    address = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(1)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    return server


def test_alerts_once_on_a_stall_and_once_on_recovery(tmp_path, monkeypatch):
    from tradebot_core.events import EventBus

    bus = EventBus()
    seen = []
    bus.subscribe(seen.append, [EventKind.WATCHDOG])
    address = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(1)
    monkeypatch.setenv("NOTIFY_SOCKET", address)

    dog = Watchdog(WatchdogSettings(stall_after_s=30), None)
    dog.view = FakeView(bus)
    dog.check(now=110)  # 10 s after start: fine
    assert server.recv(64) == b"WATCHDOG=1"
    dog.check(now=140)  # 40 s quiet: alert
    dog.check(now=150)  # still quiet: no second alert
    dog.view.last_batch_monotonic = 155
    dog.check(now=156)  # flowing again
    assert [e.payload["stalled"] for e in seen] == [True, False]
    assert "no ticks for 40 s" in seen[0].message
    # the loop was alive at every check: systemd heard so every time, stall or not
    assert [server.recv(64) for _ in range(3)] == [b"WATCHDOG=1"] * 3
    server.close()


def test_a_quiet_closed_market_is_no_stall_and_never_stops_the_pings(tmp_path, monkeypatch):
    from tradebot_core.events import EventBus

    bus = EventBus()
    seen = []
    bus.subscribe(seen.append, [EventKind.WATCHDOG])
    server = listening(tmp_path, monkeypatch)
    dog = Watchdog(WatchdogSettings(stall_after_s=30), None)
    dog.view = FakeView(bus, live=True)
    quiet = [
        "2024-11-13T17:20:00",  # the daily maintenance break
        "2024-11-16T12:00:00",  # Saturday
        "2024-11-28T14:00:00",  # Thanksgiving, after its 13:00 ET early close
        "2024-12-25T12:00:00",  # Christmas: no session
    ]
    for i, when in enumerate(quiet):
        dog.check(now=1000 + i, wall_ns=ns(when))
    assert seen == []
    assert [server.recv(64) for _ in quiet] == [b"WATCHDOG=1"] * len(quiet)
    dog.check(now=2000, wall_ns=ns("2024-11-13T10:00:00"))  # open, and quiet: a stall
    assert [e.payload["stalled"] for e in seen] == [True]
    server.close()


def test_sd_notify_without_systemd_does_nothing(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False
