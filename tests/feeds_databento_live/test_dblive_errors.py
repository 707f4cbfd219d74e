"""Refused keys, garbage on the wire and gateway errors: clear errors, no key, nothing lost."""

from __future__ import annotations

import asyncio
import logging

import databento_dbn
import numpy as np
import pytest
from dblive_support import API_KEY, collect, make_feed, ticks_of
from live_gateway import ConnectionPlan, LoopbackLiveGateway
from tradebot_plugins.feeds.databento_live import DatabentoLiveError
from tradebot_plugins.feeds.dbn_ticks import records_to_ticks

from tradebot_core.types import FeedStatusKind, TickBatch

WRONG_KEY = "db-Wr0ngK3yWr0ngK3yWr0ngK3yXyZ9"


async def test_wrong_key_is_a_clear_error_without_the_key(trade_records, caplog):
    caplog.set_level(logging.DEBUG)
    async with LoopbackLiveGateway(trade_records, API_KEY) as gateway:
        feed = make_feed(gateway, api_key=WRONG_KEY)
        batches, statuses, error = await collect(feed, None)

    assert batches == [] and statuses == []
    assert isinstance(error, DatabentoLiveError)
    message = str(error)
    assert "Authentication failed" in message  # the gateway's own words are kept
    assert "api_key" in message or "DATABENTO_API_KEY" in message  # and what to do
    assert WRONG_KEY not in message and WRONG_KEY not in repr(error)
    assert error.__cause__ is None and error.__suppress_context__
    assert WRONG_KEY not in caplog.text
    assert not gateway.sessions  # it was refused, and not retried as if the network failed


async def test_the_key_never_reaches_the_logs_of_a_normal_session(trade_records, caplog):
    caplog.set_level(logging.DEBUG)
    async with LoopbackLiveGateway(
        trade_records[:300], API_KEY, plans=[ConnectionPlan(drop_after=100)]
    ) as gw:
        _, statuses, error = await collect(make_feed(gw), 300)
    assert error is None
    assert any(s.kind is FeedStatusKind.GAP for s in statuses)
    assert API_KEY not in caplog.text
    assert all(API_KEY not in s.detail for s in statuses)


async def test_malformed_record_is_logged_and_earlier_batches_survive(trade_records, caplog):
    # no reconnects allowed: the feed must stop with a clear error, after yielding every trade
    # sent before the garbage (the gateway holds the garbage back until they were yielded)
    cut = 500
    garbage_gate = asyncio.Event()
    plans = [ConnectionPlan(malformed_after=cut, malformed_gate=garbage_gate)]
    batches, statuses = [], []
    async with LoopbackLiveGateway(trade_records, API_KEY, plans=plans) as gateway:
        feed = make_feed(gateway, reconnect_max_attempts=0, batch_max=64)

        async def run() -> None:
            stream = feed.stream()
            try:
                async for item in stream:
                    if isinstance(item, TickBatch):
                        batches.append(item)
                        if sum(map(len, batches)) >= cut:
                            garbage_gate.set()
                    else:
                        statuses.append(item)
            finally:
                await stream.aclose()

        with pytest.raises(DatabentoLiveError) as caught:
            await asyncio.wait_for(run(), 20)

    message = str(caught.value)
    assert "RType" in message and "decoding" in message  # the decoder's own words
    np.testing.assert_array_equal(ticks_of(batches), records_to_ticks(trade_records[:cut]))
    assert [s.kind for s in statuses] == [FeedStatusKind.CONNECTED, FeedStatusKind.DISCONNECTED]
    assert "RType" in statuses[-1].detail
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("RType" in m for m in logged if "databento live" in m)


async def test_malformed_record_then_reconnect_recovers_everything(trade_records):
    garbage_gate = asyncio.Event()
    plans = [ConnectionPlan(malformed_after=500, malformed_gate=garbage_gate)]
    async with LoopbackLiveGateway(trade_records, API_KEY, plans=plans) as gateway:
        feed = make_feed(gateway, batch_max=50)
        # let the garbage go once the first trades are out (else the client may get both in one
        # read and decode neither: that case is the replay from the session start, tested below)
        batches, statuses, error = await collect(
            feed, len(trade_records), on_batch=lambda _: garbage_gate.set()
        )
    assert error is None
    np.testing.assert_array_equal(ticks_of(batches), records_to_ticks(trade_records))
    assert FeedStatusKind.GAP in [s.kind for s in statuses]


async def test_gateway_error_message_is_logged_and_the_feed_carries_on(trade_records, caplog):
    plans = [ConnectionPlan(error_after=800, error_message="gateway restarting for maintenance")]
    async with LoopbackLiveGateway(trade_records, API_KEY, plans=plans) as gateway:
        feed = make_feed(gateway)
        batches, statuses, error = await collect(feed, len(trade_records))

    assert error is None
    np.testing.assert_array_equal(ticks_of(batches), records_to_ticks(trade_records))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("gateway restarting for maintenance" in m for m in errors)
    assert FeedStatusKind.RECONNECTED in [s.kind for s in statuses]


async def test_fatal_gateway_error_stops_the_feed_after_what_came_before(trade_records):
    plans = [
        ConnectionPlan(
            error_after=300,
            error_message="subscription rejected: license does not cover GLBX.MDP3",
            error_code=databento_dbn.ErrorCode.INVALID_SUBSCRIPTION,
        )
    ]
    async with LoopbackLiveGateway(trade_records, API_KEY, plans=plans) as gateway:
        feed = make_feed(gateway, batch_max=1_000)
        batches, _, error = await collect(feed, None)

    assert isinstance(error, DatabentoLiveError)
    assert "license does not cover" in str(error)
    np.testing.assert_array_equal(ticks_of(batches), records_to_ticks(trade_records[:300]))
    assert len(gateway.sessions) == 1  # not retried
