"""Write DBN files from real records, with Databento's own encoder (for the file feed tests)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import databento as db
import databento_dbn
import numpy as np
import zstandard


def read_records(path: Path) -> tuple[np.ndarray, db.DBNStore]:
    store = db.DBNStore.from_file(path)
    return store.to_ndarray(), store


def write_dbn(
    path: Path,
    records: np.ndarray,
    like: db.DBNStore,
    mappings: dict[str, list[tuple[date, date, int]]],
) -> Path:
    """``records`` after a DBN header copied from ``like`` with the given symbology."""
    metadata = like.metadata
    encoded = databento_dbn.Metadata(
        dataset=metadata.dataset,
        start=metadata.start,
        end=metadata.end,
        stype_in=databento_dbn.SType.RAW_SYMBOL,
        stype_out=databento_dbn.SType.INSTRUMENT_ID,
        schema=databento_dbn.Schema.from_str(str(metadata.schema)),
        symbols=list(mappings),
        partial=[],
        not_found=[],
        mappings=[
            SimpleNamespace(
                raw_symbol=symbol,
                intervals=[
                    SimpleNamespace(start_date=start, end_date=end, symbol=str(instrument_id))
                    for start, end, instrument_id in intervals
                ],
            )
            for symbol, intervals in mappings.items()
        ],
        ts_out=False,
        version=metadata.version,
    ).encode()
    body = encoded + np.ascontiguousarray(records).tobytes()
    if path.name.endswith(".zst"):
        body = zstandard.ZstdCompressor().compress(body)
    path.write_bytes(body)
    return path
