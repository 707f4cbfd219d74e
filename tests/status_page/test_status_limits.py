"""Hostile input: the Host check, body size and JSON nesting limits, errors always JSON."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
from status_page.queued import AUTH, TOKEN
from tradebot_plugins.services.status_page import StatusPageSettings, json_depth

from tradebot_core.config import ConfigError


async def request(
    method: str, url: str, headers: dict | None = None, data: object = None, **kw
) -> tuple[int, aiohttp.typedefs.LooseHeaders, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.request(method, url, headers=headers or {}, data=data, **kw) as response,
    ):
        return response.status, response.headers, await response.text()


def host_cases(port: int) -> tuple[list[str], list[str]]:
    allowed = [
        f"127.0.0.1:{port}",
        "127.0.0.1",
        f"localhost:{port}",
        "LocalHost",
        f"[::1]:{port}",
        "[::1]",
    ]
    refused = [
        "evil.example",
        f"evil.example:{port}",
        f"127.0.0.1:{port + 1}",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "",
        "localhost:abc",
        "[::1",
        "::1",
        f"user@127.0.0.1:{port}",
        f"127.0.0.1:{port}/x",
        f"127.0.0.1:{port} evil.example",
    ]
    return allowed, refused


async def test_only_the_pages_own_host_names_are_answered(live):
    allowed, refused = host_cases(live.page.port)
    for host in allowed:
        status, _, _ = await request("GET", live.url + "/", {"Host": host})
        assert status == 200, host
    for host in refused:
        for method, path, headers in [
            ("GET", "/api/session/status", {}),
            ("GET", "/dashboard", {}),
            ("GET", "/nowhere", {}),
            ("POST", "/api/session/halt", AUTH),
        ]:
            status, response_headers, text = await request(
                method, live.url + path, {"Host": host, **headers}
            )
            assert status == 403, (host, path)
            assert response_headers["Content-Type"].startswith("application/json")
            assert "allowed_hosts" in json.loads(text)["error"]
    assert not live.pipeline.risk.state.halted


async def test_a_request_without_host_is_refused(live):
    reader, writer = await asyncio.open_connection("127.0.0.1", live.page.port)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")  # HTTP/1.0 needs no Host
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.0 403") or answer.startswith(b"HTTP/1.1 403"), answer[:80]
    assert b'"error": "host None not allowed' in answer


async def test_allowed_hosts_and_origin_hosts_are_answered(start_live):
    live = await start_live(
        f"{{port: 0, token: {TOKEN}, allowed_hosts: [Bot.Example.com, '::2'], "
        "allowed_origins: ['https://proxy.example.org']}"
    )
    assert live.page.settings.allowed_hosts == ["bot.example.com", "[::2]"]
    for host in ["bot.example.com", "bot.example.com:443", "proxy.example.org", "[::2]:9"]:
        status, _, _ = await request("GET", live.url + "/", {"Host": host})
        assert status == 200, host
    for host in ["evil.bot.example.com", "bot.example.com.evil", "example.com", "[::3]"]:
        status, _, _ = await request("GET", live.url + "/", {"Host": host})
        assert status == 403, host
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            live.ws_url,
            headers={"Host": "proxy.example.org", "Origin": "https://proxy.example.org"},
        ) as socket,
    ):
        assert not socket.closed


@pytest.mark.parametrize(
    "hosts", [["https://bot.example.com"], ["bot.example.com:8000"], ["bot.example.com/x"], [""]]
)
def test_allowed_hosts_are_names_only(hosts):
    with pytest.raises(ValueError, match="is not a host name"):
        StatusPageSettings(allowed_hosts=hosts)


def test_a_bad_allowed_host_names_the_key(tmp_path):
    from status_page.test_status_settings import build

    with pytest.raises(ConfigError) as error:
        build(tmp_path, "{allowed_hosts: ['http://x.example']}")
    assert "services.status_page.allowed_hosts" in str(error.value)


def test_json_depth():
    assert json_depth("{}", 20) == 1
    assert json_depth('{"a": [1, {"b": "[[[[{{{{"}]}', 20) == 3
    assert json_depth('"\\"[[[["', 20) == 0
    assert json_depth("[" * 10_000, 20) == 21  # stops counting past the limit


async def test_a_deeply_nested_body_is_a_400_not_a_recursion_error(live):
    url = live.url + "/api/settings"
    for opener, closer in [("[", "]"), ('{"a":', "}")]:
        for depth in (21, 10_000):
            body = opener * depth + "1" + closer * depth
            status, _, text = await request("POST", url, AUTH, body)
            assert status == 400, depth
            assert "nested deeper than 20" in json.loads(text)["error"]
    # 20 levels are parsed, and then refused for what they are
    body = '{"max_position": ' + "[" * 19 + "]" * 19 + "}"
    status, _, text = await request("POST", url, AUTH, body)
    assert status == 400 and "max_position" in text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"max_position": NaN}', "NaN is not JSON"),
        (b'{"max_position": -Infinity}', "Infinity is not JSON"),
        (b'{"max_position": ' + b"9" * 5000 + b"}", "not JSON"),
        (b"", "not JSON"),
        (b'"a string"', "must be a JSON object"),
    ],
    ids=["latin", "nan", "infinity", "long-int", "empty", "string"],
)
async def test_bad_json_is_a_400(live, body, expected):
    status, _, text = await request("POST", live.url + "/api/settings", AUTH, body)
    assert status == 400 and expected in json.loads(text)["error"]
    assert live.pipeline.risk.settings.max_position == 1


async def test_a_large_body_is_a_413(live):
    body = b'{"max_position": 2, "pad": "' + b"x" * (64 * 1024) + b'"}'

    async def chunked():  # no Content-Length: the limit holds while reading
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    for path in ("/api/settings", "/api/session/halt"):
        status, _, text = await request("POST", live.url + path, AUTH, body)
        assert status == 413, path
        assert "services.status_page.max_body" in json.loads(text)["error"]
    status, _, text = await request("POST", live.url + "/api/settings", AUTH, chunked())
    assert status == 413 and "max_body" in text
    assert live.pipeline.risk.settings.max_position == 1 and not live.pipeline.risk.state.halted


async def test_the_body_limit_is_a_setting(start_live):
    live = await start_live(f"{{port: 0, token: {TOKEN}, max_body: 2048, max_json_depth: 3}}")
    padded = b'{"max_position": 2, "pad": "' + b"x" * 3000 + b'"}'
    status, _, _ = await request("POST", live.url + "/api/settings", AUTH, padded)
    assert status == 413
    status, _, text = await request("POST", live.url + "/api/settings", AUTH, b'{"a": [[[1]]]}')
    assert status == 400 and "nested deeper than 3" in text
    status, _, _ = await request("POST", live.url + "/api/settings", AUTH, b'{"max_position": 2}')
    assert status == 200 and live.pipeline.risk.settings.max_position == 2


async def test_favicon(live):
    status, headers, text = await request("GET", live.url + "/favicon.ico")
    assert status == 200 and headers["Content-Type"] == "image/svg+xml"
    assert text.startswith("<svg") and len(text) < 1000


async def test_router_errors_are_json(live):
    status, _, text = await request("GET", live.url + "/nowhere")
    assert status == 404
    assert json.loads(text) == {"error": "not found: GET /nowhere"}
    status, headers, text = await request("PUT", live.url + "/api/settings", AUTH, b"{}")
    assert status == 405 and "POST" in headers["Allow"]
    assert json.loads(text)["error"].startswith("method not allowed")
    status, _, text = await request("GET", live.url + "/ws", AUTH)  # no WebSocket upgrade
    assert status == 400 and "error" in json.loads(text)
    status, _, text = await request("POST", live.url + "/api/settings", AUTH, b"{}")
    assert status == 200  # an empty change is fine
    status, _, text = await request(
        "POST", live.url + "/api/settings", {**AUTH, "Content-Encoding": "gzip"}, b"not gzip"
    )
    assert status == 415 and "Content-Encoding 'gzip'" in json.loads(text)["error"]
    assert live.pipeline.risk.settings.max_position == 1  # nothing inflated, nothing applied


async def test_an_unexpected_error_is_a_json_500_without_traceback(live, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("boom: /secret/path")

    monkeypatch.setattr(live.pipeline.view, "query", broken)
    with caplog.at_level(logging.ERROR, logger="tradebot_plugins.services.status_page"):
        status, headers, text = await request("GET", live.url + "/api/trades")
    assert status == 500 and headers["Content-Type"].startswith("application/json")
    assert json.loads(text) == {"error": "internal error: the log has the details"}
    assert "boom" not in text and "Traceback" not in text
    assert any("boom" in (r.exc_text or "") for r in caplog.records)  # the log has it
    status, _, _ = await request("GET", live.url + "/api/session/status")  # it goes on
    assert status == 200
