"""The console and log notifiers: what a person and a log collector see."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from notifiers.notifier_samples import OPEN_TS_NS, PAYLOADS, sample, trade
from pydantic import ValidationError
from tradebot_plugins.notifiers.console import ConsoleNotifier, ConsoleSettings
from tradebot_plugins.notifiers.log import LogNotifier, LogSettings

from tradebot_core.types import Event, EventKind, FeedStatus, FeedStatusKind


def closed(net: str) -> Event:
    return Event(
        kind=EventKind.TRADE_CLOSED,
        ts_ns=OPEN_TS_NS,
        payload=trade(net),
        message=f"long 1 MES: net ${net}",
    )


def kind_style(console: ConsoleNotifier, event: Event) -> str:
    text = console.render(event)
    (span,) = [s for s in text.spans if text.plain[s.start : s.end].strip() == event.kind.value]
    return str(span.style)


# -- console -------------------------------------------------------------------------------------


def test_console_lines_carry_exchange_time_kind_and_message(capsys):
    console = ConsoleNotifier(ConsoleSettings(stream="stdout"), None)
    console.notify(closed("13.76"))
    out, err = capsys.readouterr()
    when = datetime.fromtimestamp(OPEN_TS_NS / 1e9, ZoneInfo("America/New_York"))
    assert out.startswith(when.strftime("%Y-%m-%d %H:%M:%S") + " trade_closed")
    assert out.rstrip().endswith("net $13.76") and out.count("\n") == 1 and err == ""


def test_console_writes_to_stderr_by_default_and_can_drop_timestamps(capsys):
    console = ConsoleNotifier(ConsoleSettings(timestamps="none", timezone="America/Chicago"), None)
    console.notify(sample(EventKind.ERROR))
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error ")


def test_console_colours_say_good_or_bad():
    console = ConsoleNotifier(ConsoleSettings(), None)
    assert kind_style(console, closed("13.76")) == "bold green"
    assert kind_style(console, closed("-4.50")) == "bold red"
    assert kind_style(console, closed("0")) == "bold"

    def feed(kind: FeedStatusKind) -> Event:
        status = FeedStatus(kind=kind, ts_ns=OPEN_TS_NS)
        return Event(kind=EventKind.FEED_STATUS, ts_ns=OPEN_TS_NS, payload=status)

    lost, back = feed(FeedStatusKind.DISCONNECTED), feed(FeedStatusKind.RECONNECTED)
    assert "red" in kind_style(console, lost) and "green" in kind_style(console, back)

    def state(name: str) -> Event:
        payload = {"state": name, "reason": "x"}
        return Event(kind=EventKind.SESSION_STATE, ts_ns=1, payload=payload)

    assert "red" in kind_style(console, state("halted"))
    assert "green" in kind_style(console, state("resumed"))


def test_console_markup_in_a_message_is_printed_as_is(capsys):
    console = ConsoleNotifier(ConsoleSettings(stream="stdout", timestamps="none"), None)
    console.notify(Event(kind=EventKind.ERROR, ts_ns=1, payload={}, message="[bold]x[/bold]"))
    assert "[bold]x[/bold]" in capsys.readouterr().out


def test_console_describes_a_trade_opened_without_a_message(capsys):
    console = ConsoleNotifier(ConsoleSettings(stream="stdout", timestamps="none"), None)
    console.notify(sample(EventKind.TRADE_OPENED))
    p = PAYLOADS[EventKind.TRADE_OPENED]
    expected = (
        f"{p['direction']} {p['quantity']} {p['symbol']} @ {p['entry_price']}, "
        f"stop {p['stop_price']}, target {p['target_price']}"
    )
    assert capsys.readouterr().out.rstrip().endswith(expected)


def test_console_settings():
    kinds = ConsoleSettings().kinds
    assert EventKind.BAR_CLOSED not in kinds and EventKind.ROUTE_DECISION not in kinds
    assert EventKind.TRADE_CLOSED in kinds
    with pytest.raises(ValidationError, match="unknown time zone"):
        ConsoleSettings(timezone="Mars/Olympus")


# -- log -----------------------------------------------------------------------------------------


async def test_log_notifier_writes_json_lines_to_logging_and_a_file(tmp_path, caplog):
    path = tmp_path / "logs" / "events.jsonl"
    notifier = LogNotifier(LogSettings(path=path), None)
    await notifier.start()
    with caplog.at_level(logging.INFO, logger="tradebot.events"):
        notifier.notify(closed("13.76"))
        notifier.notify(closed("-4.50"))
        # flushed per line: readable before stop
        lines = [json.loads(line) for line in path.read_text().splitlines()]
    await notifier.stop()
    assert [Decimal(line["payload"]["net_pnl"]) for line in lines] == [
        Decimal("13.76"),
        Decimal("-4.50"),
    ]
    assert lines[0]["kind"] == "trade_closed" and lines[0]["ts_ns"] == OPEN_TS_NS
    assert lines[0]["payload"] == closed("13.76").payload.model_dump(mode="json")
    records = [r for r in caplog.records if r.name == "tradebot.events"]
    assert [json.loads(r.getMessage()) for r in records] == lines


async def test_log_notifier_appends_and_opens_on_first_event(tmp_path, caplog):
    path = tmp_path / "events.jsonl"
    path.write_text('{"kind": "earlier"}\n')
    notifier = LogNotifier(LogSettings(path=path, to_logging=False), None)
    notifier.notify(sample(EventKind.DAILY_DIGEST))  # before start(): still written
    await notifier.stop()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"kind": "earlier"}
    assert lines[1]["payload"] == PAYLOADS[EventKind.DAILY_DIGEST]
    assert not [r for r in caplog.records if r.name == "tradebot.events"]


def test_log_notifier_level_and_settings(caplog):
    notifier = LogNotifier(LogSettings(level="WARNING"), None)
    with caplog.at_level(logging.DEBUG, logger="tradebot.events"):
        notifier.notify(sample(EventKind.WATCHDOG))
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    with pytest.raises(ValidationError, match="writes nowhere"):
        LogSettings(to_logging=False)
    assert EventKind.BAR_CLOSED not in LogSettings().kinds
