"""The pipeline: feed -> footprint -> regime + detectors -> router -> risk -> broker -> ledger.

One :class:`Pipeline` is one run. It builds every component the config selects (validating each
section; nothing is opened or written before all of them are valid), then consumes the feed.

The hot path, per tick batch:

1. drop malformed ticks (vectorized; counted and logged);
2. the footprint engine stores the bars the batch closes, and says at which tick each closed;
3. the batch is cut at those ticks and at scheduled times (auto-flatten, digest); the broker sees
   each slice; at each bar cut the bar is revealed and the regime classifier, the detectors and the
   router run, so an order sent on bar N's close fills at the earliest on the tick that closed it,
   the first trade after bar N. Results do not depend on how the feed batched its ticks.

Nothing here is called per tick through pluggy.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections import Counter
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from . import __version__
from .account import Account
from .components import PluginContext
from .config import ConfigError, LoadedConfig
from .events import EventBus
from .footprint import FootprintEngine
from .instruments import InstrumentRegistry, root_symbol
from .journal import JOURNALED, Journal
from .ledger import Ledger, Position
from .pacing import paced
from .plugins import PluginManager
from .risk import RiskManager, RiskState, trading_date
from .types import (
    Direction,
    EventKind,
    FeedStatus,
    FeedStatusKind,
    Fill,
    OrderIntent,
    RegimeState,
    Signal,
    TickBatch,
    Trade,
)

log = logging.getLogger(__name__)


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
    wall_seconds: float = 0.0
    patterns: Counter[str] = field(default_factory=Counter)
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
            "wall_seconds": round(self.wall_seconds, 6),
            "patterns": dict(sorted(self.patterns.items())),
            "exit": self.exit,
        }


class Pipeline:
    """A run of the trading system, built from a validated config."""

    def __init__(
        self,
        loaded: LoadedConfig,
        manager: PluginManager,
        journal_path: str | Path | None = None,
        starting_balance: Decimal | None = None,
    ) -> None:
        """``starting_balance`` overrides the config's (a backtest day starts from the balance the
        days before it left, which may be anything, even below zero)."""
        self.loaded = loaded
        self.config = cfg = loaded.config
        self.manager = manager
        self.instruments = InstrumentRegistry(cfg.extra_instruments())
        if cfg.symbol not in self.instruments:
            raise ConfigError([f"{loaded.where(('symbol',))}: {self.instruments[cfg.symbol]}"])
        self.data_symbol = cfg.symbol
        self.instrument = self.instruments[cfg.symbol]
        self.context = PluginContext(
            symbol=cfg.symbol,
            instruments=self.instruments,
            timeframe_s=cfg.timeframe_s,
            data_dir=Path(cfg.journal.path).parent,
            config=cfg,
        )
        self._check_live()
        self._problems: list[str] = []
        self.feed = self._build_choice("feed", cfg.feed)
        self.regime = self._build_choice("regime", cfg.regime)
        self.router = self._build_choice("router", cfg.router)
        self.broker = self._build_choice("broker", cfg.broker)
        self.detectors = self._build_many("detector", "detectors", cfg.detectors)
        self.notifiers = self._build_many("notifier", "notifiers", cfg.notifiers)
        self.services = self._build_many("service", "services", cfg.services)
        if self._problems:  # every bad section at once, before anything is opened or written
            raise ConfigError(self._problems)
        self.journal_path = Path(journal_path) if journal_path else cfg.journal.path

        self.bus = EventBus()
        self.engine = FootprintEngine(self.instrument, cfg.timeframe_s)
        self.history = self.engine.history
        self.ledger = Ledger(self.instruments)
        self.risk = RiskManager(cfg.risk)
        self.account = Account(cfg.account, cfg.symbol, starting_balance)
        self.summary = RunSummary()
        self.journal: Journal | None = None
        self.regime_state: RegimeState | None = None
        self.last_ts_ns = 0
        self.last_price = 0
        self.feed_connected = False
        self.started_wall = 0.0
        self.started_monotonic = time.monotonic()
        self.last_batch_monotonic = 0.0
        self.stop_requested = False
        self._bracket_seq = 0
        self._tz = ZoneInfo(cfg.risk.timezone)
        self._schedule: list[tuple[int, str]] = []
        self._schedule_day: date | None = None
        self._digest_sent: set[date] = set()
        self._margin_days: set[date | None] = set()
        self._started_day = False
        self.broker.on_fill = self._on_fill

    # -- building ----------------------------------------------------------------------------

    def _check_live(self) -> None:
        """Real money needs both switches. A broker says whether it trades real money
        (``real_money``); one that does not say is taken to (fail safe), whatever its name."""
        name = self.config.broker.plugin
        try:
            broker_cls = self.manager.get("broker", name, name).cls
        except ConfigError:
            return  # reported when the broker is built
        if getattr(broker_cls, "real_money", True) is not False and not (
            self.config.live.enabled and os.environ.get("TRADEBOT_LIVE") == "1"
        ):
            raise ConfigError(
                [
                    f"{self.loaded.where(('broker', 'plugin'))}: broker {name!r} trades real "
                    "money: set live.enabled: true in the config AND TRADEBOT_LIVE=1 in the "
                    "environment to allow it"
                ]
            )

    def _build(self, kind: str, name: str, raw: Any, path: tuple[str, ...]) -> Any:
        try:
            return self.manager.build(kind, name, raw, path, self.context, self.loaded)
        except ConfigError as exc:
            self._problems.extend(exc.problems)
            return None

    def _build_choice(self, kind: str, choice: Any) -> Any:
        path = (_SECTION[kind], choice.plugin)
        return self._build(kind, choice.plugin, choice.settings_for(choice.plugin), path)

    def _build_many(self, kind: str, section: str, entries: dict[str, Any]) -> list[Any]:
        built = [self._build(kind, name, raw, (section, name)) for name, raw in entries.items()]
        return [component for component in built if component is not None]

    @property
    def config_hash(self) -> str:
        text = json.dumps(self.config.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> RunSummary:
        """Consume the feed to its end (or until :meth:`request_stop`)."""
        self.started_wall = time.perf_counter()
        self.journal = Journal(self.journal_path)
        self.bus.subscribe(self.journal.record, JOURNALED)
        for notifier in self.notifiers:
            self._attach_notifier(notifier)
        if self.manager.pm.hook.tradebot_event.get_hookimpls():
            self.bus.subscribe(
                lambda event: self.manager.hook.tradebot_event(event=event),
                JOURNALED,
            )
        reboot = self.journal.previous_run_unfinished()
        self.journal.start_run(self.config_hash, __version__, self.config.symbol)
        self._restore(reboot)
        for notifier in self.notifiers:
            start = getattr(notifier, "start", None)
            if start is not None:
                await start()
        for service in self.services:
            await service.start(self)
        self.manager.hook.tradebot_startup(pipeline=self)
        self._publish(
            EventKind.SYSTEM_START,
            time.time_ns(),
            self._startup_summary(),
            f"tradebot {__version__} started: {self.config.symbol} "
            f"{self.config.timeframe_s}s bars, feed {self.config.feed.plugin}",
        )
        try:
            await self._consume()
        except asyncio.CancelledError:
            self.summary.exit = "cancelled"
            raise
        except Exception as exc:
            self.summary.exit = f"failed: {exc}"
            self._publish(EventKind.ERROR, self.last_ts_ns, {"error": str(exc)}, str(exc))
            raise
        finally:
            await self._finish()
        return self.summary

    async def _consume(self) -> None:
        speed = "max" if getattr(self.feed, "live", False) else self.config.feed.speed
        # aclosing: a stop (or an error) closes the feed's stream, and with it its connection
        async with aclosing(paced(self.feed.stream(), speed)) as stream:
            async for item in stream:
                if isinstance(item, FeedStatus):
                    self._on_feed_status(item)
                else:
                    self.process_batch(item)
                if self.stop_requested:
                    self.summary.exit = "stopped"
                    break
        if not self.stop_requested:  # the feed ended: its last bar is complete
            self._end_session(self.last_ts_ns)

    async def _finish(self) -> None:
        self.summary.wall_seconds = time.perf_counter() - self.started_wall
        self._save_state()
        self._publish(
            EventKind.SYSTEM_STOP,
            time.time_ns(),
            self.summary.as_dict(),
            f"run ended ({self.summary.exit}): {self.summary.trades} trades, "
            f"net ${self.summary.net_pnl}",
        )
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:
                log.exception("service %s failed to stop", service.name)
        for notifier in self.notifiers:
            stop = getattr(notifier, "stop", None)
            if stop is not None:
                try:
                    await stop()
                except Exception:
                    log.exception("notifier %s failed to stop", notifier.name)
        self.manager.hook.tradebot_shutdown(pipeline=self, summary=self.summary.as_dict())
        if self.journal is not None:
            self.journal.end_run(self.summary.as_dict())
            self.journal.close()

    def request_stop(self) -> None:
        self.stop_requested = True

    # -- the hot path --------------------------------------------------------------------------

    def process_batch(self, batch: TickBatch) -> None:
        """One batch of trades through footprint, decisions and broker."""
        ticks = self._sanitize(batch)
        n = len(ticks)
        if n == 0:
            return
        self.summary.ticks += n
        ts = ticks["ts_event"]
        if not self._started_day:  # the first tick of the run starts its trading day
            self._started_day = True
            self._roll_day(int(ts[0]))
            day_plan = self._day_plan(trading_date(int(ts[0]), self._tz))
            self._schedule = sorted(p for p in day_plan if p[0] > ts[0])
        cuts = self.engine.update(ticks, reveal=False)
        events: list[tuple[int, int, str]] = [
            (int(c), 1, "bar") for c in cuts
        ]  # (index, priority, what): schedule first at a shared index
        last = int(ts[-1])
        while self._schedule and self._schedule[0][0] <= last:
            due, what = self._schedule.pop(0)
            events.append((int(np.searchsorted(ts, due, side="left")), 0, what))
            if what == "roll":  # plan the next day now: its times may fall in this batch too
                self._schedule = sorted(
                    self._schedule + self._day_plan(trading_date(due, self._tz))
                )
        if len(events) > 1:
            events.sort()
        start = 0
        for index, _, what in events:
            if index > start:
                self.broker.on_ticks(self.data_symbol, ticks[start:index])
                start = index
            if what == "bar":
                self._on_bar_closed(int(ts[index]))
            else:
                self._on_scheduled(what, int(ts[index]))
        if start < n:
            self.broker.on_ticks(self.data_symbol, ticks[start:])
        self.last_ts_ns = last
        self.last_price = int(ticks["price"][-1])
        self.last_batch_monotonic = time.monotonic()
        if self.journal is not None:
            self.journal.commit_if_dirty()

    def _sanitize(self, batch: TickBatch) -> np.ndarray:
        ticks = batch.ticks
        if len(ticks) == 0:
            return ticks
        if root_symbol(batch.symbol) != root_symbol(self.data_symbol):
            self._drop(len(ticks), f"ticks of {batch.symbol} in a {self.data_symbol} pipeline")
            return ticks[:0]
        ts = ticks["ts_event"]
        side = ticks["side"]
        ok = (ticks["size"] > 0) & (ticks["price"] % self.instrument.tick_fixed == 0)
        ok &= (side >= -1) & (side <= 1)
        ordered = ts >= max(self.last_ts_ns, int(ts[0]))
        if not ordered.all() or (len(ts) > 1 and (np.diff(ts) < 0).any()):
            ordered &= ts >= np.maximum.accumulate(np.maximum(ts, self.last_ts_ns))
        ok &= ordered
        if ok.all():
            return ticks
        bad = int((~ok).sum())
        self._drop(bad, "size <= 0, price off the tick grid, bad side, or time going backwards")
        return ticks[ok]

    def _drop(self, count: int, why: str) -> None:
        self.summary.dropped_ticks += count
        log.warning("dropped %d malformed ticks: %s", count, why)

    def _on_bar_closed(self, ts_ns: int) -> None:
        self.engine.release_next()
        self.summary.bars += 1
        state = self.regime.classify(self.history)
        previous = self.regime_state
        self.regime_state = state
        if previous is None or previous.regime != state.regime:
            self._publish(
                EventKind.REGIME_CHANGED,
                ts_ns,
                state,
                f"regime {state.regime.value} ({state.confidence:.0%})",
            )
        if self.bus.wants(EventKind.BAR_CLOSED):
            self._publish(EventKind.BAR_CLOSED, ts_ns, bar_payload(self.history, -1))
        for detector in self.detectors:
            for signal in detector.on_bar_closed(self.history):
                self._on_signal(signal, state, ts_ns)

    def _on_signal(self, signal: Signal, state: RegimeState, ts_ns: int) -> None:
        self.summary.signals += 1
        self.summary.patterns[signal.pattern] += 1
        if not signal.symbol:
            signal = signal.model_copy(update={"symbol": self.data_symbol})
        self._publish(
            EventKind.SIGNAL,
            ts_ns,
            signal,
            f"{signal.pattern} {signal.direction.value} at {signal.price}",
        )
        decision = self.router.route(signal, state)
        reasons = list(decision.reasons)
        intent = decision.intent
        if intent is not None:
            intent = self._apply_account(intent, reasons)
            instrument = self.instruments[intent.symbol]
            why = self.risk.rejects(intent, self.ledger.exposure, self.account.balance, instrument)
            if why is not None:
                reasons.append(f"risk: {why}")
                intent = None
                if why.startswith("margin") and self.risk.state.day not in self._margin_days:
                    self._margin_days.add(self.risk.state.day)
                    self._publish(
                        EventKind.HIGH_MARGIN_DAY,
                        ts_ns,
                        {"reason": why, "balance": str(self.account.balance)},
                        f"not trading: {why}",
                    )
            else:
                reasons.append("risk: ok")
                intent = intent.model_copy(update={"reasons": tuple(reasons)})
        decision = decision.model_copy(update={"intent": intent, "reasons": tuple(reasons)})
        self._publish(
            EventKind.ROUTE_DECISION,
            ts_ns,
            decision,
            f"{signal.pattern}: {'approved' if intent else 'rejected'}: {reasons[-1]}",
        )
        if intent is None:
            self.summary.rejected += 1
            return
        self._bracket_seq += 1
        bracket_id = f"R{self.journal.run_id if self.journal else 0}-{self._bracket_seq}"
        self.ledger.submitted(bracket_id, intent)
        self.broker.submit_bracket(intent, bracket_id, ts_ns)
        self.summary.orders += 1
        self._publish(
            EventKind.ORDER,
            ts_ns,
            {
                "bracket_id": bracket_id,
                "status": "submitted",
                "intent": intent.model_dump(mode="json"),
            },
            f"bracket {bracket_id}: {intent.direction.value} {intent.quantity} {intent.symbol}, "
            f"stop {intent.stop_ticks}t, target {intent.target_ticks}t",
        )
        self._save_state()

    def _apply_account(self, intent: OrderIntent, reasons: list[str]) -> OrderIntent:
        """The tier decides the traded symbol and caps the size."""
        symbol = self.account.symbol
        quantity = intent.quantity
        cap = self.account.max_contracts
        if cap is not None and quantity > cap:
            reasons.append(f"tier {self.account.tier.name}: size capped {quantity} -> {cap}")
            quantity = cap
        if symbol != intent.symbol or quantity != intent.quantity:
            return intent.model_copy(update={"symbol": symbol, "quantity": quantity})
        return intent

    def _on_fill(self, fill: Fill) -> None:
        """Called by the broker at the tick that filled (possibly mid-scan)."""
        payload = fill.model_dump(mode="json")
        payload["price_decimal"] = str(self.instruments[fill.symbol].to_decimal(fill.price))
        self._publish(
            EventKind.FILL,
            fill.ts_ns,
            payload,
            f"{fill.role} {fill.side.value} {fill.quantity} {fill.symbol} "
            f"@ {payload['price_decimal']}",
        )
        result = self.ledger.on_fill(fill)
        if isinstance(result, Position):
            self._publish(EventKind.TRADE_OPENED, fill.ts_ns, position_payload(result))
        else:
            self._on_trade(result)
        self._save_state()

    def _on_trade(self, trade: Trade) -> None:
        self.summary.trades += 1
        self.summary.net_pnl += trade.net_pnl
        self._publish(
            EventKind.TRADE_CLOSED,
            trade.exit_ts_ns,
            trade,
            f"{trade.direction.value} {trade.quantity} {trade.symbol} {trade.entry_price} -> "
            f"{trade.exit_price} ({trade.exit_reason}): net ${trade.net_pnl}",
        )
        change = self.account.book(trade.net_pnl)
        if change is not None:
            self._publish(
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
        if reason is not None:
            self._publish_state("halted", reason, trade.exit_ts_ns)
            self.broker.flatten(reason, trade.exit_ts_ns)

    def _on_feed_status(self, status: FeedStatus) -> None:
        if status.kind is FeedStatusKind.SESSION_END:
            self._end_session(status.ts_ns)
        elif status.kind is FeedStatusKind.SESSION_START:
            self.engine.reset_session()
        self.feed_connected = status.kind not in (FeedStatusKind.DISCONNECTED,)
        self._publish(
            EventKind.FEED_STATUS,
            status.ts_ns,
            status,
            f"feed {status.kind.value}" + (f": {status.detail}" if status.detail else ""),
        )

    def _end_session(self, ts_ns: int) -> None:
        if self.engine.flush(reveal=False):
            self._on_bar_closed(ts_ns)
        # a market entry sent on the session's last bar can no longer fill: cancel it
        for bracket_id in self.broker.cancel_entries("session ended"):
            intent = self.ledger.pending.get(bracket_id)
            self.ledger.cancelled(bracket_id)
            self._publish(
                EventKind.ORDER,
                ts_ns,
                {
                    "bracket_id": bracket_id,
                    "status": "cancelled",
                    "intent": intent.model_dump(mode="json") if intent else None,
                },
                f"bracket {bracket_id} cancelled: the session ended before its entry",
            )
        self._save_state()
        day = self.risk.state.day
        if day is not None and day not in self._digest_sent and self.summary.ticks:
            self._send_digest(ts_ns)

    # -- the clock -------------------------------------------------------------------------------

    def _roll_day(self, ts_ns: int) -> None:
        previous = self.risk.state.day
        day = self.risk.roll_day(ts_ns)
        if day is not None:
            if previous is not None and previous not in self._digest_sent:
                self._send_digest(ts_ns, previous)
            self._publish_state("new_day", f"trading day {day}", ts_ns)

    def _day_plan(self, day: date) -> list[tuple[int, str]]:
        """A trading day's scheduled cuts in exchange-local time (DST-aware): flatten, digest,
        and the roll to the next day at 18:00. Being cuts, each happens at the same tick
        whatever the batching."""
        risk = self.config.risk
        plan = [
            (int(datetime.combine(day, at, self._tz).timestamp() * 1e9), what)
            for what, at in (("flatten", risk.flatten_at), ("digest", risk.digest_at))
            if at is not None
        ]
        roll = datetime.combine(day, _GLOBEX_ROLL_TIME, self._tz)
        plan.append((int(roll.timestamp() * 1e9), "roll"))
        return plan

    def _on_scheduled(self, what: str, ts_ns: int) -> None:
        if what == "roll":
            self._roll_day(ts_ns)
        elif what == "flatten":
            if not (self.ledger.open or self.ledger.pending):
                self.risk.close_entries()
                return
            self.risk.close_entries()
            self.broker.flatten("auto-flatten", ts_ns)
            for bracket_id in list(self.ledger.pending):
                self.ledger.cancelled(bracket_id)
            self._publish(
                EventKind.AUTO_FLATTEN,
                ts_ns,
                {"open_positions": len(self.ledger.open)},
                f"auto-flatten at {self.config.risk.flatten_at} "
                f"{self.config.risk.timezone}: {len(self.ledger.open)} open",
            )
        elif what == "digest":
            self._send_digest(ts_ns)

    def _send_digest(self, ts_ns: int, day: date | None = None) -> None:
        day = day or self.risk.state.day
        if day is None or day in self._digest_sent:
            return
        self._digest_sent.add(day)
        state = self.risk.state
        self._publish(
            EventKind.DAILY_DIGEST,
            ts_ns,
            {
                "day": day.isoformat(),
                "trades": state.trades,
                "realized_pnl": str(state.realized),
                "balance": str(self.account.balance),
                "patterns": dict(self.summary.patterns),
                "halted": state.halted,
            },
            f"digest {day}: {state.trades} trades, net ${state.realized}, "
            f"balance ${self.account.balance}",
        )

    # -- control (status page, CLI) -------------------------------------------------------------

    def halt(self, reason: str = "halted by operator") -> None:
        self.risk.halt(reason, manual=True)
        self._publish_state("halted", reason, self.last_ts_ns)

    def resume(self) -> None:
        self.risk.resume()
        self._publish_state("resumed", "resumed by operator", self.last_ts_ns)

    def flatten(self, reason: str = "flattened by operator") -> None:
        self.broker.flatten(reason, self.last_ts_ns)

    def switch_symbol(self, symbol: str) -> None:
        """Trade ``symbol`` from now on (same tick grid as the feed); open positions keep theirs."""
        spec = self.instruments[symbol]
        if spec.tick_size != self.instrument.tick_size:
            raise ValueError(
                f"{symbol} ticks by {spec.tick_size}, the feed's {self.data_symbol} by "
                f"{self.instrument.tick_size}: switch the feed instead"
            )
        self.account.default_symbol = symbol
        self._publish_state("symbol", f"trading {symbol}", self.last_ts_ns)

    # -- persistence -----------------------------------------------------------------------------

    def _save_state(self) -> None:
        if self.journal is None:
            return
        self.journal.save_state(
            "session",
            {
                "symbol": self.config.symbol,
                "ledger": self.ledger.snapshot(),
                "brackets": self.broker.working_brackets(),
                "risk": self.risk.state.to_dict(),
                "balance": str(self.account.balance),
                "bracket_seq": self._bracket_seq,
                "last_ts_ns": self.last_ts_ns,
            },
        )
        self.journal.commit()

    def _restore(self, reboot: bool) -> None:
        saved = self.journal.load_state("session") if self.journal else None
        if not saved or saved.get("symbol") != self.config.symbol:
            return
        self.ledger.restore(saved.get("ledger", {}))
        self.broker.restore(saved.get("brackets", []))
        self.account.balance = Decimal(saved.get("balance", str(self.account.balance)))
        self.account.tier = self.account.tier_for(self.account.balance)
        self.risk.state = RiskState.from_dict(saved.get("risk", {}))
        self._bracket_seq = int(saved.get("bracket_seq", 0))
        if reboot or self.ledger.open or self.ledger.pending:
            self._publish(
                EventKind.REBOOT_DETECTED,
                time.time_ns(),
                {
                    "open_positions": len(self.ledger.open),
                    "pending": len(self.ledger.pending),
                    "realized_pnl": str(self.risk.state.realized),
                    "unclean": reboot,
                },
                f"restarted with {len(self.ledger.open)} open positions, "
                f"{len(self.ledger.pending)} pending, day P&L ${self.risk.state.realized}",
            )

    # -- events ------------------------------------------------------------------------------------

    def _attach_notifier(self, notifier: Any) -> None:
        kinds = getattr(notifier, "kinds", None) or getattr(
            getattr(notifier, "settings", None), "kinds", None
        )
        if self.journal is not None and hasattr(notifier, "on_undeliverable"):
            journal = self.journal

            def undeliverable(event: Any, reason: str, name: str = notifier.name) -> None:
                journal.record_undeliverable(name, event, reason)

            notifier.on_undeliverable = undeliverable
        self.bus.subscribe(notifier.notify, kinds)

    def _publish(self, kind: EventKind, ts_ns: int, payload: Any, message: str = "") -> None:
        self.bus.publish(kind, ts_ns, payload, message)

    def _publish_state(self, state: str, reason: str, ts_ns: int) -> None:
        self._publish(
            EventKind.SESSION_STATE,
            ts_ns,
            {"state": state, "reason": reason, "realized_pnl": str(self.risk.state.realized)},
            f"session {state}: {reason}",
        )

    def _startup_summary(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "symbol": cfg.symbol,
            "timeframe_s": cfg.timeframe_s,
            "feed": cfg.feed.plugin,
            "speed": cfg.feed.speed,
            "detectors": list(cfg.detectors),
            "regime": cfg.regime.plugin,
            "router": cfg.router.plugin,
            "broker": cfg.broker.plugin,
            "daily_profit_target": str(cfg.risk.daily_profit_target),
            "daily_loss_limit": str(cfg.risk.daily_loss_limit),
            "max_position": cfg.risk.max_position,
            "version": __version__,
        }


_GLOBEX_ROLL_TIME = datetime.strptime("18:00", "%H:%M").time()
_SECTION = {"feed": "feed", "regime": "regime", "router": "router", "broker": "broker"}


def bar_payload(history: Any, index: int) -> dict[str, Any]:
    """A closed bar as JSON-ready data (for the status page and notifiers)."""
    bar = history.bars[index]
    prices, bid, ask, _ = history.levels(index)
    price = history.price
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


def position_payload(position: Position) -> dict[str, Any]:
    data = position.to_dict()
    spec = position.instrument
    data["entry_price"] = str(spec.to_decimal(position.entry_price))
    for key in ("stop_price", "target_price"):
        if data[key] is not None:
            data[key] = str(spec.to_decimal(data[key]))
    data["direction"] = Direction(position.direction).value
    return data
