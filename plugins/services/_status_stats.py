"""Run statistics for the status page, from the journal's closed trades (exact, with Decimal)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

ZERO = Decimal("0")


def trade_statistics(net_pnls: Iterable[Decimal | str]) -> dict[str, Any]:
    """Trades, wins, losses, win rate, net, profit factor and max drawdown of trades in exit order.

    Money comes out as decimal strings. The win rate is a fraction (0..1) or None without trades;
    the profit factor (gross wins / gross losses) is None when there is no losing trade. The
    drawdown is the largest fall of the cumulative net P&L from its running peak (starting at 0).
    """
    nets = [Decimal(n) for n in net_pnls]
    won = sum((n for n in nets if n > 0), ZERO)
    lost = -sum((n for n in nets if n < 0), ZERO)
    wins = sum(1 for n in nets if n > 0)
    losses = sum(1 for n in nets if n < 0)
    peak = equity = drawdown = ZERO
    for net in nets:
        equity += net
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
    return {
        "trades": len(nets),
        "wins": wins,
        "losses": losses,
        "win_rate": round(wins / len(nets), 4) if nets else None,
        "net_pnl": str(equity),
        "gross_profit": str(won),
        "gross_loss": str(-lost),
        "profit_factor": str((won / lost).quantize(Decimal("0.01"))) if lost else None,
        "max_drawdown": str(drawdown),
    }
