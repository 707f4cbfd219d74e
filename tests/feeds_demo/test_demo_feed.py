"""The demo feed: deterministic, inside its session, on the tick grid, with order flow worth
detecting."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from plugins.feeds.demo import DemoFeed, DemoSettings, generate_session
from tradebot_core.components import PluginContext
from tradebot_core.footprint import FootprintEngine
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import FeedStatus, FeedStatusKind, TickBatch

REGISTRY = InstrumentRegistry()
ES, CL = REGISTRY["ES"], REGISTRY["CL"]


def context(symbol="ES"):
    return PluginContext(symbol=symbol, instruments=REGISTRY, timeframe_s=300, data_dir=None)


def collect(feed):
    async def go():
        return [item async for item in feed.stream()]

    return asyncio.run(go())


def test_same_seed_same_session_other_seed_other_session():
    settings = DemoSettings(trades_per_session=20_000)
    a = generate_session(settings, ES, date(2024, 11, 13))
    b = generate_session(settings, ES, date(2024, 11, 13))
    c = generate_session(settings.model_copy(update={"seed": 8}), ES, date(2024, 11, 13))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_dates_session_does_not_depend_on_start_date_or_count():
    one = DemoFeed(DemoSettings(trades_per_session=5_000, start_date=date(2024, 11, 13)), context())
    three = DemoFeed(
        DemoSettings(trades_per_session=5_000, start_date=date(2024, 11, 11), sessions=3), context()
    )
    ticks_one = np.concatenate([i.ticks for i in collect(one) if isinstance(i, TickBatch)])
    batches = [i for i in collect(three) if isinstance(i, TickBatch)]
    third = np.concatenate([b.ticks for b in batches])[-5_000:]
    assert np.array_equal(ticks_one, third)


@pytest.mark.parametrize(
    ("day", "open_utc"), [(date(2024, 7, 15), (13, 30)), (date(2024, 12, 16), (14, 30))]
)
def test_trades_stay_inside_the_session_in_summer_and_winter_time(day, open_utc):
    ticks = generate_session(DemoSettings(trades_per_session=10_000), ES, day)
    first = datetime.fromtimestamp(ticks["ts_event"][0] / 1e9, UTC)
    last = datetime.fromtimestamp(ticks["ts_event"][-1] / 1e9, UTC)
    assert (first.hour, first.minute) == open_utc  # 09:30 ET
    assert last < first.replace(minute=0) + timedelta(hours=7)  # before 16:00 ET
    assert np.all(np.diff(ticks["ts_event"]) >= 0)


@pytest.mark.parametrize(("spec", "start"), [(ES, "5000.00"), (CL, "71.37")])
def test_prices_sit_on_the_tick_grid(spec, start):
    ticks = generate_session(
        DemoSettings(trades_per_session=20_000, start_price=Decimal(start)),
        spec,
        date(2024, 11, 13),
    )
    assert np.all(ticks["price"] % spec.tick_fixed == 0)
    assert np.all(ticks["price"] > 0) and np.all(ticks["size"] > 0)


def test_off_grid_start_price_is_refused():
    with pytest.raises(ValueError, match="not a multiple of the tick size"):
        DemoFeed(DemoSettings(start_price=Decimal("5000.10")), context("ES"))


def test_stream_frames_each_session_and_respects_batch_size():
    feed = DemoFeed(
        DemoSettings(trades_per_session=12_345, sessions=2, batch_size=1_000), context()
    )
    items = collect(feed)
    kinds = [i.kind if isinstance(i, FeedStatus) else "batch" for i in items]
    assert kinds[0] is FeedStatusKind.SESSION_START and kinds[-1] is FeedStatusKind.SESSION_END
    assert kinds.count(FeedStatusKind.SESSION_START) == 2
    batches = [i for i in items if isinstance(i, TickBatch)]
    assert sum(len(b) for b in batches) == 2 * 12_345
    assert max(len(b) for b in batches) == 1_000


def test_the_flow_has_real_phases_blocks_and_aggressor_following_price():
    ticks = generate_session(DemoSettings(trades_per_session=120_000), ES, date(2024, 11, 13))
    moves = np.diff(ticks["price"])
    side = ticks["side"][1:]
    assert (side[moves > 0] == 1).mean() > 0.7 and (side[moves < 0] == -1).mean() > 0.7
    assert ticks["size"].max() >= 50
    span_ticks = (ticks["price"].max() - ticks["price"].min()) // ES.tick_fixed
    assert 80 <= span_ticks <= 2_000


def test_footprints_of_the_demo_hold_imbalances_and_stacks():
    ticks = generate_session(DemoSettings(trades_per_session=120_000), ES, date(2024, 11, 13))
    engine = FootprintEngine(ES, 300)
    engine.update(ticks)
    engine.flush()
    history = engine.history
    diagonal_bars = stacked_bars = 0
    for i in range(len(history)):
        _, bid, ask, _ = history.levels(i)
        # buy imbalance at P: ask[P] >= 3 x bid[P - 1], with some volume
        buy = (ask[1:] >= 3 * bid[:-1]) & (ask[1:] >= 20)
        diagonal_bars += bool(buy.any())
        run = best = 0
        for flag in buy:
            run = run + 1 if flag else 0
            best = max(best, run)
        stacked_bars += best >= 3
    assert diagonal_bars >= 5 and stacked_bars >= 1
