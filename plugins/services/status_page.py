"""The ``status_page`` service: a REST API, a WebSocket and a dashboard, served by aiohttp.

It runs in the pipeline's event loop and only observes: its bus callback appends events to
per-client queues (bounded: a slow browser loses old bar updates, never slows the pipeline).

| route | what |
|---|---|
| ``GET /`` | health: status, uptime, feed connected, last tick age |
| ``GET /dashboard`` | the dashboard (static files, no CDN: works offline) |
| ``GET /api/session/status`` | regime, indicators, risk state, account, run summary |
| ``GET /api/trades``, ``signals``, ``decisions`` | from the journal, newest first, ``?limit=`` |
| ``GET /api/positions``, ``statistics``, ``bars`` | open positions, run statistics, recent bars |
| ``POST /api/session/start|stop|halt|resume`` | control (bearer token) |
| ``POST /api/settings`` | profit target, loss limit, max position, symbol (bearer token) |
| ``GET /ws`` | bars, signals, decisions, orders, fills, trades, regime and state, as they happen |

Control semantics: ``halt`` stops new entries from the next bar (open positions keep their
brackets); ``resume`` and ``start`` allow entries again (``start`` does not start a stopped
run); ``stop`` flattens and ends the run.

Safe by default: it binds 127.0.0.1; without a configured token every control endpoint answers
403 (never open); the WebSocket only accepts the page's own origin, the configured ones, or a
client without an Origin that carries the token; no response carries a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from tradebot_plugins.services._status_stats import trade_statistics
from tradebot_plugins.services._status_stream import STREAMED, ClientQueue, dumps

from tradebot_core import __version__, hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.config import format_validation_error
from tradebot_core.pipeline import position_payload
from tradebot_core.types import Event, EventKind

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
_ANY_HOST = {"", "0.0.0.0", "::"}
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
    recent_bars: int = Field(default=30, ge=1, le=500)
    """Bars the dashboard gets on load, and bar updates kept queued for a slow client."""
    client_queue: int = Field(default=2000, ge=10, le=100_000)
    """Messages queued per WebSocket client at most."""

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


class SessionSettings(BaseModel):
    """What ``POST /api/settings`` may change in a running session."""

    model_config = ConfigDict(extra="forbid")

    daily_profit_target: Decimal | None = Field(default=None, ge=0)
    daily_loss_limit: Decimal | None = Field(default=None, le=0)
    max_position: int | None = Field(default=None, ge=1)
    symbol: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,12}$")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message}, status)


class StatusPage:
    """The status page service (see the module docstring)."""

    name = "status_page"
    Settings = StatusPageSettings

    def __init__(self, settings: StatusPageSettings, context: PluginContext | None) -> None:
        self.settings = settings
        self.pipeline: Any = None
        self.port = settings.port  # the bound port once started (port 0: a free one)
        self.started = time.monotonic()
        self.bars: deque[dict[str, Any]] = deque(maxlen=settings.recent_bars)
        self.clients: set[ClientQueue] = set()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._closing = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, pipeline: Any) -> None:
        """Subscribe to the bus and listen on host:port in the running loop."""
        self.pipeline = pipeline
        self.started = time.monotonic()
        pipeline.bus.subscribe(self._on_event, list(STREAMED))
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise RuntimeError(
                f"status page: cannot listen on {self.settings.host}:{self.settings.port} "
                f"({exc.strerror or exc}): choose another services.status_page.port (0: any)"
            ) from exc
        self.port = self._runner.addresses[0][1] if self._runner.addresses else self.port
        log.info("status page on http://%s:%s/dashboard", self.settings.host, self.port)
        if self.settings.token is None:
            log.info("status page: control endpoints disabled (no token configured)")

    async def stop(self) -> None:
        """Close every WebSocket (going away), then the listening sockets."""
        self._closing = True
        if self.pipeline is not None:
            self.pipeline.bus.unsubscribe(self._on_event)
        closing = [
            socket.close(code=WSCloseCode.GOING_AWAY, message=b"tradebot stopping")
            for socket in self._sockets
        ]
        if closing:  # each waits for its client's reply; a silent client is cut after 2 s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), 2)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def app(self) -> web.Application:
        """The aiohttp application (tests may serve it on their own)."""
        app = web.Application()
        r = app.router
        r.add_get("/", self.health)
        r.add_get("/dashboard", self.dashboard)
        r.add_static("/static", STATIC)
        r.add_get("/api/session/status", self.status)
        r.add_get("/api/trades", self.trades)
        r.add_get("/api/signals", self.signals)
        r.add_get("/api/decisions", self.decisions)
        r.add_get("/api/positions", self.positions)
        r.add_get("/api/statistics", self.statistics)
        r.add_get("/api/bars", self.recent_bars)
        for action in ("start", "stop", "halt", "resume"):
            r.add_post(f"/api/session/{action}", self.control)
        r.add_post("/api/settings", self.update_settings)
        r.add_get("/ws", self.websocket)
        return app

    # -- the bus side: synchronous, in the hot path: append only ---------------------------------

    def _on_event(self, event: Event) -> None:
        if event.kind is EventKind.BAR_CLOSED:
            self.bars.append(event.payload)  # bar_payload's dict, built for us
        for client in self.clients:
            client.put(event)

    # -- read-only endpoints ---------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        p = self.pipeline
        tick_age = round(time.time() - p.last_ts_ns / 1e9, 3) if p.last_ts_ns else None
        batch_age = (
            round(time.monotonic() - p.last_batch_monotonic, 3) if p.last_batch_monotonic else None
        )
        status = "stopping" if p.stop_requested else "halted" if p.risk.state.halted else "ok"
        return _json(
            {
                "status": status,
                "uptime_s": round(time.monotonic() - self.started, 3),
                "feed": p.config.feed.plugin,
                "feed_connected": bool(p.feed_connected),
                "last_tick_age_s": tick_age,
                "last_batch_age_s": batch_age,
                "version": __version__,
            }
        )

    async def dashboard(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "dashboard.html")

    async def status(self, request: web.Request) -> web.Response:
        p = self.pipeline
        state = p.regime_state
        tier = p.account.tier
        positions = list(p.ledger.open.values())
        limits = p.risk.settings
        return _json(
            {
                "symbol": p.config.symbol,
                "trading_symbol": p.account.symbol,
                "timeframe_s": p.config.timeframe_s,
                "regime": state.model_dump(mode="json") if state else None,
                "risk": {
                    **p.risk.state.to_dict(),
                    "daily_profit_target": str(limits.daily_profit_target),
                    "daily_loss_limit": str(limits.daily_loss_limit),
                    "max_position": limits.max_position,
                },
                "account": {
                    "balance": str(p.account.balance),
                    "tier": tier.model_dump(mode="json") if tier else None,
                },
                "position": sum(x.direction.sign * x.quantity for x in positions),
                "positions": [position_payload(x) for x in positions],
                "summary": p.summary.as_dict(),
                "last_price": str(p.instrument.to_decimal(p.last_price)) if p.last_price else None,
                "last_ts_ns": p.last_ts_ns or None,
                "token_configured": self.settings.token is not None,
            }
        )

    def _limit(self, request: web.Request) -> int:
        raw = request.query.get("limit", "200")
        try:
            return max(1, min(int(raw), 2000))
        except ValueError:
            raise web.HTTPBadRequest(
                text=dumps({"error": f"limit: must be a whole number, got {raw!r}"}),
                content_type="application/json",
            ) from None

    def _journal_rows(self, request: web.Request, sql: str) -> list[dict[str, Any]]:
        limit = self._limit(request)
        journal = self.pipeline.journal
        if journal is None:
            return []
        return journal.rows(sql + " LIMIT ?", (journal.run_id, limit))

    async def trades(self, request: web.Request) -> web.Response:
        sql = "SELECT * FROM trades WHERE run_id = ? ORDER BY exit_ts_ns DESC, bracket_id DESC"
        return _json(self._journal_rows(request, sql))

    async def signals(self, request: web.Request) -> web.Response:
        sql = (
            "SELECT s.*, d.approved, d.reasons FROM signals s LEFT JOIN decisions d "
            "ON d.signal_id = s.id WHERE s.run_id = ? ORDER BY s.id DESC"
        )
        rows = self._journal_rows(request, sql)
        for row in rows:
            row["reasons"] = json.loads(row["reasons"]) if row["reasons"] else []
        return _json(rows)

    async def decisions(self, request: web.Request) -> web.Response:
        sql = "SELECT * FROM decisions WHERE run_id = ? ORDER BY id DESC"
        rows = self._journal_rows(request, sql)
        for row in rows:
            row["reasons"] = json.loads(row["reasons"]) if row["reasons"] else []
        return _json(rows)

    async def positions(self, request: web.Request) -> web.Response:
        return _json([position_payload(p) for p in self.pipeline.ledger.open.values()])

    async def recent_bars(self, request: web.Request) -> web.Response:
        return _json(list(self.bars))

    async def statistics(self, request: web.Request) -> web.Response:
        journal = self.pipeline.journal
        rows = (
            journal.rows(
                "SELECT net_pnl FROM trades WHERE run_id = ? ORDER BY exit_ts_ns, bracket_id",
                (journal.run_id,),
            )
            if journal is not None
            else []
        )
        return _json(trade_statistics(r["net_pnl"] for r in rows))

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
        p = self.pipeline
        if action == "halt":
            p.halt("halted from the status page")
        elif action in ("resume", "start"):
            p.resume()
        elif action == "stop":
            p.flatten("stopped from the status page")
            p.request_stop()
        log.info("status page: session %s", action)
        return _json(
            {
                "ok": True,
                "action": action,
                "halted": p.risk.state.halted,
                "stopping": bool(p.stop_requested),
            }
        )

    async def update_settings(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = None
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
        p = self.pipeline
        limits = changes.model_dump(exclude_none=True, exclude={"symbol"})
        try:
            if limits:
                p.risk.update_settings(**limits)
            if changes.symbol:
                tier = p.account.tier
                if tier is not None:  # the tier picks the symbol: a switch would be ignored
                    return _error(
                        f"symbol: the account's tier {tier.name!r} decides the symbol "
                        f"({tier.symbol}): change account.tiers instead",
                        400,
                    )
                p.switch_symbol(changes.symbol.upper())
        except ValidationError as exc:  # the limits together (as the config validates them)
            return _error("; ".join(format_validation_error(exc, None, ())), 400)
        except (ValueError, KeyError) as exc:
            return _error(f"symbol: {exc.args[0] if exc.args else exc}", 400)
        log.info("status page: settings changed: %s", changes.model_dump(exclude_none=True))
        return _json({"ok": True, "applied": changes.model_dump(mode="json", exclude_none=True)})

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
        socket = web.WebSocketResponse(heartbeat=30)
        await socket.prepare(request)
        client = ClientQueue(self.settings.client_queue, self.settings.recent_bars)
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
        try:
            while not socket.closed:
                await client.wake.wait()
                client.wake.clear()
                for message in client.take():
                    await socket.send_str(message)
        except (ConnectionError, RuntimeError) as exc:  # the peer went away mid-send
            log.debug("status page: WebSocket send stopped: %s", exc)


@hookimpl
def register_services(register: Any) -> None:
    register(StatusPage)
