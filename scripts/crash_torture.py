"""Kill ``tradebot run`` with SIGKILL at random moments, restart it, and check the journal.

Each round starts ``tradebot run CONFIG --resume`` on a replayed demo session (paced, so kills
land among fills, exits and the 15:55 flatten), kills it with ``kill -9`` after a random delay,
and checks that the journal it left agrees with itself (fills, orders, positions, day P&L and
balance: :func:`tradebot_core.execution.store.check_consistency`). When a run is allowed to
finish, its trades must equal those of an uninterrupted run of the same session, no fill may be
booked twice and no order sent twice.

    python scripts/crash_torture.py --kills 500            # the long run
    python scripts/crash_torture.py --kills 30 --seed 7    # what the test suite does
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tradebot_core.execution.store import check_consistency
from tradebot_core.journal import Journal

CONFIG = """
symbol: MES
timeframe_s: 120
feed:
  plugin: demo
  speed: {speed}
  demo: {{seed: {seed}, sessions: 1, trades_per_session: {trades}, start_date: "2024-11-11"}}
detectors:
  imbalance: {{ratio: 2.5}}
  stacked_imbalance: {{}}
  exhaustion: {{}}
  absorption: {{}}
  delta_divergence: {{}}
  unfinished_business: {{}}
regime: {{plugin: adx}}
router: {{plugin: regime}}
broker: {{plugin: paper}}
risk: {{daily_profit_target: 100000, daily_loss_limit: -100000, max_position: 2}}
account: {{starting_balance: 2500, tiers: []}}
journal: {{path: {journal}}}
"""

TRADE_FIELDS = (
    "symbol",
    "direction",
    "quantity",
    "entry_price",
    "exit_price",
    "entry_ts_ns",
    "exit_ts_ns",
    "net_pnl",
    "exit_reason",
    "pattern",
)


def write_config(folder: Path, name: str, seed: int, speed: str, trades: int) -> Path:
    journal = folder / f"{name}.db"
    path = folder / f"{name}.yaml"
    path.write_text(CONFIG.format(speed=speed, seed=seed, trades=trades, journal=journal))
    return path


def command(config: Path) -> list[str]:
    return [sys.executable, "-m", "tradebot_core.cli", "run", str(config), "--resume", "-q"]


def run_to_end(config: Path, timeout_s: float = 300) -> int:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        command(config), env=env, capture_output=True, timeout=timeout_s, check=False
    ).returncode


def account_trades(journal_path: Path) -> list[tuple[Any, ...]]:
    journal = Journal(journal_path)
    try:
        state = journal.load_state("session") or {}
        rows = journal.rows(
            "SELECT * FROM trades WHERE account_id = ? ORDER BY exit_ts_ns, entry_ts_ns, "
            "entry_price, exit_price",
            (state.get("account_id"),),
        )
    finally:
        journal.close()
    return [tuple(row[f] for f in TRADE_FIELDS) for row in rows]


def started(journal_path: Path, process: subprocess.Popen, timeout_s: float) -> None:
    """Wait until ``process`` has opened the journal and started its run (or ended)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True) as db:
                if db.execute("SELECT 1 FROM runs WHERE pid = ?", (process.pid,)).fetchone():
                    return
        except sqlite3.Error:
            pass
        time.sleep(0.05)


def resume_point(journal_path: Path) -> tuple[int, int, int]:
    """(ticks done, trades booked, contracts open) in the journal's saved state."""
    if not journal_path.exists():
        return (0, 0, 0)
    journal = Journal(journal_path)
    try:
        state = journal.load_state("session") or {}
        trades = journal.rows(
            "SELECT COUNT(*) AS n FROM trades WHERE account_id = ?", (state.get("account_id"),)
        )[0]["n"]
    finally:
        journal.close()
    open_ = sum(abs(p["quantity"]) for p in state.get("positions", []))
    return (state.get("resume", {}).get("ticks", 0), trades, open_)


def check_journal(journal_path: Path) -> list[str]:
    """Everything wrong with a journal after a kill; empty if it is sound."""
    if not journal_path.exists():
        return []
    journal = Journal(journal_path)
    try:
        state = journal.load_state("session")
        problems = check_consistency(journal, state)
        account = (state or {}).get("account_id")
        twice = journal.rows(
            "SELECT order_id, COUNT(*) AS n FROM order_events WHERE new = 'submitted' "
            "AND old IS NULL GROUP BY order_id HAVING n > 1"
        )
        problems += [f"order {r['order_id']} submitted {r['n']} times" for r in twice]
        entries = journal.rows(
            "SELECT bracket_id, SUM(quantity) AS q FROM fills WHERE account_id = ? AND "
            "role = 'entry' GROUP BY bracket_id",
            (account,),
        )
        sizes = {
            r["bracket_id"]: r["quantity"]
            for r in journal.rows(
                "SELECT bracket_id, quantity FROM orders WHERE role = 'entry' AND account_id = ?",
                (account,),
            )
        }
        problems += [
            f"bracket {r['bracket_id']}: entry filled {r['q']} of {sizes.get(r['bracket_id'])}"
            for r in entries
            if r["q"] > sizes.get(r["bracket_id"], 0)
        ]
        early = journal.rows(
            "SELECT trade_id FROM trades WHERE account_id = ? AND exit_ts_ns < entry_ts_ns",
            (account,),
        )
        problems += [f"trade {r['trade_id']} closed before it opened" for r in early]
    finally:
        journal.close()
    return problems


def torture(
    kills: int,
    seed: int = 1,
    folder: Path | None = None,
    trades: int = 60_000,
    speed: str = "4000",
    max_delay_s: float = 3.0,
    progress: bool = False,
) -> dict[str, Any]:
    """``kills`` SIGKILLs across as many sessions as it takes; returns what it saw."""
    rng = random.Random(seed)
    own = folder is None
    tmp = tempfile.TemporaryDirectory() if own else None
    base = Path(tmp.name) if tmp else Path(folder)  # type: ignore[arg-type]
    report: dict[str, Any] = {"kills": 0, "sessions": 0, "problems": [], "restarts": 0}
    try:
        reference = write_config(base, "reference", seed, "max", trades)
        if run_to_end(reference) != 0:
            raise RuntimeError("the uninterrupted reference run failed")
        expected = account_trades(base / "reference.db")
        report["reference_trades"] = len(expected)
        session = 0
        while report["kills"] < kills:
            session += 1
            config = write_config(base, f"crash{session}", seed, speed, trades)
            journal = base / f"crash{session}.db"
            for _ in range(1000):
                if report["kills"] >= kills:
                    break
                process = subprocess.Popen(
                    command(config),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env={**os.environ, "NO_COLOR": "1"},
                )
                if rng.random() < 0.15:  # now and then, a kill while it starts up
                    time.sleep(rng.uniform(0.0, 0.5))
                else:  # mostly while it trades: a random moment after its run row exists
                    started(journal, process, timeout_s=120)
                    time.sleep(rng.uniform(0.05, max_delay_s))
                if process.poll() is not None:
                    break  # it finished before the kill
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                report["kills"] += 1
                problems = check_journal(journal)
                report["problems"] += [f"kill {report['kills']}: {p}" for p in problems]
                where = resume_point(journal)
                report.setdefault("resume_points", []).append(where)
                if progress:
                    print(
                        f"kill {report['kills']}/{kills}: session {session}, at tick "
                        f"{where[0]:,} with {where[1]} trades and {where[2]} open; "
                        f"{len(problems)} problems",
                        flush=True,
                    )
            rc = run_to_end(config)  # finish the session after its kills
            report["restarts"] += 1
            if rc != 0:
                report["problems"].append(f"session {session}: the final run exited {rc}")
            got = account_trades(journal)
            if got != expected:
                report["problems"].append(
                    f"session {session}: {len(got)} trades after the kills, {len(expected)} "
                    "in the uninterrupted run, or different"
                )
            report["problems"] += [f"session {session}: {p}" for p in check_journal(journal)]
            report["sessions"] = session
    finally:
        if tmp is not None:
            tmp.cleanup()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trades", type=int, default=60_000, help="trades in the demo session")
    parser.add_argument("--speed", default="4000", help="replay speed of the killed runs")
    args = parser.parse_args()
    started = time.monotonic()
    report = torture(args.kills, args.seed, trades=args.trades, speed=args.speed, progress=True)
    report["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, indent=2))
    sys.exit(1 if report["problems"] else 0)


if __name__ == "__main__":
    main()
