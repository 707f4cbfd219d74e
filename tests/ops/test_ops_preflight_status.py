"""``tradebot preflight``: one clear FAIL line per problem; ``tradebot status`` from the journal."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from click.testing import CliRunner

from tradebot_core import Pipeline, PluginManager
from tradebot_core.cli import cli
from tradebot_core.config import load_config
from tradebot_core.execution.store import JournalLock

WEDNESDAY = "2024-11-13T10:00:00"


def preflight(ops_env, *extra: str):
    args = ["preflight", str(ops_env.config), "--now", WEDNESDAY, *extra]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.stdout.splitlines()


def fails(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_good_config_passes(ops_env):
    ops_env.write_config()
    code, lines = preflight(ops_env)
    assert code == 0, lines
    assert fails(lines) == []
    checks = {line.split()[1].rstrip(":"): line.split()[0] for line in lines}
    assert checks["config"] == checks["secrets"] == checks["journal"] == "PASS"
    assert checks["disk"] == "PASS"
    assert checks["clock"] == "WARN"  # no clock_url: not checked
    assert "WARN clock: not checked" in "\n".join(lines)
    assert any(
        line.startswith("PASS calendar: 2024-11-13 is a trading day, market open now")
        for line in lines
    )


def test_a_missing_secret_is_one_fail_line(ops_env, monkeypatch):
    monkeypatch.delenv("TB_TEST_WEBHOOK", raising=False)
    ops_env.write_config(
        extra="""
        notifiers:
          discord: {webhook_url: "${TB_TEST_WEBHOOK}"}
        """
    )
    text = ops_env.config.read_text()
    ops_env.config.write_text(text.replace("notifiers: {log:", "# notifiers: {log:"))
    code, lines = preflight(ops_env)
    assert code == 1
    assert fails(lines) == [
        "FAIL secrets: TB_TEST_WEBHOOK is not set (needed by notifiers.discord.webhook_url; "
        "env or .env)"
    ]


def test_a_locked_journal_is_one_fail_line(ops_env):
    ops_env.write_config()
    lock = JournalLock(ops_env.journal)
    lock.acquire()
    try:
        code, lines = preflight(ops_env)
    finally:
        lock.release()
    assert code == 1
    [line] = fails(lines)
    assert line.startswith(f"FAIL journal: {ops_env.journal} is locked by process ")
    assert str(__import__("os").getpid()) in line


def test_an_unreachable_discord_webhook_is_one_fail_line(ops_env, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}/api/webhooks/123/secret-token-abc"
    monkeypatch.setenv("TB_TEST_WEBHOOK", url)
    ops_env.write_config(
        extra="""
        notifiers:
          discord: {webhook_url: "${TB_TEST_WEBHOOK}"}
        """
    )
    text = ops_env.config.read_text()
    ops_env.config.write_text(text.replace("notifiers: {log:", "# notifiers: {log:"))
    code, lines = preflight(ops_env, "--send-test-message")
    assert code == 1
    [line] = fails(lines)
    assert line.startswith("FAIL discord: webhook unreachable: ")
    assert "secret-token-abc" not in "\n".join(lines)


@pytest.fixture
def finished_run(ops_env):
    ops_env.write_config()
    pipeline = Pipeline(load_config(ops_env.config), PluginManager())
    asyncio.run(pipeline.run())
    return pipeline


def test_status_reads_the_journal_and_the_heartbeat(ops_env, finished_run):
    result = CliRunner().invoke(cli, ["status", str(ops_env.config), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["state"] == "stopped" and data["pid"] is None
    assert data["positions"] == [] and data["working_orders"] == []
    assert data["day_realized"] == str(finished_run.risk.state.realized)
    assert data["heartbeat_state"] == "stopping"
    assert 0 <= data["heartbeat_age_s"] < 60
    assert data["last_tick_age_s"] >= data["heartbeat_age_s"]
    assert data["last_run"]["id"] == 1 and data["last_run"]["exit"] == "completed"
    text = CliRunner().invoke(cli, ["status", str(ops_env.config)]).stdout
    assert "state:          stopped" in text and "position:       flat" in text


def test_status_without_a_journal_says_so(ops_env):
    ops_env.write_config()
    result = CliRunner().invoke(cli, ["status", str(ops_env.config)])
    assert result.exit_code == 1
    assert "no journal at" in result.output
