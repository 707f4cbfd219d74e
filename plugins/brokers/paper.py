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
* **Flatten** exits every open position at market on the next trade and cancels unfilled entries.
* ``commission_per_side`` (per contract, per fill; ``commissions`` overrides it per symbol) is
  charged on every fill.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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


@dataclass
class _Bracket:
    bracket_id: str
    symbol: str
    direction: int  # +1 long, -1 short
    quantity: int
    stop_ticks: int
    target_ticks: int
    state: str = "pending"  # pending -> open -> closed
    entry_price: int = 0
    stop_price: int = 0
    target_price: int = 0
    flatten: bool = False
    active_from: int = 0  # index within the current scan from which it may act

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("active_from")
        return data


class PaperBroker(Broker):
    """Fills brackets against the feed's trades. See the module docstring for the rules."""

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
        self.on_fill: Any = lambda fill: None

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
            )
        )

    def flatten(self, reason: str, ts_ns: int) -> None:
        """Exit open positions at the next trade; drop entries not yet filled."""
        next_index = self._scan_index + 1 if self._scanning else 0
        for bracket in self._working:
            if bracket.state == "open":
                bracket.flatten = True
                bracket.active_from = max(bracket.active_from, next_index)
            else:
                bracket.state = "closed"
        self._working = [b for b in self._working if b.state != "closed"]

    def cancel_entries(self, reason: str) -> list[str]:
        """Drop brackets still waiting for their entry (a session ended under them)."""
        cancelled = [b.bracket_id for b in self._working if b.state == "pending"]
        self._working = [b for b in self._working if b.state != "pending"]
        return cancelled

    def working_brackets(self) -> list[dict[str, Any]]:
        return [b.to_dict() for b in self._working]

    def restore(self, brackets: list[dict[str, Any]]) -> None:
        self._working = [_Bracket(**data) for data in brackets]

    # -- the scan --------------------------------------------------------------------------------

    _scanning = False
    _scan_index = 0

    def on_ticks(self, symbol: str, ticks: np.ndarray) -> None:
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
                self._execute(bracket, what, ticks, index)
                self._working = [b for b in self._working if b.state != "closed"]
        finally:
            self._scanning = False
        for bracket in self._working:
            bracket.active_from = 0

    def _next_event(self, prices: np.ndarray) -> tuple[int, _Bracket, str] | None:
        best: tuple[int, int, _Bracket, str] | None = None
        n = len(prices)
        for order, bracket in enumerate(self._working):
            start = bracket.active_from
            if start >= n:
                continue
            if bracket.state == "pending":
                candidate = (start, order, bracket, "entry")
            elif bracket.flatten:
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

    def _execute(self, b: _Bracket, what: str, ticks: np.ndarray, index: int) -> None:
        trade_price = int(ticks["price"][index])
        ts = int(ticks["ts_event"][index])
        if what == "entry":
            price = trade_price + b.direction * self._slip
            b.state, b.entry_price, b.active_from = "open", price, index + 1
            b.stop_price = price - b.direction * b.stop_ticks * self._tick
            b.target_price = price + b.direction * b.target_ticks * self._tick
            side = OrderSide.BUY if b.direction > 0 else OrderSide.SELL
        else:
            # a target fills at its limit; a stop or flatten at market, at the trade or worse
            market = trade_price - b.direction * self._slip
            price = b.target_price if what == "target" else market
            b.state = "closed"
            side = OrderSide.SELL if b.direction > 0 else OrderSide.BUY
        fill = Fill(
            bracket_id=b.bracket_id,
            order_id=f"{b.bracket_id}-{what}",
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
