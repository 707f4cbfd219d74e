"""The live feed end to end: loopback gateway -> official databento.Live client -> tick batches."""

from __future__ import annotations

import asyncio

import numpy as np
import pluggy
import pytest
from dblive_support import API_KEY, collect, make_feed, ticks_of
from live_gateway import TRADE_DTYPE, LoopbackLiveGateway
from pydantic import ValidationError
from tradebot_plugins.feeds import databento_live
from tradebot_plugins.feeds.databento_live import DatabentoLiveFeed, DatabentoLiveSettings
from tradebot_plugins.feeds.dbn_ticks import records_to_ticks

from tradebot_core import PROJECT_NAME, hookspecs
from tradebot_core.types import TICK_DTYPE, FeedStatusKind, TickBatch


async def test_full_stream_equals_the_source_trades(trade_records, mbo_records):
    async with LoopbackLiveGateway(trade_records, API_KEY) as gateway:
        feed = make_feed(gateway, batch_max=100)
        batches, statuses, error = await collect(feed, len(trade_records))

    assert error is None
    ticks = ticks_of(batches)
    assert ticks.dtype == TICK_DTYPE
    np.testing.assert_array_equal(ticks, records_to_ticks(trade_records))
    # the same ticks as the recorded MBO file's own trade events, converted without the gateway
    np.testing.assert_array_equal(ticks, records_to_ticks(mbo_records))
    assert all(b.symbol == "ES" for b in batches)
    assert max(len(b) for b in batches) <= 100
    assert len(batches) >= len(trade_records) // 100
    assert [s.kind for s in statuses] == [FeedStatusKind.CONNECTED]
    sub = gateway.sessions[0].subscriptions[0]
    assert (sub["schema"], sub["stype_in"], sub["symbols"]) == ("trades", "continuous", "ES.c.0")
    assert "start" not in sub  # a first connection is live, not a replay


async def test_a_partial_batch_is_flushed_without_waiting_for_more_records(trade_records):
    # 37 records, then the gateway goes quiet (keeps the connection open): the batch must come
    # out on the batch_max_ms timer, since batch_max is never reached
    few = trade_records[:37]
    async with LoopbackLiveGateway(few, API_KEY) as gateway:
        feed = make_feed(gateway, batch_max=1_000, batch_max_ms=20)
        batches, _, error = await collect(feed, len(few), timeout=10)

    assert error is None
    np.testing.assert_array_equal(ticks_of(batches), records_to_ticks(few))
    assert all(len(b) < 1_000 for b in batches)


async def test_one_record_per_batch_at_batch_max_1(trade_records):
    few = trade_records[:25]
    async with LoopbackLiveGateway(few, API_KEY) as gateway:
        batches, _, error = await collect(make_feed(gateway, batch_max=1), len(few))
    assert error is None
    assert [len(b) for b in batches] == [1] * len(few)
    np.testing.assert_array_equal(ticks_of(batches), records_to_ticks(few))


async def test_stream_stops_cleanly_when_the_consumer_leaves(trade_records):
    async with LoopbackLiveGateway(trade_records, API_KEY) as gateway:
        feed = make_feed(gateway)
        _, _, error = await collect(feed, 150)
        assert error is None
        assert feed._live is None  # the client session was terminated
        # streaming again opens a new session (live from "now": the gateway has sent everything)
        stream = feed.stream()
        first = await asyncio.wait_for(anext(stream), 10)
        await stream.aclose()
    assert first.kind is FeedStatusKind.CONNECTED
    assert len(gateway.sessions) == 2
    assert "start" not in gateway.sessions[1].subscriptions[0]


async def test_registered_through_the_register_feeds_hook():
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(databento_live)
    registered: list[type] = []
    pm.hook.register_feeds(register=registered.append)
    assert registered == [DatabentoLiveFeed]
    assert DatabentoLiveFeed.name == "databento_live"


def test_settings_from_yaml_keys():
    settings = DatabentoLiveSettings.model_validate(
        {"schema": "trades", "symbols": "ESZ5, NQZ5", "stype_in": "raw_symbol", "api_key": "k" * 32}
    )
    assert settings.schema_ == "trades"
    assert settings.symbols == ("ESZ5", "NQZ5")
    assert "k" * 32 not in repr(settings)


@pytest.mark.parametrize(
    "bad",
    [
        {"schema": "ohlcv-1m"},
        {"batch_max": 0},
        {"batch_max_ms": 0},
        {"reconnect_initial_s": 5, "reconnect_max_s": 1},
        {"port": 70_000},
        {"symbol": "ES"},  # misspelt key
    ],
)
def test_settings_reject_bad_values(bad):
    with pytest.raises(ValidationError):
        DatabentoLiveSettings.model_validate(bad)


async def test_default_symbol_is_the_runs_front_month(trade_records):
    async with LoopbackLiveGateway(trade_records[:5], API_KEY) as gateway:
        feed = make_feed(gateway)
        _, _, error = await collect(feed, 5)
    assert error is None
    assert gateway.sessions[0].subscriptions[0]["symbols"] == "ES.c.0"


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    with pytest.raises(databento_live.DatabentoLiveError, match="DATABENTO_API_KEY"):
        make_feed(_idle_gateway(), api_key=None, port=13000)


def test_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("DATABENTO_API_KEY", API_KEY)
    feed = make_feed(_idle_gateway(), api_key=None, port=13000)
    assert feed.scrub(f"x{API_KEY}y") == "x<api key>y"


def _idle_gateway() -> LoopbackLiveGateway:
    return LoopbackLiveGateway(np.zeros(0, dtype=TRADE_DTYPE), API_KEY)


async def test_tickbatch_is_the_only_data_item(trade_records):
    async with LoopbackLiveGateway(trade_records[:50], API_KEY) as gateway:
        feed = make_feed(gateway)
        items = []

        async def run():
            stream = feed.stream()
            async for item in stream:
                items.append(item)
                if sum(len(i) for i in items if isinstance(i, TickBatch)) >= 50:
                    break
            await stream.aclose()

        await asyncio.wait_for(run(), 20)
    assert {type(i).__name__ for i in items} == {"TickBatch", "FeedStatus"}
