"""The watchdog: a stall alert once, a recovery once, and systemd pings on a real socket."""

from __future__ import annotations

import socket

from tradebot_plugins.services.watchdog import Watchdog, WatchdogSettings, sd_notify

from tradebot_core.types import EventKind


class FakePipeline:
    """Just what the watchdog reads: times and the bus."""

    def __init__(self, bus):
        self.bus = bus
        self.started_monotonic = 100.0
        self.last_batch_monotonic = 0.0
        self.last_ts_ns = 0

        class Feed:
            plugin = "demo"

        class Config:
            feed = Feed

        self.config = Config


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
    dog.pipeline = FakePipeline(bus)
    dog.check(now=110)  # 10 s after start: fine
    assert server.recv(64) == b"WATCHDOG=1"
    dog.check(now=140)  # 40 s quiet: alert
    dog.check(now=150)  # still quiet: no second alert, no ping
    dog.pipeline.last_batch_monotonic = 155
    dog.check(now=156)  # flowing again
    assert [e.payload["stalled"] for e in seen] == [True, False]
    assert "no ticks for 40 s" in seen[0].message
    assert server.recv(64) == b"WATCHDOG=1"
    server.close()


def test_sd_notify_without_systemd_does_nothing(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False
