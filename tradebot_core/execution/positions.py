"""One net position per instrument, as the exchange holds it, with exact realized P&L.

A CME account nets: a buy against a short position closes it, it never opens a long beside it.
Here a position is a signed quantity made of lots (one per entry fill, first in, first out) so
that the money of every closed contract is exact: a lot keeps its fixed-point entry price, the
:class:`~tradebot_core.instruments.Instrument` (tick value) it was opened with, and the entry
commission not yet charged. A closing fill takes from the lots of its own bracket first (a
bracket's stop closes what its entry opened), then the oldest. Each lot it closes, fully or in
part, becomes a :class:`~tradebot_core.types.Trade`::

    net = (exit - entry) / tick size x tick value x quantity (signed) - commissions

where the commissions are the closed share of the entry's and of the exit's, allocated to the
cent so that the parts of a commission always add up to the whole. A fill larger than the
position it closes reverses it: the rest opens a new lot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ..instruments import Instrument, InstrumentRegistry
from ..types import PRICE_SCALE, Direction, Fill, Trade

CENT = Decimal("0.01")


@dataclass
class Lot:
    bracket_id: str
    quantity: int  # > 0: contracts left in this lot
    entry_price: int  # fixed-point
    entry_ts_ns: int
    commission_left: Decimal
    instrument: Instrument
    pattern: str = ""
    closed: int = 0  # contracts of this lot already closed (for trade ids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bracket_id": self.bracket_id,
            "quantity": self.quantity,
            "entry_price": self.entry_price,
            "entry_ts_ns": self.entry_ts_ns,
            "commission_left": str(self.commission_left),
            "instrument": self.instrument.model_dump(mode="json"),
            "pattern": self.pattern,
            "closed": self.closed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lot:
        return cls(
            bracket_id=data["bracket_id"],
            quantity=int(data["quantity"]),
            entry_price=int(data["entry_price"]),
            entry_ts_ns=int(data["entry_ts_ns"]),
            commission_left=Decimal(data["commission_left"]),
            instrument=Instrument.model_validate(data["instrument"]),
            pattern=data.get("pattern", ""),
            closed=int(data.get("closed", 0)),
        )


@dataclass
class Position:
    """The net position in one symbol: ``quantity`` > 0 long, < 0 short, 0 flat."""

    symbol: str
    direction: Direction | None = None
    lots: list[Lot] = field(default_factory=list)

    @property
    def quantity(self) -> int:
        """Signed net contracts."""
        size = sum(lot.quantity for lot in self.lots)
        return size if self.direction is Direction.LONG else -size

    @property
    def size(self) -> int:
        return sum(lot.quantity for lot in self.lots)

    @property
    def average_price(self) -> Decimal | None:
        """The average entry price in dollars, to 1e-9 (it may fall between two ticks; P&L never
        uses it: each lot keeps its own price)."""
        size = self.size
        if not size:
            return None
        cost = sum(lot.entry_price * lot.quantity for lot in self.lots)
        return (Decimal(cost) / Decimal(size) / PRICE_SCALE).quantize(Decimal("1e-9"))

    def unrealized(self, price: int) -> Decimal:
        """What closing everything at ``price`` (fixed-point) would make, before commissions."""
        total = Decimal(0)
        for lot in self.lots:
            spec = lot.instrument
            ticks = spec.trade_ticks(self.direction, lot.entry_price, price)  # type: ignore[arg-type]
            total += ticks * spec.tick_value * lot.quantity
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "direction": self.direction.value if self.direction else None,
            "quantity": self.quantity,
            "lots": [lot.to_dict() for lot in self.lots],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Position:
        return cls(
            symbol=data["symbol"],
            direction=Direction(data["direction"]) if data.get("direction") else None,
            lots=[Lot.from_dict(d) for d in data.get("lots", [])],
        )


def share(amount: Decimal, part: int, whole: int) -> Decimal:
    """``amount x part / whole`` to the cent; the last part (part == whole) takes the rest."""
    if part >= whole:
        return amount
    return (amount * part / whole).quantize(CENT, rounding=ROUND_HALF_EVEN)


class PositionBook:
    """Net positions by symbol. :meth:`apply` books a fill and returns the trades it closed."""

    def __init__(self, instruments: InstrumentRegistry) -> None:
        self.instruments = instruments
        self.positions: dict[str, Position] = {}

    def get(self, symbol: str) -> Position:
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol)
        return position

    def net(self, symbol: str | None = None) -> int:
        if symbol is not None:
            return self.get(symbol).quantity
        return sum(p.quantity for p in self.positions.values())

    @property
    def exposure(self) -> int:
        """Contracts open, all symbols."""
        return sum(p.size for p in self.positions.values())

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.size]

    def apply(self, fill: Fill, pattern: str = "") -> list[Trade]:
        position = self.get(fill.symbol)
        direction = Direction.LONG if fill.side == "buy" else Direction.SHORT
        remaining = fill.quantity
        commission_left = fill.commission
        trades: list[Trade] = []
        if position.size and position.direction is not direction:  # closing
            for lot in self._closing_order(position, fill.bracket_id):
                if remaining == 0:
                    break
                take = min(lot.quantity, remaining)
                exit_commission = share(commission_left, take, remaining)
                commission_left -= exit_commission
                entry_commission = share(lot.commission_left, take, lot.quantity)
                lot.commission_left -= entry_commission
                trades.append(
                    _trade(position.direction, lot, take, fill, entry_commission + exit_commission)
                )
                lot.quantity -= take
                lot.closed += take
                remaining -= take
            position.lots = [lot for lot in position.lots if lot.quantity > 0]
            if not position.lots:
                position.direction = None
        if remaining:
            position.direction = direction
            position.lots.append(
                Lot(
                    bracket_id=fill.bracket_id,
                    quantity=remaining,
                    entry_price=fill.price,
                    entry_ts_ns=fill.ts_ns,
                    commission_left=commission_left,
                    instrument=self.instruments[fill.symbol],
                    pattern=pattern,
                )
            )
        return trades

    @staticmethod
    def _closing_order(position: Position, bracket_id: str) -> list[Lot]:
        own = [lot for lot in position.lots if lot.bracket_id == bracket_id]
        return own + [lot for lot in position.lots if lot.bracket_id != bracket_id]

    def snapshot(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.positions.values() if p.size]

    def restore(self, data: list[dict[str, Any]]) -> None:
        self.positions = {d["symbol"]: Position.from_dict(d) for d in data}


def _trade(
    direction: Direction | None, lot: Lot, quantity: int, fill: Fill, commissions: Decimal
) -> Trade:
    assert direction is not None
    spec = lot.instrument
    ticks = spec.trade_ticks(direction, lot.entry_price, fill.price)
    gross = ticks * spec.tick_value * quantity
    return Trade(
        trade_id=f"{fill.exec_id}:{lot.bracket_id}:{lot.closed}",
        bracket_id=lot.bracket_id,
        symbol=fill.symbol,
        direction=direction,
        quantity=quantity,
        entry_price=spec.to_decimal(lot.entry_price),
        exit_price=spec.to_decimal(fill.price),
        entry_ts_ns=lot.entry_ts_ns,
        exit_ts_ns=fill.ts_ns,
        ticks=ticks,
        tick_size=spec.tick_size,
        tick_value=spec.tick_value,
        gross_pnl=gross,
        commissions=commissions,
        net_pnl=gross - commissions,
        exit_reason=fill.role,
        pattern=lot.pattern,
    )
