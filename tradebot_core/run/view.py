"""What services see of a run: a small read-and-control view, not the run itself.

The status page, the watchdog and the heartbeat read the run's state and ask for the few
things an operator may ask (halt, resume, flatten, stop, new limits, another symbol) through
:class:`RunView`; they never reach into the session or run SQL on the journal's tables. Reads
that need the journal (recent trades, signals, decisions) go through a separate read-only
connection, so a slow query never holds the trading loop's transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..events import EventBus
from ..session import bar_fields
from ..types import Event, EventKind

if TYPE_CHECKING:
    from .runner import Pipeline


class RunView:
    """Read the run's state; ask it to change."""

    def __init__(self, run: Pipeline) -> None:
        self._run = run
        self._reader: sqlite3.Connection | None = None
        self._forming: tuple[tuple[int, ...], dict[str, Any]] | None = None

    # -- identity and settings -------------------------------------------------------------

    @property
    def config(self) -> Any:
        return self._run.config

    @property
    def symbol(self) -> str:
        return self._run.config.symbol

    @property
    def trading_symbol(self) -> str:
        return self._run.account.symbol

    @property
    def instrument(self) -> Any:
        return self._run.instrument

    @property
    def run_id(self) -> int | None:
        journal = self._run.journal
        return journal.run_id if journal is not None else None

    @property
    def account_id(self) -> int | None:
        return self._run.account_id

    # -- state -------------------------------------------------------------------------------

    @property
    def history(self) -> Any:
        return self._run.session.history

    @property
    def regime(self) -> Any:
        return self._run.session.regime_state

    @property
    def risk_state(self) -> Any:
        return self._run.session.risk.state

    @property
    def limits(self) -> Any:
        return self._run.session.risk.settings

    @property
    def tier(self) -> Any:
        return self._run.account.tier

    @property
    def tiers_choose_symbol(self) -> bool:
        return bool(self._run.account.tiers)

    @property
    def balance(self) -> Decimal:
        return self._run.account.balance

    @property
    def summary(self) -> dict[str, Any]:
        return self._run.summary.as_dict()

    @property
    def last_price(self) -> int:
        return self._run.session.last_price

    @property
    def last_ts_ns(self) -> int:
        return self._run.session.last_ts_ns

    @property
    def last_batch_monotonic(self) -> float:
        """``time.monotonic()`` when the run last processed a tick batch (0: none yet)."""
        return self._run.last_batch_monotonic

    @property
    def timeframe_s(self) -> int:
        return self._run.config.timeframe_s

    @property
    def feed_plugin(self) -> str:
        return self._run.config.feed.plugin

    @property
    def last_batch_age_s(self) -> float | None:
        last = self._run.last_batch_monotonic
        return None if not last else time.monotonic() - last

    @property
    def started_monotonic(self) -> float:
        return self._run.started_monotonic

    @property
    def feed_connected(self) -> bool:
        return self._run.feed_connected

    @property
    def feed_live(self) -> bool:
        return self._run.live

    @property
    def stopping(self) -> bool:
        return self._run.stop_requested

    def positions(self) -> list[dict[str, Any]]:
        return self._run.session.positions_payload()

    def net_position(self) -> int:
        return sum(p["net"] for p in self.positions())

    def working_orders(self) -> list[dict[str, Any]]:
        return [o.to_dict() for o in self._run.session.orders.working()]

    def unrealized(self) -> Decimal:
        return self._run.session.unrealized()

    def forming_bar(self) -> dict[str, Any] | None:
        """The bar still open (not closed yet) as :func:`bar_payload` shapes a closed one, plus
        ``forming: True`` and its ``trade_count``; None before the first tick of a bar.

        Built from the ticks the footprint engine holds for it (a copy: nothing of the engine
        changes), remembered until a tick arrives, so asking often between ticks costs nothing.
        """
        engine = self._run.session.engine
        key = engine.open_bar_version
        if key is None:
            return None
        cached = self._forming
        if cached is not None and cached[0] == key:
            return cached[1]
        forming = engine.open_bar()
        if forming is None:
            return None
        bars, bid, ask = forming
        bar = bars[0]
        prices = np.arange(int(bar["low"]), int(bar["low"]) + len(bid))
        payload = bar_fields(bar, prices, bid, ask, self.instrument.ticks_to_decimal)
        payload.update(trade_count=int(bar["trade_count"]), forming=True)
        self._forming = (key, payload)
        return payload

    def reconciliation(self) -> list[str]:
        return list(self._run.reconciliation)

    # -- events ----------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None], kinds: Any = None) -> None:
        self._bus.subscribe(callback, kinds)

    def unsubscribe(self, callback: Callable[[Event], None]) -> None:
        self._bus.unsubscribe(callback)

    def publish(self, kind: EventKind, payload: dict[str, Any], message: str = "") -> None:
        """Tell the run's observers something (a service's alert)."""
        self._bus.publish(kind, self.last_ts_ns, payload, message)

    @property
    def _bus(self) -> EventBus:
        return self._run.bus

    # -- the journal, read-only ---------------------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows from the journal through a read-only connection (its own snapshot: it never
        waits for, nor holds up, the trading loop's writes). Services should prefer the named
        reads below, which know the tables."""
        if self._reader is None:
            path = Path(self._run.journal_path)
            self._reader = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, check_same_thread=False
            )
        cursor = self._reader.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def recent_trades(self, limit: int) -> list[dict[str, Any]]:
        """This run's closed trades, newest first."""
        return self.query(
            "SELECT * FROM trades WHERE run_id = ? ORDER BY exit_ts_ns DESC, trade_id DESC LIMIT ?",
            (self.run_id, limit),
        )

    def recent_signals(self, limit: int) -> list[dict[str, Any]]:
        """This run's signals, newest first, each with its routing decision's reasons."""
        rows = self.query(
            "SELECT s.*, d.approved, d.reasons FROM signals s LEFT JOIN decisions d "
            "ON d.signal_id = s.id WHERE s.run_id = ? ORDER BY s.id DESC LIMIT ?",
            (self.run_id, limit),
        )
        for row in rows:
            row["reasons"] = json.loads(row["reasons"]) if row["reasons"] else []
        return rows

    def recent_decisions(self, limit: int) -> list[dict[str, Any]]:
        """This run's routing decisions, newest first."""
        rows = self.query(
            "SELECT * FROM decisions WHERE run_id = ? ORDER BY id DESC LIMIT ?",
            (self.run_id, limit),
        )
        for row in rows:
            row["reasons"] = json.loads(row["reasons"]) if row["reasons"] else []
        return rows

    def closed_pnls(self) -> list[str]:
        """The net P&L of this run's closed trades, in the order they closed."""
        rows = self.query(
            "SELECT net_pnl FROM trades WHERE run_id = ? ORDER BY exit_ts_ns, trade_id",
            (self.run_id,),
        )
        return [row["net_pnl"] for row in rows]

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # -- control -------------------------------------------------------------------------------

    def halt(self, reason: str) -> None:
        self._run.halt(reason)

    def resume(self) -> None:
        self._run.resume()

    def flatten(self, reason: str) -> list[str]:
        return self._run.flatten(reason)

    def stop(self) -> None:
        self._run.request_stop()

    def update_limits(self, **changes: Any) -> None:
        self._run.session.risk.update_settings(**changes)
        self._run.session.commit()

    def switch_symbol(self, symbol: str) -> None:
        self._run.switch_symbol(symbol)
