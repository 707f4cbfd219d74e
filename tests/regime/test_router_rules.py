"""The regime router: every rule that approves or rejects, sizing and brackets."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from plugins.routers.regime_router import RegimeRouter, RegimeRouterSettings
from tradebot_core.components import PluginContext
from tradebot_core.config import TradebotConfig
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import Direction, Regime, RegimeState, Signal


def router(quantity=1, **settings):
    context = PluginContext(
        "MES", InstrumentRegistry(), 300, None, config=TradebotConfig(quantity=quantity)
    )
    return RegimeRouter(RegimeRouterSettings(**settings), context)


def signal(pattern="buy_imbalance", direction=Direction.LONG, strength=0.9):
    return Signal(
        pattern=pattern,
        direction=direction,
        price=Decimal("5000.25"),
        bar_ts_ns=0,
        strength=strength,
        reason="test",
    )


def regime(kind, confidence=0.6):
    return RegimeState(regime=kind, confidence=confidence, bar_ts_ns=0, reason="because")


@pytest.mark.parametrize(
    ("kind", "sig", "approved", "why"),
    [
        (Regime.NO_TRADE, signal(), False, "no trading in NO_TRADE"),
        (Regime.TRENDING_UP, signal(), True, ""),
        (Regime.TRENDING_UP, signal("sell_imbalance", Direction.SHORT), False, "longs only"),
        (Regime.TRENDING_DOWN, signal("sell_imbalance", Direction.SHORT), True, ""),
        (Regime.TRENDING_DOWN, signal(), False, "shorts only"),
        (Regime.RANGING, signal(), False, "buy_imbalance is not enabled in RANGING"),
        (Regime.RANGING, signal("selling_exhaustion"), True, ""),
        (Regime.VOLATILE, signal(strength=0.79), False, "VOLATILE needs strength >= 0.8"),
        (Regime.VOLATILE, signal(strength=0.8), True, ""),
    ],
)
def test_rules_by_regime(kind, sig, approved, why):
    decision = router().route(sig, regime(kind))
    assert decision.approved is approved
    assert decision.reasons[0].startswith(f"signal: {sig.pattern}")
    assert decision.reasons[1].startswith(f"regime: {kind.value}")
    if not approved:
        assert why in decision.reasons[-1] and decision.reasons[-1].startswith("rule: ")


def test_size_follows_confidence_steps_and_brackets_follow_the_pattern():
    r = router(quantity=2, size_by_confidence=[(0.0, 1.0), (0.8, 2.0)])
    low = r.route(signal("stacked_buy_imbalance"), regime(Regime.TRENDING_UP, 0.79)).intent
    high = r.route(signal("stacked_buy_imbalance"), regime(Regime.TRENDING_UP, 0.8)).intent
    assert (low.quantity, high.quantity) == (2, 4)
    assert (high.stop_ticks, high.target_ticks) == (8, 16)
    assert "size: 2 x 2 = 4" in high.reasons


def test_size_never_rounds_to_zero_and_unknown_patterns_use_the_default_bracket():
    r = router(
        quantity=1, size_by_confidence=[(0.0, 0.5)], enabled={Regime.TRENDING_UP: ["my_pattern"]}
    )
    intent = r.route(signal("my_pattern"), regime(Regime.TRENDING_UP)).intent
    assert intent.quantity == 1
    assert (intent.stop_ticks, intent.target_ticks) == (8, 12)


def test_bad_bracket_is_a_config_error():
    with pytest.raises(ValidationError):
        RegimeRouterSettings(brackets={"buy_imbalance": {"stop_ticks": 0, "target_ticks": 4}})
