"""The six detectors on the real ES session in tests/data (60 s bars), every bar checked
against the rules written out again in plain Python: the bars are rebuilt trade by trade from
the ticks, prices are dict keys, ratios are Fractions; nothing is shared with the detectors."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import databento as db
import pytest
from tradebot_plugins.detectors.absorption import AbsorptionDetector
from tradebot_plugins.detectors.delta_divergence import DeltaDivergenceDetector
from tradebot_plugins.detectors.exhaustion import ExhaustionDetector
from tradebot_plugins.detectors.imbalance import ImbalanceDetector
from tradebot_plugins.detectors.stacked_imbalance import StackedImbalanceDetector
from tradebot_plugins.detectors.unfinished_business import UnfinishedBusinessDetector
from tradebot_plugins.feeds.dbn_ticks import records_to_ticks

from tradebot_core.footprint import FootprintEngine
from tradebot_core.instruments import InstrumentRegistry

ES = InstrumentRegistry()["ES"]
MINUTE_NS = 60 * 10**9
DETECTORS = (
    ImbalanceDetector,
    StackedImbalanceDetector,
    ExhaustionDetector,
    AbsorptionDetector,
    DeltaDivergenceDetector,
    UnfinishedBusinessDetector,
)
CONFIGS = {
    "defaults": {},
    "loose": {
        "imbalance": {"ratio": 2.5, "min_volume": 3, "zero_weak_side": "as_one"},
        "stacked_imbalance": {"ratio": 2.0, "min_volume": 2, "levels": 2},
        "exhaustion": {"levels": 2, "min_start_volume": 3, "extreme_fraction": 0.2},
        "absorption": {"zone_levels": 1, "heavy_ratio": 2.0, "min_volume": 10},
        "delta_divergence": {"lookback": 3, "min_volume": 0, "use": "either"},
        "unfinished_business": {"min_each": 2},
    },
}


@dataclass
class PlainBar:
    ts_open: int
    open: int = 0
    close: int = 0
    bid: dict[int, int] = field(default_factory=dict)  # price in ticks -> contracts
    ask: dict[int, int] = field(default_factory=dict)
    other: int = 0  # trades with no aggressor side
    traded: set[int] = field(default_factory=set)  # every price that traded, any side
    cum_delta: int = 0

    @property
    def prices(self) -> list[int]:
        return sorted(self.traded)

    @property
    def low(self) -> int:
        return self.prices[0]

    @property
    def high(self) -> int:
        return self.prices[-1]

    @property
    def volume(self) -> int:
        return sum(self.bid.values()) + sum(self.ask.values()) + self.other

    @property
    def delta(self) -> int:
        return sum(self.ask.values()) - sum(self.bid.values())

    def b(self, price: int) -> int:
        return self.bid.get(price, 0)

    def a(self, price: int) -> int:
        return self.ask.get(price, 0)


def plain_bars(ticks) -> list[PlainBar]:
    bars: list[PlainBar] = []
    cum = 0
    for ts, price, size, side in ticks.tolist():
        p = price // ES.tick_fixed
        start = ts - ts % MINUTE_NS
        if not bars or bars[-1].ts_open != start:
            if bars:
                cum += bars[-1].delta
                bars[-1].cum_delta = cum
            bars.append(PlainBar(start, open=p))
        bar = bars[-1]
        bar.close = p
        bar.traded.add(p)
        if side == -1:
            bar.bid[p] = bar.bid.get(p, 0) + size
        elif side == 1:
            bar.ask[p] = bar.ask.get(p, 0) + size
        else:
            bar.other += size
    bars[-1].cum_delta = cum + bars[-1].delta
    return bars


# -- the rules, again ----------------------------------------------------------------------------


def imbalance_levels(bar: PlainBar, s: dict) -> tuple[list[int], list[int]]:
    ratio, minimum = Fraction(str(s.get("ratio", 3.0))), s.get("min_volume", 10)
    mode = s.get("zero_weak_side", "imbalance")

    def beats(strong: int, weak: int) -> bool:
        if strong < minimum:
            return False
        if weak == 0:
            return {"imbalance": True, "as_one": strong >= ratio, "ignore": False}[mode]
        return strong >= ratio * weak

    buys = [p for p in range(bar.low + 1, bar.high + 1) if beats(bar.a(p), bar.b(p - 1))]
    sells = [p for p in range(bar.low, bar.high) if beats(bar.b(p), bar.a(p + 1))]
    return buys, sells


def expect_imbalance(bar: PlainBar, s: dict) -> dict[str, int]:
    buys, sells = imbalance_levels(bar, s)
    found = {}
    if buys:  # highest ratio (0 counted as 1), then volume, then the lower price
        found["buy_imbalance"] = max(
            buys, key=lambda p: (Fraction(bar.a(p), max(bar.b(p - 1), 1)), bar.a(p), -p)
        )
    if sells:
        found["sell_imbalance"] = max(
            sells, key=lambda p: (Fraction(bar.b(p), max(bar.a(p + 1), 1)), bar.b(p), -p)
        )
    return found


def longest_stack(prices: list[int]) -> tuple[int, int]:
    """(length, lowest price) of the longest run of consecutive prices; the lower on a tie."""
    best = (0, 0)
    for p in prices:
        if p - 1 in prices:
            continue
        length = 1
        while p + length in prices:
            length += 1
        if length > best[0]:
            best = (length, p)
    return best


def expect_stacked(bar: PlainBar, s: dict) -> dict[str, int]:
    need = s.get("levels", 3)
    buys, sells = imbalance_levels(bar, s)
    found = {}
    length, bottom = longest_stack(buys)
    if length >= need:
        found["stacked_buy_imbalance"] = bottom
    length, bottom = longest_stack(sells)
    if length >= need:
        found["stacked_sell_imbalance"] = bottom + length - 1
    return found


def expect_exhaustion(bar: PlainBar, s: dict) -> dict[str, int]:
    k = s.get("levels", 3)
    cap, fraction = s.get("max_extreme_volume", 5), Fraction(str(s.get("extreme_fraction", 0.1)))
    start = s.get("min_start_volume", 10)
    n = bar.high - bar.low + 1
    if n < k + 1:
        return {}
    average = Fraction(bar.volume, n)
    found = {}
    for pattern, prices, side in (
        ("buying_exhaustion", range(bar.high, bar.high - k, -1), bar.a),
        ("selling_exhaustion", range(bar.low, bar.low + k), bar.b),
    ):
        volumes = [side(p) for p in prices]  # from the extreme inward
        falling = all(volumes[i] < volumes[i + 1] for i in range(k - 1))
        thin = volumes[0] <= cap or volumes[0] <= fraction * average
        if falling and thin and volumes[-1] >= start:
            found[pattern] = prices[0]
    return found


def expect_absorption(bar: PlainBar, s: dict) -> dict[str, int]:
    z, heavy = s.get("zone_levels", 2), Fraction(str(s.get("heavy_ratio", 3.0)))
    minimum, away = s.get("min_volume", 100), Fraction(str(s.get("close_away", 0.5)))
    n = bar.high - bar.low + 1
    if n < z + 2:
        return {}
    span = bar.high - bar.low
    found = {}
    low_zone = range(bar.low, bar.low + z)
    sold = sum(bar.b(p) for p in low_zone)
    rest = sum(bar.b(p) for p in range(bar.low + z, bar.high + 1))
    if (
        sold >= minimum
        and sold > sum(bar.a(p) for p in low_zone)
        and Fraction(sold, z) >= heavy * Fraction(rest, n - z)
        and bar.close - bar.low >= away * span
    ):
        found["buying_absorption"] = bar.low
    high_zone = range(bar.high - z + 1, bar.high + 1)
    bought = sum(bar.a(p) for p in high_zone)
    rest = sum(bar.a(p) for p in range(bar.low, bar.high - z + 1))
    if (
        bought >= minimum
        and bought > sum(bar.b(p) for p in high_zone)
        and Fraction(bought, z) >= heavy * Fraction(rest, n - z)
        and bar.high - bar.close >= away * span
    ):
        found["selling_absorption"] = bar.high
    return found


def expect_divergence(bars: list[PlainBar], s: dict) -> dict[str, int]:
    k, use, minimum = s.get("lookback", 5), s.get("use", "bar"), s.get("min_volume", 100)
    bar, before = bars[-1], bars[-k - 1 : -1]
    if len(bars) <= k or bar.volume < minimum or bar.volume == 0:
        return {}
    found = {}
    by_bar = bar.delta < 0
    by_cum = bar.cum_delta < max(b.cum_delta for b in before)
    if bar.high > max(b.high for b in before) and (
        (use in ("bar", "either") and by_bar) or (use in ("cumulative", "either") and by_cum)
    ):
        found["bearish_delta_divergence"] = bar.high
    by_bar = bar.delta > 0
    by_cum = bar.cum_delta > min(b.cum_delta for b in before)
    if bar.low < min(b.low for b in before) and (
        (use in ("bar", "either") and by_bar) or (use in ("cumulative", "either") and by_cum)
    ):
        found["bullish_delta_divergence"] = bar.low
    return found


def expect_unfinished(bar: PlainBar, s: dict) -> dict[str, int]:
    need = s.get("min_each", 1)
    if bar.high == bar.low:
        return {}
    found = {}
    if bar.b(bar.high) >= need and bar.a(bar.high) >= need:
        found["unfinished_business_high"] = bar.high
    if bar.b(bar.low) >= need and bar.a(bar.low) >= need:
        found["unfinished_business_low"] = bar.low
    return found


# -- the session ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def es_ticks(shared_data):
    path = shared_data / "databento" / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
    return records_to_ticks(db.DBNStore.from_file(path).to_ndarray())


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_every_signal_matches_the_rule_recomputed_from_the_trades(es_ticks, config):
    settings = CONFIGS[config]
    detectors = [cls(cls.Settings(**settings.get(cls.name, {})), None) for cls in DETECTORS]
    plain = plain_bars(es_ticks)
    engine = FootprintEngine(ES, 60)
    engine.update(es_ticks, reveal=False)
    engine.flush(reveal=False)
    assert engine.staged == len(plain)
    fired = {cls.name: 0 for cls in DETECTORS}
    for k, bar in enumerate(plain):
        engine.release_next()
        history = engine.history
        assert int(history.bars[-1]["ts_open"]) == bar.ts_open
        expected = {
            "imbalance": expect_imbalance(bar, settings.get("imbalance", {})),
            "stacked_imbalance": expect_stacked(bar, settings.get("stacked_imbalance", {})),
            "exhaustion": expect_exhaustion(bar, settings.get("exhaustion", {})),
            "absorption": expect_absorption(bar, settings.get("absorption", {})),
            "delta_divergence": expect_divergence(
                plain[: k + 1], settings.get("delta_divergence", {})
            ),
            "unfinished_business": expect_unfinished(bar, settings.get("unfinished_business", {})),
        }
        for detector in detectors:
            signals = detector.on_bar_closed(history)
            got = {s.pattern: ES.to_ticks(ES.to_fixed(s.price)) for s in signals}
            assert got == expected[detector.name], (detector.name, k)
            for signal in signals:
                assert signal.bar_ts_ns == bar.ts_open and signal.symbol == "ES"
                assert 0.0 <= signal.strength <= 1.0
                assert str(signal.price) in signal.reason
                assert signal.direction.value == (
                    "long"
                    if signal.pattern
                    in {
                        "buy_imbalance",
                        "stacked_buy_imbalance",
                        "selling_exhaustion",
                        "buying_absorption",
                        "bullish_delta_divergence",
                        "unfinished_business_high",
                    }
                    else "short"
                )
            fired[detector.name] += len(signals)
    if config == "loose":
        assert all(fired.values()), fired  # every rule was exercised on real data
    else:
        assert fired["imbalance"] > 10 and fired["unfinished_business"] > 10


def test_imbalance_reasons_carry_the_numbers_of_the_level(es_ticks):
    detector = ImbalanceDetector(ImbalanceDetector.Settings(), None)
    engine = FootprintEngine(ES, 60)
    engine.update(es_ticks, reveal=False)
    engine.flush(reveal=False)
    bars = iter(plain_bars(es_ticks))
    checked = 0
    while engine.staged:
        engine.release_next()
        bar = next(bars)
        for signal in detector.on_bar_closed(engine.history):
            p = ES.to_ticks(ES.to_fixed(signal.price))
            if signal.pattern == "buy_imbalance":
                strong, weak, q = bar.a(p), bar.b(p - 1), p - 1
                head = f"ask {strong} at {signal.price} vs bid {weak} at {ES.ticks_to_decimal(q)}"
            else:
                strong, weak, q = bar.b(p), bar.a(p + 1), p + 1
                head = f"bid {strong} at {signal.price} vs ask {weak} at {ES.ticks_to_decimal(q)}"
            assert signal.reason.startswith(head)
            assert signal.strength == round(min(1.0, strong / max(weak, 1) / 6.0), 4)
            checked += 1
    assert checked > 10
