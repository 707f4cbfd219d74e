"""Hand-built footprints, made of trades and built by the real footprint engine.

A bar is a ladder spec: ``{price: (bid, ask)}`` with bid = contracts sold by aggressive sellers
(hitting the bid) and ask = contracts bought by aggressive buyers (lifting the offer). The
builder turns each bar into :data:`~tradebot_core.types.TICK_DTYPE` trades (one per non-zero
side per price, the open price first and the close price last, all inside the bar's minute) and
runs them through :class:`~tradebot_core.footprint.FootprintEngine`, so the detectors see exactly
what the pipeline would give them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from tradebot_core.footprint import FootprintEngine, FootprintHistory
from tradebot_core.instruments import Instrument, InstrumentRegistry
from tradebot_core.types import BUY, SELL, TICK_DTYPE

T0_NS = 1_702_989_000 * 10**9  # 2023-12-19 12:30 UTC, on a minute boundary


@dataclass(frozen=True)
class BarSpec:
    """One bar: volumes per price, and optionally the prices that open and close it."""

    levels: dict[Decimal, tuple[int, int]]
    open: Decimal | None = None
    close: Decimal | None = None


def ladder(
    low: float | str,
    rows: list[tuple[int, int]],
    open: float | str | None = None,
    close: float | str | None = None,
    tick: str = "0.25",
) -> BarSpec:
    """A bar whose prices run up from ``low``, one ``(bid, ask)`` row per tick."""
    base, step = Decimal(str(low)), Decimal(tick)
    levels = {base + step * i: row for i, row in enumerate(rows)}
    return BarSpec(
        levels,
        None if open is None else Decimal(str(open)),
        None if close is None else Decimal(str(close)),
    )


class FootprintBuilder:
    """Builds :class:`FootprintHistory` objects from bar specs (``timeframe_s`` bars, one bar
    per timeframe from ``T0_NS``)."""

    def __init__(self, symbol: str = "ES", timeframe_s: int = 60) -> None:
        self.instrument: Instrument = InstrumentRegistry()[symbol]
        self.timeframe_s = timeframe_s

    def ticks(self, bars: list[BarSpec]) -> np.ndarray:
        """The trades of ``bars``, in time order."""
        rows: list[tuple[int, int, int, int]] = []
        step_ns = self.timeframe_s * 10**9
        for k, bar in enumerate(bars):
            trades = []
            for price, (bid, ask) in bar.levels.items():
                fixed = self.instrument.to_fixed(price)
                self.instrument.to_ticks(fixed)  # raises if off the tick grid
                if bid:
                    trades.append((price, fixed, SELL, bid))
                if ask:
                    trades.append((price, fixed, BUY, ask))
            if not trades:
                raise ValueError(f"bar {k} has no volume: a footprint bar needs a trade")
            if bar.open is not None:
                trades.sort(key=lambda t: t[0] != bar.open)  # stable: the open's trades first
            if bar.close is not None:
                trades.sort(key=lambda t: t[0] == bar.close)  # ...and the close's last
            for price, side in ((bar.open, "open"), (bar.close, "close")):
                if price is not None and price not in bar.levels:
                    raise ValueError(f"bar {k}: {side} {price} is not one of its prices")
            start = T0_NS + k * step_ns
            rows += [(start + i * 1000, f, s, size) for i, (_, f, s, size) in enumerate(trades)]
        ticks = np.zeros(len(rows), dtype=TICK_DTYPE)
        for i, (ts, fixed, side, size) in enumerate(rows):
            ticks[i] = (ts, fixed, size, side)
        return ticks

    def history(self, *bars: BarSpec) -> FootprintHistory:
        """A history holding ``bars``, all closed."""
        engine = FootprintEngine(self.instrument, self.timeframe_s)
        engine.update(self.ticks(list(bars)))
        engine.flush()
        return engine.history

    def histories(self, *bars: BarSpec) -> Iterator[FootprintHistory]:
        """The same history after each bar closes, as the pipeline reveals them: the engine has
        seen every trade, the history holds only the bars closed so far."""
        engine = FootprintEngine(self.instrument, self.timeframe_s)
        engine.update(self.ticks(list(bars)), reveal=False)
        engine.flush(reveal=False)
        while engine.staged:
            engine.release_next()
            yield engine.history

    def ticks_of(self, price: float | str | Decimal) -> int:
        """A price in ticks."""
        return self.instrument.to_ticks(self.instrument.to_fixed(Decimal(str(price))))
