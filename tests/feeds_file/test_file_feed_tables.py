"""The file feed on CSV and Parquet trade files: exact prices, time formats, sides, bad rows."""

from __future__ import annotations

import asyncio
import gzip
import logging
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet
import pytest
from tradebot_plugins.feeds.file import FileFeed, FileFeedError, FileFeedSettings

from tradebot_core.components import PluginContext
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import TickBatch

CL_PRICES = ["70.29", "64.02", "69.99", "64.35", "0.07", "-37.63"]  # 64.02, 64.35: float drifts


def feed(path, symbol="ES", **settings):
    return FileFeed(
        FileFeedSettings(path=str(path), **settings),
        PluginContext(symbol, InstrumentRegistry(), 60, None),
    )


def ticks_of(source):
    async def go():
        return [item async for item in source.stream()]

    batches = [i.ticks for i in asyncio.run(go()) if isinstance(i, TickBatch)]
    return np.concatenate(batches) if batches else np.empty(0)


def fixed(text: str) -> int:
    """'70.29' -> 70_290_000_000 by integer arithmetic on the digits."""
    sign = -1 if text.startswith("-") else 1
    whole, _, fraction = text.lstrip("-").partition(".")
    return sign * (int(whole) * 10**9 + int(fraction.ljust(9, "0")))


def test_decimal_text_prices_are_converted_exactly(tmp_path):
    path = tmp_path / "cl.csv"
    lines = [f"{1_731_508_200_000_000_000 + i},{p},1,B" for i, p in enumerate(CL_PRICES)]
    path.write_text("ts_event,price,size,side\n" + "\n".join(lines) + "\n")
    ticks = ticks_of(feed(path, symbol="CL"))
    expected = [fixed(p) for p in CL_PRICES]
    assert ticks["price"].tolist() == expected
    # a float conversion would not have been exact for some of them
    assert [int(float(p) * 1e9) for p in CL_PRICES] != expected


def test_parquet_decimal_prices_ns_times_and_numeric_sides(tmp_path):
    ts = [1_731_508_200_000_000_000 + 7 * i for i in range(len(CL_PRICES))]
    sides = [1, -1, 0, -1, 1, 1]
    table = pa.table(
        {
            "ts_event": pa.array(ts, pa.int64()),
            "price": pa.array([Decimal(p) for p in CL_PRICES], pa.decimal128(12, 4)),
            "size": pa.array([1, 2, 3, 4, 5, 6], pa.int32()),
            "side": pa.array(sides, pa.int8()),
        }
    )
    path = tmp_path / "cl.parquet"
    pyarrow.parquet.write_table(table, path)
    ticks = ticks_of(feed(path, symbol="CL"))
    assert ticks["price"].tolist() == [fixed(p) for p in CL_PRICES]
    assert ticks["ts_event"].tolist() == ts
    assert ticks["side"].tolist() == sides
    assert ticks["size"].tolist() == [1, 2, 3, 4, 5, 6]


def test_iso_times_with_offsets_fractions_and_spaces(tmp_path):
    texts = [
        "2024-11-13T14:30:00Z",
        "2024-11-13T09:30:00.000000001-05:00",
        "2024-11-13 14:30:00.5",
        "2024-11-13T14:30:01+00:00",
        "2024-11-13T14:30:01.123456789Z",
    ]
    base = int(datetime(2024, 11, 13, 14, 30, tzinfo=UTC).timestamp()) * 10**9
    expected = [base, base + 1, base + 500_000_000, base + 10**9, base + 1_123_456_789]
    path = tmp_path / "iso.csv.gz"
    rows = [
        f"{t},5000.25,1,{s}" for t, s in zip(texts, ["BUY", "Sell", "b", "a", "N"], strict=True)
    ]
    with gzip.open(path, "wt") as out:
        out.write("ts_event,price,size,side\n" + "\n".join(rows) + "\n")
    ticks = ticks_of(feed(path))
    assert ticks["ts_event"].tolist() == expected
    assert ticks["side"].tolist() == [1, -1, 1, -1, 0]


def test_bad_sizes_and_times_are_dropped_and_named(tmp_path, caplog):
    path = tmp_path / "sizes.csv"
    path.write_text(
        "ts_event,price,size,side\n"
        "1731508200000000000,5000.25,2,B\n"
        "1731508200000000001,5000.25,x,B\n"  # not a number
        "1731508200000000002,5000.25,2.5,B\n"  # not whole
        "1731508200000000003,5000.25,-1,B\n"  # negative
        "1731508200000000004,abc,1,B\n"  # no price
        "1731508200000000005,5000.50,7,A\n"
    )
    source = feed(path)
    with caplog.at_level(logging.WARNING):
        ticks = ticks_of(source)
    assert ticks["size"].tolist() == [2, 7] and source.dropped == 4
    assert "sizes.csv: dropped 4 malformed rows (lines 3, 4, 5, 6)" in caplog.text


def test_a_table_without_the_needed_columns_is_refused_by_name(tmp_path):
    path = tmp_path / "bars.csv"
    path.write_text("timestamp,close,volume\n2024-11-13T14:30:00Z,5000.25,10\n")
    with pytest.raises(
        FileFeedError, match=r"bars\.csv: missing column\(s\) price, size, ts_event"
    ):
        ticks_of(feed(path))


def test_the_date_setting_plays_one_day_of_a_table(tmp_path):
    path = tmp_path / "days.csv"
    day1 = int(datetime(2024, 11, 13, 15, tzinfo=UTC).timestamp()) * 10**9
    day2 = day1 + 86_400 * 10**9
    path.write_text(f"ts_event,price,size,side\n{day1},5000.25,1,B\n{day2},5001.00,3,A\n")
    ticks = ticks_of(feed(path, date="2024-11-14"))
    assert ticks["ts_event"].tolist() == [day2] and ticks["size"].tolist() == [3]
