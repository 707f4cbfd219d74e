"""A loopback HTTPS server that answers like Databento's historical gateway.

The official client always speaks HTTPS, so the server has a certificate from a throwaway CA
(trustme); tests point ``REQUESTS_CA_BUNDLE`` at that CA. Endpoints, as the client calls them
(``databento/historical/api``):

``POST /v0/metadata.get_cost``
    form data (dataset, symbols, schema, stype_in, start, end) -> a JSON number of dollars.
``POST /v0/timeseries.get_range``
    the same form plus ``encoding=dbn``, ``compression=zstd``, ``stype_out`` -> a zstd DBN
    stream: a metadata header for the request (its range, symbols and symbology mappings), then
    the records of the served file whose ``ts_recv`` is in ``[start, end)``.

Authentication is HTTP basic with the API key as the user name; errors are JSON
``{"detail": ...}`` with the HTTP status, as Databento sends them. The records served are real:
they come from the recorded sample files; the header is encoded with ``databento_dbn``.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import databento as db
import databento_dbn
import numpy as np
import pandas as pd
import zstandard
from aiohttp import web

KEY = "db-LOOPBACKtestkey0000000000000"
BAD_RTYPE = 0xEE  # what a malformed record carries


@dataclass
class FakeDatabento:
    files: dict[str, Path]  # schema -> a recorded DBN file to serve
    cost: float = 0.25  # dollars per get_cost request
    script: list[int] = field(default_factory=list)  # statuses to answer first (429, 500...)
    retry_after: str | None = None  # Retry-After header of a scripted 429
    truncate: bool | set[int] = False  # every get_range, or these (0-based) get_range calls
    malformed: set[int] = field(default_factory=set)  # get_range calls with a corrupt record
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v0/metadata.get_cost", self.get_cost)
        app.router.add_post("/v0/timeseries.get_range", self.get_range)
        return app

    def count(self, name: str) -> int:
        return sum(1 for called, _ in self.calls if called == name)

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
            headers = (
                {"Retry-After": self.retry_after} if status == 429 and self.retry_after else {}
            )
            return web.json_response({"detail": detail}, status=status, headers=headers)
        return None

    async def get_cost(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.calls.append(("get_cost", form))
        return self._refuse(request) or web.json_response(self.cost)

    async def get_range(self, request: web.Request) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        call = self.count("get_range")
        self.calls.append(("get_range", form))
        refused = self._refuse(request)
        if refused is not None:
            return refused
        if form.get("encoding") != "dbn" or form.get("compression") != "zstd":
            return web.json_response({"detail": "Only dbn with zstd is served here."}, 422)
        path = self.files.get(form["schema"])
        if path is None:
            return web.json_response({"detail": f"Unsupported schema {form['schema']}"}, 422)
        store = db.DBNStore.from_file(path)
        symbol = form["symbols"]
        if form["stype_in"] == "raw_symbol" and symbol not in (store.metadata.mappings or {}):
            detail = f"Could not resolve any symbols from {symbol!r} for the requested range."
            return web.json_response({"detail": detail}, 422)
        body = encode_day(store, form, corrupt=call in self.malformed)
        if self.truncate is True or (isinstance(self.truncate, set) and call in self.truncate):
            body = body[: len(body) // 2]
        return web.Response(body=body, content_type="application/octet-stream")


def _ns(value: str) -> int:
    return int(value) if value.isdigit() else pd.Timestamp(value, tz="UTC").value


def encode_day(store: db.DBNStore, form: dict[str, str], corrupt: bool = False) -> bytes:
    """The DBN (zstd) the real gateway would send for ``form``, from the recorded ``store``."""
    start, end = _ns(form["start"]), _ns(form["end"])
    records = store.to_ndarray()
    records = records[(records["ts_recv"] >= start) & (records["ts_recv"] < end)].copy()
    if corrupt and len(records):
        records["rtype"][len(records) // 2] = BAD_RTYPE
    instrument_id = int(np.unique(store.to_ndarray()["instrument_id"])[0])
    day = datetime.fromtimestamp(start // 10**9, UTC).date()
    last = datetime.fromtimestamp((end - 1) // 10**9, UTC).date()
    header = databento_dbn.Metadata(
        dataset=form["dataset"],
        start=start,
        end=end,
        stype_in=databento_dbn.SType(form["stype_in"]),
        stype_out=databento_dbn.SType(form.get("stype_out", "instrument_id")),
        schema=databento_dbn.Schema.from_str(form["schema"]),
        symbols=[form["symbols"]],
        partial=[],
        not_found=[],
        mappings=[
            SimpleNamespace(
                raw_symbol=form["symbols"],
                intervals=[
                    SimpleNamespace(
                        start_date=day,
                        end_date=last + timedelta(days=1),
                        symbol=str(instrument_id),
                    )
                ],
            )
        ],
        ts_out=False,
        version=store.metadata.version,
    ).encode()
    return zstandard.ZstdCompressor().compress(header + records.tobytes())


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
