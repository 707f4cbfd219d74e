"""The heartbeat service in a real run: the file is replaced whole, its fields are right."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

import numpy as np
from tradebot_plugins.ops import heartbeat as heartbeat_module

from tradebot_core import FeedStatus, FeedStatusKind, Pipeline, PluginManager, TickBatch, hookimpl
from tradebot_core.config import load_config
from tradebot_core.testing import trades

FIELDS = {
    "pid",
    "state",
    "halt_reason",
    "symbol",
    "run_id",
    "last_tick_age_s",
    "feed_connected",
    "feed_reconnects",
    "net_position",
    "day_realized",
    "unrealized",
    "rss_bytes",
    "interval_s",
    "written_ns",
    "written_at",
}


def test_a_demo_run_writes_the_heartbeat_atomically_with_every_field(ops_env, monkeypatch):
    config = ops_env.write_config(heartbeat="interval_s: 0.05, ")
    text = config.read_text().replace("speed: max", "speed: 20000")
    config.write_text(
        text.replace("trades_per_session: 2000", "trades_per_session: 20000, batch_size: 200")
    )
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(heartbeat_module.os, "replace", spy)
    seen: list[dict] = []
    bad: list[str] = []
    done = threading.Event()

    def reader() -> None:  # reads as fast as it can while the run writes
        while not done.is_set():
            try:
                text = ops_env.heartbeat.read_text()
            except FileNotFoundError:
                continue
            try:
                seen.append(json.loads(text))
            except ValueError:
                bad.append(text)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        pipeline = Pipeline(load_config(config), PluginManager())
        summary = asyncio.run(pipeline.run())
    finally:
        done.set()
        thread.join()
    assert summary.exit == "completed", summary.exit
    assert not bad, f"a reader saw a partial file: {bad[0][:80]!r}"
    assert len(replaced) >= 5  # at start, every 0.05 s, at stop
    for src, dst in replaced:
        assert Path(src).parent == Path(dst).parent == ops_env.heartbeat.parent
        assert src != dst
    assert [p.name for p in ops_env.heartbeat.parent.iterdir() if p.suffix == ".tmp"] == []
    assert any(beat["state"] == "ok" for beat in seen)
    last = json.loads(ops_env.heartbeat.read_text())
    assert set(last) == FIELDS
    assert last["pid"] == os.getpid()
    assert last["state"] == "stopping"  # the last write, at stop
    assert last["symbol"] == "MES" and last["run_id"] == 1
    assert last["net_position"] == 0  # the day ends flat
    assert last["day_realized"] == str(pipeline.risk.state.realized)
    assert last["unrealized"] == "0"
    assert last["rss_bytes"] > 10 * 1024 * 1024
    assert 0 <= last["last_tick_age_s"] < 5
    assert last["feed_reconnects"] == 0
    ages = [b["last_tick_age_s"] for b in seen if b["last_tick_age_s"] is not None]
    assert ages, "no heartbeat during the run saw a tick"


class FlakyFeed:
    """Connects, loses the connection twice, reconnects each time."""

    name = "flaky"
    live = False

    def __init__(self, settings=None, context=None) -> None:
        pass

    async def stream(self):
        ticks = trades([(i, "5000.00", 1, "buy") for i in range(30)])
        start = int(ticks["ts_event"][0])
        yield FeedStatus(kind=FeedStatusKind.SESSION_START, ts_ns=start)
        yield FeedStatus(kind=FeedStatusKind.CONNECTED, ts_ns=start)
        for index, part in enumerate(np.array_split(ticks, 3)):
            if index:
                ts = int(part["ts_event"][0])
                yield FeedStatus(kind=FeedStatusKind.DISCONNECTED, ts_ns=ts)
                yield FeedStatus(kind=FeedStatusKind.RECONNECTED, ts_ns=ts)
            yield TickBatch("ES", part)
            await asyncio.sleep(0.1)  # the heartbeat writes in between


class FlakyPlugin:
    @hookimpl
    def register_feeds(self, register):
        register(FlakyFeed)


def test_feed_reconnects_are_counted(ops_env):
    config = ops_env.write_config(heartbeat="interval_s: 0.02, ")
    config.write_text(
        config.read_text()
        .replace("symbol: MES", "symbol: ES")
        .replace("{plugin: demo, speed: max, demo: {trades_per_session: 2000}}", "{plugin: flaky}")
    )
    manager = PluginManager()
    manager.register(FlakyPlugin(), "flaky-test")
    pipeline = Pipeline(load_config(config), manager)
    asyncio.run(pipeline.run())
    last = json.loads(ops_env.heartbeat.read_text())
    assert last["feed_reconnects"] == 2
    assert last["feed_connected"] is True
