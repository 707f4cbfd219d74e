"""A loopback HTTPS server that answers like Databento's historical gateway.

The official client always speaks HTTPS, so the server has a certificate from a throwaway CA
(trustme); tests point ``REQUESTS_CA_BUNDLE`` at that CA. Endpoints, as the client calls them:
``POST /v0/metadata.get_cost`` (form data -> a JSON number) and
``POST /v0/timeseries.get_range`` (form data -> a zstd DBN stream). Authentication is HTTP basic
with the API key as the user name; errors are JSON ``{"detail": ...}``.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

KEY = "db-LOOPBACKtestkey0000000000000"


@dataclass
class FakeDatabento:
    files: dict[str, Path]  # schema -> a recorded DBN file to serve
    cost: float = 0.25
    script: list[int] = field(default_factory=list)  # statuses to answer first (429, 500...)
    truncate: bool = False
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v0/metadata.get_cost", self.get_cost)
        app.router.add_post("/v0/timeseries.get_range", self.get_range)
        return app

    def _refuse(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        user = ""
        if header.startswith("Basic "):
            user = base64.b64decode(header[6:]).decode().partition(":")[0]
        if user != KEY:
            return web.json_response({"detail": "Authentication failed."}, status=401)
        if self.script:
            status = self.script.pop(0)
            detail = "Too many requests." if status == 429 else "Internal server error."
            return web.json_response({"detail": detail}, status=status)
        return None

    async def get_cost(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.calls.append(("get_cost", form))
        return self._refuse(request) or web.json_response(self.cost)

    async def get_range(self, request: web.Request) -> web.StreamResponse:
        form = dict(await request.post())
        self.calls.append(("get_range", form))
        refused = self._refuse(request)
        if refused is not None:
            return refused
        path = self.files.get(form["schema"])
        if path is None:
            return web.json_response({"detail": f"Unsupported schema {form['schema']}"}, 422)
        body = path.read_bytes()
        if self.truncate:
            body = body[: len(body) // 2]
        return web.Response(body=body, content_type="application/octet-stream")


def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the CA file a client must trust."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    ca_file = tmp_path / "loopback-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server, ca_file


async def start(app: web.Application, context: ssl.SSLContext) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


def any_value(_: Any) -> bool:
    return True
