"""The ``file`` feed: replay trades from DBN, CSV or Parquet files.

**DBN** (``.dbn``, ``.dbn.zst``; schemas trades, tbbo, mbp-1, mbo), read with Databento's own
``DBNStore`` in chunks of ``batch_size`` records; only trade records become ticks and the
aggressor side comes from the record (``B`` buyer, ``A`` seller). The instrument is found through
the file's own symbology: ``symbol:`` names one of the symbols the file was requested with (a
raw symbol such as ``ESH4``, or ``ES.c.0``); a file of one symbol needs none.

**CSV / Parquet** (``.csv``, ``.csv.gz``, ``.parquet``): one trade per row with columns

| column | what |
|---|---|
| ``ts_event`` | ns since the epoch (integer) or ISO-8601 UTC text (``2024-11-13T14:30:00.5Z``) |
| ``price`` | decimal text (``5000.25``, exact), a decimal, or a float snapped to the tick grid |
| ``size`` | contracts, a whole number > 0 |
| ``side`` | aggressor: ``B``/``buy``/``1`` or ``A``/``sell``/``-1``; anything else is unknown |

Rows that cannot be read (no price, size <= 0, a price off the tick grid, a bad timestamp) are
dropped and counted, and a warning names the file and the lines (DBN: the record numbers). A
missing or unreadable file is an error that names it.

Each file is one or more sessions: the feed says ``SESSION_START``/``SESSION_END`` around every
CME trading day in it (days roll at 18:00 ET). With ``date:`` set, only that trading day plays
(``tradebot replay``, backtests).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import glob
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from datetime import date as Date  # a setting is called 'date'
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from tradebot_core import (
    PRICE_SCALE,
    TICK_DTYPE,
    FeedStatus,
    FeedStatusKind,
    Instrument,
    PluginContext,
    PluginSettings,
    TickBatch,
    hookimpl,
)
from tradebot_core.calendar import EXCHANGE_TZ, trading_date_of

from .dbn_ticks import ticks_at

log = logging.getLogger(__name__)

DBN_SUFFIXES = (".dbn", ".dbn.zst")
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
RECORD_TYPES = {"trades": 0x00, "tbbo": 0x01, "mbp-1": 0x01, "mbo": 0xA0}
"""The DBN record type (``rtype``) of each schema this feed reads."""
SHOWN = 10  # malformed lines named in a warning


class FileFeedSettings(PluginSettings):
    path: str | list[str]
    """A file, a glob (``data/*.dbn.zst``) or a list of either, played in name order."""
    symbol: str | None = None
    """For DBN files holding several symbols: the one to play (e.g. ``ESH4``)."""
    date: Date | None = None
    """Play only this CME trading day."""
    batch_size: int = Field(default=10_000, ge=1)
    """Records read (DBN) or ticks yielded (CSV, Parquet) at a time."""

    @field_validator("path")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        if not value:
            raise ValueError("give a file, a glob or a list of them")
        return value


class FileFeedError(Exception):
    """A file that cannot be replayed; the message names it."""


def resolve_paths(spec: str | list[str]) -> list[Path]:
    """The files a ``path`` setting names, globs expanded in name order; each must exist."""
    paths: list[Path] = []
    for item in [spec] if isinstance(spec, str) else spec:
        matches = sorted(glob.glob(item)) if any(c in item for c in "*?[") else [item]
        if not matches:
            raise FileFeedError(f"no file matches {item!r}")
        for match in matches:
            path = Path(match)
            if not path.is_file():
                raise FileFeedError(f"file not found: {path}")
            if not path.name.endswith(DBN_SUFFIXES + TABLE_SUFFIXES):
                raise FileFeedError(
                    f"{path}: unknown format (expected {', '.join(DBN_SUFFIXES + TABLE_SUFFIXES)})"
                )
            paths.append(path)
    return paths


@dataclass(frozen=True, slots=True)
class Interval:
    """One symbology interval: ``instrument_id`` stands for the symbol from ``start_ns`` to
    ``end_ns`` (UTC days, as in DBN metadata)."""

    instrument_id: int
    start_ns: int
    end_ns: int


class FileFeed:
    """Replays trade files, one session per CME trading day in each file."""

    name = "file"
    Settings = FileFeedSettings

    def __init__(self, settings: FileFeedSettings, context: PluginContext) -> None:
        self.settings = settings
        self.symbol = context.symbol
        self.instrument = context.instrument
        try:
            self.paths = resolve_paths(settings.path)
        except FileFeedError as exc:
            raise ValueError(str(exc)) from None
        self.dropped = 0
        """Rows or trades dropped as malformed so far."""

    @classmethod
    def day_settings(cls, settings: dict[str, Any], day: date) -> dict[str, Any]:
        return {**settings, "date": day.isoformat()}

    async def stream(self) -> AsyncIterator[TickBatch | FeedStatus]:
        wanted = self.settings.date
        reported = 0
        for path in self.paths:
            open_day: date | None = None
            last_ts = 0
            for ticks in self._chunks(path):
                if self.dropped > reported:  # the run counts what the feed dropped too
                    yield FeedStatus(
                        kind=FeedStatusKind.DROPPED,
                        ts_ns=last_ts or int(ticks["ts_event"][0]),
                        detail=f"malformed rows in {path.name}",
                        count=self.dropped - reported,
                    )
                    reported = self.dropped
                for day, part in split_by_day(ticks):
                    if wanted is not None and day != wanted:
                        continue
                    if day != open_day:
                        if open_day is not None:
                            yield _status(FeedStatusKind.SESSION_END, last_ts, open_day)
                        open_day = day
                        yield _status(FeedStatusKind.SESSION_START, int(part["ts_event"][0]), day)
                    yield TickBatch(self.symbol, part)
                    last_ts = int(part["ts_event"][-1])
                    await asyncio.sleep(0)
                if wanted is not None and trading_date_of(int(ticks["ts_event"][-1])) > wanted:
                    break  # files are in time order: the day is over
            if self.dropped > reported:
                yield FeedStatus(
                    kind=FeedStatusKind.DROPPED,
                    ts_ns=last_ts,
                    detail=f"malformed rows in {path.name}",
                    count=self.dropped - reported,
                )
                reported = self.dropped
            if open_day is not None:
                yield _status(FeedStatusKind.SESSION_END, last_ts, open_day)

    # -- reading -----------------------------------------------------------------------------

    def _chunks(self, path: Path) -> Iterator[np.ndarray]:
        reader = self._dbn if path.name.endswith(DBN_SUFFIXES) else self._table
        for ticks in reader(path):
            if len(ticks):
                yield ticks

    def _dbn(self, path: Path) -> Iterator[np.ndarray]:
        with contextlib.ExitStack() as stack:
            try:
                reader, metadata = _open_dbn(path, stack)
                schema = str(metadata.schema) if metadata.schema is not None else ""
            except Exception as exc:
                raise FileFeedError(f"{path}: not a readable DBN file: {exc}") from exc
            if schema not in RECORD_TYPES:
                raise FileFeedError(
                    f"{path}: schema {schema or 'mixed'!r} holds no trades the feed can read "
                    f"(use one of {', '.join(RECORD_TYPES)})"
                )
            intervals = self._intervals(metadata, path)
            drops = _Drops(path, "records")
            dtype = _record_dtype(schema)
            chunk_bytes = dtype.itemsize * self.settings.batch_size
            while True:
                try:
                    buffer = _read_up_to(reader, chunk_bytes)
                except Exception as exc:
                    raise FileFeedError(
                        f"{path}: cannot be read past record {drops.offset}: {exc}"
                    ) from exc
                if not buffer:
                    break
                loose = len(buffer) % dtype.itemsize
                if loose:  # the end of the file: a truncated record
                    log.warning(
                        "%s: after record %d: DBN file is truncated or contains an incomplete "
                        "record",
                        path,
                        drops.offset,
                    )
                    buffer = buffer[:-loose]
                records = np.frombuffer(buffer, dtype=dtype)
                yield self._dbn_ticks(records, schema, intervals, path, drops)
                if loose or len(buffer) < chunk_bytes:
                    break
            self.dropped += drops.report()

    def _dbn_ticks(
        self,
        records: np.ndarray,
        schema: str,
        intervals: list[Interval] | None,
        path: Path,
        drops: _Drops,
    ) -> np.ndarray:
        """One chunk of records -> checked ticks; malformed records and trades are dropped."""
        broken = (records["rtype"] != RECORD_TYPES[schema]) | (
            records["length"].astype(np.int64) * 4 != records.dtype.itemsize
        )
        keep = ~broken
        if intervals is None:
            ids = np.unique(records["instrument_id"][keep])
            if len(ids) > 1:
                raise FileFeedError(
                    f"{path} holds several instruments (ids {', '.join(map(str, ids[:5]))}) and "
                    "no symbology to tell them apart: it cannot be replayed as one instrument"
                )
        else:
            keep &= _in_intervals(records, intervals)
        keep &= records["action"] == b"T"
        positions = np.flatnonzero(keep)
        ticks = ticks_at(records, positions)
        no_size = ticks["size"] <= 0
        off_grid = ticks["price"] % self.instrument.tick_fixed != 0
        drops.add(f"records not of the {schema} schema", np.flatnonzero(broken))
        drops.add("trades of size 0", positions[no_size])
        drops.add(self._off_grid, positions[off_grid & ~no_size])
        drops.offset += len(records)
        bad = no_size | off_grid
        return ticks[~bad] if bad.any() else ticks

    @property
    def _off_grid(self) -> str:
        return f"trades off the {self.instrument.symbol} tick grid of {self.instrument.tick_size}"

    def _intervals(self, metadata: Any, path: Path) -> list[Interval] | None:
        """Which instrument ids (and when) stand for the symbol to play; None: no symbology."""
        mappings = metadata.mappings or {}
        wanted = self.settings.symbol
        if wanted is None:
            if not mappings:
                return None
            if len(mappings) > 1:
                raise FileFeedError(
                    f"{path} holds {len(mappings)} symbols ({', '.join(sorted(mappings))}): "
                    "choose one with feed.file.symbol"
                )
            wanted = next(iter(mappings))
        if wanted not in mappings:
            known = ", ".join(sorted(mappings)) or "none"
            raise FileFeedError(f"{path}: no symbol {wanted!r} in this file (it has: {known})")
        intervals = []
        for interval in mappings[wanted]:
            try:
                instrument_id = int(interval["symbol"])
            except ValueError:
                raise FileFeedError(
                    f"{path}: symbol {wanted!r} maps to {interval['symbol']!r}, not to an "
                    "instrument id: this file's symbology cannot be used"
                ) from None
            intervals.append(
                Interval(
                    instrument_id, _day_ns(interval["start_date"]), _day_ns(interval["end_date"])
                )
            )
        return intervals

    def _table(self, path: Path) -> Iterator[np.ndarray]:
        import pyarrow as pa
        import pyarrow.csv
        import pyarrow.parquet

        try:
            if path.name.endswith(".parquet"):
                table = pyarrow.parquet.read_table(path)
            else:
                text = {column: pa.string() for column in ("price", "side", "size")}
                options = pyarrow.csv.ConvertOptions(column_types=text)
                table = pyarrow.csv.read_csv(path, convert_options=options)
        except Exception as exc:
            raise FileFeedError(f"{path}: cannot be read: {exc}") from exc
        missing = {"ts_event", "price", "size"} - set(table.column_names)
        if missing:
            raise FileFeedError(
                f"{path}: missing column(s) {', '.join(sorted(missing))} "
                "(a trade file needs ts_event, price, size and optionally side)"
            )
        ticks, bad = table_to_ticks(table, self.instrument)
        parquet = path.name.endswith(".parquet")
        drops = _Drops(path, "rows" if parquet else "lines", offset=0 if parquet else 1)
        drops.add("malformed rows", np.flatnonzero(bad))  # CSV: line 1 is the header
        self.dropped += drops.report()
        order = np.argsort(ticks["ts_event"], kind="stable")
        ticks = ticks[order]
        for start in range(0, len(ticks), self.settings.batch_size):
            yield ticks[start : start + self.settings.batch_size]


class _Drops:
    """What a file lost, by reason, told once per file: counts and the first positions."""

    def __init__(self, path: Path, unit: str, offset: int = 0) -> None:
        self.path, self.unit = path, unit
        self.offset = offset  # file position (0-based) of the current chunk's first row
        self.found: dict[str, tuple[int, list[int]]] = {}

    def add(self, reason: str, rows: np.ndarray) -> None:
        if not len(rows):
            return
        count, shown = self.found.get(reason, (0, []))
        shown = shown + [self.offset + int(r) + 1 for r in rows[: SHOWN - len(shown)]]
        self.found[reason] = (count + len(rows), shown)

    def report(self) -> int:
        """Log one warning per reason; the number of rows dropped."""
        for reason, (count, shown) in self.found.items():
            more = "..." if count > len(shown) else ""
            numbers = ", ".join(map(str, shown))
            log.warning(
                "%s: dropped %d %s (%s %s%s)", self.path, count, reason, self.unit, numbers, more
            )
        return sum(count for count, _ in self.found.values())


def split_by_day(ticks: np.ndarray) -> Iterator[tuple[date, np.ndarray]]:
    """Split time-ordered ticks where they cross 18:00 ET, the CME trading-day roll."""
    ts = ticks["ts_event"]
    first, last = trading_date_of(int(ts[0])), trading_date_of(int(ts[-1]))
    if first == last:
        yield first, ticks
        return
    day, start = first, 0
    while day < last:
        roll = datetime.combine(day, time(18), EXCHANGE_TZ)
        cut = int(np.searchsorted(ts, int(roll.timestamp()) * 10**9, side="left"))
        if cut > start:
            yield day, ticks[start:cut]
        start, day = max(start, cut), day + timedelta(days=1)
    if start < len(ticks):
        yield last, ticks[start:]


def table_to_ticks(table: Any, instrument: Instrument) -> tuple[np.ndarray, np.ndarray]:
    """An Arrow table of trades -> (ticks, malformed-row mask); malformed rows are dropped."""
    n = table.num_rows
    ts, ts_bad = _timestamps(table.column("ts_event"))
    price, price_bad = _prices(table.column("price"), instrument)
    size, size_bad = _sizes(table.column("size"))
    side = np.zeros(n, dtype=np.int8)
    if "side" in table.column_names:
        side = _sides(table.column("side"))
    bad = ts_bad | price_bad | size_bad
    good = ~bad
    ticks = np.empty(int(good.sum()), dtype=TICK_DTYPE)
    ticks["ts_event"] = ts[good]
    ticks["price"] = price[good]
    ticks["size"] = size[good]
    ticks["side"] = side[good]
    return ticks, bad


_ISO = re.compile(
    r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)?$", re.IGNORECASE
)


def _timestamps(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """ns integers or ISO-8601 text -> (ns since the epoch, bad mask)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(column.type):
        values = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        return values, values <= 0
    if pa.types.is_timestamp(column.type):
        values = pc.cast(column, pa.timestamp("ns", tz=column.type.tz)).cast(pa.int64())
        bad = pc.is_null(values).to_numpy(zero_copy_only=False)
        return values.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), bad
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    for kind in (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns")):  # all with offsets, or none
        try:
            values = pc.cast(text, kind).cast(pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        bad = pc.is_null(values).to_numpy(zero_copy_only=False)
        return values.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), bad
    # mixed or partly broken: one value at a time (only on this slow path)
    strings = text.to_pylist()
    out = np.zeros(len(strings), dtype=np.int64)
    bad = np.zeros(len(strings), dtype=bool)
    for i, value in enumerate(strings):
        parsed = _iso_ns(value)
        if parsed is None:
            bad[i] = True
        else:
            out[i] = parsed
    return out, bad


def _iso_ns(value: str | None) -> int | None:
    match = _ISO.match(value or "")
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    try:
        seconds = int(np.datetime64(f"{day}T{clock}", "s").astype(np.int64))
    except ValueError:
        return None
    ns = seconds * 10**9 + int((fraction or "").ljust(9, "0"))
    if zone and zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        ns -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * 10**9
    return ns


def _prices(column: Any, instrument: Instrument) -> tuple[np.ndarray, np.ndarray]:
    """Prices -> (fixed-point, bad mask). Text and decimals are exact; floats snap to the grid."""
    import pyarrow as pa

    tick = instrument.tick_fixed
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        values = column.to_numpy(zero_copy_only=False).astype(float)
        with np.errstate(invalid="ignore"):
            ticks = np.rint(values * PRICE_SCALE / tick)
            off = np.abs(values * PRICE_SCALE - ticks * tick) > 1e-6 * tick
        bad = ~np.isfinite(values) | off
        return np.where(bad, 0, ticks).astype(np.int64) * tick, bad
    # text or decimal: few distinct prices, each parsed exactly with Decimal
    text = column.cast(pa.string()).fill_null("").to_numpy(zero_copy_only=False).astype(str)
    unique, inverse = np.unique(np.char.strip(text), return_inverse=True)
    fixed = np.zeros(len(unique), dtype=np.int64)
    ok = np.zeros(len(unique), dtype=bool)
    for i, value in enumerate(unique.tolist()):
        try:
            fixed[i] = instrument.to_fixed(value)
            ok[i] = fixed[i] % tick == 0
        except (ValueError, ArithmeticError, OverflowError):
            ok[i] = False
    return fixed[inverse], ~ok[inverse]


def _sizes(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sizes -> (contracts, bad mask): a whole number from 1 to 2**31 - 1."""
    import pyarrow as pa

    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        values = column.to_numpy(zero_copy_only=False).astype(float)
    else:
        text = column.cast(pa.string()).fill_null("").to_numpy(zero_copy_only=False).astype(str)
        unique, inverse = np.unique(np.char.strip(text), return_inverse=True)
        parsed = np.full(len(unique), np.nan)
        for i, value in enumerate(unique.tolist()):
            with contextlib.suppress(ValueError):
                parsed[i] = float(value)
        values = parsed[inverse]
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values <= 0) | (values >= 2**31) | (values % 1 != 0)
    return np.where(bad, 0, values).astype(np.int64), bad


def _sides(column: Any) -> np.ndarray:
    """Aggressor text or numbers -> +1 buy, -1 sell, 0 unknown."""
    import pyarrow as pa

    text = column.cast(pa.string()).fill_null("").to_numpy(zero_copy_only=False).astype(str)
    text = np.char.lower(np.char.strip(text))
    side = np.where(np.isin(text, ["b", "buy", "1", "+1", "1.0"]), 1, 0)
    return np.where(np.isin(text, ["a", "s", "sell", "-1", "-1.0"]), -1, side).astype(np.int8)


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_DBN_MAGIC = b"DBN"


def _open_dbn(path: Path, stack: contextlib.ExitStack) -> tuple[Any, Any]:
    """A reader positioned at the first record of a DBN file (plain or zstd), and its metadata.

    Read with the light ``databento_dbn`` codec (what ``databento.DBNStore`` does underneath),
    not the ``databento`` client, which takes most of a second to import.
    """
    import databento_dbn

    raw = stack.enter_context(path.open("rb"))
    magic = raw.read(4)
    raw.seek(0)
    if magic == _ZSTD_MAGIC:
        import zstandard

        reader = stack.enter_context(zstandard.ZstdDecompressor().stream_reader(raw))
    elif magic.startswith(_DBN_MAGIC):
        reader = raw
    else:
        raise ValueError("neither DBN nor zstd-compressed DBN")
    prelude = _read_up_to(reader, 8)
    if len(prelude) < 8 or not prelude.startswith(_DBN_MAGIC):
        raise ValueError("no DBN header")
    length = int.from_bytes(prelude[4:8], "little")
    header = _read_up_to(reader, length)
    if len(header) < length:
        raise ValueError("the DBN header is cut short")
    metadata = databento_dbn.Metadata.decode(
        prelude + header, upgrade_policy=databento_dbn.VersionUpgradePolicy.AS_IS
    )
    return reader, metadata


@functools.cache
def _record_dtype(schema: str) -> np.dtype:
    """The numpy layout of a schema's records (the same in DBN versions 1 to 3 for these)."""
    import databento_dbn

    struct = {
        "trades": databento_dbn.TradeMsg,
        "tbbo": databento_dbn.MBP1Msg,
        "mbp-1": databento_dbn.MBP1Msg,
        "mbo": databento_dbn.MBOMsg,
    }[schema]
    return np.dtype(struct._dtypes)


def _read_up_to(reader: Any, size: int) -> bytes:
    """``size`` bytes, fewer only at the end of the stream."""
    parts = []
    while size > 0:
        part = reader.read(size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def _in_intervals(records: np.ndarray, intervals: list[Interval]) -> np.ndarray:
    """Records whose instrument stands for the symbol at their time (``ts_recv``, as DBN)."""
    ts = records["ts_recv"] if "ts_recv" in records.dtype.names else records["ts_event"]
    ts = ts.astype(np.int64)
    ids = records["instrument_id"]
    keep = np.zeros(len(records), dtype=bool)
    for interval in intervals:
        keep |= (ids == interval.instrument_id) & (ts >= interval.start_ns) & (ts < interval.end_ns)
    return keep


def _day_ns(day: date) -> int:
    """Midnight UTC of ``day``, in ns since the epoch."""
    return (day - date(1970, 1, 1)).days * 86_400 * 10**9


def _status(kind: FeedStatusKind, ts_ns: int, day: date) -> FeedStatus:
    return FeedStatus(kind=kind, ts_ns=ts_ns, detail=str(day))


@hookimpl
def register_feeds(register: Any) -> None:
    register(FileFeed)
