"""The component kinds: a base class for each, with defaults for everything optional.

A plugin's component either subclasses the base of its kind (and overrides only what it has, as
llm's ``Model``) or is any class with the same attributes: the base classes are the documentation
and the defaults, :func:`check_component` is the contract, run when the class is registered, so a
malformed plugin fails ``tradebot validate`` with its name rather than the first bar.

Every component class has:

``name``
    The name the YAML config uses (``imbalance``, ``paper``...). Unique within its kind.
``Settings``
    A pydantic model for its YAML section (strict: ``extra="forbid"``). Optional; without it the
    section must be empty.
``__init__(self, settings, context)``
    ``settings`` is a validated ``Settings`` instance, ``context`` a :class:`PluginContext`. A
    class whose ``__init__`` takes fewer arguments gets the first ones it takes
    (:func:`construct`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from .instruments import Instrument, InstrumentRegistry
from .types import (
    Event,
    EventKind,
    FeedStatus,
    Fill,
    OrderIntent,
    OrderSide,
    OrderUpdate,
    RegimeState,
    RouteDecision,
    Signal,
    TickBatch,
)

if TYPE_CHECKING:
    from .footprint import FootprintHistory
    from .run.runner import Pipeline


log = logging.getLogger(__name__)


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


class Component:
    """What every base class shares: ``name``, ``Settings``, and ``settings``/``context`` kept."""

    name: ClassVar[str]
    kind: ClassVar[str]
    Settings: ClassVar[type[BaseModel]] = NoSettings

    def __init__(self, settings: Any = None, context: PluginContext | None = None) -> None:
        self.settings = settings
        self.context = context


class Feed(Component):
    """Yields tick batches in time order (and FeedStatus objects between them).

    Required: ``stream()``, an async generator. Optional:

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

    kind = "feed"
    live: ClassVar[bool] = False

    def stream(self) -> AsyncIterator[TickBatch | FeedStatus]:
        raise NotImplementedError


def day_settings(feed_cls: type[Feed], settings: dict[str, Any], day: date) -> dict[str, Any]:
    """The settings that make ``feed_cls`` play ``day``, or a clear error if it cannot."""
    method = getattr(feed_cls, "day_settings", None)
    if method is None:
        raise ValueError(
            f"feed {feed_cls.name!r} cannot be replayed by date (it has no day_settings)"
        )
    result: dict[str, Any] = method(dict(settings), day)
    return result


class Detector(Component):
    """Finds patterns in closed bars. Sees only closed bars: ``history`` holds nothing else.

    Required: ``on_bar_closed(history) -> list[Signal]``, called once per closed bar. A signal
    trades only if the router's rules enable its pattern (see docs/plugins.md).
    """

    kind = "detector"

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        raise NotImplementedError


class RegimeClassifier(Component):
    """Says what kind of market the closed bars show. Required: ``classify(history)``."""

    kind = "regime"

    def classify(self, history: FootprintHistory) -> RegimeState:
        raise NotImplementedError


class Router(Component):
    """Turns a signal into an order intent, or rejects it with reasons. Required: ``route``."""

    kind = "router"

    def route(self, signal: Signal, regime: RegimeState) -> RouteDecision:
        raise NotImplementedError


class Broker(Component):
    """A venue: takes order requests and reports what happens to them, to ``on_fill`` and
    ``on_order_update`` (set by the kernel), as it happens. See docs/execution.md.

    Required: ``submit_bracket`` and ``flatten``. Optional: ``cancel``, ``on_ticks`` (the hot
    path: return at once when nothing is working; a simulated venue fills against these ticks
    and reports each fill at the tick that made it), ``report()`` (what the venue holds, for the
    reconciliation at start: ``{"positions": {symbol: net}, "working": [order ids]}``; a broker
    without it is not reconciled), ``day_margin(symbol)``, ``restore`` (a simulated venue),
    ``start``/``stop`` (a live venue's connection).

    ``real_money``: whether orders reach a real account. A broker that does not say is treated
    as trading real money, and then needs both live switches.
    """

    kind = "broker"
    real_money: ClassVar[bool] = True
    on_fill: Callable[[Fill], None] = staticmethod(lambda fill: None)
    on_order_update: Callable[[OrderUpdate], None] = staticmethod(lambda update: None)

    def submit_bracket(self, intent: OrderIntent, bracket_id: str, ts_ns: int) -> None:
        raise NotImplementedError

    def flatten(
        self, symbol: str, order_id: str, side: OrderSide, quantity: int, reason: str, ts_ns: int
    ) -> None:
        """Exit ``symbol``'s position at market with order ``order_id``; cancel its stops and
        targets."""
        raise NotImplementedError

    def on_ticks(self, symbol: str, ticks: np.ndarray) -> None:
        """The feed's trades, slice by slice; a live broker may ignore them."""

    def restore(self, orders: list[Any], brackets: dict[str, Any]) -> None:
        """A simulated venue takes back the kernel's working orders after a restart."""

    def cancel(self, order_id: str, reason: str) -> None:
        """Cancel an order not filled yet; the venue reports the cancel."""

    async def start(self) -> None:
        """Connect (a live venue), before the run asks what it holds. Default: nothing."""

    async def stop(self) -> None:
        """Log out and stop, when the run ends. Default: nothing."""


class Notifier(Component):
    """Tells people about events. Required: ``notify(event)``, which must not block.

    ``kinds``: the event kinds it wants (None: all). ``start``/``stop`` default to nothing.
    """

    kind = "notifier"
    kinds: ClassVar[Any] = None

    def notify(self, event: Event) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        """Called once before the run's first event."""

    async def stop(self) -> None:
        """Called once after the run's last event: deliver what is queued."""


def wanted_kinds(notifier: Any) -> Any:
    """The event kinds a notifier wants: its own ``kinds``, else its settings' (None: all)."""
    return getattr(notifier, "kinds", None) or getattr(
        getattr(notifier, "settings", None), "kinds", None
    )


async def start_notifiers(notifiers: Iterable[Any], started: list[Any]) -> None:
    """``start()`` each notifier that has one, in turn, and append it to ``started`` (so that
    if one fails, ``started`` holds exactly those to stop)."""
    for notifier in notifiers:
        start = getattr(notifier, "start", None)
        if start is not None:
            await start()
        started.append(notifier)


async def stop_notifiers(started: list[Any]) -> None:
    """``stop()`` each started notifier (delivering what it queued); a failure is logged and
    the next one still stops."""
    for notifier in started:
        stop = getattr(notifier, "stop", None)
        if stop is not None:
            try:
                await stop()
            except Exception:
                log.exception("notifier %s failed to stop", getattr(notifier, "name", "?"))
    started.clear()


class Service(Component):
    """Runs beside the pipeline for the length of a run. Required: ``async start(pipeline)``."""

    kind = "service"

    async def start(self, pipeline: Pipeline) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        """Called once when the run ends."""


KINDS: dict[str, type[Component]] = {
    "feed": Feed,
    "detector": Detector,
    "regime": RegimeClassifier,
    "router": Router,
    "broker": Broker,
    "notifier": Notifier,
    "service": Service,
}

ALL_EVENT_KINDS: frozenset[EventKind] = frozenset(EventKind)

REQUIRED: dict[str, tuple[str, ...]] = {
    "feed": ("stream",),
    "detector": ("on_bar_closed",),
    "regime": ("classify",),
    "router": ("route",),
    "broker": ("submit_bracket", "flatten"),
    "notifier": ("notify",),
    "service": ("start",),
}
"""The methods each kind must have; the rest default (see the base classes)."""


def check_component(kind: str, cls: Any) -> list[str]:
    """What is wrong with a component class of ``kind`` (empty if nothing)."""
    label = f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls)!s}"
    if not isinstance(cls, type):
        return [f"{kind} {cls!r} is not a class"]
    problems = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        problems.append(f"{kind} class {label} has no 'name' (the name the config uses)")
    settings = getattr(cls, "Settings", NoSettings)
    if not (isinstance(settings, type) and issubclass(settings, BaseModel)):
        problems.append(f"{kind} {name or label!r}: Settings must be a pydantic model")
    base = KINDS[kind]
    for method in REQUIRED[kind]:
        found = getattr(cls, method, None)
        if not callable(found) or found is getattr(base, method, None):
            problems.append(f"{kind} {name or label!r} ({label}) has no {method}()")
    return problems


def construct(cls: type, settings: Any, context: PluginContext) -> Any:
    """``cls(settings, context)``, or with as many of them as its ``__init__`` takes."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return cls(settings, context)
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return cls(settings, context)
    instance = cls(*(settings, context)[: len(positional)])
    if getattr(instance, "settings", None) is None and not isinstance(instance, Component):
        with suppress(AttributeError):  # slots or a read-only property: it keeps its own
            instance.settings = settings
    return instance
