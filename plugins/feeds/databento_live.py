"""Live CME trades from Databento's live gateway, through the official ``databento.Live`` client.

The feed subscribes (default: dataset ``GLBX.MDP3``, schema ``trades``, ``{symbol}.c.0``
continuous) and yields :class:`~tradebot_core.types.TickBatch` batches as records arrive: a batch
is cut at ``batch_max`` records or ``batch_max_ms`` after its first record, whichever comes first.
Records are accumulated as raw DBN bytes and converted with numpy in one go per batch
(:func:`tradebot_plugins.feeds.dbn_ticks.records_to_ticks`), never one Python object per tick.

Connection changes come out as :class:`~tradebot_core.types.FeedStatus` between batches:
``CONNECTED`` once, then for each drop ``DISCONNECTED``, and after the reconnect ``RECONNECTED``
followed by ``GAP``.

Reconnecting and the no-double-count rule
-----------------------------------------
After a drop the feed opens a new session with exponential backoff and subscribes with
``start=`` (Databento's *intraday replay*, filtered on ``ts_event``, inclusive) from
``H - replay_overlap_ms``, where ``H`` is the highest ``ts_event`` it has yielded. It remembers,
as a multiset, the exact records (all DBN fields) it yielded with ``ts_event`` in that window.
A replayed record is dropped when its ``ts_event`` is before the replay start (it was covered
before the drop), or when it is inside the window and an identical record is still in the
multiset (each match uses up one copy). Real CME data has identical trade records (same
timestamps, price, size and sequence: several fills of one packet), so a set, or a key of
``(ts_event, sequence)``, would either drop real trades or keep duplicates; the multiset does
neither. Records after the window pass untouched.

If the gateway cannot replay that far back (error ``replay_data_aged_out``), the feed resubscribes
without ``start`` and its ``GAP`` status says that ticks are missing.

The API key is only handed to the client; every message from the gateway or the client is
scrubbed of it before it is logged or raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import databento_dbn  # the DBN codec only: light; ``databento`` loads when a feed is built
import numpy as np
from pydantic import Field, SecretStr, field_validator, model_validator
from tradebot_plugins.feeds.dbn_ticks import records_to_ticks

from tradebot_core import (
    FeedStatus,
    FeedStatusKind,
    PluginContext,
    PluginSettings,
    TickBatch,
    hookimpl,
)

if TYPE_CHECKING:
    import databento

log = logging.getLogger(__name__)

API_KEY_ENV = "DATABENTO_API_KEY"
MAX_PENDING_BATCHES = 64
"""Batches waiting for the consumer before the feed stops draining the client (backpressure)."""

_FATAL_ERROR_CODES = frozenset(
    {
        databento_dbn.ErrorCode.AUTH_FAILED,
        databento_dbn.ErrorCode.API_KEY_DEACTIVATED,
        databento_dbn.ErrorCode.INVALID_SUBSCRIPTION,
    }
)
_CONNECT_FAILURE_PREFIXES = ("Connection to ", "Authentication with ")
"""How the client words a failure to reach the gateway (worth retrying), as opposed to a refusal."""


class DatabentoLiveError(RuntimeError):
    """The live feed cannot go on: the key was refused, the subscription rejected, or it gave up."""


class DatabentoLiveSettings(PluginSettings):
    """YAML section ``feed.databento_live``."""

    api_key: SecretStr | None = Field(
        default=None, description=f"Databento API key; when unset, ${API_KEY_ENV} is used"
    )
    dataset: str = "GLBX.MDP3"
    schema_: Literal["trades", "tbbo", "mbp-1", "mbo"] = Field(default="trades", alias="schema")
    symbols: tuple[str, ...] = Field(
        default=(), description="what to subscribe to; empty: '<run symbol>.c.0' (continuous)"
    )
    stype_in: Literal["raw_symbol", "continuous", "parent", "instrument_id"] = "continuous"
    gateway: str | None = Field(default=None, description="host override (tests, proxies)")
    port: int = Field(default=13000, ge=1, le=65535)
    heartbeat_interval_s: int | None = Field(default=None, ge=5, le=1800)
    batch_max: int = Field(default=1_000, ge=1, description="records per TickBatch at most")
    batch_max_ms: int = Field(default=50, ge=1, description="flush a partial batch after this")
    reconnect_initial_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    reconnect_max_attempts: int | None = Field(
        default=None, ge=0, description="failed attempts in a row before giving up; None: never"
    )
    replay_overlap_ms: int = Field(
        default=0, ge=0, description="replay this much before the last ts_event seen"
    )

    model_config = PluginSettings.model_config | {"populate_by_name": True}

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(s.strip() for s in value.split(",") if s.strip())
        return value

    @model_validator(mode="after")
    def _check_backoff(self) -> DatabentoLiveSettings:
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be >= reconnect_initial_s")
        return self


@dataclass
class _End:
    """Put last in the output queue: the stream ends, with ``error`` raised if set."""

    error: BaseException | None = None


class _Fatal(Exception):
    """Stop without retrying."""


class ReplayDeduper:
    """Drops the records a replay after a reconnect sends again (rule in the module docstring).

    Works on raw DBN record arrays; the per-record Python work is limited to records inside the
    replay window, which are few (those at the boundary timestamp, by default).
    """

    def __init__(self, dtype: np.dtype, overlap_ns: int = 0) -> None:
        self._dtype = dtype
        self._overlap_ns = overlap_ns
        self._recent = np.empty(0, dtype=dtype)  # yielded, ts_event >= high - overlap
        self.high: int | None = None  # highest ts_event yielded
        self._window: tuple[int, int] | None = None  # (replay start, high at the drop)
        self._seen: Counter[bytes] = Counter()
        self.dropped = 0  # duplicates dropped since the start
        self.accepted = 0  # records accepted since the start

    def replay_start(self) -> int | None:
        """Where to resubscribe from (``None``: nothing yielded yet)."""
        if self.high is None:
            return None
        return max(0, self.high - self._overlap_ns)

    def arm(self, fallback_start: int | None = None) -> int | None:
        """A reconnect with replay begins: remember what was yielded in the window.

        Returns the replay start: ``fallback_start`` (e.g. when the dropped session began) if
        nothing was yielded yet, ``None`` if there is neither.
        """
        start = self.replay_start()
        if start is None or self.high is None:
            self.disarm()
            return fallback_start
        self._window = (start, self.high)
        self._seen = Counter(row.tobytes() for row in self._recent)
        return start

    def disarm(self) -> None:
        """The reconnect did not replay (no ``start``): nothing to drop."""
        self._window = None
        self._seen.clear()

    def accept(self, records: np.ndarray) -> np.ndarray:
        """The records not yielded before; they count as yielded from now on."""
        if len(records) == 0:
            return records
        ts = records["ts_event"]
        if self._window is not None:
            start, high = self._window
            keep = ts >= start
            inside = np.flatnonzero(keep & (ts <= high))
            for i in inside:
                key = records[i].tobytes()
                if self._seen[key] > 0:
                    self._seen[key] -= 1
                    keep[i] = False
            self.dropped += len(records) - int(keep.sum())
            records = records[keep]
            ts = records["ts_event"]
            if len(ts) and int(ts.max()) > high + self._overlap_ns:
                self.disarm()  # past the window, taking late arrivals into account
            if len(records) == 0:
                return records
        self.accepted += len(records)
        high = int(ts.max())
        if self.high is None or high > self.high:
            self.high = high
        recent = np.concatenate([self._recent, records])
        self._recent = recent[recent["ts_event"] >= self.high - self._overlap_ns]
        return records


class _ClientErrorTap(logging.Handler):
    """Keeps the last error the client's protocol logged (e.g. a DBN decoding error).

    The client closes the connection itself when it cannot decode what the gateway sent, and
    only says why in its log; this lets the feed name the cause in its own status and errors.
    """

    LOGGER = "databento.live.protocol"

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text = f"{text}: {record.exc_info[1]}"
        self.last = text

    def __enter__(self) -> _ClientErrorTap:
        logging.getLogger(self.LOGGER).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(self.LOGGER).removeHandler(self)


class _PendingRecords:
    """Raw DBN bytes of the records of the batch being built."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.count = 0
        self.first_at = 0.0  # loop time of the first record

    def take(self) -> bytes:
        data = bytes(self.data)
        self.data.clear()
        self.count = 0
        return data


def _iso(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "none"
    secs, ns = divmod(ts_ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"


class DatabentoLiveFeed:
    """Databento live trades as tick batches, with reconnects that neither lose nor repeat."""

    name: ClassVar[str] = "databento_live"
    Settings = DatabentoLiveSettings
    live: ClassVar[bool] = True  # the pipeline does not pace a live feed

    def __init__(self, settings: DatabentoLiveSettings, context: PluginContext) -> None:
        self.settings = settings
        self.symbol = context.symbol
        key = (
            settings.api_key.get_secret_value() if settings.api_key else os.environ.get(API_KEY_ENV)
        )
        if not key or not key.strip():
            raise DatabentoLiveError(
                f"no Databento API key: set feed.databento_live.api_key or ${API_KEY_ENV}"
            )
        self._key = key.strip()
        self._symbols = settings.symbols or (f"{context.symbol}.c.0",)
        from databento.common.constants import SCHEMA_STRUCT_MAP

        schema = databento_dbn.Schema.from_str(settings.schema_)
        self._record_cls = SCHEMA_STRUCT_MAP[schema]
        self._dtype = np.dtype(self._record_cls._dtypes)
        self._live: databento.Live | None = None
        self._streaming = False
        self._tap = _ClientErrorTap()
        self._reset()

    def _reset(self) -> None:
        """Fresh state for a stream: each call of :meth:`stream` is a new live session."""
        overlap_ns = self.settings.replay_overlap_ms * 1_000_000
        self._dedup = ReplayDeduper(self._dtype, overlap_ns)
        self._pending = _PendingRecords()
        self._out: deque[TickBatch | FeedStatus | _End] = deque()
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        self._batch_started = asyncio.Event()
        self._fatal: str | None = None  # a gateway error that must stop the feed
        self._replay_refused = False
        # where the first session began: its metadata start, else the wall clock before it
        self._session_start_ns: int | None = None
        self._awaiting_metadata = False
        self._unexpected: set[str] = set()

    def __repr__(self) -> str:
        return f"DatabentoLiveFeed(dataset={self.settings.dataset!r}, symbols={self._symbols!r})"

    @property
    def duplicates_dropped(self) -> int:
        """Replayed records dropped because they had been yielded before a reconnect."""
        return self._dedup.dropped

    def scrub(self, text: str) -> str:
        """``text`` without the API key in it."""
        return text.replace(self._key, "<api key>")

    async def stream(self) -> AsyncIterator[TickBatch | FeedStatus]:
        """Tick batches and status changes, as they arrive, until stopped or a fatal error."""
        if self._streaming:
            raise RuntimeError("DatabentoLiveFeed.stream() is already being iterated")
        self._streaming = True
        self._reset()
        self._tap.__enter__()
        supervisor = asyncio.create_task(self._supervise(), name="databento_live")
        timer = asyncio.create_task(self._flush_timer(), name="databento_live_flush")
        try:
            while True:
                self._wakeup.clear()
                while self._out:
                    item = self._out.popleft()
                    if len(self._out) < MAX_PENDING_BATCHES:
                        self._drained.set()
                    if isinstance(item, _End):
                        if item.error is not None:
                            raise item.error
                        return
                    yield item
                await self._wakeup.wait()
        finally:
            for task in (supervisor, timer):
                task.cancel()
            for task in (supervisor, timer):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._terminate()
            self._tap.__exit__()
            self._streaming = False

    # -- output ---------------------------------------------------------------------------------

    def _emit(self, item: TickBatch | FeedStatus | _End) -> None:
        self._out.append(item)
        self._wakeup.set()

    def _status(self, kind: FeedStatusKind, detail: str, ts_ns: int | None = None) -> None:
        log.log(
            logging.INFO if kind is FeedStatusKind.CONNECTED else logging.WARNING,
            "databento live %s: %s",
            kind.value,
            detail,
        )
        self._emit(
            FeedStatus(kind=kind, ts_ns=time.time_ns() if ts_ns is None else ts_ns, detail=detail)
        )

    def _flush(self) -> None:
        """Turn the pending records into a TickBatch (after dropping replayed duplicates)."""
        if not self._pending.count:
            return
        records = np.frombuffer(self._pending.take(), dtype=self._dtype)
        records = self._dedup.accept(records)
        ticks = records_to_ticks(records)
        if len(ticks):
            self._emit(TickBatch(self.symbol, ticks))

    async def _flush_timer(self) -> None:
        max_s = self.settings.batch_max_ms / 1000
        loop = asyncio.get_running_loop()
        while True:
            await self._batch_started.wait()
            self._batch_started.clear()
            while self._pending.count:
                delay = self._pending.first_at + max_s - loop.time()
                if delay <= 0:
                    self._flush()
                    break
                await asyncio.sleep(delay)

    # -- connection -----------------------------------------------------------------------------

    async def _supervise(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never lose what is pending, whatever failed
            self._flush()
            self._emit(_End(exc))

    async def _run(self) -> None:
        from databento.common.error import BentoError

        s = self.settings
        failures = 0
        connected_once = False
        down_since: float | None = None
        while True:
            start = None
            if connected_once and not self._replay_refused:
                start = self._dedup.arm(fallback_start=self._session_start_ns)
            else:
                self._dedup.disarm()
            if not connected_once:
                self._session_start_ns = None
                wall_start_ns = time.time_ns()
            try:
                live = await self._connect(start)
            except _Fatal as exc:
                raise DatabentoLiveError(str(exc)) from None
            except BentoError as exc:
                failures += 1
                reason = self.scrub(str(exc))
                if s.reconnect_max_attempts is not None and failures > s.reconnect_max_attempts:
                    raise DatabentoLiveError(
                        f"gave up on the Databento live gateway after {failures} failed "
                        f"attempt(s): {reason}"
                    ) from None
                await self._backoff(failures, reason)
                continue
            if not connected_once:
                connected_once = True
                self._session_start_ns = wall_start_ns  # until the metadata says better
                self._awaiting_metadata = True
                self._status(
                    FeedStatusKind.CONNECTED,
                    f"{s.dataset} {s.schema_} {','.join(self._symbols)} session {live.session_id}",
                )
            else:
                self._reconnected(live, start, down_since)
            self._replay_refused = False
            accepted_before = self._dedup.accepted
            reason = await self._pump(live)
            self._terminate()
            self._flush()
            if self._fatal is not None:
                raise DatabentoLiveError(self._fatal)
            down_since = time.monotonic()
            self._status(
                FeedStatusKind.DISCONNECTED,
                f"{reason}; last ts_event {_iso(self._dedup.high)}",
            )
            if self._dedup.accepted != accepted_before:
                failures = 0  # the session delivered something: start the backoff afresh
            failures += 1
            if s.reconnect_max_attempts is not None and failures > s.reconnect_max_attempts:
                raise DatabentoLiveError(
                    f"Databento live connection lost ({reason}) and reconnecting is disabled "
                    f"or exhausted (reconnect_max_attempts={s.reconnect_max_attempts})"
                )
            await self._backoff(failures, reason)

    def _reconnected(
        self, live: databento.Live, start: int | None, down_since: float | None
    ) -> None:
        down_s = time.monotonic() - down_since if down_since is not None else 0.0
        self._status(
            FeedStatusKind.RECONNECTED,
            f"after {down_s:.3f} s, session {live.session_id}",
        )
        last = self._dedup.high
        if start is not None:
            detail = (
                f"connection down {down_s:.3f} s after last ts_event {_iso(last)}; "
                f"replaying from {_iso(start)} (intraday replay), repeated records dropped"
            )
        else:
            detail = (
                f"connection down {down_s:.3f} s after last ts_event {_iso(last)}; "
                "no replay: ticks from then until the first new one are missing"
            )
        self._status(FeedStatusKind.GAP, detail, ts_ns=last if last is not None else None)

    async def _backoff(self, failures: int, reason: str) -> None:
        s = self.settings
        delay = min(s.reconnect_max_s, s.reconnect_initial_s * 2 ** (failures - 1))
        log.warning("databento live: %s; reconnect attempt %d in %.3f s", reason, failures, delay)
        await asyncio.sleep(delay)

    async def _connect(self, start: int | None) -> databento.Live:
        """A subscribed, authenticated (not yet started) client; BentoError if worth retrying."""
        import databento
        from databento.common.error import BentoError

        s = self.settings
        self._fatal = None
        try:
            live = databento.Live(
                key=self._key,
                gateway=s.gateway,
                port=s.port,
                heartbeat_interval_s=s.heartbeat_interval_s,
            )
        except ValueError as exc:
            raise _Fatal(
                f"Databento live client refused the settings: {self.scrub(str(exc))}"
            ) from None
        self._live = live
        # subscribe() blocks until the gateway authenticates us: run it off the event loop
        call = asyncio.ensure_future(
            asyncio.to_thread(
                live.subscribe,
                dataset=s.dataset,
                schema=s.schema_,
                symbols=list(self._symbols),
                stype_in=s.stype_in,
                start=start,
            )
        )
        try:
            await asyncio.shield(call)
        except asyncio.CancelledError:
            call.add_done_callback(lambda _: live.terminate())
            raise
        except BentoError as exc:
            self._terminate()
            message = self.scrub(str(exc))
            if message.startswith(_CONNECT_FAILURE_PREFIXES):
                raise BentoError(message) from None
            raise _Fatal(
                f"Databento live gateway refused the session: {message} "
                f"(check the API key in feed.databento_live.api_key or ${API_KEY_ENV}, "
                "and the dataset/symbols)"
            ) from None
        except ValueError as exc:
            self._terminate()
            raise _Fatal(f"Databento live subscription refused: {self.scrub(str(exc))}") from None
        return live

    def _terminate(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            with contextlib.suppress(Exception):
                live.terminate()

    async def _pump(self, live: databento.Live) -> str:
        """Read one session until it ends; return why it ended."""
        from databento.common.error import BentoError

        record_cls = self._record_cls
        pending = self._pending
        batch_max = self.settings.batch_max
        loop = asyncio.get_running_loop()
        self._tap.last = None
        try:
            async for record in live:
                if type(record) is record_cls:
                    if not pending.count:
                        pending.first_at = loop.time()
                        self._batch_started.set()
                    pending.data += bytes(record)
                    pending.count += 1
                    if pending.count >= batch_max:
                        self._flush()
                        await self._wait_for_consumer()
                else:
                    if self._awaiting_metadata and live.metadata is not None:
                        self._session_start_ns = int(live.metadata.start)
                        self._awaiting_metadata = False
                    self._on_other_record(record)
                    if self._fatal is not None:
                        return self._fatal
        except BentoError as exc:
            return f"session failed: {self.scrub(str(exc))}"
        if self._tap.last is not None:
            return f"the client closed the connection after an error: {self.scrub(self._tap.last)}"
        return "the gateway closed the connection"

    async def _wait_for_consumer(self) -> None:
        while len(self._out) >= MAX_PENDING_BATCHES:
            self._drained.clear()
            await self._drained.wait()

    def _on_other_record(self, record: Any) -> None:
        if isinstance(record, databento_dbn.ErrorMsg):
            code = getattr(record, "code", None)
            message = self.scrub(str(record.err))
            log.error("Databento live gateway error (code %s): %s", code, message)
            if code == databento_dbn.ErrorCode.REPLAY_DATA_AGED_OUT:
                self._replay_refused = True
            elif code in _FATAL_ERROR_CODES:
                self._fatal = f"Databento live gateway error ({code}): {message}"
        elif isinstance(record, databento_dbn.SystemMsg):
            log.debug("Databento live system message: %s", record.msg)
        elif isinstance(record, databento_dbn.SymbolMappingMsg):
            log.info(
                "Databento live: %s is instrument %s (%s)",
                record.stype_in_symbol,
                record.instrument_id,
                record.stype_out_symbol,
            )
        else:
            kind = type(record).__name__
            if kind not in self._unexpected:
                self._unexpected.add(kind)
                log.error(
                    "Databento live: skipping %s records, not part of the %s schema",
                    kind,
                    self.settings.schema_,
                )


@hookimpl
def register_feeds(register: Any) -> None:
    """Register the ``databento_live`` feed."""
    register(DatabentoLiveFeed)
