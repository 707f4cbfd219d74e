"""DBN records (as numpy arrays from ``databento``) -> tradebot tick arrays.

Shared by the file feed and both Databento feeds. Works on the record arrays of the ``trades``,
``tbbo``, ``mbp-1`` and ``mbo`` schemas: only trade records (``action == 'T'``) become ticks.

Databento's ``side`` on a trade is the side of the *aggressor*: ``B`` a buyer lifting the offer,
``A`` a seller hitting the bid, ``N`` unknown. Prices are already fixed-point 1e-9, as ours.
"""

from __future__ import annotations

import numpy as np

from tradebot_core.types import BUY, SELL, TICK_DTYPE


def records_to_ticks(records: np.ndarray, instrument_id: int | None = None) -> np.ndarray:
    """The trades among ``records``, as a :data:`~tradebot_core.types.TICK_DTYPE` array.

    ``instrument_id`` keeps only that instrument's records (a file or stream may hold several).
    """
    keep = records["action"] == b"T"
    if instrument_id is not None:
        keep &= records["instrument_id"] == instrument_id
    trades = records[keep]
    ticks = np.empty(len(trades), dtype=TICK_DTYPE)
    ticks["ts_event"] = trades["ts_event"].astype(np.int64)
    ticks["price"] = trades["price"]
    ticks["size"] = trades["size"]
    side = trades["side"]
    ticks["side"] = np.where(side == b"B", BUY, np.where(side == b"A", SELL, 0))
    return ticks
