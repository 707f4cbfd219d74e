"""PASS/FAIL of a backtest against thresholds a trader sets (``--min-profit-factor`` ...).

Checks, each on the figures the report already shows:

* **profit factor**: the backtest's profit factor is at least ``min_profit_factor`` (no losing
  trade at all passes; no trade at all fails);
* **max drawdown**: the backtest's max drawdown is at most ``max_drawdown`` dollars;
* **slippage +N ticks**: the backtest run again with N more ticks of slippage still has a profit
  factor of at least ``min_profit_factor``;
* **time of day / day of week**: the net P&L stays positive without the best hour of entry (ET) /
  the best weekday: the result does not hang on one hour or one day;
* **Monte Carlo ruin**: of the resampled trade sequences, the share whose max drawdown reaches
  ``max_drawdown`` is at most ``mc_ruin_probability``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ZERO = Decimal("0")


class Thresholds(BaseModel):
    """What a backtest must show to PASS; the CLI options of the same names set them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_profit_factor: Decimal = Field(default=Decimal("1.2"), ge=0)
    """Lowest profit factor, of the backtest and of every slippage scenario."""
    max_drawdown: Decimal = Field(default=Decimal("1000"), gt=0)
    """Largest max drawdown in dollars; also the drawdown that counts as ruin in Monte Carlo."""
    mc_ruin_probability: float = Field(default=0.05, ge=0, le=1)
    """Highest share of Monte Carlo (resampled) paths allowed to reach max_drawdown."""


def _check(name: str, value: Any, threshold: str, passed: bool) -> dict[str, Any]:
    return {
        "check": name,
        "value": "-" if value is None else str(value),
        "threshold": threshold,
        "result": "PASS" if passed else "FAIL",
    }


def _pf_passes(row: dict[str, Any], minimum: Decimal) -> bool:
    if not row.get("trades"):
        return False
    pf = row.get("profit_factor")
    return Decimal(row["net_pnl"]) > 0 if pf is None else Decimal(pf) >= minimum


def _without_best(groups: dict[str, dict[str, Any]]) -> tuple[str, Decimal] | None:
    if not groups:
        return None
    nets = {name: Decimal(row["net_pnl"]) for name, row in groups.items()}
    best = max(nets, key=lambda name: nets[name])
    return best, sum(nets.values(), ZERO) - nets[best]


def evaluate(data: dict[str, Any], thresholds: Thresholds) -> list[dict[str, Any]]:
    """The checks, in report order, as rows {check, value, threshold, result}."""
    t = thresholds
    overall = data["overall"]
    checks = [
        _check(
            "profit factor",
            overall.get("profit_factor") or ("no loss" if overall.get("trades") else None),
            f">= {t.min_profit_factor}",
            _pf_passes(overall, t.min_profit_factor),
        ),
        _check(
            "max drawdown",
            overall["max_drawdown"],
            f"<= {t.max_drawdown}",
            Decimal(overall["max_drawdown"]) <= t.max_drawdown,
        ),
    ]
    stress = data.get("stress") or {}
    for ticks, row in (stress.get("slippage") or {}).items():
        checks.append(
            _check(
                f"slippage +{ticks} tick(s): profit factor",
                row.get("profit_factor"),
                f">= {t.min_profit_factor}",
                _pf_passes(row, t.min_profit_factor),
            )
        )
    for key, label in (("by hour", "time of day"), ("by weekday", "day of week")):
        if key not in stress:
            continue
        best = _without_best(stress[key])
        value = None if best is None else f"{best[1]} without {best[0]}"
        checks.append(
            _check(f"{label}: net P&L without the best", value, "> 0", bool(best and best[1] > 0))
        )
    mc = stress.get("monte_carlo") or {}
    if mc.get("trades"):
        ruin = mc["resampled"].get("probability_of_ruin")
        checks.append(
            _check(
                f"Monte Carlo ({mc['runs']} runs): P(drawdown >= {t.max_drawdown})",
                ruin,
                f"<= {t.mc_ruin_probability}",
                ruin is not None and ruin <= t.mc_ruin_probability,
            )
        )
    return checks
