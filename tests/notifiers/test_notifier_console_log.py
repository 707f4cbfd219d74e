"""The console and log notifiers: what a person and a log collector see."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

from plugins.notifiers.console import ConsoleNotifier, ConsoleSettings
from plugins.notifiers.log import LogNotifier, LogSettings
from tradebot_core.types import Event, EventKind


def closed(net: str) -> Event:
    return Event(
        kind=EventKind.TRADE_CLOSED,
        ts_ns=1_731_508_200_000_000_000,
        payload={"net_pnl": net},
        message=f"long 1 MES: net ${net}",
    )


def test_console_lines_carry_exchange_time_kind_message_and_colour(capsys):
    console = ConsoleNotifier(ConsoleSettings(stream="stdout"), None)
    console.notify(closed("13.76"))
    out = capsys.readouterr().out
    assert "2024-11-13 09:30:00 trade_closed" in out and "net $13.76" in out  # ET
    assert console.render(closed("13.76")).spans[-1].style == "bold green"
    assert console.render(closed("-4.50")).spans[-1].style == "bold red"


def test_console_default_kinds_leave_out_bars_and_routing_noise():
    kinds = ConsoleSettings().kinds
    assert EventKind.BAR_CLOSED not in kinds and EventKind.ROUTE_DECISION not in kinds
    assert EventKind.TRADE_CLOSED in kinds


async def test_log_notifier_writes_json_lines_to_logging_and_a_file(tmp_path, caplog):
    path = tmp_path / "events.jsonl"
    notifier = LogNotifier(LogSettings(path=path), None)
    await notifier.start()
    with caplog.at_level(logging.INFO, logger="tradebot.events"):
        notifier.notify(closed("13.76"))
        notifier.notify(closed("-4.50"))
    await notifier.stop()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [Decimal(line["payload"]["net_pnl"]) for line in lines] == [
        Decimal("13.76"),
        Decimal("-4.50"),
    ]
    assert lines[0]["kind"] == "trade_closed" and lines[0]["ts_ns"] == 1_731_508_200_000_000_000
    assert caplog.records[0].name == "tradebot.events"
    assert json.loads(caplog.records[1].getMessage())["message"] == "long 1 MES: net $-4.50"
