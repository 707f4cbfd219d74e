"""Whole runs against the loopback Rithmic gateway: the ``rithmic`` feed and the ``rithmic``
broker, in-process, through the official async-rithmic client (gateway.py).

The detector, regime and router are the kernel tests' deterministic ones (kernel/scripted.py:
``bar_direction``, ``fixed``, ``approve_all``) on 1-second bars; trades are pushed bar by bar.
The same pushes through ``broker: {plugin: paper}`` (still on the rithmic feed) give the same
trades: the parity test.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import tradebot_plugins.rithmic as rithmic_plugin
from kernel.scripted import kernel_manager
from rithmic.gateway import RithmicGateway

from tradebot_core import EventKind, Pipeline
from tradebot_core.config import load_config
from tradebot_core.journal import open_journal

CA = "loopback-rithmic-ca.pem"  # where RithmicGateway.start writes its throwaway CA
PASSWORD = "e2e-Rithm1c-pass"  # registered as a secret for the process: not a common word
ACCOUNT = "LOOP-0001"

CONFIG = """
symbol: {symbol}
timeframe_s: 1
live: {{enabled: true}}
feed:
  plugin: rithmic
  rithmic:
    ca_file: {ca}
    warmup: false
    batch_ms: 20
    settle_ms: 50
    reconnect_interval_s: 0.05
journal: {{path: {journal}}}
detectors: {{bar_direction: {{}}}}
regime: {{plugin: fixed}}
router: {{plugin: approve_all}}
broker:
  plugin: {broker}
  paper: {{slippage_ticks: 1, commission_per_side: 2.25}}
  rithmic:
    ca_file: {ca}
    commission_per_side: 2.25
    request_timeout_s: 3
    reconnect_interval_s: 0.05
    reconnect_backoff: constant
    flatten_confirm_s: 3
risk:
  daily_profit_target: 100000
  daily_loss_limit: -100000
  max_position: 1
  flatten_at: null
  digest_at: null
  margin_limits: {{{symbol}: {limit}}}
"""

# Bars of pushed trades (ES, stop and target 8 ticks, slippage 1 tick). A bar's direction is
# signalled at the next bar's first trade; the paper broker fills the entry at that trade, the
# gateway at the trade after the order arrives: each bar's first two trades are at one price, so
# both fill alike, and nothing reaches a stop or target before a bar's third trade.
SCRIPT = [
    [6000.00, 6000.25],  # up: LONG
    [6000.25, 6000.25, 6000.50],  # LONG in at 6000.50 (stop 5998.50, target 6002.50); up
    [6001.00, 6001.00, 6002.75],  # target at 6002.50; up: LONG
    [6002.50, 6002.50, 6001.75],  # LONG in at 6002.75 (stop 6000.75); down: SHORT rejected
    [6001.50, 6001.50, 6000.50],  # stop: 6000.50 - 1 tick = 6000.25; down: SHORT
    [6000.25, 6000.25, 6001.00],  # SHORT in at 6000.00 (stop 6002.00, target 5998.00); up
    [5999.00, 5997.75, 5999.00],  # target at 5998.00; flat bar: no signal
    [5999.00],  # closes the last bar
]
EXPECTED = [  # direction, entry, exit, exit reason
    ("long", Decimal("6000.50"), Decimal("6002.50"), "target"),
    ("long", Decimal("6002.75"), Decimal("6000.25"), "stop"),
    ("short", Decimal("6000.00"), Decimal("5998.00"), "target"),
]


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    monkeypatch.setenv("TRADEBOT_LIVE", "1")
    monkeypatch.setenv("RITHMIC_USER", "trader")
    monkeypatch.setenv("RITHMIC_PASSWORD", PASSWORD)
    monkeypatch.setenv("RITHMIC_SYSTEM", "Rithmic Paper Trading")
    monkeypatch.setenv("RITHMIC_ACCOUNT_ID", ACCOUNT)


async def start_gateway(where: Path, **fields: Any) -> RithmicGateway:
    where.mkdir(parents=True, exist_ok=True)
    gateway = RithmicGateway(users={"trader": PASSWORD}, heartbeat_interval=3.0, **fields)
    return await gateway.start(where)


def pipeline_for(
    gateway: RithmicGateway,
    where: Path,
    monkeypatch,
    broker: str = "rithmic",
    symbol: str = "ES",
    limit: str = "100000",
) -> Pipeline:
    monkeypatch.setenv("RITHMIC_GATEWAY", gateway.url)
    path = where / "tradebot.yaml"
    journal = where / "journal.db"
    path.write_text(
        CONFIG.format(symbol=symbol, ca=where / CA, journal=journal, broker=broker, limit=limit)
    )
    manager = kernel_manager()
    manager.register(rithmic_plugin, "rithmic")
    return Pipeline(load_config(path, ("account.tiers=[]",)), manager, journal_path=journal)


class Run:
    """A pipeline running in a task, its broker's submissions counted."""

    def __init__(self, pipeline: Pipeline, gateway: RithmicGateway, threaded: bool = False) -> None:
        self.pipeline = pipeline
        self.gateway = gateway
        self.submitted = 0
        broker = pipeline.broker
        submit = broker.submit_bracket

        def counted(*args: Any) -> None:
            self.submitted += 1
            submit(*args)

        broker.submit_bracket = counted
        self.pushed = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        if threaded:  # the kernel on a loop of its own, in a thread: see the restart test
            self.task = asyncio.ensure_future(asyncio.to_thread(asyncio.run, self._main()))
        else:
            self.task = asyncio.create_task(pipeline.run())

    async def _main(self):
        self.loop = asyncio.get_running_loop()
        return await self.pipeline.run()

    @property
    def live_broker(self) -> bool:
        return getattr(self.pipeline.broker, "real_money", False)

    async def connected(self, symbol: str = "ESZ6") -> None:
        await self.gateway.wait_for(
            lambda: (symbol, "CME", 1) in self.gateway.subscriptions, timeout=10
        )

    async def push(self, symbol: str, price: float, size: int, at: float) -> None:
        await self.gateway.push_trade(symbol, price, size, "B" if size % 2 else "S", at=at)
        self.pushed += 1
        session = self.pipeline.session
        await self.gateway.wait_for(lambda: self.pipeline.summary.ticks >= self.pushed, 10)
        if self.live_broker:  # the orders reached the gateway, the fills the kernel
            await self.gateway.wait_for(
                lambda: (
                    sum(o.role == "entry" for o in self.gateway.orders.values()) == self.submitted
                    and all(f["fill_id"] in session.exec_ids for f in self.gateway.fills)
                ),
                10,
            )

    async def play(self, script: list[list[float]], symbol: str = "ESZ6") -> None:
        start = int(time.time()) + 1
        for k, bar in enumerate(script):
            await asyncio.sleep(max(0.0, start + k - time.time()))  # bar k's second
            for i, price in enumerate(bar):
                await self.push(symbol, price, i + 1, at=start + k + 0.1 * (i + 1))

    async def stop(self):
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.pipeline.request_stop)
        else:
            self.pipeline.request_stop()
        return await self.ended()

    async def ended(self):
        try:
            return await asyncio.wait_for(self.task, 15)
        finally:
            await self.close_broker()

    async def close_broker(self) -> None:
        # the run does not stop its broker (see the report): log the client out, end its thread
        stop = getattr(self.pipeline.broker, "stop", None)
        if stop is not None:
            await stop()


def journal_trades(where: Path) -> list[dict[str, Any]]:
    with open_journal(where / "journal.db") as journal:
        return journal.trades()


def shape(trades: list[dict[str, Any]]) -> list[tuple[str, Decimal, Decimal, str]]:
    return [
        (t["direction"], Decimal(t["entry_price"]), Decimal(t["exit_price"]), t["exit_reason"])
        for t in trades
    ]  # fmt: skip


async def trade_the_script(where: Path, monkeypatch, broker: str):
    gateway = await start_gateway(where)
    try:
        run = Run(pipeline_for(gateway, where, monkeypatch, broker=broker), gateway)
        await run.connected()
        await run.play(SCRIPT)
        summary = await run.stop()
        return gateway, run, summary
    finally:
        await gateway.stop()


async def test_rithmic_feed_and_broker_trade_end_to_end_like_paper(tmp_path, monkeypatch):
    gateway, run, summary = await trade_the_script(tmp_path / "rithmic", monkeypatch, "rithmic")

    assert summary.exit == "stopped"
    assert summary.ticks == sum(map(len, SCRIPT))
    # the orders reached the gateway, one bracket per entry
    assert gateway.order_requests["RequestBracketOrder"] == run.submitted == 3
    # the fills came back with Rithmic's fill ids, into the journal
    live = journal_trades(tmp_path / "rithmic")
    assert shape(live) == EXPECTED
    with open_journal(tmp_path / "rithmic" / "journal.db") as journal:
        exec_ids = [r["exec_id"] for r in journal.rows("SELECT exec_id FROM fills ORDER BY id")]
    assert exec_ids == [f["fill_id"] for f in gateway.fills]
    assert len(exec_ids) == 6 and all(e.startswith("LF") for e in exec_ids)
    roles = ["entry", "target", "entry", "stop", "entry", "target"]
    assert [f["role"] for f in gateway.fills] == roles
    assert gateway.position("ESZ6") == 0 and gateway.working() == []
    assert all(Decimal(t["commissions"]) == Decimal("4.50") for t in live)

    # parity: the same pushes, the same config with the paper broker
    paper_gateway, paper_run, paper_summary = await trade_the_script(
        tmp_path / "paper", monkeypatch, "paper"
    )
    assert paper_summary.exit == "stopped"
    paper = journal_trades(tmp_path / "paper")
    assert shape(paper) == shape(live) == EXPECTED
    assert [t["net_pnl"] for t in paper] == [t["net_pnl"] for t in live]
    # a paper run on the rithmic feed never sends an order to the gateway
    assert paper_run.submitted == 3
    assert sum(paper_gateway.order_requests.values()) == 0 and paper_gateway.orders == {}


async def test_a_high_margin_day_at_rithmic_is_not_traded(tmp_path, monkeypatch):
    gateway = await start_gateway(
        tmp_path, front_months={("MES", "CME"): "MESZ6"}, margins={"MES": 1_650.0}
    )
    try:
        pipeline = pipeline_for(gateway, tmp_path, monkeypatch, symbol="MES", limit="1000")
        alerts: list[Any] = []
        pipeline.bus.subscribe(alerts.append, {EventKind.HIGH_MARGIN_DAY})
        run = Run(pipeline, gateway)
        await run.connected("MESZ6")
        # the broker logs in when the run starts (the wall clock's first second) and reads RMS
        await gateway.wait_for(lambda: pipeline.broker.day_margin("MES") is not None, 10)
        assert pipeline.broker.day_margin("MES") == Decimal("1650.0")
        await run.play([[6000.00, 6000.25], [6000.25]], symbol="MESZ6")  # a LONG signal
        summary = await run.ended()  # the run ends by itself
    finally:
        await gateway.stop()

    assert summary.exit.startswith("not_trading")
    assert "MES margin $1650.0 per contract > limit $1000" in summary.exit
    assert len(alerts) == 1
    assert (alerts[0].payload["margin"], alerts[0].payload["limit"]) == ("1650.0", "1000")
    assert gateway.order_requests["RequestBracketOrder"] == 0 and gateway.orders == {}
    assert gateway.order_requests["RequestProductRmsInfo"] >= 1


async def test_a_restart_with_a_position_open_at_rithmic_does_not_reopen_it(tmp_path, monkeypatch):
    gateway = await start_gateway(tmp_path)
    try:
        first = Run(pipeline_for(gateway, tmp_path, monkeypatch), gateway)
        await first.connected()
        await first.play([[6000.00, 6000.25], [6000.25, 6000.25]])  # LONG in at 6000.50
        assert gateway.position("ESZ6") == 1
        await first.stop()  # stopped with the position open at the gateway (stop and target)
        assert gateway.position("ESZ6") == 1 and len(gateway.working()) == 2
        orders_before = gateway.order_requests["RequestBracketOrder"]
        assert orders_before == 1

        # the kernel asks report() at start, synchronously: the first one waits for Rithmic's
        # listings, so the gateway (this test's loop) must not share the kernel's loop
        second = Run(pipeline_for(gateway, tmp_path, monkeypatch), gateway, threaded=True)
        await second.connected()
        assert second.pipeline.account_id == first.pipeline.account_id  # the journal's account
        assert second.pipeline.reconciliation == []  # broker.report() agrees with the journal
        assert [p.quantity for p in second.pipeline.session.positions.open_positions()] == [1]
        await asyncio.sleep(1.5)  # the wall clock runs: nothing is sent again
        assert gateway.order_requests["RequestBracketOrder"] == orders_before
        assert second.submitted == 0
        assert gateway.position("ESZ6") == 1 and len(gateway.working()) == 2
        await second.stop()
    finally:
        await gateway.stop()
