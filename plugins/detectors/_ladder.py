"""What every detector needs from the last closed bar, in one small object."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from pydantic import Field

from tradebot_core.components import PluginSettings
from tradebot_core.footprint import FootprintHistory
from tradebot_core.types import Direction, Signal


class DiagonalSettings(PluginSettings):
    """The diagonal imbalance rule's settings, shared by the imbalance detectors."""

    ratio: float = Field(default=3.0, ge=1.0)
    min_volume: int = Field(default=10, ge=1)
    zero_counts: bool = True


@dataclass(frozen=True)
class Ladder:
    """The last closed bar and its levels, low to high (prices in ticks)."""

    history: FootprintHistory
    bar: np.void
    prices: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    volume: np.ndarray

    @classmethod
    def last(cls, history: FootprintHistory) -> Ladder:
        prices, bid, ask, volume = history.levels(-1)
        return cls(history, history.bars[-1], prices, bid, ask, volume)

    def price(self, ticks: int) -> Decimal:
        return self.history.price(int(ticks))

    def signal(
        self,
        pattern: str,
        direction: Direction,
        ticks: int,
        strength: float,
        reason: str,
        detector: str,
    ) -> Signal:
        return Signal(
            pattern=pattern,
            direction=direction,
            price=self.price(ticks),
            bar_ts_ns=int(self.bar["ts_open"]),
            strength=round(min(1.0, max(0.0, strength)), 4),
            reason=reason,
            detector=detector,
            symbol=self.history.instrument.symbol,
        )


def diagonal_imbalances(
    bid: np.ndarray, ask: np.ndarray, ratio: float, min_volume: int, zero_counts: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per level, whether it holds a buy and a sell imbalance (diagonal comparison).

    Buy at level i: ``ask[i] >= ratio x bid[i - 1]`` and ``ask[i] >= min_volume``.
    Sell at level i: ``bid[i] >= ratio x ask[i + 1]`` and ``bid[i] >= min_volume``.
    A weak side of zero counts only if ``zero_counts``. The lowest level has no buy comparison
    and the highest no sell comparison (their diagonal neighbour is outside the bar).
    """
    n = len(bid)
    buy = np.zeros(n, dtype=bool)
    sell = np.zeros(n, dtype=bool)
    if n < 2:
        return buy, sell
    strong_ask, weak_bid = ask[1:], bid[:-1]
    strong_bid, weak_ask = bid[:-1], ask[1:]
    buy[1:] = (strong_ask >= min_volume) & (strong_ask >= ratio * weak_bid)
    sell[:-1] = (strong_bid >= min_volume) & (strong_bid >= ratio * weak_ask)
    if not zero_counts:
        buy[1:] &= weak_bid > 0
        sell[:-1] &= weak_ask > 0
    return buy, sell


def longest_run(flags: np.ndarray) -> tuple[int, int]:
    """(length, start index) of the longest run of True; (0, -1) if none."""
    if not flags.any():
        return 0, -1
    padded = np.concatenate(([0], flags.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[::2], edges[1::2]
    best = int(np.argmax(ends - starts))
    return int(ends[best] - starts[best]), int(starts[best])
