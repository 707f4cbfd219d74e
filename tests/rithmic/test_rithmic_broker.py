"""Orders through the loopback Rithmic gateway: first the real async-rithmic client against the
gateway's order desk, then the ``rithmic`` broker plugin (plugins/brokers/rithmic_broker.py)."""

from __future__ import annotations

import asyncio
import logging

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
