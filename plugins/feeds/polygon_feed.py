"""The ``polygon`` feed: US equity trades (SPY, QQQ...) from Polygon.io's REST API.

Two modes, both through the official ``polygon`` client, one NYSE trading day at a time
(regular hours 09:30-16:00 ET, early closes respected):

``trades`` (default)
    v3 trades, every page followed through ``next_url``. ``sip_timestamp`` (ns) is the event
    time. Polygon gives no aggressor side, so it is inferred by the **tick rule**: a trade above
    the previous price is a buy, below a sell, at the same price the side of the last change
    (unknown until the first change).
``aggregates``
    v2 one-minute bars turned into simulated ticks: each bar walks its path at tick resolution,
    open -> low -> high -> close for a rising bar (close >= open) and open -> high -> low -> close
    for a falling one, the bar's volume spread evenly over the path's prices (the remainder on
    the close), timestamps evenly spaced inside the minute; sides by the tick rule.

Prices are JSON numbers: they are rounded to the instrument's tick (a cent), so sub-penny prints
land on the nearest cent. Sizes are rounded to whole shares, at least one (fractional-share
trades). A record without a price or with a size <= 0 is dropped, counted and logged.

429 and 5xx answers are retried by the client (urllib3, honouring ``Retry-After``), ``retries``
times; after that, or on any other error, the feed stops with Polygon's message and never the
API key (the client sends it in a header, and the kernel scrubs it from every log line).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from datetime import date
from functools import cache
from typing import Any, Literal

import numpy as np
from pydantic import Field, SecretStr

from tradebot_core import hookimpl
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.instruments import Instrument, root_symbol
from tradebot_core.secrets import redact, register_secret
from tradebot_core.types import TICK_DTYPE, FeedStatus, FeedStatusKind, TickBatch

log = logging.getLogger(__name__)


class PolygonSettings(PluginSettings):
    api_key: SecretStr | None = None
    """Default: the POLYGON_API_KEY environment variable."""
    ticker: str | None = None
    """Default: the run's symbol (SPY, QQQ)."""
    start: date | None = None
    end: date | None = None
    mode: Literal["trades", "aggregates"] = "trades"
    base_url: str = "https://api.polygon.io"
    page_limit: int = Field(default=50_000, ge=1, le=50_000)
    retries: int = Field(default=3, ge=0)
    batch_size: int = Field(default=10_000, ge=1)


class PolygonError(Exception):
    """A Polygon request that failed; Polygon's message, without the key."""


@cache
def _nyse() -> Any:
    import warnings

    import exchange_calendars

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return exchange_calendars.get_calendar("XNYS")


def nyse_days(start: date, end: date) -> list[tuple[date, int, int]]:
    """(day, open ns, close ns) of each NYSE session from start to end."""
    import warnings

    calendar = _nyse()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schedule = calendar.schedule.loc[start.isoformat() : end.isoformat()]
        return [
            (day.date(), int(row["open"].value), int(row["close"].value))
            for day, row in schedule.iterrows()
        ]


class PolygonFeed:
    name = "polygon"
    Settings = PolygonSettings

    def __init__(self, settings: PolygonSettings, context: PluginContext) -> None:
        self.settings = settings
        self.symbol = context.symbol
        self.instrument = context.instrument
        self.ticker = settings.ticker or root_symbol(context.symbol)
        key = settings.api_key.get_secret_value() if settings.api_key else None
        self._key = key or os.environ.get("POLYGON_API_KEY") or ""
        if self._key:
            register_secret(self._key)
        if settings.start is None:
            raise ValueError("set feed.polygon.start (the first trading day to play)")
        self.dropped = 0

    @classmethod
    def day_settings(cls, settings: dict[str, Any], day: date) -> dict[str, Any]:
        return {**settings, "start": day.isoformat(), "end": day.isoformat()}

    async def stream(self) -> AsyncIterator[TickBatch | FeedStatus]:
        start = self.settings.start
        assert start is not None
        for day, open_ns, close_ns in nyse_days(start, self.settings.end or start):
            ticks = await asyncio.to_thread(self._day, open_ns, close_ns)
            if not len(ticks):
                continue
            yield FeedStatus(kind=FeedStatusKind.SESSION_START, ts_ns=open_ns, detail=str(day))
            for i in range(0, len(ticks), self.settings.batch_size):
                yield TickBatch(self.symbol, ticks[i : i + self.settings.batch_size])
                await asyncio.sleep(0)
            yield FeedStatus(kind=FeedStatusKind.SESSION_END, ts_ns=close_ns, detail=str(day))

    # -- requests ------------------------------------------------------------------------------

    def _client(self) -> Any:
        from polygon import RESTClient

        if not self._key:
            raise PolygonError("no Polygon API key: set POLYGON_API_KEY or feed.polygon.api_key")
        return RESTClient(
            api_key=self._key, base=self.settings.base_url, retries=self.settings.retries
        )

    def _day(self, open_ns: int, close_ns: int) -> np.ndarray:
        client = self._client()
        try:
            if self.settings.mode == "trades":
                return self._trades(client, open_ns, close_ns)
            return self._aggregates(client, open_ns, close_ns)
        except PolygonError:
            raise
        except Exception as exc:  # the client's BadResponse, urllib3's MaxRetryError...
            raise PolygonError(redact(f"Polygon: {type(exc).__name__}: {exc}")) from None

    def _trades(self, client: Any, open_ns: int, close_ns: int) -> np.ndarray:
        ts, price, size = [], [], []
        for trade in client.list_trades(
            self.ticker,
            timestamp_gte=open_ns,
            timestamp_lt=close_ns,
            limit=self.settings.page_limit,
            sort="timestamp",
            order="asc",
        ):
            ts.append(trade.sip_timestamp)
            price.append(trade.price)
            size.append(trade.size)
        return self._ticks(ts, price, size)

    def _ticks(self, ts: list, price: list, size: list) -> np.ndarray:
        ts_a = np.array([t if t is not None else -1 for t in ts], dtype=np.int64)
        price_a = np.array([p if p is not None else np.nan for p in price], dtype=float)
        size_a = np.array([s if s is not None else np.nan for s in size], dtype=float)
        bad = (ts_a <= 0) | ~np.isfinite(price_a) | (price_a <= 0) | ~(size_a > 0)
        if bad.any():
            self.dropped += int(bad.sum())
            log.warning("polygon %s: dropped %d malformed trades", self.ticker, int(bad.sum()))
        ts_a, price_a, size_a = ts_a[~bad], price_a[~bad], size_a[~bad]
        order = np.argsort(ts_a, kind="stable")
        ticks = np.empty(len(ts_a), dtype=TICK_DTYPE)
        ticks["ts_event"] = ts_a[order]
        ticks["price"] = to_fixed(price_a[order], self.instrument)
        ticks["size"] = np.maximum(1, np.floor(size_a[order] + 0.5)).astype(np.int64)
        ticks["side"] = tick_rule(ticks["price"])
        return ticks

    def _aggregates(self, client: Any, open_ns: int, close_ns: int) -> np.ndarray:
        bars = client.get_aggs(
            self.ticker,
            1,
            "minute",
            open_ns // 1_000_000,
            close_ns // 1_000_000 - 1,
            limit=self.settings.page_limit,
        )
        parts = [
            bar_ticks(bar, self.instrument)
            for bar in bars
            if bar.timestamp is not None and open_ns <= bar.timestamp * 1_000_000 < close_ns
        ]
        ticks = np.concatenate(parts) if parts else np.empty(0, dtype=TICK_DTYPE)
        ticks["side"] = tick_rule(ticks["price"])
        return ticks


def to_fixed(prices: np.ndarray, instrument: Instrument) -> np.ndarray:
    """Float prices to fixed-point, rounded to the instrument's tick."""
    tick = instrument.tick_fixed
    return np.rint(prices * 1e9 / tick).astype(np.int64) * tick


def tick_rule(prices: np.ndarray) -> np.ndarray:
    """+1 for an uptick, -1 for a downtick, a zero tick takes the last change's side."""
    side = np.zeros(len(prices), dtype=np.int8)
    if len(prices) < 2:
        return side
    change = np.sign(np.diff(prices)).astype(np.int8)
    positions = np.where(change != 0, np.arange(1, len(prices)), 0)
    last = np.maximum.accumulate(positions)  # index of the last change at or before i
    side[1:] = np.where(last > 0, change[np.maximum(last - 1, 0)], 0)
    return side


def bar_ticks(bar: Any, instrument: Instrument) -> np.ndarray:
    """A one-minute bar as ticks along O-L-H-C (rising) or O-H-L-C (falling)."""
    values = np.array([bar.open, bar.high, bar.low, bar.close], dtype=float)
    o, h, low, c = (int(v) for v in to_fixed(values, instrument))
    tick = instrument.tick_fixed
    waypoints = [o, low, h, c] if c >= o else [o, h, low, c]
    path = [waypoints[0]]
    for target in waypoints[1:]:
        step = tick if target >= path[-1] else -tick
        path.extend(range(path[-1] + step, target + step, step) if target != path[-1] else [])
    prices = np.array(path, dtype=np.int64)
    volume = max(1, round(bar.volume or 0))
    n = min(len(prices), volume)
    if n < len(prices):  # fewer contracts than prices: keep an evenly spread subset
        prices = prices[np.linspace(0, len(prices) - 1, n).round().astype(int)]
    sizes = np.full(len(prices), volume // len(prices), dtype=np.int64)
    sizes[-1] += volume - sizes.sum()
    start = int(bar.timestamp) * 1_000_000
    ticks = np.empty(len(prices), dtype=TICK_DTYPE)
    ticks["ts_event"] = start + (np.arange(len(prices)) * 60_000_000_000) // len(prices)
    ticks["price"] = prices
    ticks["size"] = sizes
    ticks["side"] = 0
    return ticks


@hookimpl
def register_feeds(register: Any) -> None:
    register(PolygonFeed)
