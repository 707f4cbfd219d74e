"""`tradebot backtest` reports what a trader asks for: overall, tiers, months, patterns and the
stress results with PASS/FAIL against the thresholds, in the terminal, the JSON and the HTML."""

from __future__ import annotations

import json
from decimal import Decimal

from click.testing import CliRunner
from tradebot_plugins.backtest import stress
from tradebot_plugins.backtest.checks import Thresholds, evaluate

from tradebot_core.cli import cli


def run_backtest(repo_root, tmp_path, *extra):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        cli,
        [
            "backtest",
            str(repo_root / "tradebot.yaml"),
            "--from",
            "2024-10-08",
            "--to",
            "2024-10-10",
            "--workers",
            "1",
            "--monte-carlo",
            "200",
            "--slippage",
            "1",
            "--json",
            str(out),
            "--report",
            str(tmp_path / "r.html"),
            "--db",
            str(tmp_path / "bt.db"),
            "-q",
            "--set",
            "feed.demo.trades_per_session=20000",
            "--set",
            "timeframe_s=120",
            "--set",
            "services={}",
            *extra,
        ],
        catch_exceptions=False,
        terminal_width=160,
    )
    assert result.exit_code == 0, result.output
    return result.output, json.loads(out.read_text())["summary"], (tmp_path / "r.html").read_text()


def test_backtest_reports_every_section_with_pass_fail(repo_root, tmp_path):
    out, summary, page = run_backtest(repo_root, tmp_path, "--max-drawdown", "100000")
    overall = summary["overall"]
    for key in (
        "start_balance",
        "final_balance",
        "net_pnl",
        "profit_factor",
        "trades",
        "win_rate",
        "winning_days",
        "average_daily_pnl",
        "max_drawdown",
        "max_consecutive_losses",
    ):
        assert key in overall
    assert {"monthly", "patterns", "tiers", "stress", "checks", "thresholds"} <= set(summary)
    s = summary["stress"]
    assert set(s) == {"slippage", "by hour", "by weekday", "monte_carlo"}
    assert s["slippage"]["1"]["slippage_ticks"] == 2  # one tick more than tradebot.yaml's 1
    assert s["monte_carlo"]["runs"] == 200
    assert "probability_of_ruin" in s["monte_carlo"]["resampled"]
    assert summary["thresholds"] == {
        "min_profit_factor": "1.2",
        "max_drawdown": "100000",
        "mc_ruin_probability": 0.05,
    }
    checks = {c["check"]: c for c in summary["checks"]}
    assert checks["max drawdown"]["result"] == "PASS"  # a $100,000 limit
    assert checks["Monte Carlo (200 runs): P(drawdown >= 100000)"]["result"] == "PASS"
    pf = Decimal(overall["profit_factor"])
    assert checks["profit factor"]["result"] == ("PASS" if pf >= Decimal("1.2") else "FAIL")
    assert {c["result"] for c in summary["checks"]} <= {"PASS", "FAIL"}
    assert any(name.startswith("slippage +1") for name in checks)
    assert any(name.startswith("time of day") for name in checks)
    assert any(name.startswith("day of week") for name in checks)
    for title in ("backtest", "monthly", "per pattern", "slippage", "Monte Carlo", "checks"):
        assert title in out
    assert "checks PASS" in out
    for section in (
        "overall",
        "tiers",
        "monthly",
        "patterns",
        "slippage",
        "by-hour",
        "by-weekday",
        "monte-carlo",
        "checks",
    ):
        assert f'<section id="{section}">' in page
    assert '<tr class="pass"><td>max drawdown</td>' in page


def test_thresholds_decide_pass_or_fail():
    data = {
        "overall": {"trades": 10, "net_pnl": "300", "profit_factor": "1.50", "max_drawdown": "400"},
        "stress": {
            "slippage": {"1": {"trades": 10, "net_pnl": "100", "profit_factor": "1.10"}},
            "by hour": {
                "10:00": {"net_pnl": "250"},
                "11:00": {"net_pnl": "50"},
            },
            "by weekday": {"Monday": {"net_pnl": "400"}, "Tuesday": {"net_pnl": "-100"}},
            "monte_carlo": {
                "runs": 1000,
                "trades": 10,
                "resampled": {"probability_of_ruin": 0.02},
            },
        },
    }
    results = [c["result"] for c in evaluate(data, Thresholds())]
    assert results == ["PASS", "PASS", "FAIL", "PASS", "FAIL", "PASS"]
    strict = Thresholds(min_profit_factor="2", max_drawdown="300", mc_ruin_probability=0.01)
    assert [c["result"] for c in evaluate(data, strict)] == ["FAIL"] * 3 + ["PASS", "FAIL", "FAIL"]


def test_monte_carlo_ruin_is_the_share_of_paths_reaching_the_limit():
    nets = [Decimal("-100"), Decimal("50")] * 5
    never = stress.monte_carlo(nets, Decimal("2500"), 200, 3, Decimal("100000"))
    always = stress.monte_carlo(nets, Decimal("2500"), 200, 3, Decimal("100"))
    assert never["resampled"]["probability_of_ruin"] == 0.0
    assert always["reshuffled"]["probability_of_ruin"] == 1.0
    assert (
        "probability_of_ruin" not in stress.monte_carlo(nets, Decimal("2500"), 10, 3)["resampled"]
    )
