"""Positions and closed trades, with exact money.

The ledger turns a broker's fills into positions and trades. It is the one place P&L is computed:

    net = (exit - entry) / tick size x tick value x quantity (signed by direction) - commissions

A position keeps the :class:`~tradebot_core.instruments.Instrument` it was opened with, so a symbol
switch or tier change while it is open does not change its tick value.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .instruments import Instrument, InstrumentRegistry
from .types import Direction, Fill, OrderIntent, Trade


@dataclass
class Position:
    bracket_id: str
    symbol: str
    direction: Direction
    quantity: int
    entry_price: int  # fixed-point
    entry_ts_ns: int
    entry_commission: Decimal
    instrument: Instrument
    pattern: str = ""
    stop_price: int | None = None  # fixed-point, from the bracket
    target_price: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "bracket_id": self.bracket_id,
            "symbol": self.symbol,
            "direction": self.direction.value,
            "quantity": self.quantity,
            "entry_price": self.entry_price,
            "entry_ts_ns": self.entry_ts_ns,
            "entry_commission": str(self.entry_commission),
            "instrument": self.instrument.model_dump(mode="json"),
            "pattern": self.pattern,
            "stop_price": self.stop_price,
            "target_price": self.target_price,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Position:
        return cls(
            bracket_id=data["bracket_id"],
            symbol=data["symbol"],
            direction=Direction(data["direction"]),
            quantity=int(data["quantity"]),
            entry_price=int(data["entry_price"]),
            entry_ts_ns=int(data["entry_ts_ns"]),
            entry_commission=Decimal(data["entry_commission"]),
            instrument=Instrument.model_validate(data["instrument"]),
            pattern=data.get("pattern", ""),
            stop_price=data.get("stop_price"),
            target_price=data.get("target_price"),
        )


class LedgerError(Exception):
    """A fill that does not fit the ledger's state (an exit with no position...)."""


class Ledger:
    """Pending brackets, open positions, and the trades they become."""

    def __init__(self, instruments: InstrumentRegistry) -> None:
        self.instruments = instruments
        self.pending: dict[str, OrderIntent] = {}
        self.open: dict[str, Position] = {}

    @property
    def exposure(self) -> int:
        """Contracts open or waiting for their entry fill."""
        return sum(p.quantity for p in self.open.values()) + sum(
            i.quantity for i in self.pending.values()
        )

    def net_position(self, symbol: str | None = None) -> int:
        return sum(
            p.direction.sign * p.quantity
            for p in self.open.values()
            if symbol is None or p.symbol == symbol
        )

    def submitted(self, bracket_id: str, intent: OrderIntent) -> None:
        self.pending[bracket_id] = intent

    def cancelled(self, bracket_id: str) -> None:
        self.pending.pop(bracket_id, None)

    def on_fill(self, fill: Fill) -> Position | Trade:
        """An entry fill opens a position (returned); an exit fill closes it into a Trade."""
        if fill.role == "entry":
            intent = self.pending.pop(fill.bracket_id, None)
            if fill.bracket_id in self.open:
                raise LedgerError(f"bracket {fill.bracket_id}: a second entry fill")
            direction = Direction.LONG if fill.side == "buy" else Direction.SHORT
            instrument = self.instruments[fill.symbol]
            stop = target = None
            if intent is not None:
                tick = instrument.tick_fixed * direction.sign
                stop = fill.price - intent.stop_ticks * tick
                target = fill.price + intent.target_ticks * tick
            position = Position(
                bracket_id=fill.bracket_id,
                symbol=fill.symbol,
                direction=direction,
                quantity=fill.quantity,
                entry_price=fill.price,
                entry_ts_ns=fill.ts_ns,
                entry_commission=fill.commission,
                instrument=instrument,
                pattern=intent.signal.pattern if intent else "",
                stop_price=stop,
                target_price=target,
            )
            self.open[fill.bracket_id] = position
            return position
        position = self.open.pop(fill.bracket_id, None)
        if position is None:
            raise LedgerError(f"bracket {fill.bracket_id}: exit fill with no open position")
        if fill.quantity != position.quantity:
            raise LedgerError(
                f"bracket {fill.bracket_id}: exit of {fill.quantity} for {position.quantity} open"
            )
        return close_trade(position, fill)

    def snapshot(self) -> dict[str, Any]:
        return {
            "open": [p.to_dict() for p in self.open.values()],
            "pending": {k: v.model_dump(mode="json") for k, v in self.pending.items()},
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.open = {d["bracket_id"]: Position.from_dict(d) for d in snapshot.get("open", [])}
        self.pending = {
            k: OrderIntent.model_validate(v) for k, v in snapshot.get("pending", {}).items()
        }


def close_trade(position: Position, exit_fill: Fill) -> Trade:
    """The exact money of a round trip."""
    spec = position.instrument
    ticks = spec.trade_ticks(position.direction, position.entry_price, exit_fill.price)
    gross = ticks * spec.tick_value * position.quantity
    commissions = position.entry_commission + exit_fill.commission
    return Trade(
        bracket_id=position.bracket_id,
        symbol=position.symbol,
        direction=position.direction,
        quantity=position.quantity,
        entry_price=spec.to_decimal(position.entry_price),
        exit_price=spec.to_decimal(exit_fill.price),
        entry_ts_ns=position.entry_ts_ns,
        exit_ts_ns=exit_fill.ts_ns,
        ticks=ticks,
        tick_size=spec.tick_size,
        tick_value=spec.tick_value,
        gross_pnl=gross,
        commissions=commissions,
        net_pnl=gross - commissions,
        exit_reason=exit_fill.role,
        pattern=position.pattern,
    )
