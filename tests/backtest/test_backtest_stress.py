"""`tradebot stress`: slippage scenarios, time breakdowns and a seeded Monte Carlo."""

from __future__ import annotations

import json
from decimal import Decimal

from click.testing import CliRunner

from tradebot_core.cli import cli


def stress(repo_root, tmp_path, name):
    out = tmp_path / f"{name}.json"
    result = CliRunner().invoke(
        cli,
        [
            "stress",
            str(repo_root / "tradebot.yaml"),
            "--from",
            "2024-10-07",
            "--to",
            "2024-10-11",
            "--workers",
            "1",
            "--monte-carlo",
            "300",
            "--seed",
            "11",
            "--slippage",
            "2",
            "--json",
            str(out),
            "--db",
            str(tmp_path / "bt.db"),
            "-q",
            "--set",
            "feed.demo.trades_per_session=30000",
            "--set",
            "timeframe_s=120",
            "--set",
            "services={}",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())["summary"]


def test_stress_report_is_complete_and_reproducible(repo_root, tmp_path):
    first = stress(repo_root, tmp_path, "a")
    again = stress(repo_root, tmp_path, "b")
    assert first == again
    s = first["stress"]
    assert set(s["by weekday"]) == {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}
    assert all(hour[:2].isdigit() for hour in s["by hour"])
    assert sum(v["trades"] for v in s["by hour"].values()) == first["overall"]["trades"]
    assert "2" in s["slippage"]
    mc = s["monte_carlo"]
    assert mc["runs"] == 300 and mc["seed"] == 11
    for mode in ("reshuffled", "resampled"):
        ranked = sorted(mc[mode]["final_balance"].items(), key=lambda kv: float(kv[0][1:]))
        p = [Decimal(v) for _, v in ranked]
        assert p == sorted(p)
    # reshuffling only reorders trades: every path ends on the same balance
    assert len(set(mc["reshuffled"]["final_balance"].values())) == 1
