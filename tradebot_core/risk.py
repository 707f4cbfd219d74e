"""The session's guard rails: daily profit target and loss limit, position cap, halts, margin.

A limit reached halts new entries for the rest of the trading day and asks the session to
flatten; a manual halt lasts until ``resume`` (across days and restarts: it is saved state).
The trading day is the exchange calendar's (:func:`tradebot_core.run.clock.trading_day`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from .config import RiskSettings
from .instruments import Instrument
from .types import OrderIntent, Trade


@dataclass
class RiskState:
    day: date | None = None
    realized: Decimal = Decimal("0")
    trades: int = 0
    halted: bool = False
    halt_reason: str = ""
    manual_halt: bool = False
    entries_closed: bool = False  # after the auto-flatten, until the next day
    closed_reason: str = ""
    margin_checked: bool = False  # the day's margins were checked with the broker
    wins: int = 0
    by_pattern: dict[str, list[str]] = field(default_factory=dict)  # pattern -> [trades, net]
    counters: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat() if self.day else None,
            "realized": str(self.realized),
            "trades": self.trades,
            "halted": self.halted,
            "halt_reason": self.halt_reason,
            "manual_halt": self.manual_halt,
            "entries_closed": self.entries_closed,
            "closed_reason": self.closed_reason,
            "margin_checked": self.margin_checked,
            "wins": self.wins,
            "by_pattern": {k: list(v) for k, v in self.by_pattern.items()},  # a copy: readers
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskState:
        return cls(
            day=date.fromisoformat(data["day"]) if data.get("day") else None,
            realized=Decimal(data.get("realized", "0")),
            trades=int(data.get("trades", 0)),
            halted=bool(data.get("halted")),
            halt_reason=data.get("halt_reason", ""),
            manual_halt=bool(data.get("manual_halt")),
            entries_closed=bool(data.get("entries_closed")),
            closed_reason=data.get("closed_reason", ""),
            margin_checked=bool(data.get("margin_checked")),
            wins=int(data.get("wins", 0)),
            by_pattern={k: list(v) for k, v in data.get("by_pattern", {}).items()},
        )


class RiskManager:
    def __init__(self, settings: RiskSettings) -> None:
        self.settings = settings
        self.state = RiskState()

    def roll_day(self, day: date) -> date | None:
        """Start trading day ``day`` unless it is the current one. Returns it, or None."""
        if day == self.state.day:
            return None
        manual, reason = self.state.manual_halt, self.state.halt_reason
        self.state = RiskState(day=day)
        if manual:
            self.state.halted, self.state.manual_halt, self.state.halt_reason = True, True, reason
        return day

    def rejects(
        self, intent: OrderIntent, exposure: int, balance: Decimal, instrument: Instrument
    ) -> str | None:
        """Why this intent may not be sent now, or None if it may."""
        s = self.settings
        if self.state.halted:
            return f"halted: {self.state.halt_reason}"
        if self.state.entries_closed:
            return f"entries closed for the day ({self.state.closed_reason or 'auto-flatten'})"
        if exposure + intent.quantity > s.max_position:
            return (
                f"max position {s.max_position}: {exposure} open or pending, "
                f"{intent.quantity} more asked"
            )
        needed = instrument.margin * (exposure + intent.quantity)
        if needed > balance:
            return (
                f"margin: {exposure + intent.quantity} x {instrument.symbol} needs ${needed}, "
                f"balance is ${balance}"
            )
        return None

    def on_trade(self, trade: Trade) -> str | None:
        """Book a closed trade; returns the reason if it reached a daily limit."""
        self.state.realized += trade.net_pnl
        self.state.trades += 1
        self.state.wins += trade.net_pnl > 0
        count, net = self.state.by_pattern.get(trade.pattern or "?", ["0", "0"])
        self.state.by_pattern[trade.pattern or "?"] = [
            str(int(count) + 1),
            str(Decimal(net) + trade.net_pnl),
        ]
        if self.state.halted:
            return None
        if self.state.realized >= self.settings.daily_profit_target:
            return self.halt(
                f"daily profit target reached: ${self.state.realized} >= "
                f"${self.settings.daily_profit_target}"
            )
        if self.state.realized <= self.settings.daily_loss_limit:
            return self.halt(
                f"daily loss limit reached: ${self.state.realized} <= "
                f"${self.settings.daily_loss_limit}"
            )
        return None

    def halt(self, reason: str, manual: bool = False) -> str:
        self.state.halted = True
        self.state.halt_reason = reason
        self.state.manual_halt = self.state.manual_halt or manual
        return reason

    def resume(self) -> None:
        self.state.halted = False
        self.state.manual_halt = False
        self.state.halt_reason = ""

    def close_entries(self, reason: str = "after the auto-flatten") -> None:
        self.state.entries_closed = True
        self.state.closed_reason = self.state.closed_reason or reason

    def update_settings(self, **changes: Any) -> None:
        """Apply new limits to the running session (validated as the config is)."""
        self.settings = RiskSettings.model_validate({**self.settings.model_dump(), **changes})
