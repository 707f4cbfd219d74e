"""A loopback server that answers like Polygon's REST API: v3 trades and v2 aggregates.

Bodies have the shapes of Polygon's (and of the recorded responses in the official client's own
tests): ``{"results": [...], "status": "OK", "request_id": ..., "next_url": ...}``, where
``next_url`` is an absolute URL with an opaque base64 ``cursor``; trade records
``{"conditions", "exchange", "id", "participant_timestamp", "price", "sequence_number",
"sip_timestamp", "size", "tape"}``; aggregate responses ``{"ticker", "queryCount",
"resultsCount", "adjusted", "results": [{"v", "vw", "o", "c", "h", "l", "t", "n"}], ...}``.
Errors are ``{"status": "ERROR", "request_id": ..., "error": ...}``. Authentication is the
``Authorization: Bearer`` header the official client sends.

``script`` makes the next requests fail with the given statuses (429s carry ``Retry-After``;
:data:`STALL` answers only after ``stall_s`` seconds);
``requests`` records every request, so tests count pages and retries.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

KEY = "pg-LOOPBACKkey-0123456789"
STALL = 0  # in a script: answer this request only after ``stall_s``

ERRORS = {
    429: "You've exceeded the maximum requests per minute, please wait or upgrade your "
    "subscription to continue. https://polygon.io/pricing",
    500: "Internal server error: please retry",
    502: "Bad gateway",
    503: "Service temporarily unavailable",
}


@dataclass
class Request:
    path_qs: str
    status: int
    authorization: str


@dataclass
class FakePolygon:
    trades: list[dict[str, Any]] = field(default_factory=list)
    aggs: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 4
    agg_page_size: int = 50_000
    script: list[int] = field(default_factory=list)
    retry_after_s: str = "1"
    stall_s: float = 0.0
    requests: list[Request] = field(default_factory=list)
    base: str = ""

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._bad_request])
        app.router.add_get("/v3/trades/{ticker}", self.list_trades)
        app.router.add_get(
            "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{start}/{end}", self.list_aggs
        )
        return app

    @web.middleware
    async def _bad_request(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """A request the real API would refuse (an assertion here) is a 400, never retried."""
        try:
            return await handler(request)
        except AssertionError as exc:
            body = {"status": "ERROR", "request_id": "r-400", "error": f"bad request: {exc}"}
            return self._answer(request, body, 400)

    def paths(self, prefix: str, status: int = 200) -> list[str]:
        """The request paths (with queries) that start with ``prefix`` and got ``status``."""
        return [
            r.path_qs for r in self.requests if r.path_qs.startswith(prefix) and r.status == status
        ]

    def _answer(self, request: web.Request, body: dict[str, Any], status: int) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.requests.append(Request(request.path_qs, status, auth))
        headers = {"Retry-After": self.retry_after_s} if status == 429 else None
        return web.json_response(body, status=status, headers=headers)

    def _refusal(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            body = {"status": "ERROR", "request_id": "r-auth", "error": "Unknown API Key"}
            return self._answer(request, body, 401)
        if self.script and self.script[0] == STALL:
            self.script.pop(0)
            return None
        if self.script:
            status = self.script.pop(0)
            body = {"status": "ERROR", "request_id": f"r-{status}", "error": ERRORS[status]}
            return self._answer(request, body, status)
        return None

    @staticmethod
    def _state(request: web.Request, first: dict[str, Any]) -> dict[str, Any]:
        """The query of this page: decoded from the cursor, or ``first`` (offset 0)."""
        if "cursor" not in request.query:
            return {**first, "offset": 0}
        assert set(request.query) == {"cursor"}, "a next_url needs no other parameter"
        return json.loads(base64.urlsafe_b64decode(request.query["cursor"]))

    def _page(
        self, request: web.Request, rows: list[dict[str, Any]], size: int, state: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of ``rows``; the opaque cursor carries the query, as Polygon's does."""
        offset = state["offset"]
        page = rows[offset : offset + size]
        if offset + size >= len(rows):
            return page, None
        cursor = base64.urlsafe_b64encode(json.dumps({**state, "offset": offset + size}).encode())
        return page, f"{self.base}{request.path}?cursor={cursor.decode()}"

    async def list_trades(self, request: web.Request) -> web.Response:
        stalled = bool(self.script) and self.script[0] == STALL
        refused = self._refusal(request)
        if stalled:  # the client should have given up by now
            self.requests.append(Request(request.path_qs, STALL, ""))
            await asyncio.sleep(self.stall_s)
            return web.json_response({"status": "ERROR", "error": "too late"}, status=504)
        if refused is not None:
            return refused
        q = request.query
        if "cursor" not in q:
            assert (q["sort"], q["order"]) == ("timestamp", "asc"), dict(q)
            assert int(q["limit"]) >= 1
        first = {"gte": int(q.get("timestamp.gte", 0)), "lt": int(q.get("timestamp.lt", 0))}
        state = self._state(request, first)
        window = [
            t
            for t in self.trades
            if t.get("sip_timestamp") is None or state["gte"] <= t["sip_timestamp"] < state["lt"]
        ]
        page, next_url = self._page(request, window, self.page_size, state)
        body: dict[str, Any] = {
            "results": page,
            "status": "OK",
            "request_id": f"t{len(self.requests)}",
        }
        if next_url:
            body["next_url"] = next_url
        return self._answer(request, body, 200)

    async def list_aggs(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        info = request.match_info
        assert (info["multiplier"], info["timespan"]) == ("1", "minute")
        start, end = int(info["start"]), int(info["end"])
        if "cursor" not in request.query:
            assert request.query.get("adjusted") == "false", dict(request.query)
        rows = [a for a in self.aggs if start <= a["t"] <= end]
        state = self._state(request, {})
        page, next_url = self._page(request, rows, self.agg_page_size, state)
        body: dict[str, Any] = {
            "ticker": info["ticker"],
            "queryCount": len(page),
            "resultsCount": len(page),
            "adjusted": False,
            "results": page,
            "status": "OK",
            "request_id": f"a{len(self.requests)}",
            "count": len(page),
        }
        if next_url:
            body["next_url"] = next_url
        return self._answer(request, body, 200)
