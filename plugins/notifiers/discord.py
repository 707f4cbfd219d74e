"""The ``discord`` notifier: one embed per event, posted to a webhook from a background queue.

Lifecycle (the pipeline calls these):

``notify(event)``
    Queues the event and returns at once, whatever the webhook is doing. More than
    ``max_queue`` events waiting: the new one goes straight to ``on_undeliverable``.
``async start()``
    Opens the HTTP client and starts the one sender task (before the feed starts). Events
    notified before it wait in the queue.
``async stop(timeout_s=None)``
    Keeps delivering for up to ``timeout_s`` (default ``drain_timeout_s``), then stops the sender
    and hands everything not delivered to ``on_undeliverable``.

One sender delivers in order; each answer is handled as Discord documents it:

* **2xx**: delivered. ``X-RateLimit-Remaining: 0`` makes the next request wait
  ``X-RateLimit-Reset-After`` seconds, so the webhook's bucket is respected before a 429.
* **429**: waits what Discord says (``retry_after`` in the JSON body, else the ``Retry-After`` /
  ``X-RateLimit-Reset-After`` headers) and sends the same message again: the queue pauses rather
  than reorders. Giving up only after ``max_rate_limit_wait_s`` of waiting on one message.
* **5xx or a network error**: retried with exponential backoff, ``max_attempts`` in all.
* **401, 403, 404** (a wrong token, or a deleted webhook): not retried, and nothing more is sent
  this run: every later event is reported undeliverable without a request.
* **any other 4xx**: that message is undeliverable; the next one is tried.

An event too big for one message is split across several (see
:mod:`tradebot_plugins.notifiers._discord_embeds`), never cut. Nothing is dropped silently:
what cannot be delivered goes to ``on_undeliverable(event, reason)`` (a constructor keyword or
an attribute; the pipeline points it at the journal; by default it logs an error).

The webhook URL holds a secret token: it is a ``SecretStr``, registered with
:mod:`tradebot_core.secrets` (httpx logs request URLs), and no log line, exception or repr made
here contains it; nor does a settings validation error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field, SecretStr, field_validator
from tradebot_plugins.notifiers._discord_embeds import messages_for

from tradebot_core import (
    Event,
    EventKind,
    PluginContext,
    PluginSettings,
    __version__,
    hookimpl,
    register_secret,
)

if TYPE_CHECKING:  # httpx itself loads when a notifier is set up (it is slow to import)
    import httpx

log = logging.getLogger(__name__)

DEFAULT_KINDS = [
    EventKind.SYSTEM_START,
    EventKind.SYSTEM_STOP,
    EventKind.SYSTEM_REBOOT,
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
"""Everything a person wants on their phone; not bars, signals, routing, orders or fills."""

GONE = (401, 403, 404)
"""Answers that mean the webhook will not take anything this run (wrong token, deleted)."""

MIN_RATE_LIMIT_WAIT_S = 0.05
"""A 429 saying "retry after 0" still waits this long, so a confused server is not hammered."""

Undeliverable = Callable[[Event, str], None]


class DiscordSettings(PluginSettings):
    """The ``notifiers.discord`` section."""

    model_config = ConfigDict(hide_input_in_errors=True)  # the input is the secret URL

    webhook_url: SecretStr
    """Server Settings > Integrations > Webhooks > Copy Webhook URL.

    Put it in the environment and write ``${DISCORD_WEBHOOK_URL}`` in the config."""
    kinds: list[EventKind] = Field(default_factory=lambda: list(DEFAULT_KINDS))
    username: str = Field(default="tradebot", min_length=1, max_length=80)
    max_attempts: int = Field(default=5, ge=1, le=20)
    """Tries per message on 5xx and network errors (429s do not count)."""
    backoff_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    """Per request."""
    max_rate_limit_wait_s: float = Field(default=300.0, gt=0)
    """Give up on a message after waiting this long on 429s for it."""
    drain_timeout_s: float = Field(default=10.0, ge=0)
    """At the end of a run, how long to keep delivering what is queued."""
    max_queue: int = Field(default=10_000, ge=1)
    """Events waiting beyond this are reported undeliverable at once instead of piling up."""

    @field_validator("webhook_url")
    @classmethod
    def _an_http_url(cls, url: SecretStr) -> SecretStr:
        import httpx

        value = url.get_secret_value().strip()
        try:
            parsed = httpx.URL(value)
        except (httpx.InvalidURL, TypeError, ValueError):
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(
                "must be a webhook URL like https://discord.com/api/webhooks/ID/TOKEN "
                "(Server Settings > Integrations > Webhooks > Copy Webhook URL)"
            )
        return SecretStr(value)

    @field_validator("username")
    @classmethod
    def _a_name_discord_accepts(cls, name: str) -> str:
        lowered = name.lower()
        banned = [s for s in ("@", "#", ":", "```", "discord", "clyde") if s in lowered]
        if banned or lowered in ("everyone", "here"):
            raise ValueError(
                f"Discord refuses webhook names containing {banned[0] if banned else name!r}"
            )
        return name


class DiscordNotifier:
    """Posts events to a Discord webhook, in order, from one background task."""

    name = "discord"
    Settings = DiscordSettings

    def __init__(
        self,
        settings: DiscordSettings,
        context: PluginContext | None = None,
        *,
        on_undeliverable: Undeliverable | None = None,
    ) -> None:
        self.settings = settings
        self.kinds = settings.kinds
        self._url = settings.webhook_url.get_secret_value()
        register_secret(self._url)  # httpx logs request URLs
        self.on_undeliverable: Undeliverable = on_undeliverable or self._log_undeliverable
        self._pending: deque[Event] = deque()
        self._current: Event | None = None  # being sent: kept until it is resolved
        self._current_parts = (0, 0)  # (messages delivered, messages) of the current event
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._gone: str | None = None  # why the webhook takes nothing more, once it says so
        self._not_before = 0.0  # monotonic time before which no request may go (rate limit)
        self.delivered = 0
        self.undelivered = 0

    def __repr__(self) -> str:
        return f"DiscordNotifier(webhook={self._redacted()}, queued={len(self._pending)})"

    # -- the pipeline side: never blocks -----------------------------------------------------------

    def notify(self, event: Event) -> None:
        """Queue ``event`` for the sender and return at once (safe from any thread)."""
        if len(self._pending) >= self.settings.max_queue:
            self._report(event, f"queue full ({self.settings.max_queue} events waiting)")
            return
        self._pending.append(event)
        self._kick()

    async def start(self) -> None:
        """Open the client and start the sender (idempotent)."""
        if self._task is not None and not self._task.done():
            return
        import httpx

        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(
            timeout=self.settings.timeout_s,
            headers={"User-Agent": f"tradebot/{__version__} (webhook notifier)"},
        )
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._wakeup.set()
        self._task = asyncio.create_task(self._send_all(), name="discord-notifier")

    async def stop(self, timeout_s: float | None = None) -> None:
        """Deliver what is queued for up to ``timeout_s`` (default ``drain_timeout_s``), then
        report the rest to ``on_undeliverable``."""
        timeout_s = self.settings.drain_timeout_s if timeout_s is None else timeout_s
        if self._task is not None:
            if not self._task.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._drained(), timeout_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._current is not None:
            sent, total = self._current_parts
            note = f" ({sent} of {total} messages delivered)" if sent else ""
            self._report(self._current, f"not delivered before the run stopped{note}")
            self._current = None
        while self._pending:
            self._report(self._pending.popleft(), "not delivered before the run stopped")
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._loop = None

    # -- the sender ------------------------------------------------------------------------------

    def _kick(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None:
            return  # not started: start() sends what is queued
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wakeup.set()
        else:
            loop.call_soon_threadsafe(wakeup.set)

    async def _drained(self) -> None:
        assert self._idle is not None
        while self._pending or self._current is not None:
            self._idle.clear()
            await self._idle.wait()

    async def _send_all(self) -> None:
        assert self._wakeup is not None and self._idle is not None
        while True:
            if not self._pending:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            event = self._pending.popleft()
            self._current = event
            try:
                reason = await self._send_event(event)  # a stop may cancel us here
            except Exception as exc:  # a bug must not stop the sender: report and go on
                log.error("discord: failed to send a %s event: %r", event.kind.value, exc)
                reason = f"internal error: {type(exc).__name__}"
            self._current = None
            if reason is None:
                self.delivered += 1
            else:
                self._report(event, reason)

    async def _send_event(self, event: Event) -> str | None:
        """Deliver every message of ``event``; None when all went, else why not."""
        if self._gone is not None:
            return f"{self._gone} (earlier answer; not sent)"
        messages = messages_for(event, self.settings.username)
        for index, message in enumerate(messages):
            self._current_parts = (index, len(messages))
            reason = await self._deliver(message)
            if reason is not None:
                if index:
                    reason += f" ({index} of {len(messages)} messages delivered)"
                return reason
        return None

    async def _deliver(self, message: dict[str, Any]) -> str | None:
        """Send one message; None when delivered, else why not."""
        import httpx

        assert self._client is not None
        attempts = 0
        waited = 0.0
        while True:
            await self._wait_for_bucket()
            attempts += 1
            server_wait = 0.0
            try:
                response = await self._client.post(self._url, json=message)
            except httpx.HTTPError as exc:  # its text may hold the URL: keep the type only
                failure = f"network error: {type(exc).__name__}"
            else:
                status = response.status_code
                self._note_bucket(response)
                if 200 <= status < 300:
                    return None
                if status == 429:
                    wait = max(MIN_RATE_LIMIT_WAIT_S, retry_after(response))
                    waited += wait
                    if waited > self.settings.max_rate_limit_wait_s:
                        return (
                            f"HTTP 429: rate limited for over "
                            f"{self.settings.max_rate_limit_wait_s:g} s"
                        )
                    scope = "globally" if _json(response).get("global") else "on this webhook"
                    log.warning("discord: rate limited %s, waiting %.2f s", scope, wait)
                    self._not_before = max(self._not_before, time.monotonic() + wait)
                    attempts -= 1  # a rate limit is not a failed attempt
                    continue
                if status in GONE:
                    self._gone = f"HTTP {status}: {_discord_message(response)}"
                    log.error(
                        "discord: the webhook answered %s: it was deleted or its URL is wrong; "
                        "nothing more will be sent this run (make a new webhook and set "
                        "DISCORD_WEBHOOK_URL)",
                        self._gone,
                    )
                    return self._gone
                if status < 500:
                    return f"HTTP {status}: {_discord_message(response)}"
                failure = f"HTTP {status}"
                server_wait = _header_seconds(response, "Retry-After") or 0.0
            if attempts >= self.settings.max_attempts:
                return f"{failure} after {attempts} attempts"
            delay = min(self.settings.backoff_max_s, self.settings.backoff_s * 2 ** (attempts - 1))
            delay = max(delay, min(server_wait, self.settings.backoff_max_s))
            log.warning(
                "discord: %s (attempt %d of %d), retrying in %.2f s",
                failure,
                attempts,
                self.settings.max_attempts,
                delay,
            )
            await asyncio.sleep(delay)

    async def _wait_for_bucket(self) -> None:
        delay = self._not_before - time.monotonic()
        if delay > 0:
            await asyncio.sleep(min(delay, self.settings.max_rate_limit_wait_s))

    def _note_bucket(self, response: httpx.Response) -> None:
        """After ``X-RateLimit-Remaining: 0``, hold the next request until the bucket resets."""
        if response.headers.get("X-RateLimit-Remaining") == "0":
            reset_after = _header_seconds(response, "X-RateLimit-Reset-After")
            if reset_after:
                self._not_before = max(self._not_before, time.monotonic() + reset_after)

    def _report(self, event: Event, reason: str) -> None:
        self.undelivered += 1
        try:
            self.on_undeliverable(event, reason)
        except Exception as exc:
            log.error(
                "discord: the undeliverable handler failed on a %s event (%s): %r",
                event.kind.value,
                reason,
                exc,
            )

    def _log_undeliverable(self, event: Event, reason: str) -> None:
        log.error("discord: %s event not delivered: %s", event.kind.value, reason)

    def _redacted(self) -> str:
        head, _, _ = self._url.rstrip("/").rpartition("/")
        return head + "/***"


def retry_after(response: httpx.Response) -> float:
    """Seconds to wait after a 429, as Discord says it: the JSON ``retry_after``; else the longer
    of the ``Retry-After`` and ``X-RateLimit-Reset-After`` headers (a Cloudflare ban has only
    headers); else one second."""
    with contextlib.suppress(ValueError, TypeError, KeyError):
        return max(0.0, float(_json(response)["retry_after"]))
    waits = [
        s
        for s in (
            _header_seconds(response, "Retry-After"),
            _header_seconds(response, "X-RateLimit-Reset-After"),
        )
        if s is not None
    ]
    return max(waits) if waits else 1.0


def _header_seconds(response: httpx.Response, name: str) -> float | None:
    with contextlib.suppress(KeyError, TypeError, ValueError):
        return max(0.0, float(response.headers[name]))
    return None


def _json(response: httpx.Response) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict):
            return body
    return {}


def _discord_message(response: httpx.Response) -> str:
    """Discord's own words for an error (``Unknown Webhook``...), without anything of ours."""
    message = _json(response).get("message")
    return str(message)[:200] if message else response.reason_phrase


@hookimpl
def register_notifiers(register: Any) -> None:
    register(DiscordNotifier)
