"""The ``file`` feed: replay trades from DBN, CSV or Parquet files.

**DBN** (``.dbn``, ``.dbn.zst``; schemas trades, tbbo, mbp-1, mbo), read with Databento's own
``DBNStore`` in chunks of ``batch_size`` records; only trade records become ticks and the
aggressor side comes from the record (``B`` buyer, ``A`` seller). A file holding several
instruments needs ``symbol:`` (a raw symbol such as ``ESH4``), resolved through the file's own
symbology.

**CSV / Parquet** (``.csv``, ``.csv.gz``, ``.parquet``): one trade per row with columns

| column | what |
|---|---|
| ``ts_event`` | ns since the epoch (integer) or ISO-8601 UTC text (``2024-11-13T14:30:00.5Z``) |
| ``price`` | decimal text (``5000.25``, exact), or a float snapped to the tick grid |
| ``size`` | contracts, > 0 |
| ``side`` | aggressor: ``B``/``buy``/``1`` or ``A``/``sell``/``-1``; anything else is unknown |

Rows that cannot be read (no price, size <= 0, a price off the tick grid, a bad timestamp) are
dropped and counted, and a warning names the file and the rows. A missing file is an error that
names it.

Each file is one or more sessions: the feed says ``SESSION_START``/``SESSION_END`` around every
CME trading day in it (days roll at 18:00 ET). With ``date:`` set, only that trading day plays
(``tradebot replay``, backtests).
"""

from __future__ import annotations

import asyncio
import glob
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, time, timedelta
from datetime import date as Date  # a setting is called 'date'
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from tradebot_core import hookimpl
from tradebot_core.calendar import EXCHANGE_TZ, trading_date_of
from tradebot_core.components import PluginContext, PluginSettings
from tradebot_core.instruments import Instrument
from tradebot_core.types import PRICE_SCALE, TICK_DTYPE, FeedStatus, FeedStatusKind, TickBatch

from .dbn_ticks import records_to_ticks

log = logging.getLogger(__name__)

DBN_SUFFIXES = (".dbn", ".dbn.zst")
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")


class FileFeedSettings(PluginSettings):
    path: str | list[str]
    """A file, a glob (``data/*.dbn.zst``) or a list of either, played in name order."""
    symbol: str | None = None
    """For DBN files holding several instruments: the raw symbol to play (e.g. ``ESH4``)."""
    date: Date | None = None
    """Play only this CME trading day."""
    batch_size: int = Field(default=10_000, ge=1)

    @field_validator("path")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        if not value:
            raise ValueError("give a file, a glob or a list of them")
        return value


class FileFeedError(Exception):
    """A file that cannot be replayed; the message names it."""


def resolve_paths(spec: str | list[str]) -> list[Path]:
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


class FileFeed:
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

    @classmethod
    def day_settings(cls, settings: dict[str, Any], day: date) -> dict[str, Any]:
        return {**settings, "date": day.isoformat()}

    async def stream(self) -> AsyncIterator[TickBatch | FeedStatus]:
        for path in self.paths:
            open_day: date | None = None
            for ticks in self._chunks(path):
                for day, part in self._by_day(ticks):
                    if self.settings.date is not None and day != self.settings.date:
                        continue
                    if day != open_day:
                        if open_day is not None:
                            yield _status(FeedStatusKind.SESSION_END, part, 0, open_day)
                        open_day = day
                        yield _status(FeedStatusKind.SESSION_START, part, 0, day)
                    yield TickBatch(self.symbol, part)
                    await asyncio.sleep(0)
            if open_day is not None:
                yield FeedStatus(
                    kind=FeedStatusKind.SESSION_END, ts_ns=self._last_ts, detail=str(open_day)
                )

    # -- reading -----------------------------------------------------------------------------

    def _chunks(self, path: Path) -> Iterator[np.ndarray]:
        self._last_ts = 0
        reader = self._dbn if path.name.endswith(DBN_SUFFIXES) else self._table
        for ticks in reader(path):
            if len(ticks):
                self._last_ts = int(ticks["ts_event"][-1])
                yield ticks

    def _dbn(self, path: Path) -> Iterator[np.ndarray]:
        import databento

        try:
            store = databento.DBNStore.from_file(path)
        except Exception as exc:
            raise FileFeedError(f"{path}: not a readable DBN file: {exc}") from exc
        instrument_id = self._instrument_id(store, path)
        for records in store.to_ndarray(count=self.settings.batch_size):
            yield self._checked(records_to_ticks(records, instrument_id), path)

    def _instrument_id(self, store: Any, path: Path) -> int | None:
        mappings = store.metadata.mappings or {}
        wanted = self.settings.symbol
        if wanted is None:
            if len(mappings) > 1:
                raise FileFeedError(
                    f"{path} holds {len(mappings)} instruments ({', '.join(sorted(mappings))}): "
                    "choose one with feed.file.symbol"
                )
            return None
        if wanted not in mappings:
            known = ", ".join(sorted(mappings)) or "none"
            raise FileFeedError(f"{path}: no symbol {wanted!r} in this file (it has: {known})")
        ids = {int(interval["symbol"]) for interval in mappings[wanted]}
        if len(ids) != 1:
            raise FileFeedError(f"{path}: {wanted} maps to several instrument ids {sorted(ids)}")
        return ids.pop()

    def _table(self, path: Path) -> Iterator[np.ndarray]:
        import pyarrow.csv
        import pyarrow.parquet

        try:
            if path.name.endswith(".parquet"):
                table = pyarrow.parquet.read_table(path)
            else:
                options = pyarrow.csv.ConvertOptions(
                    column_types={"price": pyarrow.string(), "side": pyarrow.string()}
                )
                table = pyarrow.csv.read_csv(path, convert_options=options)
        except Exception as exc:
            raise FileFeedError(f"{path}: cannot be read: {exc}") from exc
        missing = {"ts_event", "price", "size"} - set(table.column_names)
        if missing:
            raise FileFeedError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        ticks, bad = table_to_ticks(table, self.instrument)
        if bad.any():
            rows = np.flatnonzero(bad)
            shown = ", ".join(str(r + 2) for r in rows[:10])  # + header, 1-based
            log.warning(
                "%s: dropped %d malformed rows (lines %s%s)",
                path,
                len(rows),
                shown,
                "..." if len(rows) > 10 else "",
            )
            self.dropped += len(rows)
        order = np.argsort(ticks["ts_event"], kind="stable")
        ticks = ticks[order]
        for start in range(0, len(ticks), self.settings.batch_size):
            yield ticks[start : start + self.settings.batch_size]

    def _checked(self, ticks: np.ndarray, path: Path) -> np.ndarray:
        bad = (ticks["size"] <= 0) | (ticks["price"] % self.instrument.tick_fixed != 0)
        if bad.any():
            log.warning("%s: dropped %d malformed trades", path, int(bad.sum()))
            self.dropped += int(bad.sum())
            return ticks[~bad]
        return ticks

    def _by_day(self, ticks: np.ndarray) -> Iterator[tuple[date, np.ndarray]]:
        """Split a chunk where it crosses 18:00 ET, the CME day roll."""
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
            start, day = cut, day + timedelta(days=1)
        if start < len(ticks):
            yield last, ticks[start:]


def table_to_ticks(table: Any, instrument: Instrument) -> tuple[np.ndarray, np.ndarray]:
    """An Arrow table of trades -> (ticks, malformed-row mask); malformed rows are dropped."""
    n = table.num_rows
    ts, ts_bad = _timestamps(table.column("ts_event"))
    price, price_bad = _prices(table.column("price"), instrument)
    size_col = table.column("size").to_numpy(zero_copy_only=False)
    size_bad = ~np.isfinite(size_col.astype(float)) | (size_col.astype(float) <= 0)
    size = np.where(size_bad, 0, size_col.astype(float)).astype(np.int64)
    size_bad |= size != np.where(size_bad, 0, size_col.astype(float))  # fractional sizes
    side = np.zeros(n, dtype=np.int8)
    if "side" in table.column_names:
        text = np.char.lower(np.asarray(table.column("side").to_pylist(), dtype=str))
        side = np.where(np.isin(text, ["b", "buy", "1", "+1"]), 1, 0)
        side = np.where(np.isin(text, ["a", "s", "sell", "-1"]), -1, side).astype(np.int8)
    bad = ts_bad | price_bad | size_bad
    ticks = np.empty(int((~bad).sum()), dtype=TICK_DTYPE)
    ticks["ts_event"] = ts[~bad]
    ticks["price"] = price[~bad]
    ticks["size"] = size[~bad]
    ticks["side"] = side[~bad]
    return ticks, bad


def _timestamps(column: Any) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow as pa

    if pa.types.is_integer(column.type):
        values = column.to_numpy(zero_copy_only=False)
        return values.astype(np.int64), values <= 0
    if pa.types.is_timestamp(column.type):
        values = column.cast(pa.timestamp("ns")).to_numpy(zero_copy_only=False)
        return values.astype("datetime64[ns]").astype(np.int64), np.isnat(values)
    text = [str(v).strip().removesuffix("Z").removesuffix("+00:00") for v in column.to_pylist()]
    out = np.zeros(len(text), dtype=np.int64)
    bad = np.zeros(len(text), dtype=bool)
    for i, value in enumerate(text):
        try:
            out[i] = np.datetime64(value, "ns").astype(np.int64)
        except ValueError:
            bad[i] = True
    return out, bad


def _prices(column: Any, instrument: Instrument) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow as pa

    tick = instrument.tick_fixed
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        values = column.to_numpy(zero_copy_only=False).astype(float)
        ticks = np.rint(values * PRICE_SCALE / tick)
        bad = ~np.isfinite(values) | (np.abs(values * PRICE_SCALE - ticks * tick) > 1e-6 * tick)
        return np.where(bad, 0, ticks).astype(np.int64) * tick, bad
    text = np.asarray([("" if v is None else str(v).strip()) for v in column.to_pylist()])
    unique, inverse = np.unique(text, return_inverse=True)
    fixed = np.zeros(len(unique), dtype=np.int64)
    ok = np.zeros(len(unique), dtype=bool)
    for i, value in enumerate(unique.tolist()):  # few distinct prices: exact Decimal parsing
        try:
            fixed[i] = instrument.to_fixed(value)
            ok[i] = fixed[i] % tick == 0
        except (ValueError, ArithmeticError):
            ok[i] = False
    return fixed[inverse], ~ok[inverse]


def _status(kind: FeedStatusKind, ticks: np.ndarray, index: int, day: date) -> FeedStatus:
    return FeedStatus(kind=kind, ts_ns=int(ticks["ts_event"][index]), detail=str(day))


@hookimpl
def register_feeds(register: Any) -> None:
    register(FileFeed)
