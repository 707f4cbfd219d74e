"""The ``polygon`` feed: US equity trades (SPY, QQQ...) from Polygon.io's REST API.

Two modes, both through the official ``polygon`` client, one NYSE session at a time (the
``XNYS`` calendar of :mod:`tradebot_core.calendar`: 09:30-16:00 ET, 13:00 ET on early closes,
no extended hours):

``trades`` (default)
    v3 trades, every page followed through ``next_url``; ``sip_timestamp`` (ns) is the event
    time. Polygon gives no aggressor side, so it is inferred by the **tick rule**: a trade above
    the previous price is a buy, below it a sell, at the same price the side of the last change
    (unknown, 0, until the session's first change).
``aggregates``
    v2 one-minute bars (unadjusted, like trades) turned into simulated ticks: see
    :func:`bar_ticks`.

Conversions (docs/feeds-polygon.md has the reasons):

- prices are JSON floats: made exact on the 1e-9 grid (``rint(price * 1e9)``: exact for any price
  with at most 9 decimals), then put on the instrument's tick (a cent) by rounding half up;
  sub-penny prints (midpoint crosses, price improvement) move to the nearest cent;
- sizes may be fractional (fractional-share trades): rounded half up to whole shares, and a
  positive size under half a share counts as one share, so the print keeps its place in the tape;
- a record without a price, timestamp or size, with a price or size <= 0, or outside the session
  is dropped, counted (``dropped``) and logged; the feed goes on.

Ticks are converted page by page (``batch_size`` trades at a time, the tick rule carried across),
so the first batch leaves before the day is downloaded.

429 and 5xx answers are retried by the client's urllib3 pool, ``retries`` times, honouring
``Retry-After`` and backing off exponentially; each retry is logged. After that, or on any other
error, the feed stops with :class:`PolygonError`: Polygon's own message, never the API key (the
client sends the key in a header, and the message is scrubbed as well).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import date
from itertools import islice, pairwise
from typing import Any, Literal

import numpy as np
from pydantic import Field, SecretStr, model_validator

from tradebot_core import (
    PRICE_SCALE,
    FeedStatus,
    FeedStatusKind,
    PluginContext,
    PluginSettings,
    TickBatch,
    calendar,
    empty_ticks,
    hookimpl,
    redact,
    register_secret,
    root_symbol,
)
from tradebot_core.calendar import DayBounds

log = logging.getLogger(__name__)

RETRY_STATUSES = (413, 429, 499, 500, 502, 503, 504)  # the official client's list
MINUTE_NS = 60 * 10**9


class PolygonSettings(PluginSettings):
    """``feed: {plugin: polygon, polygon: {...}}``."""

    api_key: SecretStr | None = None
    """Default: the POLYGON_API_KEY environment variable."""
    ticker: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9.]{0,9}$")
    """Default: the run's symbol (SPY, QQQ)."""
    start: date | None = None
    """First session to play (required)."""
    end: date | None = None
    """Last session to play (default: ``start``)."""
    mode: Literal["trades", "aggregates"] = "trades"
    base_url: str = Field(default="https://api.polygon.io", pattern=r"^https?://[^/\s]+$")
    """Where the API is (scheme and host, no path); tests point it at a loopback server."""
    page_limit: int = Field(default=50_000, ge=1, le=50_000)
    """Records per page (Polygon's maximum is 50,000)."""
    retries: int = Field(default=3, ge=0, le=20)
    """How many times a 429, 5xx or dropped connection is retried before the feed stops."""
    backoff_s: float = Field(default=0.5, ge=0.0, le=60.0)
    """Exponential backoff factor between retries (urllib3's): 0, 2x, 4x... seconds."""
    timeout_s: float = Field(default=30.0, gt=0.0)
    """Connect and read timeout of each request; a timed-out request counts as a retry."""
    batch_size: int = Field(default=10_000, ge=1)
    """Trades per TickBatch (and per conversion step)."""

    @model_validator(mode="after")
    def _end_after_start(self) -> PolygonSettings:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class PolygonError(Exception):
    """A Polygon request that failed: Polygon's message, never the API key."""


@functools.cache
def _logged_retry() -> type:
    """urllib3's Retry, saying each retry in the log (the URL carries no key); built on first use
    so that loading this module does not import urllib3."""
    from urllib3.util.retry import Retry

    class _LoggedRetry(Retry):
        def increment(
            self,
            method: str | None = None,
            url: str | None = None,
            response: Any = None,
            error: Exception | None = None,
            _pool: Any = None,
            _stacktrace: Any = None,
        ) -> Retry:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)  # or raises
            why = f"HTTP {response.status}" if response is not None else type(error).__name__
            log.warning(
                "polygon: %s for %s; retry %d", why, (url or "").split("?")[0], len(retry.history)
            )
            return retry

    return _LoggedRetry


class PolygonFeed:
    """Plays Polygon trades (or minute bars) of one ticker, session by session."""

    name = "polygon"
    Settings = PolygonSettings

    def __init__(self, settings: PolygonSettings, context: PluginContext) -> None:
        if settings.start is None:
            raise ValueError("set feed.polygon.start (the first trading day to play)")
        self.settings = settings
        self.symbol = context.symbol
        self.instrument = context.instrument
        self.ticker = settings.ticker or root_symbol(context.symbol)
        key = settings.api_key.get_secret_value() if settings.api_key else ""
        self._key = key or os.environ.get("POLYGON_API_KEY", "")
        if not self._key:
            raise ValueError("no Polygon API key: set POLYGON_API_KEY or feed.polygon.api_key")
        register_secret(self._key)
        self.dropped = 0
        self.snapped = 0  # sub-penny prices moved to the tick grid

    @classmethod
    def day_settings(cls, settings: dict[str, Any], day: date) -> dict[str, Any]:
        """The settings that play session ``day`` alone (replays and backtests)."""
        return {**settings, "start": day.isoformat(), "end": day.isoformat()}

    def days(self) -> list[DayBounds]:
        """The NYSE sessions from start to end."""
        start = self.settings.start
        assert start is not None
        nyse = calendar.get(calendar.EQUITIES_CALENDAR)
        return [nyse.bounds(d) for d in nyse.trading_days(start, self.settings.end or start)]

    async def stream(self) -> AsyncIterator[TickBatch | FeedStatus]:
        client = self._client()
        for day in self.days():
            chunks = self._chunks(client, day)
            started = False
            while (ticks := await asyncio.to_thread(next, chunks, None)) is not None:
                if not len(ticks):
                    continue
                if not started:
                    started = True
                    yield FeedStatus(
                        kind=FeedStatusKind.SESSION_START, ts_ns=day.open_ns, detail=str(day.day)
                    )
                yield TickBatch(self.symbol, ticks)
            if started:
                yield FeedStatus(
                    kind=FeedStatusKind.SESSION_END, ts_ns=day.close_ns, detail=str(day.day)
                )
            else:
                log.warning("polygon: no %s for %s on %s", self.settings.mode, self.ticker, day.day)

    # -- requests ------------------------------------------------------------------------------

    def _client(self) -> Any:
        from polygon import RESTClient
        from urllib3 import PoolManager, Timeout

        s = self.settings
        client = RESTClient(
            api_key=self._key,
            base=s.base_url,
            retries=s.retries,
            connect_timeout=s.timeout_s,
            read_timeout=s.timeout_s,
        )
        retry = _logged_retry()(
            total=s.retries,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=s.backoff_s,
            respect_retry_after_header=True,
            raise_on_status=False,  # the last answer reaches the client: Polygon's message
        )
        pool = getattr(client, "client", None)
        if isinstance(pool, PoolManager):
            pool.connection_pool_kw["retries"] = retry
            # the client builds a Timeout but never passes it on (1.16): without this, a stalled
            # connection would hang the feed
            pool.connection_pool_kw["timeout"] = Timeout(connect=s.timeout_s, read=s.timeout_s)
        else:  # a future client: keep its own retries (same statuses, less readable errors)
            log.warning("polygon: unknown client internals; using the client's own retries")
        return client

    def _chunks(self, client: Any, day: DayBounds) -> Iterator[np.ndarray]:
        """Tick arrays of one session, ``batch_size`` records at a time, sides carried across."""
        prev_price, prev_side = 0, 0
        records = self._records(client, day)
        while True:
            with self._errors(day):
                rows = list(islice(records, self.settings.batch_size))
            if not rows:
                return
            ticks = self._to_ticks(rows, day)
            if len(ticks):
                ticks["side"] = tick_rule(ticks["price"], prev_price, prev_side)
                prev_price, prev_side = int(ticks["price"][-1]), int(ticks["side"][-1])
            yield ticks

    def _records(self, client: Any, day: DayBounds) -> Iterator[Any]:
        s = self.settings
        if s.mode == "trades":
            return iter(
                client.list_trades(
                    self.ticker,
                    timestamp_gte=day.open_ns,
                    timestamp_lt=day.close_ns,
                    limit=s.page_limit,
                    sort="timestamp",
                    order="asc",
                )
            )
        return iter(
            client.list_aggs(
                self.ticker,
                1,
                "minute",
                day.open_ns // 1_000_000,
                day.close_ns // 1_000_000 - 1,
                adjusted=False,
                sort="asc",
                limit=s.page_limit,
            )
        )

    def _to_ticks(self, rows: list[Any], day: DayBounds) -> np.ndarray:
        tick = self.instrument.tick_fixed
        if self.settings.mode == "trades":
            ts = np.array([_int_or(r.sip_timestamp) for r in rows], dtype=np.int64)
            price = np.array([r.price for r in rows], dtype=float)
            size = np.array([r.size for r in rows], dtype=float)
            ticks, bad, snapped = trades_to_ticks(ts, price, size, tick)
            bad |= (ticks["ts_event"] < day.open_ns) | (ticks["ts_event"] >= day.close_ns)
            ticks, dropped, what = ticks[~bad], int(bad.sum()), "trades"
            self.snapped += snapped
        else:
            ticks, dropped = bars_to_ticks(rows, tick, day.open_ns, day.close_ns)
            what = "minute bars"
        if dropped:
            self.dropped += dropped
            log.warning(
                "polygon %s %s: dropped %d malformed %s (missing or non-positive price, size "
                "or timestamp, or outside the session); %d so far",
                self.ticker,
                day.day,
                dropped,
                what,
                self.dropped,
            )
        return ticks[np.argsort(ticks["ts_event"], kind="stable")]

    def _errors(self, day: DayBounds) -> _PolygonErrors:
        return _PolygonErrors(f"{self.settings.mode} of {self.ticker} on {day.day}", self.settings)


class _PolygonErrors:
    """Turns whatever the client raised into a PolygonError a human can act on."""

    def __init__(self, what: str, settings: PolygonSettings) -> None:
        self.what, self.settings = what, settings

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, PolygonError):
            return False
        raise PolygonError(redact(self.message(exc))) from None

    def message(self, exc: BaseException) -> str:
        text = str(exc)
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not isinstance(body, dict):  # a connection error, a timeout...
            return (
                f"Polygon request for {self.what} failed after {self.settings.retries} "
                f"retries: {type(exc).__name__}: {text}; check the network and "
                f"feed.polygon.base_url ({self.settings.base_url})"
            )
        said = str(body.get("error") or body.get("message") or text)
        status = body.get("status", "?")
        if status == "NOT_AUTHORIZED" or "api key" in said.lower():
            hint = "check POLYGON_API_KEY (or feed.polygon.api_key) and what your plan covers"
        elif "bad request" in said.lower() or status == "NOT_FOUND":
            hint = "check feed.polygon.ticker and the dates"
        else:  # rate limits and server errors: the ones retried
            hint = (
                f"if it persists after {self.settings.retries} retries, wait and run again, "
                f"or raise feed.polygon.retries / backoff_s"
            )
        return (
            f"Polygon refused {self.what}: {said} (status {status}, request_id "
            f"{body.get('request_id', '?')}); {hint}"
        )


def _int_or(value: Any, default: int = -1) -> int:
    return default if value is None else int(value)


def to_fixed(prices: np.ndarray, tick_fixed: int) -> tuple[np.ndarray, np.ndarray]:
    """Float prices -> (fixed-point prices on the tick grid, exact fixed-point prices).

    ``rint(price * 1e9)`` recovers the decimal price exactly for any price with at most 9
    decimals (below ~$9,000,000); the tick grid is then reached by rounding half up.
    """
    exact = np.rint(prices * PRICE_SCALE).astype(np.int64)
    on_grid = (exact + tick_fixed // 2) // tick_fixed * tick_fixed
    return on_grid, exact


def whole_shares(size: np.ndarray) -> np.ndarray:
    """Sizes rounded half up to whole shares; a positive size under half a share is one."""
    return np.maximum(1, np.floor(size + 0.5)).astype(np.int64)


def trades_to_ticks(
    ts: np.ndarray, price: np.ndarray, size: np.ndarray, tick_fixed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Trade columns -> (ticks without sides, malformed mask, number of prices snapped)."""
    bad = (ts <= 0) | ~np.isfinite(price) | ~(price > 0) | ~np.isfinite(size) | ~(size > 0)
    price = np.where(bad, 1.0, price)
    size = np.where(bad, 1.0, size)
    ticks = empty_ticks(len(ts))
    ticks["ts_event"] = ts
    ticks["price"], exact = to_fixed(price, tick_fixed)
    ticks["size"] = np.minimum(whole_shares(size), np.iinfo(np.int32).max)
    snapped = int(((ticks["price"] != exact) & ~bad).sum())
    return ticks, bad, snapped


def tick_rule(prices: np.ndarray, prev_price: int = 0, prev_side: int = 0) -> np.ndarray:
    """Aggressor sides by the tick rule: +1 uptick, -1 downtick, a zero tick keeps the side.

    ``prev_price`` / ``prev_side`` carry the rule over from the previous batch (0: no previous
    trade, so the first trade's side is ``prev_side``).
    """
    n = len(prices)
    if not n:
        return np.zeros(0, dtype=np.int8)
    before = np.concatenate(([prev_price or prices[0]], prices[:-1]))
    change = np.sign(prices - before).astype(np.int8)
    last = np.maximum.accumulate(np.where(change != 0, np.arange(n), -1))
    return np.where(last >= 0, change[np.maximum(last, 0)], prev_side).astype(np.int8)


def bar_path(o: int, h: int, low: int, c: int) -> np.ndarray:
    """The prices (in ticks) a bar walks: O-L-H-C when it rose (c >= o), else O-H-L-C."""
    stops = [o, low, h, c] if c >= o else [o, h, low, c]
    legs = [np.array([o], dtype=np.int64)]
    for a, b in pairwise(stops):
        if b != a:
            step = 1 if b > a else -1
            legs.append(np.arange(a + step, b + step, step, dtype=np.int64))
    return np.concatenate(legs)


def bar_ticks(bar: Any, tick_fixed: int) -> np.ndarray:
    """One minute bar as simulated ticks, or an empty array for a malformed bar.

    The bar walks :func:`bar_path` one tick at a time; its volume (whole shares) is spread evenly
    over the path's prices, the remainder on the close. A bar with fewer shares than prices keeps
    an evenly spaced subset of the path (first and last included; one share trades at the close).
    Timestamps are spread evenly over the minute from the bar's start.
    """
    fields = (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.timestamp)
    if any(v is None for v in fields):
        return empty_ticks()
    ohlc = np.array(fields[:4], dtype=float)
    if not (np.isfinite(ohlc).all() and (ohlc > 0).all() and bar.volume > 0):
        return empty_ticks()
    o, h, low, c = (int(p) // tick_fixed for p in to_fixed(ohlc, tick_fixed)[0])
    if low > min(o, c) or h < max(o, c):
        return empty_ticks()
    prices = bar_path(o, h, low, c)
    volume = int(whole_shares(np.array([float(bar.volume)]))[0])
    if volume < len(prices):
        keep = np.linspace(0, len(prices) - 1, volume).round().astype(int) if volume > 1 else [-1]
        prices = prices[keep]
    n = len(prices)
    ticks = empty_ticks(n)
    ticks["ts_event"] = int(bar.timestamp) * 1_000_000 + (np.arange(n) * MINUTE_NS) // n
    ticks["price"] = prices * tick_fixed
    ticks["size"] = volume // n
    ticks["size"][-1] += volume - (volume // n) * n
    return ticks


def bars_to_ticks(
    bars: Iterable[Any], tick_fixed: int, open_ns: int, close_ns: int
) -> tuple[np.ndarray, int]:
    """Minute bars starting in [open_ns, close_ns) -> (ticks without sides, bars dropped).

    A bar is dropped when a field is missing, a price or its volume is <= 0, its low is above
    its body or its high below it, or it starts outside the session.
    """
    parts, dropped = [], 0
    for bar in bars:
        start = None if bar.timestamp is None else int(bar.timestamp) * 1_000_000
        ticks = bar_ticks(bar, tick_fixed) if start is not None else empty_ticks()
        if len(ticks) and open_ns <= start < close_ns:
            parts.append(ticks)
        else:
            dropped += 1
    return (np.concatenate(parts) if parts else empty_ticks()), dropped


@hookimpl
def register_feeds(register: Any) -> None:
    register(PolygonFeed)
