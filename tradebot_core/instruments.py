"""Contract specifications and the exact money arithmetic that depends on them.

Tick sizes and values are :class:`~decimal.Decimal`; prices in tick arrays are fixed-point integers
(:data:`~tradebot_core.types.PRICE_SCALE`). Every conversion here is exact: a price that is not on
the instrument's tick grid is an error, never a rounding.
"""

from __future__ import annotations

import re
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .types import PRICE_SCALE, Direction

_SCALE = Decimal(PRICE_SCALE)


class Instrument(BaseModel):
    """One futures product: ``ES``, ``MES``... ``margin`` is the day-trade margin per contract."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    tick_size: Decimal = Field(gt=0)
    tick_value: Decimal = Field(gt=0)
    exchange: str = "CME"
    margin: Decimal = Field(default=Decimal("0"), ge=0)
    description: str = ""

    @field_validator("tick_size")
    @classmethod
    def _tick_size_is_fixed_point(cls, value: Decimal) -> Decimal:
        if (value * _SCALE) % 1 != 0:
            raise ValueError(f"tick size {value} has more than 9 decimals")
        return value

    @property
    def tick_fixed(self) -> int:
        """The tick size in fixed-point units (e.g. ES: 250_000_000)."""
        return int(self.tick_size * _SCALE)

    @property
    def point_value(self) -> Decimal:
        """Dollars per 1.0 of price per contract (ES: $50)."""
        return self.tick_value / self.tick_size

    def to_ticks(self, price_fixed: int) -> int:
        """Fixed-point price -> integer ticks. Raises if the price is off the tick grid."""
        ticks, rest = divmod(int(price_fixed), self.tick_fixed)
        if rest:
            raise ValueError(
                f"{self.symbol}: price {self.to_decimal(price_fixed)} is not a multiple of "
                f"the tick size {self.tick_size}"
            )
        return ticks

    def from_ticks(self, ticks: int) -> int:
        """Integer ticks -> fixed-point price."""
        return int(ticks) * self.tick_fixed

    def to_decimal(self, price_fixed: int) -> Decimal:
        return Decimal(int(price_fixed)) / _SCALE

    def ticks_to_decimal(self, ticks: int) -> Decimal:
        return int(ticks) * self.tick_size

    def to_fixed(self, price: Decimal | str | int) -> int:
        """A decimal price -> fixed-point; exact or an error."""
        fixed = Decimal(price) * _SCALE
        if fixed % 1:
            raise ValueError(f"price {price} has more than 9 decimals")
        return int(fixed)

    def trade_ticks(self, direction: Direction, entry_fixed: int, exit_fixed: int) -> int:
        """Ticks gained per contract by a round trip (negative for a loss)."""
        return direction.sign * (self.to_ticks(exit_fixed) - self.to_ticks(entry_fixed))

    def gross_pnl(
        self, direction: Direction, entry_fixed: int, exit_fixed: int, quantity: int
    ) -> Decimal:
        """(exit - entry) / tick size x tick value x quantity, signed by direction."""
        return self.trade_ticks(direction, entry_fixed, exit_fixed) * self.tick_value * quantity


DEFAULT_INSTRUMENTS: dict[str, Instrument] = {
    spec.symbol: spec
    for spec in (
        Instrument(
            symbol="ES",
            tick_size=Decimal("0.25"),
            tick_value=Decimal("12.50"),
            margin=Decimal("500"),
            description="E-mini S&P 500",
        ),
        Instrument(
            symbol="MES",
            tick_size=Decimal("0.25"),
            tick_value=Decimal("1.25"),
            margin=Decimal("50"),
            description="Micro E-mini S&P 500",
        ),
        Instrument(
            symbol="NQ",
            tick_size=Decimal("0.25"),
            tick_value=Decimal("5.00"),
            margin=Decimal("1000"),
            description="E-mini Nasdaq-100",
        ),
        Instrument(
            symbol="MNQ",
            tick_size=Decimal("0.25"),
            tick_value=Decimal("0.50"),
            margin=Decimal("100"),
            description="Micro E-mini Nasdaq-100",
        ),
        Instrument(
            symbol="CL",
            tick_size=Decimal("0.01"),
            tick_value=Decimal("10.00"),
            exchange="NYMEX",
            margin=Decimal("1000"),
            description="Crude Oil",
        ),
        Instrument(
            symbol="GC",
            tick_size=Decimal("0.10"),
            tick_value=Decimal("10.00"),
            exchange="COMEX",
            margin=Decimal("1000"),
            description="Gold",
        ),
        # US equity ETFs (Polygon feeds): one share, priced in cents
        Instrument(
            symbol="SPY",
            tick_size=Decimal("0.01"),
            tick_value=Decimal("0.01"),
            exchange="NYSEARCA",
            description="SPDR S&P 500 ETF (per share)",
        ),
        Instrument(
            symbol="QQQ",
            tick_size=Decimal("0.01"),
            tick_value=Decimal("0.01"),
            exchange="NASDAQ",
            description="Invesco QQQ ETF (per share)",
        ),
    )
}

# ESZ5, MESH24, ES.c.0, ES.FUT -> ES
_CONTRACT = re.compile(
    r"^([A-Z0-9]{1,4}?)(?:[FGHJKMNQUVXZ]\d{1,2}|\.c\.\d+|\.n\.\d+|\.v\.\d+|\.FUT)$"
)


def root_symbol(symbol: str) -> str:
    """The product root of a contract or continuous symbol: ``ESZ5``, ``ES.c.0`` -> ``ES``."""
    match = _CONTRACT.match(symbol)
    return match.group(1) if match else symbol


class InstrumentRegistry:
    """The instruments a run knows: the defaults, extended or overridden from config."""

    def __init__(self, extra: dict[str, Instrument] | None = None) -> None:
        self._specs = dict(DEFAULT_INSTRUMENTS)
        self._specs.update(extra or {})

    def __contains__(self, symbol: str) -> bool:
        return root_symbol(symbol) in self._specs

    def __getitem__(self, symbol: str) -> Instrument:
        root = root_symbol(symbol)
        try:
            return self._specs[root]
        except KeyError:
            known = ", ".join(sorted(self._specs))
            raise KeyError(
                f"unknown instrument {symbol!r}: known are {known}; add it under 'instruments:'"
            ) from None

    def symbols(self) -> list[str]:
        return sorted(self._specs)
