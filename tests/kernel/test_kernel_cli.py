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


# -- start-up: what `tradebot --help` imports; -q ------------------------------------------------

HEAVY_IMPORTS = r"""
import sys

def heavy():
    return sorted(
        name
        for name in sys.modules
        if name.split(".")[0] in ("numpy", "pandas", "pydantic", "rich", "tradebot_plugins")
        or name.startswith("tradebot_core.run")
    )

import tradebot_core.cli
print(heavy())
try:
    tradebot_core.cli.main(["--help"])
except SystemExit:
    pass
print(heavy())
"""


def test_help_lists_plugin_commands_without_importing_plugins_or_numpy():
    done = subprocess.run(
        [sys.executable, "-c", HEAVY_IMPORTS],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120"},
        check=True,
    )
    *help_lines, after_help = done.stdout.strip().splitlines()
    after_import, *help_lines = help_lines
    assert after_import == "[]"
    # listing a plugin's command imports only the module of the function that builds it
    assert after_help == "['tradebot_plugins', 'tradebot_plugins.backtest', 'tradebot_plugins.ops']"
    listed = {line.split()[0]: line for line in help_lines if line.startswith("  ")}
    assert "one CME trading day per job" in listed["backtest"]
    assert "Stress-test CONFIG" in listed["stress"]
    assert {"watchdog", "status", "preflight"} <= set(listed)


def test_plugin_commands_declared_by_entry_point_run():
    assert "--from" in invoke("backtest", "--help").output
    assert "--monte-carlo" in invoke("stress", "--help").output
    assert invoke("nosuchcommand").exit_code == 2


def test_quiet_run_prints_only_warnings_and_the_summary(repo_root, tmp_path):
    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "tradebot_core.cli",
                "run",
                str(repo_root / "tradebot.yaml"),
                *("--set", "feed.speed=max", "--set", "services={}"),
                *("--set", "feed.demo.trades_per_session=30000"),
                *("--journal", str(tmp_path / f"journal{len(extra)}.db")),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "COLUMNS": "120"},
            check=True,
        )

    loud, quiet = run(), run("-q")
    loud_lines = loud.stdout.splitlines() + loud.stderr.splitlines()
    quiet_lines = quiet.stdout.splitlines() + quiet.stderr.splitlines()
    assert "order " in loud.stderr and len(loud_lines) > 60  # the console notifier's lines
    assert quiet.stderr == ""  # the demo run has no warning
    assert "tradebot run: completed" in quiet.stdout and "signals per pattern" in quiet.stdout
    assert len(quiet_lines) == len(quiet.stdout.splitlines()) < 40
