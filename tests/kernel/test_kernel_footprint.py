"""The footprint engine against a plain-Python footprint, and its batch invariance."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from tradebot_core import footprint
from tradebot_core.footprint import FootprintEngine, compute_bars
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import TICK_DTYPE

ES = InstrumentRegistry()["ES"]
CL = InstrumentRegistry()["CL"]
TF = 60


def random_ticks(n: int, seed: int, spec=ES, start_price_ticks=20_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ticks = np.zeros(n, dtype=TICK_DTYPE)
    ticks["ts_event"] = 1_731_500_000 * 10**9 + np.cumsum(rng.integers(0, 400_000_000, n))
    ticks["price"] = (start_price_ticks + np.cumsum(rng.integers(-2, 3, n))) * spec.tick_fixed
    ticks["size"] = rng.integers(1, 30, n)
    ticks["side"] = rng.choice([-1, 0, 1], n, p=[0.45, 0.1, 0.45])
    return ticks


def plain_footprint(ticks: np.ndarray, spec) -> list[dict]:
    """One dict per bar, built trade by trade without numpy."""
    bars: dict[int, dict] = {}
    for ts, price, size, side in ticks.tolist():
        bar_id = ts // (TF * 10**9)
        p = price // spec.tick_fixed
        bar = bars.setdefault(
            bar_id,
            {
                "open": p,
                "high": p,
                "low": p,
                "close": p,
                "volume": 0,
                "delta": 0,
                "trades": 0,
                "levels": defaultdict(lambda: [0, 0, 0]),
            },
        )
        bar["high"], bar["low"], bar["close"] = max(bar["high"], p), min(bar["low"], p), p
        bar["volume"] += size
        bar["trades"] += 1
        level = bar["levels"][p]
        level[2] += size
        if side == 1:
            level[1] += size
            bar["delta"] += size
        elif side == -1:
            level[0] += size
            bar["delta"] -= size
    result = []
    for bar_id in sorted(bars):
        bar = bars[bar_id]
        top = max(v[2] for v in bar["levels"].values())
        bar["poc"] = min(p for p, v in bar["levels"].items() if v[2] == top)
        bar["val"], bar["vah"] = plain_value_area(bar)
        bar["ts_open"] = bar_id * TF * 10**9
        result.append(bar)
    return result


def plain_value_area(bar: dict) -> tuple[int, int]:
    volume_at = lambda p: bar["levels"][p][2] if p in bar["levels"] else 0  # noqa: E731
    lo = hi = bar["poc"]
    covered = volume_at(lo)
    while covered < 0.7 * bar["volume"]:
        up_ok, down_ok = hi < bar["high"], lo > bar["low"]
        up = volume_at(hi + 1) if up_ok else None
        down = volume_at(lo - 1) if down_ok else None
        if up is not None and (down is None or up >= down):
            hi += 1
            covered += up
        else:
            lo -= 1
            covered += down
    return lo, hi


@pytest.mark.parametrize("spec", [ES, CL], ids=["ES", "CL"])
def test_bars_match_a_plain_python_footprint(spec):
    ticks = random_ticks(30_000, seed=4, spec=spec)
    engine = FootprintEngine(spec, TF)
    engine.update(ticks)
    engine.flush()
    history = engine.history
    expected = plain_footprint(ticks, spec)
    assert len(history) == len(expected) > 50
    cum = 0
    for i, want in enumerate(expected):
        bar = history.bars[i]
        cum += want["delta"]
        for key in (
            "open",
            "high",
            "low",
            "close",
            "volume",
            "delta",
            "poc",
            "val",
            "vah",
            "ts_open",
        ):
            assert bar[key] == want[key], (i, key)
        assert bar["trade_count"] == want["trades"]
        assert bar["cum_delta"] == cum
        prices, bid, ask, volume = history.levels(i)
        assert prices[0] == want["low"] and prices[-1] == want["high"]
        for p, b, a, v in zip(
            prices.tolist(), bid.tolist(), ask.tolist(), volume.tolist(), strict=True
        ):
            assert [b, a, v] == want["levels"].get(p, [0, 0, 0])


def test_identical_bars_for_any_batching():
    ticks = random_ticks(50_000, seed=9)
    whole = FootprintEngine(ES, TF)
    whole.update(ticks)
    whole.flush()
    rng = np.random.default_rng(0)
    for splits in (10_000, 37, 1):
        cuts = (
            np.sort(rng.choice(np.arange(1, len(ticks)), splits - 1, replace=False))
            if (splits > 1)
            else []
        )
        engine = FootprintEngine(ES, TF)
        closed = sum(len(engine.update(chunk)) for chunk in np.split(ticks, cuts))
        engine.flush()
        assert closed == len(whole.history) - 1
        assert np.array_equal(engine.history.bars, whole.history.bars)
        assert np.array_equal(engine.history.level_bid, whole.history.level_bid)
        assert np.array_equal(engine.history.level_ask, whole.history.level_ask)


def test_vectorized_and_scalar_value_areas_agree(monkeypatch):
    ticks = random_ticks(20_000, seed=12)
    vectorized = compute_bars(ticks, ES.tick_fixed, TF * 10**9)[0]
    monkeypatch.setattr(footprint, "_SCALAR_VALUE_AREA_MAX_BARS", 10**9)
    scalar = compute_bars(ticks, ES.tick_fixed, TF * 10**9)[0]
    assert np.array_equal(vectorized[["val", "vah"]], scalar[["val", "vah"]])


def test_cut_indices_point_at_the_first_tick_of_the_next_bar():
    ticks = random_ticks(5_000, seed=2)
    engine = FootprintEngine(ES, TF)
    cuts = engine.update(ticks)
    bar_id = ticks["ts_event"] // (TF * 10**9)
    assert list(cuts) == list(np.flatnonzero(np.diff(bar_id)) + 1)


def test_staged_bars_stay_out_of_the_history_until_released():
    ticks = random_ticks(5_000, seed=2)
    released = FootprintEngine(ES, TF)
    released.update(ticks)
    engine = FootprintEngine(ES, TF)
    engine.update(ticks, reveal=False)
    assert len(engine.history) == 0 and engine.staged == len(released.history) > 3
    engine.release_next()
    engine.release_next()
    assert len(engine.history) == 2 and engine.staged == len(released.history) - 2
    while engine.staged:
        engine.release_next()
    assert np.array_equal(engine.history.bars, released.history.bars)
    assert np.array_equal(engine.history.level_volume, released.history.level_volume)
    with pytest.raises(ValueError):
        engine.history.bars["close"][0] = 1  # detectors get read-only views


def test_the_open_bar_is_the_bar_it_becomes_and_reading_it_changes_nothing():
    ticks = random_ticks(3_000, seed=11)
    engine = FootprintEngine(ES, 60)
    bar_id = ticks["ts_event"] // engine.timeframe_ns
    last_bar_start = int(np.flatnonzero(bar_id == bar_id[-1])[0])  # the last bar's first tick
    assert engine.open_bar() is None and engine.open_bar_version is None
    for chunk in np.array_split(ticks[:last_bar_start], 7):
        engine.update(chunk)
    version = engine.open_bar_version
    row, bid, ask = engine.open_bar()
    assert engine.open_bar_version == version  # reading it changed nothing
    engine.update(ticks[last_bar_start : last_bar_start + 1])  # the next bar's first tick
    assert engine.open_bar_version != version
    closed = engine.history.bars[-1]
    fields = [name for name in closed.dtype.names if name != "level_start"]  # where it is stored
    assert [row[0][name] for name in fields] == [closed[name] for name in fields]
    assert int(closed["volume"]) > 0
    _, closed_bid, closed_ask, _ = engine.history.levels(-1)
    assert np.array_equal(bid, closed_bid) and np.array_equal(ask, closed_ask)
