"""The ``status_page`` service: a REST API, a WebSocket and a dashboard, served by aiohttp.

It runs in the pipeline's event loop and only observes: its bus callbacks append to per-client
queues (bounded: a slow browser loses old bar updates, never slows the pipeline).

| route | what |
|---|---|
| ``GET /`` | health: status, uptime, feed connected, last tick age |
| ``GET /dashboard`` | the dashboard (static files, no CDN: works offline) |
| ``GET /api/session/status`` | regime, indicators, risk state, account, run summary |
| ``GET /api/trades``, ``signals``, ``positions``, ``statistics`` | from the journal |
| ``POST /api/session/start|stop|halt|resume`` | control (bearer token) |
| ``POST /api/settings`` | profit target, loss limit, max position, symbol (bearer token) |
| ``GET /ws`` | bars, signals, decisions, orders, fills, trades, regime and state, as they happen |

Control semantics: ``halt`` stops new entries from the next bar (open positions keep their
brackets); ``resume`` and ``start`` allow entries again; ``stop`` flattens and ends the run.

Safe by default: it binds 127.0.0.1; without a configured token every control endpoint answers
403 (never open); the WebSocket only accepts its own origin (or a token); no response carries a
secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import time
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from tradebot_core import __version__, hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.config import format_validation_error
from tradebot_core.pipeline import position_payload
from tradebot_core.types import Event, EventKind

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"

STREAMED = {
    EventKind.BAR_CLOSED: "bar",
    EventKind.SIGNAL: "signal",
    EventKind.ROUTE_DECISION: "decision",
    EventKind.ORDER: "order",
    EventKind.FILL: "fill",
    EventKind.TRADE_OPENED: "trade_opened",
    EventKind.TRADE_CLOSED: "trade_closed",
    EventKind.REGIME_CHANGED: "regime",
    EventKind.SESSION_STATE: "state",
    EventKind.FEED_STATUS: "feed",
    EventKind.AUTO_FLATTEN: "state",
    EventKind.TIER_CHANGE: "state",
    EventKind.DAILY_DIGEST: "digest",
}


class StatusPageSettings(PluginSettings):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    token: SecretStr | None = None
    """Bearer token for the control endpoints, e.g. ``${TRADEBOT_STATUS_TOKEN}``; none: no
    control at all."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Origins allowed on the WebSocket besides the page's own."""
    recent_bars: int = Field(default=30, ge=1, le=500)
    client_queue: int = Field(default=2000, ge=10)


class SessionSettings(BaseModel):
    """What ``POST /api/settings`` may change in a running session."""

    model_config = ConfigDict(extra="forbid")

    daily_profit_target: Decimal | None = Field(default=None, ge=0)
    daily_loss_limit: Decimal | None = Field(default=None, le=0)
    max_position: int | None = Field(default=None, ge=1)
    symbol: str | None = None


class _Client:
    def __init__(self, size: int) -> None:
        self.queue: deque[str] = deque(maxlen=size)
        self.wake = asyncio.Event()


def _clean(data: Any) -> Any:
    """JSON-safe: NaN and infinities (indicators warming up) become null, as browsers need."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _clean(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_clean(v) for v in data]
    return data


def _dumps(data: Any) -> str:
    return json.dumps(_clean(data), default=str, allow_nan=False)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


class StatusPage:
    name = "status_page"
    Settings = StatusPageSettings

    def __init__(self, settings: StatusPageSettings, context: PluginContext | None) -> None:
        self.settings = settings
        self.pipeline: Any = None
        self.port = settings.port
        self.started = time.monotonic()
        self.bars: deque[dict[str, Any]] = deque(maxlen=settings.recent_bars)
        self.clients: set[_Client] = set()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        pipeline.bus.subscribe(self._on_event, list(STREAMED))
        app = self.app()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("status page on http://%s:%s/dashboard", self.settings.host, self.port)

    async def stop(self) -> None:
        for socket in list(self._sockets):
            with contextlib.suppress(Exception):
                await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/", self.health)
        r.add_get("/dashboard", self.dashboard)
        r.add_static("/static", STATIC)
        r.add_get("/api/session/status", self.status)
        r.add_get("/api/trades", self.trades)
        r.add_get("/api/signals", self.signals)
        r.add_get("/api/positions", self.positions)
        r.add_get("/api/statistics", self.statistics)
        r.add_get("/api/bars", self.recent_bars)
        for action in ("start", "stop", "halt", "resume"):
            r.add_post(f"/api/session/{action}", self.control)
        r.add_post("/api/settings", self.update_settings)
        r.add_get("/ws", self.websocket)
        return app

    # -- the bus side: sync, never blocks ------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        data = event.payload_dict()
        if event.kind is EventKind.BAR_CLOSED:
            self.bars.append(data)
        message = _dumps(
            {
                "type": STREAMED[event.kind],
                "kind": event.kind.value,
                "ts_ns": event.ts_ns,
                "message": event.message,
                "data": data,
            }
        )
        for client in self.clients:
            client.queue.append(message)  # bounded: the oldest go first
            client.wake.set()

    # -- read-only endpoints ---------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        p = self.pipeline
        age = None  # wall-clock seconds since the last tick batch arrived (replays too)
        if p.last_batch_monotonic:
            age = round(time.monotonic() - p.last_batch_monotonic, 3)
        return _json(
            {
                "status": "halted" if p.risk.state.halted else "ok",
                "uptime_s": round(time.monotonic() - self.started, 3),
                "feed": p.config.feed.plugin,
                "feed_connected": bool(p.feed_connected),
                "last_tick_age_s": age,
                "version": __version__,
            }
        )

    async def dashboard(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "dashboard.html")

    async def status(self, request: web.Request) -> web.Response:
        p = self.pipeline
        state = p.regime_state
        tier = p.account.tier
        open_positions = list(p.ledger.open.values())
        return _json(
            {
                "symbol": p.config.symbol,
                "trading_symbol": p.account.symbol,
                "regime": state.model_dump(mode="json") if state else None,
                "risk": {
                    **p.risk.state.to_dict(),
                    "daily_profit_target": str(p.risk.settings.daily_profit_target),
                    "daily_loss_limit": str(p.risk.settings.daily_loss_limit),
                    "max_position": p.risk.settings.max_position,
                },
                "account": {
                    "balance": str(p.account.balance),
                    "tier": tier.model_dump(mode="json") if tier else None,
                },
                "position": sum(x.direction.sign * x.quantity for x in open_positions),
                "summary": p.summary.as_dict(),
                "last_price": str(p.instrument.to_decimal(p.last_price)) if p.last_price else None,
            }
        )

    def _journal_rows(self, request: web.Request, sql: str) -> list[dict[str, Any]]:
        journal = self.pipeline.journal
        if journal is None:
            return []
        limit = max(1, min(int(request.query.get("limit", "200")), 2000))
        return journal.rows(sql + " LIMIT ?", (journal.run_id, limit))

    async def trades(self, request: web.Request) -> web.Response:
        return _json(
            self._journal_rows(
                request, "SELECT * FROM trades WHERE run_id = ? ORDER BY exit_ts_ns DESC"
            )
        )

    async def signals(self, request: web.Request) -> web.Response:
        return _json(
            self._journal_rows(
                request,
                "SELECT s.*, d.approved, d.reasons FROM signals s LEFT JOIN decisions d "
                "ON d.signal_id = s.id WHERE s.run_id = ? ORDER BY s.id DESC",
            )
        )

    async def positions(self, request: web.Request) -> web.Response:
        return _json([position_payload(p) for p in self.pipeline.ledger.open.values()])

    async def recent_bars(self, request: web.Request) -> web.Response:
        return _json(list(self.bars))

    async def statistics(self, request: web.Request) -> web.Response:
        journal = self.pipeline.journal
        rows = (
            journal.rows(
                "SELECT net_pnl FROM trades WHERE run_id = ? ORDER BY exit_ts_ns", (journal.run_id,)
            )
            if journal
            else []
        )
        nets = [Decimal(r["net_pnl"]) for r in rows]
        wins = [n for n in nets if n > 0]
        losses = [n for n in nets if n < 0]
        peak = balance = Decimal("0")
        drawdown = Decimal("0")
        for net in nets:
            balance += net
            peak = max(peak, balance)
            drawdown = max(drawdown, peak - balance)
        return _json(
            {
                "trades": len(nets),
                "wins": len(wins),
                "win_rate": round(len(wins) / len(nets), 4) if nets else None,
                "net_pnl": str(sum(nets, Decimal("0"))),
                "profit_factor": str(round(sum(wins) / -sum(losses), 2)) if losses else None,
                "max_drawdown": str(drawdown),
            }
        )

    # -- control -------------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> web.Response | None:
        token = self.settings.token
        if token is None or not token.get_secret_value():
            return _json(
                {
                    "error": "control is disabled: set services.status_page.token "
                    "(e.g. ${TRADEBOT_STATUS_TOKEN}) to enable it"
                },
                403,
            )
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _json({"error": "missing or wrong bearer token"}, 401)
        return None

    async def control(self, request: web.Request) -> web.Response:
        refused = self._authorized(request)
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
        return _json({"ok": True, "action": action, "halted": p.risk.state.halted})

    async def update_settings(self, request: web.Request) -> web.Response:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
            changes = SessionSettings.model_validate(body)
        except json.JSONDecodeError:
            return _json({"error": "the body must be JSON"}, 400)
        except ValidationError as exc:
            return _json({"error": "; ".join(format_validation_error(exc, None, ()))}, 400)
        p = self.pipeline
        limits = changes.model_dump(exclude_none=True, exclude={"symbol"})
        try:
            if limits:
                p.risk.update_settings(**limits)
            if changes.symbol:
                p.switch_symbol(changes.symbol)
        except (ValueError, KeyError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            return _json({"error": str(message)}, 400)
        return _json({"ok": True, "applied": changes.model_dump(mode="json", exclude_none=True)})

    # -- the WebSocket -------------------------------------------------------------------------

    def _origin_ok(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:  # not a browser: only with the token
            return self._authorized(request) is None
        own = {
            f"http://{request.host}",
            f"http://127.0.0.1:{self.port}",
            f"http://localhost:{self.port}",
        }
        return origin in own or origin in self.settings.allowed_origins

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_ok(request):
            return _json({"error": "origin not allowed"}, 403)
        socket = web.WebSocketResponse(heartbeat=30)
        await socket.prepare(request)
        client = _Client(self.settings.client_queue)
        self.clients.add(client)
        self._sockets.add(socket)
        reader = asyncio.create_task(self._read(socket))
        try:
            while not socket.closed:
                await client.wake.wait()
                client.wake.clear()
                while client.queue:
                    await socket.send_str(client.queue.popleft())
                if reader.done():
                    break
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            reader.cancel()
            self.clients.discard(client)
            self._sockets.discard(socket)
        return socket

    async def _read(self, socket: web.WebSocketResponse) -> None:
        async for message in socket:  # the page sends nothing; this notices a close
            if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
        for client in self.clients:
            client.wake.set()


@hookimpl
def register_services(register: Any) -> None:
    register(StatusPage)
