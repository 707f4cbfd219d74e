"""The ``console`` notifier: one coloured line per event, for a person watching the terminal.

A line is ``2024-11-13 09:30:00 trade_closed    long 1 MES 5000.25 -> 5003.25 (target): net
$13.76``: the event's time in exchange time (the replayed time, not the wall clock), its kind,
and its message. Winning trades are green and losing ones red; a lost feed, a halt or a watchdog
alarm is red, their recoveries green.

Quiet (``quiet: true``, or ``TRADEBOT_QUIET=1``, which ``tradebot run -q`` sets), it prints only
the warnings and errors: an error, a lost feed or a gap, a halt, a watchdog alarm, a broker that
disagrees with the journal, a restart, a day not traded for its margin.

Printing is synchronous (a terminal line takes microseconds), so there is no ``start``/``stop``.
"""

from __future__ import annotations

import os
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

from tradebot_core import Event, EventKind, PluginContext, PluginSettings, hookimpl

if TYPE_CHECKING:  # rich loads when a notifier is built
    from rich.text import Text

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
    EventKind.HIGH_MARGIN_DAY: "bold yellow",
    EventKind.TIER_CHANGE: "bold magenta",
    EventKind.DAILY_DIGEST: "bold cyan",
    EventKind.ERROR: "bold red",
    EventKind.WATCHDOG: "bold red",
    EventKind.REBOOT_DETECTED: "bold magenta",
}
WIN, LOSS, FLAT = "bold green", "bold red", "bold"
FEED_STYLES = {
    "disconnected": "bold red",
    "gap": "bold yellow",
    "connected": "green",
    "reconnected": "bold green",
}
SESSION_STYLES = {
    "halted": "bold red",
    "loss_limit": "bold red",
    "resumed": "bold green",
    "profit_target": "bold green",
}
ALARMS = {
    EventKind.ERROR,
    EventKind.RECONCILIATION,
    EventKind.REBOOT_DETECTED,
    EventKind.HIGH_MARGIN_DAY,
}
"""Kinds that are always warnings or errors; a feed status, a session state and a watchdog event
are by their payload (:func:`is_alarm`)."""


def _quiet_from_env() -> bool:
    return os.environ.get("TRADEBOT_QUIET", "").lower() in ("1", "true", "t", "yes", "y", "on")


class ConsoleSettings(PluginSettings):
    """The ``notifiers.console`` section."""

    kinds: list[EventKind] = Field(default_factory=lambda: list(DEFAULT_KINDS))
    stream: Literal["stdout", "stderr"] = "stderr"
    timestamps: Literal["exchange", "none"] = "exchange"
    """Prefix each line with the event's time in exchange time (``timezone``), as replayed."""
    timezone: str = "America/New_York"
    colour: bool = True
    """False: plain text even on a terminal (rich already drops colour when piped)."""
    quiet: bool = Field(default_factory=_quiet_from_env)
    """Warnings and errors only (default: whether ``TRADEBOT_QUIET`` is set, as by ``run -q``)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r} (an IANA name such as America/Chicago)"
            ) from None
        return name


class ConsoleNotifier:
    """Prints one line per event."""

    name = "console"
    Settings = ConsoleSettings

    def __init__(self, settings: ConsoleSettings, context: PluginContext | None = None) -> None:
        self.settings = settings
        self.kinds = settings.kinds
        self.tz = ZoneInfo(settings.timezone)
        from rich.console import Console
        from rich.text import Text

        self._text = Text
        # no file given: rich looks up sys.stdout / sys.stderr at each print
        self.console = Console(
            stderr=settings.stream == "stderr",
            no_color=not settings.colour,
            highlight=False,
            soft_wrap=True,
        )

    def notify(self, event: Event) -> None:
        """Print the event's line (quiet: only a warning's or an error's)."""
        if self.settings.quiet and not is_alarm(event):
            return
        self.console.print(self.render(event))

    def render(self, event: Event) -> Text:
        """The event's line, styled (no markup is parsed in messages)."""
        line = self._text()
        if self.settings.timestamps == "exchange" and event.ts_ns > 0:
            when = datetime.fromtimestamp(event.ts_ns / 1e9, self.tz)
            line.append(when.strftime("%Y-%m-%d %H:%M:%S "), style="dim")
        line.append(f"{event.kind.value:<15} ", style=style_for(event))
        line.append(event.message or fallback(event))
        return line


def style_for(event: Event) -> str:
    """The rich style of an event's kind column: by outcome where there is one."""
    payload = _payload(event)
    if event.kind is EventKind.TRADE_CLOSED:
        return _by_sign(payload.get("net_pnl"))
    if event.kind is EventKind.DAILY_DIGEST:
        return _by_sign(payload.get("realized_pnl"))
    if event.kind is EventKind.FEED_STATUS:
        return FEED_STYLES.get(str(payload.get("kind")), "")
    if event.kind is EventKind.SESSION_STATE:
        return SESSION_STYLES.get(str(payload.get("state")), STYLES[EventKind.SESSION_STATE])
    if event.kind is EventKind.WATCHDOG and payload.get("stalled") is False:
        return "bold green"
    return STYLES.get(event.kind, "")


def is_alarm(event: Event) -> bool:
    """Whether the event is a warning or an error: what a quiet console still prints."""
    if event.kind in ALARMS:
        return True
    payload = _payload(event)
    if event.kind is EventKind.FEED_STATUS:
        return payload.get("kind") in ("disconnected", "gap")
    if event.kind is EventKind.SESSION_STATE:
        return payload.get("state") == "halted"
    return event.kind is EventKind.WATCHDOG and payload.get("stalled") is True


def fallback(event: Event) -> str:
    """A line for an event published without a message."""
    data = _payload(event)
    if event.kind is EventKind.TRADE_OPENED and "entry_price" in data:
        line = f"{data.get('direction', '')} {data.get('quantity', '')} {data.get('symbol', '')}"
        line += f" @ {data['entry_price']}"
        line += "".join(
            f", {key} {data[f'{key}_price']}"
            for key in ("stop", "target")
            if data.get(f"{key}_price") is not None
        )
        return line.strip()
    shown = [(k, v) for k, v in data.items() if not isinstance(v, dict | list)]
    return ", ".join(f"{k}={v}" for k, v in shown[:6]) or event.kind.value


def _payload(event: Event) -> dict[str, Any]:
    if isinstance(event.payload, BaseModel):
        return event.payload.model_dump(mode="json")
    return dict(event.payload) if isinstance(event.payload, dict) else {}


def _by_sign(value: Any) -> str:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return FLAT
    return WIN if amount > 0 else LOSS if amount < 0 else FLAT


@hookimpl
def register_notifiers(register: Any) -> None:
    register(ConsoleNotifier)
