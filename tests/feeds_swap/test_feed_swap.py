"""One config, every feed: switching is the `feed.plugin` line (plus the symbol for Polygon,
which serves equities, not futures)."""

from __future__ import annotations

import sqlite3

import pytest
from feeds_databento_hist.hist_gateway import KEY as DATABENTO_KEY
from feeds_databento_hist.hist_gateway import FakeDatabento, start, tls_contexts
from feeds_polygon.polygon_server import KEY as POLYGON_KEY
from feeds_polygon.polygon_server import FakePolygon

from tradebot_core import Pipeline
from tradebot_core.config import load_config
from tradebot_core.plugins import PluginManager

MBO = "esh4-glbx-mdp3-20231225.mbo.dbn.zst"

CONFIG = """
symbol: ES
timeframe_s: 60
feed:
  plugin: demo
  speed: max
  demo: {{trades_per_session: 20000}}
  file: {{path: {mbo}}}
  databento: {{api_key: {db_key}, schema: mbo, symbol: ESH4, start: 2023-12-26,
              gateway: "{gateway}", cache_dir: {cache}}}
  polygon: {{api_key: {pg_key}, ticker: SPY, start: 2024-11-13, base_url: "{polygon}"}}
detectors: {{imbalance: {{}}, stacked_imbalance: {{}}, unfinished_business: {{}}}}
notifiers: {{}}
"""


@pytest.fixture
async def servers(shared_data, tmp_path, monkeypatch, aiohttp_server):
    databento = FakeDatabento(files={"mbo": shared_data / "databento" / MBO})
    context, ca_file = tls_contexts(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    runner, port = await start(databento.app(), context)
    polygon = FakePolygon(page_size=500)
    open_ns = 1_731_508_200 * 10**9  # 2024-11-13 09:30 ET
    polygon.trades = [
        {
            "sip_timestamp": open_ns + i * 10**8,
            "price": 598.30 + (i % 7) * 0.01,
            "size": 100,
            "id": str(i),
            "exchange": 11,
            "conditions": [],
            "tape": 1,
            "participant_timestamp": open_ns + i * 10**8,
            "sequence_number": i,
        }
        for i in range(3000)
    ]
    server = await aiohttp_server(polygon.app())
    polygon.base = f"http://127.0.0.1:{server.port}"
    path = tmp_path / "tradebot.yaml"
    path.write_text(
        CONFIG.format(
            mbo=shared_data / "databento" / MBO,
            db_key=DATABENTO_KEY,
            gateway=f"127.0.0.1:{port}",
            cache=tmp_path / "cache",
            pg_key=POLYGON_KEY,
            polygon=polygon.base,
        )
    )
    yield path
    await runner.cleanup()


def trades(journal):
    db = sqlite3.connect(journal)
    try:
        return db.execute("SELECT entry_ts_ns, exit_ts_ns, net_pnl FROM trades").fetchall()
    finally:
        db.close()


async def test_the_same_pipeline_runs_on_every_feed(servers, tmp_path):
    results = {}
    for plugin, extra in (
        ("demo", []),
        ("file", []),
        ("databento", []),
        ("polygon", ["symbol=SPY"]),
    ):
        loaded = load_config(servers, [f"feed.plugin={plugin}", *extra])
        journal = tmp_path / f"{plugin}.db"
        pipeline = Pipeline(loaded, PluginManager(), journal_path=journal)
        summary = await pipeline.run()
        assert summary.exit == "completed", plugin
        assert summary.ticks > 0 and summary.bars > 0 and summary.dropped_ticks == 0, plugin
        results[plugin] = (pipeline.history.bars.copy(), trades(journal), summary)
    # the file and Databento's gateway served the same recorded session: the same run
    file_bars, file_trades, _ = results["file"]
    db_bars, db_trades, _ = results["databento"]
    assert (file_bars == db_bars).all() and file_trades == db_trades
    assert results["file"][2].ticks == 2_973
    assert results["polygon"][2].ticks == 3_000
