"""The Discord notifier against a loopback server that behaves like Discord's webhook."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal

import pytest
from notifiers.discord_server import FakeDiscord, limit_errors

from plugins.notifiers.discord import DiscordNotifier, DiscordSettings, messages_for
from tradebot_core.types import Direction, Event, EventKind, Trade


def trade(net: str) -> Trade:
    return Trade(
        bracket_id="R1-1",
        symbol="MES",
        direction=Direction.LONG,
        quantity=1,
        entry_price=Decimal("5000.25"),
        exit_price=Decimal("5003.25"),
        entry_ts_ns=1,
        exit_ts_ns=2,
        ticks=12,
        tick_size=Decimal("0.25"),
        tick_value=Decimal("1.25"),
        gross_pnl=Decimal("15.00"),
        commissions=Decimal("1.24"),
        net_pnl=Decimal(net),
        exit_reason="target",
        pattern="buy_imbalance",
    )


def every_kind() -> list[Event]:
    """One event of each kind the notifier takes by default, as the pipeline publishes them."""
    payloads = {
        EventKind.TRADE_CLOSED: trade("13.76"),
        EventKind.TRADE_OPENED: {
            "symbol": "MES",
            "direction": "long",
            "quantity": 1,
            "entry_price": "5000.25",
            "stop_price": "4998.25",
            "target_price": "5003.25",
            "pattern": "buy_imbalance",
        },
        EventKind.DAILY_DIGEST: {
            "day": "2024-11-13",
            "trades": 4,
            "realized_pnl": "41.50",
            "balance": "2541.50",
            "patterns": {"buy_imbalance": 3},
        },
    }
    return [
        Event(
            kind=kind,
            ts_ns=i,
            payload=payloads.get(kind, {"detail": kind.value}),
            message=f"{kind.value} number {i}",
        )
        for i, kind in enumerate(DiscordSettings.model_fields["kinds"].default_factory())
    ]


async def started(url: str, **settings) -> tuple[DiscordNotifier, list]:
    notifier = DiscordNotifier(DiscordSettings(webhook_url=url, backoff_s=0.01, **settings), None)
    undeliverable: list = []
    notifier.on_undeliverable = lambda event, reason: undeliverable.append((event, reason))
    await notifier.start()
    return notifier, undeliverable


async def test_every_event_kind_delivered_once_in_order_across_a_429_and_a_500(aiohttp_server):
    discord = FakeDiscord(script=[429, 500])
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server))
    events = every_kind()
    for event in events:
        notifier.notify(event)
    await notifier.stop(timeout_s=10)
    assert undeliverable == []
    assert discord.requests == len(events) + 2  # the 429 and the 500 were retried
    descriptions = [m["embeds"][0]["description"] for m in discord.received]
    assert descriptions == [e.message for e in events]
    closed = next(m for m in discord.received if m["embeds"][0]["title"] == "Trade closed")
    fields = {f["name"]: f["value"] for f in closed["embeds"][0]["fields"]}
    assert fields["net pnl"] == "13.76" and closed["embeds"][0]["color"] == 0x38A169


async def test_long_messages_are_split_within_discords_limits(aiohttp_server):
    discord = FakeDiscord()
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server))
    text = "".join(f"line {i}: " + "x" * 90 + "\n" for i in range(300))  # ~30,000 characters
    patterns = {f"pattern_{i}": i for i in range(60)}
    notifier.notify(
        Event(
            kind=EventKind.DAILY_DIGEST,
            ts_ns=1,
            message=text,
            payload={"day": "2024-11-13", "patterns": patterns},
        )
    )
    await notifier.stop(timeout_s=10)
    assert undeliverable == []
    assert len(discord.received) >= 5
    assert all(limit_errors(m) == [] for m in discord.received)
    sent = "".join(e.get("description", "") for m in discord.received for e in m["embeds"])
    assert sent == text  # split, not cut
    table = [
        f["value"]
        for m in discord.received
        for e in m["embeds"]
        for f in e.get("fields", [])
        if f["name"] == "signals per pattern"
    ]
    assert "\n".join(table).count("pattern_") == 60


def test_the_splitter_alone_respects_every_limit():
    huge = Event(kind=EventKind.ERROR, ts_ns=0, message="y" * 50_000, payload={})
    messages = messages_for(huge)
    assert all(limit_errors(m) == [] for m in messages)
    assert "".join(e["description"] for m in messages for e in m["embeds"]) == "y" * 50_000


async def test_a_slow_webhook_never_delays_notify(aiohttp_server):
    discord = FakeDiscord(delay_s=5)
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server), timeout_s=30)
    started_at = time.perf_counter()
    for event in every_kind() * 8:
        notifier.notify(event)
    assert time.perf_counter() - started_at < 0.5
    await notifier.stop(timeout_s=0.3)
    # nothing was lost silently: everything not delivered was reported
    assert len(undeliverable) == len(every_kind()) * 8 - notifier.delivered
    assert all("before the run stopped" in reason for _, reason in undeliverable)


async def test_a_deleted_webhook_is_reported_once_without_a_retry_storm(aiohttp_server):
    discord = FakeDiscord(deleted=True)
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server))
    notifier.notify(every_kind()[0])
    await notifier.stop(timeout_s=5)
    assert discord.requests == 1
    assert undeliverable[0][1] == "HTTP 404: Unknown Webhook"


async def test_server_errors_give_up_after_max_attempts(aiohttp_server):
    discord = FakeDiscord(script=[500, 502, 503])
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server), max_attempts=3)
    notifier.notify(every_kind()[0])
    await notifier.stop(timeout_s=5)
    assert discord.requests == 3
    assert undeliverable[0][1] == "HTTP 503 after 3 attempts"


async def test_the_webhook_token_never_reaches_the_logs(aiohttp_server, caplog):
    discord = FakeDiscord(script=[429, 500, 500], deleted=False)
    server = await aiohttp_server(discord.app())
    with caplog.at_level(logging.DEBUG):
        notifier, _ = await started(discord.url(server))
        notifier.notify(every_kind()[0])
        await notifier.stop(timeout_s=5)
        bad = DiscordNotifier(
            DiscordSettings(
                webhook_url="http://127.0.0.1:9/api/webhooks/1/" + discord.token,
                max_attempts=2,
                backoff_s=0.01,
            ),
            None,
        )
        await bad.start()
        bad.notify(every_kind()[0])
        await bad.stop(timeout_s=5)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert "HTTP Request: POST" in ours  # httpx did log the request...
    assert discord.token not in ours  # ...without the token
    assert discord.token not in repr(notifier) and discord.token not in repr(bad.settings)
    assert "network error" in caplog.text


async def test_the_journal_keeps_what_could_not_be_delivered(aiohttp_server, tmp_path):
    from tradebot_core.journal import Journal

    discord = FakeDiscord(deleted=True)
    server = await aiohttp_server(discord.app())
    journal = Journal(tmp_path / "j.db")
    notifier, _ = await started(discord.url(server))
    notifier.on_undeliverable = lambda e, r: journal.record_undeliverable("discord", e, r)
    notifier.notify(every_kind()[0])
    await notifier.stop(timeout_s=5)
    journal.commit()
    rows = journal.rows("SELECT notifier, kind, reason FROM undeliverable")
    assert rows == [
        {"notifier": "discord", "kind": "system_start", "reason": "HTTP 404: Unknown Webhook"}
    ]
    journal.close()


@pytest.fixture(autouse=True)
def _quick_loop():
    yield
    asyncio.set_event_loop_policy(None)
