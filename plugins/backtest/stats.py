"""Backtest statistics, in exact money: overall, monthly, per pattern, by hour and weekday.

Definitions:

* profit factor: sum of winning trades' net P&L / |sum of losing trades' net P&L| (None when
  there is no loss);
* win rate: trades with net P&L > 0 / trades;
* max drawdown: the largest fall of the balance, after each trade, below its running peak
  (starting from the starting balance);
* max consecutive losses: the longest run of trades with net P&L < 0;
* winning days: days with net P&L > 0, of the days that traded.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

ZERO = Decimal("0")
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def trade_stats(trades: list[dict[str, Any]]) -> dict[str, Any]:
    nets = [Decimal(t["net_pnl"]) for t in trades]
    wins = [n for n in nets if n > 0]
    losses = [n for n in nets if n < 0]
    gross_win, gross_loss = sum(wins, ZERO), -sum(losses, ZERO)
    return {
        "trades": len(nets),
        "wins": len(wins),
        "win_rate": round(len(wins) / len(nets), 4) if nets else None,
        "net_pnl": str(sum(nets, ZERO)),
        "profit_factor": str((gross_win / gross_loss).quantize(Decimal("0.01")))
        if gross_loss
        else None,
    }


def drawdown(start: Decimal, nets: list[Decimal]) -> tuple[Decimal, list[Decimal]]:
    """(max drawdown, balance after each trade)."""
    balance, peak, worst = start, start, ZERO
    curve = []
    for net in nets:
        balance += net
        peak = max(peak, balance)
        worst = max(worst, peak - balance)
        curve.append(balance)
    return worst, curve


def max_consecutive_losses(nets: list[Decimal]) -> int:
    longest = run = 0
    for net in nets:
        run = run + 1 if net < 0 else 0
        longest = max(longest, run)
    return longest


def overall(result: Any) -> dict[str, Any]:
    trades = result.trades
    nets = [Decimal(t["net_pnl"]) for t in trades]
    days = [d for d in result.days if d["trades"]]
    day_nets = [Decimal(d["net_pnl"]) for d in result.days]
    worst, _ = drawdown(result.starting_balance, nets)
    return {
        "start_balance": str(result.starting_balance),
        "final_balance": str(result.final_balance),
        **trade_stats(trades),
        "days": len(result.days),
        "trading_days": len(days),
        "winning_days": sum(1 for d in days if Decimal(d["net_pnl"]) > 0),
        "average_daily_pnl": str((sum(day_nets, ZERO) / len(day_nets)).quantize(Decimal("0.01")))
        if day_nets
        else "0",
        "max_drawdown": str(worst),
        "max_consecutive_losses": max_consecutive_losses(nets),
        "ticks": result.ticks,
        "reruns": result.reruns,
    }


def _grouped(trades: list[dict[str, Any]], key: Any) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for trade in trades:
        groups[key(trade)].append(trade)
    return {name: trade_stats(group) for name, group in sorted(groups.items())}


def monthly(result: Any) -> dict[str, dict[str, Any]]:
    return _grouped(result.trades, lambda t: t["day"][:7])


def per_pattern(result: Any) -> dict[str, dict[str, Any]]:
    return _grouped(result.trades, lambda t: t["pattern"] or "?")


def _local(ts_ns: int, tz: str) -> datetime:
    return datetime.fromtimestamp(ts_ns / 1e9, ZoneInfo(tz))


def by_hour(result: Any, tz: str = "America/New_York") -> dict[str, dict[str, Any]]:
    return _grouped(result.trades, lambda t: f"{_local(t['entry_ts_ns'], tz).hour:02d}:00")


def by_weekday(result: Any, tz: str = "America/New_York") -> dict[str, dict[str, Any]]:
    stats = _grouped(result.trades, lambda t: str(_local(t["entry_ts_ns"], tz).weekday()))
    return {WEEKDAYS[int(k)]: v for k, v in stats.items()}


def tier_progression(result: Any) -> list[dict[str, Any]]:
    return [
        {
            "day": day["day"],
            "from": (change["old"] or {}).get("name"),
            "to": change["new"]["name"],
            "symbol": change["new"]["symbol"],
            "balance": change["balance"],
        }
        for day in result.days
        for change in day["tier_changes"]
    ]


def equity_by_day(result: Any) -> list[tuple[str, Decimal]]:
    return [(d["day"], Decimal(d["end_balance"])) for d in result.days]
