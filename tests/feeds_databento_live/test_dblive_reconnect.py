"""Dropped connections: backoff, RECONNECTED + GAP, intraday replay, and no tick counted twice."""

from __future__ import annotations

import numpy as np
import pytest
from dblive_support import API_KEY, collect, make_feed, ticks_of
from live_gateway import ConnectionPlan, LoopbackLiveGateway
from tradebot_plugins.feeds.databento_live import DatabentoLiveError, ReplayDeduper
from tradebot_plugins.feeds.dbn_ticks import records_to_ticks

from tradebot_core.types import FeedStatusKind


def identical_pair_index(records: np.ndarray) -> int:
    """The index of a record followed by a byte-identical one (real CME data has such pairs)."""
    raw = records.view(np.dtype((np.void, records.dtype.itemsize)))
    same = np.flatnonzero(raw[1:] == raw[:-1])
    assert len(same), "the sample has no identical consecutive trades"
    return int(same[len(same) // 2])


@pytest.mark.parametrize("abort", [False, True], ids=["closed", "reset"])
async def test_drop_inside_a_group_of_identical_trades_loses_and_repeats_nothing(
    trade_records, abort
):
    # drop right after the first of two identical records: the replay sends both again; only
    # the second may be kept (a set of seen records would drop it, a ts_event cut-off too)
    cut = identical_pair_index(trade_records) + 1
    plans = [ConnectionPlan(drop_after=cut, abort=abort)]
    async with LoopbackLiveGateway(trade_records, API_KEY, plans=plans) as gateway:
        feed = make_feed(gateway)
        batches, statuses, error = await collect(feed, len(trade_records))

    assert error is None
    np.testing.assert_array_equal(ticks_of(batches), records_to_ticks(trade_records))
    kinds = [s.kind for s in statuses]
    assert kinds == [
        FeedStatusKind.CONNECTED,
        FeedStatusKind.DISCONNECTED,
        FeedStatusKind.RECONNECTED,
        FeedStatusKind.GAP,
    ]
    last_ts = int(trade_records["ts_event"][cut - 1])
    gap = statuses[3]
    assert gap.ts_ns == last_ts
    assert "replaying from" in gap.detail
    # the second session asked for a replay from the last ts_event the feed had seen
    assert int(gateway.sessions[1].subscriptions[0]["start"]) == last_ts
    at_boundary = int((trade_records["ts_event"] == last_ts).sum())
    before_cut = int((trade_records["ts_event"][:cut] == last_ts).sum())
    assert feed.duplicates_dropped == before_cut
    assert before_cut < at_boundary  # the boundary really was cut through


async def test_several_drops_in_a_row(trade_records):
    plans = [ConnectionPlan(drop_after=n) for n in (400, 1, 700, 0)]
    async with LoopbackLiveGateway(trade_records, API_KEY, plans=plans) as gateway:
        feed = make_feed(gateway)
        batches, statuses, error = await collect(feed, len(trade_records))

    assert error is None
    np.testing.assert_array_equal(ticks_of(batches), records_to_ticks(trade_records))
    kinds = [s.kind for s in statuses]
    assert kinds.count(FeedStatusKind.RECONNECTED) == 4
    assert kinds.count(FeedStatusKind.GAP) == 4
    assert len(gateway.sessions) == 5


async def test_drop_before_any_trade_replays_from_the_session_start(trade_records):
    plans = [ConnectionPlan(drop_after=0)]
    async with LoopbackLiveGateway(trade_records, API_KEY, plans=plans) as gateway:
        feed = make_feed(gateway)
        batches, statuses, error = await collect(feed, len(trade_records))

    assert error is None
    np.testing.assert_array_equal(ticks_of(batches), records_to_ticks(trade_records))
    # the first session's metadata start is where the replay begins
    assert int(gateway.sessions[1].subscriptions[0]["start"]) == int(trade_records["ts_event"][0])
    assert FeedStatusKind.GAP in [s.kind for s in statuses]


async def test_without_replay_the_gap_says_ticks_are_missing(trade_records):
    # the gateway cannot replay (aged out): the feed resubscribes live; what the market
    # published meanwhile is lost, and the GAP status says so
    lost = 150
    plans = [
        ConnectionPlan(drop_after=1000, publish_while_down=lost),
        ConnectionPlan(refuse_replay=True),
    ]
    async with LoopbackLiveGateway(trade_records, API_KEY, plans=plans) as gateway:
        feed = make_feed(gateway)
        expected = np.concatenate([trade_records[:1000], trade_records[1000 + lost :]])
        batches, statuses, error = await collect(feed, len(expected))

    assert error is None
    np.testing.assert_array_equal(ticks_of(batches), records_to_ticks(expected))
    gaps = [s for s in statuses if s.kind is FeedStatusKind.GAP]
    assert "missing" in gaps[-1].detail
    assert "start" not in gateway.sessions[2].subscriptions[0]


async def test_gives_up_after_max_attempts_when_the_gateway_is_gone(trade_records):
    async with LoopbackLiveGateway(trade_records, API_KEY) as gateway:
        port = gateway.port
    # nothing listens on that port any more
    async with LoopbackLiveGateway(trade_records[:0], API_KEY) as other:
        feed = make_feed(other, port=port, reconnect_max_attempts=2)
        batches, statuses, error = await collect(feed, None)
    assert batches == [] and statuses == []
    assert isinstance(error, DatabentoLiveError)
    assert "3 failed attempt" in str(error)
    assert API_KEY not in str(error)


def test_deduper_multiset_and_overlap_window():
    dtype = np.dtype([("ts_event", "<u8"), ("price", "<i8"), ("size", "<u4")])

    def recs(*rows):
        return np.array(list(rows), dtype=dtype)

    # yielded before the drop: ts 10, 20, 20 (identical), 25, then 22 arrived late
    dedup = ReplayDeduper(dtype, overlap_ns=5)
    first = recs((10, 1, 1), (20, 2, 1), (20, 2, 1), (25, 3, 1), (22, 4, 1))
    assert len(dedup.accept(first)) == 5
    assert dedup.replay_start() == 20
    assert dedup.arm() == 20
    # the replay (ts_event >= 20): the three identical ts-20 records now (one is new), the late
    # ts-22, the ts-25, a new late ts-24, then new records past the window
    replay = recs((20, 2, 1), (20, 2, 1), (20, 2, 1), (25, 3, 1), (22, 4, 1), (24, 5, 1))
    kept = dedup.accept(replay)
    assert kept.tolist() == [(20, 2, 1), (24, 5, 1)]
    assert dedup.dropped == 4
    # an old record a sloppy gateway sends again is dropped too
    assert len(dedup.accept(recs((10, 1, 1)))) == 0
    after = recs((31, 6, 1), (20, 2, 1))  # 31 > 25 + 5 ends the window
    assert dedup.accept(after).tolist() == [(31, 6, 1), (20, 2, 1)]
