"""A Discord webhook that takes 5 s to answer changes nothing in a trading session."""

from __future__ import annotations

import sqlite3

from notifiers.discord_server import FakeDiscord

from tradebot_core import Pipeline
from tradebot_core.config import load_config
from tradebot_core.plugins import PluginManager


def trades(path):
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT entry_ts_ns, exit_ts_ns, entry_price, exit_price, net_pnl FROM trades"
        ).fetchall()
    finally:
        db.close()


async def test_a_slow_webhook_leaves_trades_and_timing_unchanged(
    aiohttp_server, repo_root, tmp_path
):
    discord = FakeDiscord(delay_s=5)
    server = await aiohttp_server(discord.app())
    base = [
        "feed.speed=max",
        "feed.demo.trades_per_session=60000",
        "notifiers={}",
        "services.status_page.port=0",  # an OS-chosen port: tradebot.yaml's 8000 may be taken
    ]
    quiet = load_config(repo_root / "tradebot.yaml", base)
    slow = quiet.override(
        [f"notifiers={{discord: {{webhook_url: '{discord.url(server)}', drain_timeout_s: 0.2}}}}"]
    )
    summaries = {}
    for name, loaded in (("quiet", quiet), ("slow", slow)):
        pipeline = Pipeline(loaded, PluginManager(), journal_path=tmp_path / f"{name}.db")
        summaries[name] = await pipeline.run()
    assert trades(tmp_path / "quiet.db") == trades(tmp_path / "slow.db") != []
    assert summaries["slow"].wall_seconds < 5  # the session never waited for a 5 s answer
    db = sqlite3.connect(tmp_path / "slow.db")
    (reported,) = db.execute("SELECT count(*) FROM undeliverable").fetchone()
    assert reported > 0  # what the slow webhook never took is journaled, not lost
