"""The file feed on DBN files written from the real ES session: symbology, chunks, bad records."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest
from feeds_file.file_feed_dbn import read_records, write_dbn
from tradebot_plugins.feeds.file import FileFeed, FileFeedError, FileFeedSettings

from tradebot_core.components import PluginContext
from tradebot_core.instruments import Instrument, InstrumentRegistry
from tradebot_core.types import FeedStatus, FeedStatusKind, TickBatch

MBO = "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
DAY_NS = 86_400 * 10**9
UTC_DAY = date(2023, 12, 25)  # the UTC day of every record in the sample


def feed(path, registry=None, **settings):
    return FileFeed(
        FileFeedSettings(path=path if isinstance(path, list) else str(path), **settings),
        PluginContext("ES", registry or InstrumentRegistry(), 60, None),
    )


def play(source):
    async def go():
        return [item async for item in source.stream()]

    items = asyncio.run(go())
    batches = [i.ticks for i in items if isinstance(i, TickBatch)]
    return items, (np.concatenate(batches) if batches else np.empty(0))


def trades_of(records):
    """The expected ticks, worked out here from the raw records (not with the feed's helper)."""
    trades = records[records["action"] == b"T"]
    side = np.array([{b"B": 1, b"A": -1}.get(bytes(s), 0) for s in trades["side"]])
    return trades["ts_event"].astype(np.int64), trades["price"], trades["size"], side


def same(ticks, expected):
    ts, price, size, side = expected
    return (
        np.array_equal(ticks["ts_event"], ts)
        and np.array_equal(ticks["price"], price)
        and np.array_equal(ticks["size"], size)
        and np.array_equal(ticks["side"], side)
    )


@pytest.fixture(scope="module")
def es(shared_data):
    return read_records(shared_data / "databento" / MBO)


@pytest.fixture(scope="module")
def two_contracts(es, tmp_path_factory):
    """ESH4 as recorded, and a made-up ESM4 (100 points up, double size) interleaved with it."""
    records, store = es
    other = records.copy()
    other["instrument_id"] = 17078
    other["price"] = other["price"] + 100 * 10**9
    other["size"] = other["size"] * 2
    both = np.concatenate([records, other])
    both = both[np.argsort(both["ts_recv"], kind="stable")]
    mapping = {
        "ESH4": [(UTC_DAY, UTC_DAY + timedelta(days=1), 17077)],
        "ESM4": [(UTC_DAY, UTC_DAY + timedelta(days=1), 17078)],
    }
    path = tmp_path_factory.mktemp("dbn") / "two.mbo.dbn.zst"
    return write_dbn(path, both, store, mapping), records, other


def test_the_symbol_setting_picks_one_instrument_by_the_files_symbology(two_contracts):
    path, esh4, esm4 = two_contracts
    _, h = play(feed(path, symbol="ESH4"))
    _, m = play(feed(path, symbol="ESM4"))
    assert same(h, trades_of(esh4)) and same(m, trades_of(esm4))
    with pytest.raises(FileFeedError, match=r"holds 2 symbols \(ESH4, ESM4\).*feed\.file\.symbol"):
        play(feed(path))
    with pytest.raises(
        FileFeedError, match=r"no symbol 'ESZ4' in this file \(it has: ESH4, ESM4\)"
    ):
        play(feed(path, symbol="ESZ4"))


def test_a_continuous_symbol_follows_its_roll_from_one_day_to_the_next(es, tmp_path):
    """ES.c.0 is ESH4 on the 25th and 'ESM4' on the 26th; the other contract of each day is
    in the file too, and must not play."""
    records, store = es
    later = records.copy()
    later["ts_event"] += DAY_NS
    later["ts_recv"] += DAY_NS
    later["instrument_id"] = 17078
    decoy = later.copy()
    decoy["instrument_id"] = 17077
    decoy["price"] = decoy["price"] + 300 * 10**9
    day_one_decoy = records.copy()
    day_one_decoy["instrument_id"] = 17078
    day_one_decoy["price"] = day_one_decoy["price"] - 300 * 10**9
    both = np.concatenate([records, day_one_decoy, later, decoy])
    both = both[np.argsort(both["ts_recv"], kind="stable")]
    roll = UTC_DAY + timedelta(days=1)
    path = write_dbn(
        tmp_path / "es-c-0.mbo.dbn",
        both,
        store,
        {"ES.c.0": [(UTC_DAY, roll, 17077), (roll, roll + timedelta(days=1), 17078)]},
    )
    items, ticks = play(feed(path))  # one symbol in the file: no setting needed
    expected = [
        np.concatenate(parts) for parts in zip(trades_of(records), trades_of(later), strict=True)
    ]
    assert same(ticks, expected)
    sessions = [i.detail for i in items if isinstance(i, FeedStatus)]
    assert sessions == ["2023-12-26", "2023-12-26", "2023-12-27", "2023-12-27"]


def test_reading_in_small_chunks_gives_the_same_ticks(shared_data, es):
    records, _ = es
    _, ticks = play(feed(shared_data / "databento" / MBO, batch_size=997))
    assert same(ticks, trades_of(records))


def test_sessions_end_at_their_last_trade(shared_data, es):
    records, _ = es
    items, _ = play(feed(shared_data / "databento" / MBO))
    statuses = [i for i in items if isinstance(i, FeedStatus)]
    ts = trades_of(records)[0]
    assert [s.kind for s in statuses] == [FeedStatusKind.SESSION_START, FeedStatusKind.SESSION_END]
    assert (statuses[0].ts_ns, statuses[1].ts_ns) == (int(ts[0]), int(ts[-1]))


def test_a_glob_and_a_list_play_each_file_as_its_own_sessions(shared_data, tmp_path):
    folder = shared_data / "databento"
    items, ticks = play(feed(str(folder / "dbpy-GLBX.MDP3_test_data.t*.dbn.zst")))  # tbbo, trades
    listed_items, listed = play(
        feed(
            [
                str(folder / "dbpy-GLBX.MDP3_test_data.tbbo.dbn.zst"),
                str(folder / "dbpy-GLBX.MDP3_test_data.trades.dbn.zst"),
            ]
        )
    )
    expected = [
        np.concatenate(parts)
        for parts in zip(
            trades_of(read_records(folder / "dbpy-GLBX.MDP3_test_data.tbbo.dbn.zst")[0]),
            trades_of(read_records(folder / "dbpy-GLBX.MDP3_test_data.trades.dbn.zst")[0]),
            strict=True,
        )
    ]
    assert same(ticks, expected) and same(listed, expected)
    starts = [
        i for i in items if isinstance(i, FeedStatus) and i.kind is FeedStatusKind.SESSION_START
    ]
    assert len(starts) == 2 and len(listed_items) == len(items)


def test_malformed_records_are_dropped_and_numbered(es, tmp_path, caplog):
    records, store = es
    broken = records.copy()
    trade_at = np.flatnonzero(broken["action"] == b"T")
    first, second = int(trade_at[10]), int(trade_at[500])
    broken["rtype"][first] = 0xEE  # not an MBO record
    broken["length"][second] = 3  # a record that claims 12 bytes
    path = write_dbn(
        tmp_path / "broken.mbo.dbn.zst",
        broken,
        store,
        {"ESH4": [(UTC_DAY, UTC_DAY + timedelta(days=1), 17077)]},
    )
    source = feed(path, batch_size=4_000)
    with caplog.at_level(logging.WARNING):
        _, ticks = play(source)
    keep = np.ones(len(records), dtype=bool)
    keep[[first, second]] = False
    assert same(ticks, trades_of(records[keep]))
    assert source.dropped == 2
    assert (
        f"broken.mbo.dbn.zst: dropped 2 records not of the mbo schema "
        f"(records {first + 1}, {second + 1})" in caplog.text
    )


def test_prices_off_the_instruments_grid_are_dropped_and_counted(shared_data, es, caplog):
    """ES prices on quarters; an instrument ticking in whole points keeps only the whole ones."""
    records, _ = es
    coarse = Instrument(symbol="ES", tick_size=Decimal("1"), tick_value=Decimal("50"))
    source = feed(shared_data / "databento" / MBO, registry=InstrumentRegistry({"ES": coarse}))
    with caplog.at_level(logging.WARNING):
        _, ticks = play(source)
    ts, price, size, side = trades_of(records)
    whole = price % 10**9 == 0
    assert 0 < whole.sum() < len(price)
    assert same(ticks, (ts[whole], price[whole], size[whole], side[whole]))
    assert source.dropped == int((~whole).sum())
    warnings = [r.getMessage() for r in caplog.records if "tick grid" in r.getMessage()]
    assert len(warnings) == 1  # one per file, not one per chunk
    assert f"dropped {int((~whole).sum())} trades off the ES tick grid of 1 (records" in warnings[0]


def test_unreadable_and_truncated_files(shared_data, tmp_path, caplog):
    junk = tmp_path / "junk.dbn.zst"
    junk.write_bytes(b"not a DBN file" * 8)
    with pytest.raises(FileFeedError, match=r"junk\.dbn\.zst: not a readable DBN file"):
        play(feed(junk))
    whole = (shared_data / "databento" / MBO).read_bytes()
    half = tmp_path / "half.mbo.dbn.zst"
    half.write_bytes(whole[: len(whole) // 2])
    with caplog.at_level(logging.WARNING):
        _, ticks = play(feed(half))
    assert 0 < len(ticks) < 2_973  # what could be read plays, and the log says why it stopped
    assert "half.mbo.dbn.zst: after record" in caplog.text and "truncated" in caplog.text
    with pytest.raises(FileFeedError, match="schema 'definition' holds no trades"):
        play(feed(shared_data / "databento" / "dbpy-GLBX.MDP3_test_data.definition.dbn.zst"))
