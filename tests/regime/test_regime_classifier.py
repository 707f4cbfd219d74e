"""The adx regime classifier on bars built to be trending, ranging, volatile or off-limits."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from plugins.regime.adx_regime import AdxRegimeClassifier, AdxRegimeSettings
from tradebot_core.components import PluginContext
from tradebot_core.footprint import FootprintEngine
from tradebot_core.indicators import adx, atr, ema
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import TICK_DTYPE, Regime

REGISTRY = InstrumentRegistry()
ES = REGISTRY["ES"]
ET = ZoneInfo("America/New_York")


def history_of(closes_in_ticks, start=datetime(2024, 11, 13, 10, 0, tzinfo=ET), spread=4):
    """One 60 s bar per close: four trades open/high/low/close, high/low spread ticks apart."""
    t0 = int(start.timestamp()) * 10**9
    rows = []
    previous = closes_in_ticks[0]
    for k, close in enumerate(closes_in_ticks):
        high, low = max(previous, close) + spread // 2, min(previous, close) - spread // 2
        for j, price in enumerate((previous, high, low, close)):
            rows.append(
                (t0 + k * 60 * 10**9 + j * 10**6, price * ES.tick_fixed, 10, 1 - 2 * (j % 2))
            )
        previous = close
    ticks = np.array(rows, dtype=TICK_DTYPE)
    engine = FootprintEngine(ES, 60)
    engine.update(ticks, reveal=False)
    engine.flush(reveal=False)
    return engine


def classify_all(engine, **settings):
    classifier = AdxRegimeClassifier(
        AdxRegimeSettings(edge_minutes=0, **settings), PluginContext("ES", REGISTRY, 60, None)
    )
    states = []
    while engine.staged:
        engine.release_next()
        states.append(classifier.classify(engine.history))
    return states


def test_warm_up_is_no_trade_then_a_steady_rise_trends_up():
    closes = [20_000 + 3 * k for k in range(80)]
    states = classify_all(history_of(closes))
    assert all(s.regime is Regime.NO_TRADE for s in states[:27])
    assert states[0].reason == "indicators warming up"
    assert states[-1].regime is Regime.TRENDING_UP
    assert 0.5 <= states[-1].confidence <= 1


def test_a_steady_fall_trends_down_and_a_flat_market_ranges():
    falling = classify_all(history_of([20_000 - 3 * k for k in range(80)]))
    assert falling[-1].regime is Regime.TRENDING_DOWN
    rng = np.random.default_rng(1)
    flat = classify_all(history_of(list(20_000 + rng.integers(-2, 3, 120))))
    assert flat[-1].regime is Regime.RANGING


def test_a_range_blowing_out_is_volatile():
    rng = np.random.default_rng(2)
    closes = list(20_000 + rng.integers(-2, 3, 110))
    closes += [closes[-1] + 40 * (-1) ** k for k in range(6)]
    states = classify_all(history_of(closes), volatile_window=50)
    assert Regime.VOLATILE in {s.regime for s in states[-6:]}


def test_streamed_indicators_equal_the_batch_functions():
    rng = np.random.default_rng(5)
    engine = history_of(list(20_000 + np.cumsum(rng.integers(-3, 4, 90))))
    states = classify_all(engine)
    bars = engine.history.bars
    tick = float(ES.tick_size)
    h, lo, c = (bars[k].astype(float) for k in ("high", "low", "close"))
    assert states[-1].indicators["adx"] == pytest.approx(adx(h, lo, c)[0][-1], abs=1e-9)
    assert states[-1].indicators["atr"] == pytest.approx(atr(h, lo, c)[-1] * tick, abs=1e-9)
    assert states[-1].indicators["ema_fast"] == pytest.approx(ema(c, 9)[-1] * tick, abs=1e-9)
    assert states[-1].indicators["ema_slow"] == pytest.approx(ema(c, 21)[-1] * tick, abs=1e-9)


def test_session_edges_and_news_windows_are_no_trade():
    closes = [20_000 + 3 * k for k in range(60)]
    start = datetime(2024, 11, 13, 9, 30, tzinfo=ET)
    classifier = AdxRegimeClassifier(
        AdxRegimeSettings(edge_minutes=10, news_windows=["10:00-10:05"]),
        PluginContext("ES", REGISTRY, 60, None),
    )
    engine = history_of(closes, start=start)
    reasons = []
    while engine.staged:
        engine.release_next()
        reasons.append(classifier.classify(engine.history).reason)
    assert reasons[0] == "session open"  # 09:30, warm-up or not, the open edge wins
    assert reasons[30] == "news window 10:00-10:05"


def test_bad_news_window_is_a_config_error():
    with pytest.raises(ValueError, match="is not a window like"):
        AdxRegimeSettings(news_windows=["8:30 to 8:35"])
