"""The 13 Discord events users expect, each end to end: a real pipeline (``tradebot_core.Pipeline``)
with the ``discord`` notifier pointed at the loopback webhook (``discord_server.FakeDiscord``), and
the message the webhook received checked: title, figures, colour.

Each run's events are also captured off the pipeline's bus, so the figures in a message are
compared with what the kernel itself published (and with the few numbers worked out by hand)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import tradebot_plugins.notifiers.discord as discord_plugin
import tradebot_plugins.services.watchdog as watchdog_plugin
import yaml
from kernel.scripted import BASE_CONFIG, ES_TICK, ScriptedFeed, et, kernel_manager, make_ticks
from notifiers.discord_server import FakeDiscord
from tradebot_plugins.notifiers._discord_embeds import CYAN, GREEN, ORANGE, PURPLE, RED

import tradebot_core.run.runner as runner
from tradebot_core import (
    Detector,
    Direction,
    Event,
    EventKind,
    Feed,
    FeedStatus,
    FeedStatusKind,
    Pipeline,
    PluginSettings,
    Signal,
    TickBatch,
    hookimpl,
)
from tradebot_core.config import load_config
from tradebot_core.types import TICK_DTYPE

DAY = (2024, 11, 13)  # a Wednesday


def ns(when: datetime) -> int:
    return int(when.timestamp() * 1e9)


def walk(start: datetime, seconds: int, step: int, every_s: int = 5) -> np.ndarray:
    """One ES trade a second from ``start``, the price moving ``step`` ticks every ``every_s``
    seconds: a trend a long entry wins on (step > 0) or loses on (step < 0)."""
    ticks = np.zeros(seconds, dtype=TICK_DTYPE)
    ticks["ts_event"] = ns(start) + np.arange(seconds, dtype=np.int64) * 1_000_000_000
    ticks["price"] = (5000 * 4 + step * (np.arange(seconds) // every_s)) * ES_TICK
    ticks["size"] = 1
    ticks["side"] = 1 if step > 0 else -1
    return ticks


# -- test plugins ----------------------------------------------------------------------------------


class AlwaysLong(Detector):
    """A long signal on every bar: a rising walk wins every trade, a falling one loses it."""

    name = "always_long"

    def on_bar_closed(self, history: Any) -> list[Signal]:
        bar = history.bars[-1]
        return [
            Signal(
                pattern="always_long",
                direction=Direction.LONG,
                price=history.price(int(bar["close"])),
                bar_ts_ns=int(bar["ts_open"]),
                strength=1.0,
                reason="always long",
                detector=self.name,
            )
        ]


LOST_AT = et(*DAY, 10, 15)
BACK_AT = et(*DAY, 10, 15).replace(second=40)


class Flaky(Feed):
    """A feed that loses its connection at 10:15:00 ET and gets it back 40 s later."""

    name = "flaky"

    class Settings(PluginSettings):
        pass

    async def stream(self):
        ticks = walk(et(*DAY, 10, 0), 30 * 60, step=1)
        before = ticks[ticks["ts_event"] < ns(LOST_AT)]
        after = ticks[ticks["ts_event"] >= ns(BACK_AT)]
        yield FeedStatus(kind=FeedStatusKind.SESSION_START, ts_ns=int(ticks["ts_event"][0]))
        yield TickBatch("ES", before)
        yield FeedStatus(
            kind=FeedStatusKind.DISCONNECTED, ts_ns=ns(LOST_AT), detail="connection reset by peer"
        )
        yield FeedStatus(
            kind=FeedStatusKind.RECONNECTED, ts_ns=ns(BACK_AT), detail="reconnected after 40 s"
        )
        yield TickBatch("ES", after)
        yield FeedStatus(kind=FeedStatusKind.SESSION_END, ts_ns=int(ticks["ts_event"][-1]))


class GoesQuiet(Feed):
    """Some trades, then nothing at all (the run is stopped by the test)."""

    name = "goes_quiet"

    class Settings(PluginSettings):
        pass

    async def stream(self):
        yield TickBatch("ES", walk(et(*DAY, 10, 0), 120, step=1))
        await asyncio.Event().wait()
        yield  # pragma: no cover


class EventsTestPlugin:
    @hookimpl
    def register_detectors(self, register):
        register(AlwaysLong)

    @hookimpl
    def register_feeds(self, register):
        register(Flaky)
        register(GoesQuiet)


# -- running a pipeline against the loopback webhook -----------------------------------------------


def merged(base: dict, more: dict) -> dict:
    out = dict(base)
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Run:
    discord: FakeDiscord
    pipeline: Pipeline
    events: list[Event]

    def published(self, kind: EventKind) -> list[Event]:
        return [e for e in self.events if e.kind is kind]

    def embeds(self, kind: EventKind) -> list[dict[str, Any]]:
        """The first embed of every message the webhook received for ``kind`` (its footer)."""
        return [
            m["embeds"][0]
            for m in self.discord.received
            if m["embeds"][0]["footer"]["text"] == kind.value
        ]

    def embed(self, kind: EventKind) -> dict[str, Any]:
        (embed,) = self.embeds(kind)
        return embed


def signed(amount: Decimal) -> str:
    return f"{'+' if amount > 0 else '-' if amount < 0 else ''}${abs(amount)}"


def fields(embed: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed.get("fields", [])}


async def start_webhook(aiohttp_server) -> tuple[FakeDiscord, str]:
    discord = FakeDiscord()
    server = await aiohttp_server(discord.app())
    return discord, discord.url(server)


def build(tmp_path: Path, url: str, sections: dict, journal: str = "journal.db") -> Pipeline:
    raw = yaml.safe_load(BASE_CONFIG)
    raw["account"] = {"tiers": []}  # the scripted sessions trade `symbol` unless a test sets tiers
    raw["notifiers"] = {"discord": {"webhook_url": url, "backoff_s": 0.01}}
    raw = merged(raw, {k: v for k, v in sections.items() if k != "detectors"})
    raw["detectors"] = sections.get("detectors", raw["detectors"])  # replaced, not merged
    if raw["account"].get("tiers", []) is None:  # the default ladder
        del raw["account"]["tiers"]
    path = tmp_path / "tradebot.yaml"
    path.write_text(yaml.safe_dump(raw))
    manager = kernel_manager()
    manager.register(discord_plugin, "discord")
    manager.register(watchdog_plugin, "watchdog")
    manager.register(EventsTestPlugin(), "discord-events-test")
    return Pipeline(load_config(path), manager, journal_path=tmp_path / journal)


async def run(
    aiohttp_server,
    tmp_path: Path,
    sessions: list[np.ndarray] | None = None,
    journal: str = "journal.db",
    **sections: Any,
) -> Run:
    """One whole run; the notifier's stop at its end delivers everything before this returns."""
    discord, url = await start_webhook(aiohttp_server)
    ScriptedFeed.script = sessions or []
    try:
        pipeline = build(tmp_path, url, sections, journal)
        events: list[Event] = []
        pipeline.bus.subscribe(events.append, None)
        summary = await pipeline.run()
    finally:
        ScriptedFeed.script = []
    assert not summary.exit.startswith("failed"), summary.exit
    assert discord.statuses() and set(discord.statuses()) == {204}  # every message accepted
    return Run(discord, pipeline, events)


def rising(minutes: int = 20) -> np.ndarray:
    return walk(et(*DAY, 10, 0), minutes * 60, step=1)


def falling(minutes: int = 20) -> np.ndarray:
    return walk(et(*DAY, 10, 0), minutes * 60, step=-1)


LONG_WINS = {"detectors": {"always_long": {}}, "feed": {"speed": "max"}}


# -- 1. system reboot ------------------------------------------------------------------------------


async def test_1_a_reboot_between_two_runs_is_told(aiohttp_server, tmp_path, monkeypatch):
    boot_id = tmp_path / "boot_id"
    monkeypatch.setattr(runner, "BOOT_ID", boot_id)
    boot_id.write_text("11111111-aaaa\n")
    first = await run(aiohttp_server, tmp_path, [rising(3)])
    assert first.embeds(EventKind.SYSTEM_REBOOT) == []  # nothing to compare with yet
    boot_id.write_text("22222222-bbbb\n")
    second = await run(aiohttp_server, tmp_path, [rising(3)])  # the same journal
    embed = second.embed(EventKind.SYSTEM_REBOOT)
    assert embed["title"] == "The machine rebooted"
    assert embed["description"] == "the machine rebooted since the last run"
    assert fields(embed) == {"previous boot": "11111111-aaaa", "this boot": "22222222-bbbb"}
    assert embed["color"] == ORANGE
    third = await run(aiohttp_server, tmp_path, [rising(3)])  # same boot: nothing to say
    assert third.embeds(EventKind.SYSTEM_REBOOT) == []


# -- 2. system start -------------------------------------------------------------------------------


async def test_2_system_start_shows_the_session_config(aiohttp_server, tmp_path):
    done = await run(aiohttp_server, tmp_path, [rising(3)], risk={"daily_profit_target": 600})
    embed = done.embed(EventKind.SYSTEM_START)
    assert embed["title"] == "tradebot started" and embed["color"] == CYAN
    assert embed["description"].endswith("started: ES 60s bars, feed scripted")
    shown = fields(embed)
    assert shown["symbol"] == "ES" and shown["timeframe (s)"] == "60"
    assert shown["feed"] == "scripted" and shown["broker"] == "paper"
    assert shown["detectors"] == "bar_direction"
    assert (shown["regime"], shown["router"]) == ("fixed", "approve_all")
    assert Decimal(shown["daily profit target"]) == 600
    assert Decimal(shown["daily loss limit"]) == -100_000
    assert shown["max position"] == "1"
    assert done.discord.received[0]["embeds"][0]["footer"]["text"] == "system_start"  # first


# -- 3. high margin day ----------------------------------------------------------------------------


async def test_3_a_high_margin_day_shows_the_margin_and_the_limit(aiohttp_server, tmp_path):
    done = await run(
        aiohttp_server,
        tmp_path,
        [rising(10)],
        symbol="MES",
        broker={"paper": {"day_margins": {"MES": 45}}},
        risk={"margin_limits": {"MES": 40}},
        **LONG_WINS,
    )
    embed = done.embed(EventKind.HIGH_MARGIN_DAY)
    assert embed["title"] == "Not trading today: margin MES $45 per contract > limit $40"
    shown = fields(embed)
    assert (shown["day margin"], shown["margin limit"]) == ("$45", "$40")
    assert shown["symbol"] == "MES" and shown["day"] == "2024-11-13"
    assert embed["color"] == ORANGE
    assert done.embeds(EventKind.TRADE_OPENED) == []  # and the day was not traded


# -- 4. and 5. trade opened, trade closed ----------------------------------------------------------


async def test_4_trade_opened_shows_entry_stop_and_target(aiohttp_server, tmp_path):
    done = await run(aiohttp_server, tmp_path, [rising(5)], **LONG_WINS)
    first = done.published(EventKind.TRADE_OPENED)[0].payload
    embed = done.embeds(EventKind.TRADE_OPENED)[0]
    assert embed["title"] == "Trade opened: long 1 ES"
    shown = fields(embed)
    entry, stop, target = (Decimal(shown[k]) for k in ("entry", "stop", "target"))
    assert (entry, stop, target) == tuple(
        Decimal(first[k]) for k in ("entry_price", "stop_price", "target_price")
    )
    assert stop == entry - 2 and target == entry + 2  # 8 ES ticks each way (approve_all)
    assert embed["description"] == f"long 1 ES @ {entry}, stop {stop}, target {target}"
    assert shown["pattern"] == "always_long"
    assert embed["color"] == 0x3182CE  # blue: news, neither good nor bad


async def test_5_trade_closed_shows_the_pnl_and_the_exit_reason(aiohttp_server, tmp_path):
    won = await run(aiohttp_server, tmp_path, [rising(5)], **LONG_WINS)
    trade = won.published(EventKind.TRADE_CLOSED)[0].payload
    embed = won.embeds(EventKind.TRADE_CLOSED)[0]
    # 8 ticks of $12.50, less $2.25 a side
    assert trade.net_pnl == Decimal("95.50") and trade.exit_reason == "target"
    assert embed["title"] == "Trade closed: +$95.50" and embed["color"] == GREEN
    shown = fields(embed)
    assert shown["net P&L"] == "$95.50" and shown["exit reason"] == "target"
    assert shown["commissions"] == "$4.50" and shown["ticks"] == "8"
    assert (Decimal(shown["entry"]), Decimal(shown["exit"])) == (
        trade.entry_price,
        trade.exit_price,
    )

    lost = await run(aiohttp_server, tmp_path, [falling(5)], journal="lost.db", **LONG_WINS)
    trade = lost.published(EventKind.TRADE_CLOSED)[0].payload
    embed = lost.embeds(EventKind.TRADE_CLOSED)[0]
    assert trade.net_pnl < 0 and trade.exit_reason == "stop"
    assert embed["title"] == f"Trade closed: -${-trade.net_pnl}" and embed["color"] == RED
    assert fields(embed)["exit reason"] == "stop"


# -- 6. tier change --------------------------------------------------------------------------------


async def test_6_a_winning_trade_over_a_tier_threshold_changes_tier(aiohttp_server, tmp_path):
    """The default ladder: MES below $3,500, ES from it. $3,495 and one MES win of $5.50."""
    done = await run(
        aiohttp_server,
        tmp_path,
        [rising(5)],
        symbol="MES",
        account={"starting_balance": 3495, "tiers": None},
        **LONG_WINS,
    )
    first = done.published(EventKind.TRADE_CLOSED)[0].payload
    assert first.symbol == "MES" and first.net_pnl == Decimal("5.50")
    embed = done.embed(EventKind.TIER_CHANGE)
    assert embed["title"] == "Account tier up: ES entry ES"
    assert fields(embed) == {"from": "MES building MES", "to": "ES entry ES", "balance": "$3500.50"}
    assert embed["color"] == PURPLE
    assert done.embeds(EventKind.TRADE_OPENED)[-1]["title"] == "Trade opened: long 1 ES"


# -- 7. and 8. connection lost, connection restored ------------------------------------------------


async def test_7_and_8_connection_lost_then_restored_with_the_time(aiohttp_server, tmp_path):
    done = await run(aiohttp_server, tmp_path, feed={"plugin": "flaky"})
    connection = ("disconnected", "reconnected")  # (session start and end are feed news too)
    lost, back = [
        e for e in done.embeds(EventKind.FEED_STATUS) if fields(e)["status"] in connection
    ]
    assert lost["title"] == "Feed: disconnected" and lost["color"] == RED
    assert fields(lost) == {
        "status": "disconnected",
        "time": "2024-11-13 10:15:00 ET",
        "detail": "connection reset by peer",
    }
    assert lost["timestamp"].startswith("2024-11-13T15:15:00")  # UTC, shown in the reader's zone
    assert back["title"] == "Feed: reconnected" and back["color"] == GREEN
    assert fields(back)["time"] == "2024-11-13 10:15:40 ET"
    assert back["description"] == "feed reconnected: reconnected after 40 s"


# -- 9. and 10. loss limit, profit target ----------------------------------------------------------


async def test_9_the_loss_limit_is_a_red_alarm(aiohttp_server, tmp_path):
    done = await run(
        aiohttp_server,
        tmp_path,
        [falling(20)],
        risk={"daily_loss_limit": -150},
        **LONG_WINS,
    )
    states = [e.payload for e in done.published(EventKind.SESSION_STATE)]
    (state,) = [p for p in states if p["state"] == "loss_limit"]
    (embed,) = [e for e in done.embeds(EventKind.SESSION_STATE) if "loss limit" in e["title"]]
    assert embed["title"] == "Daily loss limit hit: trading stopped" and embed["color"] == RED
    realized = Decimal(state["realized_pnl"])
    assert realized <= -150 and len(done.published(EventKind.TRADE_CLOSED)) == 2
    assert fields(embed)["realized P&L"] == f"-${-realized}"
    assert embed["description"].startswith(
        f"The day's loss limit was hit: realized P&L -${-realized}"
    )


async def test_10_the_profit_target_is_green_good_news(aiohttp_server, tmp_path):
    done = await run(
        aiohttp_server,
        tmp_path,
        [rising(20)],
        risk={"daily_profit_target": 150},
        **LONG_WINS,
    )
    (embed,) = [e for e in done.embeds(EventKind.SESSION_STATE) if "profit" in e["title"]]
    assert embed["title"] == "Daily profit target reached"
    assert embed["color"] == GREEN
    assert "halt" not in embed["title"].lower() and "loss" not in embed["description"].lower()
    # two wins of $95.50
    assert fields(embed)["realized P&L"] == "$191.00"
    assert embed["description"].startswith(
        "The day's profit target was reached: realized P&L +$191.00"
    )
    assert "Done for the day" in embed["description"]
    assert len(done.published(EventKind.TRADE_CLOSED)) == 2  # no entry after it


# -- 11. auto-flatten at 15:55, positions or not ---------------------------------------------------


async def test_11_auto_flatten_says_what_it_closed(aiohttp_server, tmp_path):
    done = await run(
        aiohttp_server,
        tmp_path,
        [walk(et(*DAY, 15, 40), 20 * 60, step=1, every_s=60)],  # slow: the target is not reached
        router={"approve_all": {"stop_ticks": 200, "target_ticks": 200}},
        **LONG_WINS,
    )
    embed = done.embed(EventKind.AUTO_FLATTEN)
    assert embed["title"] == "Auto-flatten: closed 1 position"
    shown = fields(embed)
    assert shown["closed"] == "long 1 ES" and shown["positions closed"] == "1"
    assert embed["description"] == "auto-flatten at 15:55:00 America/New_York: closing long 1 ES"
    assert embed["timestamp"].startswith("2024-11-13T20:55")  # 15:55 ET
    closed = [e.payload for e in done.published(EventKind.TRADE_CLOSED)]
    (flatten,) = [t for t in closed if t.exit_reason == "flatten"]
    assert flatten.symbol == "ES"


async def test_11_auto_flatten_is_sent_when_already_flat_too(aiohttp_server, tmp_path):
    ticks = walk(et(*DAY, 15, 40), 20 * 60, step=1)
    done = await run(aiohttp_server, tmp_path, [ticks], detectors={})  # no signals: flat all day
    embed = done.embed(EventKind.AUTO_FLATTEN)
    assert embed["title"] == "Auto-flatten: flat"
    shown = fields(embed)
    assert shown["closed"] == "nothing: the account was already flat"
    assert shown["positions closed"] == "0"
    assert embed["description"].endswith("already flat")
    assert embed["color"] != RED


# -- 12. the 16:00 digest --------------------------------------------------------------------------


async def test_12_the_digest_shows_trades_win_rate_pnl_patterns_balance_and_tier(
    aiohttp_server, tmp_path
):
    ticks = make_ticks(et(*DAY, 15, 0), 22_000, seed=3)
    assert ticks["ts_event"][-1] > ns(et(*DAY, 16, 0))
    done = await run(
        aiohttp_server,
        tmp_path,
        [ticks],
        symbol="MES",
        account={"tiers": None},  # the default ladder: MES building at $2,500
        router={"approve_all": {"stop_ticks": 4, "target_ticks": 4}},
    )
    (event,) = done.published(EventKind.DAILY_DIGEST)
    digest = event.payload
    assert ns(et(*DAY, 16, 0)) <= event.ts_ns < ns(et(*DAY, 16, 0)) + 10**9  # 16:00's first tick
    assert digest["trades"] >= 4 and 0 < digest["wins"] < digest["trades"]
    assert len(digest["by_pattern"]) == 2  # bar_long and bar_short
    embed = done.embed(EventKind.DAILY_DIGEST)
    realized = Decimal(digest["realized_pnl"])
    assert embed["title"] == f"Daily digest 2024-11-13: {signed(realized)}"
    assert embed["color"] == (GREEN if realized > 0 else RED if realized < 0 else 0x718096)
    shown = fields(embed)
    assert shown["trades"] == str(digest["trades"]) and shown["wins"] == str(digest["wins"])
    assert shown["win rate"] == f"{100 * digest['wins'] / digest['trades']:.1f}%"
    assert shown["realized P&L"] == f"{'-' if realized < 0 else ''}${abs(realized)}"
    assert shown["balance"] == f"${Decimal(2500) + realized}"
    assert shown["tier"] == "MES building"
    rows = [line.split() for line in shown["by pattern"].strip("`\n").splitlines()]
    assert rows[0] == ["pattern", "trades", "net", "P&L"]
    table = {row[0]: (int(row[1]), row[2]) for row in rows[1:]}
    assert table == {
        pattern: (figures["trades"], signed(Decimal(figures["net_pnl"])))
        for pattern, figures in digest["by_pattern"].items()
    }
    assert sum(n for n, _ in table.values()) == digest["trades"]


# -- 13. watchdog ----------------------------------------------------------------------------------


async def test_13_the_watchdog_alerts_on_a_quiet_feed_and_on_its_recovery(aiohttp_server, tmp_path):
    discord, url = await start_webhook(aiohttp_server)
    pipeline = build(
        tmp_path,
        url,
        {
            "feed": {"plugin": "goes_quiet"},
            "services": {"watchdog": {"interval_s": 3600, "stall_after_s": 120}},
        },
    )
    task = asyncio.ensure_future(pipeline.run())
    for _ in range(500):
        if pipeline.last_batch_monotonic:
            break
        await asyncio.sleep(0.01)
    assert pipeline.last_batch_monotonic, "the feed's trades were never processed"
    (watchdog,) = [s for s in pipeline.services if s.name == "watchdog"]
    quiet_since = pipeline.last_batch_monotonic
    watchdog.check(now=quiet_since + 60)  # a minute: markets pause, no alert
    watchdog.check(now=quiet_since + 300)  # five minutes without a trade
    pipeline.last_batch_monotonic = quiet_since + 301  # a batch came in
    watchdog.check(now=quiet_since + 302)
    pipeline.request_stop()
    summary = await asyncio.wait_for(task, 15)
    assert summary.exit == "stopped"
    messages = [m["embeds"][0] for m in discord.received]
    stalled, recovered = [e for e in messages if e["footer"]["text"] == "watchdog"]
    assert stalled["title"] == "Watchdog: feed stalled" and stalled["color"] == RED
    assert fields(stalled) == {"stalled": "yes", "message": "no ticks for 300 s (feed goes_quiet)"}
    assert stalled["description"] == "watchdog: no ticks for 300 s (feed goes_quiet)"
    assert recovered["title"] == "Watchdog: ticks flowing again" and recovered["color"] == GREEN
    assert fields(recovered)["stalled"] == "no"
