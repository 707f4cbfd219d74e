"""The synchronous core: batch -> footprint -> regime -> detectors -> router -> risk -> orders.

No I/O of its own, no asyncio, no wall time: replays, backtests and live runs all drive this
same object (the runner feeds it batches and venue reports; the wall clock, in live runs only,
calls :meth:`Session.advance_clock`). What it decides leaves through the event bus and through
``on_commit(state)``, called at the end of every change that matters with the state a restart
needs.

The hot path, per tick batch:

1. drop bad ticks, row by row (price <= 0 or off the tick grid, a jump beyond the price band,
   size <= 0, a bad side, time going backwards or out of range), counted;
2. the footprint engine stores the bars the batch closes, and says at which tick each closed;
3. the batch is cut at those ticks and at the day's scheduled moments (flatten, digest, roll);
   the broker sees each slice; at each bar cut the bar is revealed and the regime classifier,
   the detectors and the router run, so an order sent on bar N's close fills at the earliest on
   the tick that closed it, the first trade after bar N. Results do not depend on batching.

Transactions: with a simulated venue (the paper broker fills inside ``on_ticks``), a slice of
ticks is one transaction: its fills, the order states, the positions, the day's P&L and the
risk state are committed together with the resume point (how many ticks are done). A venue
that reports from elsewhere (a live broker) has each report committed as it is applied.

Warm-up: ``warmup_ticks`` ticks are first played without trading (bars, indicators and
detectors only), which is how a resumed replay rebuilds its state up to where it stopped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np

from .account import Account
from .config import TradebotConfig
from .events import EventBus
from .execution.orders import Bracket, Order, OrderBook, OrderStateError, OrderStatus
from .execution.positions import PositionBook
from .footprint import FootprintEngine
from .instruments import InstrumentRegistry, root_symbol
from .risk import RiskManager, RiskState
from .run.clock import Moment, day_plan, day_start_ns, trading_day
from .types import (
    Direction,
    EventKind,
    FeedStatus,
    FeedStatusKind,
    Fill,
    OrderIntent,
    OrderSide,
    OrderUpdate,
    RegimeState,
    Signal,
    TickBatch,
    Trade,
)

log = logging.getLogger(__name__)

EARLIEST_NS = 946_684_800 * 10**9  # 2000-01-01: a tick before it is a bad timestamp
LATEST_NS = 4_102_444_800 * 10**9  # 2100-01-01


@dataclass
class RunSummary:
    bars: int = 0
    signals: int = 0
    orders: int = 0
    rejected: int = 0
    trades: int = 0
    net_pnl: Decimal = Decimal("0")
    ticks: int = 0
    dropped_ticks: int = 0
    warmup_ticks: int = 0
    warmup_bars: int = 0
    wall_seconds: float = 0.0
    patterns: Counter[str] = field(default_factory=Counter)
    dropped_by_reason: Counter[str] = field(default_factory=Counter)
    exit: str = "completed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "bars": self.bars,
            "signals": self.signals,
            "orders": self.orders,
            "rejected": self.rejected,
            "trades": self.trades,
            "net_pnl": str(self.net_pnl),
            "ticks": self.ticks,
            "dropped_ticks": self.dropped_ticks,
            "dropped_by_reason": dict(sorted(self.dropped_by_reason.items())),
            "warmup_ticks": self.warmup_ticks,
            "warmup_bars": self.warmup_bars,
            "wall_seconds": round(self.wall_seconds, 6),
            "patterns": dict(sorted(self.patterns.items())),
            "exit": self.exit,
        }


class Session:
    """One account trading one feed's instrument. See the module docstring."""

    def __init__(
        self,
        config: TradebotConfig,
        instruments: InstrumentRegistry,
        *,
        regime: Any,
        detectors: list[Any],
        router: Any,
        broker: Any,
        bus: EventBus,
        account: Account,
        id_prefix: str = "R0",
    ) -> None:
        self.config = config
        self.instruments = instruments
        self.data_symbol = config.symbol
        self.instrument = instruments[config.symbol]
        self.regime = regime
        self.detectors = detectors
        self.router = router
        self.broker = broker
        self.bus = bus
        self.account = account
        self.engine = FootprintEngine(self.instrument, config.timeframe_s)
        self.history = self.engine.history
        self.orders = OrderBook()
        self.positions = PositionBook(instruments)
        self.risk = RiskManager(config.risk)
        self.summary = RunSummary()
        self.id_prefix = id_prefix
        self.on_commit: Callable[[dict[str, Any]], None] | None = None
        self.regime_state: RegimeState | None = None
        self.last_ts_ns = 0
        self.last_price = 0
        self.ticks_done = 0  # sanitized ticks processed (warm-up included): the resume point
        self.warmup_ticks = 0
        self._saved_resume: dict[str, int] = {"ticks": 0, "last_ts_ns": 0, "last_price": 0}
        self.exec_ids: set[str] = set()
        self.digest_sent: set[date] = set()
        self._seq = 0
        self._schedule: list[Moment] = []
        self._planned_day: date | None = None
        self._dirty = False
        self._in_slice = False
        self._margin_days: set[date | None] = set()
        self._band_f = float(config.risk.price_band_pct) / 100
        self.exit_request: str | None = None  # the session asks the run to end (e.g. margins)
        self.bars_only = False  # warm-up builds bars alone (a backtest's first pass)
        broker.on_fill = self.on_fill
        broker.on_order_update = self.on_order_update

    # -- the hot path ------------------------------------------------------------------------

    @property
    def trading(self) -> bool:
        return self.ticks_done >= self.warmup_ticks

    def process_batch(self, batch: TickBatch) -> None:
        """One batch of trades through footprint, decisions and broker."""
        ticks = self._sanitize(batch)
        if len(ticks) == 0:
            return
        if batch.warmup:  # history a live feed replays: bars and indicators, no trading
            self._warm(ticks)
            self.warmup_ticks = max(self.warmup_ticks, self.ticks_done)
            return
        if not self.trading:
            left = self.warmup_ticks - self.ticks_done
            if len(ticks) <= left:
                self._warm(ticks)
                return
            self._warm(ticks[:left])
            ticks = ticks[left:]
        self._trade(ticks)

    def _warm(self, ticks: np.ndarray) -> None:
        """Bars, regime and detectors from ``ticks``, without trading or journaling."""
        for _ in self.engine.update(ticks, reveal=False):
            self.engine.release_next()
            if not self.bars_only:
                self._classify_and_detect()
        self.ticks_done += len(ticks)
        self.summary.warmup_ticks += len(ticks)
        self.last_ts_ns = int(ticks["ts_event"][-1])
        self.last_price = int(ticks["price"][-1])

    def warm_from_bars(
        self, bars: np.ndarray, bid: np.ndarray, ask: np.ndarray, volume: np.ndarray
    ) -> None:
        """Closed bars from before the run (a backtest day's previous days, a live start's
        history) into the history, the regime classifier and the detectors, one bar at a time,
        as if they had closed here: nothing trades, nothing is journaled. ``level_start`` is
        relative to the given level arrays."""
        for i in range(len(bars)):
            bar = bars[i : i + 1].copy()
            start, count = int(bar["level_start"][0]), int(bar["level_count"][0])
            bar["level_start"] = 0
            end = start + count
            self.history.append(bar, bid[start:end], ask[start:end], volume[start:end])
            self._classify_and_detect()
        self.summary.warmup_bars += len(bars)

    def _classify_and_detect(self) -> tuple[RegimeState, list[Signal]]:
        state = self.regime.classify(self.history)
        self.regime_state = state
        signals = [s for d in self.detectors for s in d.on_bar_closed(self.history)]
        return state, signals

    def _trade(self, ticks: np.ndarray) -> None:
        n = len(ticks)
        ts = ticks["ts_event"]
        self.summary.ticks += n
        if self._planned_day is None:  # the first tick traded: plan its day
            self._roll_day(int(ts[0]))
        cuts = self.engine.update(ticks, reveal=False)
        events: list[tuple[int, int, str]] = [(int(c), 1, "bar") for c in cuts]
        last = int(ts[-1])
        while self._schedule and self._schedule[0][0] <= last:
            due, what = self._schedule.pop(0)
            events.append((int(np.searchsorted(ts, due, side="left")), 0, what))
            if what == "roll":  # plan the next day now: its times may fall in this batch too
                self._plan(trading_day(due))
        if len(events) > 1:
            events.sort()
        base = self.ticks_done
        start = 0
        for index, _, what in events:
            if index > start:
                self._slice(ticks[start:index], base + index)
                start = index
            if what == "bar":
                self._on_bar_closed(int(ts[index]))
            else:
                self._on_moment(what, int(ts[index]))
        if start < n:
            self._slice(ticks[start:], base + n)
        self.ticks_done = base + n
        self.last_ts_ns = last
        self.last_price = int(ticks["price"][-1])
        self.commit_if_dirty()

    def _slice(self, ticks: np.ndarray, done_after: int) -> None:
        self._in_slice = True
        try:
            self.broker.on_ticks(self.data_symbol, ticks)
        finally:
            self._in_slice = False
        if self._dirty:
            self.ticks_done = done_after
            self.last_ts_ns = int(ticks["ts_event"][-1])
            self.last_price = int(ticks["price"][-1])
            self.commit()

    def _sanitize(self, batch: TickBatch) -> np.ndarray:
        ticks = batch.ticks
        if len(ticks) == 0:
            return ticks
        if root_symbol(batch.symbol) != root_symbol(self.data_symbol):
            self.drop(len(ticks), f"ticks of {batch.symbol} in a {self.data_symbol} run")
            return ticks[:0]
        ts = ticks["ts_event"]
        price = ticks["price"]
        side = ticks["side"]
        if self._all_good(ticks, ts, price, side):
            return ticks
        ok = (ticks["size"] > 0) & (price > 0) & (price % self.instrument.tick_fixed == 0)
        ok &= (side >= -1) & (side <= 1) & (ts >= EARLIEST_NS) & (ts < LATEST_NS)
        ordered = ts >= max(self.last_ts_ns, int(ts[0]))
        if not ordered.all() or (len(ts) > 1 and (np.diff(ts) < 0).any()):
            ordered &= ts >= np.maximum.accumulate(np.maximum(ts, self.last_ts_ns))
        ok &= ordered
        ok = self._in_band(price, ok)
        if ok.all():
            return ticks
        bad = int((~ok).sum())
        self.drop(
            bad,
            "price <= 0, off the tick grid or beyond the price band; size <= 0; bad side; "
            "time out of range or going backwards",
        )
        return ticks[ok]

    def _all_good(
        self, ticks: np.ndarray, ts: np.ndarray, price: np.ndarray, side: np.ndarray
    ) -> bool:
        """The common case in a few reductions (no masks): every tick passes every check. When
        this says no, :meth:`_sanitize` finds which ticks fail, row by row."""
        tick = self.instrument.tick_fixed
        low, high = int(price.min()), int(price.max())
        if low <= 0 or high >= tick << 30:  # huge prices: leave them to the exact check
            return False
        if int(ticks["size"].min()) <= 0 or int(side.min()) < -1 or int(side.max()) > 1:
            return False
        if int(ts[0]) < max(self.last_ts_ns, EARLIEST_NS) or int(ts[-1]) >= LATEST_NS:
            return False
        if len(ts) > 1 and int(np.diff(ts).min()) < 0:
            return False
        quotient = price / float(tick)  # exact below tick x 2**30: an integer iff on the grid
        if (np.floor(quotient) != quotient).any():
            return False
        band = int(low * self._band_f)
        previous = self.last_price or int(price[0])
        if abs(int(price[0]) - previous) > band:
            return False
        return len(price) < 2 or int(np.abs(np.diff(price)).max()) <= band

    def _in_band(self, price: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """False for a print further than ``price_band_pct`` from the last good price before it
        (the run's first print sets the reference). Ticks already bad are left as they are."""
        first = self.last_price or int(price[np.argmax(ok)]) if ok.any() else 0
        if not first:
            return ok
        if ok.all():  # the common case: the reference is simply the previous print
            reference = np.empty_like(price)
            reference[0] = first
            reference[1:] = price[:-1]
            inside = np.abs(price - reference) <= (reference * self._band_f).astype(np.int64)
            if inside.all():
                return ok
        good = ok.copy()
        for _ in range(2):  # the second pass: a good print after a spike is judged without it
            last_good = np.maximum.accumulate(np.where(good, np.arange(len(price)), -1))
            previous = np.concatenate(([-1], last_good[:-1]))
            reference = np.where(previous >= 0, price[np.maximum(previous, 0)], first)
            inside = np.abs(price - reference) <= (reference * self._band_f).astype(np.int64)
            good = ok & inside
        return good

    def drop(self, count: int, why: str) -> None:
        """Count ``count`` ticks dropped (by this core or by the feed) and say why."""
        self.summary.dropped_ticks += count
        self.summary.dropped_by_reason[why] += count
        log.warning("dropped %d bad ticks: %s", count, why)

    # -- bars, signals, orders ---------------------------------------------------------------

    def _on_bar_closed(self, ts_ns: int) -> None:
        self.engine.release_next()
        self.summary.bars += 1
        previous = self.regime_state
        state, signals = self._classify_and_detect()
        if previous is None or previous.regime != state.regime:
            self.bus.publish(
                EventKind.REGIME_CHANGED,
                ts_ns,
                state,
                f"regime {state.regime.value} ({state.confidence:.0%})",
            )
        if self.bus.wants(EventKind.BAR_CLOSED):
            self.bus.publish(EventKind.BAR_CLOSED, ts_ns, bar_payload(self.history, -1))
        for signal in signals:
            self._on_signal(signal, state, ts_ns)

    def _on_signal(self, signal: Signal, state: RegimeState, ts_ns: int) -> None:
        self.summary.signals += 1
        self.summary.patterns[signal.pattern] += 1
        if not signal.symbol:
            signal = signal.model_copy(update={"symbol": self.data_symbol})
        self.bus.publish(
            EventKind.SIGNAL,
            ts_ns,
            signal,
            f"{signal.pattern} {signal.direction.value} at {signal.price}",
        )
        decision = self.router.route(signal, state)
        reasons = list(decision.reasons)
        intent = decision.intent
        reverse = False
        if intent is not None:
            intent = self._apply_account(intent, reasons)
            if not self.risk.state.margin_checked:
                self._check_margin(intent.symbol, ts_ns)
            why, reverse = self._position_check(intent)
            if why is None:
                exposure = 0 if reverse else self._exposure(intent.direction)
                instrument = self.instruments[intent.symbol]
                why = self.risk.rejects(intent, exposure, self.account.balance, instrument)
                if why is not None and why.startswith("margin"):
                    self._margin_day(why, ts_ns)
            if why is not None:
                reasons.append(f"risk: {why}")
                intent = None
            else:
                reasons.append("risk: ok" + ("; reversing the open position" if reverse else ""))
                intent = intent.model_copy(update={"reasons": tuple(reasons)})
        decision = decision.model_copy(update={"intent": intent, "reasons": tuple(reasons)})
        self.bus.publish(
            EventKind.ROUTE_DECISION,
            ts_ns,
            decision,
            f"{signal.pattern}: {'approved' if intent else 'rejected'}: {reasons[-1]}",
        )
        if intent is None:
            self.summary.rejected += 1
            return
        if reverse:
            self.flatten_all("reversing on an opposite signal", ts_ns)
        self._submit(intent, ts_ns)

    def _position_check(self, intent: OrderIntent) -> tuple[str | None, bool]:
        """(why it may not trade, whether it reverses): one net position per contract."""
        held = self._held_direction()
        if held is None or held is intent.direction:
            return None, False
        if self.config.risk.opposite_signal == "reverse":
            return None, True
        net = self.positions.net()
        pending = self.orders.pending_quantity(held)
        what = f"{held.value} {abs(net)}" + (f" (+{pending} pending)" if pending else "")
        return f"opposite to the open position ({what}); opposite_signal: reject", False

    def _held_direction(self) -> Direction | None:
        for position in self.positions.open_positions():
            return position.direction
        for order in self.orders.working_entries():
            return Direction.LONG if order.side is OrderSide.BUY else Direction.SHORT
        return None

    def _exposure(self, direction: Direction) -> int:
        return self.positions.exposure + self.orders.pending_quantity(direction)

    def _check_margin(self, symbol: str, ts_ns: int) -> None:
        """Before the day's first trade: the broker's day-trade margin per contract against
        ``risk.margin_limits``. Above it, the day is not traded (a high margin day); a live run
        then stops with ``exit_request`` set (exit status 3: try again the next trading day)."""
        self.risk.state.margin_checked = True
        self._dirty = True
        limits = self.config.risk.margin_limits
        limit = limits.get(symbol, limits.get(root_symbol(symbol)))
        day_margin = getattr(self.broker, "day_margin", None)
        if limit is None or day_margin is None:
            return
        margin = day_margin(symbol)
        if margin is None or Decimal(margin) <= limit:
            return
        reason = f"high margin day: {symbol} margin ${margin} per contract > limit ${limit}"
        self.risk.close_entries(reason)
        self.bus.publish(
            EventKind.HIGH_MARGIN_DAY,
            ts_ns,
            {
                "symbol": symbol,
                "margin": str(margin),
                "limit": str(limit),
                "day": self.risk.state.day.isoformat() if self.risk.state.day else None,
                "reason": reason,
            },
            f"not trading today: {reason}",
        )
        self.exit_request = f"not trading today: {reason}"

    def _margin_day(self, why: str, ts_ns: int) -> None:
        if self.risk.state.day in self._margin_days:
            return
        self._margin_days.add(self.risk.state.day)
        self.bus.publish(
            EventKind.HIGH_MARGIN_DAY,
            ts_ns,
            {"reason": why, "balance": str(self.account.balance)},
            f"not trading: {why}",
        )

    def _apply_account(self, intent: OrderIntent, reasons: list[str]) -> OrderIntent:
        """The tier decides the traded symbol and caps the size."""
        symbol = self.account.symbol
        quantity = intent.quantity
        tier, cap = self.account.tier, self.account.max_contracts
        if tier is not None and cap is not None and quantity > cap:  # a cap comes from a tier
            reasons.append(f"tier {tier.name}: size capped {quantity} -> {cap}")
            quantity = cap
        if symbol != intent.symbol or quantity != intent.quantity:
            return intent.model_copy(update={"symbol": symbol, "quantity": quantity})
        return intent

    def next_id(self, kind: str = "B") -> str:
        self._seq += 1
        return f"{self.id_prefix}-{kind}{self._seq}"

    def _submit(self, intent: OrderIntent, ts_ns: int) -> None:
        bracket = Bracket(
            bracket_id=self.next_id("B"),
            symbol=intent.symbol,
            direction=intent.direction,
            quantity=intent.quantity,
            stop_ticks=intent.stop_ticks,
            target_ticks=intent.target_ticks,
            pattern=intent.signal.pattern,
            ts_ns=ts_ns,
            intent=intent.model_dump(mode="json"),
        )
        transition = self.orders.open_bracket(bracket)
        self.summary.orders += 1
        self._publish_order(
            transition,
            f"bracket {bracket.bracket_id}: {intent.direction.value} "
            f"{intent.quantity} {intent.symbol}, stop {intent.stop_ticks}t, "
            f"target {intent.target_ticks}t",
        )
        self._dirty = True
        if not self._in_slice and not self.broker_is_local:
            self.commit()  # recorded before it is sent: a restart never sends it twice
        self.broker.submit_bracket(intent, bracket.bracket_id, ts_ns)

    @property
    def broker_is_local(self) -> bool:
        """The venue lives in this process (the paper broker): its state dies with ours."""
        return not getattr(self.broker, "real_money", True)

    def _publish_order(self, transition: Any, message: str = "") -> None:
        order = self.orders.orders.get(transition.order_id)
        if order is None:
            return
        data = order.to_dict()
        spec = self.instruments[order.symbol]
        data["price_decimal"] = str(spec.to_decimal(order.price)) if order.price else None
        bracket = self.orders.brackets.get(order.bracket_id)
        self.bus.publish(
            EventKind.ORDER,
            transition.ts_ns,
            {
                "order": data,
                "transition": transition.to_dict(),
                # the bracket (with the router's intent) once, when its entry is created
                "bracket": bracket.to_dict()
                if bracket and transition.old is None and order.role == "entry"
                else None,
                "bracket_id": order.bracket_id,
                "status": transition.new.value,
            },
            message
            or f"order {order.order_id} ({order.role}): {transition.new.value}"
            + (f": {transition.detail}" if transition.detail else ""),
        )

    def _move(self, order_id: str, status: OrderStatus, ts_ns: int, detail: str = "") -> None:
        """Move an order if it is still working (idempotent for cancels)."""
        order = self.orders.orders.get(order_id)
        if order is None or not order.working:
            return
        try:
            transition = self.orders.move(order_id, status, ts_ns, detail)
        except OrderStateError as exc:
            log.warning("%s", exc)
            return
        self._publish_order(transition)
        self._dirty = True

    # -- what the venue reports --------------------------------------------------------------

    def on_fill(self, fill: Fill) -> None:
        """A fill from the broker: applied once (by its execution id), then committed with
        everything it changed."""
        if fill.exec_id in self.exec_ids:
            log.warning("fill %s reported again: ignored", fill.exec_id)
            return
        self.exec_ids.add(fill.exec_id)
        order = self.orders.orders.get(fill.order_id)
        bracket = self.orders.brackets.get(fill.bracket_id)
        if order is not None:
            try:
                self._publish_order(
                    self.orders.fill(fill.order_id, fill.quantity, fill.price, fill.ts_ns)
                )
            except OrderStateError as exc:
                log.error("%s (the fill still changes the position)", exc)
        else:
            log.error("fill %s for an unknown order %s", fill.exec_id, fill.order_id)
        spec = self.instruments[fill.symbol]
        payload = fill.model_dump(mode="json")
        payload["price_decimal"] = str(spec.to_decimal(fill.price))
        self.bus.publish(
            EventKind.FILL,
            fill.ts_ns,
            payload,
            f"{fill.role} {fill.side.value} {fill.quantity} {fill.symbol} @ "
            f"{payload['price_decimal']}",
        )
        trades = self.positions.apply(fill, pattern=bracket.pattern if bracket else "")
        if fill.role == "entry" and bracket is not None and order is not None:
            self._arm_children(bracket, order, fill)
        elif fill.role in ("stop", "target") and bracket is not None and order is not None:
            if not order.working:  # one filled: the other is cancelled (OCO)
                sibling = bracket.target_id if fill.role == "stop" else bracket.stop_id
                self._move(sibling, OrderStatus.CANCELLED, fill.ts_ns, f"OCO: {fill.role} filled")
        elif fill.role == "flatten" and not self.positions.net(fill.symbol):
            for working in self.orders.working(fill.symbol):
                if working.role in ("stop", "target"):
                    self._move(working.order_id, OrderStatus.CANCELLED, fill.ts_ns, "flattened")
        for trade in trades:
            self._on_trade(trade)
        self._dirty = True
        if not self._in_slice and not self.broker_is_local:
            self.commit()  # a live venue's report: one transaction each

    def _arm_children(self, bracket: Bracket, entry: Order, fill: Fill) -> None:
        """The entry filled (all or part): its stop and target cover what is filled."""
        tick = self.instruments[bracket.symbol].tick_fixed * bracket.direction.sign
        exit_side = OrderSide.SELL if bracket.direction is Direction.LONG else OrderSide.BUY
        first = bracket.stop_id not in self.orders.orders
        for order_id, role, price in (
            (bracket.stop_id, "stop", fill.price - bracket.stop_ticks * tick),
            (bracket.target_id, "target", fill.price + bracket.target_ticks * tick),
        ):
            child = self.orders.orders.get(order_id)
            if child is None:
                transition = self.orders.add(
                    Order(
                        order_id=order_id,
                        bracket_id=bracket.bracket_id,
                        role=role,  # type: ignore[arg-type]
                        symbol=bracket.symbol,
                        side=exit_side,
                        quantity=entry.filled,
                        ts_ns=fill.ts_ns,
                        price=price,
                        status=OrderStatus.ACCEPTED,
                    )
                )
                self._publish_order(transition)
            elif child.working:
                child.quantity = (
                    entry.filled
                    - (
                        self.orders.orders[bracket.target_id if role == "stop" else bracket.stop_id]
                    ).filled
                )
        if first:
            self.bus.publish(
                EventKind.TRADE_OPENED, fill.ts_ns, self.bracket_payload(bracket, fill.price)
            )

    def bracket_payload(self, bracket: Bracket, entry_price: int) -> dict[str, Any]:
        spec = self.instruments[bracket.symbol]
        stop = self.orders.orders.get(bracket.stop_id)
        target = self.orders.orders.get(bracket.target_id)
        return {
            "bracket_id": bracket.bracket_id,
            "symbol": bracket.symbol,
            "direction": bracket.direction.value,
            "quantity": bracket.quantity,
            "entry_price": str(spec.to_decimal(entry_price)),
            "entry_ts_ns": bracket.ts_ns,
            "stop_price": str(spec.to_decimal(stop.price)) if stop and stop.price else None,
            "target_price": str(spec.to_decimal(target.price)) if target and target.price else None,
            "pattern": bracket.pattern,
        }

    def on_order_update(self, update: OrderUpdate) -> None:
        """Accepted, cancelled or rejected by the venue."""
        status = {
            "accepted": OrderStatus.ACCEPTED,
            "cancelled": OrderStatus.CANCELLED,
            "rejected": OrderStatus.REJECTED,
        }[update.status]
        order = self.orders.orders.get(update.order_id)
        if order is None:
            log.warning("venue update for an unknown order %s: %s", update.order_id, update.status)
            return
        if update.venue_order_id:
            order.venue_order_id = update.venue_order_id
        if status is OrderStatus.ACCEPTED and order.status is not OrderStatus.SUBMITTED:
            return
        self._move(update.order_id, status, update.ts_ns, update.reason)
        if status is OrderStatus.REJECTED:
            self.bus.publish(
                EventKind.ERROR,
                update.ts_ns,
                {"order_id": update.order_id, "reason": update.reason},
                f"order {update.order_id} rejected: {update.reason}",
            )
        if not self._in_slice and not self.broker_is_local:
            self.commit()

    def _on_trade(self, trade: Trade) -> None:
        self.summary.trades += 1
        self.summary.net_pnl += trade.net_pnl
        self.bus.publish(
            EventKind.TRADE_CLOSED,
            trade.exit_ts_ns,
            trade,
            f"{trade.direction.value} {trade.quantity} {trade.symbol} {trade.entry_price} -> "
            f"{trade.exit_price} ({trade.exit_reason}): net ${trade.net_pnl}",
        )
        change = self.account.book(trade.net_pnl)
        if change is not None:
            self.bus.publish(
                EventKind.TIER_CHANGE,
                trade.exit_ts_ns,
                {
                    "old": change.old.model_dump(mode="json") if change.old else None,
                    "new": change.new.model_dump(mode="json"),
                    "balance": str(change.balance),
                },
                f"tier {'up' if change.promoted else 'down'}: {change.new.name} "
                f"({change.new.symbol}) at balance ${change.balance}",
            )
        reason = self.risk.on_trade(trade)
        if reason is not None:  # a success or an alarm: notifiers tell them apart by state
            target = reason.startswith("daily profit target")
            state = "profit_target" if target else "loss_limit"
            self._publish_state(state, reason, trade.exit_ts_ns)
            self.flatten_all(reason, trade.exit_ts_ns)

    # -- flatten -------------------------------------------------------------------------------

    def flatten_all(self, reason: str, ts_ns: int) -> list[str]:
        """Cancel working entries and exit every open position at market. Returns the ids of
        the flatten orders sent (the broker's fills on them confirm the account is flat)."""
        for order in self.orders.working_entries():
            self.broker.cancel(order.order_id, reason)
            self._move(order.order_id, OrderStatus.CANCELLED, ts_ns, reason)
        sent = []
        for position in self.positions.open_positions():
            if any(o.working and o.role == "flatten" for o in self.orders.working(position.symbol)):
                continue  # one exit at a time
            order_id = self.next_id("F")
            side = OrderSide.SELL if position.direction is Direction.LONG else OrderSide.BUY
            transition = self.orders.add(
                Order(
                    order_id=order_id,
                    bracket_id=order_id,
                    role="flatten",
                    symbol=position.symbol,
                    side=side,
                    quantity=position.size,
                    ts_ns=ts_ns,
                    reason=reason,
                )
            )
            self._publish_order(transition, f"flatten {position.symbol}: {reason}")
            self._dirty = True
            if not self._in_slice and not self.broker_is_local:
                self.commit()
            self.broker.flatten(position.symbol, order_id, side, position.size, reason, ts_ns)
            sent.append(order_id)
        self._dirty = True
        return sent

    @property
    def flat(self) -> bool:
        return not self.positions.open_positions() and not self.orders.working_entries()

    # -- the clock -----------------------------------------------------------------------------

    def _roll_day(self, ts_ns: int) -> None:
        day = trading_day(ts_ns)
        previous = self.risk.state.day
        if self.risk.roll_day(day):
            if previous is not None and previous not in self.digest_sent:
                self._send_digest(ts_ns, previous)
            self._publish_state("new_day", f"trading day {day}", ts_ns)
            self._dirty = True
        self._plan(day, after_ns=ts_ns)

    def _plan(self, day: date, after_ns: int | None = None) -> None:
        self._planned_day = day
        plan = day_plan(day, self.config.risk)
        if after_ns is not None:
            plan = [m for m in plan if m[0] > after_ns]
        self._schedule = sorted(self._schedule + plan)

    def advance_clock(self, now_ns: int) -> None:
        """The wall clock (live runs): fire the moments that are due even without a tick."""
        if self._planned_day is None:
            self._roll_day(now_ns)
        while self._schedule and self._schedule[0][0] <= now_ns:
            due, what = self._schedule.pop(0)
            if what == "roll":
                self._plan(trading_day(due))
            self._on_moment(what, due)
        on_time = getattr(self.broker, "on_time", None)
        if on_time is not None:
            on_time(now_ns)
        self.commit_if_dirty()

    def _on_moment(self, what: str, ts_ns: int) -> None:
        if what == "roll":
            self._roll_day(ts_ns)
        elif what == "flatten":
            self.risk.close_entries()
            positions = [p.to_dict() for p in self.positions.open_positions()]
            cancelled = len(self.orders.working_entries())
            self.flatten_all("auto-flatten", ts_ns)
            closing = ", ".join(
                f"{p['direction']} {abs(p['quantity'])} {p['symbol']}" for p in positions
            )
            self.bus.publish(
                EventKind.AUTO_FLATTEN,
                ts_ns,
                {
                    "open_positions": len(positions),
                    "positions": positions,
                    "cancelled_entries": cancelled,
                    "flat": not positions,
                },
                f"auto-flatten at {self.config.risk.flatten_at} {self.config.risk.timezone}: "
                + (f"closing {closing}" if positions else "already flat"),
            )
            self._dirty = True
        elif what == "digest":
            self._send_digest(ts_ns)

    def _send_digest(self, ts_ns: int, day: date | None = None) -> None:
        day = day or self.risk.state.day
        if day is None or day in self.digest_sent:
            return
        self.digest_sent.add(day)
        state = self.risk.state
        self.bus.publish(
            EventKind.DAILY_DIGEST,
            ts_ns,
            {
                "day": day.isoformat(),
                "trades": state.trades,
                "wins": state.wins,
                "win_rate": round(state.wins / state.trades, 4) if state.trades else None,
                "realized_pnl": str(state.realized),
                "balance": str(self.account.balance),
                "tier": self.account.tier.name if self.account.tier else None,
                "by_pattern": {
                    pattern: {"trades": int(count), "net_pnl": net}
                    for pattern, (count, net) in sorted(state.by_pattern.items())
                },
                "patterns": dict(self.summary.patterns),
                "halted": state.halted,
            },
            f"digest {day}: {state.trades} trades, net ${state.realized}, "
            f"balance ${self.account.balance}",
        )
        self._dirty = True

    # -- feed status and session edges ---------------------------------------------------------

    def on_feed_status(self, status: FeedStatus) -> None:
        if status.kind is FeedStatusKind.DROPPED:
            self.drop(status.count, f"the feed: {status.detail}")
        elif status.kind is FeedStatusKind.SESSION_END:
            self.end_session(status.ts_ns)
        elif status.kind is FeedStatusKind.SESSION_START:
            self.engine.reset_session()
        if self.trading:
            self.bus.publish(
                EventKind.FEED_STATUS,
                status.ts_ns,
                status,
                f"feed {status.kind.value}" + (f": {status.detail}" if status.detail else ""),
            )

    def end_session(self, ts_ns: int) -> None:
        """The session's last trade: close its last bar; entries that cannot fill are cancelled."""
        if not self.trading:
            if self.engine.flush(reveal=False):
                self.engine.release_next()
                if not self.bars_only:
                    self._classify_and_detect()
            return
        if self.engine.flush(reveal=False):
            self._on_bar_closed(ts_ns)
        for order in self.orders.working_entries():
            self.broker.cancel(order.order_id, "session ended")
            self._move(
                order.order_id,
                OrderStatus.CANCELLED,
                ts_ns,
                "the session ended before its entry filled",
            )
        day = self.risk.state.day
        if day is not None and day not in self.digest_sent and self.summary.ticks:
            self._send_digest(ts_ns)
        self.commit_if_dirty()

    # -- control ---------------------------------------------------------------------------------

    def halt(self, reason: str = "halted by operator") -> None:
        self.risk.halt(reason, manual=True)
        self._publish_state("halted", reason, self.last_ts_ns)
        self._dirty = True
        self.commit()

    def resume(self) -> None:
        self.risk.resume()
        self._publish_state("resumed", "resumed by operator", self.last_ts_ns)
        self._dirty = True
        self.commit()

    def _publish_state(self, state: str, reason: str, ts_ns: int) -> None:
        self.bus.publish(
            EventKind.SESSION_STATE,
            ts_ns,
            {"state": state, "reason": reason, "realized_pnl": str(self.risk.state.realized)},
            f"session {state}: {reason}",
        )

    # -- state -----------------------------------------------------------------------------------

    def commit_if_dirty(self) -> None:
        if self._dirty:
            self.commit()

    def commit(self) -> None:
        self._dirty = False
        if self.on_commit is not None:
            self.on_commit(self.snapshot())
        self.orders.forget_done()

    def snapshot(self) -> dict[str, Any]:
        day = self.risk.state.day
        books = self.orders.snapshot()
        return {
            "version": 2,
            "symbol": self.config.symbol,
            "orders": books["orders"],
            "brackets": books["brackets"],
            "positions": self.positions.snapshot(),
            "risk": self.risk.state.to_dict(),
            "day_start_ns": day_start_ns(day) if day else None,
            "balance": str(self.account.balance),
            "starting_balance": str(self.account.settings.starting_balance),
            "trading_symbol": self.account.default_symbol,
            "seq": self._seq,
            "digest_sent": sorted(d.isoformat() for d in self.digest_sent),
            "resume": self._resume_point(),
        }

    def _resume_point(self) -> dict[str, int]:
        if not self.trading:  # still rebuilding: the point is where the journal left it
            return dict(self._saved_resume)
        return {
            "ticks": self.ticks_done,
            "last_ts_ns": self.last_ts_ns,
            "last_price": self.last_price,
        }

    def restore(self, saved: dict[str, Any], warm_up: bool) -> None:
        """Take back a snapshot. ``warm_up``: replay the first ``resume.ticks`` ticks of the feed
        without trading (a resumed replay), else go on from the wall clock (live)."""
        self.orders.restore(
            {"orders": saved.get("orders", []), "brackets": saved.get("brackets", [])}
        )
        self.positions.restore(saved.get("positions", []))
        self.risk.state = RiskState.from_dict(saved.get("risk", {}))
        self.account.balance = Decimal(saved.get("balance", str(self.account.balance)))
        self.account.tier = self.account.tier_for(self.account.balance)
        self.account.default_symbol = saved.get("trading_symbol", self.account.default_symbol)
        self._seq = int(saved.get("seq", 0))
        self.digest_sent = {date.fromisoformat(d) for d in saved.get("digest_sent", [])}
        if warm_up:
            resume = saved.get("resume", {})
            self.warmup_ticks = int(resume.get("ticks", 0))
            self._saved_resume = {
                "ticks": self.warmup_ticks,
                "last_ts_ns": int(resume.get("last_ts_ns", 0)),
                "last_price": int(resume.get("last_price", 0)),
            }
        if self.risk.state.day is not None:
            self._planned_day = self.risk.state.day
            after = int(saved.get("resume", {}).get("last_ts_ns", 0))
            self._plan(self.risk.state.day, after_ns=after)

    def unrealized(self) -> Decimal:
        price = self.last_price
        if not price:
            return Decimal(0)
        return sum((p.unrealized(price) for p in self.positions.open_positions()), Decimal(0))

    def positions_payload(self) -> list[dict[str, Any]]:
        """Open positions as JSON-ready rows: net quantity, average entry, stop and target."""
        rows = []
        for position in self.positions.open_positions():
            spec = position.lots[0].instrument
            children = self.orders.working(position.symbol)
            stops = [o.price for o in children if o.price and o.role == "stop"]
            targets = [o.price for o in children if o.price and o.role == "target"]
            average = position.average_price
            rows.append(
                {
                    "symbol": position.symbol,
                    "direction": position.direction.value if position.direction else None,
                    "quantity": position.size,
                    "net": position.quantity,
                    "entry_price": str(average) if average is not None else None,
                    "entry_ts_ns": position.lots[0].entry_ts_ns,
                    "stop_price": str(spec.to_decimal(stops[0])) if stops else None,
                    "target_price": str(spec.to_decimal(targets[0])) if targets else None,
                    "brackets": sorted({lot.bracket_id for lot in position.lots}),
                    "bracket_id": position.lots[0].bracket_id,
                    "pattern": position.lots[0].pattern,
                    "unrealized_pnl": str(position.unrealized(self.last_price))
                    if self.last_price
                    else None,
                }
            )
        return rows


def bar_payload(history: Any, index: int) -> dict[str, Any]:
    """A closed bar as JSON-ready data (for the status page and notifiers)."""
    prices, bid, ask, _ = history.levels(index)
    return bar_fields(history.bars[index], prices, bid, ask, history.price)


def bar_fields(
    bar: Any, prices: Any, bid: Any, ask: Any, price: Callable[[int], Any]
) -> dict[str, Any]:
    """A bar row and its levels (price in ticks, bid and ask volume) as JSON-ready data, prices
    as decimal strings (``price``: ticks to a decimal)."""
    return {
        "ts_open": int(bar["ts_open"]),
        "open": str(price(int(bar["open"]))),
        "high": str(price(int(bar["high"]))),
        "low": str(price(int(bar["low"]))),
        "close": str(price(int(bar["close"]))),
        "volume": int(bar["volume"]),
        "delta": int(bar["delta"]),
        "cum_delta": int(bar["cum_delta"]),
        "poc": str(price(int(bar["poc"]))),
        "vah": str(price(int(bar["vah"]))),
        "val": str(price(int(bar["val"]))),
        "levels": [
            [str(price(int(p))), int(b), int(a)] for p, b, a in zip(prices, bid, ask, strict=True)
        ],
    }
