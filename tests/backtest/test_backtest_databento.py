"""A backtest on Databento prices the missing days once, downloads them once, then costs nothing."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from feeds_databento_hist.hist_gateway import KEY, FakeDatabento, start, tls_contexts
from tradebot_plugins.backtest.commands import prepare_feed
from tradebot_plugins.backtest.engine import run_backtest
from tradebot_plugins.backtest.executors import InlineExecutor

from tradebot_core.config import load_config

MBO = "esh4-glbx-mdp3-20231225.mbo.dbn.zst"


@pytest.fixture
async def gateway(shared_data, tmp_path, monkeypatch):
    fake = FakeDatabento(files={"mbo": shared_data / "databento" / MBO}, cost=0.40)
    context, ca_file = tls_contexts(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    runner, port = await start(fake.app(), context)
    yield fake, f"127.0.0.1:{port}"
    await runner.cleanup()


async def test_cached_days_cost_nothing_the_second_time(gateway, tmp_path, capsys):
    fake, address = gateway
    path = tmp_path / "bt.yaml"
    path.write_text(
        "symbol: ES\ntimeframe_s: 60\n"
        f"feed: {{plugin: databento, databento: {{api_key: {KEY}, schema: mbo, symbol: ESH4, "
        f"start: 2023-12-26, gateway: '{address}', cache_dir: {tmp_path / 'cache'}}}}}\n"
        "detectors: {imbalance: {}, unfinished_business: {}}\nnotifiers: {}\n"
    )
    loaded = load_config(path)
    days = [date(2023, 12, 26), date(2023, 12, 27)]
    await asyncio.to_thread(prepare_feed, loaded, days)
    assert "downloaded 2 day(s) for $0.80" in capsys.readouterr().err
    assert [name for name, _ in fake.calls] == ["get_cost", "get_cost", "get_range", "get_range"]
    result = await asyncio.to_thread(run_backtest, loaded, days, InlineExecutor())
    assert result.days[0]["ticks"] == 2_973
    await asyncio.to_thread(prepare_feed, loaded, days)
    assert "all 2 day(s) in the cache, nothing to pay" in capsys.readouterr().err
    assert len(fake.calls) == 4  # neither the backtest nor the second preparation asked again
