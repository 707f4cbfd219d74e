"""DBN records (as numpy arrays from ``databento``) -> tradebot tick arrays.

Shared by the file feed and both Databento feeds. Works on the record arrays of the ``trades``,
``tbbo``, ``mbp-1`` and ``mbo`` schemas: only trade records (``action == 'T'``) become ticks.

Databento's ``side`` on a trade is the side of the *aggressor*: ``B`` a buyer lifting the offer,
``A`` a seller hitting the bid, ``N`` unknown. Prices are already fixed-point 1e-9, as ours.
"""

from __future__ import annotations

import numpy as np

from tradebot_core import BUY, SELL, TICK_DTYPE

_SIDE = np.zeros(256, dtype=np.int8)
_SIDE[ord("B")] = BUY
_SIDE[ord("A")] = SELL


def records_to_ticks(records: np.ndarray, instrument_id: int | None = None) -> np.ndarray:
    """The trades among ``records``, as a :data:`~tradebot_core.types.TICK_DTYPE` array.

    ``instrument_id`` keeps only that instrument's records (a file or stream may hold several).
    """
    keep = records["action"] == b"T"
    if instrument_id is not None:
        keep &= records["instrument_id"] == instrument_id
    return ticks_at(records, np.flatnonzero(keep))


def ticks_at(records: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The records at ``positions`` (trades) as ticks, copied field by field: the four fields a
    tick needs, never the whole 48-64 byte records."""
    ticks = np.empty(len(positions), dtype=TICK_DTYPE)
    ticks["ts_event"] = records["ts_event"][positions]
    ticks["price"] = records["price"][positions]
    ticks["size"] = records["size"][positions]
    ticks["side"] = _SIDE[np.ascontiguousarray(records["side"][positions]).view(np.uint8)]
    return ticks
