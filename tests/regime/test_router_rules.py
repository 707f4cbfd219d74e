"""The regime router: each rule that approves or rejects, sizing, brackets, unknown patterns."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from pydantic import ValidationError
from tradebot_plugins.routers.regime_router import (
    ALL_PATTERNS,
    CONTINUATION_PATTERNS,
    DEFAULT_BRACKETS,
    REVERSAL_PATTERNS,
    RegimeRouter,
    RegimeRouterSettings,
)

from tradebot_core.components import PluginContext
from tradebot_core.config import TradebotConfig
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.plugins import PluginManager
from tradebot_core.types import Direction, Regime, RegimeState, Signal

LONG, SHORT = Direction.LONG, Direction.SHORT
# the direction each built-in detector gives its pattern (docs/patterns.md)
NATURAL = {
    "buy_imbalance": LONG,
    "sell_imbalance": SHORT,
    "stacked_buy_imbalance": LONG,
    "stacked_sell_imbalance": SHORT,
    "buying_exhaustion": SHORT,
    "selling_exhaustion": LONG,
    "buying_absorption": SHORT,
    "selling_absorption": LONG,
    "bearish_delta_divergence": SHORT,
    "bullish_delta_divergence": LONG,
    "unfinished_business_high": LONG,
    "unfinished_business_low": SHORT,
}


def context(quantity=1):
    return PluginContext(
        "MES", InstrumentRegistry(), 300, None, config=TradebotConfig(quantity=quantity)
    )


def router(quantity=1, **settings):
    return RegimeRouter(RegimeRouterSettings(**settings), context(quantity))


def signal(pattern="buy_imbalance", direction=None, strength=0.9):
    return Signal(
        pattern=pattern,
        direction=direction or NATURAL.get(pattern, LONG),
        price=Decimal("5000.25"),
        bar_ts_ns=0,
        strength=strength,
        reason="test",
    )


def regime(kind, confidence=0.6, close=5000.0, vwap=5000.0, atr=2.0):
    return RegimeState(
        regime=kind,
        confidence=confidence,
        bar_ts_ns=0,
        reason="because",
        indicators={"close": close, "vwap": vwap, "atr": atr},
    )


def test_every_pattern_has_a_category_and_a_default_bracket():
    assert set(NATURAL) == set(ALL_PATTERNS) == set(DEFAULT_BRACKETS)
    assert not set(REVERSAL_PATTERNS) & set(CONTINUATION_PATTERNS)


@pytest.mark.parametrize("pattern", sorted(NATURAL))
def test_no_trade_rejects_everything(pattern):
    decision = router().route(signal(pattern), regime(Regime.NO_TRADE, 1.0))
    assert not decision.approved
    assert decision.reasons[-1] == "rule: because"  # the classifier's reason
    warming = regime(Regime.NO_TRADE, 1.0).model_copy(update={"reason": "warming up (12/28 bars)"})
    decision = router().route(signal(pattern), warming)
    assert decision.reasons[-1] == "rule: warming up (12/28 bars)"
    blank = regime(Regime.NO_TRADE, 1.0).model_copy(update={"reason": ""})
    assert router().route(signal(pattern), blank).reasons[-1] == "rule: NO_TRADE: nothing trades"


@pytest.mark.parametrize("pattern", sorted(NATURAL))
def test_trends_take_only_their_own_direction(pattern):
    r = router()
    up = r.route(signal(pattern), regime(Regime.TRENDING_UP))
    down = r.route(signal(pattern), regime(Regime.TRENDING_DOWN))
    is_long = NATURAL[pattern] is LONG
    assert up.approved is is_long
    assert down.approved is not is_long
    rejected = down if is_long else up
    assert rejected.reasons[-1] in (
        "rule: TRENDING_UP takes longs only",
        "rule: TRENDING_DOWN takes shorts only",
    )
    approved = up if is_long else down
    assert approved.intent.direction is NATURAL[pattern]


@pytest.mark.parametrize("pattern", REVERSAL_PATTERNS)
def test_ranging_takes_reversal_patterns_anywhere(pattern):
    decision = router().route(signal(pattern), regime(Regime.RANGING, close=5000, vwap=5000))
    assert decision.approved
    assert decision.reasons[2] == f"rule: RANGING takes reversal patterns: {pattern} " + (
        NATURAL[pattern].value
    )


@pytest.mark.parametrize("pattern", CONTINUATION_PATTERNS)
def test_ranging_takes_other_patterns_only_when_they_fade_the_move(pattern):
    r = router()  # ranging_fade_atr 1.0, ATR 2.0: the signal must be 2 points past VWAP
    sign = NATURAL[pattern].sign
    faded = regime(Regime.RANGING, close=5000 - 2.5 * sign, vwap=5000)
    near = regime(Regime.RANGING, close=5000 - 1.5 * sign, vwap=5000)
    chasing = regime(Regime.RANGING, close=5000 + 2.5 * sign, vwap=5000)
    assert r.route(signal(pattern), faded).approved
    assert "RANGING takes fades" in r.route(signal(pattern), faded).reasons[2]
    for state in (near, chasing):
        decision = r.route(signal(pattern), state)
        assert not decision.approved
        assert "RANGING takes reversals or fades of >= 1 ATR" in decision.reasons[-1]


def test_ranging_fade_threshold_and_missing_indicators():
    sig = signal("buy_imbalance")
    assert router(ranging_fade_atr=0.5).route(sig, regime(Regime.RANGING, close=4999)).approved
    assert not router().route(sig, regime(Regime.RANGING, close=4999)).approved
    off = router(ranging_fade_atr=None).route(sig, regime(Regime.RANGING, close=4990))
    assert off.reasons[-1] == "rule: RANGING takes reversal patterns only, not buy_imbalance"
    blind = router().route(sig, regime(Regime.RANGING, vwap=math.nan))
    assert not blind.approved and "no VWAP/ATR" in blind.reasons[-1]
    no_indicators = RegimeState(regime=Regime.RANGING, confidence=0.5, bar_ts_ns=0)
    assert "no VWAP/ATR" in router().route(sig, no_indicators).reasons[-1]


def test_ranging_uses_the_signal_price_without_a_close():
    # signal price 5000.25, VWAP 5003, ATR 2: a long 1.4 ATR below VWAP fades
    state = RegimeState(
        regime=Regime.RANGING,
        confidence=0.5,
        bar_ts_ns=0,
        indicators={"vwap": 5003.0, "atr": 2.0},
    )
    decision = router().route(signal("buy_imbalance"), state)
    assert decision.approved
    assert "1.4 ATR below VWAP" in decision.reasons[2]


@pytest.mark.parametrize(("strength", "approved"), [(0.79, False), (0.8, True), (1.0, True)])
def test_volatile_takes_only_strong_signals(strength, approved):
    decision = router().route(signal(strength=strength), regime(Regime.VOLATILE))
    assert decision.approved is approved
    if not approved:
        assert decision.reasons[-1] == "rule: VOLATILE needs strength >= 0.8, got 0.79"
    assert (
        router(volatile_min_strength=0.5)
        .route(signal(strength=0.6), regime(Regime.VOLATILE))
        .approved
    )


def test_enabled_lists_override_one_regime_and_keep_the_others():
    r = router(enabled={Regime.TRENDING_UP: ["stacked_buy_imbalance"]})
    rejected = r.route(signal("buy_imbalance"), regime(Regime.TRENDING_UP))
    assert rejected.reasons[-1] == "rule: buy_imbalance is not enabled in TRENDING_UP"
    assert r.route(signal("stacked_buy_imbalance"), regime(Regime.TRENDING_UP)).approved
    assert r.route(signal("sell_imbalance"), regime(Regime.TRENDING_DOWN)).approved


def test_unknown_patterns_are_rejected_unless_enabled_then_take_the_default_bracket():
    mine = signal("my_pattern", LONG)
    rejected = router().route(mine, regime(Regime.TRENDING_UP))
    assert rejected.reasons[-1] == "rule: my_pattern is not enabled in TRENDING_UP"
    r = router(
        enabled={Regime.TRENDING_UP: ["my_pattern"]},
        default_bracket={"stop_ticks": 5, "target_ticks": 7},
    )
    intent = r.route(mine, regime(Regime.TRENDING_UP)).intent
    assert (intent.stop_ticks, intent.target_ticks) == (5, 7)
    assert intent.reasons[-1] == "bracket: stop 5t, target 7t (default)"


@pytest.mark.parametrize("pattern", sorted(NATURAL))
def test_each_pattern_gets_its_own_bracket(pattern):
    kind = Regime.TRENDING_UP if NATURAL[pattern] is LONG else Regime.TRENDING_DOWN
    intent = router().route(signal(pattern), regime(kind)).intent
    expected = DEFAULT_BRACKETS[pattern]
    assert (intent.stop_ticks, intent.target_ticks) == (expected.stop_ticks, expected.target_ticks)
    custom = router(brackets={pattern: {"stop_ticks": 3, "target_ticks": 9}})
    intent = custom.route(signal(pattern), regime(kind)).intent
    assert (intent.stop_ticks, intent.target_ticks) == (3, 9)
    assert intent.reasons[-1] == f"bracket: stop 3t, target 9t ({pattern})"


def test_custom_brackets_keep_the_other_defaults():
    r = router(brackets={"buy_imbalance": {"stop_ticks": 3, "target_ticks": 9}})
    assert r.s.brackets["sell_imbalance"] == DEFAULT_BRACKETS["sell_imbalance"]


@pytest.mark.parametrize(
    ("quantity", "confidence", "expected"),
    [(2, 0.0, 2), (2, 0.79, 2), (2, 0.8, 4), (3, 0.95, 6), (1, 1.0, 2)],
)
def test_size_follows_the_highest_confidence_step_reached(quantity, confidence, expected):
    decision = router(quantity).route(signal(), regime(Regime.TRENDING_UP, confidence))
    assert decision.intent.quantity == expected
    step = 2 if confidence >= 0.8 else 1
    assert (
        f"size: {quantity} x {step} (confidence >= {0.8 if step == 2 else 0:g})"
        in (decision.reasons[3])
    )


def test_size_rounds_down_but_never_to_zero():
    steps = [(0.0, 0.5), (0.5, 1.5)]
    assert (
        router(1, size_by_confidence=steps)
        .route(signal(), regime(Regime.TRENDING_UP, 0.2))
        .intent.quantity
        == 1
    )  # 1 x 0.5 = 0.5 -> at least 1
    assert (
        router(3, size_by_confidence=steps)
        .route(signal(), regime(Regime.TRENDING_UP, 0.6))
        .intent.quantity
        == 4
    )  # 3 x 1.5 = 4.5 -> 4
    assert (
        router(5, size_by_confidence=steps)
        .route(signal(), regime(Regime.TRENDING_UP, 0.2))
        .intent.quantity
        == 2
    )  # 5 x 0.5 = 2.5 -> 2


def test_confidence_below_the_lowest_step_is_rejected():
    r = router(size_by_confidence=[{"min_confidence": 0.6, "multiplier": 1}])
    low = r.route(signal(), regime(Regime.TRENDING_UP, 0.59))
    assert not low.approved
    assert low.reasons[-1] == "size: confidence 0.59 is below the lowest step 0.6"
    assert r.route(signal(), regime(Regime.TRENDING_UP, 0.6)).approved


def test_an_approved_intent_carries_the_whole_chain():
    sig = signal("stacked_buy_imbalance")
    state = regime(Regime.TRENDING_UP, 0.85)
    decision = router(2).route(sig, state)
    intent = decision.intent
    assert intent.symbol == "MES" and intent.signal == sig and intent.regime == state
    assert intent.reasons == decision.reasons
    assert decision.reasons == (
        "signal: stacked_buy_imbalance long at 5000.25 (strength 0.90)",
        "regime: TRENDING_UP (0.85): because",
        "rule: TRENDING_UP takes longs: stacked_buy_imbalance long",
        "size: 2 x 2 (confidence >= 0.8) = 4",
        "bracket: stop 8t, target 16t (stacked_buy_imbalance)",
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"brackets": {"buy_imbalance": {"stop_ticks": 0, "target_ticks": 4}}}, "stop_ticks"),
        ({"size_by_confidence": []}, "at least 1 item"),
        ({"size_by_confidence": [[0.5, 1], [0.5, 2]]}, "two steps start at the same"),
        ({"size_by_confidence": [[1.5, 1]]}, "less than or equal to 1"),
        ({"size_by_confidence": [[0.0, 0]]}, "greater than 0"),
        ({"enabled": {"SIDEWAYS": []}}, "SIDEWAYS"),
        ({"volatile_min_strength": 2}, "less than or equal to 1"),
        ({"ranging_fade_atr": -1}, "greater than or equal to 0"),
    ],
)
def test_bad_settings_are_config_errors(settings, message):
    with pytest.raises(ValidationError, match=message):
        RegimeRouterSettings(**settings)


def test_size_steps_are_sorted_and_accept_pairs():
    settings = RegimeRouterSettings(size_by_confidence=[[0.8, 3], [0.0, 1]])
    assert [(s.min_confidence, s.multiplier) for s in settings.size_by_confidence] == [
        (0.0, 1.0),
        (0.8, 3.0),
    ]


def test_the_plugin_registers_the_regime_router():
    manager = PluginManager()
    assert manager.get("router", "regime", "router.plugin").cls is RegimeRouter
    built = manager.build(
        "router", "regime", {"volatile_min_strength": 0.9}, ("router", "regime"), context(3)
    )
    assert built.quantity == 3 and built.s.volatile_min_strength == 0.9
