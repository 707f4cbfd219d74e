"""The demo feed as a component: settings, determinism, session windows, grid, the stream."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from decimal import Decimal

import numpy as np
import pytest
from pydantic import ValidationError
from tradebot_plugins.feeds import demo
from tradebot_plugins.feeds.demo import DemoFeed, DemoSettings, generate_session

from tradebot_core.components import PluginContext
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import TICK_DTYPE, FeedStatus, FeedStatusKind, TickBatch

REGISTRY = InstrumentRegistry()
ES, CL = REGISTRY["ES"], REGISTRY["CL"]
SMALL = 4_000


def context(symbol: str = "ES") -> PluginContext:
    return PluginContext(symbol=symbol, instruments=REGISTRY, timeframe_s=300, data_dir=None)


def collect(feed: DemoFeed) -> list:
    async def go():
        return [item async for item in feed.stream()]

    return asyncio.run(go())


def sessions_of(items: list) -> list[np.ndarray]:
    """The tick arrays of each session, cut at SESSION_START."""
    out: list[list[np.ndarray]] = []
    for item in items:
        if isinstance(item, FeedStatus) and item.kind is FeedStatusKind.SESSION_START:
            out.append([])
        elif isinstance(item, TickBatch):
            out[-1].append(item.ticks)
    return [np.concatenate(chunks) for chunks in out]


def run_of(**settings) -> list[np.ndarray]:
    return sessions_of(collect(DemoFeed(DemoSettings(**settings), context())))


def test_registers_itself_as_the_demo_feed():
    registered: list[type] = []
    demo.register_feeds(registered.append)
    assert registered == [DemoFeed] and DemoFeed.name == "demo"


def test_same_seed_same_session_other_seed_other_session():
    settings = DemoSettings(trades_per_session=SMALL)
    day = date(2024, 11, 13)
    a = generate_session(settings, ES, day, seed=3)
    b = generate_session(settings, ES, day, seed=3)
    c = generate_session(settings, ES, day, seed=4)
    assert a.dtype == TICK_DTYPE and len(a) == SMALL
    assert np.array_equal(a, b)
    assert not np.array_equal(a["price"], c["price"])
    assert not np.array_equal(a["ts_event"], c["ts_event"])
    # without an explicit seed, the settings' seed is used
    seeded = settings.model_copy(update={"seed": 3})
    assert np.array_equal(generate_session(seeded, ES, day), a)


def test_session_k_is_the_same_whatever_the_number_of_sessions():
    two = run_of(trades_per_session=SMALL, sessions=2)
    four = run_of(trades_per_session=SMALL, sessions=4)
    assert len(two) == 2 and len(four) == 4
    for k in range(2):
        assert np.array_equal(two[k], four[k])
    assert not np.array_equal(four[0]["price"], four[1]["price"])  # sessions differ


def test_a_day_played_alone_equals_that_day_in_a_longer_run():
    run = run_of(trades_per_session=SMALL, sessions=3)
    third_day = demo.session_dates(date(2024, 11, 11), 3)[2]
    (alone,) = run_of(**DemoFeed.day_settings({"trades_per_session": SMALL}, third_day))
    assert np.array_equal(alone, run[2])


def test_sessions_fall_on_consecutive_weekdays():
    thursday = date(2024, 11, 14)
    expected = [date(2024, 11, 14), date(2024, 11, 15), date(2024, 11, 18), date(2024, 11, 19)]
    assert demo.session_dates(thursday, 4) == expected
    feed = DemoFeed(
        DemoSettings(trades_per_session=200, sessions=4, start_date=thursday), context()
    )
    starts = [
        item.detail
        for item in collect(feed)
        if isinstance(item, FeedStatus) and item.kind is FeedStatusKind.SESSION_START
    ]
    assert starts == [d.isoformat() for d in expected]


@pytest.mark.parametrize(
    ("day", "utc_open", "utc_close"),
    [
        (date(2024, 7, 15), time(13, 30), time(20, 0)),  # EDT: UTC-4
        (date(2024, 12, 16), time(14, 30), time(21, 0)),  # EST: UTC-5
    ],
)
def test_trades_stay_inside_the_session_window_in_summer_and_winter_time(day, utc_open, utc_close):
    open_ns = int(datetime.combine(day, utc_open, UTC).timestamp()) * 10**9
    close_ns = int(datetime.combine(day, utc_close, UTC).timestamp()) * 10**9
    settings = DemoSettings(trades_per_session=10_000, start_date=day)
    ticks = generate_session(settings, ES, day)
    ts = ticks["ts_event"]
    assert ts.min() >= open_ns and ts.max() < close_ns
    assert np.all(np.diff(ts) >= 0)
    # the session is used to its edges: trades in its first and last minute
    assert ts[0] - open_ns < 60 * 10**9 and close_ns - ts[-1] < 60 * 10**9
    items = collect(DemoFeed(settings, context()))
    assert (items[0].ts_ns, items[-1].ts_ns) == (open_ns, close_ns)


def test_custom_session_hours_are_exchange_time():
    settings = DemoSettings(
        trades_per_session=2_000, session_start=time(8, 30), session_end=time(11, 15)
    )
    ts = generate_session(settings, ES, date(2024, 11, 13))["ts_event"]  # EST
    assert ts.min() >= int(datetime(2024, 11, 13, 13, 30, tzinfo=UTC).timestamp()) * 10**9
    assert ts.max() < int(datetime(2024, 11, 13, 16, 15, tzinfo=UTC).timestamp()) * 10**9


@pytest.mark.parametrize(("spec", "start"), [(ES, "5000.00"), (CL, "71.37")])
def test_prices_sit_on_the_tick_grid(spec, start):
    settings = DemoSettings(trades_per_session=20_000, start_price=Decimal(start))
    ticks = generate_session(settings, spec, date(2024, 11, 13))
    assert np.all(ticks["price"] % spec.tick_fixed == 0)
    assert np.all(ticks["price"] > 0) and np.all(ticks["size"] > 0)
    assert set(np.unique(ticks["side"]).tolist()) == {-1, 1}
    # the session opens at the start price: a sale on that bid, or a buy one tick above
    first = spec.to_decimal(int(ticks["price"][0]))
    assert first - Decimal(start) in (0, spec.tick_size)


def test_off_grid_start_price_is_refused_with_the_setting_named():
    with pytest.raises(ValueError, match=r"start_price 5000.10 is not on the tick grid of ES"):
        DemoFeed(DemoSettings(start_price=Decimal("5000.10")), context("ES"))
    DemoFeed(DemoSettings(start_price=Decimal("71.37")), context("CL"))  # on CL's grid


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"sessions": 0}, "sessions"),
        ({"batch_size": 0}, "batch_size"),
        ({"start_price": "-1"}, "start_price"),
        ({"speed": 3}, "speed"),
        ({"session_start": "16:00", "session_end": "09:30"}, "session_end"),
    ],
)
def test_bad_settings_are_refused(bad, field):
    with pytest.raises(ValidationError, match=field):
        DemoSettings(**bad)


def test_stream_frames_each_session_and_respects_batch_size():
    settings = DemoSettings(trades_per_session=12_345, sessions=2, batch_size=1_000)
    items = collect(DemoFeed(settings, context()))
    frames: list[str] = []
    for item in items:
        if isinstance(item, TickBatch):
            assert item.symbol == "ES"
            if frames[-1] != "batch":
                frames.append("batch")
        else:
            frames.append(item.kind.value)
    assert frames == ["session_start", "batch", "session_end"] * 2
    sizes = [len(item) for item in items if isinstance(item, TickBatch)]
    full, rest = divmod(settings.trades_per_session, settings.batch_size)
    assert sizes == ([settings.batch_size] * full + [rest]) * 2
    per_session = sessions_of(items)
    assert [len(s) for s in per_session] == [settings.trades_per_session] * 2
    assert np.all(np.diff(np.concatenate(per_session)["ts_event"]) >= 0)


def test_stream_yields_control_between_batches_and_never_sleeps(monkeypatch):
    feed = DemoFeed(DemoSettings(trades_per_session=10_000, batch_size=500), context())
    real_sleep = asyncio.sleep
    delays: list[float] = []

    async def recording_sleep(delay, *args, **kwargs):
        delays.append(delay)
        return await real_sleep(delay, *args, **kwargs)

    monkeypatch.setattr(demo.asyncio, "sleep", recording_sleep)
    seen: list[int] = []

    async def go() -> None:
        running = True
        other_steps = 0

        async def other() -> None:
            nonlocal other_steps
            while running:
                other_steps += 1
                await real_sleep(0)

        task = asyncio.create_task(other())
        async for item in feed.stream():
            if isinstance(item, TickBatch):
                seen.append(other_steps)
        running = False
        await task

    asyncio.run(go())
    assert len(seen) == 20
    assert np.all(np.diff(seen) > 0)  # the other task ran between any two batches
    assert delays and all(delay == 0 for delay in delays)  # control yielded, no pacing
