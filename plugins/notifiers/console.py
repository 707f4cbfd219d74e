"""The ``console`` notifier: one coloured line per event, for a person watching the terminal."""

from __future__ import annotations

import sys
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field
from rich.console import Console
from rich.text import Text

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.types import Event, EventKind

DEFAULT_KINDS = [
    kind
    for kind in EventKind
    if kind not in (EventKind.BAR_CLOSED, EventKind.PNL, EventKind.ROUTE_DECISION)
]

STYLES = {
    EventKind.SYSTEM_START: "bold cyan",
    EventKind.SYSTEM_STOP: "bold cyan",
    EventKind.SIGNAL: "magenta",
    EventKind.ORDER: "blue",
    EventKind.FILL: "blue",
    EventKind.TRADE_OPENED: "bold blue",
    EventKind.REGIME_CHANGED: "yellow",
    EventKind.SESSION_STATE: "bold yellow",
    EventKind.AUTO_FLATTEN: "bold yellow",
    EventKind.DAILY_DIGEST: "bold cyan",
    EventKind.ERROR: "bold red",
    EventKind.WATCHDOG: "bold red",
    EventKind.REBOOT_DETECTED: "bold magenta",
}


class ConsoleSettings(PluginSettings):
    kinds: list[EventKind] = Field(default_factory=lambda: list(DEFAULT_KINDS))
    stream: Literal["stdout", "stderr"] = "stderr"
    timestamps: Literal["exchange", "none"] = "exchange"
    """Prefix each line with the event's time in exchange time (``timezone``), as replayed."""
    timezone: str = "America/New_York"


class ConsoleNotifier:
    name = "console"
    Settings = ConsoleSettings

    def __init__(self, settings: ConsoleSettings, context: PluginContext | None) -> None:
        self.settings = settings
        self.kinds = settings.kinds
        self.tz = ZoneInfo(settings.timezone)
        self.console = Console(file=sys.stdout if settings.stream == "stdout" else sys.stderr)

    def notify(self, event: Event) -> None:
        self.console.print(self.render(event))

    def render(self, event: Event) -> Text:
        line = Text()
        if self.settings.timestamps == "exchange" and event.ts_ns:
            when = datetime.fromtimestamp(event.ts_ns / 1e9, self.tz)
            line.append(when.strftime("%Y-%m-%d %H:%M:%S "), style="dim")
        line.append(f"{event.kind.value:<15} ", style=_style(event))
        line.append(event.message or _fallback(event))
        return line


def _style(event: Event) -> str:
    if event.kind is EventKind.TRADE_CLOSED:
        net = Decimal(str(event.payload_dict().get("net_pnl", "0")))
        return "bold green" if net > 0 else "bold red" if net < 0 else "bold"
    return STYLES.get(event.kind, "")


def _fallback(event: Event) -> str:
    data: Any = event.payload_dict()
    return ", ".join(f"{k}={v}" for k, v in list(data.items())[:6])


@hookimpl
def register_notifiers(register: Any) -> None:
    register(ConsoleNotifier)
