"""The Discord notifier against a loopback server that answers like Discord's webhook."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
from notifiers.discord_server import LIMITS, FakeDiscord, limit_errors
from notifiers.notifier_samples import OPEN_TS_NS, every_kind, sample, trade
from pydantic import ValidationError
from tradebot_plugins.notifiers._discord_embeds import messages_for, split_text
from tradebot_plugins.notifiers.discord import (
    DEFAULT_KINDS,
    DiscordNotifier,
    DiscordSettings,
    retry_after,
)

from tradebot_core.config import format_validation_error
from tradebot_core.types import Event, EventKind


def identity(message: dict) -> tuple[str, str]:
    """Which event a one-message delivery was: its kind (footer) and time."""
    embed = message["embeds"][0]
    return embed["footer"]["text"], embed["timestamp"]


def expected_identity(event: Event) -> tuple[str, str]:
    return event.kind.value, datetime.fromtimestamp(event.ts_ns / 1e9, UTC).isoformat()


async def started(url: str, **settings) -> tuple[DiscordNotifier, list]:
    undeliverable: list = []
    notifier = DiscordNotifier(
        DiscordSettings(webhook_url=url, backoff_s=0.01, **settings),
        None,
        on_undeliverable=lambda event, reason: undeliverable.append((event, reason)),
    )
    await notifier.start()
    return notifier, undeliverable


async def test_every_event_kind_delivered_once_in_order_across_a_429_and_a_500(aiohttp_server):
    discord = FakeDiscord(script=[429, 500], retry_after=0.2)
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server))
    events = every_kind(DEFAULT_KINDS)
    for event in events:
        notifier.notify(event)
    await notifier.stop(timeout_s=10)
    assert undeliverable == []
    assert discord.statuses() == [429, 500] + [204] * len(events)
    assert [identity(m) for m in discord.received] == [expected_identity(e) for e in events]
    # the 429 paused the queue for what Discord said (a lower bound only)
    assert discord.log[1][0] - discord.log[0][0] >= 0.2
    assert notifier.delivered == len(events)


async def test_the_webhook_bucket_is_respected_before_any_429(aiohttp_server):
    discord = FakeDiscord(bucket_size=3, bucket_window_s=0.2)
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server))
    events = [sample(EventKind.ERROR, i) for i in range(8)]
    for event in events:
        notifier.notify(event)
    await notifier.stop(timeout_s=10)
    assert undeliverable == []
    assert 429 not in discord.statuses()  # X-RateLimit-Remaining: 0 held the next request
    assert [identity(m) for m in discord.received] == [expected_identity(e) for e in events]


async def test_a_server_without_a_bucket_header_still_gets_its_429_honoured(aiohttp_server):
    discord = FakeDiscord(script=[429, 429, 429], retry_after=0.05)
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server), max_attempts=1)
    notifier.notify(sample(EventKind.ERROR))
    await notifier.stop(timeout_s=10)
    assert undeliverable == []  # 429s do not use up max_attempts
    assert discord.statuses() == [429, 429, 429, 204]


def test_retry_after_reads_the_body_then_the_headers():
    def response(status=429, json=None, headers=None):
        request = httpx.Request("POST", "http://127.0.0.1/api/webhooks/1/t")
        return httpx.Response(status, json=json, headers=headers, request=request)

    body = {"message": "You are being rate limited.", "retry_after": 0.2, "global": False}
    headers = {"Retry-After": "1", "X-RateLimit-Reset-After": "0.2"}
    assert retry_after(response(json=body, headers=headers)) == 0.2
    assert retry_after(response(headers=headers)) == 1.0  # the longer header, no body
    assert retry_after(response(headers={"X-RateLimit-Reset-After": "2.5"})) == 2.5
    assert retry_after(response(headers={"Retry-After": "3"})) == 3.0
    assert retry_after(response()) == 1.0


async def test_long_messages_are_split_within_discords_limits(aiohttp_server):
    discord = FakeDiscord()
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server))
    text = "".join(f"line {i}: " + "x" * 90 + "\n" for i in range(300))  # ~30,000 characters
    patterns = {f"pattern_{i}": i for i in range(60)}
    notifier.notify(
        Event(
            kind=EventKind.DAILY_DIGEST,
            ts_ns=OPEN_TS_NS,
            message=text,
            payload={"day": "2024-11-13", "trades": 60, "patterns": patterns},
        )
    )
    await notifier.stop(timeout_s=10)
    assert undeliverable == []
    assert discord.statuses() == [204] * len(discord.received)  # no 400: all within limits
    assert len(discord.received) >= len(text) // LIMITS["total"] + 1
    embeds = [e for m in discord.received for e in m["embeds"]]
    assert "".join(e.get("description", "") for e in embeds) == text  # split, not cut
    assert all(len(e["description"]) == 0 or e["description"].endswith("\n") for e in embeds[:-1])
    table = [
        line
        for e in embeds
        for f in e.get("fields", [])
        if f["name"] == "signals per pattern"
        for line in f["value"].splitlines()
    ]
    rows = {line.split()[0]: int(line.split()[1]) for line in table if "_" in line}
    assert rows == patterns  # every row of the digest table, as a code block
    assert all(e["title"].startswith("Daily digest") for e in embeds)


@pytest.mark.parametrize("seed", range(20))
def test_the_splitter_respects_every_limit_and_loses_nothing(seed):
    import random

    rng = random.Random(seed)
    message = "".join(rng.choice("ab \n") for _ in range(rng.randrange(0, 40_000)))
    payload = {f"key_{i}": "v" * rng.randrange(1, 3_000) for i in range(rng.randrange(0, 60))}
    event = Event(kind=EventKind.ERROR, ts_ns=1, message=message, payload=payload)
    messages = messages_for(event)
    assert all(limit_errors(m) == [] for m in messages)
    embeds = [e for m in messages for e in m["embeds"]]
    assert "".join(e.get("description", "") for e in embeds) == (message or "error")
    values = {}
    for e in embeds:
        for f in e.get("fields", []):
            values[f["name"]] = values.get(f["name"], "") + f["value"]
    assert values == {k.replace("_", " "): v for k, v in payload.items()}


def test_split_text_prefers_line_ends():
    text = "a" * 60 + "\n" + "b" * 60 + "\n"
    assert split_text(text, 100) == ["a" * 60 + "\n", "b" * 60 + "\n"]
    assert split_text("c" * 250, 100) == ["c" * 100, "c" * 100, "c" * 50]


def test_embeds_say_what_happened():
    (closed,) = messages_for(Event(kind=EventKind.TRADE_CLOSED, ts_ns=1, payload=trade("13.76")))
    embed = closed["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert embed["title"] == "Trade closed: +$13.76" and embed["color"] == 0x38A169
    assert fields["net P&L"] == "$13.76" and fields["exit reason"] == "target"
    lost = messages_for(Event(kind=EventKind.TRADE_CLOSED, ts_ns=1, payload=trade("-4.50", "stop")))
    assert lost[0]["embeds"][0]["title"] == "Trade closed: -$4.50"
    assert lost[0]["embeds"][0]["color"] == 0xE53E3E

    opened = messages_for(sample(EventKind.TRADE_OPENED))[0]["embeds"][0]
    fields = {f["name"]: f["value"] for f in opened["fields"]}
    assert (fields["entry"], fields["stop"], fields["target"]) == ("5000.25", "4998.25", "5003.25")
    assert opened["description"] == "long 1 MES @ 5000.25, stop 4998.25, target 5003.25"

    start = messages_for(sample(EventKind.SYSTEM_START))[0]["embeds"][0]
    fields = {f["name"]: f["value"] for f in start["fields"]}
    assert fields["detectors"] == "imbalance, stacked_imbalance" and fields["symbol"] == "MES"

    feed = messages_for(sample(EventKind.FEED_STATUS))[0]["embeds"][0]
    assert feed["title"] == "Feed: disconnected" and feed["color"] == 0xE53E3E
    assert messages_for(sample(EventKind.SYSTEM_START))[0]["allowed_mentions"] == {"parse": []}


async def test_a_slow_webhook_never_delays_notify(aiohttp_server):
    discord = FakeDiscord(delay_s=5)
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server), timeout_s=30)
    events = [sample(EventKind.ERROR, i) for i in range(100)]
    started_at = time.perf_counter()
    for event in events:
        notifier.notify(event)
    elapsed = time.perf_counter() - started_at
    await asyncio.sleep(0.05)  # the sender is now waiting on the first answer
    await notifier.stop(timeout_s=0.2)
    assert elapsed < 0.5  # generous: each notify only appends to a queue
    # nothing lost silently: every event not delivered was reported, once, in order
    assert notifier.delivered == 0
    assert [e for e, _ in undeliverable] == events
    assert all(reason == "not delivered before the run stopped" for _, reason in undeliverable)


async def test_a_deleted_webhook_is_reported_without_a_retry_storm(aiohttp_server, caplog):
    discord = FakeDiscord(deleted=True)
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server))
    events = [sample(EventKind.ERROR, i) for i in range(5)]
    for event in events:
        notifier.notify(event)
    await notifier.stop(timeout_s=5)
    assert discord.requests == 1  # one 404, and nothing more this run
    assert [e for e, _ in undeliverable] == events
    assert undeliverable[0][1] == "HTTP 404: Unknown Webhook"
    assert all("HTTP 404: Unknown Webhook" in reason for _, reason in undeliverable[1:])
    assert "DISCORD_WEBHOOK_URL" in caplog.text  # the log says what to do


async def test_a_wrong_token_is_not_retried(aiohttp_server):
    discord = FakeDiscord()
    server = await aiohttp_server(discord.app())
    url = discord.url(server).replace(discord.token, "not-the-token")
    notifier, undeliverable = await started(url)
    notifier.notify(sample(EventKind.ERROR))
    await notifier.stop(timeout_s=5)
    assert discord.statuses() == [401]
    assert undeliverable[0][1] == "HTTP 401: Invalid Webhook Token"


async def test_a_refused_message_does_not_stop_the_next(aiohttp_server):
    discord = FakeDiscord(script=[400])
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server))
    first, second = sample(EventKind.ERROR, 0), sample(EventKind.ERROR, 1)
    notifier.notify(first)
    notifier.notify(second)
    await notifier.stop(timeout_s=5)
    assert [(e, r.split(":")[0]) for e, r in undeliverable] == [(first, "HTTP 400")]
    assert [identity(m) for m in discord.received] == [expected_identity(second)]


async def test_server_errors_give_up_after_max_attempts(aiohttp_server):
    discord = FakeDiscord(script=[500, 502, 503])
    server = await aiohttp_server(discord.app())
    notifier, undeliverable = await started(discord.url(server), max_attempts=3)
    notifier.notify(sample(EventKind.ERROR))
    notifier.notify(sample(EventKind.ERROR, 1))
    await notifier.stop(timeout_s=5)
    assert discord.statuses() == [500, 502, 503, 204]
    assert undeliverable[0][1] == "HTTP 503 after 3 attempts"
    assert notifier.delivered == 1


async def test_events_notified_before_start_and_from_other_threads_are_sent(aiohttp_server):
    discord = FakeDiscord()
    server = await aiohttp_server(discord.app())
    undeliverable: list = []
    notifier = DiscordNotifier(
        DiscordSettings(webhook_url=discord.url(server)),
        None,
        on_undeliverable=lambda e, r: undeliverable.append(r),
    )
    early = sample(EventKind.SYSTEM_START, 0)
    notifier.notify(early)
    await notifier.start()
    late = sample(EventKind.WATCHDOG, 1)
    thread = threading.Thread(target=notifier.notify, args=(late,))
    thread.start()
    thread.join()
    await notifier.stop(timeout_s=5)
    assert undeliverable == []
    assert [identity(m) for m in discord.received] == [
        expected_identity(early),
        expected_identity(late),
    ]


async def test_a_full_queue_reports_at_once_and_a_failing_handler_is_contained(caplog):
    calls: list = []

    def handler(event: Event, reason: str) -> None:
        calls.append(reason)
        raise RuntimeError("journal closed")

    notifier = DiscordNotifier(
        DiscordSettings(webhook_url="http://127.0.0.1:9/api/webhooks/1/tok", max_queue=2),
        None,
        on_undeliverable=handler,
    )
    for i in range(3):
        notifier.notify(sample(EventKind.ERROR, i))  # never started: nothing is sent
    assert calls == ["queue full (2 events waiting)"]
    await notifier.stop(timeout_s=0)
    assert len(calls) == 3 and notifier.undelivered == 3
    assert "undeliverable handler failed" in caplog.text


async def test_the_webhook_token_never_reaches_logs_errors_or_reprs(aiohttp_server, caplog):
    discord = FakeDiscord(script=[429, 500, 500])
    server = await aiohttp_server(discord.app())
    reasons: list = []
    with caplog.at_level(logging.DEBUG):
        notifier, undeliverable = await started(discord.url(server))
        notifier.notify(sample(EventKind.ERROR))
        await notifier.stop(timeout_s=5)
        discord.deleted = True
        notifier, gone = await started(discord.url(server))
        notifier.notify(sample(EventKind.ERROR))
        await notifier.stop(timeout_s=5)
        unreachable = f"http://127.0.0.1:9/api/webhooks/1/{discord.token}"
        bad, refused = await started(unreachable, max_attempts=2)
        bad.notify(sample(EventKind.ERROR))
        await bad.stop(timeout_s=5)
        reasons = [r for _, r in undeliverable + gone + refused]
    with pytest.raises(ValidationError) as invalid:
        DiscordSettings(webhook_url=f"ftp://discord.com/api/webhooks/1/{discord.token}")
    # everything logged on our side (the loopback server's own access log is Discord's side)
    ours = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records if r.name != "aiohttp.access"
    )
    assert "HTTP Request: POST" in ours  # httpx did log the requests...
    assert "network error: ConnectError" in ours and len(reasons) == 2
    for text in (
        ours,
        repr(notifier),
        repr(bad.settings),
        str(invalid.value),
        "\n".join(format_validation_error(invalid.value, None, ("notifiers", "discord"))),
        *reasons,
    ):
        assert discord.token not in text  # ...without the token


def test_settings_refuse_what_discord_would():
    with pytest.raises(ValidationError, match="webhook URL like"):
        DiscordSettings(webhook_url="")
    with pytest.raises(ValidationError, match="discord"):
        DiscordSettings(webhook_url="https://discord.com/api/webhooks/1/t", username="Discord bot")
    settings = DiscordSettings(webhook_url=" https://discord.com/api/webhooks/1/t ")
    assert settings.webhook_url.get_secret_value() == "https://discord.com/api/webhooks/1/t"
    assert EventKind.BAR_CLOSED not in settings.kinds
    assert EventKind.ROUTE_DECISION not in settings.kinds


async def test_the_journal_keeps_what_could_not_be_delivered(aiohttp_server, tmp_path):
    from tradebot_core.journal import Journal

    discord = FakeDiscord(deleted=True)
    server = await aiohttp_server(discord.app())
    journal = Journal(tmp_path / "j.db")
    notifier, _ = await started(discord.url(server))
    notifier.on_undeliverable = lambda e, r: journal.record_undeliverable("discord", e, r)
    notifier.notify(sample(EventKind.SYSTEM_START))
    await notifier.stop(timeout_s=5)
    journal.commit()
    rows = journal.rows("SELECT notifier, kind, reason FROM undeliverable")
    assert rows == [
        {"notifier": "discord", "kind": "system_start", "reason": "HTTP 404: Unknown Webhook"}
    ]
    journal.close()
