"""The Databento historical feed, through the official client, against a loopback gateway."""

from __future__ import annotations

import logging
from datetime import date

import databento as db
import numpy as np
import pytest
from feeds_databento_hist.hist_gateway import KEY, FakeDatabento, start, tls_contexts
from tradebot_plugins.feeds.databento_feed import DatabentoError, DatabentoFeed, DatabentoSettings
from tradebot_plugins.feeds.dbn_ticks import records_to_ticks

from tradebot_core.components import PluginContext
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import FeedStatus, TickBatch

DAY = date(2023, 12, 26)  # the Globex session that opened on the evening of the 25th
NEXT = date(2023, 12, 27)  # a day the sample holds nothing of
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


async def play(source, items=None):
    items = [] if items is None else items
    async for item in source.stream():
        items.append(item)
    batches = [i.ticks for i in items if isinstance(i, TickBatch)]
    return np.concatenate(batches) if batches else np.empty(0)


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


async def test_each_day_is_its_own_request_cache_file_and_session(gateway, tmp_path, shared_data):
    fake, address = gateway
    items = []
    ticks = await play(feed(address, tmp_path, end=NEXT, batch_size=5_000), items)
    assert np.array_equal(ticks, expected(shared_data))
    assert fake.count("get_cost") == 2 and fake.count("get_range") == 2
    ranges = [
        (int(form["start"]), int(form["end"])) for name, form in fake.calls if name == "get_range"
    ]
    assert ranges[0][1] <= ranges[1][0]  # two sessions, not one long request
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.dbn.zst"))
    assert cached == [f"ESH4-{DAY}.dbn.zst", f"ESH4-{NEXT}.dbn.zst"]
    statuses = [(i.kind.value, i.detail) for i in items if isinstance(i, FeedStatus)]
    assert statuses == [("session_start", str(DAY)), ("session_end", str(DAY))]  # 27th: empty
    assert sum(isinstance(i, TickBatch) for i in items) > 1  # read in chunks


async def test_a_broken_day_loses_nothing_already_cached(gateway, tmp_path, shared_data):
    fake, address = gateway
    fake.truncate = {1}  # the second day's stream is cut in half
    items = []
    with pytest.raises(DatabentoError, match=f"ESH4 {NEXT} in a form that does not decode"):
        await play(feed(address, tmp_path, end=NEXT), items)
    played = np.concatenate([i.ticks for i in items if isinstance(i, TickBatch)])
    assert np.array_equal(played, expected(shared_data))  # the first day played in full
    cache = tmp_path / "cache" / "GLBX.MDP3" / "mbo"
    assert sorted(p.name for p in cache.iterdir()) == [f"ESH4-{DAY}.dbn.zst"]
    fake.truncate = False
    again = await play(feed(address, tmp_path, end=NEXT))
    assert np.array_equal(again, expected(shared_data))
    assert fake.count("get_range") == 3  # only the missing day was asked again
    assert [form["start"] for name, form in fake.calls[-2:]] == [
        fake.calls[-1][1]["start"]
    ] * 2  # its price, then its data


async def test_a_malformed_record_is_an_error_and_is_not_cached(gateway, tmp_path):
    fake, address = gateway
    fake.malformed = {0}
    with pytest.raises(DatabentoError, match=r"record \d+ is malformed.*not cached"):
        await play(feed(address, tmp_path))
    assert not any((tmp_path / "cache").rglob("*.dbn*"))


async def test_the_key_comes_from_the_environment(gateway, tmp_path, shared_data, monkeypatch):
    fake, address = gateway
    monkeypatch.setenv("DATABENTO_API_KEY", KEY)
    ticks = await play(feed(address, tmp_path, api_key=None))
    assert len(ticks) == len(expected(shared_data)) and fake.count("get_range") == 1
    monkeypatch.delenv("DATABENTO_API_KEY")
    cached = await play(feed(address, tmp_path, api_key=None))  # the cache needs no key
    assert len(cached) == len(ticks)
    with pytest.raises(DatabentoError, match="no Databento API key: set DATABENTO_API_KEY"):
        await play(feed(address, tmp_path, api_key=None, start=NEXT))


async def test_the_cost_is_logged_before_anything_is_downloaded(gateway, tmp_path, caplog):
    fake, address = gateway
    fake.cost = 1.5
    with caplog.at_level(logging.INFO, logger="tradebot_plugins.feeds.databento_feed"):
        await play(feed(address, tmp_path, end=NEXT, budget_usd="10"))
    messages = [r.getMessage() for r in caplog.records]
    priced = next(i for i, m in enumerate(messages) if "cost $3.00 (budget $10)" in m)
    cached = next(i for i, m in enumerate(messages) if "cached" in m)
    assert priced < cached


async def test_a_429_with_retry_after_is_retried_and_said(gateway, tmp_path, caplog):
    fake, address = gateway
    fake.script, fake.retry_after = [429, 429], "0"
    with caplog.at_level(logging.WARNING):
        await play(feed(address, tmp_path, backoff_s=5))  # Retry-After: 0 wins over 5 s
    assert fake.count("get_cost") == 3
    assert caplog.text.count("HTTP 429: Too many requests.; retrying in 0.0 s") == 2
    assert KEY not in caplog.text


def test_a_parent_symbol_is_refused_with_what_to_use():
    with pytest.raises(ValueError, match=r"ES\.FUT is a parent symbol.*ES\.c\.0"):
        DatabentoSettings(api_key=KEY, start=DAY, symbol="ES.FUT")
