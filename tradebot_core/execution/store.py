"""The run's memory: the journal plus the state a restart needs, committed together.

A change that matters (a fill and what it does to the orders, the position, the day's P&L and
the risk state; an order sent; a halt) is written in the journal's open transaction, and
:meth:`Store.commit` writes the state snapshot (working orders, positions, risk, balance, id
counters, resume point) into that same transaction before it commits. SQLite in WAL mode with
``synchronous=FULL`` makes the commit atomic and durable: whatever instant the process dies at,
the journal holds either all of a change or none of it, and the state always matches the fills,
orders and trades beside it.

One process per journal: :class:`JournalLock` holds an exclusive ``flock`` on ``<journal>.lock``
(released by the kernel when the process dies, even by ``kill -9``) and writes its PID there, so
a second process is refused with the first one's PID.
"""

from __future__ import annotations

import fcntl
import logging
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..journal import Journal

log = logging.getLogger(__name__)

STATE_KEY = "session"


class JournalLocked(Exception):
    """Another process holds the journal."""


class JournalLock:
    def __init__(self, journal_path: str | Path) -> None:
        self.path = Path(f"{journal_path}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise JournalLocked(
                f"journal {self.path.with_suffix('')} is in use by process {holder}; "
                "stop it first (one process per journal)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def holder(journal_path: str | Path) -> int | None:
        """The PID holding the journal, or None if it is free."""
        path = Path(f"{journal_path}.lock")
        if not path.exists():
            return None
        fd = os.open(path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.read(fd, 32).decode(errors="replace").strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


class Store:
    """The journal, its lock, and the state snapshot committed with every change."""

    def __init__(self, path: str | Path, durable: bool = True) -> None:
        self.path = Path(path)
        self.lock = JournalLock(path) if str(path) != ":memory:" else None
        if self.lock is not None:
            self.lock.acquire()
        try:
            self.journal = Journal(path, durable=durable)
        except Exception:
            if self.lock is not None:
                self.lock.release()
            raise
        self.commits = 0

    def load(self) -> dict[str, Any] | None:
        saved = self.journal.load_state(STATE_KEY)
        return saved if isinstance(saved, dict) else None

    def commit(self, state: dict[str, Any]) -> None:
        """Write ``state`` in the open transaction, with everything journaled since the last
        commit, and commit them as one."""
        self.journal.save_state(STATE_KEY, state)
        self.journal.commit()
        self.commits += 1

    def close(self) -> None:
        try:
            self.journal.close()
        finally:
            if self.lock is not None:
                self.lock.release()


def check_consistency(journal: Journal, state: dict[str, Any] | None) -> list[str]:
    """Whether the journal's fills, orders, positions and day P&L agree with each other (and
    with the saved state). Returns what does not; empty when all is well."""
    problems: list[str] = []
    if state is None:
        return problems
    account = state.get("account_id")
    # every order's filled quantity is the sum of its fills
    for row in journal.rows(
        "SELECT o.order_id, o.filled, COALESCE(SUM(f.quantity), 0) AS fills FROM orders o "
        "LEFT JOIN fills f ON f.order_id = o.order_id AND f.account_id = o.account_id "
        "WHERE o.account_id = ? GROUP BY o.order_id",
        (account,),
    ):
        if row["filled"] != row["fills"]:
            problems.append(
                f"order {row['order_id']}: filled {row['filled']} but fills add up to "
                f"{row['fills']}"
            )
    # the net position per symbol is the sum of signed fills
    net: dict[str, int] = {}
    for row in journal.rows(
        "SELECT symbol, side, quantity FROM fills WHERE account_id = ?", (account,)
    ):
        sign = 1 if row["side"] == "buy" else -1
        net[row["symbol"]] = net.get(row["symbol"], 0) + sign * row["quantity"]
    held = {p["symbol"]: p["quantity"] for p in state.get("positions", [])}
    for symbol in set(net) | set(held):
        if net.get(symbol, 0) != held.get(symbol, 0):
            problems.append(
                f"{symbol}: fills net {net.get(symbol, 0)}, position {held.get(symbol, 0)}"
            )
    # working orders in the state are working in the journal
    statuses = {
        r["order_id"]: r["status"]
        for r in journal.rows(
            "SELECT order_id, status FROM orders WHERE account_id = ?", (account,)
        )
    }
    for order in state.get("orders", []):
        if statuses.get(order["order_id"]) != order["status"]:
            problems.append(
                f"order {order['order_id']}: state says {order['status']}, journal "
                f"{statuses.get(order['order_id'])}"
            )
    # the day's realized P&L is the sum of that day's trades
    risk = state.get("risk", {})
    day_start = state.get("day_start_ns")
    if day_start is not None:
        rows = journal.rows(
            "SELECT net_pnl FROM trades WHERE account_id = ? AND exit_ts_ns >= ?",
            (account, day_start),
        )
        total = sum((Decimal(r["net_pnl"]) for r in rows), Decimal(0))
        if total != Decimal(risk.get("realized", "0")):
            problems.append(f"day P&L {risk.get('realized')} but the day's trades add to {total}")
    # the balance is the start plus every trade
    rows = journal.rows("SELECT net_pnl FROM trades WHERE account_id = ?", (account,))
    total = sum((Decimal(r["net_pnl"]) for r in rows), Decimal(0))
    start = Decimal(state.get("starting_balance", "0"))
    if start + total != Decimal(state.get("balance", "0")):
        problems.append(f"balance {state.get('balance')} but start {start} + trades {total}")
    return problems
