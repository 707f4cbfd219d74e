"""Orders as a state machine and net positions with exact money, on their own."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradebot_core import Direction, Fill, InstrumentRegistry, OrderSide
from tradebot_core.execution.orders import (
    Bracket,
    Order,
    OrderBook,
    OrderStateError,
    OrderStatus,
)
from tradebot_core.execution.positions import PositionBook, share

ES = InstrumentRegistry()["ES"]
TICK = ES.tick_fixed


def fill(
    side: str,
    quantity: int,
    price_ticks: int,
    *,
    exec_id: str,
    bracket="b1",
    role="entry",
    commission="2.25",
    ts=1,
) -> Fill:
    return Fill(
        exec_id=exec_id,
        bracket_id=bracket,
        order_id=f"{bracket}-{role}",
        symbol="ES",
        side=OrderSide(side),
        quantity=quantity,
        price=price_ticks * TICK,
        ts_ns=ts,
        role=role,
        commission=Decimal(commission) * quantity,
    )


def test_order_transitions_follow_the_machine():
    book = OrderBook()
    book.open_bracket(Bracket("b1", "ES", Direction.LONG, 3, 4, 8, "p", 0))
    assert book.orders["b1-entry"].status is OrderStatus.SUBMITTED
    book.move("b1-entry", OrderStatus.ACCEPTED, 1)
    t = book.fill("b1-entry", 1, 20000 * TICK, 2)
    assert (t.old, t.new) == (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
    t = book.fill("b1-entry", 2, 20001 * TICK, 3)
    assert t.new is OrderStatus.FILLED
    assert book.orders["b1-entry"].fill_cost == (20000 + 2 * 20001) * TICK
    with pytest.raises(OrderStateError, match="filled: fill refused"):
        book.fill("b1-entry", 1, 20000 * TICK, 4)
    with pytest.raises(OrderStateError, match="not allowed"):
        book.move("b1-entry", OrderStatus.CANCELLED, 5)


def test_an_overfill_and_a_fill_after_a_cancel_are_refused():
    book = OrderBook()
    book.open_bracket(Bracket("b1", "ES", Direction.SHORT, 1, 4, 8, "p", 0))
    with pytest.raises(OrderStateError, match="with 1 remaining"):
        book.fill("b1-entry", 2, 20000 * TICK, 1)
    book.move("b1-entry", OrderStatus.CANCELLED, 1)
    with pytest.raises(OrderStateError, match="cancelled"):
        book.fill("b1-entry", 1, 20000 * TICK, 2)


def test_snapshot_keeps_only_what_works_and_restores_it():
    book = OrderBook()
    book.open_bracket(Bracket("b1", "ES", Direction.LONG, 1, 4, 8, "p", 0))
    book.open_bracket(Bracket("b2", "ES", Direction.LONG, 1, 4, 8, "p", 0))
    book.move("b2-entry", OrderStatus.REJECTED, 1, "no margin")
    again = OrderBook()
    again.restore(book.snapshot())
    assert list(again.orders) == ["b1-entry"] and list(again.brackets) == ["b1"]


def test_netting_partial_fills_and_partial_exits_are_exact():
    book = PositionBook(InstrumentRegistry())
    book.apply(fill("buy", 1, 20000, exec_id="e1"))
    book.apply(fill("buy", 2, 20002, exec_id="e2"))
    position = book.get("ES")
    assert position.quantity == 3
    # average entry (20000 + 2 x 20002) / 3 ticks in dollars, to the fixed-point grid
    assert position.average_price == Decimal("5000.333333333")
    trades = book.apply(fill("sell", 2, 20010, exec_id="x1", role="target"))
    # FIFO inside the bracket: the 20000 lot, then one contract of the 20002 lot
    assert [(t.quantity, t.ticks) for t in trades] == [(1, 10), (1, 8)]
    assert trades[0].gross_pnl == Decimal("125.00") and trades[1].gross_pnl == Decimal("100.00")
    assert book.net("ES") == 1
    last = book.apply(fill("sell", 1, 19990, exec_id="x2", role="stop"))
    assert [(t.quantity, t.ticks) for t in last] == [(1, -12)]
    assert book.net("ES") == 0 and not book.open_positions()
    commissions = sum(t.commissions for t in trades + last)
    assert commissions == Decimal("2.25") * 6  # every cent of every fill, no more, no less


def test_a_closing_fill_takes_its_own_brackets_lot_first():
    book = PositionBook(InstrumentRegistry())
    book.apply(fill("buy", 1, 20000, exec_id="a", bracket="A"))
    book.apply(fill("buy", 1, 20004, exec_id="b", bracket="B"))
    (trade,) = book.apply(fill("sell", 1, 20010, exec_id="bx", bracket="B", role="target"))
    assert (trade.bracket_id, trade.ticks) == ("B", 6)


def test_a_fill_larger_than_the_position_reverses_it():
    book = PositionBook(InstrumentRegistry())
    book.apply(fill("buy", 1, 20000, exec_id="a"))
    trades = book.apply(fill("sell", 3, 20004, exec_id="r", bracket="R", role="entry"))
    assert [(t.direction, t.quantity, t.ticks) for t in trades] == [(Direction.LONG, 1, 4)]
    position = book.get("ES")
    assert (position.direction, position.quantity) == (Direction.SHORT, -2)


def test_commission_shares_add_up_to_the_whole():
    total = Decimal("0.62")
    parts = [share(total, 1, 3)]
    parts.append(share(total - parts[0], 1, 2))
    parts.append(share(total - parts[0] - parts[1], 1, 1))
    assert sum(parts) == total
    assert all(p == p.quantize(Decimal("0.01")) for p in parts)


def test_a_position_keeps_the_tick_value_it_opened_with():
    registry = InstrumentRegistry()
    book = PositionBook(registry)
    mes = Fill(
        exec_id="m",
        bracket_id="m",
        order_id="m-entry",
        symbol="MES",
        side=OrderSide.BUY,
        quantity=1,
        price=20000 * TICK,
        ts_ns=1,
        role="entry",
    )
    book.apply(mes)
    (trade,) = book.apply(
        mes.model_copy(
            update={
                "exec_id": "mx",
                "side": OrderSide.SELL,
                "price": 20004 * TICK,
                "role": "target",
            }
        )
    )
    assert trade.tick_value == Decimal("1.25") and trade.net_pnl == Decimal("5.00")


def test_orders_round_trip_through_json():
    order = Order("o", "b", "stop", "ES", OrderSide.SELL, 2, 5, price=19990 * TICK)
    assert Order.from_dict(order.to_dict()) == order
