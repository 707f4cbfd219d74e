"""The ``rithmic`` feed plugin against the loopback Rithmic gateway (gateway.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import tradebot_plugins.brokers.paper as paper_plugin
import tradebot_plugins.feeds.rithmic_feed as rithmic_plugin
from kernel.scripted import KernelTestPlugin
from rithmic.gateway import RithmicGateway, trades_at
from tradebot_plugins.feeds.rithmic_feed import (
    RithmicFeed,
    RithmicFeedError,
    RithmicFeedSettings,
    TradeDeduper,
)

from tradebot_core import (
    PRICE_SCALE,
    FeedStatus,
    FeedStatusKind,
    InstrumentRegistry,
    Pipeline,
    PluginContext,
    PluginManager,
    TickBatch,
)
from tradebot_core.config import load_config

CA = "loopback-rithmic-ca.pem"  # where RithmicGateway.start writes its throwaway CA
PASSWORD = "feed-test-pass"  # registered as a secret for the process: not a common word


@pytest.fixture
async def gateway(tmp_path):
    gw = await RithmicGateway(users={"trader": PASSWORD}, heartbeat_interval=3.0).start(tmp_path)
    yield gw
    await gw.stop()


def settings(gateway: RithmicGateway, tmp_path: Path, **overrides: Any) -> RithmicFeedSettings:
    values: dict[str, Any] = {
        "user": "trader",
        "password": PASSWORD,
        "system_name": "Rithmic Test",
        "gateway": gateway.url,
        "ca_file": tmp_path / CA,
        "warmup": False,
        "batch_ms": 50,
        "reconnect_interval_s": 0.05,
        "reconnect_backoff": "constant",
        "settle_ms": 50,
        "watch_ms": 10,
        "request_timeout_s": 3.0,
        **overrides,
    }
    return RithmicFeedSettings(**values)


def make_feed(gateway: RithmicGateway, tmp_path: Path, **overrides: Any) -> RithmicFeed:
    context = PluginContext(
        symbol="ES", instruments=InstrumentRegistry(), timeframe_s=60, data_dir=tmp_path
    )
    return RithmicFeed(settings(gateway, tmp_path, **overrides), context)


class Reader:
    """Consumes a feed's stream in a task; ``items`` is what it yielded so far."""

    def __init__(self, feed: RithmicFeed) -> None:
        self.feed = feed
        self.items: list[TickBatch | FeedStatus] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for item in self.feed.stream():
                self.items.append(item)
        except Exception as exc:
            self.error = exc

    @property
    def batches(self) -> list[TickBatch]:
        return [item for item in self.items if isinstance(item, TickBatch)]

    @property
    def ticks(self) -> list[tuple[int, int, int, int]]:
        return [tuple(row) for batch in self.batches for row in batch.ticks.tolist()]

    def statuses(self) -> list[FeedStatusKind]:
        return [item.kind for item in self.items if isinstance(item, FeedStatus)]

    def status(self, kind: FeedStatusKind) -> FeedStatus:
        return next(i for i in self.items if isinstance(i, FeedStatus) and i.kind is kind)

    async def wait_for(self, condition, timeout: float = 5.0) -> None:
        async def until() -> None:
            while not condition():
                if self.task.done():
                    raise AssertionError(f"the stream ended: {self.error!r}")
                await asyncio.sleep(0.01)

        await asyncio.wait_for(until(), timeout)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def fixed(price: str) -> int:
    return int(Decimal(price) * PRICE_SCALE)


def ns(at: float) -> int:
    """The ns timestamp the gateway gives a trade pushed ``at`` (it keeps microseconds)."""
    ssboe = int(at)
    return ssboe * 10**9 + (round((at - ssboe) * 1e6) % 1_000_000) * 1000


async def started(gateway: RithmicGateway, feed: RithmicFeed) -> Reader:
    reader = Reader(feed)
    await gateway.wait_for(lambda: ("ESZ6", "CME", 1) in gateway.subscriptions)
    await reader.wait_for(lambda: FeedStatusKind.CONNECTED in reader.statuses())
    return reader


async def test_trades_arrive_as_batches_with_exact_prices_and_sides(gateway, tmp_path):
    feed = make_feed(gateway, tmp_path, batch_size=3)
    reader = await started(gateway, feed)
    try:
        assert ("ticker", 113) in gateway.received  # the front month, asked of Rithmic
        assert feed.contract == "ESZ6"
        at = time.time()
        rows = [
            (6001.25, 3, "B"),
            (6001.0, 5, "S"),
            (6000.75, 1, "S"),
            (6001.5, 2, "B"),
            (6003.75, 7, "B"),
        ]
        for i, (price, size, side) in enumerate(rows):
            await gateway.push_trade("ESZ6", price, size, side, at=at + i * 0.001)
        await reader.wait_for(lambda: len(reader.ticks) == 5)
        await asyncio.sleep(0.1)
    finally:
        await reader.close()

    assert reader.ticks == [
        (ns(at + i * 0.001), fixed(str(price)), size, 1 if side == "B" else -1)
        for i, (price, size, side) in enumerate(rows)
    ]
    assert fixed("6003.75") == 6_003_750_000_000
    # gathered: 5 trades in at most batch_size=3 per batch, not one batch per trade
    assert [len(b) for b in reader.batches] == [3, 2]
    assert all(b.symbol == "ES" for b in reader.batches)
    assert reader.statuses() == [FeedStatusKind.CONNECTED]
    assert "ESZ6.CME" in reader.status(FeedStatusKind.CONNECTED).detail
    # the client logged out on the way out
    await gateway.wait_for(lambda: "ticker" in gateway.logouts)


async def test_batch_ms_gathers_trades_that_arrive_close_together(gateway, tmp_path):
    feed = make_feed(gateway, tmp_path, batch_ms=200)
    reader = await started(gateway, feed)
    try:
        for i in range(10):
            await gateway.push_trade("ESZ6", 6000.0 + i * 0.25, 1, "B")
        await reader.wait_for(lambda: len(reader.ticks) == 10)
    finally:
        await reader.close()
    assert len(reader.batches) == 1


async def test_a_price_off_the_tick_grid_is_dropped_and_said(gateway, tmp_path):
    feed = make_feed(gateway, tmp_path)
    reader = await started(gateway, feed)
    try:
        await gateway.push_trade("ESZ6", 6000.3, 1, "B")
        await gateway.push_trade("ESZ6", 6000.5, 1, "S")
        await reader.wait_for(lambda: len(reader.ticks) == 1)
    finally:
        await reader.close()
    dropped = reader.status(FeedStatusKind.DROPPED)
    assert dropped.count == 1 and "6000.3" in dropped.detail
    assert reader.ticks[0][1:] == (fixed("6000.5"), 1, -1)


@pytest.mark.parametrize("clean", [False, True], ids=["aborted", "closed"])
async def test_drop_mid_stream_reconnects_backfills_and_counts_nothing_twice(
    gateway, tmp_path, clean
):
    feed = make_feed(gateway, tmp_path)
    reader = await started(gateway, feed)
    at = time.time()
    try:
        await gateway.push_trade("ESZ6", 6000.0, 2, "B", at=at)
        # two identical trades (two fills of one aggressive order): both are real
        await gateway.push_trade("ESZ6", 6000.25, 1, "B", at=at + 0.01)
        await gateway.push_trade("ESZ6", 6000.25, 1, "B", at=at + 0.01)
        await reader.wait_for(lambda: len(reader.ticks) == 3)

        assert await gateway.drop("ticker", clean=clean) == 1
        await reader.wait_for(lambda: FeedStatusKind.DISCONNECTED in reader.statuses())
        # a trade during the outage: nobody is subscribed, only the history plant has it
        assert await gateway.push_trade("ESZ6", 5999.75, 4, "S", at=at + 0.02) == 0
        await reader.wait_for(lambda: FeedStatusKind.GAP in reader.statuses(), timeout=10)
        await gateway.wait_for(lambda: ("ESZ6", "CME", 1) in gateway.subscriptions)
        # the gateway sends the last trades again after the reconnect
        assert await gateway.repeat_trades("ESZ6", count=4) == 4
        await gateway.push_trade("ESZ6", 6000.5, 3, "B", at=at + 0.03)
        await reader.wait_for(lambda: reader.ticks and reader.ticks[-1][1] == fixed("6000.5"))
        await asyncio.sleep(0.1)
    finally:
        await reader.close()

    assert reader.statuses() == [
        FeedStatusKind.CONNECTED,
        FeedStatusKind.DISCONNECTED,
        FeedStatusKind.RECONNECTED,
        FeedStatusKind.GAP,
    ]
    assert reader.ticks == [
        (ns(at), fixed("6000"), 2, 1),
        (ns(at + 0.01), fixed("6000.25"), 1, 1),
        (ns(at + 0.01), fixed("6000.25"), 1, 1),
        (ns(at + 0.02), fixed("5999.75"), 4, -1),  # back-filled from the history plant
        (ns(at + 0.03), fixed("6000.5"), 3, 1),
    ]
    reconnected = reader.status(FeedStatusKind.RECONNECTED).detail
    assert "gap of" in reconnected and "back-filling" in reconnected
    gap = reader.status(FeedStatusKind.GAP).detail
    assert "back-filled 1 trade(s)" in gap
    # the replay sent the 3 trades before the drop again, the live stream 4: 7 dropped
    assert feed.duplicates_dropped == 7
    # the back-fill asked from overlap_ms (1 s) before the last trade (the client pages on)
    assert gateway.replay_requests[0]["start_index"] == (ns(at + 0.01) - 10**9) // 10**9


async def test_without_backfill_the_gap_says_trades_are_missing(gateway, tmp_path):
    feed = make_feed(gateway, tmp_path, backfill=False)
    reader = await started(gateway, feed)
    assert gateway.connected("history") == 0  # no history plant without warm-up or back-fill
    try:
        await gateway.push_trade("ESZ6", 6000.0, 2, "B")
        await reader.wait_for(lambda: len(reader.ticks) == 1)
        await gateway.drop("ticker")
        await reader.wait_for(lambda: FeedStatusKind.GAP in reader.statuses(), timeout=10)
        await gateway.wait_for(lambda: ("ESZ6", "CME", 1) in gateway.subscriptions)
        await gateway.repeat_trades("ESZ6", count=1)
        await gateway.push_trade("ESZ6", 6000.5, 1, "S")
        await reader.wait_for(lambda: len(reader.ticks) == 2)
        await asyncio.sleep(0.1)
    finally:
        await reader.close()
    assert [t[1] for t in reader.ticks] == [fixed("6000"), fixed("6000.5")]
    assert "missing" in reader.status(FeedStatusKind.GAP).detail
    assert feed.duplicates_dropped == 1


async def test_wrong_password_is_a_clear_error_and_never_logged(gateway, tmp_path, caplog, capfd):
    password = "Wr0ng-pa55word-do-not-log"
    feed = make_feed(gateway, tmp_path, password=password)
    assert password not in repr(feed) and password not in repr(feed.settings)
    with caplog.at_level(logging.DEBUG):
        reader = Reader(feed)
        await asyncio.wait_for(reader.task, 10)
    error = reader.error
    assert isinstance(error, RithmicFeedError)
    message = str(error)
    assert "'Rithmic Test'" in message and "refused the login" in message
    assert "permission denied (code 13)" in message
    assert password not in message
    assert password not in caplog.text
    for record in caplog.records:
        assert password not in record.getMessage()
        assert password not in (record.exc_text or "")
    out, err = capfd.readouterr()  # async-rithmic's own stdout handler too
    assert password not in out + err
    assert [(login.plant, login.accepted) for login in gateway.logins] == [("ticker", False)]
    assert not reader.items


async def test_unknown_system_names_the_ones_offered(gateway, tmp_path):
    feed = make_feed(gateway, tmp_path, system_name="Rithmic 01")
    reader = Reader(feed)
    await asyncio.wait_for(reader.task, 10)
    assert isinstance(reader.error, RithmicFeedError)
    assert "'Rithmic 01'" in str(reader.error)
    assert "Rithmic Paper Trading" in str(reader.error)


async def test_unknown_front_month_is_a_clear_error(gateway, tmp_path):
    context = PluginContext(
        symbol="MES", instruments=InstrumentRegistry(), timeframe_s=60, data_dir=tmp_path
    )
    feed = RithmicFeed(settings(gateway, tmp_path), context)
    reader = Reader(feed)
    await asyncio.wait_for(reader.task, 10)
    assert isinstance(reader.error, RithmicFeedError)
    assert "no front-month contract for MES.CME" in str(reader.error)


async def test_warmup_replays_the_session_before_live_trades(gateway, tmp_path):
    start = time.time() - 30
    history = [(6000.0, 1, "B"), (6000.25, 2, "B"), (6000.0, 4, "S"), (5999.75, 1, "S")]
    gateway.history = trades_at("ESZ6", start, history)
    feed = make_feed(gateway, tmp_path, warmup=True, warmup_lookback_s=120, settle_ms=100)
    reader = Reader(feed)
    try:
        await gateway.wait_for(lambda: ("ESZ6", "CME", 1) in gateway.subscriptions)
        # a trade right after the subscription: live, and in the replay asked for after it
        at = time.time()
        assert await gateway.push_trade("ESZ6", 6000.5, 3, "B", at=at) == 1
        await reader.wait_for(lambda: len(reader.ticks) == 5)
        await gateway.push_trade("ESZ6", 6000.75, 1, "B", at=at + 0.5)
        await reader.wait_for(lambda: len(reader.ticks) == 6)
        await asyncio.sleep(0.1)
    finally:
        await reader.close()

    expected = [
        (int(start) * 10**9 + i * 10**9, fixed(str(p)), s, 1 if a == "B" else -1)
        for i, (p, s, a) in enumerate(history)
    ]
    expected += [(ns(at), fixed("6000.5"), 3, 1), (ns(at + 0.5), fixed("6000.75"), 1, 1)]
    assert reader.ticks == expected
    # the replay only warms bars and indicators; the kernel trades the live trades alone
    marked = [(row[0], batch.warmup) for batch in reader.batches for row in batch.ticks.tolist()]
    # (the trade at the seam came in the replay, its live copy was the duplicate dropped)
    assert [warm for _, warm in marked] == [True] * (len(history) + 1) + [False]
    assert feed.duplicates_dropped == 1  # the trade at the seam, live and replayed
    assert isinstance(reader.items[0], FeedStatus)
    assert reader.items[0].kind is FeedStatusKind.CONNECTED
    request = gateway.replay_requests[0]
    assert request["symbol"] == "ESZ6"
    assert abs(request["start_index"] - (time.time() - 120)) < 10


def test_deduper_counts_copies_only_inside_the_window():
    dedup = TradeDeduper(overlap_ns=0)
    a, b = (10, 1, 1, 1), (20, 2, 1, -1)
    assert dedup.accept([a, b, b], "live") == [a, b, b]  # no window: identical trades are real
    assert dedup.arm() == 20
    # the replay repeats b twice and brings one more b and c: only the new ones pass
    c = (30, 3, 1, 1)
    assert dedup.accept([a, b, b, b, c], "replay") == [b, c]
    # the live stream repeats b and c again, then goes on
    d = (40, 4, 1, 1)
    assert dedup.accept([b, b, b, c, d], "live") == [d]
    assert not dedup.armed
    assert dedup.accept([d], "live") == [d]  # after the window, identical trades are real


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("RITHMIC_USER", "env-user")
    monkeypatch.setenv("RITHMIC_PASSWORD", "env-password")
    monkeypatch.setenv("RITHMIC_SYSTEM", "Rithmic Paper Trading")
    monkeypatch.setenv("RITHMIC_GATEWAY", "wss://rprotocol.example:443")
    monkeypatch.setenv("RITHMIC_APP_NAME", "acme:tradebot")
    monkeypatch.setenv("RITHMIC_APP_VERSION", "2.0")
    s = RithmicFeedSettings()
    assert (s.user, s.system_name, s.gateway) == (
        "env-user",
        "Rithmic Paper Trading",
        "wss://rprotocol.example:443",
    )
    assert (s.app_name, s.app_version) == ("acme:tradebot", "2.0")
    assert s.password.get_secret_value() == "env-password"
    assert "env-password" not in repr(s)
    assert (s.batch_ms, s.front_month, s.warmup, s.exchange) == (100, True, True, "CME")


def test_settings_are_strict(tmp_path):
    with pytest.raises(ValueError, match="extra"):
        RithmicFeedSettings(user="u", password="p", gateway="wss://x", batch_msec=5)
    with pytest.raises(ValueError, match="needs a symbol"):
        RithmicFeedSettings(user="u", password="p", gateway="wss://x", front_month=False)


def test_missing_credentials_name_the_variables(monkeypatch, tmp_path):
    for name in ("RITHMIC_USER", "RITHMIC_PASSWORD", "RITHMIC_GATEWAY"):
        monkeypatch.delenv(name, raising=False)
    context = PluginContext(
        symbol="ES", instruments=InstrumentRegistry(), timeframe_s=60, data_dir=tmp_path
    )
    with pytest.raises(RithmicFeedError, match=r"\$RITHMIC_USER.*\$RITHMIC_PASSWORD"):
        RithmicFeed(RithmicFeedSettings(), context)


def test_module_imports_without_async_rithmic():
    code = (
        "import sys, tradebot_plugins.feeds.rithmic_feed as m; "
        "assert 'async_rithmic' not in sys.modules, 'imported async_rithmic'; "
        "assert m.RithmicFeed.live is True"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


def test_registered_under_the_rithmic_entry_point():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="tradebot") if e.name == "rithmic"]
    assert ep.value == "tradebot_plugins.rithmic"  # one plugin: the feed and the broker
    manager = PluginManager()
    info = manager.get("feed", "rithmic", "rithmic")
    assert (info.cls, info.plugin) == (RithmicFeed, "rithmic")
    assert manager.get("broker", "rithmic", "rithmic").plugin == "rithmic"


PIPELINE_CONFIG = """
symbol: ES
timeframe_s: 1
feed:
  plugin: rithmic
  rithmic:
    ca_file: {ca}
    warmup: true
    warmup_lookback_s: 60
    batch_ms: 20
    settle_ms: 50
    reconnect_interval_s: 0.05
journal: {{path: {journal}}}
detectors: {{bar_direction: {{}}}}
regime: {{plugin: fixed}}
router: {{plugin: approve_all}}
broker: {{plugin: paper, paper: {{slippage_ticks: 1, commission_per_side: 2.25}}}}
risk: {{daily_profit_target: 100000, daily_loss_limit: -100000, max_position: 1}}
"""


def pipeline_for(gateway, tmp_path, monkeypatch, password: str = PASSWORD) -> Pipeline:
    monkeypatch.setenv("RITHMIC_USER", "trader")
    monkeypatch.setenv("RITHMIC_PASSWORD", password)
    monkeypatch.setenv("RITHMIC_SYSTEM", "Rithmic Paper Trading")
    monkeypatch.setenv("RITHMIC_GATEWAY", gateway.url)
    path = tmp_path / "tradebot.yaml"
    path.write_text(PIPELINE_CONFIG.format(ca=tmp_path / CA, journal=tmp_path / "journal.db"))
    loaded = load_config(path, ("account.tiers=[]",))
    manager = PluginManager(load_entrypoints=False)
    manager.register(paper_plugin, "paper")
    manager.register(rithmic_plugin, "rithmic")
    manager.register(KernelTestPlugin(), "kernel-test")
    return Pipeline(loaded, manager, journal_path=tmp_path / "journal.db")


async def test_a_refused_login_fails_the_run(gateway, tmp_path, monkeypatch, caplog):
    password = "run-Wr0ng-pass"
    pipeline = pipeline_for(gateway, tmp_path, monkeypatch, password)
    with caplog.at_level(logging.DEBUG):
        summary = await asyncio.wait_for(pipeline.run(), 10)
    assert summary.exit.startswith("failed: Rithmic system 'Rithmic Paper Trading'")
    assert "permission denied" in summary.exit
    assert password not in summary.exit and password not in caplog.text


async def test_a_run_with_the_rithmic_feed_and_the_paper_broker(gateway, tmp_path, monkeypatch):
    start = time.time() - 20
    prices = [6000.0, 6000.25, 6000.5, 6000.25, 6000.0, 5999.75, 6000.0, 6000.5]
    gateway.history = trades_at("ESZ6", start, [(p, 2, "B" if i % 2 else "S") for i, p in
                                                enumerate(prices)])  # fmt: skip
    pipeline = pipeline_for(gateway, tmp_path, monkeypatch)
    assert pipeline.live

    run = asyncio.create_task(pipeline.run())
    await gateway.wait_for(lambda: ("ESZ6", "CME", 1) in gateway.subscriptions, timeout=10)
    # the replay of the session so far builds bars without trading
    await gateway.wait_for(lambda: len(pipeline.history) >= len(prices) - 1, timeout=10)
    warm_bars = len(pipeline.history)
    assert pipeline.summary.warmup_ticks == len(prices) and pipeline.summary.bars == 0
    for i in range(4):  # live trades, one bar each
        await gateway.push_trade("ESZ6", 6000.0 + 0.25 * i, 1, "B")
        await asyncio.sleep(1.05)
    await gateway.wait_for(lambda: len(pipeline.history) >= warm_bars + 3, timeout=10)
    pipeline.request_stop()
    summary = await asyncio.wait_for(run, 10)

    assert summary.exit == "stopped"
    assert summary.ticks >= 3  # the live trades
    assert summary.bars >= 3  # the bars they closed (the warm-up's are not counted)
    assert pipeline.feed_connected
    assert [login.system_name for login in gateway.logins][:1] == ["Rithmic Paper Trading"]
    await gateway.wait_for(lambda: not gateway.connected("ticker"))


async def test_gives_up_after_reconnect_max_attempts(gateway, tmp_path):
    feed = make_feed(gateway, tmp_path, reconnect_max_attempts=2, backfill=False)
    reader = await started(gateway, feed)
    await gateway.push_trade("ESZ6", 6000.0, 1, "B")
    await reader.wait_for(lambda: len(reader.ticks) == 1)
    await gateway.stop()  # the gateway is gone: every reconnect attempt is refused
    await asyncio.wait_for(reader.task, 10)
    assert isinstance(reader.error, RithmicFeedError)
    assert "gave up after 2 reconnect attempt(s)" in str(reader.error)
    assert reader.statuses() == [FeedStatusKind.CONNECTED, FeedStatusKind.DISCONNECTED]
