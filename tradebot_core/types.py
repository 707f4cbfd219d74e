"""Domain types.

Ticks travel through the hot path as numpy structured arrays (:data:`TICK_DTYPE`); everything that
leaves the process (journal, API, notifications) is a pydantic model. Prices are fixed-point
integers in units of 1e-9 (the convention of Databento's DBN), so no price ever drifts; money is
:class:`decimal.Decimal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

PRICE_SCALE = 1_000_000_000
"""Fixed-point scale of every price in a tick array: 1 unit = 1e-9 of a dollar (as in DBN)."""

TICK_DTYPE = np.dtype(
    [
        ("ts_event", "<i8"),  # exchange time, ns since the Unix epoch, UTC
        ("price", "<i8"),  # fixed-point, PRICE_SCALE units
        ("size", "<i4"),  # contracts
        ("side", "i1"),  # aggressor: BUY (+1, lifted the ask), SELL (-1, hit the bid), 0 unknown
    ]
)
BUY = 1
SELL = -1
UNKNOWN_SIDE = 0


def empty_ticks(n: int = 0) -> np.ndarray:
    """A zeroed tick array of ``n`` rows."""
    return np.zeros(n, dtype=TICK_DTYPE)


@dataclass(frozen=True, slots=True)
class TickBatch:
    """Trades of one instrument, in time order; ``ticks`` has dtype :data:`TICK_DTYPE`.

    ``warmup``: trades from before the run started (a live feed's replay of the session so
    far): they build bars and indicators but never trade."""

    symbol: str
    ticks: np.ndarray
    warmup: bool = False

    def __len__(self) -> int:
        return len(self.ticks)


class FeedStatusKind(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTED = "reconnected"
    GAP = "gap"
    SESSION_START = "session_start"
    SESSION_END = "session_end"
    DROPPED = "dropped"  # the feed dropped ``count`` malformed rows (``detail`` says why)


class FeedStatus(BaseModel):
    """Something a feed says besides ticks: a connection change, a gap, a session edge.

    A feed yields these between tick batches. ``SESSION_END`` closes the open bar.
    """

    model_config = ConfigDict(frozen=True)

    kind: FeedStatusKind
    ts_ns: int
    detail: str = ""
    count: int = 0


class Direction(StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is Direction.LONG else -1


class Regime(StrEnum):
    TRENDING_UP = "TRENDING_UP"
    TRENDING_DOWN = "TRENDING_DOWN"
    RANGING = "RANGING"
    VOLATILE = "VOLATILE"
    NO_TRADE = "NO_TRADE"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Signal(_Model):
    """A pattern a detector saw in a closed footprint bar."""

    pattern: str  # e.g. "buy_imbalance", "stacked_sell_imbalance"
    direction: Direction  # the trade the pattern suggests
    price: Decimal  # the level the pattern is about
    bar_ts_ns: int  # open time of the bar it was seen in
    strength: float = Field(ge=0.0, le=1.0)
    reason: str
    detector: str = ""
    symbol: str = ""


class RegimeState(_Model):
    """What a regime classifier says about the market after a closed bar."""

    regime: Regime
    confidence: float = Field(ge=0.0, le=1.0)
    bar_ts_ns: int
    indicators: dict[str, float] = Field(default_factory=dict)
    reason: str = ""


class OrderIntent(_Model):
    """A bracket the router wants: market entry, then a stop and a target as one OCO pair."""

    symbol: str
    direction: Direction
    quantity: int = Field(ge=1)
    stop_ticks: int = Field(ge=1)
    target_ticks: int = Field(ge=1)
    signal: Signal
    regime: RegimeState | None = None
    reasons: tuple[str, ...] = ()  # the chain: signal -> regime -> rule


class RouteDecision(_Model):
    """The router's answer to one signal: an intent, or a rejection with its reasons."""

    signal: Signal
    intent: OrderIntent | None
    reasons: tuple[str, ...]

    @property
    def approved(self) -> bool:
        return self.intent is not None


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


FillRole = Literal["entry", "stop", "target", "flatten"]


class Fill(_Model):
    """An execution reported by a broker. ``price`` is fixed-point (PRICE_SCALE units).

    ``exec_id`` is the venue's execution id: unique per execution, so a fill reported twice
    (after a reconnect, say) is recognised and applied once. ``order_id`` is the kernel's client
    order id of the order that filled.
    """

    exec_id: str
    bracket_id: str
    order_id: str
    symbol: str
    side: OrderSide
    quantity: int = Field(ge=1)
    price: int
    ts_ns: int
    role: FillRole
    commission: Decimal = Decimal("0")  # for this fill, all contracts


class OrderUpdate(_Model):
    """A venue's word on an order other than a fill: accepted, cancelled or rejected."""

    order_id: str  # the kernel's client order id
    status: Literal["accepted", "cancelled", "rejected"]
    ts_ns: int
    venue_order_id: str = ""
    reason: str = ""


class Trade(_Model):
    """Closed contracts of one lot (see :mod:`tradebot_core.execution.positions`), money exact."""

    trade_id: str = ""
    bracket_id: str
    symbol: str
    direction: Direction
    quantity: int
    entry_price: Decimal
    exit_price: Decimal
    entry_ts_ns: int
    exit_ts_ns: int
    ticks: int  # signed points in ticks, per contract, in the trade's favour
    tick_size: Decimal
    tick_value: Decimal
    gross_pnl: Decimal
    commissions: Decimal
    net_pnl: Decimal
    exit_reason: str
    pattern: str = ""


class EventKind(StrEnum):
    SYSTEM_START = "system_start"
    SYSTEM_REBOOT = "system_reboot"  # the machine rebooted since the last run (its boot id)
    SYSTEM_STOP = "system_stop"
    REBOOT_DETECTED = "reboot_detected"
    FEED_STATUS = "feed_status"
    BAR_CLOSED = "bar_closed"
    REGIME_CHANGED = "regime_changed"
    SIGNAL = "signal"
    ROUTE_DECISION = "route_decision"
    ORDER = "order"
    FILL = "fill"
    TRADE_OPENED = "trade_opened"
    TRADE_CLOSED = "trade_closed"
    SESSION_STATE = "session_state"
    PNL = "pnl"
    TIER_CHANGE = "tier_change"
    HIGH_MARGIN_DAY = "high_margin_day"
    AUTO_FLATTEN = "auto_flatten"
    DAILY_DIGEST = "daily_digest"
    WATCHDOG = "watchdog"
    RECONCILIATION = "reconciliation"
    ERROR = "error"


class Event(_Model):
    """What the pipeline tells its observers (journal, notifiers, services)."""

    kind: EventKind
    ts_ns: int
    payload: Any  # a pydantic model (Signal, Trade...) or a JSON-ready dict
    message: str = ""  # one line a human reads

    def payload_dict(self) -> dict[str, Any]:
        if isinstance(self.payload, BaseModel):
            return self.payload.model_dump(mode="json")
        return dict(self.payload)
