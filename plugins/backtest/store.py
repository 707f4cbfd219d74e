"""The backtest database (SQLite): runs, days, trades and signal counts, with the config hash and
code version of each run, so any number in a report can be traced to what produced it."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, created_ns INTEGER, kind TEXT, config_hash TEXT, code_version TEXT,
    symbol TEXT, date_from TEXT, date_to TEXT, executor TEXT, scenario TEXT,
    final_balance TEXT, summary TEXT
);
CREATE TABLE IF NOT EXISTS days (
    run_id INTEGER, day TEXT, ticks INTEGER, bars INTEGER, orders INTEGER, trades INTEGER,
    net_pnl TEXT, start_balance TEXT, end_balance TEXT, wall_s REAL, PRIMARY KEY (run_id, day)
);
CREATE TABLE IF NOT EXISTS trades (
    run_id INTEGER, day TEXT, bracket_id TEXT, symbol TEXT, direction TEXT, quantity INTEGER,
    entry_price TEXT, exit_price TEXT, entry_ts_ns INTEGER, exit_ts_ns INTEGER, ticks INTEGER,
    net_pnl TEXT, commissions TEXT, exit_reason TEXT, pattern TEXT
);
CREATE TABLE IF NOT EXISTS signals (
    run_id INTEGER, day TEXT, pattern TEXT, count INTEGER
);
"""


def open_db(path: str | Path, schema: str) -> sqlite3.Connection:
    """The backtest database at ``path`` (its folder made if need be), with ``schema``'s tables."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    try:
        db.executescript(schema)
    except BaseException:
        db.close()
        raise
    return db


def save_run(
    path: str | Path,
    result: Any,
    summary: dict[str, Any],
    executor: str,
    kind: str = "backtest",
    scenario: str = "",
) -> int:
    db = open_db(path, SCHEMA)
    try:
        with db:
            cur = db.execute(
                "INSERT INTO runs (created_ns, kind, config_hash, code_version, symbol, date_from,"
                " date_to, executor, scenario, final_balance, summary)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time_ns(),
                    kind,
                    result.config_hash,
                    result.code_version,
                    result.symbol,
                    result.start.isoformat(),
                    result.end.isoformat(),
                    executor,
                    scenario,
                    str(result.final_balance),
                    json.dumps(summary, sort_keys=True),
                ),
            )
            run_id = int(cur.lastrowid or 0)
            for day in result.days:
                db.execute(
                    "INSERT INTO days VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        day["day"],
                        day["ticks"],
                        day["bars"],
                        day["orders"],
                        len(day["trades"]),
                        day["net_pnl"],
                        day["start_balance"],
                        day["end_balance"],
                        day.get("wall_s"),
                    ),
                )
                db.executemany(
                    "INSERT INTO signals VALUES (?, ?, ?, ?)",
                    [(run_id, day["day"], p, n) for p, n in day["signals"].items()],
                )
                db.executemany(
                    "INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            run_id,
                            day["day"],
                            t["bracket_id"],
                            t["symbol"],
                            t["direction"],
                            t["quantity"],
                            t["entry_price"],
                            t["exit_price"],
                            t["entry_ts_ns"],
                            t["exit_ts_ns"],
                            t["ticks"],
                            t["net_pnl"],
                            t["commissions"],
                            t["exit_reason"],
                            t["pattern"],
                        )
                        for t in day["trades"]
                    ],
                )
        return run_id
    finally:
        db.close()
