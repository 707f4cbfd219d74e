"""The ``paper`` broker: bracket orders filled against the feed's own trades.

Rules (all prices on the instrument's tick grid; fills are reported at the tick that made them):

* **Entry** is a market order. It fills at the first trade seen after it was sent, at that trade's
  price worsened by ``slippage_ticks`` (a buy pays more, a sell receives less).
* **Stop** (the protective half of the OCO pair) triggers at the first trade *at or through* the
  stop price and fills at that trade's price worsened by ``slippage_ticks``: never at a better
  price than the trade, so a gap through the stop costs what it would cost.
* **Target** is a limit order. With ``limit_fill: through`` (the default, honest for a queue you
  are probably at the back of) it fills only when a trade prints *beyond* the limit; with
  ``touch``, a trade at the limit is enough. It fills at the limit price, without slippage.
* Stop and target become active on the trade after the entry fill; if one trade triggers both,
  the stop wins (the pessimistic reading of a bar you cannot see inside).
* **Flatten** exits the net position at market on the next trade (one order for the whole
  quantity), and the brackets' stops and targets go with it. On a live feed a market order that
  has waited a second without any trade (the feed is down) fills at the last trade's price,
  worsened by ``slippage_ticks``, when the wall clock asks (:meth:`PaperBroker.on_time`).
* ``commission_per_side`` (per contract, per fill; ``commissions`` overrides it per symbol) is
  charged on every fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from pydantic import Field

from tradebot_core import (
    Broker,
    Direction,
    Fill,
    OrderIntent,
    OrderSide,
    OrderUpdate,
    PluginContext,
    PluginSettings,
    hookimpl,
    root_symbol,
)


class PaperSettings(PluginSettings):
    slippage_ticks: int = Field(default=1, ge=0)
    """Ticks lost on every market fill (entries, stops, flattens)."""
    commission_per_side: Decimal = Field(default=Decimal("0.62"), ge=0)
    """Dollars per contract per fill."""
    commissions: dict[str, Decimal] = Field(default_factory=dict)
    """Per-symbol overrides of commission_per_side, e.g. {ES: 2.25}."""
    limit_fill: str = Field(default="through", pattern="^(through|touch)$")
    day_margins: dict[str, Decimal] = Field(
        default_factory=lambda: dict(DAY_MARGINS), validate_default=True
    )
    """Day-trade margin per contract the simulated account is charged (a live broker reads its
    own): what ``risk.margin_limits`` is checked against before a day's first trade."""


DAY_MARGINS = {
    "MES": Decimal("40"),
    "ES": Decimal("400"),
    "MNQ": Decimal("100"),
    "NQ": Decimal("1000"),
    "CL": Decimal("1000"),
    "GC": Decimal("1000"),
}
"""Common discount-broker day-trade margins (US$ per contract)."""


@dataclass
class _Bracket:
    """What the simulated venue holds for one bracket (or one flatten order)."""

    bracket_id: str
    symbol: str
    direction: int  # +1 long, -1 short (for a flatten: the side of the exit, +1 buys)
    quantity: int
    stop_ticks: int
    target_ticks: int
    state: str = "pending"  # pending -> open -> closed; "exit" for a flatten order
    entry_price: int = 0
    stop_price: int = 0
    target_price: int = 0
    order_id: str = ""  # the flatten order's id
    active_from: int = 0  # index within the current scan from which it may act
    since_ns: int = 0  # when it started waiting for a trade (market orders)


class PaperBroker(Broker):
    """Fills brackets against the feed's trades. See the module docstring for the rules.

    A simulated venue: it reports what happens to the kernel's orders (fills with execution ids,
    cancels) exactly as a live broker does, and the kernel keeps the books. After a restart it
    is given the kernel's working orders back (:meth:`restore`).
    """

    name = "paper"
    Settings = PaperSettings
    real_money = False  # a simulated venue: no live switches needed

    def __init__(self, settings: PaperSettings, context: PluginContext) -> None:
        self.settings = settings
        self.instruments = context.instruments
        self._tick = context.instrument.tick_fixed
        self._slip = settings.slippage_ticks * self._tick
        self._through = settings.limit_fill == "through"
        self._working: list[_Bracket] = []
        self._fills = 0
        self.last_price = 0
        self.last_ts_ns = 0
        self.on_fill: Any = lambda fill: None
        self.on_order_update: Any = lambda update: None

    # -- orders ----------------------------------------------------------------------------------

    def submit_bracket(self, intent: OrderIntent, bracket_id: str, ts_ns: int) -> None:
        if self.instruments[intent.symbol].tick_fixed != self._tick:
            raise ValueError(f"{intent.symbol} does not tick like the feed's instrument")
        self._working.append(
            _Bracket(
                bracket_id=bracket_id,
                symbol=intent.symbol,
                direction=1 if intent.direction is Direction.LONG else -1,
                quantity=intent.quantity,
                stop_ticks=intent.stop_ticks,
                target_ticks=intent.target_ticks,
                active_from=self._next_index(),
                since_ns=ts_ns,
            )
        )
        self.on_order_update(
            OrderUpdate(order_id=f"{bracket_id}-entry", status="accepted", ts_ns=ts_ns)
        )

    def flatten(
        self, symbol: str, order_id: str, side: OrderSide, quantity: int, reason: str, ts_ns: int
    ) -> None:
        """Exit the position at the next trade (one market order for the net quantity) and
        cancel the brackets' stops and targets (reported as cancelled by the kernel's books)."""
        for bracket in self._working:
            if bracket.symbol == symbol and bracket.state in ("open", "pending"):
                bracket.state = "closed"
        self._working = [b for b in self._working if b.state != "closed"]
        self._working.append(
            _Bracket(
                bracket_id=order_id,
                symbol=symbol,
                direction=1 if side is OrderSide.BUY else -1,
                quantity=quantity,
                stop_ticks=0,
                target_ticks=0,
                state="exit",
                order_id=order_id,
                active_from=self._next_index(),
                since_ns=ts_ns,
            )
        )

    def cancel(self, order_id: str, reason: str) -> None:
        """Cancel an entry not filled yet (its bracket goes with it)."""
        bracket_id = order_id.removesuffix("-entry")
        kept = []
        for bracket in self._working:
            if bracket.bracket_id == bracket_id and bracket.state == "pending":
                self.on_order_update(
                    OrderUpdate(
                        order_id=order_id,
                        status="cancelled",
                        ts_ns=self.last_ts_ns,
                        reason=reason,
                    )
                )
                continue
            kept.append(bracket)
        self._working = kept

    def day_margin(self, symbol: str) -> Decimal | None:
        """Today's day-trade margin per contract (from the settings' table)."""
        margins = self.settings.day_margins
        return margins.get(symbol, margins.get(root_symbol(symbol)))

    def report(self) -> dict[str, Any]:
        """What the venue holds: net position per symbol and the working order ids."""
        positions: dict[str, int] = {}
        working: list[str] = []
        for b in self._working:
            if b.state == "open":
                positions[b.symbol] = positions.get(b.symbol, 0) + b.direction * b.quantity
                working += [f"{b.bracket_id}-stop", f"{b.bracket_id}-target"]
            elif b.state == "pending":
                working.append(f"{b.bracket_id}-entry")
            elif b.state == "exit":
                working.append(b.order_id)
        return {"positions": {k: v for k, v in positions.items() if v}, "working": working}

    def restore(self, orders: list[Any], brackets: dict[str, Any]) -> None:
        """Take back the kernel's working orders after a restart (the venue is this process)."""
        by_bracket: dict[str, dict[str, Any]] = {}
        self._working = []
        for order in orders:
            role = order.role
            if role == "flatten":
                self._working.append(
                    _Bracket(
                        bracket_id=order.order_id,
                        symbol=order.symbol,
                        direction=1 if order.side is OrderSide.BUY else -1,
                        quantity=order.remaining,
                        stop_ticks=0,
                        target_ticks=0,
                        state="exit",
                        order_id=order.order_id,
                    )
                )
                continue
            by_bracket.setdefault(order.bracket_id, {})[role] = order
        for bracket_id, legs in by_bracket.items():
            entry, stop, target = legs.get("entry"), legs.get("stop"), legs.get("target")
            if stop is not None and target is not None:
                direction = -1 if stop.side is OrderSide.BUY else 1
                self._working.append(
                    _Bracket(
                        bracket_id=bracket_id,
                        symbol=stop.symbol,
                        direction=direction,
                        quantity=stop.remaining,
                        stop_ticks=0,
                        target_ticks=0,
                        state="open",
                        stop_price=int(stop.price),
                        target_price=int(target.price),
                    )
                )
            elif entry is not None and entry.filled == 0 and bracket_id in brackets:
                direction = 1 if entry.side is OrderSide.BUY else -1
                self._working.append(
                    _Bracket(
                        bracket_id=bracket_id,
                        symbol=entry.symbol,
                        direction=direction,
                        quantity=entry.remaining,
                        stop_ticks=brackets[bracket_id].stop_ticks,
                        target_ticks=brackets[bracket_id].target_ticks,
                    )
                )

    def working_brackets(self) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in vars(b).items() if k not in ("active_from", "since_ns")}
            for b in self._working
        ]

    # -- the scan --------------------------------------------------------------------------------

    _scanning = False
    _scan_index = 0

    def _next_index(self) -> int:
        return self._scan_index + 1 if self._scanning else 0

    def on_ticks(self, symbol: str, ticks: np.ndarray) -> None:
        if len(ticks):
            self.last_price = int(ticks["price"][-1])
            self.last_ts_ns = int(ticks["ts_event"][-1])
        if not self._working or len(ticks) == 0:
            return
        prices = ticks["price"]
        self._scanning = True
        try:
            while self._working:
                event = self._next_event(prices)
                if event is None:
                    break
                index, bracket, what = event
                self._scan_index = index
                self._execute(bracket, what, int(prices[index]), int(ticks["ts_event"][index]))
                self._working = [b for b in self._working if b.state != "closed"]
        finally:
            self._scanning = False
            self._scan_index = 0
        for bracket in self._working:
            bracket.active_from = 0

    def on_time(self, now_ns: int) -> None:
        """The wall clock (live runs): with no trade for a second (the feed is down), a waiting
        market order fills at the last trade's price, worsened by the slippage."""
        if not self.last_price or now_ns - self.last_ts_ns < 1_000_000_000:
            return  # trades are coming: they fill the orders
        for bracket in list(self._working):
            if bracket.state in ("pending", "exit"):
                what = "entry" if bracket.state == "pending" else "flatten"
                self._execute(bracket, what, self.last_price, now_ns)
        self._working = [b for b in self._working if b.state != "closed"]

    def _next_event(self, prices: np.ndarray) -> tuple[int, _Bracket, str] | None:
        best: tuple[int, int, _Bracket, str] | None = None
        n = len(prices)
        for order, bracket in enumerate(self._working):
            start = bracket.active_from
            if start >= n:
                continue
            if bracket.state == "pending":
                candidate = (start, order, bracket, "entry")
            elif bracket.state == "exit":
                candidate = (start, order, bracket, "flatten")
            else:
                found = self._trigger(bracket, prices[start:])
                if found is None:
                    continue
                candidate = (start + found[0], order, bracket, found[1])
            if best is None or candidate[:2] < best[:2]:
                best = candidate
        return None if best is None else (best[0], best[2], best[3])

    def _trigger(self, b: _Bracket, prices: np.ndarray) -> tuple[int, str] | None:
        if b.direction > 0:
            stop_hit = prices <= b.stop_price
            target_hit = prices > b.target_price if self._through else prices >= b.target_price
        else:
            stop_hit = prices >= b.stop_price
            target_hit = prices < b.target_price if self._through else prices <= b.target_price
        stop_at = int(stop_hit.argmax()) if stop_hit.any() else None
        target_at = int(target_hit.argmax()) if target_hit.any() else None
        if stop_at is None and target_at is None:
            return None
        if target_at is None or (stop_at is not None and stop_at <= target_at):
            return stop_at, "stop"
        return target_at, "target"

    def _execute(self, b: _Bracket, what: str, trade_price: int, ts: int) -> None:
        if what == "entry":
            price = trade_price + b.direction * self._slip
            b.state, b.entry_price, b.active_from = "open", price, self._scan_index + 1
            b.stop_price = price - b.direction * b.stop_ticks * self._tick
            b.target_price = price + b.direction * b.target_ticks * self._tick
            side = OrderSide.BUY if b.direction > 0 else OrderSide.SELL
            order_id = f"{b.bracket_id}-entry"
        elif what == "flatten":
            price = trade_price + b.direction * self._slip  # direction is the exit's side here
            b.state = "closed"
            side = OrderSide.BUY if b.direction > 0 else OrderSide.SELL
            order_id = b.order_id
        else:
            # a target fills at its limit; a stop at market, at the trade or worse
            market = trade_price - b.direction * self._slip
            price = b.target_price if what == "target" else market
            b.state = "closed"
            side = OrderSide.SELL if b.direction > 0 else OrderSide.BUY
            order_id = f"{b.bracket_id}-{what}"
        self._fills += 1
        fill = Fill(
            exec_id=f"P-{order_id}-{ts}",
            bracket_id=b.bracket_id,
            order_id=order_id,
            symbol=b.symbol,
            side=side,
            quantity=b.quantity,
            price=price,
            ts_ns=ts,
            role=what,
            commission=self._commission(b.symbol) * b.quantity,
        )
        self.on_fill(fill)

    def _commission(self, symbol: str) -> Decimal:
        overrides = self.settings.commissions
        return overrides.get(
            symbol, overrides.get(root_symbol(symbol), self.settings.commission_per_side)
        )


@hookimpl
def register_brokers(register: Any) -> None:
    register(PaperBroker)
