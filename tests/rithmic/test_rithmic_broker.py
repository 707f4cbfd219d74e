"""Orders through the loopback Rithmic gateway: first the real async-rithmic client against the
gateway's order desk, then the ``rithmic`` broker plugin (plugins/brokers/rithmic_broker.py)."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import numpy as np
import pytest
from async_rithmic import (
    OrderType,
    ReconnectionSettings,
    RetrySettings,
    RithmicClient,
    SysInfraType,
    TransactionType,
)
from rithmic.gateway import RithmicGateway
from tradebot_plugins.brokers.paper import PaperBroker, PaperSettings
from tradebot_plugins.brokers.rithmic_broker import RithmicBroker, RithmicBrokerSettings

from tradebot_core import (
    PRICE_SCALE,
    TICK_DTYPE,
    Direction,
    Fill,
    InstrumentRegistry,
    OrderIntent,
    OrderSide,
    OrderUpdate,
    PluginContext,
    Signal,
)

SYSTEM = "Rithmic Test"
ACCOUNT = "LOOP-0001"
ORDER_AND_PNL = [SysInfraType.ORDER_PLANT, SysInfraType.PNL_PLANT]


@pytest.fixture
async def gateway(tmp_path):
    gw = await RithmicGateway(heartbeat_interval=3.0).start(tmp_path)
    yield gw
    await gw.stop()


@pytest.fixture
async def client(gateway):
    made = RithmicClient(
        user="trader",
        password="secret",
        system_name=SYSTEM,
        app_name="tradebot",
        app_version="0.1.0",
        url=gateway.url,
        reconnection_settings=ReconnectionSettings(
            max_retries=20, backoff_type="constant", interval=0.05
        ),
        retry_settings=RetrySettings(max_retries=1, timeout=2.0),
    )
    made.ssl_context = gateway.client_ssl  # trust the gateway's throwaway CA (see README.md)
    yield made
    await made.disconnect()


class Recorder:
    """The client's order events, as they arrive."""

    def __init__(self, client: RithmicClient) -> None:
        self.rithmic: list = []
        self.exchange: list = []
        self.brackets: list = []
        client.on_rithmic_order_notification += self.rithmic.append
        client.on_exchange_order_notification += self.exchange.append
        client.on_bracket_update += self.brackets.append

    def fills(self) -> list:
        return [n for n in self.exchange if n.report_type == "fill"]


async def bracket(client, tag: str, side=TransactionType.BUY, qty=1, stop=8, target=12):
    return await client.submit_order(
        tag, "ESZ6", "CME", qty=qty, transaction_type=side, order_type=OrderType.MARKET,
        stop_ticks=stop, target_ticks=target, account_id=ACCOUNT,
    )  # fmt: skip


# -- the gateway's order desk, driven by the client ---------------------------------------------


async def test_bracket_accepted_filled_and_oco(gateway, client):
    seen = Recorder(client)
    await client.connect(plants=ORDER_AND_PNL)

    answer = await bracket(client, "R1-B1-entry")

    assert len(answer) == 1 and answer[0].basket_id and answer[0].user_tag == "R1-B1-entry"
    entry = answer[0].basket_id
    await gateway.wait_for(lambda: any(n.status == "open" for n in seen.rithmic))
    assert [n.status for n in seen.rithmic] == [
        "order received from client", "open pending", "open",
    ]  # fmt: skip
    # the entry fills at the next trade, one tick worse; stop and target 8 / 12 ticks away
    await gateway.push_trade("ESZ6", 6000.00, 3, "B")
    await gateway.wait_for(lambda: len(seen.brackets) == 1 and len(seen.fills()) == 1)
    fill = seen.fills()[0]
    assert (fill.basket_id, fill.fill_price, fill.fill_size) == (entry, 6000.25, 1)
    assert fill.fill_id and fill.user_tag == "R1-B1-entry"
    assert (seen.brackets[0].stop_ticks, seen.brackets[0].target_ticks) == (8, 12)
    children = {o.role: o for o in gateway.working()}
    assert children["stop"].trigger_price == 6000.25 - 2.0
    assert children["target"].price == 6000.25 + 3.0
    assert children["stop"].sibling == children["target"].basket_id
    # a trade at the target does not fill it (through), one beyond does, at the limit
    await gateway.push_trade("ESZ6", 6003.25, 1, "B")
    await asyncio.sleep(0.05)
    assert len(seen.fills()) == 1
    await gateway.push_trade("ESZ6", 6003.50, 1, "B")
    await gateway.wait_for(lambda: len(seen.fills()) == 2)
    target_fill = seen.fills()[1]
    assert target_fill.fill_price == 6003.25
    assert target_fill.original_basket_id == entry
    assert target_fill.fill_id != fill.fill_id
    # the stop is cancelled by the server (OCO)
    stop = children["stop"].basket_id
    await gateway.wait_for(
        lambda: any(n.basket_id == stop and n.report_type == "cancel" for n in seen.exchange)
    )
    assert gateway.working() == [] and gateway.position("ESZ6") == 0
    assert gateway.order_requests["RequestBracketOrder"] == 1


async def test_listings_rms_cancel_and_exit_position(gateway, client):
    seen = Recorder(client)
    await client.connect(plants=ORDER_AND_PNL)
    await bracket(client, "R1-B1-entry", side=TransactionType.SELL, qty=2)
    await gateway.push_trade("ESZ6", 6000.00, 3, "S")
    await gateway.wait_for(lambda: len(gateway.working()) == 2)
    pending = await bracket(client, "R1-B2-entry")  # no trade: stays working

    orders = await client.list_orders(account_id=ACCOUNT)
    assert sorted((o.user_tag, o.price_type) for o in orders) == [
        ("R1-B1-entry", 1), ("R1-B1-entry", 4), ("R1-B2-entry", 2),
    ]  # fmt: skip
    positions = await client.list_positions(account_id=ACCOUNT)
    assert [(p.symbol, p.net_quantity) for p in positions] == [("ESZ6", -2)]
    rms = await client.get_account_rms()
    assert rms[0].account_id == ACCOUNT and rms[0].max_order_quantity == 10
    products = {p.product_code: p.buy_margin_rate for p in await client.get_product_rms()}
    assert products["ES"] == 15_000.0 and products["MES"] == 1_500.0

    await client.cancel_order(basket_id=pending[0].basket_id, account_id=ACCOUNT)
    await gateway.wait_for(lambda: len(gateway.working()) == 2)
    await client.exit_position(symbol="ESZ6", exchange="CME", account_id=ACCOUNT)
    await gateway.wait_for(lambda: [o.role for o in gateway.working()] == ["exit"])
    await gateway.push_trade("ESZ6", 5999.00, 1, "B")
    await gateway.wait_for(lambda: gateway.position("ESZ6") == 0)
    assert gateway.fills[-1]["price"] == 5999.25  # a buy, one tick worse
    assert await client.list_orders(account_id=ACCOUNT) == []
    positions = await client.list_positions(account_id=ACCOUNT)
    assert [p.net_quantity for p in positions] == [0]
    assert gateway.order_requests["RequestCancelOrder"] == 1
    assert gateway.order_requests["RequestExitPosition"] == 1
    assert gateway.order_requests["RequestBracketOrder"] == 2
    assert any(n.report_type == "cancel" for n in seen.exchange)


async def test_partial_fills_reject_and_stop(gateway, client):
    seen = Recorder(client)
    await client.connect(plants=ORDER_AND_PNL)
    gateway.reject_next("insufficient margin")
    await bracket(client, "R1-B1-entry")
    await gateway.wait_for(lambda: any(n.report_type == "reject" for n in seen.exchange))
    reject = next(n for n in seen.exchange if n.report_type == "reject")
    assert reject.text == "insufficient margin" and reject.user_tag == "R1-B1-entry"

    gateway.partial_fills(1)
    await bracket(client, "R1-B2-entry", qty=3)
    await gateway.push_trade("ESZ6", 6000.00, 1, "S")
    await gateway.push_trade("ESZ6", 6000.50, 2, "B")
    await gateway.wait_for(lambda: len(seen.fills()) == 2)
    assert [(f.fill_size, f.fill_price, f.total_unfilled_size) for f in seen.fills()] == [
        (1, 6000.25, 2), (2, 6000.75, 0),
    ]  # fmt: skip
    stop = next(o for o in gateway.working() if o.role == "stop")
    assert (stop.quantity, stop.trigger_price) == (3, 5998.25)
    await gateway.push_trade("ESZ6", 5998.25, 1, "S")  # at the stop: it fills, one tick worse
    await gateway.wait_for(lambda: len(seen.fills()) == 3)
    assert (seen.fills()[2].fill_price, seen.fills()[2].fill_size) == (5998.0, 3)
    assert gateway.working() == []


async def test_forced_logout_reconnects(gateway, client, caplog):
    connected: list[str] = []
    client.on_connected += connected.append
    await client.connect(plants=ORDER_AND_PNL)
    with caplog.at_level(logging.WARNING, logger="rithmic"):
        assert await gateway.forced_logout("order") == 1
        await gateway.wait_for(lambda: connected.count("order") == 2, timeout=10)
    assert any("ForcedLogout" in r.getMessage() for r in caplog.records)


# -- the rithmic broker plugin against the gateway ----------------------------------------------


def intent(direction=Direction.LONG, quantity=1, stop=8, target=12) -> OrderIntent:
    signal = Signal(
        pattern="p", direction=direction, price=Decimal("6000"), bar_ts_ns=0, strength=1,
        reason="test",
    )  # fmt: skip
    return OrderIntent(
        symbol="ES", direction=direction, quantity=quantity, stop_ticks=stop,
        target_ticks=target, signal=signal,
    )  # fmt: skip


class Reports:
    def __init__(self, broker: RithmicBroker) -> None:
        self.fills: list[Fill] = []
        self.updates: list[OrderUpdate] = []
        broker.on_fill = self.fills.append
        broker.on_order_update = self.updates.append

    def status(self, order_id: str) -> list[str]:
        return [u.status for u in self.updates if u.order_id == order_id]


@pytest.fixture
async def brokers(gateway, tmp_path):
    made: list[RithmicBroker] = []

    def make(**overrides) -> tuple[RithmicBroker, Reports]:
        settings = RithmicBrokerSettings(
            **{
                "user": "trader",
                "password": "secret",
                "system_name": SYSTEM,
                "gateway": gateway.url,
                "account_id": ACCOUNT,
                "ca_file": tmp_path / "loopback-rithmic-ca.pem",  # written by the gateway
                "reconnect_interval_s": 0.05,
                "reconnect_backoff": "constant",
                "request_timeout_s": 2.0,
            }
            | overrides
        )
        context = PluginContext(
            symbol="ES", instruments=InstrumentRegistry(), timeframe_s=60, data_dir=tmp_path
        )
        broker = RithmicBroker(settings, context)
        made.append(broker)
        return broker, Reports(broker)

    yield make
    for broker in made:
        await broker.stop()


def px(price: str) -> int:
    return int(Decimal(price) * PRICE_SCALE)


async def test_broker_bracket_entry_then_target(gateway, brokers):
    broker, seen = brokers()
    broker.submit_bracket(intent(), "R1-B1", 0)
    await gateway.wait_for(lambda: seen.status("R1-B1-entry") == ["accepted"])
    assert seen.updates[0].venue_order_id == gateway.working()[0].basket_id

    await gateway.push_trade("ESZ6", 6000.00, 2, "S")
    await gateway.wait_for(lambda: len(seen.fills) == 1)
    entry = seen.fills[0]
    assert (entry.order_id, entry.role, entry.side, entry.price) == (
        "R1-B1-entry", "entry", OrderSide.BUY, px("6000.25"),
    )  # fmt: skip
    assert entry.exec_id == gateway.fills[0]["fill_id"] and entry.symbol == "ES"
    await gateway.wait_for(lambda: broker.report()["working"] == ["R1-B1-stop", "R1-B1-target"])
    assert broker.report()["positions"] == {"ES": 1}

    await gateway.push_trade("ESZ6", 6003.50, 1, "B")
    await gateway.wait_for(lambda: len(seen.fills) == 2)
    target = seen.fills[1]
    assert (target.order_id, target.role, target.side, target.price) == (
        "R1-B1-target", "target", OrderSide.SELL, px("6003.25"),
    )  # fmt: skip
    assert target.exec_id == gateway.fills[1]["fill_id"] != entry.exec_id
    # the stop was cancelled at Rithmic (OCO); the kernel's books cancel it on the target fill
    stop = next(o for o in gateway.orders.values() if o.role == "stop")
    assert stop.completion_reason == "Cancel"
    await gateway.wait_for(lambda: broker.report() == {"positions": {}, "working": []})
    assert seen.status("R1-B1-stop") == []
    assert gateway.order_requests["RequestBracketOrder"] == 1


async def test_broker_partial_fill_and_duplicate_notification(gateway, brokers):
    broker, seen = brokers()
    gateway.partial_fills(1)
    gateway.duplicate_fills = True  # every fill notification arrives twice
    broker.submit_bracket(intent(Direction.SHORT, quantity=2), "R1-B1", 0)
    await gateway.wait_for(lambda: seen.status("R1-B1-entry") == ["accepted"])
    await gateway.push_trade("ESZ6", 6000.00, 1, "B")
    await gateway.push_trade("ESZ6", 6000.50, 1, "B")
    await gateway.wait_for(lambda: broker.duplicate_fills == 2 and len(seen.fills) == 2)
    assert [(f.quantity, f.price, f.role) for f in seen.fills] == [
        (1, px("5999.75"), "entry"), (1, px("6000.25"), "entry"),
    ]  # fmt: skip
    assert len({f.exec_id for f in seen.fills}) == 2
    assert [n for n in gateway.notifications if n[2] == "fill"] == [
        (352, gateway.working()[0].parent, "fill")
    ] * 4
    assert broker.report()["positions"] == {"ES": -2}


async def test_broker_rejects(gateway, brokers):
    broker, seen = brokers()
    gateway.reject_next("insufficient margin")
    broker.submit_bracket(intent(), "R1-B1", 0)
    await gateway.wait_for(lambda: "rejected" in seen.status("R1-B1-entry"))
    rejected = seen.updates[-1]
    assert "insufficient margin" in rejected.reason
    gateway.reject_next("max order quantity exceeded", at="request")
    broker.submit_bracket(intent(), "R1-B2", 0)
    await gateway.wait_for(lambda: seen.status("R1-B2-entry") == ["rejected"])
    assert "max order quantity exceeded" in seen.updates[-1].reason
    assert broker.report() == {"positions": {}, "working": []}
    assert gateway.order_requests["RequestBracketOrder"] == 2


async def test_broker_unknown_account_rejects_clearly(gateway, brokers, caplog):
    broker, seen = brokers(account_id="LOOP-9999")
    with caplog.at_level(logging.ERROR):
        assert await asyncio.to_thread(broker.report) == {"positions": {}, "working": []}
    assert any("LOOP-9999" in r.getMessage() for r in caplog.records)
    broker.submit_bracket(intent(), "R1-B1", 0)
    await gateway.wait_for(lambda: seen.status("R1-B1-entry") == ["rejected"])
    assert "account 'LOOP-9999' is not this user's" in seen.updates[0].reason
    assert gateway.order_requests["RequestBracketOrder"] == 0


async def test_broker_flatten_confirmed_flat(gateway, brokers):
    broker, seen = brokers()
    broker.submit_bracket(intent(quantity=2), "R1-B1", 0)
    await gateway.wait_for(lambda: seen.status("R1-B1-entry") == ["accepted"])
    await gateway.push_trade("ESZ6", 6000.00, 2, "S")
    await gateway.wait_for(lambda: broker.report()["positions"] == {"ES": 2})

    broker.flatten("ES", "R1-F1", OrderSide.SELL, 2, "end of day", 0)
    await gateway.wait_for(lambda: [o.role for o in gateway.working()] == ["exit"])
    await gateway.push_trade("ESZ6", 6001.00, 1, "B")
    await gateway.wait_for(lambda: len(seen.fills) == 2)
    exit_fill = seen.fills[1]
    assert (exit_fill.order_id, exit_fill.bracket_id, exit_fill.role) == (
        "R1-F1", "R1-F1", "flatten",
    )  # fmt: skip
    assert (exit_fill.side, exit_fill.quantity, exit_fill.price) == (
        OrderSide.SELL, 2, px("6000.75"),
    )  # fmt: skip
    await gateway.wait_for(lambda: broker.flat_confirmed == ["R1-F1"])  # by the listing
    assert broker.report() == {"positions": {}, "working": []}
    assert gateway.order_requests["RequestExitPosition"] == 1
    assert gateway.order_requests["RequestPnLPositionSnapshot"] >= 2
    assert seen.status("R1-B1-stop") == [] and seen.status("R1-B1-target") == []


async def test_broker_cancel_entry(gateway, brokers):
    broker, seen = brokers()
    broker.submit_bracket(intent(), "R1-B1", 0)
    await gateway.wait_for(lambda: seen.status("R1-B1-entry") == ["accepted"])
    broker.cancel("R1-B1-entry", "signal expired")
    await gateway.wait_for(lambda: seen.status("R1-B1-entry") == ["accepted", "cancelled"])
    assert seen.updates[-1].reason == "signal expired"
    assert gateway.working() == [] and broker.report()["working"] == []


async def test_broker_report_after_restart(gateway, brokers):
    first, seen = brokers()
    first.submit_bracket(intent(Direction.SHORT), "R1-B1", 0)
    await gateway.wait_for(lambda: seen.status("R1-B1-entry") == ["accepted"])
    await gateway.push_trade("ESZ6", 6000.00, 1, "B")
    await gateway.wait_for(lambda: len(gateway.working()) == 2)
    await first.stop()

    second, seen2 = brokers()  # a new process: nothing but Rithmic's listings
    report = await asyncio.to_thread(second.report)
    assert report == {"positions": {"ES": -1}, "working": ["R1-B1-stop", "R1-B1-target"]}
    # the stop it adopted from the listing is reported as ours when it fills
    await gateway.push_trade("ESZ6", 6002.00, 1, "B")
    await gateway.wait_for(lambda: len(seen2.fills) == 1)
    assert (seen2.fills[0].order_id, seen2.fills[0].role) == ("R1-B1-stop", "stop")
    assert seen2.fills[0].price == px("6002.25")
    await gateway.wait_for(lambda: second.report() == {"positions": {}, "working": []})


async def test_broker_connection_dropped_mid_order(gateway, brokers, caplog):
    broker, seen = brokers()
    assert (await asyncio.to_thread(broker.report))["positions"] == {}  # connected
    gateway.drop_next_order()
    with caplog.at_level(logging.WARNING):
        broker.submit_bracket(intent(), "R1-B1", 0)
        # no answer: the reconnect's listing finds the order by our id; it is never sent twice
        await gateway.wait_for(lambda: seen.status("R1-B1-entry") == ["accepted"], timeout=10)
    assert broker.reconnects == 1
    await gateway.push_trade("ESZ6", 6000.00, 1, "S")
    await gateway.wait_for(lambda: len(seen.fills) == 1)
    assert seen.fills[0].order_id == "R1-B1-entry"
    assert gateway.order_requests["RequestBracketOrder"] == 1
    assert any("reconnected" in r.getMessage() for r in caplog.records)


async def test_broker_forced_logout_is_logged_and_resynced(gateway, brokers, caplog):
    broker, _ = brokers()
    await asyncio.to_thread(broker.report)
    with caplog.at_level(logging.ERROR, logger="tradebot_plugins"):
        await gateway.forced_logout("order")
        await gateway.wait_for(lambda: broker.reconnects == 1, timeout=10)
    assert broker.forced_logouts == 1
    assert any("forced a logout" in r.getMessage() for r in caplog.records)
    await gateway.wait_for(lambda: gateway.order_requests["RequestShowOrders"] == 2)


async def test_parity_with_the_paper_broker(gateway, brokers):
    """The same trades through the paper broker and through rithmic + gateway: same fills."""
    trades = [
        ("6000.00", "S"), ("6001.00", "B"), ("6003.00", "B"), ("6003.25", "B"),  # long: target
        ("6002.00", "S"), ("6001.00", "S"), ("6004.00", "B"),  # short: stopped out
    ]  # fmt: skip
    plan = {0: ("R1-B1", Direction.LONG), 4: ("R1-B2", Direction.SHORT)}  # before trade i
    context = PluginContext(
        symbol="ES", instruments=InstrumentRegistry(), timeframe_s=60, data_dir=None
    )
    paper = PaperBroker(PaperSettings(), context)
    paper_fills: list[Fill] = []
    paper.on_fill = paper_fills.append
    broker, seen = brokers()
    for i, (price, side) in enumerate(trades):
        if i in plan:
            bracket_id, direction = plan[i]
            paper.submit_bracket(intent(direction, stop=4, target=8), bracket_id, 0)
            broker.submit_bracket(intent(direction, stop=4, target=8), bracket_id, 0)
            await gateway.wait_for(lambda b=bracket_id: seen.status(f"{b}-entry") == ["accepted"])
        tick = np.zeros(1, dtype=TICK_DTYPE)
        tick["ts_event"], tick["price"], tick["size"] = i + 1, px(price), 1
        tick["side"] = 1 if side == "B" else -1
        paper.on_ticks("ES", tick)
        count = len(gateway.fills)
        await gateway.push_trade("ESZ6", float(price), 1, side)
        await gateway.wait_for(lambda c=count: len(seen.fills) == len(gateway.fills) >= c)

    def key(fills: list[Fill]) -> list[tuple]:
        return [(f.order_id, f.role, f.side, f.quantity, f.price) for f in fills]

    assert len(paper_fills) == 4
    assert key(seen.fills) == key(paper_fills)
    assert [f.commission for f in seen.fills] == [f.commission for f in paper_fills]
