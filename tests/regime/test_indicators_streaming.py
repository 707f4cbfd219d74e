"""Streaming states equal the batch functions; the rules of each indicator, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tradebot_core import indicators as ind


@pytest.fixture(scope="module")
def walk():
    """A random walk in ticks with ranges, gaps and flat stretches."""
    rng = np.random.default_rng(42)
    close = 20_000 + np.cumsum(rng.integers(-4, 5, 2_000)).astype(float)
    close[500:560] = close[499]  # a flat hour
    high = close + rng.integers(0, 4, len(close))
    low = close - rng.integers(0, 4, len(close))
    high[500:560] = low[500:560] = close[499]
    return high, low, close


def same(streamed, batch):
    streamed, batch = np.asarray(streamed, dtype=float), np.asarray(batch, dtype=float)
    assert np.array_equal(np.isnan(streamed), np.isnan(batch))
    valid = ~np.isnan(batch)
    assert valid.any()
    assert np.max(np.abs(streamed[valid] - batch[valid]), initial=0.0) <= 1e-12


@pytest.mark.parametrize("period", [1, 9, 21])
def test_ema_state_equals_ema(walk, period):
    close = walk[2]
    state = ind.EmaState(period)
    same([state.update(x) for x in close], ind.ema(close, period))


@pytest.mark.parametrize("period", [1, 14])
def test_atr_state_equals_atr(walk, period):
    state = ind.AtrState(period)
    same([state.update(*bar) for bar in zip(*walk, strict=True)], ind.atr(*walk, period))


@pytest.mark.parametrize("period", [2, 14])
def test_adx_state_equals_adx_and_di(walk, period):
    state = ind.AdxState(period)
    rows = []
    for index, bar in enumerate(zip(*walk, strict=True)):
        value = state.update(*bar)
        di = (state.plus_di, state.minus_di) if index >= period else (np.nan, np.nan)
        rows.append((value, *di))
    streamed = np.array(rows).T
    for ours, batch in zip(streamed, ind.adx(*walk, period), strict=True):
        same(ours, batch)


def test_warm_up_lengths_are_talibs():
    n = 60
    high = np.arange(n, dtype=float) + 1
    low, close = high - 1, high - 0.5
    assert np.isnan(ind.ema(close, 9)[:8]).all() and not np.isnan(ind.ema(close, 9)[8])
    assert np.isnan(ind.atr(high, low, close, 14)[:14]).all()
    assert not np.isnan(ind.atr(high, low, close, 14)[14])
    adx, plus_di, _ = ind.adx(high, low, close, 14)
    assert np.isnan(plus_di[:14]).all() and not np.isnan(plus_di[14])
    assert np.isnan(adx[:27]).all() and not np.isnan(adx[27])
    # a steady rise: +DM every bar, no -DM, so +DI leads and ADX is 100
    assert adx[-1] == pytest.approx(100.0)


def test_ema_seed_is_the_simple_average_then_the_recursion():
    values = np.array([2.0, 4.0, 6.0, 10.0, 0.0])
    out = ind.ema(values, 3)
    k = 2 / 4
    assert out[2] == 4.0
    assert out[3] == pytest.approx((10 - 4) * k + 4)
    assert out[4] == pytest.approx((0 - out[3]) * k + out[3])


def test_true_range_uses_the_previous_close():
    high = np.array([10.0, 12.0, 11.0, 20.0])
    low = np.array([9.0, 11.5, 8.0, 19.0])
    close = np.array([9.5, 11.8, 10.0, 19.5])
    expected = [np.nan, 12.0 - 9.5, 11.8 - 8.0, 20.0 - 10.0]
    np.testing.assert_array_equal(ind.true_range(high, low, close), expected)


def test_session_vwap_restarts_at_each_session_and_streams_the_same():
    rng = np.random.default_rng(3)
    pv = rng.integers(1, 10_000, 500).astype(float)
    volume = rng.integers(1, 100, 500).astype(float)
    pv[205] = volume[205] = 0  # a bar with no volume in the middle of a session
    session = np.repeat(np.arange(5), 100)
    batch = ind.session_vwap(pv, volume, session)
    state = ind.VwapState()
    same([state.update(p, v, s) for p, v, s in zip(pv, volume, session, strict=True)], batch)
    for start in range(0, 500, 100):
        assert batch[start] == pv[start] / volume[start]
        assert batch[start + 9] == pytest.approx(
            pv[start : start + 10].sum() / volume[start : start + 10].sum(), rel=1e-12
        )
    assert batch[205] == batch[204]
    assert np.isnan(ind.session_vwap([0.0], [0.0], [1])[0])
    assert len(ind.session_vwap([], [], [])) == 0


def test_market_structure_rule_cases():
    rise = np.array([1, 2, 3, 4, 5.0])
    assert ind.market_structure(rise, rise - 1, 5)[-1] == 1
    assert ind.market_structure(-rise, -rise - 1, 5)[-1] == -1
    assert list(ind.market_structure(rise, rise - 1, 5)[:4]) == [0, 0, 0, 0]
    zigzag = np.array([1, 3, 2, 4, 3.0])  # 2 higher steps of 4 and the last high is not the top
    assert ind.market_structure(zigzag, zigzag - 1, 5)[-1] == 0
    # 3 higher steps of 4 and the last high is the top: up, despite one lower step
    mostly_up = np.array([1, 2, 1.5, 3, 4.0])
    assert ind.market_structure(mostly_up, mostly_up - 0.5, 5)[-1] == 1
    # higher highs with lower lows (an expanding range) are neither
    wide_high = np.array([1, 2, 3, 4, 5.0])
    assert ind.market_structure(wide_high, -wide_high, 5)[-1] == 0


def test_structure_state_equals_market_structure(walk):
    high, low, _ = walk
    for lookback in (2, 5, 8):
        state = ind.StructureState(lookback)
        streamed = [state.update(h, lo) for h, lo in zip(high, low, strict=True)]
        batch = ind.market_structure(high, low, lookback)
        assert streamed == batch.tolist()
        assert {-1, 0, 1} <= set(streamed)


def test_rolling_window_percentile_and_median_match_numpy():
    rng = np.random.default_rng(11)
    values = rng.random(400)
    window = ind.RollingWindow(50)
    for i, value in enumerate(values):
        window.append(value)
        recent = values[max(0, i - 49) : i + 1]
        assert len(window) == len(recent)
        assert window.percentile(90) == pytest.approx(np.percentile(recent, 90), abs=1e-12)
        assert window.median() == pytest.approx(np.median(recent), abs=1e-12)
    window.append(float("nan"))  # ignored
    assert len(window) == 50
    assert np.isnan(ind.RollingWindow(3).median())


@pytest.mark.parametrize(
    "call",
    [
        lambda: ind.ema(np.ones(5), 0),
        lambda: ind.EmaState(2.5),
        lambda: ind.adx(np.ones(5), np.ones(5), np.ones(5), 1),
        lambda: ind.AtrState(0),
        lambda: ind.market_structure(np.ones(5), np.ones(5), 1),
    ],
)
def test_bad_periods_are_refused(call):
    with pytest.raises(ValueError, match="period must be an integer"):
        call()


def test_short_inputs_are_all_warm_up():
    short = np.array([1.0, 2.0])
    assert np.isnan(ind.ema(short, 3)).all()
    assert np.isnan(ind.atr(short, short, short, 14)).all()
    assert all(np.isnan(a).all() for a in ind.adx(short, short, short, 14))
    assert all(len(a) == 0 for a in ind.adx(np.empty(0), np.empty(0), np.empty(0)))
