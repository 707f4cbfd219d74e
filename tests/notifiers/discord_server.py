"""A loopback server that answers like Discord's webhook endpoint.

``POST /api/webhooks/{id}/{token}``: 204 on success (200 with the message when ``?wait=true``),
400 ``Invalid Form Body`` when a limit is broken, 401 for a wrong token, 404 for a deleted webhook,
and whatever ``script`` says first (e.g. ``[429, 500]``), with Discord's JSON bodies and headers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

LIMITS = {
    "title": 256,
    "description": 4096,
    "field_name": 256,
    "field_value": 1024,
    "fields": 25,
    "embeds": 10,
    "total": 6000,
    "content": 2000,
}


def limit_errors(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be an object"]
    errors = []
    embeds = body.get("embeds", [])
    if len(body.get("content", "")) > LIMITS["content"]:
        errors.append("content too long")
    if len(embeds) > LIMITS["embeds"]:
        errors.append("too many embeds")
    total = 0
    for embed in embeds:
        title, description = embed.get("title", ""), embed.get("description", "")
        fields = embed.get("fields", [])
        if len(title) > LIMITS["title"]:
            errors.append("title too long")
        if len(description) > LIMITS["description"]:
            errors.append("description too long")
        if len(fields) > LIMITS["fields"]:
            errors.append("too many fields")
        for f in fields:
            if len(f["name"]) > LIMITS["field_name"] or len(f["value"]) > LIMITS["field_value"]:
                errors.append("field too long")
            if not f["value"]:
                errors.append("empty field value")
        total += (
            len(title) + len(description) + sum(len(f["name"]) + len(f["value"]) for f in fields)
        )
    if total > LIMITS["total"]:
        errors.append("embeds over 6000 characters")
    return errors


@dataclass
class FakeDiscord:
    webhook_id: str = "1234567890"
    token: str = "s3cr3t-t0ken-abcdef"
    script: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    deleted: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    retry_after: float = 0.05

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/webhooks/{id}/{token}", self.handle)
        return app

    def url(self, server: Any) -> str:
        return f"http://127.0.0.1:{server.port}/api/webhooks/{self.webhook_id}/{self.token}"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"message": "Invalid Webhook Token", "code": 50027}, status=401
            )
        if self.deleted:
            return web.json_response({"message": "Unknown Webhook", "code": 10015}, status=404)
        if self.script:
            status = self.script.pop(0)
            if status == 429:
                return web.json_response(
                    {
                        "message": "You are being rate limited.",
                        "retry_after": self.retry_after,
                        "global": False,
                    },
                    status=429,
                    headers={"Retry-After": "1", "X-RateLimit-Reset-After": str(self.retry_after)},
                )
            return web.json_response({"message": "Internal Server Error", "code": 0}, status=status)
        body = await request.json()
        errors = limit_errors(body)
        if errors:
            return web.json_response(
                {"message": "Invalid Form Body", "code": 50035, "errors": errors}, status=400
            )
        self.received.append(body)
        if request.query.get("wait") == "true":
            return web.json_response({"id": str(len(self.received)), **body})
        return web.Response(status=204)
