"""The file feed on the recorded CME samples, and on CSV / Parquet written from them."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

import databento as db
import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet
import pytest
from tradebot_plugins.feeds.file import FileFeed, FileFeedSettings

from tradebot_core.components import PluginContext
from tradebot_core.footprint import FootprintEngine
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import FeedStatus, FeedStatusKind, TickBatch

REGISTRY = InstrumentRegistry()
ES = REGISTRY["ES"]
MBO = "esh4-glbx-mdp3-20231225.mbo.dbn.zst"


def feed(path, **settings):
    return FileFeed(
        FileFeedSettings(path=str(path), **settings),
        PluginContext("ES", REGISTRY, 60, None),
    )


def play(source):
    async def go():
        return [item async for item in source.stream()]

    items = asyncio.run(go())
    batches = [i.ticks for i in items if isinstance(i, TickBatch)]
    return items, (np.concatenate(batches) if batches else np.empty(0))


def test_footprint_volumes_equal_the_files_trade_sizes_per_price(shared_data):
    path = shared_data / "databento" / MBO
    _, ticks = play(feed(path))
    # independently: straight from Databento's records, trades only
    volume_at = defaultdict(int)
    for record in db.DBNStore.from_file(path).to_ndarray():
        if record["action"] == b"T":
            volume_at[int(record["price"])] += int(record["size"])
    assert len(ticks) == 2_973
    engine = FootprintEngine(ES, 60)
    engine.update(ticks)
    engine.flush()
    footprint_at = defaultdict(int)
    history = engine.history
    for i in range(len(history)):
        prices, _, _, volume = history.levels(i)
        for p, v in zip(prices.tolist(), volume.tolist(), strict=True):
            if v:
                footprint_at[p * ES.tick_fixed] += v
    assert footprint_at == volume_at


@pytest.mark.parametrize("name", ["trades", "tbbo"])
def test_the_small_samples_of_every_trade_schema(shared_data, name):
    path = shared_data / "databento" / f"dbpy-GLBX.MDP3_test_data.{name}.dbn.zst"
    items, ticks = play(feed(path))
    records = db.DBNStore.from_file(path).to_ndarray()
    trades = records[records["action"] == b"T"]
    assert len(ticks) == len(trades) > 0
    assert list(ticks["price"]) == list(trades["price"])
    expected_side = [1 if s == b"B" else -1 if s == b"A" else 0 for s in trades["side"]]
    assert list(ticks["side"]) == expected_side
    assert isinstance(items[0], FeedStatus) and items[0].kind is FeedStatusKind.SESSION_START
    assert items[-1].kind is FeedStatusKind.SESSION_END


def test_book_updates_without_trades_give_no_ticks(shared_data):
    items, ticks = play(feed(shared_data / "databento" / "dbpy-GLBX.MDP3_test_data.mbp-1.dbn.zst"))
    assert len(ticks) == 0 and items == []


def sample_table(shared_data) -> tuple[np.ndarray, list[dict]]:
    _, ticks = play(feed(shared_data / "databento" / MBO))
    rows = [
        {
            "ts_event": datetime.fromtimestamp(ts // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            + f".{ts % 10**9:09d}Z",
            "price": str(Decimal(int(p)) / 10**9),
            "size": int(s),
            "side": {1: "B", -1: "A", 0: "N"}[int(d)],
        }
        for ts, p, s, d in ticks.tolist()
    ]
    return ticks, rows


def test_csv_with_iso_times_and_decimal_prices_replays_identically(shared_data, tmp_path):
    ticks, rows = sample_table(shared_data)
    path = tmp_path / "es.csv"
    pyarrow.csv.write_csv(pa.Table.from_pylist(rows), path)
    _, replayed = play(feed(path))
    assert np.array_equal(replayed, ticks)


def test_parquet_with_ns_times_and_float_prices_replays_identically(shared_data, tmp_path):
    ticks, _ = sample_table(shared_data)
    table = pa.table(
        {
            "ts_event": ticks["ts_event"],
            "price": ticks["price"] / 1e9,
            "size": ticks["size"],
            "side": np.where(ticks["side"] == 1, "buy", np.where(ticks["side"] == -1, "sell", "")),
        }
    )
    path = tmp_path / "es.parquet"
    pyarrow.parquet.write_table(table, path)
    _, replayed = play(feed(path))
    assert np.array_equal(replayed, ticks)


def test_malformed_rows_are_dropped_counted_and_named(tmp_path, caplog):
    path = tmp_path / "bad.csv"
    path.write_text(
        "ts_event,price,size,side\n"
        "2024-11-13T14:30:00Z,5000.25,3,B\n"
        "2024-11-13T14:30:01Z,5000.10,3,B\n"  # off the tick grid
        "2024-11-13T14:30:02Z,,3,A\n"  # no price
        "not-a-time,5000.00,3,A\n"
        "2024-11-13T14:30:03Z,5000.00,0,A\n"  # size 0
        "2024-11-13T14:30:04Z,5000.50,2,sell\n"
    )
    source = feed(path)
    with caplog.at_level(logging.WARNING):
        _, ticks = play(source)
    assert len(ticks) == 2 and source.dropped == 4
    assert list(ticks["side"]) == [1, -1]
    assert "bad.csv: dropped 4 malformed rows (lines 3, 4, 5, 6)" in caplog.text


def test_a_missing_file_is_named():
    with pytest.raises(ValueError, match=r"file not found: /nowhere/x\.dbn"):
        feed("/nowhere/x.dbn")


def test_a_file_spanning_two_trading_days_is_two_sessions_and_date_picks_one(tmp_path):
    # 17:59 and 18:01 ET on 2024-11-13 belong to the 13th and the 14th
    path = tmp_path / "two_days.csv"
    path.write_text(
        "ts_event,price,size,side\n"
        "2024-11-13T22:59:00Z,5000.00,1,B\n"
        "2024-11-13T23:01:00Z,5000.25,1,A\n"
        "2024-11-13T23:02:00Z,5000.50,1,A\n"
    )
    items, _ = play(feed(path))
    kinds = [(i.kind.value, i.detail) if isinstance(i, FeedStatus) else len(i) for i in items]
    assert kinds == [
        ("session_start", "2024-11-13"),
        1,
        ("session_end", "2024-11-13"),
        ("session_start", "2024-11-14"),
        2,
        ("session_end", "2024-11-14"),
    ]
    _, only = play(feed(path, **FileFeed.day_settings({}, date(2024, 11, 14))))
    assert len(only) == 2
