"""Orders as a state machine, and brackets as an entry plus an OCO pair of children.

Every order has a client order id the kernel chooses (unique across restarts: the journal's run
id is part of it) and, once the venue has it, the venue's id. Its status moves only along::

    submitted -> accepted -> partially_filled -> filled
        |            |              |
        +-> rejected +-> cancelled  +-> cancelled (the rest of it)

(a venue may skip ``accepted`` and report a fill or a cancel straight away). Every transition
is returned as an :class:`OrderTransition`, which the session journals. A transition that the
machine does not allow (a fill on a cancelled order...) raises :class:`OrderStateError`; the
session logs it and leaves the order as it was: a venue's odd report never ends the run.

A bracket is three orders: a market ``entry`` and, once the entry fills, a ``stop`` and a
``target`` for the filled quantity, one-cancels-other. ``flatten`` orders close a position at
market outside any bracket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from ..types import Direction, OrderSide

OrderRole = Literal["entry", "stop", "target", "flatten"]


class OrderStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def working(self) -> bool:
        return self in _WORKING


_WORKING = frozenset({OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})
_ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.SUBMITTED: frozenset(
        {
            OrderStatus.ACCEPTED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
        }
    ),
    OrderStatus.ACCEPTED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED}
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED}
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}


class OrderStateError(Exception):
    """A report the order's state does not allow (a fill after a cancel, an overfill...)."""


@dataclass
class Order:
    """One order, as the kernel knows it. Prices are fixed-point (PRICE_SCALE units)."""

    order_id: str  # the client order id
    bracket_id: str
    role: OrderRole
    symbol: str
    side: OrderSide
    quantity: int
    ts_ns: int
    price: int | None = None  # the stop trigger or the limit; None for market orders
    status: OrderStatus = OrderStatus.SUBMITTED
    filled: int = 0
    fill_cost: int = 0  # sum of fill price x quantity: the average fill price, exactly
    venue_order_id: str = ""
    reason: str = ""

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def working(self) -> bool:
        return self.status.working

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "bracket_id": self.bracket_id,
            "role": self.role,
            "symbol": self.symbol,
            "side": self.side.value,
            "quantity": self.quantity,
            "ts_ns": self.ts_ns,
            "price": self.price,
            "status": self.status.value,
            "filled": self.filled,
            "fill_cost": self.fill_cost,
            "venue_order_id": self.venue_order_id,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Order:
        return cls(
            **{
                **data,
                "side": OrderSide(data["side"]),
                "status": OrderStatus(data["status"]),
            }
        )


@dataclass(frozen=True)
class OrderTransition:
    order_id: str
    bracket_id: str
    role: str
    old: OrderStatus | None  # None: the order was just created
    new: OrderStatus
    ts_ns: int
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "bracket_id": self.bracket_id,
            "role": self.role,
            "old": self.old.value if self.old else None,
            "new": self.new.value,
            "ts_ns": self.ts_ns,
            "detail": self.detail,
        }


@dataclass
class Bracket:
    """An entry and its OCO pair, with what the router asked for."""

    bracket_id: str
    symbol: str
    direction: Direction
    quantity: int
    stop_ticks: int
    target_ticks: int
    pattern: str
    ts_ns: int
    intent: dict[str, Any] = field(default_factory=dict)  # the OrderIntent, as JSON

    @property
    def entry_id(self) -> str:
        return f"{self.bracket_id}-entry"

    @property
    def stop_id(self) -> str:
        return f"{self.bracket_id}-stop"

    @property
    def target_id(self) -> str:
        return f"{self.bracket_id}-target"

    def to_dict(self) -> dict[str, Any]:
        return {
            "bracket_id": self.bracket_id,
            "symbol": self.symbol,
            "direction": self.direction.value,
            "quantity": self.quantity,
            "stop_ticks": self.stop_ticks,
            "target_ticks": self.target_ticks,
            "pattern": self.pattern,
            "ts_ns": self.ts_ns,
            "intent": self.intent,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bracket:
        return cls(**{**data, "direction": Direction(data["direction"])})


class OrderBook:
    """Every order of the run, with the transitions they went through."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.brackets: dict[str, Bracket] = {}

    # -- creating -------------------------------------------------------------------------------

    def add(self, order: Order) -> OrderTransition:
        if order.order_id in self.orders:
            raise OrderStateError(f"order {order.order_id} exists already")
        self.orders[order.order_id] = order
        return OrderTransition(
            order.order_id, order.bracket_id, order.role, None, order.status, order.ts_ns
        )

    def open_bracket(self, bracket: Bracket) -> OrderTransition:
        """Record a bracket and its entry order (the children come with the entry's fills)."""
        self.brackets[bracket.bracket_id] = bracket
        side = OrderSide.BUY if bracket.direction is Direction.LONG else OrderSide.SELL
        return self.add(
            Order(
                order_id=bracket.entry_id,
                bracket_id=bracket.bracket_id,
                role="entry",
                symbol=bracket.symbol,
                side=side,
                quantity=bracket.quantity,
                ts_ns=bracket.ts_ns,
            )
        )

    # -- transitions ----------------------------------------------------------------------------

    def move(
        self, order_id: str, new: OrderStatus, ts_ns: int, detail: str = ""
    ) -> OrderTransition:
        order = self.orders.get(order_id)
        if order is None:
            raise OrderStateError(f"unknown order {order_id}")
        old = order.status
        if new not in _ALLOWED[old] and not (new is old and new is OrderStatus.ACCEPTED):
            raise OrderStateError(f"order {order_id}: {old.value} -> {new.value} is not allowed")
        order.status = new
        if detail:
            order.reason = detail
        return OrderTransition(order_id, order.bracket_id, order.role, old, new, ts_ns, detail)

    def fill(self, order_id: str, quantity: int, price: int, ts_ns: int) -> OrderTransition:
        order = self.orders.get(order_id)
        if order is None:
            raise OrderStateError(f"a fill for unknown order {order_id}")
        if not order.working:
            raise OrderStateError(f"order {order_id} is {order.status.value}: fill refused")
        if quantity > order.remaining:
            raise OrderStateError(
                f"order {order_id}: fill of {quantity} with {order.remaining} remaining"
            )
        order.filled += quantity
        order.fill_cost += price * quantity
        new = OrderStatus.FILLED if order.remaining == 0 else OrderStatus.PARTIALLY_FILLED
        old = order.status
        order.status = new
        return OrderTransition(order_id, order.bracket_id, order.role, old, new, ts_ns)

    # -- reading --------------------------------------------------------------------------------

    def working(self, symbol: str | None = None) -> list[Order]:
        return [
            o for o in self.orders.values() if o.working and (symbol is None or o.symbol == symbol)
        ]

    def working_entries(self) -> list[Order]:
        return [o for o in self.orders.values() if o.working and o.role == "entry"]

    def pending_quantity(self, direction: Direction) -> int:
        """Contracts of entries in ``direction`` not filled yet."""
        side = OrderSide.BUY if direction is Direction.LONG else OrderSide.SELL
        return sum(o.remaining for o in self.working_entries() if o.side is side)

    def forget_done(self) -> None:
        """Drop finished orders, and brackets with nothing working, from memory (they stay in
        the journal)."""
        self.orders = {k: o for k, o in self.orders.items() if o.working}
        live = {o.bracket_id for o in self.orders.values()}
        self.brackets = {k: b for k, b in self.brackets.items() if k in live}

    def snapshot(self) -> dict[str, Any]:
        working = [o for o in self.orders.values() if o.working]
        live = {o.bracket_id for o in working}
        return {
            "orders": [o.to_dict() for o in working],
            "brackets": [b.to_dict() for k, b in self.brackets.items() if k in live],
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.orders = {d["order_id"]: Order.from_dict(d) for d in snapshot.get("orders", [])}
        self.brackets = {
            d["bracket_id"]: Bracket.from_dict(d) for d in snapshot.get("brackets", [])
        }
