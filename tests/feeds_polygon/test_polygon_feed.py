"""The Polygon feed, through the official client, against a loopback Polygon API."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from feeds_polygon.polygon_server import ERRORS, KEY, STALL, FakePolygon
from tradebot_plugins.feeds import polygon_feed
from tradebot_plugins.feeds.polygon_feed import PolygonError, PolygonFeed, PolygonSettings

from tradebot_core.components import PluginContext
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import FeedStatus, FeedStatusKind, TickBatch

ET = ZoneInfo("America/New_York")
DAY = date(2024, 11, 13)
OPEN_NS = int(datetime(2024, 11, 13, 14, 30, tzinfo=UTC).timestamp()) * 10**9
# on the cent grid, one sub-penny print (a midpoint cross), floats that are not exact in binary
PRICES = [
    598.31,
    598.32,
    598.32,
    598.3,
    598.305,
    598.35,
    598.35,
    598.34,
    598.34,
    598.4,
    0.1 + 598.3,
]
SIZES = [100, 5, 200, 1, 37, 100, 100, 300, 2, 1000, 50]


def trade(i: int, price: float | None, size: float | None = 100, ts: int | None = None) -> dict:
    """A v3 trade record as Polygon sends it."""
    record = {
        "conditions": [12, 37],
        "exchange": 11,
        "id": str(52983525000000 + i),
        "participant_timestamp": (ts or OPEN_NS + i * 10**9) - 413,
        "sequence_number": 1000 + i,
        "sip_timestamp": ts or OPEN_NS + i * 10**9,
        "size": size,
        "tape": 2,
    }
    if price is not None:
        record["price"] = price
    return record


@pytest.fixture
async def polygon(aiohttp_server):
    records = [trade(i, p, s) for i, (p, s) in enumerate(zip(PRICES, SIZES, strict=True))]
    fake = FakePolygon(trades=records)
    server = await aiohttp_server(fake.app())
    fake.base = f"http://127.0.0.1:{server.port}"
    return fake


def feed(fake: FakePolygon, **settings) -> PolygonFeed:
    values = {"api_key": KEY, "start": DAY, "base_url": fake.base, "backoff_s": 0, **settings}
    context = PluginContext("SPY", InstrumentRegistry(), 60, None)
    return PolygonFeed(PolygonSettings.model_validate(values), context)


async def play(source: PolygonFeed) -> tuple[list, np.ndarray]:
    items = [item async for item in source.stream()]
    batches = [i.ticks for i in items if isinstance(i, TickBatch)]
    return items, np.concatenate(batches) if batches else np.empty(0)


def cents(price: float) -> int:
    """The price in cents, by decimal arithmetic (half up), independent of the feed's numpy."""
    return int(Decimal(str(price)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)


def tick_rule_by_hand(prices: list[int]) -> list[int]:
    sides, side = [], 0
    for i, p in enumerate(prices):
        if i and p != prices[i - 1]:
            side = 1 if p > prices[i - 1] else -1
        sides.append(side)
    return sides


@pytest.mark.parametrize("batch_size", [10_000, 3])
async def test_every_page_every_trade_exact_prices_and_tick_rule_sides(polygon, batch_size):
    _, ticks = await play(feed(polygon, batch_size=batch_size, page_limit=4))
    expected_cents = [cents(p) for p in PRICES]
    assert expected_cents[4] == 59831 and expected_cents[-1] == 59840  # half up; float noise
    assert list(ticks["price"]) == [c * 10_000_000 for c in expected_cents]
    assert list(ticks["size"]) == SIZES
    assert list(ticks["side"]) == tick_rule_by_hand(expected_cents)  # carried across batches
    assert list(ticks["ts_event"]) == [OPEN_NS + i * 10**9 for i in range(len(PRICES))]
    pages = polygon.paths("/v3/trades/SPY")
    assert len(pages) == 3  # 11 trades, 4 a page, the 2nd and 3rd through next_url
    assert "timestamp.gte" in pages[0] and all("cursor=" in p for p in pages[1:])
    assert all(r.authorization == f"Bearer {KEY}" for r in polygon.requests)
    assert not any(KEY in r.path_qs for r in polygon.requests)


async def test_sessions_follow_the_nyse_calendar(polygon):
    wed, thanksgiving, fri = date(2024, 11, 27), date(2024, 11, 28), date(2024, 11, 29)
    wed_open = int(datetime.combine(wed, time(9, 30), ET).timestamp()) * 10**9
    fri_open = int(datetime.combine(fri, time(9, 30), ET).timestamp()) * 10**9
    fri_early_close = int(datetime.combine(fri, time(13), ET).timestamp()) * 10**9
    polygon.trades = [
        trade(0, 590.0, ts=wed_open + 10**9),
        trade(1, 590.5, ts=fri_open + 10**9),
        trade(2, 590.25, ts=fri_early_close + 10**9),  # after the early close: not requested
    ]
    items, ticks = await play(feed(polygon, start=wed, end=fri))
    kinds = [(i.kind, i.detail) for i in items if isinstance(i, FeedStatus)]
    assert kinds == [
        (FeedStatusKind.SESSION_START, str(wed)),
        (FeedStatusKind.SESSION_END, str(wed)),
        (FeedStatusKind.SESSION_START, str(fri)),
        (FeedStatusKind.SESSION_END, str(fri)),
    ]
    assert items[-1].ts_ns == fri_early_close and items[-3].ts_ns == fri_open
    assert list(ticks["price"]) == [59000 * 10**7, 59050 * 10**7]
    windows = [p for p in polygon.paths("/v3/trades/SPY") if "timestamp.gte" in p]
    assert len(windows) == 2 and str(thanksgiving) not in "".join(windows)
    assert f"timestamp.lt={fri_early_close}" in windows[1]


async def test_a_429_with_retry_after_and_a_500_are_retried(polygon, caplog):
    polygon.script = [429, 500]
    with caplog.at_level(logging.WARNING, logger="tradebot_plugins.feeds.polygon_feed"):
        _, ticks = await play(feed(polygon))
    assert [cents(p) * 10**7 for p in PRICES] == list(ticks["price"])
    statuses = [r.status for r in polygon.requests]
    assert statuses == [429, 500, 200, 200, 200]
    assert "HTTP 429" in caplog.text and "HTTP 500" in caplog.text


async def test_a_stalled_request_times_out_and_is_retried(polygon):
    polygon.script, polygon.stall_s = [STALL], 3.0
    _, ticks = await play(feed(polygon, timeout_s=0.2))
    assert len(ticks) == len(PRICES)
    assert [r.status for r in polygon.requests][:2] == [STALL, 200]
    polygon.script = [STALL]
    with pytest.raises(PolygonError, match="timed out"):
        await play(feed(polygon, timeout_s=0.2, retries=0))


async def test_a_failure_on_a_later_page_resumes_at_that_page(polygon):
    source = feed(polygon, batch_size=4)
    stream = source.stream()
    items = [await anext(stream), await anext(stream)]  # session start, first page
    polygon.script = [503, 502]
    items += [item async for item in stream]
    ticks = np.concatenate([i.ticks for i in items if isinstance(i, TickBatch)])
    assert len(ticks) == len(PRICES)
    assert [r.status for r in polygon.requests] == [200, 503, 502, 200, 200]
    assert polygon.requests[1].path_qs == polygon.requests[3].path_qs  # the same cursor


async def test_retries_exhausted_keep_polygons_message_and_never_the_key(polygon, caplog):
    polygon.script = [503] * 10
    with caplog.at_level(logging.DEBUG), pytest.raises(PolygonError) as failed:
        await play(feed(polygon, retries=2))
    message = str(failed.value)
    assert ERRORS[503] in message and "r-503" in message and "retries" in message
    assert len(polygon.requests) == 3  # the first try and 2 retries
    assert KEY not in message and KEY not in caplog.text
    assert caplog.text  # urllib3 and the feed did log: the key was kept out of it


async def test_a_wrong_key_is_not_retried_and_not_repeated(polygon, caplog):
    wrong = "pg-WRONG-key-0000000000"
    with caplog.at_level(logging.DEBUG), pytest.raises(PolygonError) as failed:
        await play(feed(polygon, api_key=wrong))
    assert "Unknown API Key" in str(failed.value) and "POLYGON_API_KEY" in str(failed.value)
    assert wrong not in str(failed.value) and wrong not in caplog.text
    assert [r.status for r in polygon.requests] == [401]


async def test_an_unreachable_api_is_named(polygon):
    with pytest.raises(PolygonError, match=r"base_url \(http://127\.0\.0\.1:9\)"):
        await play(feed(polygon, base_url="http://127.0.0.1:9", retries=0))


async def test_malformed_records_are_dropped_and_counted(polygon, caplog):
    polygon.trades[3:3] = [
        trade(90, None),  # no price
        trade(91, 598.5, size=-5),
        trade(92, 598.5, size=0),
        trade(93, 598.5, size=None),
        trade(94, -1.0),
    ]
    polygon.trades += [trade(95, 598.5, size=0.4), trade(96, 598.5, size=2.5)]  # fractional
    source = feed(polygon, batch_size=6)
    with caplog.at_level(logging.WARNING):
        _, ticks = await play(source)
    assert source.dropped == 5 and "dropped" in caplog.text and "5 so far" in caplog.text
    assert len(ticks) == len(PRICES) + 2
    assert list(ticks["size"][-2:]) == [1, 3]  # half up, at least one share
    assert np.all(np.diff(ticks["ts_event"]) >= 0)


def bar(minute: int, o: float, h: float, low: float, c: float, v: float) -> dict:
    """A v2 aggregate record as Polygon sends it."""
    return {"v": v, "vw": round((o + c) / 2, 4), "o": o, "c": c, "h": h, "l": low,
            "t": OPEN_NS // 1_000_000 + minute * 60_000, "n": 12}  # fmt: skip


def walk(stops: list[int]) -> list[int]:
    """Every cent from stop to stop, each stop once."""
    path = [stops[0]]
    for target in stops[1:]:
        while path[-1] != target:
            path.append(path[-1] + (1 if target > path[-1] else -1))
    return path


async def test_minute_aggregates_become_ticks_along_the_bars_path(polygon):
    polygon.agg_page_size = 2
    polygon.aggs = [
        bar(0, 598.30, 598.35, 598.28, 598.33, 1000),  # rose: O-L-H-C
        bar(1, 598.33, 598.36, 598.29, 598.30, 3),  # fell, fewer shares than cents
        bar(2, 598.30, 598.31, 598.29, 598.31, 10.6),  # fractional volume
        bar(3, 598.31, 598.30, 598.29, 598.31, 50),  # malformed: high below the open
    ]
    source = feed(polygon, mode="aggregates")
    _, ticks = await play(source)
    minute = ticks["ts_event"] // (60 * 10**9) - OPEN_NS // (60 * 10**9)
    first = ticks[minute == 0]
    assert list(first["price"] // 10**7) == walk([59830, 59828, 59835, 59833])
    assert first["size"].sum() == 1000
    assert np.all(np.diff(first["ts_event"]) == 60 * 10**9 // len(first))  # spread evenly
    fell = walk([59833, 59836, 59829, 59830])
    second = ticks[minute == 1]
    assert list(second["price"] // 10**7) == [fell[0], fell[len(fell) // 2], fell[-1]]
    assert list(second["size"]) == [1, 1, 1]
    assert ticks[minute == 2]["size"].sum() == 11
    assert source.dropped == 1 and not np.any(minute == 3)
    cents_path = list(ticks["price"] // 10**7)
    assert list(ticks["side"]) == tick_rule_by_hand(cents_path)
    assert len(polygon.paths("/v2/aggs/ticker/SPY/range/1/minute/")) == 2  # 2 bars a page


def test_tick_rule_carries_over_batches():
    rng = np.random.default_rng(5)
    prices = (59800 + rng.integers(-3, 4, 500).cumsum()) * 10**7
    whole = polygon_feed.tick_rule(prices)
    assert list(whole) == tick_rule_by_hand(list(prices))
    parts, prev_price, prev_side = [], 0, 0
    for chunk in np.array_split(prices, 7):
        sides = polygon_feed.tick_rule(chunk, prev_price, prev_side)
        parts.append(sides)
        prev_price, prev_side = int(chunk[-1]), int(sides[-1])
    assert np.array_equal(np.concatenate(parts), whole)


def test_settings_say_what_is_missing(monkeypatch):
    context = PluginContext("SPY", InstrumentRegistry(), 60, None)
    with pytest.raises(ValueError, match=r"feed\.polygon\.start"):
        PolygonFeed(PolygonSettings(api_key=KEY), context)
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    with pytest.raises(ValueError, match="POLYGON_API_KEY"):
        PolygonFeed(PolygonSettings(start=DAY), context)
    monkeypatch.setenv("POLYGON_API_KEY", KEY)
    assert PolygonFeed(PolygonSettings(start=DAY), context).ticker == "SPY"
    with pytest.raises(ValueError, match="before start"):
        PolygonSettings(start=DAY, end=date(2024, 11, 1))
    with pytest.raises(ValueError):
        PolygonSettings(start=DAY, mode="quotes")
    day = PolygonFeed.day_settings({"start": "2024-01-02", "ticker": "QQQ"}, DAY)
    assert PolygonSettings.model_validate(day).end == DAY


def test_the_plugin_registers_its_feed():
    registered = []
    polygon_feed.register_feeds(registered.append)
    assert registered == [PolygonFeed] and PolygonFeed.name == "polygon"
