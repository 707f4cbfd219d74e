"""Live CME trades from a Rithmic gateway, through the official ``async-rithmic`` client.

The feed logs in to the ticker plant (and the history plant when it warms up or back-fills),
resolves the contract (Rithmic's own front-month request, or ``symbol``), subscribes to last
trades and yields :class:`~tradebot_core.types.TickBatch` batches: the trades of ``batch_ms``
after the first one of a batch, or ``batch_size`` trades, whichever comes first. Prices are
converted exactly (``Decimal(str(price)) * PRICE_SCALE``) and checked on the instrument's tick
grid; the aggressor becomes the side (+1 buy, -1 sell, 0 unknown).

Warm-up and back-fill: one mechanism
------------------------------------
Live trades are *held* while the history plant replays ticks (``RequestTickBarReplay``, one
trade per bar): on start, the session so far (``warmup``); after a reconnect, the outage
(``backfill``). The subscription is live before the replay is asked for, so nothing falls between
them; the replayed ticks go out first, then the held live ones, each dropped if it repeats one
already yielded (:class:`TradeDeduper`), then the stream goes on live.

No trade counted twice
----------------------
Rithmic's LastTrade carries no sequence number, so a trade's key is ``(ts_event in us, price,
size, side)``. Identical keys are real on CME (fills of one aggressive order), so, as
``databento_live`` does, the deduper only acts inside a window opened by a reconnect or a
warm-up seam, and counts copies (a multiset): a trade is dropped when an identical one was
yielded before the seam (and not yet matched), or came from the other source (replay vs live).
A trade older than the window start is dropped (it was covered before the seam). The window
closes once a live trade is more than ``overlap_ms`` past everything in it.

Secrets: the password goes to the client only; it is registered with
:func:`tradebot_core.register_secret`, so every log record (the client's included: its login
errors quote the request, password and all) has it replaced by ``***``, and the feed's own
errors never quote the client's text beyond the gateway's ``rp_code``.

``async_rithmic`` is imported inside the methods: importing this module is cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, SecretStr, model_validator

from tradebot_core import (
    BUY,
    PRICE_SCALE,
    SELL,
    TICK_DTYPE,
    UNKNOWN_SIDE,
    Feed,
    FeedStatus,
    FeedStatusKind,
    PluginContext,
    PluginSettings,
    TickBatch,
    __version__,
    hookimpl,
    register_secret,
    root_symbol,
)

if TYPE_CHECKING:
    from async_rithmic import RithmicClient

log = logging.getLogger(__name__)

ENV = {
    "user": "RITHMIC_USER",
    "password": "RITHMIC_PASSWORD",
    "system_name": "RITHMIC_SYSTEM",
    "gateway": "RITHMIC_GATEWAY",
    "account_id": "RITHMIC_ACCOUNT_ID",
    "app_name": "RITHMIC_APP_NAME",
    "app_version": "RITHMIC_APP_VERSION",
}
_RP_CODE = re.compile(r"""['"]rp_?[cC]ode['"]:\s*\[([^\]]*)\]""")
_Row = tuple[int, int, int, int]  # ts_event ns, fixed-point price, size, side


def _env(name: str, default: str = "") -> Any:
    return lambda: os.environ.get(ENV[name], default)


class RithmicFeedError(RuntimeError):
    """The feed cannot go on: login refused, no contract, gave up reconnecting."""


class RithmicConnectionSettings(PluginSettings):
    """What the feed and the broker both need to reach Rithmic (:func:`make_client`); the
    credentials default to the ``RITHMIC_*`` variables."""

    user: str = Field(default_factory=_env("user"), description="default: $RITHMIC_USER")
    password: SecretStr = Field(
        default_factory=lambda: SecretStr(os.environ.get(ENV["password"], "")),
        description="default: $RITHMIC_PASSWORD",
    )
    system_name: str = Field(
        default_factory=_env("system_name", "Rithmic Test"),
        description="'Rithmic Test', 'Rithmic Paper Trading', ...; default: $RITHMIC_SYSTEM",
    )
    gateway: str = Field(
        default_factory=_env("gateway"),
        description="wss://host:port of the gateway; default: $RITHMIC_GATEWAY",
    )
    app_name: str = Field(default_factory=_env("app_name", "tradebot"))
    app_version: str = Field(default_factory=_env("app_version", __version__))
    ca_file: Path | None = Field(
        default=None, description="trust this CA instead of the one async-rithmic bundles"
    )
    exchange: str = "CME"
    reconnect_interval_s: float = Field(default=1.0, gt=0)
    reconnect_backoff: Literal["constant", "linear", "exponential"] = "linear"
    reconnect_max_s: float = Field(default=30.0, gt=0)
    reconnect_max_attempts: int | None = Field(
        default=None, ge=1, description="attempts per outage before giving up; None: never"
    )
    request_timeout_s: float = Field(default=10.0, gt=0)


class RithmicFeedSettings(RithmicConnectionSettings):
    """YAML section ``feed.rithmic``."""

    symbol: str | None = Field(default=None, description="the contract (ESZ6); overrides")
    root: str | None = Field(default=None, description="product for front_month; default: run's")
    front_month: bool = Field(default=True, description="ask Rithmic for the front month")
    batch_ms: int = Field(default=100, ge=1, description="a batch goes out this long after")
    batch_size: int = Field(default=1_000, ge=1, description="trades per TickBatch at most")
    connect_attempts: int = Field(default=3, ge=1, description="at start, gateway unreachable")
    warmup: bool = Field(default=True, description="replay the session so far before live")
    warmup_lookback_s: int | None = Field(
        default=None, ge=1, description="replay this far back instead of the session open"
    )
    backfill: bool = Field(default=True, description="replay an outage's trades on reconnect")
    overlap_ms: int = Field(default=1_000, ge=0, description="dedupe window around a seam")
    settle_ms: int = Field(
        default=250, ge=0, description="wait after subscribing before asking for a replay"
    )
    watch_ms: int = Field(default=50, ge=1, description="how often the connection is checked")

    @model_validator(mode="after")
    def _check(self) -> RithmicFeedSettings:
        if self.reconnect_max_s < self.reconnect_interval_s:
            raise ValueError("reconnect_max_s must be >= reconnect_interval_s")
        if not self.front_month and not self.symbol:
            raise ValueError("front_month: false needs a symbol (the contract, e.g. ESZ6)")
        return self


@dataclass
class _End:
    error: BaseException | None = None


class TradeDeduper:
    """Drops trades repeated across a seam (reconnect, warm-up); rule in the module docstring."""

    def __init__(self, overlap_ns: int) -> None:
        self.overlap_ns = overlap_ns
        self.high: int | None = None  # highest ts_event yielded
        self._recent: deque[tuple[int, tuple[int, int, int, int]]] = deque()
        self._window: tuple[int, int] | None = None  # (start, latest ts inside)
        self._before: Counter[tuple[int, int, int, int]] = Counter()
        self._seen: dict[str, Counter[tuple[int, int, int, int]]] = {}
        self.dropped = 0

    @property
    def armed(self) -> bool:
        return self._window is not None

    def arm(self) -> int | None:
        """A seam: remember what was yielded in the overlap; returns the window start."""
        if self.high is None:
            self._window = None
            return None
        start = self.high - self.overlap_ns
        self._window = (start, self.high)
        self._before = Counter(key for _, key in self._recent)
        self._seen = {"live": Counter(), "replay": Counter()}
        return start

    def disarm(self) -> None:
        self._window = None
        self._before.clear()
        self._seen = {}

    def accept(self, rows: list[_Row], source: str) -> list[_Row]:
        """The rows not yielded before (``source``: "live" or "replay")."""
        out = []
        for row in rows:
            ts = row[0]
            key = (ts // 1000, row[1], row[2], row[3])
            if self._window is not None:
                start, end = self._window
                if ts < start:
                    self.dropped += 1
                    continue
                seen = self._seen[source]
                other = self._seen["replay" if source == "live" else "live"]
                if self._before[key] > 0:
                    self._before[key] -= 1
                    seen[key] += 1  # the other source may repeat it too
                    self.dropped += 1
                    continue
                if other[key] > 0:
                    other[key] -= 1
                    self.dropped += 1
                    continue
                seen[key] += 1
                if ts > end:
                    self._window = (start, ts)
                if source == "live" and ts > end + self.overlap_ns:
                    self.disarm()
            out.append(row)
            if self.high is None or ts > self.high:
                self.high = ts
            self._recent.append((ts, key))
        floor = (self.high or 0) - self.overlap_ns
        while self._recent and self._recent[0][0] < floor:
            self._recent.popleft()
        return out


class _ErrorTap(logging.Handler):
    """The last Rithmic error the client logged (it logs a refused login instead of raising)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.rp_code: list[str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + "\n" + (record.exc_text or "")
        if record.exc_info and record.exc_info[1] is not None:
            text += str(record.exc_info[1])
        match = _RP_CODE.search(text)
        if match:
            self.rp_code = [part.strip().strip("'\"") for part in match.group(1).split(",")]

    def __enter__(self) -> _ErrorTap:
        logging.getLogger("rithmic").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("rithmic").removeHandler(self)


def _iso(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "none"
    secs, ns = divmod(ts_ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns // 1000:06d}Z"


def make_client(s: Any, password: str) -> RithmicClient:
    """An ``async_rithmic`` client from Rithmic settings (the feed's or the broker's: user,
    system, app, gateway, reconnection, request timeout, and a CA file for a private gateway)."""
    import ssl

    from async_rithmic import ReconnectionSettings, RetrySettings, RithmicClient

    client = RithmicClient(
        user=s.user,
        password=password,
        system_name=s.system_name,
        app_name=s.app_name,
        app_version=s.app_version,
        url=s.gateway,
        reconnection_settings=ReconnectionSettings(
            max_retries=s.reconnect_max_attempts,
            backoff_type=s.reconnect_backoff,
            interval=s.reconnect_interval_s,
            max_delay=s.reconnect_max_s,
        ),
        retry_settings=RetrySettings(max_retries=2, timeout=s.request_timeout_s),
    )
    if s.ca_file is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(s.ca_file)
        client.ssl_context = context  # read by every plant when it opens its socket
    return client


class RithmicFeed(Feed):
    """Rithmic last trades as tick batches, with warm-up, back-fill and no trade twice."""

    name: ClassVar[str] = "rithmic"
    Settings = RithmicFeedSettings
    live: ClassVar[bool] = True

    def __init__(self, settings: RithmicFeedSettings, context: PluginContext) -> None:
        super().__init__(settings, context)
        missing = [
            f"{field} (${ENV[field]})"
            for field in ("user", "password", "gateway")
            if not str(
                getattr(settings, field).get_secret_value()
                if field == "password"
                else getattr(settings, field)
            ).strip()
        ]
        if missing:
            raise RithmicFeedError(
                "Rithmic feed: set feed.rithmic." + ", feed.rithmic.".join(missing)
            )
        self._password = settings.password.get_secret_value()
        register_secret(self._password)
        self.symbol = context.symbol
        self._tick = context.instrument.tick_fixed
        self._root = settings.root or root_symbol(context.symbol)
        self.contract: str | None = settings.symbol
        self._streaming = False
        self._reset()

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"RithmicFeed(user={s.user!r}, system_name={s.system_name!r}, gateway={s.gateway!r}, "
            f"contract={self.contract or self._root!r})"
        )

    def _reset(self) -> None:
        self._dedup = TradeDeduper(self.settings.overlap_ms * 1_000_000)
        self._pending: list[_Row] = []
        self._first_at = 0.0
        self._held: list[_Row] | None = None  # live trades held during a replay
        self._out: deque[TickBatch | FeedStatus | _End] = deque()
        self._wakeup = asyncio.Event()
        self._batch_started = asyncio.Event()
        self._up = False
        self._down_since: float | None = None
        self._last_before_drop: int | None = None
        self._catch_up_task: asyncio.Task[None] | None = None
        self._client_ref: Any = None
        self._off_grid = 0
        self.received = 0

    @property
    def duplicates_dropped(self) -> int:
        """Trades dropped because they had been yielded before a seam."""
        return self._dedup.dropped

    # -- the stream ---------------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[TickBatch | FeedStatus]:
        """Tick batches and status changes until stopped or a fatal error."""
        if self._streaming:
            raise RuntimeError("RithmicFeed.stream() is already being iterated")
        self._streaming = True
        self._reset()
        tap = _ErrorTap().__enter__()
        client = self._client()
        tasks = [
            asyncio.create_task(self._supervise(client, tap), name="rithmic_feed"),
            asyncio.create_task(self._flush_timer(), name="rithmic_feed_flush"),
        ]
        try:
            while True:
                self._wakeup.clear()
                while self._out:
                    item = self._out.popleft()
                    if isinstance(item, _End):
                        if item.error is not None:
                            raise item.error
                        return
                    yield item
                await self._wakeup.wait()
        finally:
            if self._catch_up_task is not None:
                tasks.append(self._catch_up_task)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await client.disconnect()
            tap.__exit__()
            self._streaming = False

    def _emit(self, item: TickBatch | FeedStatus | _End) -> None:
        self._out.append(item)
        self._wakeup.set()

    def _status(self, kind: FeedStatusKind, detail: str, count: int = 0) -> None:
        level = logging.INFO if kind is FeedStatusKind.CONNECTED else logging.WARNING
        log.log(level, "rithmic %s: %s", kind.value, detail)
        self._emit(FeedStatus(kind=kind, ts_ns=time.time_ns(), detail=detail, count=count))

    # -- the client ---------------------------------------------------------------------------

    def _client(self) -> RithmicClient:
        return make_client(self.settings, self._password)

    async def _supervise(self, client: RithmicClient, tap: _ErrorTap) -> None:
        try:
            await self._run(client, tap)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._flush()
            self._emit(_End(exc))

    async def _run(self, client: RithmicClient, tap: _ErrorTap) -> None:
        from async_rithmic import DataType

        s = self.settings
        history = s.warmup or s.backfill
        await self._connect(client, tap, history)
        if self.contract is None:
            self.contract = await self._front_month(client)
        self._status(
            FeedStatusKind.CONNECTED,
            f"{s.system_name} at {s.gateway} as {s.user}: {self.contract}.{s.exchange}",
        )
        self._up = True
        self._client_ref = client
        client.on_tick += self._on_tick
        client.on_connected += self._on_connected
        self._held = [] if s.warmup else None
        await client.subscribe_to_market_data(self.contract, s.exchange, DataType.LAST_TRADE)
        if s.warmup:
            await asyncio.sleep(s.settle_ms / 1000)
            await self._warm_up(client)
        await self._watch(client)

    async def _connect(self, client: RithmicClient, tap: _ErrorTap, history: bool) -> None:
        from async_rithmic import RithmicErrorResponse, SysInfraType

        s = self.settings
        plants = [SysInfraType.TICKER_PLANT]
        if history:
            plants.append(SysInfraType.HISTORY_PLANT)
        where = f"Rithmic system {s.system_name!r} at {s.gateway} (user {s.user!r})"
        for attempt in range(1, s.connect_attempts + 1):
            tap.rp_code = None
            try:
                await client.connect(plants=plants)
                return
            except (AttributeError, RithmicErrorResponse) as exc:
                # async-rithmic logs the refusal in its reader task, then fails reading the
                # login response it never kept: the reason is what the tap saw
                code = tap.rp_code or _rp_code(str(exc))
                reason = " ".join(reversed(code)) if code else type(exc).__name__
                if code and len(code) > 1:
                    reason = f"{code[1]} (code {code[0]})"
                raise RithmicFeedError(
                    f"{where} refused the login: {reason}; check feed.rithmic.user/password "
                    f"(${ENV['user']}, ${ENV['password']}) and system_name (${ENV['system_name']})"
                ) from None
            except (OSError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except Exception as exc:
                text = str(exc)
                if "SYSTEM_NAME" in text:
                    offered = text.split(":", 1)[1].strip() if ":" in text else "?"
                    raise RithmicFeedError(
                        f"{where}: the gateway offers no such system; it offers {offered} "
                        f"(feed.rithmic.system_name or ${ENV['system_name']})"
                    ) from None
                reason = f"{type(exc).__name__}: {text}"
            with contextlib.suppress(Exception):
                await client.disconnect()
            if attempt == s.connect_attempts:
                raise RithmicFeedError(
                    f"cannot reach {where} after {attempt} attempt(s): {reason}"
                ) from None
            delay = min(s.reconnect_max_s, s.reconnect_interval_s * attempt)
            log.warning("rithmic: %s; connect attempt %d in %.1f s", reason, attempt + 1, delay)
            await asyncio.sleep(delay)

    async def _front_month(self, client: RithmicClient) -> str:
        from async_rithmic import RithmicErrorResponse

        s = self.settings
        try:
            contract = await client.get_front_month_contract(self._root, s.exchange)
        except (RithmicErrorResponse, TimeoutError) as exc:
            raise RithmicFeedError(
                f"Rithmic has no front-month contract for {self._root}.{s.exchange} "
                f"({type(exc).__name__}); set feed.rithmic.symbol to the contract (e.g. "
                f"{self._root}Z6) or feed.rithmic.root"
            ) from None
        log.info("rithmic: front month of %s.%s is %s", self._root, s.exchange, contract)
        return str(contract)

    # -- trades -------------------------------------------------------------------------------

    def _price(self, value: Any) -> int | None:
        try:
            fixed = Decimal(str(value)) * PRICE_SCALE
        except (InvalidOperation, ValueError):
            return None
        if fixed != fixed.to_integral_value() or int(fixed) % self._tick:
            return None
        return int(fixed)

    def _on_tick(self, data: dict[str, Any]) -> None:
        from async_rithmic import DataType

        if data.get("data_type") != DataType.LAST_TRADE or data.get("symbol") != self.contract:
            return
        if data.get("is_snapshot"):
            return  # the last trade as of the subscription, not a new one
        if "trade_price" not in data:
            return
        self.received += 1
        if data.get("source_ssboe"):
            ns = data.get("source_nsecs") or int(data.get("source_usecs", 0)) * 1000
            ts = int(data["source_ssboe"]) * 1_000_000_000 + int(ns)
        else:
            ts = int(data.get("ssboe", 0)) * 1_000_000_000 + int(data.get("usecs", 0)) * 1000
        aggressor = data.get("aggressor")
        side = BUY if aggressor == 1 else SELL if aggressor == 2 else UNKNOWN_SIDE
        self._add(ts, data["trade_price"], int(data.get("trade_size", 0)), side)

    def _add(self, ts: int, price: Any, size: int, side: int) -> None:
        fixed = self._price(price)
        if fixed is None or size <= 0:
            self._off_grid += 1
            log.warning("rithmic: dropped a trade at %r x %d (off the tick grid)", price, size)
            self._status(
                FeedStatusKind.DROPPED,
                f"trade price {price!r} is not on the {self.contract} tick grid or size {size}",
                count=1,
            )
            return
        row = (ts, fixed, size, side)
        if self._held is not None:
            self._held.append(row)
            return
        if not self._pending:
            self._first_at = asyncio.get_running_loop().time()
            self._batch_started.set()
        self._pending.append(row)
        if len(self._pending) >= self.settings.batch_size:
            self._flush()

    def _flush(self) -> None:
        rows, self._pending = self._pending, []
        self._emit_rows(self._dedup.accept(rows, "live"))

    def _emit_rows(self, rows: list[_Row], warmup: bool = False) -> None:
        size = self.settings.batch_size
        for i in range(0, len(rows), size):
            ticks = np.array(rows[i : i + size], dtype=TICK_DTYPE)
            self._emit(TickBatch(self.symbol, ticks, warmup=warmup))

    async def _flush_timer(self) -> None:
        max_s = self.settings.batch_ms / 1000
        loop = asyncio.get_running_loop()
        while True:
            await self._batch_started.wait()
            self._batch_started.clear()
            while self._pending:
                delay = self._first_at + max_s - loop.time()
                if delay <= 0:
                    self._flush()
                    break
                await asyncio.sleep(delay)

    # -- replays ------------------------------------------------------------------------------

    async def _replay(self, client: RithmicClient, start_ns: int) -> list[_Row]:
        """The trades from ``start_ns`` to now, from the history plant, in time order."""
        s = self.settings
        assert self.contract is not None
        ticks = await asyncio.wait_for(
            client.get_historical_tick_data(
                self.contract,
                s.exchange,
                datetime.fromtimestamp(start_ns // 1_000_000_000, UTC),
                datetime.fromtimestamp(time.time() + 1, UTC),
                idle_timeout=s.request_timeout_s,
            ),
            s.request_timeout_s * 4,
        )
        rows: list[_Row] = []
        for tick in ticks or []:
            ssboe = tick.get("data_bar_ssboe") or [0]
            usecs = tick.get("data_bar_usecs") or [0]
            ts = int(ssboe[0]) * 1_000_000_000 + int(usecs[0]) * 1000
            ask, bid = int(tick.get("ask_volume", 0)), int(tick.get("bid_volume", 0))
            side = BUY if ask and not bid else SELL if bid and not ask else UNKNOWN_SIDE
            fixed = self._price(tick.get("close_price"))
            size = int(tick.get("volume", 0))
            if fixed is None or size <= 0:
                self._off_grid += 1
                self._status(
                    FeedStatusKind.DROPPED,
                    f"replayed trade {tick.get('close_price')!r} x {size} is off the tick grid",
                    count=1,
                )
                continue
            rows.append((ts, fixed, size, side))
        rows.sort(key=lambda row: row[0])
        return rows

    def _release_held(self) -> None:
        held, self._held = self._held or [], None
        self._pending.extend(held)
        self._flush()

    async def _warm_up(self, client: RithmicClient) -> None:
        s = self.settings
        now = time.time_ns()
        if s.warmup_lookback_s is not None:
            start = now - s.warmup_lookback_s * 1_000_000_000
        else:
            from tradebot_core import calendar

            start = calendar.session_bounds(calendar.trading_date_of(now))[0]
        if start >= now:
            log.info("rithmic: the session has not opened yet: no warm-up")
            self._release_held()
            return
        try:
            rows = await self._replay(client, start)
        except Exception as exc:
            self._status(
                FeedStatusKind.GAP,
                f"warm-up replay from {_iso(start)} failed ({type(exc).__name__}: {exc}); "
                "starting from live trades",
            )
            self._release_held()
            return
        kept = self._dedup.accept(rows, "replay")
        log.info("rithmic: warm-up replayed %d trades since %s", len(kept), _iso(start))
        self._emit_rows(kept, warmup=True)  # bars and indicators only: the kernel never trades them
        self._dedup.arm()  # the seam: held live trades may repeat the replay's last ones
        self._release_held()

    async def _backfill(self, client: RithmicClient, down_s: float) -> None:
        s = self.settings
        last = self._last_before_drop
        start = self._dedup.arm()
        if not s.backfill or start is None:
            self._release_held()
            self._status(
                FeedStatusKind.GAP,
                f"connection down {down_s:.3f} s after the trade at {_iso(last)}; "
                "trades of the outage are missing (backfill off)"
                if start is not None
                else f"connection down {down_s:.3f} s before any trade",
            )
            return
        await asyncio.sleep(s.settle_ms / 1000)
        try:
            rows = await self._replay(client, start)
        except Exception as exc:
            self._release_held()
            self._status(
                FeedStatusKind.GAP,
                f"connection down {down_s:.3f} s after the trade at {_iso(last)}; the "
                f"back-fill failed ({type(exc).__name__}: {exc}): trades of the outage are "
                "missing",
            )
            return
        kept = self._dedup.accept(rows, "replay")
        self._emit_rows(kept)
        self._release_held()
        self._status(
            FeedStatusKind.GAP,
            f"connection down {down_s:.3f} s after the trade at {_iso(last)}; back-filled "
            f"{len(kept)} trade(s) from the history plant, repeated trades dropped",
        )

    # -- the connection -----------------------------------------------------------------------

    def _went_down(self, why: str) -> None:
        if not self._up:
            return
        self._up = False
        self._down_since = time.monotonic()
        self._flush()  # everything received before the drop goes out first
        self._last_before_drop = self._dedup.high
        self._status(
            FeedStatusKind.DISCONNECTED,
            f"{why}; last trade at {_iso(self._dedup.high)}; the client reconnects",
        )

    def _on_connected(self, plant: str) -> None:
        if plant != "ticker":
            return
        if self._up:  # a drop too short for the watcher to see
            self._went_down("the ticker connection dropped")
        self._up = True
        down_s = time.monotonic() - (self._down_since or time.monotonic())
        self._status(
            FeedStatusKind.RECONNECTED,
            f"gap of {down_s:.3f} s: connection down after the trade at "
            f"{_iso(self._last_before_drop)}"
            + ("; back-filling it from the history plant" if self.settings.backfill else ""),
        )
        if self._held is not None:
            # a replay is running (warm-up or an earlier back-fill): it releases the held
            # trades; the trades of this outage before the re-subscription may be missing
            self._status(
                FeedStatusKind.GAP,
                f"connection down {down_s:.3f} s during a replay: trades of the outage may "
                "be missing",
            )
            return
        # the client re-subscribes right after this callback: hold live trades until the
        # outage is back-filled
        self._flush()
        self._held = []
        client = self._client_ref
        self._catch_up_task = asyncio.ensure_future(self._backfill(client, down_s))

    async def _watch(self, client: RithmicClient) -> None:
        ticker = client.plants["ticker"]
        every = self.settings.watch_ms / 1000
        while True:
            await asyncio.sleep(every)
            if self._up and not ticker.is_connected:
                self._went_down("the ticker connection dropped")
            if not self._up and self._gave_up(ticker):
                self._flush()
                raise RithmicFeedError(
                    f"lost the connection to {self.settings.gateway} and gave up after "
                    f"{self.settings.reconnect_max_attempts} reconnect attempt(s)"
                )

    @staticmethod
    def _gave_up(plant: Any) -> bool:
        tasks = getattr(plant, "_bg_tasks", None) or []
        loops = [t for t in tasks if t.get_name() == "reconnect_loop"]
        return bool(loops) and all(t.done() for t in loops) and not plant.is_connected


def _rp_code(text: str) -> list[str] | None:
    match = _RP_CODE.search(text)
    if not match:
        return None
    return [part.strip().strip("'\"") for part in match.group(1).split(",")]


@hookimpl
def register_feeds(register: Any) -> None:
    """Register the ``rithmic`` feed."""
    register(RithmicFeed)
