"""The tradebot command line, through click's runner and as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tradebot_core.cli import cli

BUILTIN_KINDS = {
    "feed": {"demo", "file", "databento", "polygon"},
    "detector": {
        "imbalance",
        "stacked_imbalance",
        "exhaustion",
        "absorption",
        "delta_divergence",
        "unfinished_business",
    },
    "regime": {"adx"},
    "router": {"regime"},
    "broker": {"paper"},
    "notifier": {"console", "log", "discord"},
    "service": {"status_page", "watchdog"},
}


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_plugins_json_lists_every_builtin_with_its_kind():
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    found: dict[str, set[str]] = {}
    for row in rows:
        assert set(row) >= {"name", "kind", "version", "module", "source"}
        found.setdefault(row["kind"], set()).add(row["name"])
    for kind, names in BUILTIN_KINDS.items():
        assert names <= found.get(kind, set()), (kind, names - found.get(kind, set()))
    assert all(row["source"] == "builtin" for row in rows if row["module"].startswith("plugins."))


def test_the_repo_config_validates(repo_root):
    result = invoke("validate", str(repo_root / "tradebot.yaml"))
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("feed.plugin=nosuchfeed", "feed.nosuchfeed: no feed plugin named 'nosuchfeed'"),
        ("timeframe_s=five", "--set timeframe_s=five: timeframe_s: "),
        (
            "risk.daily_loss_limit=100",
            "risk.daily_loss_limit=100: risk.daily_loss_limit: must be <= 0",
        ),
        ("broker.paper.slippage_ticks=-2", "broker.paper.slippage_ticks: must be >= 0"),
        ("detectors.imbalance.ratio=0.5", "detectors.imbalance.ratio: must be >= 1"),
    ],
)
def test_bad_config_exits_non_zero_naming_the_key_and_writes_nothing(
    repo_root, tmp_path, override, expected
):
    journal = tmp_path / "journal.db"
    result = invoke(
        "run",
        str(repo_root / "tradebot.yaml"),
        "--set",
        override,
        "--set",
        f"journal.path={journal}",
        "--set",
        "feed.speed=max",
    )
    assert result.exit_code == 2
    assert expected in result.stderr
    assert not journal.exists()


def test_missing_config_file_is_named(tmp_path):
    result = invoke("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert f"config file not found: {tmp_path / 'nope.yaml'}" in result.stderr


def test_init_writes_a_valid_starter_and_will_not_overwrite(tmp_path):
    target = tmp_path / "starter.yaml"
    assert invoke("init", str(target)).exit_code == 0
    assert invoke("validate", str(target)).exit_code == 0
    again = invoke("init", str(target))
    assert again.exit_code != 0 and "exists" in again.output


def test_help_explains_the_commands():
    result = invoke("--help")
    for command in ("run", "validate", "plugins", "init", "replay", "backtest", "stress"):
        assert command in result.output
    run_help = invoke("run", "--help").output
    assert "--set" in run_help and "--summary-json" in run_help


def test_demo_run_at_max_speed_trades_on_paper(repo_root, tmp_path):
    """The README's main job, as a subprocess, with the demo feed at full speed."""
    summary = tmp_path / "summary.json"
    journal = tmp_path / "run.db"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tradebot_core.cli",
            "run",
            str(repo_root / "tradebot.yaml"),
            "--set",
            "feed.speed=max",
            "--set",
            f"journal.path={journal}",
            "--set",
            "feed.demo.sessions=2",
            "--set",
            "services.status_page.port=0",
            "--summary-json",
            str(summary),
            "--quiet",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "120"},
    )
    data = json.loads(summary.read_text())
    for key in ("bars", "signals", "orders", "trades", "net_pnl", "ticks", "wall_seconds"):
        assert key in data
    assert data["ticks"] > 100_000 and data["bars"] > 100
    assert data["trades"] > 0 and data["signals"] >= data["orders"]
    assert journal.exists()
