"""A loopback server that answers like Polygon's REST API (v3 trades, v2 aggregates).

Bodies have Polygon's shapes: ``{"results": [...], "status": "OK", "request_id": ...,
"next_url": ...}`` with trade records ``{"conditions", "exchange", "id",
"participant_timestamp", "price", "sequence_number", "sip_timestamp", "size", "tape"}`` and
aggregate records ``{"v", "vw", "o", "c", "h", "l", "t", "n"}``. Authentication is the
``Authorization: Bearer`` header the official client sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

KEY = "pg-LOOPBACKkey-0123456789"


@dataclass
class FakePolygon:
    trades: list[dict[str, Any]] = field(default_factory=list)
    aggs: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 4
    script: list[int] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    base: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v3/trades/{ticker}", self.list_trades)
        app.router.add_get("/v2/aggs/ticker/{ticker}/range/{m}/{span}/{start}/{end}", self.aggs_)
        return app

    def _refuse(self, request: web.Request) -> web.Response | None:
        self.requests.append(request.path_qs)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return web.json_response(
                {"status": "ERROR", "request_id": "r1", "error": "Unknown API Key"}, status=401
            )
        if self.script:
            status = self.script.pop(0)
            if status == 429:
                return web.json_response(
                    {
                        "status": "ERROR",
                        "request_id": "r2",
                        "error": "You've exceeded the maximum requests per minute.",
                    },
                    status=429,
                    headers={"Retry-After": "0"},
                )
            return web.json_response(
                {"status": "ERROR", "request_id": "r3", "error": "internal error"}, status=status
            )
        return None

    async def list_trades(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        q = request.query
        if "cursor" in q:
            offset = int(q["cursor"])
        else:
            offset = 0
            gte, lt = int(q["timestamp.gte"]), int(q["timestamp.lt"])
            self._window = [t for t in self.trades if gte <= t["sip_timestamp"] < lt]
        page = self._window[offset : offset + self.page_size]
        body: dict[str, Any] = {"results": page, "status": "OK", "request_id": f"p{offset}"}
        if offset + self.page_size < len(self._window):
            body["next_url"] = (
                f"{self.base}/v3/trades/{request.match_info['ticker']}"
                f"?cursor={offset + self.page_size}"
            )
        return web.json_response(body)

    async def aggs_(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        start, end = int(request.match_info["start"]), int(request.match_info["end"])
        results = [a for a in self.aggs if start <= a["t"] <= end]
        return web.json_response(
            {
                "ticker": request.match_info["ticker"],
                "queryCount": len(results),
                "resultsCount": len(results),
                "adjusted": True,
                "results": results,
                "status": "OK",
                "request_id": "a1",
                "count": len(results),
            }
        )
