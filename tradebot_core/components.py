"""What each kind of component class must provide.

These are :class:`typing.Protocol` classes: a plugin does not inherit from them, it just has the
attributes. Every component class has:

``name``
    The name the YAML config uses (``imbalance``, ``paper``...). Unique within its kind.
``Settings``
    A pydantic model for its YAML section (strict: ``extra="forbid"``). Optional; without it the
    section must be empty.
``__init__(self, settings, context)``
    ``settings`` is a validated ``Settings`` instance, ``context`` a :class:`PluginContext`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from .instruments import Instrument, InstrumentRegistry
from .types import (
    Event,
    EventKind,
    FeedStatus,
    Fill,
    OrderIntent,
    RegimeState,
    RouteDecision,
    Signal,
    TickBatch,
)

if TYPE_CHECKING:
    from .footprint import FootprintHistory
    from .pipeline import Pipeline


class NoSettings(BaseModel):
    """The settings of a component that takes none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PluginSettings(BaseModel):
    """Base class for a plugin's settings: strict and frozen, so a misspelt key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class PluginContext:
    """What a component may know about the run it is part of."""

    symbol: str
    instruments: InstrumentRegistry
    timeframe_s: int
    data_dir: Path
    config: Any = None  # the whole TradebotConfig
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def instrument(self) -> Instrument:
        return self.instruments[self.symbol]


@runtime_checkable
class Feed(Protocol):
    """Yields tick batches in time order (and FeedStatus objects between them).

    Optional:

    ``live = True``
        the feed delivers in real time; the kernel never paces it.
    ``day_settings(cls, settings: dict, day: date) -> dict`` (classmethod)
        the raw settings that make this feed play one trading day: used by ``tradebot replay``
        and by backtests, which run one day per job. A feed without it cannot be replayed by
        date.
    ``prepare_days(self, days) -> str``
        called once before a backtest of ``days`` (on a feed built for the whole range): fetch or
        check what the day jobs will need (e.g. price and download missing days once); returns
        a line for the user.
    """

    name: ClassVar[str]

    def stream(self) -> AsyncIterator[TickBatch | FeedStatus]: ...


def day_settings(feed_cls: type, settings: dict[str, Any], day: date) -> dict[str, Any]:
    """The settings that make ``feed_cls`` play ``day``, or a clear error if it cannot."""
    method = getattr(feed_cls, "day_settings", None)
    if method is None:
        raise ValueError(
            f"feed {feed_cls.name!r} cannot be replayed by date (it has no day_settings)"
        )
    return method(dict(settings), day)


@runtime_checkable
class Detector(Protocol):
    """Finds patterns in closed bars. Sees only closed bars: ``history`` holds nothing else."""

    name: ClassVar[str]

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]: ...


@runtime_checkable
class RegimeClassifier(Protocol):
    """Says what kind of market the closed bars show."""

    name: ClassVar[str]

    def classify(self, history: FootprintHistory) -> RegimeState: ...


@runtime_checkable
class Router(Protocol):
    """Turns a signal into an order intent, or rejects it with reasons."""

    name: ClassVar[str]

    def route(self, signal: Signal, regime: RegimeState) -> RouteDecision: ...


@runtime_checkable
class Broker(Protocol):
    """Executes brackets and reports every fill to ``on_fill`` (set by the pipeline) at once.

    ``on_ticks`` is on the hot path: it must return at once when nothing is working. A paper
    broker fills against those ticks; it calls ``on_fill`` at the tick that filled, and if the
    handler calls ``flatten`` the exit happens from the next tick of the same scan, so results do
    not depend on how ticks were batched.
    """

    name: ClassVar[str]
    on_fill: Callable[[Fill], None]

    def submit_bracket(self, intent: OrderIntent, bracket_id: str, ts_ns: int) -> None: ...

    def on_ticks(self, symbol: str, ticks: np.ndarray) -> None: ...

    def flatten(self, reason: str, ts_ns: int) -> None: ...

    def cancel_entries(self, reason: str) -> list[str]:
        """Cancel brackets whose entry has not filled; return their ids."""
        ...

    def working_brackets(self) -> list[dict[str, Any]]: ...

    def restore(self, brackets: list[dict[str, Any]]) -> None: ...


@runtime_checkable
class Notifier(Protocol):
    """Tells people about events. ``notify`` must not block."""

    name: ClassVar[str]

    def notify(self, event: Event) -> None: ...


@runtime_checkable
class Service(Protocol):
    """Runs beside the pipeline for the length of a run."""

    name: ClassVar[str]

    async def start(self, pipeline: Pipeline) -> None: ...

    async def stop(self) -> None: ...


KINDS: dict[str, type] = {
    "feed": Feed,
    "detector": Detector,
    "regime": RegimeClassifier,
    "router": Router,
    "broker": Broker,
    "notifier": Notifier,
    "service": Service,
}

ALL_EVENT_KINDS: frozenset[EventKind] = frozenset(EventKind)
