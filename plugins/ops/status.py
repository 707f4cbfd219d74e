"""``tradebot status``: where the bot stands, from the journal and the heartbeat file alone.

No port, no running bot needed: the journal is opened read-only (``mode=ro``; SQLite's WAL lets
a reader in beside the writer), the heartbeat file is read as it is.
"""

from __future__ import annotations

import json
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradebot_core import PRICE_SCALE
from tradebot_core.execution.store import STATE_KEY, JournalLock

from .common import OpsConfig
from .heartbeat import read_heartbeat


def read_journal(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The saved session snapshot and the last run row, read-only."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT value FROM state WHERE key = ?", (STATE_KEY,)).fetchone()
        snapshot = json.loads(row["value"]) if row else None
        run = db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return snapshot, dict(run) if run else None
    finally:
        db.close()


def gather(ops: OpsConfig, now_ns: int | None = None) -> dict[str, Any]:
    """Everything ``tradebot status`` shows, as a JSON-ready dict."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    journal = ops.journal
    if not journal.exists():
        raise FileNotFoundError(f"no journal at {journal} (has the bot run with this config?)")
    snapshot, run = read_journal(journal)
    snapshot = snapshot or {}
    risk = snapshot.get("risk", {})
    holder = JournalLock.holder(journal)
    beat = read_heartbeat(ops.heartbeat)
    beat_age = None
    if beat and isinstance(beat.get("written_ns"), int):
        beat_age = round((now_ns - beat["written_ns"]) / 1e9, 1)
    tick_age = None
    if beat and isinstance(beat.get("last_tick_age_s"), int | float) and beat_age is not None:
        tick_age = round(beat["last_tick_age_s"] + beat_age, 1)
    if holder is None:
        state = "stopped"
    elif risk.get("halted"):
        state = "halted"
    else:
        state = "running"
    summary = json.loads(run["summary"]) if run and run.get("summary") else {}
    return {
        "state": state,
        "pid": holder,
        "halted": bool(risk.get("halted")),
        "halt_reason": risk.get("halt_reason", ""),
        "positions": [
            {"symbol": p["symbol"], "net": p["quantity"], "direction": p.get("direction")}
            for p in snapshot.get("positions", [])
        ],
        "working_orders": [_order(o) for o in snapshot.get("orders", [])],
        "day": risk.get("day"),
        "day_realized": risk.get("realized", "0"),
        "day_trades": risk.get("trades", 0),
        "balance": snapshot.get("balance"),
        "last_tick_age_s": tick_age,
        "heartbeat_age_s": beat_age,
        "heartbeat_state": beat.get("state") if beat else None,
        "last_run": {
            "id": run["id"],
            "started_ns": run["started_ns"],
            "ended_ns": run["ended_ns"],
            "pid": run.get("pid"),
            "exit": summary.get("exit"),
        }
        if run
        else None,
        "journal": str(journal),
        "heartbeat": str(ops.heartbeat),
    }


def _order(order: dict[str, Any]) -> dict[str, Any]:
    keys = ("order_id", "role", "symbol", "side", "quantity", "status")
    price = order.get("price")
    shown = str(Decimal(price) / PRICE_SCALE) if isinstance(price, int) else None
    return {**{k: order.get(k) for k in keys}, "price": shown}


def _age(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f} s ago"


def render(status: dict[str, Any]) -> str:
    pid = f" (pid {status['pid']})" if status["pid"] else ""
    lines = [f"state:          {status['state']}{pid}"]
    if status["halted"]:
        lines.append(f"halted:         {status['halt_reason'] or 'yes'}")
    positions = ", ".join(f"{p['symbol']} {p['net']:+d}" for p in status["positions"]) or "flat"
    lines.append(f"position:       {positions}")
    lines.append(f"working orders: {len(status['working_orders'])}")
    for order in status["working_orders"]:
        lines.append(
            f"  {order['order_id']} {order['role']} {order['side']} {order['quantity']} "
            f"{order['symbol']} @ {order['price'] or 'market'} ({order['status']})"
        )
    lines.append(
        f"day P&L:        ${status['day_realized']} ({status['day_trades']} trades, "
        f"day {status['day']})"
    )
    lines.append(f"balance:        ${status['balance']}")
    lines.append(f"last tick:      {_age(status['last_tick_age_s'])}")
    lines.append(f"last heartbeat: {_age(status['heartbeat_age_s'])}")
    run = status["last_run"]
    if run:
        ended = "still open" if run["ended_ns"] is None else f"ended ({run['exit']})"
        lines.append(f"last run:       #{run['id']}, pid {run['pid']}, {ended}")
    return "\n".join(lines)
