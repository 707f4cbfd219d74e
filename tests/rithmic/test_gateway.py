"""The official async-rithmic client against the loopback Rithmic gateway (gateway.py)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from async_rithmic import (
    DataType,
    OrderType,
    ReconnectionSettings,
    RetrySettings,
    RithmicClient,
    RithmicErrorResponse,
    SysInfraType,
    TransactionType,
)
from rithmic.gateway import RithmicGateway, trades_at

SYSTEM = "Rithmic Test"
ALL_PLANTS = ["ticker", "order", "pnl", "history"]
BUY, SELL = 1, 2  # LastTrade.TransactionType, as the client's tick dicts carry it


@pytest.fixture
async def gateway(tmp_path):
    gw = await RithmicGateway(heartbeat_interval=3.0).start(tmp_path)
    yield gw
    await gw.stop()


@pytest.fixture
async def clients(gateway):
    made: list[RithmicClient] = []

    def make(password: str = "secret", system_name: str = SYSTEM) -> RithmicClient:
        client = RithmicClient(
            user="trader",
            password=password,
            system_name=system_name,
            app_name="tradebot",
            app_version="0.1.0",
            url=gateway.url,
            reconnection_settings=ReconnectionSettings(
                max_retries=20, backoff_type="constant", interval=0.05
            ),
            retry_settings=RetrySettings(max_retries=1, timeout=5.0),
        )
        # async-rithmic has no parameter for the CA: RithmicClient.__init__ loads the Rithmic CA
        # it bundles into the public attribute `ssl_context`, which every plant reads when it
        # opens its socket. Replacing that attribute (nothing is patched) makes the client trust
        # the gateway's throwaway trustme CA, and only that CA.
        client.ssl_context = gateway.client_ssl
        made.append(client)
        return client

    yield make
    for client in made:
        await client.disconnect()


async def test_login_on_every_plant_heartbeats_and_logout(gateway, clients):
    client = clients()
    connected: list[str] = []
    client.on_connected += connected.append

    await client.connect()

    assert connected == ["ticker", "order", "pnl", "history"]
    assert [(login.plant, login.accepted) for login in gateway.logins] == [
        (plant, True) for plant in ALL_PLANTS
    ]
    login = gateway.logins[0]
    assert (login.user, login.system_name, login.app_name) == ("trader", SYSTEM, "tradebot")
    assert login.template_version == "3.9"
    # the ticker socket asked for the systems first, before logging in on a new socket
    assert gateway.received[0] == (None, 16)
    # the order plant's own login sequence: login info, accounts, trade routes, update streams
    order = [tid for plant, tid in gateway.received if plant == "order"]
    assert {300, 302, 310, 308, 336} <= set(order)
    assert [a.account_id for a in client.accounts] == ["LOOP-0001"]
    assert (client.fcm_id, client.ib_id) == ("LoopFCM", "LoopIB")
    # a heartbeat right after each login; the interval the gateway gave is the client's
    assert all(gateway.heartbeats[plant] >= 1 for plant in ALL_PLANTS)
    assert client.plants["ticker"].heartbeat_interval == 3.0

    await client.disconnect()
    assert sorted(gateway.logouts) == sorted(ALL_PLANTS)
    await gateway.wait_for(lambda: not gateway.sessions)


async def test_wrong_password_is_refused(gateway, clients, caplog):
    client = clients(password="wrong")
    # async-rithmic 1.6.6 raises the Rithmic error inside its reader task, which logs it, and
    # connect() then fails reading the login response it never collected: the clear message is
    # in the log, connect() raises an AttributeError ('NoneType' ... 'heartbeat_interval').
    refused = (AttributeError, RithmicErrorResponse)
    with caplog.at_level(logging.ERROR, logger="rithmic"), pytest.raises(refused):
        await client.connect()
    errors = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RithmicErrorResponse]
    assert errors, "the client logs the RithmicErrorResponse of the refused login"
    assert "permission denied" in str(errors[0].exc_info[1])
    assert [(login.plant, login.accepted) for login in gateway.logins] == [("ticker", False)]


async def test_unknown_system_name_gives_the_list(gateway, clients):
    client = clients(system_name="Rithmic 01")
    with pytest.raises(Exception, match="valid SYSTEM_NAME") as raised:
        await client.connect()
    assert "Rithmic Paper Trading" in str(raised.value)
    assert gateway.logins == []


async def test_refused_login_of_one_plant(gateway, clients):
    gateway.refuse_login("history")
    client = clients()
    with pytest.raises((AttributeError, RithmicErrorResponse)):  # see the test above
        await client.connect()
    assert [(login.plant, login.accepted) for login in gateway.logins] == [
        ("ticker", True),
        ("order", True),
        ("pnl", True),
        ("history", False),
    ]


async def test_front_month(gateway, clients):
    client = clients()
    await client.connect(plants=[SysInfraType.TICKER_PLANT])
    assert await client.get_front_month_contract("ES", "CME") == "ESZ6"
    assert await client.get_front_month_contract("NQ", "CME") == "NQZ6"
    with pytest.raises(RithmicErrorResponse, match="no front-month contract"):
        await client.get_front_month_contract("ZZ", "CME")


async def test_last_trades_with_aggressor(gateway, clients):
    client = clients()
    ticks: list[dict] = []
    client.on_tick += ticks.append
    await client.connect(plants=[SysInfraType.TICKER_PLANT])

    await client.subscribe_to_market_data("ESZ6", "CME", DataType.LAST_TRADE)
    await gateway.wait_for(lambda: ("ESZ6", "CME", 1) in gateway.subscriptions)
    assert gateway.subscription_log == [("subscribe", "ESZ6", "CME", 1)]

    at = 1_790_000_000.25
    assert await gateway.push_trade("ESZ6", 6001.25, 3, "B", at=at) == 1
    assert await gateway.push_trade("ESZ6", 6001.00, 5, "S", at=at + 1) == 1
    assert await gateway.push_trade("NQZ6", 21000.0, 1, "B") == 0  # not subscribed
    await gateway.wait_for(lambda: len(ticks) == 2)
    await asyncio.sleep(0.05)
    assert len(ticks) == 2

    first, second = ticks
    assert (first["symbol"], first["exchange"]) == ("ESZ6", "CME")
    assert (first["trade_price"], first["trade_size"], first["aggressor"]) == (6001.25, 3, BUY)
    assert (second["trade_price"], second["trade_size"], second["aggressor"]) == (6001.0, 5, SELL)
    assert first["data_type"] == DataType.LAST_TRADE
    assert first["datetime"] == datetime.fromtimestamp(at, tz=UTC)
    assert second["volume"] == "8"  # uint64 fields are strings in protobuf's JSON mapping

    await client.unsubscribe_from_market_data("ESZ6", "CME", DataType.LAST_TRADE)
    await gateway.wait_for(lambda: not gateway.subscriptions)
    assert gateway.subscription_log[-1] == ("unsubscribe", "ESZ6", "CME", 1)
    assert await gateway.push_trade("ESZ6", 6001.5, 1, "B") == 0


@pytest.mark.parametrize("clean", [False, True], ids=["aborted", "closed"])
async def test_dropped_connection_reconnects_and_resubscribes(gateway, clients, clean):
    client = clients()
    connected: list[str] = []
    client.on_connected += connected.append
    ticks: list[dict] = []
    client.on_tick += ticks.append
    await client.connect(plants=[SysInfraType.TICKER_PLANT])
    await client.subscribe_to_market_data("ESZ6", "CME", DataType.LAST_TRADE)
    await gateway.wait_for(lambda: gateway.subscriptions)

    assert await gateway.drop("ticker", clean=clean) == 1
    ticker = client.plants["ticker"]
    # the client sees the loss: its reader ends and it reconnects by itself (system info on a
    # first socket, then a login on a second one) and subscribes again
    await gateway.wait_for(lambda: len(gateway.logins) == 2, timeout=10)
    await gateway.wait_for(lambda: ("ESZ6", "CME", 1) in gateway.subscriptions, timeout=10)
    assert connected == ["ticker", "ticker"]
    assert ticker.is_connected
    assert [s[0] for s in gateway.subscription_log] == ["subscribe", "subscribe"]
    assert [tid for _, tid in gateway.received].count(16) == 2

    assert await gateway.push_trade("ESZ6", 6002.0, 2, "S") == 1
    await gateway.wait_for(lambda: ticks)
    assert (ticks[0]["trade_price"], ticks[0]["aggressor"]) == (6002.0, SELL)


async def test_tick_replay_returns_history(gateway, clients):
    start = datetime(2026, 11, 27, 14, 30, tzinfo=UTC).timestamp()
    gateway.history = trades_at(
        "ESZ6",
        start,
        [(6000.0, 1, "B"), (6000.25, 2, "B"), (6000.0, 4, "S"), (5999.75, 1, "S")],
    )
    gateway.replay_page = 3  # the client asks for the next page itself
    client = clients()
    await client.connect(plants=[SysInfraType.TICKER_PLANT, SysInfraType.HISTORY_PLANT])
    await client.subscribe_to_market_data("ESZ6", "CME", DataType.LAST_TRADE)
    await gateway.wait_for(lambda: gateway.subscriptions)
    await gateway.push_trade("ESZ6", 5999.5, 7, "S", at=start + 10)
    await gateway.push_trade("ESZ6", 6003.0, 9, "B", at=start + 3600)  # after the range

    ticks = await client.get_historical_tick_data(
        "ESZ6",
        "CME",
        datetime.fromtimestamp(start, tz=UTC),
        datetime.fromtimestamp(start + 60, tz=UTC),
    )

    assert [(t["close_price"], int(t["volume"])) for t in ticks] == [
        (6000.0, 1),
        (6000.25, 2),
        (6000.0, 4),
        (5999.75, 1),
        (5999.5, 7),
    ]
    # the aggressor is in the bid/ask volume of each one-trade tick bar
    assert [("B" if int(t.get("ask_volume", 0)) else "S") for t in ticks] == list("BBSSS")
    assert ticks[0]["datetime"] == datetime.fromtimestamp(start, tz=UTC)
    pages = gateway.replay_requests
    assert [p["start_index"] for p in pages] == [int(start), int(start) + 3, int(start) + 11]
    assert all(p["finish_index"] == int(start) + 60 for p in pages)
    assert all(p["symbol"] == "ESZ6" and p["bar_type"] == 1 for p in pages)


async def test_order_requests_are_counted_and_refused(gateway, clients, caplog):
    client = clients()
    await client.connect(plants=[SysInfraType.ORDER_PLANT])
    with caplog.at_level(logging.ERROR, logger="rithmic"):
        # the refusal is logged by the client's reader task; submit_order returns no response
        answer = await client.submit_order(
            "tb-1", "ESZ6", "CME", qty=1, transaction_type=TransactionType.BUY,
            order_type=OrderType.MARKET,
        )  # fmt: skip
    assert answer == []
    assert gateway.order_requests == {"RequestNewOrder": 1}
    assert any(
        "not implemented by the loopback gateway" in r.getMessage()
        or (r.exc_info and "not implemented" in str(r.exc_info[1]))
        for r in caplog.records
    )
