"""A run: build everything the config selects, start it, feed the session, stop it all.

:class:`Pipeline` is one run. It builds every component (validating each section; nothing is
opened or written before all of them are valid), then in :meth:`Pipeline.run`:

1. opens the journal (refused if another process holds it) and starts a run row;
2. decides where the account stands: a live feed resumes the journal's account and day; a
   replayed feed (demo, file, backtest) starts a fresh simulated account, unless ``resume``
   is set, when it rebuilds bars and indicators from the ticks before the journal's resume
   point without trading, then trades on;
3. compares the broker's report with the journal (:mod:`tradebot_core.execution.reconcile`);
4. starts notifiers and services, consumes the feed (a stop request acts within 0.3 s
   whatever the feed does), and on a live feed runs the wall clock beside it;
5. stops everything it started in one ``finally``; any failure on the way makes the summary
   ``failed: <reason>`` and closes the journal's run row.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing, suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import __version__
from ..account import Account
from ..components import PluginContext, start_notifiers, stop_notifiers, wanted_kinds
from ..config import ConfigError, LoadedConfig
from ..events import EventBus
from ..execution.reconcile import differences
from ..execution.store import Store
from ..instruments import InstrumentRegistry
from ..journal import JOURNALED, Journal
from ..pacing import paced
from ..plugins import PluginManager
from ..session import RunSummary, Session, bar_payload
from ..types import EventKind, FeedStatus
from .clock import WallClock
from .view import RunView

log = logging.getLogger(__name__)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
"""Linux's id of this boot: a new one means the machine rebooted."""

STOP_GRACE_S = 0.3
"""How long a stop request waits for the feed to yield before the feed is cancelled."""


class Pipeline:
    """A run of the trading system, built from a validated config."""

    def __init__(
        self,
        loaded: LoadedConfig,
        manager: PluginManager,
        journal_path: str | Path | None = None,
        starting_balance: Decimal | None = None,
        *,
        resume: bool = False,
        now_ns: Callable[[], int] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        """``starting_balance`` overrides the config's (a backtest day starts from the balance the
        days before it left). ``resume``: a replayed feed continues from the journal's resume
        point. ``now_ns``/``sleep``: the wall clock of a live run (a virtual one in tests)."""
        self.loaded = loaded
        self.config = cfg = loaded.config
        self.manager = manager
        self.resume_journal = resume
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
        self._problems: list[str] = []
        self._check_live()
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
        self.account = Account(cfg.account, cfg.symbol, starting_balance)
        self.session = Session(
            cfg,
            self.instruments,
            regime=self.regime,
            detectors=self.detectors,
            router=self.router,
            broker=self.broker,
            bus=self.bus,
            account=self.account,
        )
        self.store: Store | None = None
        self.journal: Journal | None = None
        self.account_id: int | None = None
        self.feed_connected = False
        self.started_wall = 0.0
        self.started_monotonic = time.monotonic()
        self.last_batch_monotonic = 0.0
        self.stop_requested = False
        self.reconciliation: list[str] = []
        self._now_ns = now_ns or time.time_ns
        self._sleep = sleep or asyncio.sleep
        self._consumer: asyncio.Task[None] | None = None
        self._clock_task: asyncio.Task[None] | None = None
        self._started_services: list[Any] = []
        self._switched_to: str | None = None
        self.view = RunView(self)
        """What services get: read the run, ask it to change (:mod:`tradebot_core.run.view`)."""
        self._started_notifiers: list[Any] = []

    # -- what services and tests read -----------------------------------------------------------

    @property
    def summary(self) -> RunSummary:
        return self.session.summary

    @property
    def history(self) -> Any:
        return self.session.history

    @property
    def risk(self) -> Any:
        return self.session.risk

    @property
    def regime_state(self) -> Any:
        return self.session.regime_state

    @property
    def last_ts_ns(self) -> int:
        return self.session.last_ts_ns

    @property
    def last_price(self) -> int:
        return self.session.last_price

    @property
    def live(self) -> bool:
        return bool(getattr(self.feed, "live", False))

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
        path = (kind, choice.plugin)
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
        """Consume the feed to its end (or until :meth:`request_stop`). Never raises for a
        failure of the run itself: the summary's ``exit`` says ``failed: <reason>``."""
        self.started_wall = time.perf_counter()
        try:
            await self._start()
            await self._consume()
            self._check_dropped()
        except asyncio.CancelledError:
            self.summary.exit = "cancelled"
            raise
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            self.summary.exit = f"failed: {reason}"
            log.error("run failed: %s", reason, exc_info=not isinstance(exc, ConfigError | OSError))
            self.bus.publish(EventKind.ERROR, self.last_ts_ns, {"error": reason}, reason)
        finally:
            await self._finish()
        return self.summary

    async def _start(self) -> None:
        durable = self.live or getattr(self.broker, "real_money", True) is not False
        self.store = Store(self.journal_path, durable=durable)
        self.journal = journal = self.store.journal
        self.bus.subscribe(journal.record, JOURNALED)
        for notifier in self.notifiers:
            self._attach_notifier(notifier)
        if self.manager.pm.hook.tradebot_event.get_hookimpls():
            self.bus.subscribe(
                lambda event: self.manager.hook.tradebot_event(event=event), JOURNALED
            )
        start_broker = getattr(self.broker, "start", None)
        if start_broker is not None:  # a live venue connects before it is asked what it holds
            result = start_broker()
            if asyncio.iscoroutine(result):
                await result
        unclean = journal.previous_run_unfinished()
        run_id = journal.start_run(self.config_hash, __version__, self.config.symbol)
        self.session.id_prefix = f"R{run_id}"
        self._check_boot(journal)
        self._restore(unclean, run_id)
        store = self.store
        account_id = self.account_id

        def commit(state: dict[str, Any]) -> None:
            store.commit({**state, "account_id": account_id})

        self.session.on_commit = commit
        await start_notifiers(self.notifiers, self._started_notifiers)
        for service in self.services:
            self._started_services.append(service)
            await service.start(self)
        self.manager.hook.tradebot_startup(pipeline=self)
        self.bus.publish(
            EventKind.SYSTEM_START,
            time.time_ns(),
            self._startup_summary(),
            f"tradebot {__version__} started: {self.config.symbol} "
            f"{self.config.timeframe_s}s bars, feed {self.config.feed.plugin}",
        )
        self.session.commit()

    def _check_boot(self, journal: Journal) -> None:
        """Tell when the machine rebooted since the last run (Linux's boot id changed)."""
        try:
            boot_id = BOOT_ID.read_text().strip()
        except OSError:
            return
        previous = journal.load_state("boot_id")
        journal.save_state("boot_id", boot_id)
        if previous and previous != boot_id:
            self.bus.publish(
                EventKind.SYSTEM_REBOOT,
                time.time_ns(),
                {"boot_id": boot_id, "previous_boot_id": previous},
                "the machine rebooted since the last run",
            )

    def _restore(self, unclean: bool, run_id: int) -> None:
        """Where the account stands: resumed (live, or ``resume``) or fresh (replays)."""
        assert self.store is not None and self.journal is not None
        saved = self.store.load()
        carry = (
            saved is not None
            and saved.get("symbol") == self.config.symbol
            and saved.get("account_id") is not None
            and (self.live or self.resume_journal)
        )
        if not carry or saved is None:
            self.account_id = run_id
            self.journal.set_account(run_id)
            return
        self.account_id = int(saved["account_id"])
        self.journal.set_account(self.account_id)
        session = self.session
        session.exec_ids = self.journal.exec_ids(self.account_id)
        session.restore(saved, warm_up=not self.live)
        if self._switched_to is not None:  # asked before the run started: it wins
            self.account.default_symbol = self._switched_to
        restore = getattr(self.broker, "restore", None)
        if restore is not None and not getattr(self.broker, "real_money", True):
            restore(session.orders.working(), session.orders.brackets)
        positions = session.positions_payload()
        self.bus.publish(
            EventKind.REBOOT_DETECTED,
            time.time_ns(),
            {
                "open_positions": len(positions),
                "positions": positions,
                "working_orders": len(session.orders.working()),
                "realized_pnl": str(session.risk.state.realized),
                "unclean": unclean,
                "resume_ticks": session.warmup_ticks,
            },
            f"resumed with {len(positions)} open positions, {len(session.orders.working())} "
            f"working orders, day P&L ${session.risk.state.realized}"
            + (" after an unclean stop" if unclean else ""),
        )
        self._reconcile()

    def _reconcile(self) -> None:
        report = getattr(self.broker, "report", None)
        if report is None:
            return
        session = self.session
        ours = {p.symbol: p.quantity for p in session.positions.open_positions()}
        working = {o.order_id for o in session.orders.working()}
        self.reconciliation = lines = differences(ours, working, report())
        if not lines:
            return
        self.bus.publish(
            EventKind.RECONCILIATION,
            time.time_ns(),
            {"differences": lines, "action": self.config.risk.reconcile},
            "the broker and the journal differ: " + "; ".join(lines),
        )
        if self.config.risk.reconcile == "halt":
            session.halt("reconciliation: the broker and the journal differ (see the alert)")

    async def _consume(self) -> None:
        if self.live:
            clock = WallClock(self.session.advance_clock, self._now_ns, self._sleep)
            self._clock_task = asyncio.ensure_future(clock.run())
        self._consumer = asyncio.ensure_future(self._consume_feed())
        try:
            await self._consumer
        except asyncio.CancelledError:
            if not self.stop_requested:
                raise
        if self.stop_requested and not self.summary.exit.startswith("not_trading"):
            self.summary.exit = "stopped"

    async def _consume_feed(self) -> None:
        speed = "max" if self.live else self.config.feed.speed
        session = self.session
        # aclosing: a stop (or an error) closes the feed's stream, and with it its connection
        warming = lambda: not session.trading  # noqa: E731
        async with aclosing(paced(self.feed.stream(), speed, unpaced=warming)) as stream:
            async for item in stream:
                if isinstance(item, FeedStatus):
                    self._on_feed_status(item)
                else:
                    # a feed that delivers is connected, whether or not it says so (demo, files)
                    self.feed_connected = True
                    session.process_batch(item)
                    self.last_batch_monotonic = time.monotonic()
                if session.exit_request and self.live:
                    self.summary.exit = f"not_trading: {session.exit_request}"
                    return
                if self.stop_requested:
                    return
        session.end_session(session.last_ts_ns)  # the feed ended: its last bar is complete

    def _on_feed_status(self, status: FeedStatus) -> None:
        from ..types import FeedStatusKind

        if status.kind in (FeedStatusKind.CONNECTED, FeedStatusKind.RECONNECTED):
            self.feed_connected = True
        elif status.kind is FeedStatusKind.DISCONNECTED:
            self.feed_connected = False
        self.session.on_feed_status(status)

    def _check_dropped(self) -> None:
        summary = self.summary
        if summary.ticks == 0 and summary.warmup_ticks == 0 and summary.dropped_ticks:
            summary.exit = (
                f"failed: every tick was dropped ({summary.dropped_ticks}: "
                + "; ".join(summary.dropped_by_reason)
                + ")"
            )

    async def _stop_broker(self) -> None:
        """A broker with a connection of its own (a live venue) is logged out and stopped."""
        stop = getattr(self.broker, "stop", None)
        if stop is None:
            return
        try:
            result = stop()
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception("broker %s failed to stop", getattr(self.broker, "name", "?"))

    def request_stop(self) -> None:
        """Stop soon: at the next batch, or within 0.3 s whatever the feed does."""
        if self.stop_requested:
            return
        self.stop_requested = True
        consumer = self._consumer
        if consumer is not None and not consumer.done():
            loop = asyncio.get_running_loop()
            loop.call_later(STOP_GRACE_S, lambda: consumer.done() or consumer.cancel())

    async def _finish(self) -> None:
        self.summary.wall_seconds = time.perf_counter() - self.started_wall
        if self._clock_task is not None:
            self._clock_task.cancel()
            with suppress(asyncio.CancelledError):
                await self._clock_task
        if self._consumer is not None and not self._consumer.done():
            self._consumer.cancel()
            with suppress(asyncio.CancelledError):
                await self._consumer
        if self.store is not None:
            with suppress(Exception):
                self.session.commit()
        await self._stop_broker()
        self.bus.publish(
            EventKind.SYSTEM_STOP,
            time.time_ns(),
            self.summary.as_dict(),
            f"run ended ({self.summary.exit}): {self.summary.trades} trades, "
            f"net ${self.summary.net_pnl}",
        )
        for service in reversed(self._started_services):
            try:
                await service.stop()
            except Exception:
                log.exception("service %s failed to stop", getattr(service, "name", service))
        await stop_notifiers(self._started_notifiers)
        try:
            self.manager.hook.tradebot_shutdown(pipeline=self, summary=self.summary.as_dict())
        except Exception:
            log.exception("a tradebot_shutdown hook failed")
        self.view.close()
        if self.store is not None:
            try:
                self.store.journal.end_run(self.summary.as_dict())
            finally:
                self.store.close()

    # -- control (status page, CLI) ---------------------------------------------------------

    def halt(self, reason: str = "halted by operator") -> None:
        self.session.halt(reason)

    def resume(self) -> None:
        self.session.resume()

    def flatten(self, reason: str = "flattened by operator") -> list[str]:
        """Send the exits; :meth:`flatten_confirmed` waits for the broker to report flat."""
        sent = self.session.flatten_all(reason, self.session.last_ts_ns)
        self.session.commit()
        return sent

    async def flatten_confirmed(
        self, reason: str = "flattened by operator", timeout_s: float = 10.0
    ) -> bool:
        """Flatten, then wait until the positions are flat and the broker reports flat too.
        Publishes whether it was confirmed (a ``session_state`` ``flat`` or ``flatten_failed``)."""
        self.flatten(reason)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            report = getattr(self.broker, "report", None)
            broker_flat = report is None or not report().get("positions")
            if self.session.flat and broker_flat:
                self.session._publish_state(
                    "flat", f"{reason}: confirmed flat", self.session.last_ts_ns
                )
                self.session.commit()
                return True
            await asyncio.sleep(0.05)
        self.session._publish_state(
            "flatten_failed", f"{reason}: not flat after {timeout_s} s", self.session.last_ts_ns
        )
        self.session.commit()
        return False

    def switch_symbol(self, symbol: str) -> None:
        """Trade ``symbol`` from now on (same tick grid as the feed); open positions keep theirs."""
        spec = self.instruments[symbol]
        if spec.tick_size != self.instrument.tick_size:
            raise ValueError(
                f"{symbol} ticks by {spec.tick_size}, the feed's {self.data_symbol} by "
                f"{self.instrument.tick_size}: switch the feed instead"
            )
        self.account.default_symbol = self._switched_to = symbol
        self.session._publish_state("symbol", f"trading {symbol}", self.last_ts_ns)

    # -- events ------------------------------------------------------------------------------

    def _attach_notifier(self, notifier: Any) -> None:
        kinds = wanted_kinds(notifier)
        if hasattr(notifier, "on_undeliverable"):

            def undeliverable(event: Any, reason: str, name: str = notifier.name) -> None:
                if self.journal is not None:
                    self.journal.record_undeliverable(name, event, reason)

            notifier.on_undeliverable = undeliverable
        self.bus.subscribe(notifier.notify, kinds)

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
            "account_id": self.account_id,
            "resumed": self.session.warmup_ticks > 0 or bool(self.session.positions.exposure),
            "version": __version__,
        }


__all__ = ["Pipeline", "RunSummary", "bar_payload"]
