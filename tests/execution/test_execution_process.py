"""Real ``tradebot run`` processes: kill -9 at random moments, SIGTERM on a silent feed, a halt
that outlives a crash, a port already taken, one journal per process, and the README's command
giving the same result twice."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from crash_torture import check_journal, torture  # noqa: E402

TOKEN = "test-token-1234567"


def tradebot(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "NO_COLOR": "1", **kwargs.pop("env", {})}
    return subprocess.Popen(
        [sys.executable, "-m", "tradebot_core.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


def demo_config(tmp_path: Path, speed: str = "3000", extra: str = "") -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            symbol: MES
            timeframe_s: 120
            feed: {{plugin: demo, speed: {speed}, demo: {{trades_per_session: 60000}}}}
            detectors: {{imbalance: {{ratio: 2.5}}, exhaustion: {{}}, absorption: {{}}}}
            account: {{tiers: []}}
            journal: {{path: {tmp_path / "j.db"}}}
            """
        )
        + textwrap.dedent(extra)
    )
    return path


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def rows(db: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).fetchall()


def has_rows(db: Path, sql: str) -> bool:
    """For waiting: False until the journal exists with its tables and the query finds rows."""
    try:
        return db.exists() and bool(rows(db, sql)[0][0])
    except sqlite3.Error:  # the run has not created its tables yet
        return False


def test_thirty_kill9s_at_random_moments_leave_a_journal_that_restarts_right(tmp_path):
    report = torture(30, seed=2026, folder=tmp_path, max_delay_s=2.5)
    assert report["kills"] == 30
    assert report["problems"] == []
    # the kills landed while it traded: with trades booked and positions open
    points = report["resume_points"]
    assert sum(1 for ticks, trades, _ in points if ticks and trades) >= 10
    assert any(open_ for _, _, open_ in points), "no kill caught a position open"
    assert report["reference_trades"] > 20


def test_an_operator_halt_survives_kill9(tmp_path):
    config = demo_config(
        tmp_path,
        extra=f"""
        services: {{status_page: {{port: 0, token: {TOKEN}}}}}
        """,
    )
    process = tradebot("run", str(config), "--resume")
    url = None
    for line in process.stderr:
        match = re.search(r"status page on (http://\S+)/dashboard", line)
        if match:
            url = match.group(1)
            break
    assert url, "the status page did not start"
    answer = httpx.post(
        f"{url}/api/session/halt", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    journal = tmp_path / "j.db"
    wait_for(
        lambda: has_rows(journal, "SELECT count(*) FROM session_state WHERE state = 'halted'"),
        10,
        "the halt to be journaled",
    )
    halted_at = rows(journal, "SELECT max(id) FROM events")[0][0]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    again = tradebot(
        "run", str(config), "--resume", "--set", "feed.speed=max", "--set", "services={}"
    )
    _out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    state = json.loads(rows(journal, "SELECT value FROM state WHERE key = 'session'")[0][0])
    assert state["risk"]["halted"] and state["risk"]["manual_halt"]
    new_entries = rows(
        journal,
        "SELECT count(*) FROM events WHERE id > ? AND kind = 'fill' AND payload LIKE "
        '\'%"role": "entry"%\'',
        halted_at,
    )[0][0]
    assert new_entries == 0
    refused = rows(
        journal,
        "SELECT count(*) FROM decisions d JOIN runs r ON r.id = d.run_id "
        "WHERE d.reasons LIKE '%halted by operator%' OR d.reasons LIKE '%halted from%'",
    )[0][0]
    assert refused > 0, "signals after the restart must be refused as halted"


SILENT_FEED = """
import asyncio
from tradebot_core import Feed, FeedStatus, FeedStatusKind, hookimpl

class Silent(Feed):
    name = "silent"
    live = True

    async def stream(self):
        yield FeedStatus(kind=FeedStatusKind.CONNECTED, ts_ns=1_731_508_200_000_000_000)
        await asyncio.sleep(3600)  # minutes and minutes of nothing

@hookimpl
def register_feeds(register):
    register(Silent)
"""


@pytest.fixture(scope="module")
def silent_feed(tmp_path_factory) -> str:
    source = tmp_path_factory.mktemp("silent-src")
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=70.1"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "tradebot-silent-feed"
            version = "1.0"

            [project.entry-points.tradebot]
            silent = "tradebot_silent_feed"
            """
        )
    )
    (source / "tradebot_silent_feed.py").write_text(SILENT_FEED)
    target = tmp_path_factory.mktemp("silent-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return str(target)


def test_sigterm_on_a_feed_that_yields_nothing_stops_within_a_second(tmp_path, silent_feed):
    config = demo_config(tmp_path, extra="")
    summary = tmp_path / "summary.json"
    process = tradebot(
        "run",
        str(config),
        "--set",
        "feed.plugin=silent",
        "--summary-json",
        str(summary),
        env={"PYTHONPATH": silent_feed},
    )
    journal = tmp_path / "j.db"
    wait_for(
        lambda: has_rows(journal, "SELECT count(*) FROM events WHERE kind = 'system_start'"),
        60,
        "the run to start",
    )
    sent_ns = time.time_ns()
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=10)
    exited = time.monotonic() - sent
    assert process.returncode == 0
    assert json.loads(summary.read_text())["exit"] == "stopped"
    (ended,) = rows(journal, "SELECT ended_ns FROM runs")
    # the run stopped (its row closed, everything it started stopped) within a second; the
    # interpreter's own exit after that is not the run's
    stopped = (ended[0] - sent_ns) / 1e9
    assert stopped < 1.0, f"the run stopped {stopped:.2f} s after SIGTERM"
    assert exited < 5.0, f"the process exited {exited:.2f} s after SIGTERM"


def test_a_port_already_taken_fails_the_run_with_exit_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = demo_config(tmp_path, "max", f"services: {{status_page: {{port: {port}}}}}\n")
        summary = tmp_path / "summary.json"
        process = tradebot("run", str(config), "--summary-json", str(summary))
        _out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    data = json.loads(summary.read_text())
    assert data["exit"].startswith("failed") and str(port) in data["exit"]
    (ended,) = rows(tmp_path / "j.db", "SELECT ended_ns FROM runs")
    assert ended[0] is not None  # the run row is closed
    assert data["ticks"] == 0


def test_a_second_process_on_the_same_journal_is_refused_with_the_first_ones_pid(tmp_path):
    config = demo_config(tmp_path, "200")
    first = tradebot("run", str(config))
    journal = tmp_path / "j.db"
    try:
        wait_for(lambda: journal.exists() and Path(f"{journal}.lock").exists(), 60, "the lock")
        wait_for(lambda: Path(f"{journal}.lock").read_text().strip() != "", 10, "the pid")
        second = tradebot("run", str(config), "--summary-json", str(tmp_path / "s.json"))
        out, err = second.communicate(timeout=120)
        assert second.returncode == 1
        assert f"in use by process {first.pid}" in (err + out)
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=10)
    assert first.returncode == 0


def test_the_readme_demo_command_twice_gives_the_same_summary(tmp_path):
    summaries = []
    for attempt in range(2):
        out = tmp_path / f"summary{attempt}.json"
        process = tradebot(
            "run",
            str(ROOT / "tradebot.yaml"),
            "--set",
            "feed.speed=max",
            "--set",
            "services.status_page.port=0",
            "--summary-json",
            str(out),
            "--journal",
            str(tmp_path / "tradebot.db"),
        )
        process.communicate(timeout=180)
        assert process.returncode == 0
        data = json.loads(out.read_text())
        data.pop("wall_seconds")
        summaries.append(data)
    assert summaries[0] == summaries[1]
    assert summaries[0]["trades"] > 0
    problems = check_journal(tmp_path / "tradebot.db")
    assert problems == []
