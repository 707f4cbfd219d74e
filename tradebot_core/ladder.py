"""What the built-in detectors share: the last closed bar as one small object, and the diagonal
imbalance rule.

Six detectors look at the same bar each time one closes, so :meth:`Ladder.last` builds the view
once per bar and hands the same object to all of them (it is keyed on the identity of the level
arrays :meth:`FootprintHistory.levels` caches for the last bar). The diagonal imbalances are
likewise computed once per bar and settings, for both the imbalance and the stacked imbalance
detectors.

Ladders are short (a 5-minute ES bar spans 10 to 70 prices), so each rule is a handful of numpy
operations over the whole ladder; the few qualifying levels are then read in plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field

from .components import PluginSettings
from .footprint import BAR_DTYPE, FootprintHistory
from .types import Direction, Signal

assert BAR_DTYPE.names is not None  # a structured dtype
_FIELD = {name: i for i, name in enumerate(BAR_DTYPE.names)}

ZeroWeakSide = Literal["imbalance", "as_one", "ignore"]


@lru_cache(maxsize=256)
def exact_ratio(value: float) -> tuple[int, int]:
    """``value`` as ``(numerator, denominator)`` integers, so ``a >= value x b`` is tested exactly
    as ``a x den >= b x num`` (3.0 is 3/1, 2.99 is 299/100; no float rounding at the threshold).
    """
    fraction = Fraction(str(value)).limit_denominator(1_000_000)
    return fraction.numerator, fraction.denominator


class DiagonalSettings(PluginSettings):
    """The diagonal imbalance rule's settings, shared by ``imbalance`` and ``stacked_imbalance``."""

    ratio: float = Field(
        default=3.0,
        ge=1.0,
        le=1000.0,
        description="strong side >= ratio x weak side (3.0 = 300%)",
    )
    min_volume: int = Field(
        default=10, ge=1, description="contracts the strong side needs at least"
    )
    zero_weak_side: ZeroWeakSide = Field(
        default="imbalance",
        description=(
            "a weak side of 0: 'imbalance' (counts, given min_volume), 'as_one' (compared as 1 "
            "contract), 'ignore' (never an imbalance)"
        ),
    )


class Imbalances(NamedTuple):
    """The diagonal imbalances of one bar, as level indices (0 = the bar's low), low to high.

    ``buy``: levels whose ask beats the bid one tick below; ``sell``: levels whose bid beats the
    ask one tick above.
    """

    buy: list[int]
    sell: list[int]


@dataclass(slots=True, eq=False)
class Ladder:
    """The last closed bar: its fields as Python ints, its levels low to high (numpy, in ticks).

    ``bid[i]`` / ``ask[i]`` / ``volume[i]`` are the volumes at price ``low + i`` ticks.
    """

    history: FootprintHistory
    ts_open: int
    open: int
    high: int
    low: int
    close: int
    total_volume: int
    ask_total: int
    bid_total: int
    delta: int
    cum_delta: int
    bid: np.ndarray
    ask: np.ndarray
    volume: np.ndarray
    _imbalances: dict[tuple, Imbalances] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """How many prices the bar spans (high - low + 1)."""
        return self.high - self.low + 1

    @classmethod
    def last(cls, history: FootprintHistory) -> Ladder:
        """The view of ``history``'s last closed bar (built once per bar, then shared)."""
        levels = history.levels(-1)
        cached = _last
        if cached is not None and cached[0] is levels and cached[1].history is history:
            return cached[1]
        row = history.bars[-1].item()
        _, bid, ask, volume = levels
        ladder = cls(
            history,
            row[_FIELD["ts_open"]],
            row[_FIELD["open"]],
            row[_FIELD["high"]],
            row[_FIELD["low"]],
            row[_FIELD["close"]],
            row[_FIELD["volume"]],
            row[_FIELD["ask_volume"]],
            row[_FIELD["bid_volume"]],
            row[_FIELD["delta"]],
            row[_FIELD["cum_delta"]],
            bid,
            ask,
            volume,
        )
        _remember(levels, ladder)
        return ladder

    def price(self, ticks: int) -> Decimal:
        """A price in ticks, in dollars."""
        return self.history.price(ticks)

    def at(self, index: int) -> Decimal:
        """The price of level ``index`` (0 = the low), in dollars."""
        return self.history.price(self.low + index)

    def imbalances(self, settings: DiagonalSettings) -> Imbalances:
        """The bar's diagonal imbalances under ``settings`` (computed once per bar and settings).

        Buy at level ``i``: ``ask[i] >= min_volume`` and ``ask[i] >= ratio x bid[i - 1]``.
        Sell at level ``i``: ``bid[i] >= min_volume`` and ``bid[i] >= ratio x ask[i + 1]``.
        A weak side of 0 follows ``zero_weak_side``. The low has no buy comparison and the high
        no sell comparison: their diagonal neighbour lies outside the bar, where nothing traded.
        """
        key = (settings.ratio, settings.min_volume, settings.zero_weak_side)
        found = self._imbalances.get(key)
        if found is None:
            found = self._imbalances[key] = _diagonal(self.bid, self.ask, settings)
        return found

    def signal(
        self,
        pattern: str,
        direction: Direction,
        ticks: int,
        strength: float,
        reason: str,
        detector: str,
    ) -> Signal:
        """A signal on this bar; ``strength`` is clamped to [0, 1] and rounded to 4 places."""
        return Signal(
            pattern=pattern,
            direction=direction,
            price=self.history.price(ticks),
            bar_ts_ns=self.ts_open,
            strength=round(min(1.0, max(0.0, float(strength))), 4),
            reason=reason,
            detector=detector,
            symbol=self.history.instrument.symbol,
        )


_last: tuple[tuple, Ladder] | None = None


def _remember(levels: tuple, ladder: Ladder) -> None:
    global _last
    _last = (levels, ladder)


def _diagonal(bid: np.ndarray, ask: np.ndarray, settings: DiagonalSettings) -> Imbalances:
    if len(bid) < 2:
        return Imbalances([], [])
    num, den = exact_ratio(settings.ratio)
    # strong x den >= max(weak x num, min_volume x den): the ratio and the minimum in one test;
    # a weak side of 0 leaves just the minimum ("imbalance"), or num for "as_one"
    floor = settings.min_volume * den
    if settings.zero_weak_side == "as_one":
        floor = max(floor, num)
    weak_bid, weak_ask = bid[:-1], ask[1:]  # the diagonal neighbours
    strong_ask, strong_bid = (ask[1:], bid[:-1]) if den == 1 else (ask[1:] * den, bid[:-1] * den)
    buy = strong_ask >= np.maximum(weak_bid * num, floor)  # buy at level i + 1
    sell = strong_bid >= np.maximum(weak_ask * num, floor)  # sell at level i
    if settings.zero_weak_side == "ignore":
        buy &= weak_bid > 0
        sell &= weak_ask > 0
    return Imbalances((buy.nonzero()[0] + 1).tolist(), sell.nonzero()[0].tolist())


def weak_ratio(strong: int, weak: int) -> float:
    """strong / weak, with a weak side of 0 counted as 1 contract (for ranking and strength)."""
    return strong / max(weak, 1)


def runs(indices: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive integers in sorted ``indices`` as ``(first, length)``, low to high."""
    found: list[tuple[int, int]] = []
    for i in indices:
        if found and found[-1][0] + found[-1][1] == i:
            first, length = found[-1]
            found[-1] = (first, length + 1)
        else:
            found.append((i, 1))
    return found
