"""The Databento historical feed, through the official client, against a loopback gateway."""

from __future__ import annotations

import logging
from datetime import date

import databento as db
import numpy as np
import pytest
from feeds_databento_hist.hist_gateway import KEY, FakeDatabento, start, tls_contexts

from plugins.feeds.databento_feed import DatabentoError, DatabentoFeed, DatabentoSettings
from plugins.feeds.dbn_ticks import records_to_ticks
from tradebot_core.components import PluginContext
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import TickBatch

DAY = date(2023, 12, 26)  # the Globex session that opened on the evening of the 25th
MBO = "esh4-glbx-mdp3-20231225.mbo.dbn.zst"


@pytest.fixture
async def gateway(shared_data, tmp_path, monkeypatch):
    fake = FakeDatabento(files={"mbo": shared_data / "databento" / MBO})
    context, ca_file = tls_contexts(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    runner, port = await start(fake.app(), context)
    yield fake, f"127.0.0.1:{port}"
    await runner.cleanup()


def feed(gateway_address, tmp_path, **settings):
    values = {
        "api_key": KEY,
        "schema": "mbo",
        "symbol": "ESH4",
        "start": DAY,
        "gateway": gateway_address,
        "cache_dir": tmp_path / "cache",
        "backoff_s": 0.01,
        **settings,
    }
    return DatabentoFeed(
        DatabentoSettings.model_validate(values),
        PluginContext("ES", InstrumentRegistry(), 60, None),
    )


async def play(source):
    items = [item async for item in source.stream()]
    return np.concatenate([i.ticks for i in items if isinstance(i, TickBatch)])


def expected(shared_data):
    return records_to_ticks(db.DBNStore.from_file(shared_data / "databento" / MBO).to_ndarray())


async def test_downloads_once_then_plays_from_the_cache(gateway, tmp_path, shared_data):
    fake, address = gateway
    ticks = await play(feed(address, tmp_path))
    assert np.array_equal(ticks, expected(shared_data))
    assert [name for name, _ in fake.calls] == ["get_cost", "get_range"]
    cost_form = fake.calls[0][1]
    assert cost_form["dataset"] == "GLBX.MDP3" and cost_form["symbols"] == "ESH4"
    assert cost_form["stype_in"] == "raw_symbol" and cost_form["schema"] == "mbo"
    assert (tmp_path / "cache" / "GLBX.MDP3" / "mbo" / f"ESH4-{DAY}.dbn.zst").is_file()
    again = await play(feed(address, tmp_path))
    assert np.array_equal(again, ticks)
    assert len(fake.calls) == 2  # the second run asked nothing, not even the price


async def test_above_budget_it_stops_before_downloading(gateway, tmp_path):
    fake, address = gateway
    fake.cost = 12.5
    with pytest.raises(DatabentoError, match=r"costs \$12\.50, above feed\.databento\.budget_usd"):
        await play(feed(address, tmp_path, budget_usd="5"))
    assert [name for name, _ in fake.calls] == ["get_cost"]
    await play(feed(address, tmp_path, budget_usd="5", confirm=True))
    assert fake.calls[-1][0] == "get_range"


async def test_a_429_and_a_500_are_retried(gateway, tmp_path, shared_data):
    fake, address = gateway
    fake.script = [429, 500]
    ticks = await play(feed(address, tmp_path))
    assert len(ticks) == len(expected(shared_data))
    assert [name for name, _ in fake.calls] == ["get_cost"] * 3 + ["get_range"]


async def test_errors_keep_databentos_message_and_never_the_key(gateway, tmp_path, caplog):
    fake, address = gateway
    fake.script = [500] * 10
    with caplog.at_level(logging.DEBUG), pytest.raises(DatabentoError) as failed:
        await play(feed(address, tmp_path, retries=2))
    assert "HTTP 500: Internal server error." in str(failed.value)
    assert KEY not in str(failed.value) and KEY not in caplog.text
    with pytest.raises(DatabentoError, match="HTTP 401: Authentication failed") as refused:
        await play(feed(address, tmp_path, api_key="db-WRONGkey000000000000000000"))
    assert "WRONGkey" not in str(refused.value)


async def test_a_truncated_download_is_an_error_and_is_not_cached(gateway, tmp_path):
    fake, address = gateway
    fake.truncate = True
    with pytest.raises(DatabentoError, match="does not decode"):
        await play(feed(address, tmp_path))
    assert not any((tmp_path / "cache").rglob("*.dbn.zst"))
    assert not any((tmp_path / "cache").rglob("*.part"))


def test_symbols_continuous_contract_and_front_month(tmp_path):
    context = PluginContext("ES", InstrumentRegistry(), 60, None)

    def symbol(value):
        settings = DatabentoSettings(api_key=KEY, start=date(2025, 12, 12), symbol=value)
        source = DatabentoFeed(settings, context)
        return source.symbol_for(date(2025, 12, 12)), source._request(date(2025, 12, 12))

    assert symbol(None)[0] == "ES.c.0" and symbol(None)[1]["stype_in"] == "continuous"
    assert symbol("ESZ5")[1]["stype_in"] == "raw_symbol"
    assert symbol("front")[0] == "ESH6"  # rolled on Thursday 2025-12-11
