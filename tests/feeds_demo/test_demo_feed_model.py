"""The demo feed's model: the phases, distributions and episodes it claims are really there."""

from __future__ import annotations

import asyncio
from datetime import date, time, timedelta

import numpy as np
import pytest
from tradebot_plugins.feeds._demo_episodes import Flow
from tradebot_plugins.feeds._demo_model import RANGE, RANGE_HALF_WIDTH, TREND_UP, _fold_ranges
from tradebot_plugins.feeds.demo import DemoFeed, DemoSettings, simulate_session

from tradebot_core.components import PluginContext
from tradebot_core.footprint import FootprintEngine
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import TickBatch

REGISTRY = InstrumentRegistry()
ES = REGISTRY["ES"]
DAYS = [date(2024, 11, 11) + timedelta(days=d) for d in (0, 1, 2, 3, 4, 7)]


@pytest.fixture(scope="module")
def sims():
    settings = DemoSettings(trades_per_session=40_000)
    return [simulate_session(settings, ES, day) for day in DAYS]


def bid_path(ticks: np.ndarray) -> np.ndarray:
    """The bid in ticks at each trade: buyers print one tick above it, sellers on it."""
    return ticks["price"] // ES.tick_fixed - (ticks["side"] > 0)


def test_trend_phases_move_their_way_and_range_phases_stay_in_a_band(sims):
    agree = trends = ranges = 0
    for sim in sims:
        bid = bid_path(sim.ticks)
        for name, start, end in sim.phase_spans():
            before = bid[start - 1] if start else bid[0]
            if name in ("trend_up", "trend_down"):
                trends += 1
                sign = 1 if name == "trend_up" else -1
                agree += (bid[end - 1] - before) * sign > 0
            elif name == "range":
                ranges += 1
                # a multi-tick sweep may overshoot the fold by a few ticks
                assert np.abs(bid[start:end] - before).max() <= RANGE_HALF_WIDTH[1] + 4
    assert trends >= 10 and ranges >= 5
    assert agree / trends >= 0.85


def test_volatile_phases_move_more_and_alone_jump(sims):
    moved = {"range": [], "volatile": [], "trend": []}
    jumps_volatile = jumps_elsewhere = 0
    for sim in sims:
        step = np.abs(np.diff(bid_path(sim.ticks)))
        for name, start, end in sim.phase_spans():
            inner = step[start : max(start, end - 1)]
            moved[name.split("_")[0]].append(inner.sum() / max(len(inner), 1))
            if name == "volatile":
                jumps_volatile += int((inner >= 2).sum())
            else:
                jumps_elsewhere += int((inner >= 2).sum())
    assert np.mean(moved["volatile"]) > 1.5 * np.mean(moved["range"])
    assert jumps_volatile > 10 * max(jumps_elsewhere, 1)


def test_aggressors_follow_price_trade_by_trade_and_bar_by_bar(sims):
    correlations = []
    for sim in sims:
        ticks = sim.ticks
        change = np.diff(ticks["price"])
        side = ticks["side"][1:]
        assert (side[change > 0] == 1).mean() > 0.8 and (side[change < 0] == -1).mean() > 0.8
        # per 5-minute bar, aggressor imbalance (delta) goes with the bar's return
        bar = (ticks["ts_event"] - ticks["ts_event"][0]) // (300 * 10**9)
        starts = np.flatnonzero(np.diff(bar, prepend=-1))
        ends = np.append(starts[1:], len(ticks)) - 1
        delta = np.add.reduceat(ticks["size"].astype(np.int64) * ticks["side"], starts)
        ret = ticks["price"][ends] - ticks["price"][starts]
        correlations.append(np.corrcoef(delta, ret)[0, 1])
    assert min(correlations) > 0.25 and np.mean(correlations) > 0.4


def test_a_range_phase_folds_a_one_way_push_back_into_its_band():
    trades = 4_000
    phase = np.full(trades, TREND_UP)
    phase[1_000:3_000] = RANGE  # a range phase in the middle...
    moves = np.where(np.arange(trades) % 5 == 0, 1, 0)  # ...of a relentless climb
    side = np.where(moves > 0, 1, -1).astype(np.int8)
    flow = Flow(moves=moves.copy(), side=side.copy(), size=np.ones(trades, np.int32))
    _fold_ranges(np.random.default_rng(1), flow, phase)
    path = np.cumsum(flow.moves)
    inside = path[1_000:3_000] - path[999]
    assert np.abs(inside).max() <= RANGE_HALF_WIDTH[1]  # 400 ticks of push, held in the band
    assert inside.max() >= RANGE_HALF_WIDTH[0] and (np.diff(inside) < 0).sum() > 0  # it turned
    # outside the range phase nothing changed; inside, each turned move turned its aggressor
    assert np.array_equal(flow.moves[:1_000], moves[:1_000])
    assert np.array_equal(flow.moves[3_000:], moves[3_000:])
    turned = flow.moves != moves
    assert turned.any() and np.array_equal(flow.side[turned], -side[turned])
    moving = flow.moves != 0
    assert np.array_equal(np.sign(flow.moves[moving]), flow.side[moving])


def test_prices_mostly_step_by_at_most_one_tick(sims):
    for sim in sims:
        step = np.abs(np.diff(sim.ticks["price"])) // ES.tick_fixed
        assert (step <= 1).mean() > 0.98
        assert (step == 0).mean() > 0.3


def test_sizes_are_small_with_a_heavy_tail_and_blocks(sims):
    size = np.concatenate([sim.ticks["size"] for sim in sims])
    assert (size <= 5).mean() > 0.8
    assert np.median(size) <= 2
    blocks = size[size >= 50]
    assert len(blocks) > 0 and blocks.max() <= 200
    assert (size >= 50).mean() < 0.01
    # heavy tail: the top 1% of trades carry far more than 1% of the volume
    top = np.sort(size)[-len(size) // 100 :]
    assert top.sum() / size.sum() > 0.08


def test_the_open_and_close_are_busier_than_midday(sims):
    for sim in sims:
        minute = (sim.ticks["ts_event"] - sim.ticks["ts_event"][0]) // (60 * 10**9)
        per_minute = np.bincount(minute, minlength=390)
        edges = np.concatenate((per_minute[:30], per_minute[-30:])).mean()
        midday = per_minute[180:210].mean()
        assert edges > 1.5 * midday


def test_episodes_are_placed_and_tell_their_story(sims):
    kinds = {episode.kind for sim in sims for episode in sim.episodes}
    assert kinds == {"burst", "absorption", "exhaustion", "divergence"}
    # episodes may overlap (a later one overwrites) and a range fold may turn one around,
    # so the story must hold for most of them, not for every single one
    told = {"burst": [], "exhaustion": [], "divergence": []}
    for sim in sims:
        ticks = sim.ticks
        bid = bid_path(ticks)
        signed = ticks["size"].astype(np.int64) * ticks["side"]
        for ep in sim.episodes:
            span = slice(ep.start, ep.stop)
            if ep.kind == "divergence":
                # price goes one way while the aggressors (delta) go the other
                moved = bid[ep.stop - 1] - bid[ep.start]
                told["divergence"].append(np.sign(signed[span].sum()) == -np.sign(moved) != 0)
            elif ep.kind == "burst":
                told["burst"].append(abs(ticks["side"][span].mean()) > 0.6)  # one-sided
            elif ep.kind == "exhaustion":
                told["exhaustion"].append((ticks["size"][span] == 1).mean() > 0.15)
    for kind, stories in told.items():
        assert len(stories) >= 10, kind
        assert np.mean(stories) >= 0.8, kind


def test_absorption_holds_a_level_under_heavy_aggression(sims):
    held = 0
    for sim in sims:
        ticks = sim.ticks
        bid = bid_path(ticks)
        for ep in sim.episodes:
            if ep.kind != "absorption":
                continue
            # the core of the episode sits in its middle: the bid never moves there
            length = round((ep.stop - ep.start) / (1 / 3 + 1 + 1 / 2))
            core = slice(ep.start + length // 3 + 1, ep.start + length // 3 + length)
            side = ticks["side"][core]
            if np.all(bid[core] == bid[core][0]):
                held += 1
                assert abs(side.mean()) > 0.5  # one side kept hitting
                assert ticks["size"][core].mean() > 2 * np.median(ticks["size"])
    assert held >= 6


def flags_run(flags: np.ndarray, run: int) -> bool:
    """Whether ``flags`` holds ``run`` consecutive True values (plain numpy)."""
    if len(flags) < run:
        return False
    windows = np.lib.stride_tricks.sliding_window_view(flags.astype(np.int8), run)
    return bool((windows.sum(axis=1) == run).any())


def test_footprints_built_from_the_stream_hold_imbalances_and_stacks():
    context = PluginContext(symbol="ES", instruments=REGISTRY, timeframe_s=300, data_dir=None)
    feed = DemoFeed(DemoSettings(trades_per_session=40_000), context)
    engine = FootprintEngine(ES, 300)

    async def play() -> None:
        async for item in feed.stream():
            if isinstance(item, TickBatch):
                engine.update(item.ticks)
        engine.flush()

    asyncio.run(play())
    history = engine.history
    assert len(history) >= 70  # 6.5 hours of 5-minute bars
    diagonal = stacked = 0
    min_volume = 10
    for i in range(len(history)):
        _, bid, ask, _ = history.levels(i)
        # buy imbalance at P: ask[P] >= 3 x bid[P - 1]; sell at P: bid[P] >= 3 x ask[P + 1]
        buy = (ask[1:] >= 3 * bid[:-1]) & (ask[1:] >= min_volume)
        sell = (bid[:-1] >= 3 * ask[1:]) & (bid[:-1] >= min_volume)
        diagonal += bool(buy.any() or sell.any())
        stacked += flags_run(buy, 3) or flags_run(sell, 3)
    assert diagonal >= 1 and stacked >= 1
    assert diagonal < len(history)  # imbalances are events, not every bar


def test_a_shorter_session_moves_less_in_proportion_to_its_length():
    full = DemoSettings(trades_per_session=20_000)
    hour = full.model_copy(update={"session_start": time(10, 0), "session_end": time(11, 0)})
    day = date(2024, 11, 13)
    moves_full = (np.diff(bid_path(simulate_session(full, ES, day).ticks)) != 0).sum()
    moves_hour = (np.diff(bid_path(simulate_session(hour, ES, day).ticks)) != 0).sum()
    assert moves_hour < 0.35 * moves_full  # 1 hour of 6.5: the same trades, fewer quote moves
