"""The ``databento`` feed: historical CME trades from Databento, cached on disk per day.

For each CME trading day from ``start`` to ``end`` (the Globex session, 18:00 ET the evening
before to the close) it plays the day's trades, with the aggressor side from the record:

1. days already in ``cache_dir`` (one DBN file per dataset, schema, symbol and day) cost nothing
   and need no network at all;
2. for the missing days it asks Databento the price first (``metadata.get_cost``) and logs it;
   above ``budget_usd`` it stops with an error unless ``confirm: true``;
3. it downloads each missing day with ``timeseries.get_range`` into a temporary file, checks that
   it decodes, and only then moves it into the cache: a broken download never poisons the cache.

Symbols: a continuous symbol (``ES.c.0``, the default for the run's instrument), an explicit
contract (``ESZ5``), or ``front``: the front-month contract of each day (see
:mod:`tradebot_plugins.feeds.cme_contracts`). HTTP 429 and 5xx answers are retried with
backoff; an error keeps Databento's own message and never the API key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, SecretStr, model_validator

from tradebot_core import (
    FeedStatus,
    FeedStatusKind,
    PluginContext,
    PluginSettings,
    TickBatch,
    hookimpl,
    redact,
    register_secret,
    root_symbol,
)
from tradebot_core.calendar import session_bounds, trading_days

from .cme_contracts import front_month
from .dbn_ticks import records_to_ticks
from .file import RECORD_TYPES

log = logging.getLogger(__name__)


class DatabentoSettings(PluginSettings):
    api_key: SecretStr | None = None
    """Your key; default: the DATABENTO_API_KEY environment variable."""
    dataset: str = "GLBX.MDP3"
    schema_: str = Field(default="trades", alias="schema")
    symbol: str | None = None
    """ES.c.0 (continuous), ESZ5 (a contract) or front; default: <root>.c.0 of the run."""
    start: date | None = None
    end: date | None = None
    """Trading days, both included (end defaults to start)."""
    cache_dir: Path = Path("data/databento-cache")
    budget_usd: Decimal = Field(default=Decimal("5"), ge=0)
    confirm: bool = False
    """Download even when the cost is above budget_usd."""
    gateway: str | None = None
    """Another historical gateway (host[:port]); for tests and private deployments."""
    retries: int = Field(default=3, ge=0)
    backoff_s: float = Field(default=1.0, ge=0)
    batch_size: int = Field(default=10_000, ge=1)

    @model_validator(mode="after")
    def _dates(self) -> DatabentoSettings:
        if self.start and self.end and self.end < self.start:
            raise ValueError("end is before start")
        if self.symbol and self.symbol.upper().endswith((".FUT", ".OPT")):
            raise ValueError(
                f"{self.symbol} is a parent symbol (every contract at once): use a continuous "
                "symbol (ES.c.0), a contract (ESZ5) or front"
            )
        return self


class DatabentoError(Exception):
    """A Databento request that failed; the message is Databento's, without the key."""


class DatabentoFeed:
    name = "databento"
    Settings = DatabentoSettings

    def __init__(self, settings: DatabentoSettings, context: PluginContext) -> None:
        self.settings = settings
        self.symbol = context.symbol
        self.root = root_symbol(context.symbol)
        key = settings.api_key.get_secret_value() if settings.api_key else None
        self._key = key or os.environ.get("DATABENTO_API_KEY") or ""
        if self._key:
            register_secret(self._key)
        if settings.start is None:
            raise ValueError("set feed.databento.start (the first trading day to play)")
        self.requests = 0

    @classmethod
    def day_settings(cls, settings: dict[str, Any], day: date) -> dict[str, Any]:
        return {**settings, "start": day.isoformat(), "end": day.isoformat()}

    # -- days, symbols, cache -----------------------------------------------------------------

    def days(self) -> list[date]:
        start = self.settings.start
        assert start is not None
        return trading_days(start, self.settings.end or start)

    def symbol_for(self, day: date) -> str:
        wanted = self.settings.symbol or f"{self.root}.c.0"
        return front_month(self.root, day) if wanted == "front" else wanted

    def cache_path(self, day: date) -> Path:
        s = self.settings
        name = f"{self.symbol_for(day).replace('/', '_')}-{day.isoformat()}.dbn.zst"
        return s.cache_dir / s.dataset / s.schema_ / name

    def prepare_days(self, days: list[date]) -> str:
        """Before a backtest: price the days not cached yet (one total, checked against the
        budget) and download them, so the day jobs only read the cache."""
        missing = [day for day in days if not self.cache_path(day).is_file()]
        if not missing:
            return f"Databento: all {len(days)} day(s) in the cache, nothing to pay"
        cost = self._check_cost(missing)
        for day in missing:
            self._download(day, self.cache_path(day))
        return f"Databento: downloaded {len(missing)} day(s) for ${cost.quantize(Decimal('0.01'))}"

    def missing_days(self, days: list[date]) -> list[date]:
        """The days not in the cache yet."""
        return [day for day in days if not self.cache_path(day).is_file()]

    def price_days(self, days: list[date]) -> Decimal:
        """What downloading ``days`` costs, asked of Databento first (refused above the budget
        unless ``confirm``)."""
        return self._check_cost(days)

    def download_day(self, day: date) -> Path:
        """Download one day into the cache (checked to the end before it is kept)."""
        path = self.cache_path(day)
        self._download(day, path)
        return path

    # -- the stream ----------------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[TickBatch | FeedStatus]:
        days = self.days()
        missing = [day for day in days if not self.cache_path(day).is_file()]
        if missing:
            await asyncio.to_thread(self._check_cost, missing)
        for day in days:
            path = self.cache_path(day)
            if not path.is_file():
                await asyncio.to_thread(self._download, day, path)
            chunks = iter_ticks(path, self.settings.batch_size)
            last_ts: int | None = None
            while (ticks := await asyncio.to_thread(next, chunks, None)) is not None:
                if not len(ticks):
                    continue
                if last_ts is None:
                    yield FeedStatus(
                        kind=FeedStatusKind.SESSION_START,
                        ts_ns=int(ticks["ts_event"][0]),
                        detail=str(day),
                    )
                yield TickBatch(self.symbol, ticks)
                last_ts = int(ticks["ts_event"][-1])
            if last_ts is not None:
                yield FeedStatus(kind=FeedStatusKind.SESSION_END, ts_ns=last_ts, detail=str(day))

    # -- Databento ----------------------------------------------------------------------------

    def _client(self) -> Any:
        import databento

        if not self._key:
            raise DatabentoError(
                "no Databento API key: set DATABENTO_API_KEY or feed.databento.api_key"
            )
        if self.settings.gateway:
            return databento.Historical(key=self._key, gateway=self.settings.gateway)
        return databento.Historical(key=self._key)

    def _request(self, day: date) -> dict[str, Any]:
        start_ns, end_ns = session_bounds(day)
        symbol = self.symbol_for(day)
        stype = (
            "continuous"
            if ".c." in symbol or ".n." in symbol or ".v." in symbol
            else ("raw_symbol")
        )
        return {
            "dataset": self.settings.dataset,
            "schema": self.settings.schema_,
            "symbols": [symbol],
            "stype_in": stype,
            "start": start_ns,
            "end": end_ns,
        }

    def _check_cost(self, missing: list[date]) -> Decimal:
        client = self._client()
        cost = Decimal("0")
        for day in missing:
            value = self._call(lambda d=day: client.metadata.get_cost(**self._request(d)))
            cost += Decimal(str(value))
        log.info(
            "Databento: %d day(s) not in the cache cost $%s (budget $%s)",
            len(missing),
            cost.quantize(Decimal("0.01")),
            self.settings.budget_usd,
        )
        if cost > self.settings.budget_usd and not self.settings.confirm:
            raise DatabentoError(
                f"downloading {len(missing)} day(s) costs ${cost.quantize(Decimal('0.01'))}, "
                f"above feed.databento.budget_usd ${self.settings.budget_usd}: raise the budget "
                "or set feed.databento.confirm: true"
            )
        return cost

    def _download(self, day: date, path: Path) -> None:
        import databento_dbn

        client = self._client()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.unlink(missing_ok=True)

        def fetch() -> str:
            partial.unlink(missing_ok=True)
            try:  # the client opens what it wrote: a broken header fails right here
                client.timeseries.get_range(**self._request(day), path=partial)
            except databento_dbn.DBNError as exc:
                return f"the header: {exc}"
            return ""

        try:
            problem = self._call(fetch) or check_dbn(partial, self.settings.schema_)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if problem:
            partial.unlink(missing_ok=True)
            raise DatabentoError(
                f"Databento sent {self.symbol_for(day)} {day} in a form that does not decode "
                f"({problem}); it was not cached (days already cached are kept): run again"
            )
        partial.replace(path)
        log.info("Databento: cached %s", path)

    def _call(self, request: Any) -> Any:
        """One request, retried on 429, 5xx and broken connections (with backoff, or as long
        as a 429's Retry-After says); errors keep Databento's message, never the key."""
        import databento
        import requests

        attempt = 0
        while True:
            attempt += 1
            self.requests += 1
            wait = self.settings.backoff_s * 2 ** (attempt - 1)
            try:
                return request()
            except databento.BentoHttpError as exc:
                status = exc.http_status or 0
                retry = status == 429 or status >= 500
                body = exc.json_body if isinstance(exc.json_body, dict) else {}
                detail = body.get("detail") or exc.message or repr(exc.http_body)
                message = f"Databento answered HTTP {status}: {detail}"
                if status == 401:
                    message += " (check DATABENTO_API_KEY or feed.databento.api_key)"
                wait = _retry_after(exc.headers, wait) if status == 429 else wait
            except (databento.BentoError, requests.RequestException) as exc:
                # the connection broke, or the stream did ("Error streaming response")
                retry = isinstance(exc, requests.ConnectionError | requests.Timeout) or (
                    "streaming" in str(exc)
                )
                message = f"Databento request failed: {exc}"
            if not retry or attempt > self.settings.retries:
                raise DatabentoError(self._scrub(message)) from None
            log.warning("%s; retrying in %.1f s", self._scrub(message), wait)
            time.sleep(wait)

    def _scrub(self, text: str) -> str:
        """``text`` without the API key (registered secrets are removed too)."""
        return redact(text.replace(self._key, "***") if self._key else text)


MAX_RETRY_AFTER_S = 60.0


def _retry_after(headers: Any, default: float) -> float:
    """Seconds a 429's ``Retry-After`` header asks for (capped), else ``default``."""
    value = (headers or {}).get("Retry-After")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except (TypeError, ValueError):
        return default


def iter_ticks(path: Path, batch_size: int) -> Iterator[np.ndarray]:
    """Trades of a cached DBN file, ``batch_size`` records at a time."""
    import databento

    store = databento.DBNStore.from_file(path)
    for records in store.to_ndarray(count=batch_size):
        yield records_to_ticks(records)


def check_dbn(path: Path, schema: str) -> str:
    """Why the DBN file at ``path`` cannot be cached ("" if it decodes to the end with records
    of ``schema`` only): a truncated stream, a malformed record, the wrong schema."""
    import databento
    from databento.common.error import BentoWarning

    expected = RECORD_TYPES.get(schema)
    position = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", BentoWarning)
            store = databento.DBNStore.from_file(path)
            if str(store.schema) != schema:
                return f"asked for {schema}, got {store.schema}"
            for records in store.to_ndarray(count=100_000):
                bad = records["length"].astype(np.int64) * 4 != records.dtype.itemsize
                if expected is not None:
                    bad |= records["rtype"] != expected
                if bad.any():
                    return f"record {position + int(np.argmax(bad)) + 1} is malformed"
                position += len(records)
    except Exception as exc:  # a BentoWarning turned error, a zstd or DBN decoding error
        return f"after record {position}: {exc}"
    return ""


@hookimpl
def register_feeds(register: Any) -> None:
    register(DatabentoFeed)
