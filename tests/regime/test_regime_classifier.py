"""The adx regime classifier on bars built to trend, range, blow out or sit at a session edge,
and on a month of real 1-minute 6E bars."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from regime.regime_bars import ES, ET, EURO, REGISTRY, real_6e_bars, synthetic
from tradebot_plugins.regime.adx_regime import AdxRegimeClassifier, AdxRegimeSettings

from tradebot_core.components import PluginContext
from tradebot_core.footprint import FootprintHistory
from tradebot_core.indicators import adx, atr, ema, market_structure, session_vwap
from tradebot_core.plugins import PluginManager
from tradebot_core.types import Regime


def classifier(symbol="ES", timeframe_s=60, **settings):
    settings.setdefault("edge_minutes", 0)
    context = PluginContext(symbol, REGISTRY, timeframe_s, None)
    return AdxRegimeClassifier(AdxRegimeSettings(**settings), context)


def run(bars, instrument=ES, timeframe_s=60, **settings):
    """Classify after each bar, as the pipeline does: the history grows one bar at a time."""
    clf = classifier(instrument.symbol, timeframe_s, **settings)
    history = FootprintHistory(instrument, timeframe_s)
    states = []
    for index in range(len(bars)):
        bar = bars[index : index + 1].copy()
        bar["level_start"] = 0
        levels = np.zeros(int(bar["level_count"][0]), dtype=np.int64)
        history.append(bar, levels, levels, levels)
        states.append(clf.classify(history))
    return states


def test_warm_up_is_no_trade_then_a_steady_rise_trends_up():
    states = run(synthetic([20_000 + 3 * k for k in range(80)]))
    warm = 2 * 14 - 1  # ADX's first value is at index 27
    assert all(s.regime is Regime.NO_TRADE for s in states[:warm])
    assert [s.reason for s in states[:warm]] == [
        f"warming up ({k}/28 bars)" for k in range(1, warm + 1)
    ]
    assert states[warm].regime is not Regime.NO_TRADE
    assert states[-1].regime is Regime.TRENDING_UP
    assert "+DI leads" in states[-1].reason
    assert 0.5 <= states[-1].confidence <= 1


def test_a_steady_fall_trends_down_and_a_flat_market_ranges():
    falling = run(synthetic([20_000 - 3 * k for k in range(80)]))
    assert falling[-1].regime is Regime.TRENDING_DOWN
    rng = np.random.default_rng(1)
    flat = run(synthetic(20_000 + rng.integers(-2, 3, 120)))
    assert flat[-1].regime is Regime.RANGING
    assert flat[-1].indicators["adx"] <= 25


def test_a_range_blowing_out_is_volatile():
    rng = np.random.default_rng(2)
    closes = list(20_000 + rng.integers(-2, 3, 110))
    closes += [closes[-1] + 40 * (-1) ** k for k in range(6)]
    states = run(synthetic(closes), volatile_window=50)
    assert all(s.regime is Regime.VOLATILE for s in states[-5:])
    assert states[-1].reason.startswith("ATR ") and "above its p90" in states[-1].reason
    assert states[-1].confidence == 1.0  # five VOLATILE bars in a row, ATR far past its p90
    # in the quiet part ATR tops its own p90 now and then, but only just: low confidence
    quiet = [s for s in states[30:110] if s.regime is Regime.VOLATILE]
    assert all(s.confidence < 0.9 for s in quiet)


def test_trend_confirmations_setting_decides_an_unconfirmed_trend():
    """A sawtooth rise: strong ADX, EMA and VWAP agree, structure mostly does not."""
    closes = np.cumsum(np.tile([6, -3, 6, -3, -2], 20)) + 20_000
    two = run(synthetic(closes, spread=2))
    three = run(synthetic(closes, spread=2), trend_confirmations=3)
    up_two = {i for i, s in enumerate(two) if s.regime is Regime.TRENDING_UP}
    up_three = {i for i, s in enumerate(three) if s.regime is Regime.TRENDING_UP}
    assert up_three < up_two
    unconfirmed = [three[i] for i in up_two - up_three]
    assert all(s.regime is Regime.RANGING for s in unconfirmed)
    assert all("direction unconfirmed (2 of 3 agree, 3 needed)" in s.reason for s in unconfirmed)


def test_confidence_is_half_agreement_half_strength():
    rng = np.random.default_rng(7)
    closes = np.r_[20_000 + np.cumsum(rng.integers(-1, 4, 90)), 20_200 + rng.integers(-3, 4, 90)]
    states = run(synthetic(closes))
    checked = set()
    for index, state in enumerate(states):
        if state.regime is Regime.NO_TRADE:
            assert state.confidence == 1.0
            continue
        window = states[max(0, index - 4) : index + 1]
        agreement = sum(s.regime is state.regime for s in window) / len(window)
        value = state.indicators["adx"]
        if state.regime is Regime.RANGING and "unconfirmed" in state.reason:
            strength = 0.0
        elif state.regime is Regime.RANGING:
            strength = (25 - value) / 25
        elif state.regime in (Regime.TRENDING_UP, Regime.TRENDING_DOWN):
            strength = (value - 25) / 25
        else:
            continue
        expected = 0.5 * agreement + 0.5 * min(1.0, max(0.0, strength))
        assert state.confidence == pytest.approx(expected, abs=1e-4)
        checked.add(state.regime)
    assert {Regime.TRENDING_UP, Regime.RANGING} <= checked


def _session_day(minutes, timeframe_s=300, **settings):
    """Bars of a steady rise from 06:00 ET; returns {bar close 'HH:MM': reason}."""
    start = datetime(2024, 11, 13, 6, 0, tzinfo=ET)
    count = minutes * 60 // timeframe_s
    states = run(
        synthetic([20_000 + 2 * k for k in range(count)], start=start, timeframe_s=timeframe_s),
        timeframe_s=timeframe_s,
        **settings,
    )
    closes = [start + timedelta(seconds=timeframe_s * (k + 1)) for k in range(count)]
    return {f"{c:%H:%M}": s for c, s in zip(closes, states, strict=True)}


def test_session_edges_are_judged_at_the_bar_close():
    by_close = _session_day(11 * 60, edge_minutes=10)
    for hhmm in ("09:30", "09:35"):
        assert by_close[hhmm].reason == "session open (10 min)"
    for hhmm in ("15:50", "15:55", "16:00"):
        assert by_close[hhmm].reason == "session close (10 min)"
    for hhmm in ("09:25", "09:40", "12:00", "15:45", "16:05"):
        assert by_close[hhmm].regime is Regime.TRENDING_UP, hhmm
    no_edges = _session_day(11 * 60, edge_minutes=0)
    assert no_edges["09:35"].regime is Regime.TRENDING_UP


def test_custom_session_hours():
    by_close = _session_day(11 * 60, edge_minutes=15, session_start="08:30", session_end="15:00")
    assert by_close["08:40"].reason == "session open (15 min)"
    assert by_close["08:45"].regime is Regime.TRENDING_UP
    assert by_close["14:40"].regime is Regime.TRENDING_UP
    assert by_close["14:45"].reason == "session close (15 min)"


def test_news_windows_include_every_bar_that_touches_them():
    by_close = _session_day(6 * 60, news_windows=["10:00-10:05", "08:31-08:32"])
    assert by_close["10:00"].reason == "news window 10:00-10:05"  # 09:55-10:00 bar
    assert by_close["10:05"].reason == "news window 10:00-10:05"
    assert by_close["10:10"].reason == "news window 10:00-10:05"  # opens at 10:05
    assert by_close["10:15"].regime is Regime.TRENDING_UP
    assert by_close["08:35"].reason == "news window 08:31-08:32"  # inside one bar
    assert by_close["08:40"].regime is Regime.TRENDING_UP


def test_a_news_window_may_wrap_past_midnight():
    start = datetime(2024, 11, 13, 22, 0, tzinfo=ET)
    states = run(
        synthetic([20_000 + 2 * k for k in range(48)], start=start, timeframe_s=300),
        timeframe_s=300,
        news_windows=["23:50-00:10"],
    )
    reasons = {f"{start + timedelta(minutes=5 * k):%H:%M}": s.reason for k, s in enumerate(states)}
    for hhmm in ("23:45", "23:50", "23:55", "00:00", "00:05", "00:10"):  # bar opens
        assert reasons[hhmm] == "news window 23:50-00:10", hhmm
    assert not reasons["00:15"].startswith("news") and not reasons["23:40"].startswith("news")


def test_low_volume_bar_is_no_trade():
    volume = np.full(60, 100)
    volume[50] = 19  # below 0.2 x the median of the 20 bars before
    volume[55] = 20  # exactly 0.2 x: trades
    states = run(synthetic([20_000 + 3 * k for k in range(60)], volume=volume))
    assert states[50].regime is Regime.NO_TRADE
    assert states[50].reason == "low volume: 19 vs median 100"
    assert states[55].regime is Regime.TRENDING_UP


def test_bars_arriving_together_give_the_same_state_and_repeat_calls_change_nothing():
    rng = np.random.default_rng(5)
    bars = synthetic(20_000 + np.cumsum(rng.integers(-3, 4, 90)))
    one_by_one = run(bars)
    clf = classifier()
    history = FootprintHistory(ES, 60)
    history.append(*_split(bars[:70]))
    clf.classify(history)
    history.append(*_split(bars[70:]))
    together = clf.classify(history)
    assert together == one_by_one[-1]
    assert clf.classify(history) is together


def _split(bars):
    bars = bars.copy()
    bars["level_start"] = np.r_[0, np.cumsum(bars["level_count"])[:-1]]
    levels = np.zeros(int(bars["level_count"].sum()), dtype=np.int64)
    return bars, levels, levels, levels


def test_an_empty_history_is_no_trade():
    state = classifier().classify(FootprintHistory(ES, 60))
    assert state.regime is Regime.NO_TRADE and state.reason == "no closed bar yet"


def test_real_6e_bars_indicators_equal_the_batch_functions(shared_data):
    """8,000 real bars (six sessions), one at a time: each indicator against its numpy twin."""
    bars = real_6e_bars(shared_data, 8_000)
    states = run(bars, instrument=EURO)
    tick = float(EURO.tick_size)
    h, lo, c = (bars[k].astype(float) for k in ("high", "low", "close"))
    local = pd.to_datetime(bars["ts_open"], utc=True).tz_convert("America/New_York")
    session = (local.tz_localize(None) + pd.Timedelta(hours=6)).normalize()  # 18:00 ET roll
    a, plus_di, minus_di = adx(h, lo, c)
    expected = {
        "adx": a,
        "plus_di": plus_di,
        "minus_di": minus_di,
        "atr": atr(h, lo, c) * tick,
        "ema_fast": ema(c, 9) * tick,
        "ema_slow": ema(c, 21) * tick,
        "vwap": session_vwap(bars["pv"], bars["volume"], session.to_numpy()) * tick,
        "structure": market_structure(h, lo, 5).astype(float),
    }
    assert len(set(session)) >= 6
    for key, values in expected.items():
        got = np.array([s.indicators[key] for s in states])
        valid = ~np.isnan(values)
        assert np.array_equal(np.isnan(got[valid]), np.zeros(valid.sum(), bool)), key
        np.testing.assert_allclose(got[valid], values[valid], rtol=0, atol=1e-12, err_msg=key)
    seen = {s.regime for s in states}
    assert {Regime.TRENDING_UP, Regime.TRENDING_DOWN, Regime.RANGING, Regime.NO_TRADE} <= seen
    assert all(0 <= s.confidence <= 1 for s in states)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"news_windows": ["8:30 to 8:35"]}, "is not a window like"),
        ({"ema_fast": 21, "ema_slow": 9}, "ema_fast (21) must be shorter than ema_slow (9)"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"session_start": "16:00", "session_end": "09:30"}, "session_start must be before"),
        ({"trend_confirmations": 4}, "less than or equal to 3"),
        ({"bogus": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_config_errors(settings, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AdxRegimeSettings(**settings)


def test_the_plugin_registers_the_adx_classifier():
    manager = PluginManager()
    info = manager.get("regime", "adx", "regime.plugin")
    assert info.cls is AdxRegimeClassifier
    built = manager.build(
        "regime",
        "adx",
        {"trend_adx": 30},
        ("regime", "adx"),
        PluginContext("ES", REGISTRY, 60, None),
    )
    assert built.s.trend_adx == 30
