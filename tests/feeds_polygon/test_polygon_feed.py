"""The Polygon feed, through the official client, against a loopback Polygon API."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import numpy as np
import pytest
from feeds_polygon.polygon_server import KEY, FakePolygon

from plugins.feeds.polygon_feed import PolygonError, PolygonFeed, PolygonSettings
from tradebot_core.components import PluginContext
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import TickBatch

DAY = date(2024, 11, 13)
OPEN_NS = int(datetime(2024, 11, 13, 14, 30, tzinfo=UTC).timestamp()) * 10**9


def trade(i: int, price: float | None, size: float | None = 100) -> dict:
    record = {
        "conditions": [12],
        "exchange": 11,
        "id": str(i),
        "tape": 1,
        "participant_timestamp": OPEN_NS + i * 10**9 - 500,
        "sequence_number": i,
        "sip_timestamp": OPEN_NS + i * 10**9,
        "size": size,
    }
    if price is not None:
        record["price"] = price
    return record


PRICES = [598.31, 598.32, 598.32, 598.30, 598.305, 598.35, 598.35, 598.34, 598.34, 598.40, 598.41]


@pytest.fixture
async def polygon(aiohttp_server):
    fake = FakePolygon(trades=[trade(i, p) for i, p in enumerate(PRICES)])
    server = await aiohttp_server(fake.app())
    fake.base = f"http://127.0.0.1:{server.port}"
    return fake


def feed(fake, **settings):
    values = {"api_key": KEY, "start": DAY, "base_url": fake.base, **settings}
    return PolygonFeed(
        PolygonSettings.model_validate(values), PluginContext("SPY", InstrumentRegistry(), 60, None)
    )


async def play(source):
    items = [item async for item in source.stream()]
    batches = [i.ticks for i in items if isinstance(i, TickBatch)]
    return items, np.concatenate(batches) if batches else np.empty(0)


def independent_tick_rule(prices):
    sides, last = [], 0
    for i, p in enumerate(prices):
        if i and p > prices[i - 1]:
            last = 1
        elif i and p < prices[i - 1]:
            last = -1
        sides.append(last)
    return sides


async def test_every_page_every_trade_exact_prices_and_tick_rule_sides(polygon):
    _, ticks = await play(feed(polygon))
    cents = [round(p * 100) for p in PRICES]  # 598.305 -> the nearest cent
    assert len(ticks) == len(PRICES)
    assert list(ticks["price"]) == [c * 10_000_000 for c in cents]
    assert list(ticks["side"]) == independent_tick_rule(cents)
    assert list(ticks["ts_event"]) == [OPEN_NS + i * 10**9 for i in range(len(PRICES))]
    pages = [r for r in polygon.requests if r.startswith("/v3/trades/SPY")]
    assert len(pages) == 3 and "cursor=4" in pages[1] and "cursor=8" in pages[2]


async def test_a_429_and_a_500_are_retried_by_the_client(polygon):
    polygon.script = [429, 500]
    _, ticks = await play(feed(polygon))
    assert len(ticks) == len(PRICES)
    assert len(polygon.requests) == 5  # 2 refused + 3 pages


async def test_a_malformed_record_is_dropped_and_counted(polygon, caplog):
    polygon.trades.insert(3, trade(99, None))
    polygon.trades.append(trade(100, 598.5, size=-5))
    polygon.trades.append(trade(101, 598.5, size=0.4))  # a fractional share: one share
    source = feed(polygon)
    with caplog.at_level(logging.WARNING):
        _, ticks = await play(source)
    assert source.dropped == 2 and "dropped 2 malformed trades" in caplog.text
    assert len(ticks) == len(PRICES) + 1 and ticks["size"][-1] == 1


async def test_errors_keep_polygons_message_and_never_the_key(polygon, caplog):
    polygon.script = [500] * 10
    with caplog.at_level(logging.DEBUG), pytest.raises(PolygonError) as failed:
        await play(feed(polygon, retries=1))
    assert KEY not in str(failed.value) and KEY not in caplog.text
    with pytest.raises(PolygonError, match="Unknown API Key"):
        await play(feed(polygon, api_key="pg-WRONG-0000000000"))


async def test_minute_aggregates_become_ticks_along_the_bars_path(polygon):
    minute = OPEN_NS // 1_000_000
    polygon.aggs = [
        {
            "v": 1000,
            "vw": 598.3,
            "o": 598.30,
            "c": 598.33,
            "h": 598.35,
            "l": 598.28,
            "t": minute,
            "n": 40,
        },
        {
            "v": 3,
            "vw": 598.3,
            "o": 598.33,
            "c": 598.30,
            "h": 598.36,
            "l": 598.29,
            "t": minute + 60_000,
            "n": 3,
        },
    ]
    _, ticks = await play(feed(polygon, mode="aggregates"))
    first = ticks[ticks["ts_event"] < OPEN_NS + 60 * 10**9]
    cents = list(first["price"] // 10_000_000)
    # rising bar: open 30 -> low 28 -> high 35 -> close 33, one cent at a time
    assert cents == [
        59830,
        59829,
        59828,
        59829,
        59830,
        59831,
        59832,
        59833,
        59834,
        59835,
        59834,
        59833,
    ]
    assert first["size"].sum() == 1000
    second = ticks[ticks["ts_event"] >= OPEN_NS + 60 * 10**9]
    assert second["size"].sum() == 3 and len(second) == 3  # fewer shares than cents
    assert np.all(np.diff(ticks["ts_event"]) > 0)


def test_a_run_needs_a_start_date():
    with pytest.raises(ValueError, match=r"feed\.polygon\.start"):
        PolygonFeed(
            PolygonSettings(api_key=KEY), PluginContext("SPY", InstrumentRegistry(), 60, None)
        )
