"""The journal: every signal, decision, order, fill, trade and state change, in SQLite (WAL).

It is also the crash-safe memory of a run: the open positions, working brackets and the day's
risk state are written to the ``state`` table in the same transaction as the fill or order that
changed them, so a restart resumes with positions, orders and P&L intact.

Money is stored as decimal TEXT (exact); prices likewise; timestamps as integer ns UTC.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

from .types import Event, EventKind

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started_ns INTEGER NOT NULL, ended_ns INTEGER,
    config_hash TEXT, version TEXT, symbol TEXT, summary TEXT
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
    bracket_id TEXT PRIMARY KEY, run_id INTEGER, ts_ns INTEGER NOT NULL, symbol TEXT,
    direction TEXT, quantity INTEGER, stop_ticks INTEGER, target_ticks INTEGER, pattern TEXT,
    reasons TEXT, status TEXT
);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY, run_id INTEGER, bracket_id TEXT, order_id TEXT, ts_ns INTEGER,
    symbol TEXT, side TEXT, quantity INTEGER, price TEXT, role TEXT, commission TEXT
);
CREATE TABLE IF NOT EXISTS trades (
    bracket_id TEXT PRIMARY KEY, run_id INTEGER, symbol TEXT, direction TEXT, quantity INTEGER,
    entry_price TEXT, exit_price TEXT, entry_ts_ns INTEGER, exit_ts_ns INTEGER, ticks INTEGER,
    tick_size TEXT, tick_value TEXT, gross_pnl TEXT, commissions TEXT, net_pnl TEXT,
    exit_reason TEXT, pattern TEXT
);
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

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.run_id: int | None = None
        self.last_signal_id: int | None = None
        self._dirty = False
        self.db.execute("BEGIN")

    # -- runs and state -----------------------------------------------------------------------

    def previous_run_unfinished(self) -> bool:
        row = self.db.execute("SELECT ended_ns FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return row is not None and row[0] is None

    def start_run(self, config_hash: str, version: str, symbol: str) -> int:
        cur = self.db.execute(
            "INSERT INTO runs (started_ns, config_hash, version, symbol) VALUES (?, ?, ?, ?)",
            (time.time_ns(), config_hash, version, symbol),
        )
        self.run_id = int(cur.lastrowid or 0)
        self.commit()
        return self.run_id

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
        if event.kind in (EventKind.FILL, EventKind.TRADE_CLOSED, EventKind.SESSION_STATE):
            self.commit()

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
            return self.rows("SELECT * FROM trades ORDER BY exit_ts_ns, bracket_id")
        return self.rows(
            "SELECT * FROM trades WHERE run_id = ? ORDER BY exit_ts_ns, bracket_id", (run_id,)
        )

    def realized_since(self, ts_ns: int) -> Decimal:
        rows = self.db.execute("SELECT net_pnl FROM trades WHERE exit_ts_ns >= ?", (ts_ns,))
        return sum((Decimal(r[0]) for r in rows), Decimal("0"))


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
    intent = p["intent"]
    if p["status"] != "submitted":
        j.db.execute(
            "UPDATE orders SET status = ? WHERE bracket_id = ?", (p["status"], p["bracket_id"])
        )
        return
    j.db.execute(
        "INSERT INTO orders (bracket_id, run_id, ts_ns, symbol, direction, quantity, stop_ticks, "
        "target_ticks, pattern, reasons, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(bracket_id) DO UPDATE SET status = excluded.status",
        (
            p["bracket_id"],
            j.run_id,
            ts,
            intent["symbol"],
            intent["direction"],
            intent["quantity"],
            intent["stop_ticks"],
            intent["target_ticks"],
            intent["signal"]["pattern"],
            json.dumps(intent["reasons"]),
            p["status"],
        ),
    )


def _fill(j: Journal, ts: int, p: dict[str, Any]) -> None:
    j.db.execute(
        "INSERT INTO fills (run_id, bracket_id, order_id, ts_ns, symbol, side, quantity, price, "
        "role, commission) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            j.run_id,
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
    status = "open" if p["role"] == "entry" else "closed"
    j.db.execute("UPDATE orders SET status = ? WHERE bracket_id = ?", (status, p["bracket_id"]))


def _trade(j: Journal, ts: int, p: dict[str, Any]) -> None:
    j.db.execute(
        "INSERT OR REPLACE INTO trades (bracket_id, run_id, symbol, direction, quantity, "
        "entry_price, exit_price, entry_ts_ns, exit_ts_ns, ticks, tick_size, tick_value, "
        "gross_pnl, commissions, net_pnl, exit_reason, pattern) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            p["bracket_id"],
            j.run_id,
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
