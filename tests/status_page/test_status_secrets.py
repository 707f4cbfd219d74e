"""No response of the status page carries a secret: the token, a vendor API key."""

from __future__ import annotations

import asyncio

import aiohttp
from status_page.queued import API_KEY, AUTH, TOKEN, feed, minutes

GETS = [
    "/",
    "/dashboard",
    "/static/dashboard.html",
    "/static/dashboard.js",
    "/static/dashboard.css",
    "/api/session/status",
    "/api/trades",
    "/api/signals",
    "/api/decisions",
    "/api/positions",
    "/api/statistics",
    "/api/bars",
    "/api/trades?limit=x",
    "/nowhere",
]


async def test_no_response_carries_a_secret(live):
    assert live.pipeline.config.feed.settings_for("databento")["api_key"] == API_KEY
    bodies: list[str] = []
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
        http.ws_connect(live.ws_url, headers=AUTH) as socket,
    ):
        await feed(minutes(0, 20), live.pipeline)
        for path in GETS:
            async with http.get(live.url + path) as response:
                assert response.status in (200, 400, 404), path
                bodies.append(await response.text())
                bodies.append(str(response.headers))
        posts = [
            ("/api/session/halt", {}),
            ("/api/session/halt", AUTH),
            ("/api/session/halt", {"Authorization": "Bearer " + TOKEN[:-1]}),
            ("/api/settings", AUTH),
        ]
        for path, headers in posts:
            async with http.post(live.url + path, headers=headers, json={"token": TOKEN}) as r:
                bodies.append(await r.text())
        while True:
            try:
                bodies.append(await asyncio.wait_for(socket.receive_str(), 0.3))
            except TimeoutError:
                break
    assert len(bodies) > 30
    leaks = [b[:200] for b in bodies if TOKEN in b or API_KEY in b or "SECRET" in b]
    assert not leaks
