"""A loopback stand-in for Databento's live gateway, for tests of the ``databento_live`` feed.

It speaks the gateway side of Databento's live (Raw API) protocol well enough for the official
``databento.Live`` client: a text greeting (``lsg_version=``), a CRAM challenge (``cram=``), the
client's ``auth=<sha256(challenge|key)>-<last 5 chars of key>|dataset=...`` line answered with
``success=1|session_id=...`` (or ``success=0|error=...``), subscription lines
(``schema=...|stype_in=...|symbols=...|start=...``), ``start_session``, then a DBN stream: the
metadata header, a symbol mapping per symbol, and the records.

The records come from a numpy array of DBN trade records (``databento_dbn.TradeMsg`` layout).
The gateway keeps a "now" cursor: a subscription without ``start`` gets the records from the
cursor on; one with ``start`` replays every record with ``ts_event >= start`` (intraday replay,
as the real gateway filters it), with a ``Replay completed`` system message when it reaches the
cursor. A :class:`ConnectionPlan` per connection injects failures: drop after N records, garbage
bytes, a gateway error message, a refused replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from dataclasses import dataclass, field

import databento_dbn
import numpy as np

TRADE_DTYPE = np.dtype(databento_dbn.TradeMsg._dtypes)
MALFORMED_RECORD = bytes([TRADE_DTYPE.itemsize // 4, 0xEE]) + bytes(TRADE_DTYPE.itemsize - 2)
"""A record header with an rtype that does not exist: the DBN decoder rejects it."""
GATEWAY_VERSION = "0.0.1-loopback"


@dataclass
class ConnectionPlan:
    """What goes wrong on one authenticated connection (the i-th plan for the i-th one)."""

    drop_after: int | None = None  # close the connection after this many data records
    abort: bool = False  # drop with a TCP reset instead of a clean close
    publish_while_down: int = 0  # records the market "publishes" while the client is away
    malformed_after: int | None = None  # send an undecodable record after this many records
    malformed_gate: asyncio.Event | None = None  # wait for this before sending it
    error_after: int | None = None  # send an ErrorMsg after this many records, then close
    error_message: str = "internal gateway error"
    error_code: databento_dbn.ErrorCode = databento_dbn.ErrorCode.INTERNAL_ERROR
    refuse_replay: bool = False  # a subscription with start= gets replay_data_aged_out


@dataclass
class SessionLog:
    """What the gateway saw on one connection (for assertions)."""

    auth: dict[str, str] = field(default_factory=dict)
    authenticated: bool = False
    subscriptions: list[dict[str, str]] = field(default_factory=list)
    started: bool = False
    records_sent: int = 0


def parse_line(line: bytes) -> dict[str, str]:
    """``a=1|b=2\\n`` -> ``{"a": "1", "b": "2"}``."""
    pairs = (token.partition("=") for token in line.decode().strip().split("|"))
    return {key: value for key, _, value in pairs}


def trades_from_mbo(mbo: np.ndarray) -> np.ndarray:
    """The trade events (``action == 'T'``) of an MBO record array, as DBN trade records."""
    src = mbo[mbo["action"] == b"T"]
    out = np.zeros(len(src), dtype=TRADE_DTYPE)
    out["length"] = TRADE_DTYPE.itemsize // 4
    out["rtype"] = int(databento_dbn.RType.MBP_0.value)
    for name in (
        "publisher_id",
        "instrument_id",
        "ts_event",
        "price",
        "size",
        "action",
        "side",
        "flags",
        "ts_recv",
        "ts_in_delta",
        "sequence",
    ):
        out[name] = src[name]
    return out


class LoopbackLiveGateway:
    """An asyncio TCP server on 127.0.0.1 that serves ``records`` to ``databento.Live``."""

    def __init__(
        self,
        records: np.ndarray,
        api_key: str,
        *,
        dataset: str = "GLBX.MDP3",
        symbols: dict[str, str] | None = None,
        plans: list[ConnectionPlan] | None = None,
        chunk_records: int = 64,
    ) -> None:
        if records.dtype != TRADE_DTYPE:
            raise TypeError(f"records must have the TradeMsg dtype, not {records.dtype}")
        self.records = records
        self.api_key = api_key
        self.dataset = dataset
        instrument = int(records["instrument_id"][0]) if len(records) else 0
        self.symbols = symbols or {"ES.c.0": "ESH4"}
        self.instrument_id = instrument
        self.plans = list(plans or [])
        self.chunk_records = chunk_records
        self.cursor = 0  # index of the first record not yet published ("now")
        self.sessions: list[SessionLog] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> LoopbackLiveGateway:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    # -- protocol -------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        log = SessionLog()
        try:
            await self._serve(reader, writer, log)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: SessionLog
    ) -> None:
        challenge = secrets.token_urlsafe(24)
        writer.write(f"lsg_version={GATEWAY_VERSION}\ncram={challenge}\n".encode())
        await writer.drain()
        log.auth = parse_line(await reader.readline())
        sha, _, bucket = log.auth.get("auth", "").rpartition("-")
        expected = hashlib.sha256(f"{challenge}|{self.api_key}".encode()).hexdigest()
        if (
            sha != expected
            or bucket != self.api_key[-5:]
            or log.auth.get("dataset") != self.dataset
        ):
            writer.write(b"success=0|error=Authentication failed.\n")
            await writer.drain()
            return
        plan = self.plans[len(self.sessions)] if len(self.sessions) < len(self.plans) else None
        self.sessions.append(log)
        log.authenticated = True
        writer.write(f"success=1|session_id={len(self.sessions)}\n".encode())
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                return
            message = parse_line(line)
            if "start_session" in message:
                break
            log.subscriptions.append(message)
        log.started = True
        if await self._stream(writer, log, plan or ConnectionPlan()):
            await reader.read()  # like the real gateway, stay connected until the client leaves

    async def _stream(
        self, writer: asyncio.StreamWriter, log: SessionLog, plan: ConnectionPlan
    ) -> bool:
        """Send the session's DBN stream; False if the connection was closed on purpose."""
        sub = log.subscriptions[0]
        start = int(sub["start"]) if sub.get("start") else None
        ts = self.records["ts_event"]
        first = int(np.searchsorted(ts, start, side="left")) if start is not None else self.cursor
        session_ts = int(ts[min(first, len(ts) - 1)]) if len(ts) else 0
        metadata = databento_dbn.Metadata(
            dataset=self.dataset,
            start=session_ts,
            stype_in=databento_dbn.SType(sub["stype_in"]),
            stype_out=databento_dbn.SType.INSTRUMENT_ID,
            schema=databento_dbn.Schema.from_str(sub["schema"]),
            symbols=sub["symbols"].split(","),
            partial=[],
            not_found=[],
            mappings=[],
            ts_out=False,
            version=3,
        )
        writer.write(metadata.encode())
        for symbol in sub["symbols"].split(","):
            mapping = databento_dbn.SymbolMappingMsg(
                publisher_id=1,
                instrument_id=self.instrument_id,
                ts_event=session_ts,
                stype_in=databento_dbn.SType(sub["stype_in"]),
                stype_in_symbol=symbol,
                stype_out=databento_dbn.SType.RAW_SYMBOL,
                stype_out_symbol=self.symbols.get(symbol, symbol),
                start_ts=session_ts,
                end_ts=2**63 - 1,
            )
            writer.write(bytes(mapping))
        if start is not None and plan.refuse_replay:
            await self._error(
                writer,
                session_ts,
                "replay data aged out",
                databento_dbn.ErrorCode.REPLAY_DATA_AGED_OUT,
            )
            return False
        replay_until = self.cursor if start is not None else None
        if replay_until is not None and first >= replay_until:
            writer.write(self._system(session_ts))
            replay_until = None
        hooks = [
            n for n in (plan.drop_after, plan.malformed_after, plan.error_after) if n is not None
        ]
        stop_at = min(len(ts), first + min(hooks)) if hooks else len(ts)
        position = first
        while position < stop_at:
            end = min(stop_at, position + self.chunk_records)
            if replay_until is not None and position < replay_until < end:
                end = replay_until
            writer.write(self.records[position:end].tobytes())
            log.records_sent += end - position
            position = end
            self.cursor = max(self.cursor, position)
            if replay_until is not None and position >= replay_until:
                writer.write(self._system(int(ts[position - 1])))
                replay_until = None
            await writer.drain()
            await asyncio.sleep(0)
        sent = position - first
        if plan.malformed_after is not None and sent == plan.malformed_after:
            if plan.malformed_gate is not None:
                await plan.malformed_gate.wait()
            writer.write(MALFORMED_RECORD)
        elif plan.error_after is not None and sent == plan.error_after:
            last_ts = int(ts[position - 1]) if position else session_ts
            await self._error(writer, last_ts, plan.error_message, plan.error_code)
            return False
        elif plan.drop_after is not None and sent == plan.drop_after:
            self.cursor = min(len(ts), self.cursor + plan.publish_while_down)
            if plan.abort:
                writer.transport.abort()
            else:
                writer.close()
            return False
        await writer.drain()
        return True

    def _system(self, ts_event: int) -> bytes:
        msg = databento_dbn.SystemMsg(
            ts_event=ts_event,
            msg="Replay completed",
            code=databento_dbn.SystemCode.REPLAY_COMPLETED,
        )
        return bytes(msg)

    async def _error(
        self, writer: asyncio.StreamWriter, ts_event: int, text: str, code: databento_dbn.ErrorCode
    ) -> None:
        writer.write(bytes(databento_dbn.ErrorMsg(ts_event=ts_event, err=text, code=code)))
        await writer.drain()
        writer.close()
