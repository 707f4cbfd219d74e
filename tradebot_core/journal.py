"""The journal: every signal, decision, order, fill, trade and state change, in SQLite (WAL).

It is also the crash-safe memory of a run: the open positions, working brackets and the day's
risk state are written to the ``state`` table in the same transaction as the fill or order that
changed them, so a restart resumes with positions, orders and P&L intact.

Money is stored as decimal TEXT (exact); prices likewise; timestamps as integer ns UTC.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .types import Event, EventKind

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started_ns INTEGER NOT NULL, ended_ns INTEGER,
    config_hash TEXT, version TEXT, symbol TEXT, summary TEXT, account_id INTEGER, pid INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, run_id INTEGER, ts_ns INTEGER NOT NULL, kind TEXT NOT NULL,
    message TEXT, payload TEXT
);
CREATE TABLE IF NOT EXISTS signals (
    id INTEGER PRIMARY KEY, run_id INTEGER, ts_ns INTEGER NOT NULL, symbol TEXT, pattern TEXT,
    direction TEXT, price TEXT, strength REAL, detector TEXT, bar_ts_ns INTEGER, reason TEXT
);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY, run_id INTEGER, signal_id INTEGER, ts_ns INTEGER NOT NULL,
    pattern TEXT, direction TEXT, approved INTEGER, reasons TEXT
);
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, bracket_id TEXT, run_id INTEGER, account_id INTEGER,
    ts_ns INTEGER NOT NULL, role TEXT, symbol TEXT, side TEXT, direction TEXT,
    quantity INTEGER, price TEXT, stop_ticks INTEGER, target_ticks INTEGER, pattern TEXT,
    reasons TEXT, status TEXT, filled INTEGER DEFAULT 0, venue_order_id TEXT, reason TEXT
);
CREATE INDEX IF NOT EXISTS orders_bracket ON orders (bracket_id);
CREATE TABLE IF NOT EXISTS order_events (
    id INTEGER PRIMARY KEY, run_id INTEGER, order_id TEXT, bracket_id TEXT, ts_ns INTEGER,
    old TEXT, new TEXT, detail TEXT
);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY, run_id INTEGER, account_id INTEGER, exec_id TEXT NOT NULL,
    bracket_id TEXT, order_id TEXT, ts_ns INTEGER, symbol TEXT, side TEXT, quantity INTEGER,
    price TEXT, role TEXT, commission TEXT, UNIQUE (account_id, exec_id)
);
CREATE TABLE IF NOT EXISTS trades (
    trade_id TEXT PRIMARY KEY, bracket_id TEXT, run_id INTEGER, account_id INTEGER,
    symbol TEXT, direction TEXT, quantity INTEGER, entry_price TEXT, exit_price TEXT,
    entry_ts_ns INTEGER, exit_ts_ns INTEGER, ticks INTEGER, tick_size TEXT, tick_value TEXT,
    gross_pnl TEXT, commissions TEXT, net_pnl TEXT, exit_reason TEXT, pattern TEXT
);
CREATE INDEX IF NOT EXISTS trades_run ON trades (run_id);
CREATE INDEX IF NOT EXISTS signals_run ON signals (run_id);
CREATE INDEX IF NOT EXISTS decisions_signal ON decisions (signal_id);
CREATE TABLE IF NOT EXISTS session_state (
    id INTEGER PRIMARY KEY, run_id INTEGER, ts_ns INTEGER NOT NULL, state TEXT, reason TEXT,
    realized_pnl TEXT
);
CREATE TABLE IF NOT EXISTS undeliverable (
    id INTEGER PRIMARY KEY, run_id INTEGER, ts_ns INTEGER, notifier TEXT, kind TEXT,
    reason TEXT, payload TEXT
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

JOURNALED = frozenset(EventKind) - {EventKind.BAR_CLOSED, EventKind.PNL}


class Journal:
    """Writes events as rows. Call :meth:`commit` at safe points (the pipeline does, per batch)."""

    def __init__(self, path: str | Path, durable: bool = True) -> None:
        """``durable``: ``synchronous=FULL``, each commit on disk before it returns (real money,
        live feeds). Replays use ``NORMAL``: in WAL mode a commit is still atomic and survives
        the process being killed; only a power cut may lose the last ones, and a replay can be
        played again."""
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.db.executescript(SCHEMA)
        self.run_id: int | None = None
        self.account_id: int | None = None
        self.last_signal_id: int | None = None
        self._dirty = False
        self.db.execute("BEGIN")

    # -- runs and state -----------------------------------------------------------------------

    def previous_run_unfinished(self) -> bool:
        row = self.db.execute("SELECT ended_ns FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return row is not None and row[0] is None

    def start_run(self, config_hash: str, version: str, symbol: str) -> int:
        cur = self.db.execute(
            "INSERT INTO runs (started_ns, config_hash, version, symbol, pid) "
            "VALUES (?, ?, ?, ?, ?)",
            (time.time_ns(), config_hash, version, symbol, os.getpid()),
        )
        self.run_id = int(cur.lastrowid or 0)
        self.account_id = self.run_id
        self.commit()
        return self.run_id

    def set_account(self, account_id: int) -> None:
        """Rows from now on belong to ``account_id`` (the run that opened the account)."""
        self.account_id = account_id
        self.db.execute("UPDATE runs SET account_id = ? WHERE id = ?", (account_id, self.run_id))

    def exec_ids(self, account_id: int) -> set[str]:
        """The venue execution ids already booked on an account."""
        rows = self.db.execute("SELECT exec_id FROM fills WHERE account_id = ?", (account_id,))
        return {row[0] for row in rows}

    def end_run(self, summary: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE runs SET ended_ns = ?, summary = ? WHERE id = ?",
            (time.time_ns(), json.dumps(summary, default=str), self.run_id),
        )
        self.commit()

    def save_state(self, key: str, value: Any) -> None:
        self.db.execute(
            "INSERT INTO state (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value, default=str)),
        )
        self._dirty = True

    def load_state(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    # -- events --------------------------------------------------------------------------------

    def record(self, event: Event) -> None:
        """Bus subscriber: one row in ``events`` plus one in the table for its kind."""
        payload = event.payload_dict()
        self.db.execute(
            "INSERT INTO events (run_id, ts_ns, kind, message, payload) VALUES (?, ?, ?, ?, ?)",
            (self.run_id, event.ts_ns, event.kind.value, event.message, json.dumps(payload)),
        )
        writer = _WRITERS.get(event.kind)
        if writer is not None:
            writer(self, event.ts_ns, payload)
        self._dirty = True

    def record_undeliverable(self, notifier: str, event: Event, reason: str) -> None:
        self.db.execute(
            "INSERT INTO undeliverable (run_id, ts_ns, notifier, kind, reason, payload) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                self.run_id,
                event.ts_ns,
                notifier,
                event.kind.value,
                reason,
                json.dumps(event.payload_dict()),
            ),
        )
        self._dirty = True

    def commit(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")
        self._dirty = False

    def commit_if_dirty(self) -> None:
        if self._dirty:
            self.commit()

    def close(self) -> None:
        with suppress(sqlite3.OperationalError):
            self.db.execute("COMMIT")
        self.db.close()

    # -- reading -------------------------------------------------------------------------------

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cur = self.db.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def trades(self, run_id: int | None = None) -> list[dict[str, Any]]:
        if run_id is None:
            return self.rows("SELECT * FROM trades ORDER BY exit_ts_ns, trade_id")
        return self.rows(
            "SELECT * FROM trades WHERE run_id = ? ORDER BY exit_ts_ns, trade_id", (run_id,)
        )


@contextmanager
def open_journal(path: str | Path) -> Iterator[Journal]:
    journal = Journal(path)
    try:
        yield journal
    finally:
        journal.close()


def _signal(j: Journal, ts: int, p: dict[str, Any]) -> None:
    j.last_signal_id = j.db.execute(
        "INSERT INTO signals (run_id, ts_ns, symbol, pattern, direction, price, strength, "
        "detector, bar_ts_ns, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            j.run_id,
            ts,
            p["symbol"],
            p["pattern"],
            p["direction"],
            p["price"],
            p["strength"],
            p["detector"],
            p["bar_ts_ns"],
            p["reason"],
        ),
    ).lastrowid


def _decision(j: Journal, ts: int, p: dict[str, Any]) -> None:
    j.db.execute(
        "INSERT INTO decisions (run_id, signal_id, ts_ns, pattern, direction, approved, reasons) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            j.run_id,
            j.last_signal_id,  # the pipeline decides on each signal right after journaling it
            ts,
            p["signal"]["pattern"],
            p["signal"]["direction"],
            int(p["intent"] is not None),
            json.dumps(p["reasons"]),
        ),
    )


def _order(j: Journal, ts: int, p: dict[str, Any]) -> None:
    """An order transition: the order's row as it is now, and the transition itself."""
    order, transition = p["order"], p["transition"]
    bracket = p.get("bracket") or {}
    j.db.execute(
        "INSERT INTO orders (order_id, bracket_id, run_id, account_id, ts_ns, role, symbol, "
        "side, direction, quantity, price, stop_ticks, target_ticks, pattern, reasons, status, "
        "filled, venue_order_id, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?) ON CONFLICT(order_id) DO UPDATE SET status = excluded.status, "
        "filled = excluded.filled, quantity = excluded.quantity, price = excluded.price, "
        "venue_order_id = excluded.venue_order_id, reason = excluded.reason",
        (
            order["order_id"],
            order["bracket_id"],
            j.run_id,
            j.account_id,
            order["ts_ns"],
            order["role"],
            order["symbol"],
            order["side"],
            bracket.get("direction"),
            order["quantity"],
            order.get("price_decimal"),
            bracket.get("stop_ticks"),
            bracket.get("target_ticks"),
            bracket.get("pattern"),
            json.dumps((bracket.get("intent") or {}).get("reasons", [])),
            order["status"],
            order["filled"],
            order["venue_order_id"],
            order["reason"],
        ),
    )
    j.db.execute(
        "INSERT INTO order_events (run_id, order_id, bracket_id, ts_ns, old, new, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            j.run_id,
            transition["order_id"],
            transition["bracket_id"],
            transition["ts_ns"],
            transition["old"],
            transition["new"],
            transition["detail"],
        ),
    )


def _fill(j: Journal, ts: int, p: dict[str, Any]) -> None:
    j.db.execute(
        "INSERT INTO fills (run_id, account_id, exec_id, bracket_id, order_id, ts_ns, symbol, "
        "side, quantity, price, role, commission) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            j.run_id,
            j.account_id,
            p["exec_id"],
            p["bracket_id"],
            p["order_id"],
            p["ts_ns"],
            p["symbol"],
            p["side"],
            p["quantity"],
            p["price_decimal"],
            p["role"],
            p["commission"],
        ),
    )


def _trade(j: Journal, ts: int, p: dict[str, Any]) -> None:
    j.db.execute(
        "INSERT INTO trades (trade_id, bracket_id, run_id, account_id, symbol, direction, "
        "quantity, entry_price, exit_price, entry_ts_ns, exit_ts_ns, ticks, tick_size, "
        "tick_value, gross_pnl, commissions, net_pnl, exit_reason, pattern) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            p["trade_id"],
            p["bracket_id"],
            j.run_id,
            j.account_id,
            p["symbol"],
            p["direction"],
            p["quantity"],
            p["entry_price"],
            p["exit_price"],
            p["entry_ts_ns"],
            p["exit_ts_ns"],
            p["ticks"],
            p["tick_size"],
            p["tick_value"],
            p["gross_pnl"],
            p["commissions"],
            p["net_pnl"],
            p["exit_reason"],
            p["pattern"],
        ),
    )


def _session_state(j: Journal, ts: int, p: dict[str, Any]) -> None:
    j.db.execute(
        "INSERT INTO session_state (run_id, ts_ns, state, reason, realized_pnl) "
        "VALUES (?, ?, ?, ?, ?)",
        (j.run_id, ts, p.get("state"), p.get("reason"), p.get("realized_pnl")),
    )


_WRITERS = {
    EventKind.SIGNAL: _signal,
    EventKind.ROUTE_DECISION: _decision,
    EventKind.ORDER: _order,
    EventKind.FILL: _fill,
    EventKind.TRADE_CLOSED: _trade,
    EventKind.SESSION_STATE: _session_state,
}
