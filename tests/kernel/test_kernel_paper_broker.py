"""The paper broker's fill rules, trade by trade."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from tradebot_plugins.brokers.paper import PaperBroker, PaperSettings

from tradebot_core.components import PluginContext
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import TICK_DTYPE, Direction, OrderIntent, OrderSide, Signal

TICK = 250_000_000


def ticks_at(prices_in_ticks: list[int], t0: int = 1_000) -> np.ndarray:
    ticks = np.zeros(len(prices_in_ticks), dtype=TICK_DTYPE)
    ticks["ts_event"] = t0 + np.arange(len(prices_in_ticks))
    ticks["price"] = np.array(prices_in_ticks) * TICK
    ticks["size"] = 1
    return ticks


def broker(**settings) -> tuple[PaperBroker, list]:
    context = PluginContext(
        symbol="ES", instruments=InstrumentRegistry(), timeframe_s=60, data_dir=None
    )
    paper = PaperBroker(PaperSettings(**settings), context)
    fills: list = []
    paper.on_fill = fills.append
    return paper, fills


def intent(direction=Direction.LONG, stop=4, target=8, quantity=1) -> OrderIntent:
    signal = Signal(
        pattern="p",
        direction=direction,
        price=Decimal("5000"),
        bar_ts_ns=0,
        strength=1,
        reason="test",
    )
    return OrderIntent(
        symbol="ES",
        direction=direction,
        quantity=quantity,
        stop_ticks=stop,
        target_ticks=target,
        signal=signal,
    )


def test_market_entry_pays_slippage_and_commission_on_first_trade():
    paper, fills = broker(slippage_ticks=2, commission_per_side=Decimal("2.25"))
    paper.submit_bracket(intent(quantity=3), "b1", 0)
    paper.on_ticks("ES", ticks_at([20000, 20001]))
    assert len(fills) == 1
    assert fills[0].price == (20000 + 2) * TICK
    assert fills[0].ts_ns == 1000
    assert fills[0].commission == Decimal("6.75")


def test_stop_gapped_through_fills_at_the_trade_never_better():
    paper, fills = broker(slippage_ticks=0)
    paper.submit_bracket(intent(stop=4), "b1", 0)
    # entry at 20000 -> stop 19996; the market gaps from 19998 to 19990
    paper.on_ticks("ES", ticks_at([20000, 19998, 19990, 19985]))
    assert [f.role for f in fills] == ["entry", "stop"]
    assert fills[1].price == 19990 * TICK
    assert fills[1].ts_ns == 1002


def test_short_stop_at_the_price_fills_with_slippage():
    paper, fills = broker(slippage_ticks=1)
    paper.submit_bracket(intent(Direction.SHORT, stop=4), "b1", 0)
    # entry sells 20000 - 1 = 19999 -> stop at 20003
    paper.on_ticks("ES", ticks_at([20000, 20002, 20003, 20004]))
    assert fills[1].role == "stop"
    assert fills[1].price == (20003 + 1) * TICK
    assert fills[1].side == "buy"


@pytest.mark.parametrize(("mode", "expected_ts"), [("through", 1003), ("touch", 1002)])
def test_target_fills_through_by_default_or_on_touch(mode, expected_ts):
    paper, fills = broker(slippage_ticks=0, limit_fill=mode)
    paper.submit_bracket(intent(target=8), "b1", 0)
    paper.on_ticks("ES", ticks_at([20000, 20004, 20008, 20009]))
    assert fills[1].role == "target"
    assert fills[1].price == 20008 * TICK
    assert fills[1].ts_ns == expected_ts


def test_stop_and_target_inactive_on_the_entry_trade_and_split_batches_agree():
    prices = [20000, 20002, 19999, 19996, 20010]
    whole, fills_whole = broker(slippage_ticks=0)
    whole.submit_bracket(intent(stop=4, target=8), "b1", 0)
    whole.on_ticks("ES", ticks_at(prices))
    split, fills_split = broker(slippage_ticks=0)
    split.submit_bracket(intent(stop=4, target=8), "b1", 0)
    ticks = ticks_at(prices)
    for i in range(len(ticks)):
        split.on_ticks("ES", ticks[i : i + 1])
    assert fills_whole == fills_split
    assert [f.role for f in fills_whole] == ["entry", "stop"]


def test_flatten_from_a_fill_handler_exits_on_the_next_trade_of_the_same_scan():
    paper, fills = broker(slippage_ticks=0)
    paper.submit_bracket(intent(stop=2, target=50), "a", 0)
    paper.submit_bracket(intent(stop=50, target=50), "b", 0)

    def handler(fill):
        fills.append(fill)
        if fill.role == "stop":  # what is left long: 1 (bracket b); the kernel sells it
            paper.flatten("ES", "F1", OrderSide.SELL, 1, "loss limit", fill.ts_ns)

    paper.on_fill = handler
    paper.on_ticks("ES", ticks_at([20000, 20001, 19997, 19995, 19990]))
    roles = [(f.order_id, f.role, f.ts_ns) for f in fills]
    assert roles == [
        ("a-entry", "entry", 1000),
        ("b-entry", "entry", 1000),
        ("a-stop", "stop", 1002),
        ("F1", "flatten", 1003),
    ]
    assert fills[-1].side == "sell" and fills[-1].price == 19995 * TICK
    assert paper.report() == {"positions": {}, "working": []}  # b's stop and target went too


def test_working_orders_from_the_kernel_survive_a_restore():
    from tradebot_core.execution.orders import Bracket, OrderBook

    paper, fills = broker(slippage_ticks=0)
    paper.submit_bracket(intent(stop=4, target=8), "b1", 0)
    paper.on_ticks("ES", ticks_at([20000]))
    assert paper.report() == {"positions": {"ES": 1}, "working": ["b1-stop", "b1-target"]}
    # the kernel's books after that entry fill: what a restart gives the broker back
    book = OrderBook()
    book.open_bracket(Bracket("b1", "ES", Direction.LONG, 1, 4, 8, "p", 0))
    book.fill("b1-entry", 1, fills[0].price, 1000)
    from tradebot_core.execution.orders import Order, OrderStatus

    for role, ticks in (("stop", -4), ("target", 8)):
        book.add(
            Order(
                f"b1-{role}",
                "b1",
                role,
                "ES",
                OrderSide.SELL,
                1,
                1000,
                price=(20000 + ticks) * TICK,
                status=OrderStatus.ACCEPTED,
            )
        )
    again, fills_again = broker(slippage_ticks=0)
    again.restore(book.working(), book.brackets)
    assert again.report() == paper.report()
    again.on_ticks("ES", ticks_at([20003, 20009], t0=5000))
    assert [f.role for f in fills_again] == ["target"]
    assert fills_again[0].price == 20008 * TICK
