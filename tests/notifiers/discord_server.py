"""A loopback server that answers like Discord's Execute Webhook endpoint.

``POST /api/webhooks/{id}/{token}`` with a JSON body:

* 204 No Content on success, or 200 with the created message when ``?wait=true``;
* 400 ``Invalid Form Body`` (code 50035) with the broken limits when the shape or a limit is wrong
  (title 256, description 4096, field name 256 / value 1024, footer 2048, author 256, 25 fields,
  10 embeds, 6000 characters across the embeds, content 2000), and 400 ``Cannot send an empty
  message`` (50006) without content or embeds;
* 401 ``Invalid Webhook Token`` (50027) for a wrong token, 404 ``Unknown Webhook`` (10015) once
  ``deleted``;
* a rate-limit bucket like Discord's when ``bucket_size`` is set: every answer carries
  ``X-RateLimit-Limit / -Remaining / -Reset-After / -Bucket``, and a request over the bucket gets
  429 ``{"message": "You are being rate limited.", "retry_after": s, "global": false}`` with
  ``Retry-After`` (whole seconds, rounded up) and ``X-RateLimit-Scope``;
* whatever ``script`` lists first (429 as above with ``retry_after``, or a 5xx), one entry per
  request.

Each request is logged in ``log`` as ``(monotonic time, status)``.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

LIMITS = {
    "title": 256,
    "description": 4096,
    "field_name": 256,
    "field_value": 1024,
    "footer": 2048,
    "author": 256,
    "fields": 25,
    "embeds": 10,
    "total": 6000,
    "content": 2000,
    "username": 80,
}


def limit_errors(body: Any) -> list[str]:
    """What Discord would refuse in a webhook body (empty when it is fine)."""
    if not isinstance(body, dict):
        return ["body must be an object"]
    errors = []
    content = body.get("content", "")
    embeds = body.get("embeds", [])
    if not isinstance(content, str) or not isinstance(embeds, list):
        return ["content must be a string and embeds a list"]
    if len(content) > LIMITS["content"]:
        errors.append("content too long")
    if len(embeds) > LIMITS["embeds"]:
        errors.append("too many embeds")
    if not 1 <= len(body.get("username", "x")) <= LIMITS["username"]:
        errors.append("username length")
    total = 0
    for embed in embeds:
        if not isinstance(embed, dict):
            errors.append("embed must be an object")
            continue
        title, description = embed.get("title", ""), embed.get("description", "")
        footer = (embed.get("footer") or {}).get("text", "")
        author = (embed.get("author") or {}).get("name", "")
        fields = embed.get("fields", [])
        if not isinstance(embed.get("color", 0), int):
            errors.append("color must be an integer")
        for name, value in (
            ("title", title),
            ("description", description),
            ("footer", footer),
            ("author", author),
        ):
            if not isinstance(value, str) or len(value) > LIMITS[name]:
                errors.append(f"{name} too long")
        if len(fields) > LIMITS["fields"]:
            errors.append("too many fields")
        for f in fields:
            name, value = f.get("name"), f.get("value")
            if not isinstance(name, str) or not isinstance(value, str) or not name or not value:
                errors.append("field name and value must be non-empty strings")
                continue
            if len(name) > LIMITS["field_name"] or len(value) > LIMITS["field_value"]:
                errors.append("field too long")
        total += (
            len(title)
            + len(description)
            + len(footer)
            + len(author)
            + sum(len(str(f.get("name", ""))) + len(str(f.get("value", ""))) for f in fields)
        )
    if total > LIMITS["total"]:
        errors.append("embeds over 6000 characters")
    return errors


@dataclass
class FakeDiscord:
    """The webhook's state: what it received, how it answers."""

    webhook_id: str = "1234567890"
    token: str = "s3cr3t-t0ken-abcdef"
    script: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    deleted: bool = False
    retry_after: float = 0.05
    bucket_size: int | None = None
    bucket_window_s: float = 0.3
    received: list[dict[str, Any]] = field(default_factory=list)
    log: list[tuple[float, int]] = field(default_factory=list)
    _bucket_start: float = 0.0
    _bucket_used: int = 0

    @property
    def requests(self) -> int:
        return len(self.log)

    def statuses(self) -> list[int]:
        return [status for _, status in self.log]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/webhooks/{id}/{token}", self.handle)
        return app

    def url(self, server: Any) -> str:
        return f"http://127.0.0.1:{server.port}/api/webhooks/{self.webhook_id}/{self.token}"

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        response = await self._answer(request, arrived)
        self.log.append((arrived, response.status))
        return response

    async def _answer(self, request: web.Request, now: float) -> web.Response:
        if request.match_info["id"] != self.webhook_id or self.deleted:
            return _error(404, "Unknown Webhook", 10015)
        if request.match_info["token"] != self.token:
            return _error(401, "Invalid Webhook Token", 50027)
        headers = self._bucket_headers(now)
        if self.script:
            status = self.script.pop(0)
            if status == 429:
                return self._rate_limited(self.retry_after)
            return _error(status, "Internal Server Error", 0)
        if headers is None:
            return self._rate_limited(self._bucket_start + self.bucket_window_s - now)
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "The request body contains invalid JSON.", 50109)
        if not body.get("content") and not body.get("embeds"):
            return _error(400, "Cannot send an empty message", 50006)
        errors = limit_errors(body)
        if errors:
            return web.json_response(
                {"message": "Invalid Form Body", "code": 50035, "errors": errors},
                status=400,
                headers=headers,
            )
        self.received.append(body)
        if request.query.get("wait") == "true":
            return web.json_response({"id": str(len(self.received)), **body}, headers=headers)
        return web.Response(status=204, headers=headers)

    def _bucket_headers(self, now: float) -> dict[str, str] | None:
        """Count the request in the bucket: its headers, or None when it is over."""
        if self.bucket_size is None:
            return {}
        if now - self._bucket_start >= self.bucket_window_s:
            self._bucket_start, self._bucket_used = now, 0
        if self._bucket_used >= self.bucket_size:
            return None
        self._bucket_used += 1
        reset_after = self._bucket_start + self.bucket_window_s - now
        return {
            "X-RateLimit-Limit": str(self.bucket_size),
            "X-RateLimit-Remaining": str(self.bucket_size - self._bucket_used),
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": "webhook-bucket",
        }

    def _rate_limited(self, retry_after: float) -> web.Response:
        return web.json_response(
            {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
            status=429,
            headers={
                "Retry-After": str(math.ceil(retry_after)),
                "X-RateLimit-Limit": str(self.bucket_size or 5),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                "X-RateLimit-Scope": "user",
            },
        )


def _error(status: int, message: str, code: int) -> web.Response:
    return web.json_response({"message": message, "code": code}, status=status)
