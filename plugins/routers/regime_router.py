"""The ``regime`` router: which signals trade in which regime, which way, how big.

Rules, in order (the first that rejects, rejects):

1. **NO_TRADE**: nothing trades.
2. The pattern must be enabled for the regime (``enabled``; by default every pattern in the
   trends, only reversal patterns in RANGING, every pattern in VOLATILE).
3. **Direction bias**: long only in TRENDING_UP, short only in TRENDING_DOWN.
4. **RANGING** is traded as mean reversion at the extremes: only reversal patterns
   (exhaustion, absorption, delta divergence, unfinished business).
5. **VOLATILE**: only signals with strength >= ``volatile_min_strength``.
6. **Size**: the config's ``quantity`` x the multiplier of the highest ``size_by_confidence``
   step the regime's confidence reaches, rounded down, at least 1.
7. **Stop and target** in ticks come from ``brackets`` by pattern (``default_bracket`` else).

Every decision carries its chain of reasons: the signal, the regime, the rule.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.types import Direction, OrderIntent, Regime, RegimeState, RouteDecision, Signal

REVERSAL_PATTERNS = (
    "buying_exhaustion",
    "selling_exhaustion",
    "buying_absorption",
    "selling_absorption",
    "bearish_delta_divergence",
    "bullish_delta_divergence",
    "unfinished_business_high",
    "unfinished_business_low",
)
CONTINUATION_PATTERNS = (
    "buy_imbalance",
    "sell_imbalance",
    "stacked_buy_imbalance",
    "stacked_sell_imbalance",
)
ALL_PATTERNS = CONTINUATION_PATTERNS + REVERSAL_PATTERNS


class Bracket(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    stop_ticks: int = Field(ge=1)
    target_ticks: int = Field(ge=1)


DEFAULT_BRACKETS = {
    "buy_imbalance": Bracket(stop_ticks=8, target_ticks=12),
    "sell_imbalance": Bracket(stop_ticks=8, target_ticks=12),
    "stacked_buy_imbalance": Bracket(stop_ticks=8, target_ticks=16),
    "stacked_sell_imbalance": Bracket(stop_ticks=8, target_ticks=16),
    "buying_exhaustion": Bracket(stop_ticks=6, target_ticks=12),
    "selling_exhaustion": Bracket(stop_ticks=6, target_ticks=12),
    "buying_absorption": Bracket(stop_ticks=6, target_ticks=12),
    "selling_absorption": Bracket(stop_ticks=6, target_ticks=12),
    "bearish_delta_divergence": Bracket(stop_ticks=8, target_ticks=16),
    "bullish_delta_divergence": Bracket(stop_ticks=8, target_ticks=16),
    "unfinished_business_high": Bracket(stop_ticks=8, target_ticks=8),
    "unfinished_business_low": Bracket(stop_ticks=8, target_ticks=8),
}


def _default_enabled() -> dict[Regime, list[str]]:
    return {
        Regime.TRENDING_UP: list(ALL_PATTERNS),
        Regime.TRENDING_DOWN: list(ALL_PATTERNS),
        Regime.RANGING: list(REVERSAL_PATTERNS),
        Regime.VOLATILE: list(ALL_PATTERNS),
        Regime.NO_TRADE: [],
    }


class RegimeRouterSettings(PluginSettings):
    enabled: dict[Regime, list[str]] = Field(default_factory=_default_enabled)
    """Patterns allowed per regime. A pattern not known here (a third-party one) is allowed
    wherever it is listed."""
    volatile_min_strength: float = Field(default=0.8, ge=0, le=1)
    size_by_confidence: list[tuple[float, float]] = Field(
        default_factory=lambda: [(0.0, 1.0), (0.8, 2.0)]
    )
    """Steps of (minimum confidence, size multiplier)."""
    brackets: dict[str, Bracket] = Field(default_factory=lambda: dict(DEFAULT_BRACKETS))
    default_bracket: Bracket = Bracket(stop_ticks=8, target_ticks=12)


class RegimeRouter:
    name = "regime"
    Settings = RegimeRouterSettings

    def __init__(self, settings: RegimeRouterSettings, context: PluginContext) -> None:
        self.s = settings
        self.symbol = context.symbol
        config = context.config
        self.quantity = config.quantity if config is not None else 1
        self.steps = sorted(settings.size_by_confidence)

    def route(self, signal: Signal, regime: RegimeState) -> RouteDecision:
        chain = [
            f"signal: {signal.pattern} {signal.direction.value} at {signal.price} "
            f"(strength {signal.strength:.2f})",
            f"regime: {regime.regime.value} ({regime.confidence:.2f})"
            + (f": {regime.reason}" if regime.reason else ""),
        ]
        why = self._rejects(signal, regime)
        if why:
            return RouteDecision(signal=signal, intent=None, reasons=(*chain, f"rule: {why}"))
        multiplier = max(m for c, m in self.steps if regime.confidence >= c)
        quantity = max(1, int(self.quantity * multiplier))
        bracket = self.s.brackets.get(signal.pattern, self.s.default_bracket)
        chain += [
            f"rule: {signal.pattern} allowed {signal.direction.value} in {regime.regime.value}",
            f"size: {self.quantity} x {multiplier:g} = {quantity}",
            f"bracket: stop {bracket.stop_ticks}t, target {bracket.target_ticks}t",
        ]
        intent = OrderIntent(
            symbol=self.symbol,
            direction=signal.direction,
            quantity=quantity,
            stop_ticks=bracket.stop_ticks,
            target_ticks=bracket.target_ticks,
            signal=signal,
            regime=regime,
            reasons=tuple(chain),
        )
        return RouteDecision(signal=signal, intent=intent, reasons=tuple(chain))

    def _rejects(self, signal: Signal, regime: RegimeState) -> str:
        kind = regime.regime
        if kind is Regime.NO_TRADE:
            return "no trading in NO_TRADE"
        if signal.pattern not in self.s.enabled.get(kind, []):
            return f"{signal.pattern} is not enabled in {kind.value}"
        if kind is Regime.TRENDING_UP and signal.direction is not Direction.LONG:
            return "TRENDING_UP takes longs only"
        if kind is Regime.TRENDING_DOWN and signal.direction is not Direction.SHORT:
            return "TRENDING_DOWN takes shorts only"
        if kind is Regime.RANGING and signal.pattern in CONTINUATION_PATTERNS:
            return "RANGING trades mean reversion: reversal patterns only"
        if kind is Regime.VOLATILE and signal.strength < self.s.volatile_min_strength:
            return (
                f"VOLATILE needs strength >= {self.s.volatile_min_strength:g}, "
                f"got {signal.strength:.2f}"
            )
        return ""


@hookimpl
def register_routers(register: Any) -> None:
    register(RegimeRouter)
