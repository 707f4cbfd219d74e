"""`tradebot data download` prices, refuses or caches Databento days (a following backtest makes
no request), and `tradebot backtests summary` lists the saved runs, newest first."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner
from feeds_databento_hist.hist_gateway import KEY, FakeDatabento, start, tls_contexts

from tradebot_core.cli import cli

MBO = "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
DAYS = ["--from", "2023-12-26", "--to", "2023-12-27"]


@pytest.fixture
async def gateway(shared_data, tmp_path, monkeypatch):
    fake = FakeDatabento(files={"mbo": shared_data / "databento" / MBO}, cost=0.40)
    context, ca_file = tls_contexts(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    runner, port = await start(fake.app(), context)
    yield fake, f"127.0.0.1:{port}"
    await runner.cleanup()


def databento_config(tmp_path, address):
    path = tmp_path / "bt.yaml"
    path.write_text(
        "symbol: ES\ntimeframe_s: 60\n"
        f"feed: {{plugin: databento, databento: {{api_key: {KEY}, schema: mbo, symbol: ESH4, "
        f"start: 2023-12-26, gateway: '{address}', cache_dir: {tmp_path / 'cache'}}}}}\n"
        "detectors: {imbalance: {}, unfinished_business: {}}\nnotifiers: {}\nservices: {}\n"
    )
    return str(path)


async def invoke(*args):
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), catch_exceptions=False)


async def test_download_prices_first_then_a_backtest_makes_no_request(gateway, tmp_path):
    fake, address = gateway
    config = databento_config(tmp_path, address)
    result = await invoke("data", "download", config, *DAYS, "--max-cost", "1")
    assert result.exit_code == 0, result.output
    assert "2 day(s) to download (0 already cached): $0.80" in result.output
    assert "downloaded 2 day(s) for $0.80" in result.output
    assert [name for name, _ in fake.calls] == ["get_cost", "get_cost", "get_range", "get_range"]
    assert len(list((tmp_path / "cache").rglob("*.dbn.zst"))) == 2

    again = await invoke("data", "download", config, *DAYS)
    assert "all 2 day(s) already in the cache: nothing to download" in again.output
    db = str(tmp_path / "bt.db")
    backtest = await invoke(
        "backtest", config, *DAYS, "--workers", "1", "--slippage", "", "--monte-carlo", "50",
        "--db", db, "-q",
    )  # fmt: skip
    assert backtest.exit_code == 0, backtest.output
    assert len(fake.calls) == 4  # neither the second download nor the backtest asked again

    summary = await invoke("backtests", "summary", "--db", db, "--json")
    (run,) = json.loads(summary.output)
    assert run["range"] == "2023-12-26 to 2023-12-27" and run["days"] == 2


async def test_max_cost_below_the_price_refuses_with_the_figure(gateway, tmp_path):
    fake, address = gateway
    config = databento_config(tmp_path, address)
    result = await invoke("data", "download", config, *DAYS, "--max-cost", "0.50")
    assert result.exit_code == 1
    assert "costs $0.80, above --max-cost $0.50: nothing downloaded" in result.output
    assert [name for name, _ in fake.calls] == ["get_cost", "get_cost"]
    assert not list((tmp_path / "cache").rglob("*.dbn.zst"))


def test_a_feed_without_a_cache_has_nothing_to_download(repo_root):
    result = CliRunner().invoke(
        cli, ["data", "download", str(repo_root / "tradebot.yaml"), "--from", "2024-10-07",
              "--to", "2024-10-08"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "the demo feed keeps no cache of downloaded days: nothing to download" in result.output


def test_summary_lists_runs_newest_first(tmp_path):
    import sqlite3

    from tradebot_plugins.backtest.store import SCHEMA

    db = sqlite3.connect(tmp_path / "bt.db")
    db.executescript(SCHEMA)
    for run_id, created, net in ((1, 10**18, "-5"), (2, 2 * 10**18, "12.50")):
        summary = {"overall": {"net_pnl": net, "profit_factor": "1.3", "max_drawdown": "40"}}
        db.execute(
            "INSERT INTO runs (id, created_ns, kind, symbol, date_from, date_to, scenario,"
            " final_balance, summary) VALUES (?, ?, 'backtest', 'MES', '2024-10-07',"
            " '2024-10-08', '', '2512.50', ?)",
            (run_id, created, json.dumps(summary)),
        )
        db.execute(
            "INSERT INTO trades (run_id, day, net_pnl) VALUES (?, '2024-10-07', ?)", (run_id, net)
        )
    db.commit()
    db.close()
    out = CliRunner().invoke(cli, ["backtests", "summary", "--db", str(tmp_path / "bt.db")])
    assert out.exit_code == 0, out.output
    assert out.output.index("12.50") < out.output.index("-5")
    for heading in ("when", "range", "days", "trades", "net P&L", "final balance"):
        assert heading in out.output
    runs = json.loads(
        CliRunner().invoke(cli, ["backtests", "summary", "--db", str(tmp_path / "bt.db"),
                                 "--json"]).output
    )  # fmt: skip
    assert [r["id"] for r in runs] == [2, 1]
    assert runs[0]["trades"] == 1 and runs[0]["profit_factor"] == "1.3"
    missing = CliRunner().invoke(cli, ["backtests", "summary", "--db", str(tmp_path / "no.db")])
    assert missing.exit_code == 1 and "no backtest database" in missing.output
