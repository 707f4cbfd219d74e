"""The ``discord`` notifier: one embed per event, posted to a webhook from a background queue.

``notify`` only enqueues: a slow or failing webhook never delays the pipeline. One sender task
delivers in order:

* **204/200**: delivered.
* **429**: waits what Discord says (``retry_after`` in the JSON body, else the ``Retry-After`` or
  ``X-RateLimit-Reset-After`` header) and sends the same message again; the queue pauses
  rather than reorders.
* **5xx or a network error**: retried with exponential backoff, ``max_attempts`` in all.
* **any other 4xx** (a deleted webhook answers 404): not retried.

Messages over Discord's limits are split (embed description 4,096 characters, title 256, field
value 1,024, 25 fields an embed, 10 embeds and 6,000 characters a message). Nothing is dropped
silently: what cannot be delivered, or is still queued when the run stops, goes to
``on_undeliverable(event, reason)``, which the pipeline points at the journal.

The webhook URL holds a secret token: it is a ``SecretStr``, and no log line, exception or repr
made here contains it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
from pydantic import Field, SecretStr

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.secrets import register_secret
from tradebot_core.types import Event, EventKind

log = logging.getLogger(__name__)

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FIELDS_MAX = 25
EMBEDS_MAX = 10
MESSAGE_CHARS_MAX = 6000

DEFAULT_KINDS = [
    EventKind.SYSTEM_START,
    EventKind.SYSTEM_STOP,
    EventKind.REBOOT_DETECTED,
    EventKind.HIGH_MARGIN_DAY,
    EventKind.TRADE_OPENED,
    EventKind.TRADE_CLOSED,
    EventKind.TIER_CHANGE,
    EventKind.FEED_STATUS,
    EventKind.SESSION_STATE,
    EventKind.AUTO_FLATTEN,
    EventKind.DAILY_DIGEST,
    EventKind.WATCHDOG,
    EventKind.ERROR,
]

COLOURS = {
    EventKind.TRADE_OPENED: 0x3182CE,
    EventKind.SESSION_STATE: 0xD69E2E,
    EventKind.AUTO_FLATTEN: 0xD69E2E,
    EventKind.DAILY_DIGEST: 0x319795,
    EventKind.WATCHDOG: 0xE53E3E,
    EventKind.ERROR: 0xE53E3E,
    EventKind.HIGH_MARGIN_DAY: 0xDD6B20,
    EventKind.REBOOT_DETECTED: 0x805AD5,
    EventKind.TIER_CHANGE: 0x805AD5,
}

TITLES = {
    EventKind.SYSTEM_START: "tradebot started",
    EventKind.SYSTEM_STOP: "tradebot stopped",
    EventKind.REBOOT_DETECTED: "Restarted: positions restored",
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

# payload keys worth a field, per kind
FIELDS = {
    EventKind.TRADE_OPENED: (
        "symbol",
        "direction",
        "quantity",
        "entry_price",
        "stop_price",
        "target_price",
        "pattern",
    ),
    EventKind.TRADE_CLOSED: (
        "symbol",
        "direction",
        "quantity",
        "entry_price",
        "exit_price",
        "net_pnl",
        "exit_reason",
        "pattern",
    ),
    EventKind.DAILY_DIGEST: ("day", "trades", "realized_pnl", "balance", "halted"),
    EventKind.SYSTEM_START: (
        "symbol",
        "timeframe_s",
        "feed",
        "detectors",
        "regime",
        "router",
        "broker",
        "daily_profit_target",
        "daily_loss_limit",
        "max_position",
    ),
    EventKind.TIER_CHANGE: ("balance",),
}


class DiscordSettings(PluginSettings):
    webhook_url: SecretStr
    kinds: list[EventKind] = Field(default_factory=lambda: list(DEFAULT_KINDS))
    username: str = "tradebot"
    max_attempts: int = Field(default=5, ge=1)
    backoff_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    max_rate_limit_wait_s: float = Field(default=300.0, gt=0)
    drain_timeout_s: float = Field(default=10.0, ge=0)
    """At the end of a run, how long to keep delivering what is queued."""


Undeliverable = Callable[[Event, str], None]


class DiscordNotifier:
    name = "discord"
    Settings = DiscordSettings

    def __init__(self, settings: DiscordSettings, context: PluginContext | None) -> None:
        self.settings = settings
        self.kinds = settings.kinds
        self._url = settings.webhook_url.get_secret_value()
        register_secret(self._url)  # httpx logs request URLs
        self._pending: deque[Event] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.delivered = 0
        self.on_undeliverable: Undeliverable = self._log_undeliverable

    def __repr__(self) -> str:
        return f"DiscordNotifier(webhook={self._redacted()})"

    # -- the pipeline side: never blocks -----------------------------------------------------------

    def notify(self, event: Event) -> None:
        self._pending.append(event)
        if self._wakeup is not None:
            self._wakeup.set()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.settings.timeout_s)
        self._wakeup = asyncio.Event()
        if self._pending:
            self._wakeup.set()
        self._task = asyncio.create_task(self._send_all(), name="discord-notifier")

    async def stop(self, timeout_s: float | None = None) -> None:
        """Deliver what is queued for up to ``timeout_s`` (default ``drain_timeout_s``); report
        the rest as undeliverable."""
        timeout_s = self.settings.drain_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        while (self._pending or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for event in list(self._current + list(self._pending)):
            self.on_undeliverable(event, "not delivered before the run stopped")
        self._pending.clear()
        self._current = []
        if self._client is not None:
            await self._client.aclose()

    # -- the sender ------------------------------------------------------------------------------

    _current: list[Event] = []  # the event being sent: kept until it is resolved

    @property
    def _busy(self) -> bool:
        return bool(self._current)

    async def _send_all(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            event = self._pending.popleft()
            self._current = [event]
            reason = None
            for message in messages_for(event, self.settings.username):
                reason = await self._deliver(message)  # a stop may cancel us here
                if reason is not None:
                    break
            self._current = []
            if reason is None:
                self.delivered += 1
            else:
                self.on_undeliverable(event, reason)

    async def _deliver(self, message: dict[str, Any]) -> str | None:
        """Send one message; None when delivered, else why not."""
        assert self._client is not None
        attempts = 0
        waited = 0.0
        while True:
            attempts += 1
            try:
                response = await self._client.post(self._url, json=message)
            except httpx.HTTPError as exc:
                failure = f"network error: {type(exc).__name__}"
            else:
                if response.status_code in (200, 204):
                    return None
                if response.status_code == 429:
                    wait = retry_after(response)
                    waited += wait
                    if waited > self.settings.max_rate_limit_wait_s:
                        return f"rate limited for over {self.settings.max_rate_limit_wait_s:g} s"
                    log.info("discord: rate limited, waiting %.2f s", wait)
                    await asyncio.sleep(wait)
                    attempts -= 1  # a rate limit is not a failed attempt
                    continue
                if response.status_code < 500:
                    return f"HTTP {response.status_code}: {_discord_message(response)}"
                failure = f"HTTP {response.status_code}"
            if attempts >= self.settings.max_attempts:
                return f"{failure} after {attempts} attempts"
            delay = min(self.settings.backoff_max_s, self.settings.backoff_s * 2 ** (attempts - 1))
            log.warning("discord: %s, retrying in %.1f s", failure, delay)
            await asyncio.sleep(delay)

    def _log_undeliverable(self, event: Event, reason: str) -> None:
        log.error("discord: %s event not delivered: %s", event.kind.value, reason)

    def _redacted(self) -> str:
        head, _, _ = self._url.rpartition("/")
        return head + "/***"


def retry_after(response: httpx.Response) -> float:
    """Seconds to wait, as Discord says it: JSON ``retry_after``, or the headers."""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        return max(0.0, float(response.json()["retry_after"]))
    for header in ("Retry-After", "X-RateLimit-Reset-After"):
        with contextlib.suppress(TypeError, ValueError):
            return max(0.0, float(response.headers[header]))
    return 1.0


def _discord_message(response: httpx.Response) -> str:
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return str(response.json()["message"])[:200]
    return response.reason_phrase


# -- building messages within Discord's limits ---------------------------------------------------


def embed_for(event: Event) -> dict[str, Any]:
    payload = event.payload_dict()
    colour = COLOURS.get(event.kind, 0x718096)
    if event.kind is EventKind.TRADE_CLOSED:
        net = Decimal(str(payload.get("net_pnl", "0")))
        colour = 0x38A169 if net > 0 else 0xE53E3E if net < 0 else 0x718096
    fields = [
        {"name": key.replace("_", " "), "value": _value(payload[key]), "inline": True}
        for key in FIELDS.get(event.kind, ())
        if payload.get(key) is not None
    ]
    if event.kind is EventKind.DAILY_DIGEST and payload.get("patterns"):
        table = "\n".join(f"{name}: {count}" for name, count in payload["patterns"].items())
        fields.append({"name": "signals per pattern", "value": table, "inline": False})
    return {
        "title": TITLES.get(event.kind, event.kind.value),
        "description": event.message or event.kind.value,
        "color": colour,
        "fields": fields,
    }


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def messages_for(event: Event, username: str = "tradebot") -> list[dict[str, Any]]:
    """The webhook payloads for one event, each within Discord's limits."""
    embeds = split_embed(embed_for(event))
    messages, current, size = [], [], 0
    for embed in embeds:
        chars = embed_chars(embed)
        if current and (len(current) == EMBEDS_MAX or size + chars > MESSAGE_CHARS_MAX):
            messages.append({"username": username, "embeds": current})
            current, size = [], 0
        current.append(embed)
        size += chars
    if current:
        messages.append({"username": username, "embeds": current})
    return messages


def split_embed(embed: dict[str, Any]) -> list[dict[str, Any]]:
    """One embed, cut into as many as its description and fields need."""
    title = embed["title"][:TITLE_MAX]
    fields = [
        {
            "name": f["name"][:FIELD_NAME_MAX],
            "value": chunk,
            "inline": f.get("inline", False),
        }
        for f in embed.get("fields", [])
        for chunk in _chunks(f["value"] or "-", FIELD_VALUE_MAX)
    ]
    # keep each embed's characters under the per-message total too
    description_limit = min(DESCRIPTION_MAX, MESSAGE_CHARS_MAX - len(title) - 10)
    descriptions = _chunks(embed["description"], description_limit)
    out = []
    for index, description in enumerate(descriptions):
        part = {
            "title": title if index == 0 else f"{title} (cont.)"[:TITLE_MAX],
            "description": description,
            "color": embed["color"],
        }
        out.append(part)
    # fields go into the last embed, then into continuation embeds: never dropped
    target = out[-1]
    target["fields"] = []
    for field in fields:
        full = len(target["fields"]) == FIELDS_MAX
        if full or embed_chars({**target, "fields": [*target["fields"], field]}) > (
            MESSAGE_CHARS_MAX
        ):
            target = {
                "title": f"{title} (cont.)"[:TITLE_MAX],
                "color": embed["color"],
                "fields": [],
            }
            out.append(target)
        target["fields"].append(field)
    return out


def embed_chars(embed: dict[str, Any]) -> int:
    return (
        len(embed.get("title", ""))
        + len(embed.get("description", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    )


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@hookimpl
def register_notifiers(register: Any) -> None:
    register(DiscordNotifier)
