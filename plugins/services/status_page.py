"""The ``status_page`` service: a REST API, a WebSocket and a dashboard, served by aiohttp.

It runs in a thread of its own, with its own event loop, and uses only the run's view
(``pipeline.view``). The trading loop's part is one append per event (the bus callback defers it
to the page's thread); the page's thread encodes events and fans them out to bounded per-client
queues (a slow browser loses old bar updates, never slows the pipeline), serves REST and the
WebSocket, and may use :data:`CPU_SHARE` of a CPU at most (past it, it sleeps). State that lives
on the trading loop (positions, risk, regime, the forming bar) is read there in one short call,
shared by the requests that come meanwhile; journal reads go through the view's read-only
connection in a thread; ``GET /`` (health) reads a few numbers directly, so it answers even when
the trading loop is stuck. Control runs on the trading loop, and answers once it took effect.

| route | what |
|---|---|
| ``GET /`` | health: status, uptime, feed connected, last tick age |
| ``GET /dashboard`` | the dashboard (static files, no CDN: works offline) |
| ``GET /api/session/status`` | regime, indicators, risk state, account, run summary |
| ``GET /api/trades``, ``signals``, ``decisions`` | from the journal, newest first, ``?limit=`` |
| ``GET /api/positions``, ``statistics``, ``bars`` | open positions, run statistics, recent bars |
| | (``bars?before=TS&limit=N``: older bars of the session) |
| ``POST /api/session/start|stop|halt|resume`` | control (bearer token) |
| ``POST /api/settings`` | profit target, loss limit, max position, symbol (bearer token) |
| ``GET /ws`` | bars, signals, decisions, orders, fills, trades, regime and state, as they happen; |
| | ``live`` (price, position, P&L, the forming bar) between bar closes, 4 a second at most |
| ``GET /favicon.ico`` | a small SVG icon |

Control semantics: ``halt`` stops new entries from the next bar (open positions keep their
brackets); ``resume`` and ``start`` allow entries again (``start`` does not start a stopped
run); ``stop`` flattens and ends the run.

Safe by default: it binds 127.0.0.1; every request must name the page in ``Host`` (its own
addresses or ``allowed_hosts``: a DNS-rebinding page gets 403); without a configured token every
control endpoint answers 403 (never open); the WebSocket only accepts the page's own origin, the
configured ones, or a client without an Origin that carries the token; request bodies are bounded
in size and JSON nesting; every error is JSON (``{"error": ...}``), never a traceback; no response
carries a secret.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import ipaddress
import json
import logging
import mimetypes
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from tradebot_plugins.services._status_stats import trade_statistics
from tradebot_plugins.services._status_stream import (
    CPU_SHARE,
    FLUSH_INTERVAL_S,
    LIVE_INTERVAL_S,
    STREAMED,
    ClientQueue,
    CpuBudget,
    Fanout,
    dumps,
)

from tradebot_core import Event, EventKind, PluginContext, PluginSettings, __version__, hookimpl
from tradebot_core.config import format_validation_error

if TYPE_CHECKING:
    from aiohttp import web

    from tradebot_core import RunView
else:

    class _LazyWeb:
        """``aiohttp.web``, imported on first use: aiohttp costs a quarter of a second to import,
        and every ``tradebot`` process loads this module, most of them never serving a page."""

        def __getattr__(self, name: str) -> Any:
            from aiohttp import web

            return getattr(web, name)

    web = _LazyWeb()


def _middleware(method: Any) -> Any:
    """What ``aiohttp.web.middleware`` does (mark a new-style middleware), without aiohttp."""
    method.__middleware_version__ = 1
    return method


log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
_ANY_HOST = {"", "0.0.0.0", "::"}
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_HOST = re.compile(r"^(?P<name>\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(?P<port>[0-9]{1,5}))?$")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<rect width="16" height="16" rx="3" fill="#1f2937"/>'
    b'<path d="M3 12V7h2v5zm4 0V4h2v8zm4 0V8h2v4z" fill="#22c55e"/></svg>'
)
TRADING_TIMEOUT_S = 5.0
"""Seconds a request waits for the trading loop to read or change the run (503 past it)."""
_NO_TOKEN = (
    "control is disabled: no token is configured; set services.status_page.token "
    "(e.g. token: ${TRADEBOT_STATUS_TOKEN} and export TRADEBOT_STATUS_TOKEN) to enable it"
)


class StatusPageSettings(PluginSettings):
    host: str = "127.0.0.1"
    """Address to bind; 0.0.0.0 exposes the page to the network (put it behind TLS)."""
    port: int = Field(default=8000, ge=0, le=65535)
    """TCP port; 0 takes any free port (the bound one is the component's ``port``)."""
    token: SecretStr | None = None
    """Bearer token for the control endpoints, e.g. ``${TRADEBOT_STATUS_TOKEN:-}``; none or
    empty: no control at all (403)."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Origins allowed on the WebSocket besides the page's own (http://127.0.0.1:PORT,
    http://localhost:PORT and the bound host), e.g. ``https://bot.example.com``."""
    allowed_hosts: list[str] = Field(default_factory=list)
    """Host names accepted in the ``Host`` header (any port) besides 127.0.0.1, localhost,
    [::1] and the bound host (with the bound port or none), e.g. ``bot.example.com`` behind a
    proxy; the hosts of ``allowed_origins`` are accepted too. Any other Host: 403."""
    max_body: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Bytes a request body may have at most (413 beyond)."""
    max_json_depth: int = Field(default=20, ge=2, le=200)
    """Nesting of arrays and objects a JSON body may have at most (400 beyond)."""
    recent_bars: int = Field(default=30, ge=1, le=500)
    """Bars the dashboard gets on load, and bar updates kept queued for a slow client."""
    client_queue: int = Field(default=2000, ge=10, le=100_000)
    """Messages queued per WebSocket client at most."""
    cpu_share: float = Field(default=CPU_SHARE, gt=0, le=1)
    """Share of one CPU the page's thread may use on average; past it the page lags, trading
    does not."""

    @field_validator("token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        origins = []
        for origin in value:
            parts = urlsplit(origin.strip().rstrip("/"))
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], "
                    "e.g. https://bot.example.com"
                )
            origins.append(f"{parts.scheme}://{parts.netloc}".lower())
        return origins

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        hosts = []
        for host in value:
            name = host.strip().lower()
            with contextlib.suppress(ValueError):  # a bare IPv6 address is written in brackets
                if ipaddress.ip_address(name).version == 6:
                    name = f"[{name}]"
            match = _HOST.match(name)
            if match is None or match["port"] is not None:
                raise ValueError(
                    f"{host!r} is not a host name: write the name alone (no scheme, port or "
                    "path), e.g. bot.example.com"
                )
            hosts.append(name)
        return hosts


class SessionSettings(BaseModel):
    """What ``POST /api/settings`` may change in a running session."""

    model_config = ConfigDict(extra="forbid")

    daily_profit_target: Decimal | None = Field(default=None, ge=0)
    daily_loss_limit: Decimal | None = Field(default=None, le=0)
    max_position: int | None = Field(default=None, ge=1)
    symbol: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,12}$")


SESSION_BARS = 2000  # closed bars kept for /api/bars?before= (a day of 1-minute bars)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def _error(message: str, status: int, headers: Any = None) -> web.Response:
    response = _json({"error": message}, status)
    if headers:
        response.headers.update(headers)
    return response


def _static_names() -> set[str]:
    return {p.name for p in STATIC.iterdir() if p.is_file() and not p.name.startswith(".")}


def _static_file(name: str) -> web.Response:
    """A small file of ``static/`` (read per request: an edited dashboard shows on reload)."""
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return web.Response(
        body=(STATIC / name).read_bytes(),
        content_type=content_type,
        charset="utf-8" if content_type.startswith("text/") else None,
        headers={"Cache-Control": "no-cache"},
    )


class BadRequest(Exception):
    """Bad input a handler found: answered ``{"error": message}`` with ``status`` (a 4xx)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def json_depth(text: str, limit: int) -> int:
    """How deep arrays and objects nest in ``text`` (strings skipped), counting to ``limit + 1``
    at most: a check before :func:`json.loads`, which recurses (a RecursionError on deep input)."""
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_JSON_STRING.sub('""', text)):
        if bracket.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


class StatusPage:
    """The status page service (see the module docstring)."""

    name = "status_page"
    Settings = StatusPageSettings

    def __init__(self, settings: StatusPageSettings, context: PluginContext | None) -> None:
        self.settings = settings
        self.view: RunView | None = None
        self.port = settings.port  # the bound port once started (port 0: a free one)
        self.started = time.monotonic()
        # the session's bars (the dashboard scrolls back through them), 2000 at most
        self.bars: deque[dict[str, Any]] = deque(maxlen=max(SESSION_BARS, settings.recent_bars))
        self.fanout = Fanout()
        self.clients: set[ClientQueue] = self.fanout.clients
        self.budget = CpuBudget(settings.cpu_share)  # the page thread's share of a CPU
        self.events_seen = 0  # streamed events so far (the trading loop counts, the page reads)
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._closing = False
        self._reader: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._trading_loop: asyncio.AbstractEventLoop | None = None  # the run's loop
        self._page_loop: asyncio.AbstractEventLoop | None = None  # the page thread's loop
        self._stop_page: asyncio.Event | None = None
        self._status: tuple[Any, dict[str, Any]] | None = None  # (state key, the status read)
        self._changes = 0  # control and settings requests made through the page
        self._status_read: asyncio.Future[dict[str, Any]] | None = None  # one read in flight
        self._live_last: dict[str, Any] | None = None
        self.live_message: str | None = None  # the newest live message (new clients get it)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, pipeline: Any) -> None:
        """Subscribe to the run's events and listen on host:port in the page's own thread. Of
        the run, only its view (:class:`tradebot_core.RunView`) is used."""
        self.view = view = pipeline.view
        self.started = time.monotonic()
        self._closing = False
        self._trading_loop = asyncio.get_running_loop()
        view.subscribe(self._on_event, list(STREAMED))
        listening: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._thread_main, args=(listening,), name="status-page", daemon=True
        )
        self._thread.start()
        try:
            await asyncio.wrap_future(listening)
        except BaseException:  # it could not listen, or start() was cancelled
            view.unsubscribe(self._on_event)
            self._closing = True
            loop, stop = self._page_loop, self._stop_page
            if loop is not None and stop is not None:  # listening already: stop serving
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(stop.set)
            await asyncio.shield(asyncio.to_thread(self._thread.join, 10))
            self._thread = None
            raise
        log.info("status page on http://%s:%s/dashboard", self.settings.host, self.port)
        if self.settings.token is None:
            log.info("status page: control endpoints disabled (no token configured)")

    async def stop(self) -> None:
        """Close every WebSocket (going away), then the listening sockets, then the thread."""
        self._closing = True
        if self.view is not None:
            self.view.unsubscribe(self._on_event)
        thread, loop, stop = self._thread, self._page_loop, self._stop_page
        if thread is None:
            return
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already ended
                loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join, 10)
        if thread.is_alive():
            log.warning("status page: its thread did not stop within 10 s")
        self._thread = None

    def _thread_main(self, listening: concurrent.futures.Future[None]) -> None:
        try:
            asyncio.run(self._serve(listening))
        except BaseException as exc:  # reported to start(), or logged
            if not listening.done():
                listening.set_exception(exc)
            else:
                log.exception("status page: its thread failed")

    async def _serve(self, listening: concurrent.futures.Future[None]) -> None:
        """The page's thread: listen, say so, serve until :meth:`stop`, then close it all."""
        self._page_loop = asyncio.get_running_loop()
        self._stop_page = asyncio.Event()
        # one thread for journal reads: one query at a time, through the view's read connection
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="status-page-journal")
        # bodies are read as sent: a compressed one is refused (415) before anything inflates it
        runner = web.AppRunner(
            self.app(), access_log=None, shutdown_timeout=2.0, auto_decompress=False
        )
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            self._reader.shutdown(wait=False)
            raise RuntimeError(
                f"status page: cannot listen on {self.settings.host}:{self.settings.port} "
                f"({exc.strerror or exc}): choose another services.status_page.port (0: any)"
            ) from exc
        self.port = runner.addresses[0][1] if runner.addresses else self.port
        self._runner = runner
        self.budget.restart()  # serving counts from here (not importing aiohttp, not binding)
        tasks: list[asyncio.Task[None]] = []
        try:
            if not listening.set_running_or_notify_cancel():  # start() was cancelled: close
                return
            listening.set_result(None)
            tasks += [asyncio.create_task(loop()) for loop in (self._live_loop, self._flush_loop)]
            await self._stop_page.wait()
        finally:
            self._closing = True
            for task in tasks:
                task.cancel()
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(outcome, Exception):
                    log.error("status page: a task failed", exc_info=outcome)
            await self._close(runner)

    async def _close(self, runner: web.AppRunner) -> None:
        from aiohttp import WSCloseCode

        closing = [
            socket.close(code=WSCloseCode.GOING_AWAY, message=b"tradebot stopping")
            for socket in self._sockets
        ]
        if closing:  # each waits for its client's reply; a silent client is cut after 2 s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), 2)
        await runner.cleanup()
        self._runner = None
        if self._reader is not None:
            self._reader.shutdown(wait=True, cancel_futures=True)
            self._reader = None

    async def _flush_loop(self) -> None:
        """Every ``FLUSH_INTERVAL_S``: the events the trading loop deferred, to the clients."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            if not self.fanout.pending:
                continue
            try:
                self.fanout.flush()
                self.budget.pace()
            except Exception:  # logged, and the stream goes on with the next events
                log.exception("status page: queueing events for the clients failed")

    async def on_trading(self, read: Callable[..., Any], *args: Any) -> Any:
        """``read(*args)`` called on the trading loop (where the run's state lives and changes),
        its result or exception here; the CPU it took there is charged to the page's budget. A
        :class:`BadRequest` 503 if the run has ended or does not answer within
        :data:`TRADING_TIMEOUT_S`."""
        loop = self._trading_loop
        if loop is None or loop is asyncio.get_running_loop():  # served on the trading loop
            return read(*args)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def call() -> None:
            if future.set_running_or_notify_cancel():
                started = time.thread_time()
                try:
                    result = read(*args)
                except Exception as exc:  # handed to the waiting request
                    future.set_exception(exc)
                except BaseException as exc:  # Ctrl-C, SystemExit: the run's, not the page's
                    future.set_exception(exc)
                    raise
                else:  # with the trading loop's time it took: the page's cost
                    future.set_result((result, time.thread_time() - started))

        try:
            loop.call_soon_threadsafe(call)
        except RuntimeError:  # the trading loop is closed: the run is over
            raise BadRequest("the run has ended", 503) from None
        try:
            result, cpu = await asyncio.wait_for(asyncio.wrap_future(future), TRADING_TIMEOUT_S)
        except TimeoutError:
            raise BadRequest(
                f"the trading loop did not answer within {TRADING_TIMEOUT_S:g} s "
                "(GET / shows the age of the last batch)",
                503,
            ) from None
        self.budget.charge(cpu)
        return result

    def app(self) -> web.Application:
        """The aiohttp application (tests may serve it on their own)."""
        app = web.Application(
            middlewares=[self._budget_middleware, self._host_middleware, self._errors_middleware],
            client_max_size=self.settings.max_body,
        )
        r = app.router
        expect = {"expect_handler": self._expect}
        r.add_get("/", self.health, **expect)
        r.add_get("/dashboard", self.dashboard, **expect)
        r.add_get("/favicon.ico", self.favicon, **expect)
        r.add_get("/static/{name}", self.static, **expect)
        r.add_get("/api/session/status", self.status, **expect)
        r.add_get("/api/trades", self.trades, **expect)
        r.add_get("/api/signals", self.signals, **expect)
        r.add_get("/api/decisions", self.decisions, **expect)
        r.add_get("/api/positions", self.positions, **expect)
        r.add_get("/api/statistics", self.statistics, **expect)
        r.add_get("/api/bars", self.recent_bars, **expect)
        for action in ("start", "stop", "halt", "resume"):
            r.add_post(f"/api/session/{action}", self.control, **expect)
        r.add_post("/api/settings", self.update_settings, **expect)
        r.add_get("/ws", self.websocket, **expect)
        return app

    # -- the bus side: synchronous, in the hot path: append only ---------------------------------

    def _on_event(self, event: Event) -> None:
        self.events_seen += 1
        if event.kind is EventKind.BAR_CLOSED:
            self.bars.append(event.payload)  # bar_payload's dict, built for us
        self.fanout.defer(event)  # O(1): the page's thread queues it for the clients

    # -- the live message: sampled from the view, never from the hot path ----------------------

    @property
    def _view(self) -> RunView:
        if self.view is None:
            raise RuntimeError("the status page is not started")
        return self.view

    def _price(self, price_fixed: int) -> str | None:
        return str(self._view.instrument.to_decimal(price_fixed)) if price_fixed else None

    def live_state(self) -> dict[str, Any]:
        """What moves between bar closes: last price and time, net position, unrealized and day
        realized P&L, the open positions, and the bar still forming."""
        v = self._view
        positions = v.positions()
        return {
            "last_price": self._price(v.last_price),
            "last_ts_ns": v.last_ts_ns or None,
            "position": sum(p["net"] for p in positions),
            "positions": positions,
            "unrealized_pnl": str(v.unrealized()),
            "realized_pnl": str(v.risk_state.realized),
            "forming_bar": v.forming_bar(),
        }

    async def sample_live(self) -> bool:
        """One look at the view (on the trading loop): queue a ``live`` message for every client
        if anything changed since the last one (True if one was queued)."""
        if not self.clients:  # nobody watches: nothing to build; the next client starts fresh
            self._live_last = self.live_message = None
            return False
        data = await self.on_trading(self.live_state)
        if data == self._live_last:
            return False
        self._live_last = data
        self.live_message = dumps({"type": "live", "ts_ns": data["last_ts_ns"], "data": data})
        self.fanout.publish_live(self.live_message)
        return True

    async def _live_loop(self) -> None:
        """Every ``LIVE_INTERVAL_S`` (250 ms: 4 messages a second at most), between bar closes
        too. A failure is logged and the loop goes on: the page must not die of one sample."""
        while True:
            await asyncio.sleep(LIVE_INTERVAL_S)
            try:
                if await self.sample_live():
                    self.budget.pace()
            except BadRequest as exc:  # the trading loop is busy or gone: next time
                log.debug("status page: no live sample: %s", exc.message)
            except Exception:
                log.exception("status page: the live sample failed")

    # -- middlewares: the CPU budget, the Host check, errors as JSON ---------------------------

    @_middleware
    async def _budget_middleware(
        self, request: web.Request, handler: _Handler
    ) -> web.StreamResponse:
        """After each request, the page's thread keeps to its CPU share (it sleeps if past it:
        the next requests wait in the kernel). A WebSocket's sends are paced one batch at a
        time."""
        if request.path == "/ws":
            return await handler(request)
        try:
            return await handler(request)
        finally:
            self.budget.pace()

    def hosts(self) -> tuple[set[str], set[str]]:
        """Host names accepted with the bound port or none, and those accepted with any port."""
        own = set(_LOOPBACK)
        host = self.settings.host.lower()
        if host not in _ANY_HOST:
            own.add(f"[{host}]" if ":" in host else host)
        extra = set(self.settings.allowed_hosts)
        extra.update(urlsplit(origin).hostname or "" for origin in self.settings.allowed_origins)
        extra.update(f"[{h}]" for h in list(extra) if ":" in h and not h.startswith("["))
        return own, extra - {""}

    def host_allowed(self, header: str | None) -> bool:
        """Whether a request's ``Host`` names this page (DNS rebinding sends a foreign name)."""
        match = _HOST.match((header or "").strip().lower())
        if match is None:
            return False
        own, extra = self.hosts()
        name, port = match["name"], match["port"]
        if name in extra:
            return True
        return name in own and (port is None or int(port) == self.port)

    @_middleware
    async def _host_middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if not self.host_allowed(host):
            shown = host if host is None or len(host) <= 100 else host[:100] + "..."
            return _error(
                f"host {shown!r} not allowed: browse the page as http://127.0.0.1:{self.port} "
                "or add the name to services.status_page.allowed_hosts",
                403,
            )
        return await handler(request)

    @_middleware
    async def _errors_middleware(
        self, request: web.Request, handler: _Handler
    ) -> web.StreamResponse:
        """Every error as ``{"error": message}``: HTTP errors keep their status, bad input is a
        4xx, anything unexpected a 500 without its traceback (which goes to the log)."""
        try:
            length = request.content_length
            if length is not None and length > self.settings.max_body:
                raise BadRequest(self._too_large(), 413)
            encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("", "identity") and request.body_exists:
                raise BadRequest(
                    f"Content-Encoding {encoding[:40]!r} is not accepted: send the body as it is",
                    415,
                )
            return await handler(request)
        except BadRequest as exc:
            return _error(exc.message, exc.status)
        except web.HTTPRequestEntityTooLarge:
            return _error(self._too_large(), 413)
        except web.HTTPException as exc:
            if exc.status < 400:  # redirects and the like pass through
                raise
            if exc.content_type == "application/json" and exc.text:
                # already {"error": ...} (e.g. a bad ?limit=)
                return web.Response(text=exc.text, status=exc.status, content_type=exc.content_type)
            headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
            return _error(
                f"{exc.reason.lower()}: {request.method} {request.path[:200]}", exc.status, headers
            )
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:
            from aiohttp.http_exceptions import HttpProcessingError
            from aiohttp.web_protocol import RequestPayloadError

            if isinstance(exc, HttpProcessingError | RequestPayloadError):  # a body aiohttp
                # cannot read: bad gzip, a broken chunked encoding...
                cause = exc.__cause__ or exc
                message = getattr(cause, "message", None) or str(cause)
                return _error(f"bad request body: {str(message).strip()[:200]}", 400)
            log.exception("status page: %s %s failed", request.method, request.path[:200])
            return _error("internal error: the log has the details", 500)

    async def _expect(self, request: web.Request) -> None:
        """``Expect: 100-continue``: go on only for a body the page would read (its Host allowed,
        its length within ``max_body``); then the middlewares answer. Other expectations are
        ignored (aiohttp's default answers them in plain text, before the Host check)."""
        length = request.content_length
        if (
            request.headers.get("Expect", "").lower() == "100-continue"
            and request.version >= (1, 1)
            and self.host_allowed(request.headers.get("Host"))
            and (length is None or length <= self.settings.max_body)
        ):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # as aiohttp's own handler: the body has not started

    def _too_large(self) -> str:
        return (
            f"the body is larger than {self.settings.max_body} bytes "
            "(services.status_page.max_body)"
        )

    async def json_body(self, request: web.Request) -> Any:
        """The request's JSON body, bounded in size and nesting: :class:`BadRequest` if bad."""
        raw = await request.read()  # over max_body: HTTPRequestEntityTooLarge (413)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("the body is not JSON: it is not UTF-8") from None
        limit = self.settings.max_json_depth
        if json_depth(text, limit) > limit:
            raise BadRequest(
                f"the body is not acceptable JSON: nested deeper than {limit} levels "
                "(services.status_page.max_json_depth)"
            )
        try:
            return json.loads(text, parse_constant=_no_constant)
        except RecursionError:  # the depth check should have caught it
            raise BadRequest("the body is not acceptable JSON: nested too deep") from None
        except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an integer too long
            raise BadRequest(f"the body is not JSON: {str(exc)[:200]}") from None

    # -- read-only endpoints ---------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        v = self._view
        tick_age = round(time.time() - v.last_ts_ns / 1e9, 3) if v.last_ts_ns else None
        batch_age = v.last_batch_age_s
        batch_age = round(batch_age, 3) if batch_age is not None else None
        status = "stopping" if v.stopping else "halted" if v.risk_state.halted else "ok"
        return _json(
            {
                "status": status,
                "uptime_s": round(time.monotonic() - self.started, 3),
                "feed": v.feed_plugin,
                "feed_connected": bool(v.feed_connected),
                "last_tick_age_s": tick_age,
                "last_batch_age_s": batch_age,
                "version": __version__,
            }
        )

    async def dashboard(self, request: web.Request) -> web.Response:
        return _static_file("dashboard.html")

    async def static(self, request: web.Request) -> web.Response:
        """The dashboard's files, by name only (no path, no ranges): a JSON 404 for anything
        else."""
        name = request.match_info["name"]
        if name not in _static_names():
            return _error(f"not found: {request.path[:200]}", 404)
        return _static_file(name)

    async def favicon(self, request: web.Request) -> web.Response:
        return web.Response(
            body=FAVICON,
            content_type="image/svg+xml",
            headers={"Cache-Control": "max-age=86400"},
        )

    def status_state(self) -> dict[str, Any]:
        """``GET /api/session/status``'s answer: read on the trading loop."""
        v = self._view
        state = v.regime
        tier = v.tier
        positions = v.positions()
        limits = v.limits
        return {
            "symbol": v.symbol,
            "trading_symbol": v.trading_symbol,
            "timeframe_s": v.timeframe_s,
            "regime": state.model_dump(mode="json") if state else None,
            "risk": {
                **v.risk_state.to_dict(),
                "daily_profit_target": str(limits.daily_profit_target),
                "daily_loss_limit": str(limits.daily_loss_limit),
                "max_position": limits.max_position,
            },
            "account": {
                "balance": str(v.balance),
                "tier": tier.model_dump(mode="json") if tier else None,
            },
            "position": sum(x["net"] for x in positions),
            "positions": positions,
            "unrealized_pnl": str(v.unrealized()),
            "summary": v.summary,
            "last_price": self._price(v.last_price),
            "last_ts_ns": v.last_ts_ns or None,
            "token_configured": self.settings.token is not None,
        }

    async def status(self, request: web.Request) -> web.Response:
        """The run's status, read on the trading loop once for all the requests that come while
        that read is under way; the same answer again while no event and no tick came since."""
        key = self._status_key()
        cached = self._status
        if cached is not None and cached[0] == key:
            return _json(cached[1])
        reading = self._status_read
        if reading is None:
            reading = self._status_read = asyncio.ensure_future(self.on_trading(self.status_state))
            reading.add_done_callback(self._status_done(key))
        return _json(await asyncio.shield(reading))

    def _status_key(self) -> tuple[int, int, int]:
        """What a status read depends on: events so far, the last tick, changes made here."""
        return (self.events_seen, self._view.last_ts_ns, self._changes)

    def _status_done(self, key: tuple[int, int, int]) -> Callable[[asyncio.Future[Any]], None]:
        def done(reading: asyncio.Future[Any]) -> None:
            self._status_read = None
            # kept only if nothing was changed here meanwhile (a halt queued behind this read)
            if not reading.cancelled() and reading.exception() is None and key[2] == self._changes:
                self._status = (key, reading.result())

        return done

    def _limit(self, request: web.Request) -> int:
        raw = request.query.get("limit", "200")
        try:
            return max(1, min(int(raw), 2000))
        except ValueError:
            raise web.HTTPBadRequest(
                text=dumps({"error": f"limit: must be a whole number, got {raw!r}"}),
                content_type="application/json",
            ) from None

    async def _read(self, read: Any, *args: Any) -> Any:
        """A read of the run's journal through the view (its read-only connection), in the
        journal thread: the trading loop never waits for a query; its CPU is the page's."""
        view = self._view
        if self._closing:  # the run closes the journal once the page has stopped
            raise BadRequest("tradebot is stopping", 503)
        if view.run_id is None or self._reader is None:
            return []
        loop = asyncio.get_running_loop()
        rows, cpu = await loop.run_in_executor(self._reader, _timed_read, read, args)
        self.budget.charge(cpu)
        return rows

    async def trades(self, request: web.Request) -> web.Response:
        return _json(await self._read(self._view.recent_trades, self._limit(request)))

    async def signals(self, request: web.Request) -> web.Response:
        return _json(await self._read(self._view.recent_signals, self._limit(request)))

    async def decisions(self, request: web.Request) -> web.Response:
        return _json(await self._read(self._view.recent_decisions, self._limit(request)))

    async def positions(self, request: web.Request) -> web.Response:
        return _json(await self.on_trading(self._view.positions))

    async def recent_bars(self, request: web.Request) -> web.Response:
        """The newest ``recent_bars`` bars; ``?limit=`` more or fewer, ``?before=TS_OPEN`` those
        that opened before it (the dashboard scrolling back), oldest first."""
        bars = list(self.bars)
        raw = request.query.get("before")
        if raw is not None:
            try:
                before = int(raw)
            except ValueError:
                raise web.HTTPBadRequest(
                    text=dumps({"error": f"before: must be a bar's ts_open (ns), got {raw!r}"}),
                    content_type="application/json",
                ) from None
            bars = [b for b in bars if b["ts_open"] < before]
        keep = self._limit(request) if "limit" in request.query else self.settings.recent_bars
        return _json(bars[-keep:])

    async def statistics(self, request: web.Request) -> web.Response:
        pnls = await self._read(self._view.closed_pnls)
        return _json(trade_statistics(pnls))

    # -- control -------------------------------------------------------------------------------

    def _refusal(self, request: web.Request) -> web.Response | None:
        """None if the request carries the configured bearer token, else the answer to give."""
        token = self.settings.token
        if token is None:
            return _error(_NO_TOKEN, 403)
        given = request.headers.get("Authorization", "").encode()
        expected = f"Bearer {token.get_secret_value()}".encode()
        if not hmac.compare_digest(given, expected):
            return _error("missing or wrong token: send 'Authorization: Bearer <token>'", 401)
        return None

    async def control(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        action = request.path.rsplit("/", 1)[-1]
        self._changes += 1  # no status read from before this is reused
        result = await self.on_trading(self._control, action)
        self._changes += 1
        log.info("status page: session %s", action)
        return _json(result)

    def _control(self, action: str) -> dict[str, Any]:
        """Halt, resume/start or stop the run: on the trading loop."""
        v = self._view
        if action == "halt":
            v.halt("halted from the status page")
        elif action in ("resume", "start"):
            v.resume()
        elif action == "stop":
            v.flatten("stopped from the status page")
            v.stop()
        return {
            "ok": True,
            "action": action,
            "halted": v.risk_state.halted,
            "stopping": bool(v.stopping),
        }

    async def update_settings(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        body = await self.json_body(request)
        if not isinstance(body, dict):
            return _error(
                "the body must be a JSON object, e.g. "
                '{"daily_loss_limit": "-300", "max_position": 2}',
                400,
            )
        try:
            changes = SessionSettings.model_validate(body)
        except ValidationError as exc:
            return _error("; ".join(format_validation_error(exc, None, ())), 400)
        self._changes += 1  # no status read from before this is reused
        refusal = await self.on_trading(self._apply_settings, changes)
        self._changes += 1
        if refusal is not None:
            return _error(refusal, 400)
        log.info("status page: settings changed: %s", changes.model_dump(exclude_none=True))
        return _json({"ok": True, "applied": changes.model_dump(mode="json", exclude_none=True)})

    def _apply_settings(self, changes: SessionSettings) -> str | None:
        """Apply validated settings on the trading loop: None, or why they were refused."""
        v = self._view
        limits = changes.model_dump(exclude_none=True, exclude={"symbol"})
        try:
            if limits:
                v.update_limits(**limits)
            if changes.symbol:
                tier = v.tier
                if tier is not None:  # the tier picks the symbol: a switch would be ignored
                    return (
                        f"symbol: the account's tier {tier.name!r} decides the symbol "
                        f"({tier.symbol}): change account.tiers instead"
                    )
                v.switch_symbol(changes.symbol.upper())
        except ValidationError as exc:  # the limits together (as the config validates them)
            return "; ".join(format_validation_error(exc, None, ()))
        except (ValueError, KeyError) as exc:
            return f"symbol: {exc.args[0] if exc.args else exc}"
        return None

    # -- the WebSocket -------------------------------------------------------------------------

    def origins(self) -> set[str]:
        """Origins the WebSocket accepts: the page's own and ``allowed_origins``."""
        own = {f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"}
        own.add(f"http://[::1]:{self.port}")
        host = self.settings.host
        if host not in _ANY_HOST:
            own.add(f"http://{f'[{host}]' if ':' in host else host}:{self.port}".lower())
        return own | set(self.settings.allowed_origins)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None:  # not a browser: only with the token
            refused = self._refusal(request)
            if refused is not None:
                return _error("a WebSocket client without an Origin must send the token", 403)
        elif origin.lower() not in self.origins():
            return _error(
                f"origin {origin!r} not allowed: add it to services.status_page.allowed_origins",
                403,
            )
        if self._closing:
            return _error("tradebot is stopping", 503)
        socket = web.WebSocketResponse(heartbeat=30, compress=False)
        await socket.prepare(request)
        self.fanout.flush()  # events of before this client came are not its
        client = ClientQueue(self.settings.client_queue, self.settings.recent_bars)
        if self.live_message is not None:  # where things stand now, without waiting for a change
            client.put_live(self.fanout.live(self.live_message))
        self.clients.add(client)
        self._sockets.add(socket)
        sender = asyncio.create_task(self._send(socket, client))
        try:
            async for _ in socket:  # the page sends nothing; this notices a close
                pass
        finally:
            self.clients.discard(client)
            self._sockets.discard(socket)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return socket

    async def _send(self, socket: web.WebSocketResponse, client: ClientQueue) -> None:
        """Send what the client's queue holds, as it comes; after each batch the page's thread
        keeps to its CPU share (while it sleeps, queues fill and drop by their rule)."""
        try:
            while not socket.closed:
                await client.wake.wait()
                client.wake.clear()
                for message in client.take():
                    await socket.send_str(message)
                self.budget.pace()
        except (ConnectionError, RuntimeError) as exc:  # the peer went away mid-send
            log.debug("status page: WebSocket send stopped: %s", exc)


def _timed_read(read: Any, args: tuple[Any, ...]) -> tuple[Any, float]:
    """A view read in the journal thread, with the CPU seconds it took."""
    started = time.thread_time()
    rows = read(*args)
    return rows, time.thread_time() - started


@hookimpl
def register_services(register: Any) -> None:
    register(StatusPage)
