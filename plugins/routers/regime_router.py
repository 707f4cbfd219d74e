"""The ``regime`` router: which signals trade in which regime, which way, how big, what bracket.

Rules, in order; the first that rejects ends the decision:

1. **NO_TRADE**: nothing trades; the rule says why in the classifier's words (its reason, e.g.
   ``warming up (12/28 bars)`` or ``session open (10 min)``), else ``NO_TRADE: nothing trades``.
2. **Enabled**: the pattern must be listed for the regime under ``enabled`` (by default every
   built-in pattern in every other regime). A pattern nobody listed (a third-party detector's,
   a typo) is rejected here, by name.
3. **Direction bias**: TRENDING_UP takes longs only, TRENDING_DOWN shorts only.
4. **RANGING** trades mean reversion at the extremes: a reversal pattern (``reversal_patterns``:
   exhaustion, absorption, delta divergence) passes; any other signal only when it fades the
   move, i.e. it goes long at least ``ranging_fade_atr`` ATRs below the session VWAP or short
   that far above it (from the regime's ``close``, ``vwap`` and ``atr`` indicators).
5. **VOLATILE**: only signals with strength >= ``volatile_min_strength``.
6. **Size**: the config's ``quantity`` x the multiplier of the highest ``size_by_confidence``
   step the regime's confidence reaches, rounded down, at least 1; below the lowest step the
   signal is rejected.
7. **Bracket**: stop and target ticks from ``brackets`` by pattern (``default_bracket`` for an
   enabled pattern with no bracket of its own).

Every decision carries its chain of reasons: the signal, the regime, the rule, then the size and
the bracket. docs/router.md has the settings and an example.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tradebot_core import (
    Direction,
    OrderIntent,
    PluginContext,
    PluginSettings,
    Regime,
    RegimeState,
    RouteDecision,
    Router,
    Signal,
    hookimpl,
)

log = logging.getLogger(__name__)

REVERSAL_PATTERNS = (
    "buying_exhaustion",
    "selling_exhaustion",
    "buying_absorption",
    "selling_absorption",
    "bearish_delta_divergence",
    "bullish_delta_divergence",
)
"""Patterns that call a turn: RANGING takes them wherever price is."""
CONTINUATION_PATTERNS = (
    "buy_imbalance",
    "sell_imbalance",
    "stacked_buy_imbalance",
    "stacked_sell_imbalance",
    "unfinished_business_high",
    "unfinished_business_low",
)
"""Patterns that follow the move (or point back at an unfinished extreme)."""
ALL_PATTERNS = CONTINUATION_PATTERNS + REVERSAL_PATTERNS
"""Every pattern the built-in detectors emit."""


class Bracket(BaseModel):
    """Stop and target distances from the entry, in ticks."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    stop_ticks: int = Field(ge=1)
    target_ticks: int = Field(ge=1)


class SizeStep(BaseModel):
    """From ``min_confidence`` up (to the next step), trade ``multiplier`` x the base quantity."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_confidence: float = Field(ge=0, le=1)
    multiplier: float = Field(gt=0, le=100)


DEFAULT_BRACKETS: dict[str, Bracket] = {
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


def default_enabled() -> dict[Regime, list[str]]:
    """Every built-in pattern in every regime but NO_TRADE (the rules then do the filtering)."""
    return {regime: [] if regime is Regime.NO_TRADE else list(ALL_PATTERNS) for regime in Regime}


class RegimeRouterSettings(PluginSettings):
    """Settings of the ``regime`` router (YAML: ``router: {plugin: regime, regime: {...}}``)."""

    enabled: dict[Regime, list[str]] = Field(default_factory=default_enabled)
    """Patterns allowed per regime; a regime left out keeps its default list."""
    reversal_patterns: list[str] = Field(default_factory=lambda: list(REVERSAL_PATTERNS))
    """Patterns RANGING takes without the fade test."""
    ranging_fade_atr: float | None = Field(default=1.0, ge=0)
    """RANGING: how many ATRs from VWAP a non-reversal signal must fade; null: never."""
    volatile_min_strength: float = Field(default=0.8, ge=0, le=1)
    size_by_confidence: list[SizeStep] = Field(
        default_factory=lambda: [
            SizeStep(min_confidence=0.0, multiplier=1.0),
            SizeStep(min_confidence=0.8, multiplier=2.0),
        ],
        min_length=1,
    )
    """Steps of confidence -> size multiplier; ``[[0.0, 1.0], [0.8, 2.0]]`` works too."""
    brackets: dict[str, Bracket] = Field(default_factory=lambda: dict(DEFAULT_BRACKETS))
    """Stop/target per pattern; a pattern left out keeps its default bracket."""
    default_bracket: Bracket = Bracket(stop_ticks=8, target_ticks=12)

    @field_validator("enabled", mode="after")
    @classmethod
    def _merge_enabled(cls, value: dict[Regime, list[str]]) -> dict[Regime, list[str]]:
        merged = default_enabled()
        merged.update(value)
        return merged

    @field_validator("brackets", mode="after")
    @classmethod
    def _merge_brackets(cls, value: dict[str, Bracket]) -> dict[str, Bracket]:
        return {**DEFAULT_BRACKETS, **value}

    @field_validator("size_by_confidence", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                {"min_confidence": step[0], "multiplier": step[1]}
                if isinstance(step, list | tuple) and len(step) == 2
                else step
                for step in value
            ]
        return value

    @field_validator("size_by_confidence", mode="after")
    @classmethod
    def _steps(cls, steps: list[SizeStep]) -> list[SizeStep]:
        ordered = sorted(steps, key=lambda step: step.min_confidence)
        levels = [step.min_confidence for step in ordered]
        if len(set(levels)) != len(levels):
            raise ValueError(f"two steps start at the same confidence: {levels}")
        return ordered


class RegimeRouter(Router):
    """Routes each signal by the regime it arrived in; see the module docstring for the rules."""

    name = "regime"
    Settings = RegimeRouterSettings

    def __init__(self, settings: RegimeRouterSettings, context: PluginContext) -> None:
        self.s = settings
        self.symbol = context.symbol
        self.quantity = int(getattr(context.config, "quantity", 1) or 1)
        self.enabled = {regime: frozenset(names) for regime, names in settings.enabled.items()}
        self.reversal = frozenset(settings.reversal_patterns)
        listed = set().union(*self.enabled.values()) | set(settings.brackets)
        unknown = sorted(listed - set(ALL_PATTERNS))
        if unknown:
            log.info("regime router: patterns beyond the built-in ones: %s", ", ".join(unknown))

    def route(self, signal: Signal, regime: RegimeState) -> RouteDecision:
        """Approve ``signal`` as an order intent, or reject it; either way with the reasons."""
        chain = [
            f"signal: {signal.pattern} {signal.direction.value} at {signal.price} "
            f"(strength {signal.strength:.2f})",
            f"regime: {regime.regime.value} ({regime.confidence:.2f})"
            + (f": {regime.reason}" if regime.reason else ""),
        ]
        approved, rule = self._rule(signal, regime)
        chain.append(f"rule: {rule}")
        if not approved:
            return RouteDecision(signal=signal, intent=None, reasons=tuple(chain))
        step = self._step(regime.confidence)
        if step is None:
            lowest = self.s.size_by_confidence[0].min_confidence
            chain.append(
                f"size: confidence {regime.confidence:.2f} is below the lowest step {lowest:g}"
            )
            return RouteDecision(signal=signal, intent=None, reasons=tuple(chain))
        quantity = max(1, math.floor(self.quantity * step.multiplier))
        bracket = self.s.brackets.get(signal.pattern)
        source = signal.pattern if bracket is not None else "default"
        bracket = bracket or self.s.default_bracket
        chain += [
            f"size: {self.quantity} x {step.multiplier:g} (confidence >= "
            f"{step.min_confidence:g}) = {quantity}",
            f"bracket: stop {bracket.stop_ticks}t, target {bracket.target_ticks}t ({source})",
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

    def _step(self, confidence: float) -> SizeStep | None:
        """The highest size step ``confidence`` reaches, or None below the lowest."""
        reached = [s for s in self.s.size_by_confidence if confidence >= s.min_confidence]
        return reached[-1] if reached else None

    def _rule(self, signal: Signal, regime: RegimeState) -> tuple[bool, str]:
        """(approved, the rule that decided) for one signal in one regime."""
        kind, pattern, direction = regime.regime, signal.pattern, signal.direction
        side = direction.value
        if kind is Regime.NO_TRADE:  # the classifier's reason is what a trader wants to read
            return False, regime.reason or "NO_TRADE: nothing trades"
        if pattern not in self.enabled.get(kind, ()):
            return False, f"{pattern} is not enabled in {kind.value}"
        if kind is Regime.TRENDING_UP:
            if direction is not Direction.LONG:
                return False, "TRENDING_UP takes longs only"
            return True, f"TRENDING_UP takes longs: {pattern} {side}"
        if kind is Regime.TRENDING_DOWN:
            if direction is not Direction.SHORT:
                return False, "TRENDING_DOWN takes shorts only"
            return True, f"TRENDING_DOWN takes shorts: {pattern} {side}"
        if kind is Regime.RANGING:
            return self._ranging(signal, regime)
        if signal.strength < self.s.volatile_min_strength:
            return False, (
                f"VOLATILE needs strength >= {self.s.volatile_min_strength:g}, "
                f"got {signal.strength:.2f}"
            )
        return True, f"VOLATILE takes strength >= {self.s.volatile_min_strength:g}: {pattern}"

    def _ranging(self, signal: Signal, regime: RegimeState) -> tuple[bool, str]:
        pattern, side = signal.pattern, signal.direction.value
        if pattern in self.reversal:
            return True, f"RANGING takes reversal patterns: {pattern} {side}"
        need = self.s.ranging_fade_atr
        if need is None:
            return False, f"RANGING takes reversal patterns only, not {pattern}"
        stretch = _stretch(signal, regime)
        if stretch is None:
            return False, f"RANGING: no VWAP/ATR to tell whether {pattern} {side} fades the move"
        # positive when the signal points back toward VWAP: long below it, short above it
        fade = -stretch * signal.direction.sign
        where = f"{abs(stretch):.1f} ATR {'above' if stretch > 0 else 'below'} VWAP"
        if fade >= need:
            return True, f"RANGING takes fades: {pattern} {side} at {where} (>= {need:g})"
        return False, (
            f"RANGING takes reversals or fades of >= {need:g} ATR from VWAP: "
            f"{pattern} {side} at {where}"
        )


def _stretch(signal: Signal, regime: RegimeState) -> float | None:
    """(price - VWAP) / ATR, price being the regime's close (else the signal's level)."""
    values = regime.indicators
    vwap, atr = values.get("vwap", math.nan), values.get("atr", math.nan)
    price = values.get("close", float(signal.price))
    if not (math.isfinite(vwap) and math.isfinite(atr) and math.isfinite(price)) or atr <= 0:
        return None
    return (price - vwap) / atr


@hookimpl
def register_routers(register: Any) -> None:
    """Register the ``regime`` router."""
    register(RegimeRouter)
