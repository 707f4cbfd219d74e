"""Hostile clients: malformed bodies, headers and query strings on every route of the page.

Hypothesis draws the requests; they go to a live page (the ``live`` fixture) from a worker thread
while the test's event loop serves them. Whatever arrives: never a 5xx, every error a JSON
``{"error": ...}``, and without the token nothing changes (halt, stop, limits, symbol).
"""

from __future__ import annotations

import asyncio
import json
import string
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from status_page.queued import TOKEN
from yarl import URL

EXAMPLES = 300  # per test: about 4 s here (~80 requests a second on a shared core)
ALLOWED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis/ in the work tree
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes | None
    chunked: bool
    with_token: bool
    notes: list[str] = field(default_factory=list)


def endpoints(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route of the page's router (a static route: one of its files)."""
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical
        if "{" in path or path == "/static":  # the static files: a real one and made-up ones
            path = "/static/dashboard.js"
        found.add((route.method, path))
    return sorted(found)


def nested(depth: int, opener: str) -> bytes:
    closer = "]" if opener == "[" else "}"
    return (opener * depth + "1" + closer * depth).encode()


HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80
).map(str.strip)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["-1e999999999", "1e-999999", "NaN", "-Infinity", "  12 ", "0x10", "-0"])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
SETTINGS_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "daily_profit_target": JSON_VALUES,
        "daily_loss_limit": JSON_VALUES,
        "max_position": JSON_VALUES,
        "symbol": st.sampled_from(["ES", "MES", "mes", "CL", "ZZZ", "", "E" * 13]) | JSON_VALUES,
        "token": st.just(TOKEN),
        "leverage": JSON_VALUES,
    },
)
BODIES = st.one_of(
    st.none(),
    st.binary(max_size=300),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    SETTINGS_BODIES.map(lambda v: json.dumps(v).encode()),
    st.builds(nested, st.integers(15, 12_000), st.sampled_from(["[", '{"a":'])),
    st.integers(64 * 1024 - 64, 64 * 1024 + 64).map(
        lambda n: b'{"max_position": 2, "pad": "' + b"x" * n + b'"}'
    ),
    st.sampled_from(
        [
            b'{"max_position": NaN}',
            b'{"max_position": 1e999}',
            b'{"max_position": ' + b"9" * 5000 + b"}",
            b'{"daily_loss_limit": "-1e999999999"}',
            b"\xff\xfe\x00{",
            '{"symbol": "ES"}'.encode("utf-16"),
            b'{"max_position": 1, "max_position": 2}',
            b"\x1f\x8b\x08\x00garbage",
            b"null",
            b"",
        ]
    ),
)
QUERY_TEXT = st.text(
    alphabet=string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:@/?", max_size=60
)
QUERIES = st.one_of(
    st.just(""),
    QUERY_TEXT,
    st.one_of(
        st.integers(-(10**30), 10**30).map(str),
        QUERY_TEXT,
        st.just("9" * 5000),
        st.sampled_from(["", "%", "%zz", "%00", "1.5", "1e3", "-0", "%EF%BC%91"]),
    ).map(lambda v: "limit=" + v),
    st.lists(QUERY_TEXT, max_size=5).map(lambda parts: "&".join(f"limit={p}" for p in parts)),
)
OTHER_HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "Content-Type",
            "Content-Encoding",
            "Accept",
            "Accept-Encoding",
            "Cookie",
            "Origin",
            "Referer",
            "X-Forwarded-For",
            "X-Forwarded-Host",
            "Sec-WebSocket-Key",
            "Expect",
        ]
    ),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=latin-1",
            "text/plain",
            "multipart/form-data; boundary=x",
            "gzip",
            "deflate",
            "br",
            "identity",
            "null",
            "http://evil.example",
            "100-continue",
        ]
    )
    | HEADER_TEXT,
    max_size=4,
)


@st.composite
def requests(draw: st.DrawFn, routes: list[tuple[str, str]], port: int) -> Request:
    method, path = draw(st.sampled_from(routes))
    method = draw(
        st.sampled_from([method] * 6 + ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
    )
    if path.startswith("/static/") and draw(st.booleans()):
        path = "/static/" + draw(
            st.sampled_from(
                ["../status_page.py", "%2e%2e/status_page.py", "..%2f..%2fpyproject.toml"]
            )
            | st.text(alphabet=string.ascii_letters + string.digits + "._-%", max_size=30)
        )
    # with the token, stop would end the run (and the page): test_status_control covers it
    with_token = draw(st.booleans()) and path != "/api/session/stop"
    headers = draw(OTHER_HEADERS)
    if with_token:
        headers["Authorization"] = f"Bearer {TOKEN}"
    else:
        wrong = draw(
            st.sampled_from(
                [None, TOKEN, "Bearer", "Bearer ", f"bearer {TOKEN}", f"Bearer {TOKEN[:-1]}"]
            )
            | HEADER_TEXT.map(lambda t: "Bearer " + t)
            | HEADER_TEXT
        )
        if wrong is not None:
            headers["Authorization"] = wrong
    host = draw(
        st.sampled_from([None, "localhost", f"[::1]:{port}", "127.0.0.1", "evil.example"])
        | HEADER_TEXT
    )
    if host is not None:
        headers["Host"] = host
    return Request(
        method=method,
        path=path,
        query=draw(QUERIES),
        headers=headers,
        body=draw(BODIES),
        chunked=draw(st.booleans()),
        with_token=with_token,
    )


def state(pipeline: Any) -> tuple:
    """What a request without the token must never change."""
    return (
        pipeline.risk.state.halted,
        bool(pipeline.stop_requested),
        pipeline.risk.settings.model_dump(),
        pipeline.account.symbol,
        pipeline.account.default_symbol,
    )


async def send(http: aiohttp.ClientSession, base: str, request: Request) -> tuple[int, str, str]:
    url = URL(base + request.path + ("?" + request.query if request.query else ""), encoded=True)
    data: Any = request.body
    if request.chunked and request.body is not None:
        body = request.body

        async def pieces():
            for start in range(0, len(body), 8192):
                yield body[start : start + 8192]

        data = pieces()
    try:
        async with http.request(
            request.method,
            url,
            headers=request.headers,
            data=data,
            allow_redirects=False,
            skip_auto_headers=["Content-Type"],
        ) as response:
            return response.status, response.headers.get("Content-Type", ""), await response.text()
    except aiohttp.ClientResponseError as exc:  # aiohttp's parser answering a HEAD with a body
        return exc.status, "text/plain", exc.message


async def fuzz(live: Any, token_configured: bool) -> int:
    """Run the examples against ``live``; returns how many requests were sent."""
    loop = asyncio.get_running_loop()
    routes = endpoints(live.page._runner.app)
    assert ("POST", "/api/settings") in routes and ("GET", "/ws") in routes
    assert {p for m, p in routes if m == "POST"} >= {
        f"/api/session/{a}" for a in ("start", "stop", "halt", "resume")
    }
    pipeline = live.pipeline
    sent = 0

    async def one(http: aiohttp.ClientSession, request: Request) -> tuple[tuple, Any, tuple]:
        before = state(pipeline)
        answer = await send(http, live.url, request)
        return before, answer, state(pipeline)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:

        @ALLOWED
        @given(request=requests(routes, live.page.port))
        def check(request: Request) -> None:
            nonlocal sent
            before, (status, content_type, text), after = asyncio.run_coroutine_threadsafe(
                one(http, request), loop
            ).result(20)
            sent += 1
            assert status < 500, (status, text[:300])
            if status >= 400 and request.method != "HEAD":
                assert "Traceback" not in text
                if content_type.startswith("application/json"):
                    error = json.loads(text)["error"]
                    assert isinstance(error, str) and error
                else:  # aiohttp's own answers, before the app: its HTTP parser refusing the
                    # request (400), an unknown Expect on a path or method the page lacks (417)
                    assert content_type.startswith("text/plain"), (status, text[:300])
                    assert status in (400, 417), (status, text[:300])
            if not (request.with_token and token_configured):
                assert after == before, (status, text[:300])
            if (
                status == 200
                and request.path.startswith("/api/session/")
                and request.method == "POST"
            ):
                assert request.with_token

        await asyncio.to_thread(check)
    return sent


@pytest.mark.parametrize("token", [True, False], ids=["token-configured", "no-token"])
async def test_no_request_breaks_the_page_or_changes_state_without_the_token(start_live, token):
    live = await start_live(f"{{port: 0, token: {TOKEN}}}" if token else "{port: 0}")
    sent = await fuzz(live, token)
    assert sent >= EXAMPLES // 2
    assert not live.page.clients  # no WebSocket left behind
    if not token:
        assert not live.pipeline.risk.state.halted and not live.pipeline.stop_requested
    # the page still answers
    async with aiohttp.ClientSession() as http, http.get(live.url + "/") as response:
        assert response.status == 200


async def test_a_foreign_host_gets_403_on_rest(live):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for method, path in [
            ("GET", "/"),
            ("GET", "/api/session/status"),
            ("GET", "/api/trades"),
            ("POST", "/api/session/halt"),
            ("POST", "/api/settings"),
        ]:
            headers = {"Host": "evil.example", "Authorization": f"Bearer {TOKEN}"}
            async with http.request(method, live.url + path, headers=headers, json={}) as r:
                assert r.status == 403, path
                assert "evil.example" in (await r.json())["error"]
    assert not live.pipeline.risk.state.halted


async def test_a_foreign_host_gets_403_on_the_websocket_upgrade(live):
    """Even with the page's own Origin and the token: the Host names another site."""
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(
                live.ws_url,
                headers={
                    "Host": "evil.example",
                    "Origin": live.url,
                    "Authorization": f"Bearer {TOKEN}",
                },
            )
    assert refused.value.status == 403
    assert not live.page.clients
