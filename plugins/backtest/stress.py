"""Stress tests: what the same trades would have done under worse luck.

* **slippage**: the whole backtest again with ``broker.paper.slippage_ticks`` raised;
* **time of day / day of week**: the trades grouped by the hour and weekday of their entry;
* **Monte Carlo**: the sequence of trade P&Ls reshuffled (order) and resampled with replacement
  (luck), ``runs`` times each with a seeded generator: percentiles of the final balance and of the
  maximum drawdown, the probability of ending below the start, and (given a drawdown limit) the
  probability of ruin: a path whose drawdown reaches the limit. Amounts are whole cents
  throughout, so results are exact and reproducible.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

PERCENTILES = (5, 25, 50, 75, 95)


def _cents(values: list[Decimal]) -> np.ndarray:
    cents = [v * 100 for v in values]
    if any(c != c.to_integral_value() for c in cents):
        raise ValueError("a trade's P&L has fractions of a cent")
    return np.array([int(c) for c in cents], dtype=np.int64)


def _max_drawdowns(start_cents: int, paths: np.ndarray) -> np.ndarray:
    balances = start_cents + np.cumsum(paths, axis=1)
    peaks = np.maximum.accumulate(np.maximum(balances, start_cents), axis=1)
    return (peaks - balances).max(axis=1)


def monte_carlo(
    nets: list[Decimal],
    start_balance: Decimal,
    runs: int = 1000,
    seed: int = 7,
    ruin_drawdown: Decimal | None = None,
) -> dict[str, Any]:
    """Percentiles of final balance and max drawdown over reshuffles and resamples; with
    ``ruin_drawdown``, the share of paths whose drawdown reaches it (``probability_of_ruin``)."""
    if not nets:
        return {"runs": runs, "seed": seed, "trades": 0}
    pnl = _cents(nets)
    start = int(start_balance * 100)
    rng = np.random.default_rng(seed)
    shuffled = np.array([rng.permutation(pnl) for _ in range(runs)])
    resampled = rng.choice(pnl, size=(runs, len(pnl)), replace=True)
    out: dict[str, Any] = {"runs": runs, "seed": seed, "trades": len(pnl)}
    for name, paths in (("reshuffled", shuffled), ("resampled", resampled)):
        finals = start + paths.sum(axis=1)
        drawdowns = _max_drawdowns(start, paths)
        out[name] = {
            "final_balance": _percentiles(finals),
            "max_drawdown": _percentiles(drawdowns),
            "probability_of_loss": round(float((finals < start).mean()), 4),
        }
        if ruin_drawdown is not None:
            limit = int(Decimal(ruin_drawdown) * 100)
            out[name]["probability_of_ruin"] = round(float((drawdowns >= limit).mean()), 4)
    return out


def _percentiles(cents: np.ndarray) -> dict[str, str]:
    # "lower" picks an observed value: exact cents, no interpolation
    values = np.percentile(cents, PERCENTILES, method="lower")
    return {f"p{p}": str(Decimal(int(v)) / 100) for p, v in zip(PERCENTILES, values, strict=True)}
