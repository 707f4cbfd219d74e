"""Hand-built footprints, made of real trades and built by the real footprint engine.

``bars_from([{price: (bid, ask), ...}, ...], opens=..., closes=...)`` gives a FootprintHistory
whose bar k holds exactly those volumes: bid = sell-aggressor contracts, ask = buy-aggressor
contracts, prices in dollars.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from tradebot_core.footprint import FootprintEngine, FootprintHistory
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import TICK_DTYPE

ES = InstrumentRegistry()["ES"]
MINUTE = 60 * 10**9
T0 = 1_731_508_200 * 10**9  # 2024-11-13 14:30 UTC


def ticks_of(p: float | str) -> int:
    return ES.to_ticks(ES.to_fixed(Decimal(str(p))))


def bar_trades(levels: dict, minute: int, open_: float | None, close: float | None) -> list:
    """One trade per non-zero side per level; the open level trades first, the close last."""
    trades = []
    for price, (bid, ask) in levels.items():
        if bid:
            trades.append((ticks_of(price), -1, bid))
        if ask:
            trades.append((ticks_of(price), 1, ask))
    if open_ is not None:
        trades.sort(key=lambda t: t[0] != ticks_of(open_))
    if close is not None:
        last = [t for t in trades if t[0] == ticks_of(close)]
        trades = [t for t in trades if t[0] != ticks_of(close)] + last
    start = T0 + minute * MINUTE
    return [(start + i * 1000, p, side, size) for i, (p, side, size) in enumerate(trades)]


def bars_from(
    ladders: list[dict], opens: list | None = None, closes: list | None = None
) -> FootprintHistory:
    rows = []
    for k, levels in enumerate(ladders):
        rows += bar_trades(
            levels, k, (opens or [None] * len(ladders))[k], (closes or [None] * len(ladders))[k]
        )
    ticks = np.zeros(len(rows), dtype=TICK_DTYPE)
    for i, (ts, p, side, size) in enumerate(rows):
        ticks[i] = (ts, p * ES.tick_fixed, size, side)
    engine = FootprintEngine(ES, 60)
    engine.update(ticks)
    engine.flush()
    return engine.history


def ladder(low: float, rows: list[tuple[int, int]]) -> dict:
    """Levels from ``low`` up, one (bid, ask) per tick."""
    return {Decimal(str(low)) + Decimal("0.25") * i: row for i, row in enumerate(rows)}
