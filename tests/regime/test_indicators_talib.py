"""EMA, ATR, ADX, +DI and -DI against TA-Lib, on real 1-minute 6E bars.

The committed fixture (TA-Lib's values on the first 3,000 bars, see fixtures/README.md) is always
checked; when TA-Lib is importable the whole month (30,000 bars) and a series with flat stretches
are also checked live.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from tradebot_core import indicators as ind

FIXTURE = Path(__file__).parent / "fixtures" / "talib_6EH4_1min.npz"
BARS_CSV = Path("bars") / "6EH4.XCME_1min_bars_20240101_20240131.csv.gz"
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def month(shared_data):
    with gzip.open(shared_data / BARS_CSV, "rt") as handle:
        rows = list(csv.DictReader(handle))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("high", "low", "close")}


@pytest.fixture(scope="module")
def reference(month):
    data = np.load(FIXTURE)
    n = int(data["bars"])
    bars = {k: v[:n] for k, v in month.items()}
    digest = hashlib.sha256()
    for key in ("high", "low", "close"):
        digest.update(np.ascontiguousarray(bars[key], dtype="<f8").tobytes())
    assert digest.hexdigest() == str(data["inputs_sha256"]), "the sample bars changed"
    return bars, data


def agree(ours, theirs, min_valid):
    """Same warm-up (NaN) positions, then equal within TOLERANCE."""
    assert ours.shape == theirs.shape
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)), "warm-up lengths differ"
    valid = ~np.isnan(theirs)
    assert valid.sum() >= min_valid
    assert np.max(np.abs(ours[valid] - theirs[valid])) < TOLERANCE


def ours_all(high, low, close):
    adx, plus_di, minus_di = ind.adx(high, low, close, 14)
    return {
        "ema9": ind.ema(close, 9),
        "ema21": ind.ema(close, 21),
        "atr14": ind.atr(high, low, close, 14),
        "adx14": adx,
        "plus_di14": plus_di,
        "minus_di14": minus_di,
    }


@pytest.mark.parametrize("key", ["ema9", "ema21", "atr14", "adx14", "plus_di14", "minus_di14"])
def test_matches_the_committed_talib_fixture(reference, key):
    bars, data = reference
    ours = ours_all(bars["high"], bars["low"], bars["close"])[key]
    agree(ours, data[key], min_valid=len(ours) - 30)


def test_streaming_states_match_the_talib_fixture(reference):
    bars, data = reference
    fast, slow, atr, adx = ind.EmaState(9), ind.EmaState(21), ind.AtrState(14), ind.AdxState(14)
    rows = []
    for h, lo, c in zip(bars["high"], bars["low"], bars["close"], strict=True):
        a = adx.update(h, lo, c)
        di = (adx.plus_di, adx.minus_di) if a == a else (np.nan, np.nan)
        rows.append((fast.update(c), slow.update(c), atr.update(h, lo, c), a, *di))
    streamed = np.array(rows).T
    for row, key in zip(streamed, ("ema9", "ema21", "atr14", "adx14"), strict=False):
        agree(row, data[key], min_valid=len(row) - 30)
    valid = ~np.isnan(streamed[3])
    assert np.max(np.abs(streamed[4][valid] - data["plus_di14"][valid])) < TOLERANCE
    assert np.max(np.abs(streamed[5][valid] - data["minus_di14"][valid])) < TOLERANCE


def test_matches_live_talib_on_the_whole_month(month):
    talib = pytest.importorskip("talib")
    h, lo, c = month["high"], month["low"], month["close"]
    ours = ours_all(h, lo, c)
    theirs = {
        "ema9": talib.EMA(c, 9),
        "ema21": talib.EMA(c, 21),
        "atr14": talib.ATR(h, lo, c, 14),
        "adx14": talib.ADX(h, lo, c, 14),
        "plus_di14": talib.PLUS_DI(h, lo, c, 14),
        "minus_di14": talib.MINUS_DI(h, lo, c, 14),
    }
    for key, values in theirs.items():
        agree(ours[key], values, min_valid=29_900)
    agree(ind.true_range(h, lo, c), talib.TRANGE(h, lo, c), min_valid=29_900)


@pytest.mark.parametrize("period", [2, 3, 14])
def test_matches_live_talib_through_flat_stretches(period):
    """Flat bars make true range zero: TA-Lib then reports DI 0 and leaves ADX unchanged."""
    talib = pytest.importorskip("talib")
    rng = np.random.default_rng(period)
    close = np.r_[
        np.full(40, 100.0),
        100 + np.cumsum(rng.integers(-3, 4, 200)),
        np.full(30, 120.0),
        120 + np.cumsum(rng.integers(-3, 4, 100)),
    ]
    high = close + rng.integers(0, 3, len(close))
    low = close - rng.integers(0, 3, len(close))
    high[:40] = low[:40] = 100
    high[240:270] = low[240:270] = 120
    adx, plus_di, minus_di = ind.adx(high, low, close, period)
    agree(adx, talib.ADX(high, low, close, period), min_valid=300)
    agree(plus_di, talib.PLUS_DI(high, low, close, period), min_valid=300)
    agree(minus_di, talib.MINUS_DI(high, low, close, period), min_valid=300)
    agree(ind.atr(high, low, close, period), talib.ATR(high, low, close, period), min_valid=300)
    assert (plus_di[period:40] == 0).all()  # the flat start: TR zero
