"""Discord embeds for tradebot events, and the splitting that keeps every message within limits.

Discord's documented limits (Message resource, "Embed Limits"; Execute Webhook): title 256
characters, description 4,096, field name 256, field value 1,024, footer text 2,048, author name
256, 25 fields an embed, 10 embeds a message, 6,000 characters across the title, description,
field names and values, footer and author of all the embeds of one message; ``content`` 2,000.
A message over any of them is refused whole (HTTP 400 ``Invalid Form Body``), so nothing built
here ever goes over: long text is split (at line ends where it can) into continuation embeds and
messages, never cut.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from tradebot_core import Event, EventKind

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
FIELDS_MAX = 25
EMBEDS_MAX = 10
MESSAGE_CHARS_MAX = 6000
CONTENT_MAX = 2000

GREEN, RED, ORANGE, YELLOW, BLUE, TEAL, PURPLE, CYAN, GREY = (
    0x38A169,
    0xE53E3E,
    0xDD6B20,
    0xD69E2E,
    0x3182CE,
    0x319795,
    0x805AD5,
    0x00B5D8,
    0x718096,
)

COLOURS = {
    EventKind.SYSTEM_START: CYAN,
    EventKind.SYSTEM_STOP: CYAN,
    EventKind.SYSTEM_REBOOT: ORANGE,
    EventKind.REBOOT_DETECTED: PURPLE,
    EventKind.HIGH_MARGIN_DAY: ORANGE,
    EventKind.TRADE_OPENED: BLUE,
    EventKind.TIER_CHANGE: PURPLE,
    EventKind.SESSION_STATE: YELLOW,
    EventKind.AUTO_FLATTEN: YELLOW,
    EventKind.DAILY_DIGEST: TEAL,
    EventKind.WATCHDOG: RED,
    EventKind.ERROR: RED,
}

TITLES = {
    EventKind.SYSTEM_START: "tradebot started",
    EventKind.SYSTEM_STOP: "tradebot stopped",
    EventKind.SYSTEM_REBOOT: "The machine rebooted",
    EventKind.REBOOT_DETECTED: "Restarted: state restored",
    EventKind.HIGH_MARGIN_DAY: "Not trading today: margin",
    EventKind.TRADE_OPENED: "Trade opened",
    EventKind.TRADE_CLOSED: "Trade closed",
    EventKind.TIER_CHANGE: "Account tier changed",
    EventKind.FEED_STATUS: "Feed",
    EventKind.SESSION_STATE: "Session",
    EventKind.AUTO_FLATTEN: "Auto-flatten",
    EventKind.DAILY_DIGEST: "Daily digest",
    EventKind.WATCHDOG: "Watchdog",
    EventKind.ERROR: "Error",
}

# payload keys shown as fields, in this order; kinds not listed show every top-level key
FIELDS: dict[EventKind, tuple[str, ...]] = {
    EventKind.TRADE_OPENED: (
        "symbol",
        "direction",
        "quantity",
        "entry_price",
        "stop_price",
        "target_price",
        "pattern",
        "bracket_id",
    ),
    EventKind.TRADE_CLOSED: (
        "symbol",
        "direction",
        "quantity",
        "entry_price",
        "exit_price",
        "ticks",
        "net_pnl",
        "commissions",
        "exit_reason",
        "pattern",
        "bracket_id",
    ),
    EventKind.DAILY_DIGEST: (
        "day",
        "trades",
        "wins",
        "win_rate",
        "realized_pnl",
        "balance",
        "tier",
        "halted",
    ),
    EventKind.TIER_CHANGE: ("old", "new", "balance"),
    EventKind.FEED_STATUS: ("kind", "time", "detail"),
    EventKind.HIGH_MARGIN_DAY: ("symbol", "margin", "limit", "day", "balance", "reason"),
    EventKind.AUTO_FLATTEN: ("closed", "open_positions", "cancelled_entries", "flat"),
    EventKind.SYSTEM_REBOOT: ("previous_boot_id", "boot_id"),
    EventKind.SESSION_STATE: ("state", "reason", "realized_pnl"),
    EventKind.WATCHDOG: ("stalled", "message"),
}

LABELS = {
    "net_pnl": "net P&L",
    "gross_pnl": "gross P&L",
    "realized_pnl": "realized P&L",
    "entry_price": "entry",
    "exit_price": "exit",
    "stop_price": "stop",
    "target_price": "target",
    "exit_reason": "exit reason",
    "timeframe_s": "timeframe (s)",
    "kind": "status",
    "old": "from",
    "new": "to",
    "win_rate": "win rate",
    "margin": "day margin",
    "limit": "margin limit",
    "open_positions": "positions closed",
    "cancelled_entries": "entries cancelled",
    "previous_boot_id": "previous boot",
    "boot_id": "this boot",
}

MONEY = {"net_pnl", "gross_pnl", "realized_pnl", "balance", "commissions", "margin", "limit"}

EXCHANGE_TZ = ZoneInfo("America/New_York")  # CME's clock, for times written out in a message

SESSION_TITLES = {
    "profit_target": "Daily profit target reached",
    "loss_limit": "Daily loss limit hit: trading stopped",
    "halted": "Trading halted",
    "resumed": "Trading resumed",
}


# -- one embed per event ------------------------------------------------------------------------


def embed_for(event: Event) -> dict[str, Any]:
    """The embed for ``event`` (possibly over Discord's limits: :func:`messages_for` splits it)."""
    payload = _shown(event, payload_of(event))
    fields = [
        {"name": LABELS.get(key, key.replace("_", " ")), "value": _value(key, value)}
        for key, value in _field_items(event.kind, payload)
    ]
    for field in fields:
        field["inline"] = len(field["value"]) <= 40
    if event.kind is EventKind.DAILY_DIGEST and payload.get("by_pattern"):
        fields.append(
            {
                "name": "by pattern",
                "value": pattern_table(payload["by_pattern"]),
                "inline": False,
            }
        )
    if event.kind in (EventKind.DAILY_DIGEST, EventKind.SYSTEM_STOP) and payload.get("patterns"):
        fields.append(
            {
                "name": "signals per pattern",
                "value": table(payload["patterns"], ("pattern", "signals")),
                "inline": False,
            }
        )
    embed: dict[str, Any] = {
        "title": _title(event, payload),
        "description": _description(event, payload),
        "color": colour_for(event, payload),
        "fields": fields,
        "footer": {"text": event.kind.value},
    }
    if event.ts_ns > 0:
        embed["timestamp"] = datetime.fromtimestamp(event.ts_ns / 1e9, UTC).isoformat()
    return embed


def payload_of(event: Event) -> dict[str, Any]:
    """The payload as a dict, whatever it is (a model, a dict, or something else)."""
    if isinstance(event.payload, BaseModel):
        return event.payload.model_dump(mode="json")
    if isinstance(event.payload, dict):
        return dict(event.payload)
    return {} if event.payload is None else {"value": event.payload}


def _shown(event: Event, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with what a reader needs worked out: the exchange time a feed changed, the
    positions an auto-flatten closed, a digest's win rate as a percentage."""
    kind = event.kind
    if kind is EventKind.FEED_STATUS and event.ts_ns > 0:
        payload["time"] = exchange_time(event.ts_ns)
    elif kind is EventKind.AUTO_FLATTEN:
        positions = payload.get("positions") or []
        payload["closed"] = (
            ", ".join(
                f"{p.get('direction', '')} {abs(int(p.get('quantity', 0)))} {p.get('symbol', '')}"
                for p in positions
                if isinstance(p, dict)
            )
            or "nothing: the account was already flat"
        )
    elif kind is EventKind.DAILY_DIGEST and payload.get("win_rate") is not None:
        with contextlib.suppress(InvalidOperation):
            payload["win_rate"] = f"{Decimal(str(payload['win_rate'])) * 100:.1f}%"
    return payload


def exchange_time(ts_ns: int) -> str:
    """``2024-11-13 10:15:00 ET``: an event's time on CME's clock."""
    when = datetime.fromtimestamp(ts_ns / 1e9, UTC).astimezone(EXCHANGE_TZ)
    return when.strftime("%Y-%m-%d %H:%M:%S ET")


def _description(event: Event, payload: dict[str, Any]) -> str:
    """The event's message; a daily limit says in words whether it is good news or bad."""
    state = str(payload.get("state", "")) if event.kind is EventKind.SESSION_STATE else ""
    realized = _money(payload.get("realized_pnl"), signed=True)
    reason = str(payload.get("reason", ""))
    if state == "profit_target":
        return (
            f"The day's profit target was reached: realized P&L {realized}. Done for the day: "
            f"no new entries until the next trading day.\n{reason}"
        ).strip()
    if state == "loss_limit":
        return (
            f"The day's loss limit was hit: realized P&L {realized}. Open positions are closed "
            f"and no new entries are taken until the next trading day.\n{reason}"
        ).strip()
    return event.message or describe(event)


def colour_for(event: Event, payload: dict[str, Any]) -> int:
    """Green for good news, red for bad, by kind and by what the payload says."""
    kind = event.kind
    if kind is EventKind.TRADE_CLOSED:
        return _by_sign(payload.get("net_pnl"))
    if kind is EventKind.DAILY_DIGEST:
        return _by_sign(payload.get("realized_pnl"))
    if kind is EventKind.FEED_STATUS:
        status = str(payload.get("kind", ""))
        return {"disconnected": RED, "gap": ORANGE, "connected": GREEN, "reconnected": GREEN}.get(
            status, GREY
        )
    if kind is EventKind.SESSION_STATE:
        states = {"halted": RED, "loss_limit": RED, "resumed": GREEN, "profit_target": GREEN}
        return states.get(str(payload.get("state", "")), YELLOW)
    if kind is EventKind.WATCHDOG and payload.get("stalled") is False:
        return GREEN
    return COLOURS.get(kind, GREY)


def describe(event: Event) -> str:
    """A line for an event published without a message."""
    payload = payload_of(event)
    if event.kind is EventKind.TRADE_OPENED and "entry_price" in payload:
        line = (
            f"{payload.get('direction', '')} {payload.get('quantity', '')} "
            f"{payload.get('symbol', '')} @ {payload['entry_price']}"
        )
        if payload.get("stop_price") is not None:
            line += f", stop {payload['stop_price']}"
        if payload.get("target_price") is not None:
            line += f", target {payload['target_price']}"
        return line.strip()
    return event.kind.value.replace("_", " ")


def pattern_table(by_pattern: dict[str, Any]) -> str:
    """The digest's trades and net P&L per pattern, a monospace table."""
    rows = []
    for pattern, figures in by_pattern.items():
        figures = figures if isinstance(figures, dict) else {}
        net = _money(figures.get("net_pnl"), signed=True)
        rows.append((str(pattern), str(figures.get("trades", "")), net))
    header = ("pattern", "trades", "net P&L")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    return "\n".join(
        f"{name:<{widths[0]}}  {trades:>{widths[1]}}  {net:>{widths[2]}}"
        for name, trades, net in [header, *rows]
    )


def table(rows: dict[str, Any], header: tuple[str, str]) -> str:
    """A two-column monospace table (a code block), widest name first column."""
    width = max([len(header[0]), *(len(str(k)) for k in rows)])
    lines = [f"{header[0]:<{width}}  {header[1]}"]
    lines += [f"{name!s:<{width}}  {value}" for name, value in rows.items()]
    return "\n".join(lines)


def _title(event: Event, payload: dict[str, Any]) -> str:
    title = TITLES.get(event.kind, event.kind.value.replace("_", " ").capitalize())
    if event.kind is EventKind.TRADE_CLOSED and payload.get("net_pnl") is not None:
        title += f": {_money(payload['net_pnl'], signed=True)}"
    elif event.kind is EventKind.TRADE_OPENED and payload.get("direction"):
        title += (
            f": {payload['direction']} {payload.get('quantity', '')} {payload.get('symbol', '')}"
        )
    elif event.kind is EventKind.SESSION_STATE and payload.get("state"):
        state = str(payload["state"])
        title = SESSION_TITLES.get(state, f"{title}: {state}")
    elif event.kind is EventKind.FEED_STATUS and payload.get("kind"):
        title += f": {payload['kind']}"
    elif event.kind is EventKind.DAILY_DIGEST and payload.get("day"):
        title += f" {payload['day']}"
        if payload.get("realized_pnl") is not None:
            title += f": {_money(payload['realized_pnl'], signed=True)}"
    elif event.kind is EventKind.HIGH_MARGIN_DAY and payload.get("margin") is not None:
        title += (
            f" {payload.get('symbol', '')} {_money(payload['margin'])} per contract > "
            f"limit {_money(payload.get('limit'))}"
        )
    elif event.kind is EventKind.AUTO_FLATTEN:
        count = payload.get("open_positions") or 0
        title += f": closed {count} position{'s' if count != 1 else ''}" if count else ": flat"
    elif event.kind is EventKind.TIER_CHANGE and isinstance(payload.get("new"), dict):
        title = f"Account tier {_tier_direction(payload)}: {_value('new', payload['new'])}"
    elif event.kind is EventKind.WATCHDOG and "stalled" in payload:
        title += ": feed stalled" if payload["stalled"] else ": ticks flowing again"
    return title.strip()


def _tier_direction(payload: dict[str, Any]) -> str:
    """``up`` or ``down`` by the tiers' thresholds (``changed`` when they are not given)."""
    old, new = payload.get("old"), payload["new"]
    try:
        up = old is None or Decimal(str(new["min_balance"])) > Decimal(str(old["min_balance"]))
    except (KeyError, TypeError, InvalidOperation):
        return "changed"
    return "up" if up else "down"


def _field_items(kind: EventKind, payload: dict[str, Any]) -> list[tuple[str, Any]]:
    keys = FIELDS.get(kind)
    if keys is None:
        keys = tuple(k for k in payload if k not in ("patterns", "by_pattern"))
    return [(key, payload[key]) for key in keys if payload.get(key) not in (None, "")]


def _value(key: str, value: Any) -> str:
    if key in MONEY:
        return _money(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        if "name" in value:  # a tier
            return " ".join(str(value[k]) for k in ("name", "symbol") if value.get(k))
        return json.dumps(value, default=str, separators=(", ", ": "))
    return str(value) or "-"


def _money(value: Any, signed: bool = False) -> str:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    sign = "-" if amount < 0 else "+" if signed and amount > 0 else ""
    return f"{sign}${abs(amount)}"


def _by_sign(value: Any) -> int:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return GREY
    return GREEN if amount > 0 else RED if amount < 0 else GREY


# -- splitting within Discord's limits -------------------------------------------------------------


def messages_for(event: Event, username: str = "tradebot") -> list[dict[str, Any]]:
    """The webhook payloads for one event, in order, each within Discord's limits."""
    messages: list[dict[str, Any]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for embed in split_embed(embed_for(event)):
        chars = embed_chars(embed)
        if current and (len(current) == EMBEDS_MAX or size + chars > MESSAGE_CHARS_MAX):
            messages.append(_message(current, username))
            current, size = [], 0
        current.append(embed)
        size += chars
    if current:
        messages.append(_message(current, username))
    return messages


def _message(embeds: list[dict[str, Any]], username: str) -> dict[str, Any]:
    # no @everyone / role / user pings from text that happens to contain them
    return {"username": username, "embeds": embeds, "allowed_mentions": {"parse": []}}


def split_embed(embed: dict[str, Any]) -> list[dict[str, Any]]:
    """One embed cut into as many as its description and fields need, each under every limit
    (including the 6,000-character total on its own)."""
    title = embed["title"][:TITLE_MAX] or "-"
    more = f"{title[: TITLE_MAX - 8]} (cont.)"
    footer = {"text": embed["footer"]["text"][:FOOTER_MAX]} if embed.get("footer") else None
    base = {"color": embed["color"]}
    if footer:
        base["footer"] = footer
    if embed.get("timestamp"):
        base["timestamp"] = embed["timestamp"]
    overhead = max(len(title), len(more)) + (len(footer["text"]) if footer else 0)
    description_limit = min(DESCRIPTION_MAX, MESSAGE_CHARS_MAX - overhead)
    out = [
        {**base, "title": title if i == 0 else more, "description": part}
        for i, part in enumerate(split_text(embed.get("description", ""), description_limit))
    ]
    fields = [
        {"name": f["name"][:FIELD_NAME_MAX] or "-", "value": chunk, "inline": f["inline"]}
        for f in embed.get("fields", [])
        for chunk in _field_chunks(f["value"] or "-")
    ]
    target = out[-1]
    target["fields"] = []
    for field in fields:
        grown = embed_chars(target) + len(field["name"]) + len(field["value"])
        if len(target["fields"]) == FIELDS_MAX or grown > MESSAGE_CHARS_MAX:
            target = {**base, "title": more, "fields": []}
            out.append(target)
        target["fields"].append(field)
    for part in out:
        if not part.get("description"):
            part.pop("description", None)
        if not part.get("fields"):
            part.pop("fields", None)
    return out


def _field_chunks(value: str) -> list[str]:
    """A field value in pieces of at most 1,024 characters; a multi-line value is a code block
    in every piece (so a table stays aligned across continuation fields)."""
    if "\n" not in value:
        return split_text(value, FIELD_VALUE_MAX)
    fence = "```\n"
    pieces = split_text(value, FIELD_VALUE_MAX - 2 * len(fence))
    return [f"{fence}{piece.rstrip(chr(10))}\n```" for piece in pieces]


def split_text(text: str, size: int) -> list[str]:
    """``text`` in pieces of at most ``size`` characters that join back to it exactly; a piece
    ends at a line end when one falls in its second half."""
    pieces = []
    start = 0
    while len(text) - start > size:
        end = text.rfind("\n", start + size // 2, start + size)
        end = start + size if end < 0 else end + 1
        pieces.append(text[start:end])
        start = end
    pieces.append(text[start:])
    return pieces


def embed_chars(embed: dict[str, Any]) -> int:
    """The characters Discord counts toward the 6,000 a message may hold."""
    return (
        len(embed.get("title", ""))
        + len(embed.get("description", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
        + len((embed.get("footer") or {}).get("text", ""))
        + len((embed.get("author") or {}).get("name", ""))
    )
