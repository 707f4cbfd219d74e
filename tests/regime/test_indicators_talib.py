"""Indicators against TA-Lib on a month of real 1-minute 6E bars, and streaming against batch."""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pytest

from tradebot_core import indicators as ind

talib = pytest.importorskip("talib")


@pytest.fixture(scope="module")
def bars(shared_data):
    path = shared_data / "bars" / "6EH4.XCME_1min_bars_20240101_20240131.csv.gz"
    with gzip.open(path, "rt") as handle:
        rows = list(csv.DictReader(handle))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("high", "low", "close", "volume")}


def agree(ours, theirs):
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)), "warm-up lengths differ"
    valid = ~np.isnan(theirs)
    assert valid.sum() > 29_000
    assert np.max(np.abs(ours[valid] - theirs[valid])) < 1e-9


@pytest.mark.parametrize("period", [9, 21])
def test_ema_matches_talib(bars, period):
    agree(ind.ema(bars["close"], period), talib.EMA(bars["close"], period))


def test_atr_matches_talib(bars):
    agree(
        ind.atr(bars["high"], bars["low"], bars["close"], 14),
        talib.ATR(bars["high"], bars["low"], bars["close"], 14),
    )


def test_adx_and_directional_indicators_match_talib(bars):
    h, lo, c = bars["high"], bars["low"], bars["close"]
    adx, plus_di, minus_di = ind.adx(h, lo, c, 14)
    agree(adx, talib.ADX(h, lo, c, 14))
    agree(plus_di, talib.PLUS_DI(h, lo, c, 14))
    agree(minus_di, talib.MINUS_DI(h, lo, c, 14))


def test_streaming_vwap_equals_the_vectorized_session_vwap():
    rng = np.random.default_rng(3)
    pv = rng.integers(1, 10_000, 500).astype(float)
    volume = rng.integers(1, 100, 500).astype(float)
    session = np.repeat(np.arange(5), 100)
    batch = ind.session_vwap(pv, volume, session)
    state = ind.VwapState()
    streamed = np.array(
        [state.update(p, v, s) for p, v, s in zip(pv, volume, session, strict=True)]
    )
    np.testing.assert_allclose(streamed, batch, rtol=1e-12)
    # each session restarts: the first bar's VWAP is its own price
    assert batch[100] == pv[100] / volume[100]


def test_market_structure_rule():
    up_high = np.array([1, 2, 3, 4, 5.0])
    up_low = up_high - 1
    assert ind.market_structure(up_high, up_low, 5)[-1] == 1
    assert ind.market_structure(-up_high, -up_high - 1, 5)[-1] == -1
    mixed_high = np.array([1, 3, 2, 4, 3.0])  # last high is not the highest
    assert ind.market_structure(mixed_high, mixed_high - 1, 5)[-1] == 0
    assert list(ind.market_structure(up_high, up_low, 5)[:4]) == [0, 0, 0, 0]


def test_streaming_helpers_equal_their_numpy_versions():
    rng = np.random.default_rng(11)
    high = np.cumsum(rng.integers(-2, 3, 400)).astype(float)
    low = high - rng.integers(0, 3, 400)
    batch = ind.market_structure(high, low, 5)
    streamed = [
        ind.structure_of(list(high[i - 4 : i + 1]), list(low[i - 4 : i + 1])) for i in range(4, 400)
    ]
    assert streamed == list(batch[4:])
    assert {-1, 0, 1} <= set(streamed)
    values = sorted(rng.random(137).tolist())
    for q in (0, 10, 50, 90, 99.5, 100):
        assert ind.percentile(values, q) == pytest.approx(np.percentile(values, q), abs=1e-12)
