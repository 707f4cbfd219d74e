"""A testing kit for plugin authors (as pytest's ``pytester``): ticks, bars, a whole run.

Three lines of a detector's own test::

    from tradebot_core.testing import bars_from_ticks, trades

    history = bars_from_ticks(trades([(0, "5000.00", 80, "buy"), (60, "5000.25", 1, "sell")]))
    signals = MyDetector(MyDetector.Settings(), None).on_bar_closed(history)

and a whole pipeline (feed -> footprint -> regime -> detectors -> router -> paper broker) on a
list of ticks, with the plugin under test registered for that run only::

    result = run_pipeline(ticks, plugins=[my_plugin_module], detectors={"my_detector": {}})
    assert result.signals and result.trades

``run_pipeline`` uses a fixed ``RANGING`` regime and a router that approves every signal (both
defined here), unless told otherwise, so a detector's signals trade without a warm-up.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import yaml

from . import hookimpl
from .components import Feed, PluginContext, PluginSettings, RegimeClassifier, Router
from .footprint import FootprintEngine, FootprintHistory
from .instruments import InstrumentRegistry
from .types import (
    PRICE_SCALE,
    TICK_DTYPE,
    Event,
    EventKind,
    FeedStatus,
    FeedStatusKind,
    OrderIntent,
    Regime,
    RegimeState,
    RouteDecision,
    Signal,
    TickBatch,
    Trade,
)

__all__ = [
    "ApproveAll",
    "FixedRegime",
    "RunResult",
    "ScriptedFeed",
    "bars_from_ticks",
    "run_pipeline",
    "trades",
]

_SIDES = {"buy": 1, "b": 1, 1: 1, "sell": -1, "s": -1, -1: -1, "?": 0, 0: 0, None: 0}


def trades(
    rows: Iterable[tuple[float, str | Decimal | float, int, str | int | None]],
    start_ns: int = 1_700_000_000 * 10**9,
) -> np.ndarray:
    """A tick array from ``(seconds after start, price, size, side)`` rows.

    ``price`` is in dollars (a string or Decimal keeps it exact); ``side`` is the aggressor:
    ``"buy"`` (lifted the ask), ``"sell"`` (hit the bid) or ``None`` (unknown).
    """
    rows = list(rows)
    ticks = np.zeros(len(rows), dtype=TICK_DTYPE)
    for i, (seconds, price, size, side) in enumerate(rows):
        ticks[i] = (
            start_ns + round(Decimal(str(seconds)) * 10**9),
            int(Decimal(str(price)) * PRICE_SCALE),
            size,
            _SIDES[side.lower() if isinstance(side, str) else side],
        )
    return ticks


def bars_from_ticks(
    ticks: np.ndarray, symbol: str = "ES", timeframe_s: int = 60, close_last: bool = True
) -> FootprintHistory:
    """The footprint bars of ``ticks`` (the last bar closed too, unless ``close_last=False``)."""
    engine = FootprintEngine(InstrumentRegistry()[symbol], timeframe_s)
    engine.update(ticks)
    if close_last:
        engine.flush()
    return engine.history


class ScriptedFeed(Feed):
    """Plays the tick arrays in ``ScriptedFeed.sessions`` (one session each) in ``batches``."""

    name = "scripted"
    sessions: ClassVar[list[np.ndarray]] = []

    class Settings(PluginSettings):
        batches: int = 1

    async def stream(self) -> AsyncIterator[TickBatch | FeedStatus]:
        symbol = self.context.symbol if self.context else "ES"
        for session in self.sessions:
            if len(session) == 0:
                continue
            yield FeedStatus(kind=FeedStatusKind.SESSION_START, ts_ns=int(session["ts_event"][0]))
            for chunk in np.array_split(session, max(1, self.settings.batches)):
                yield TickBatch(symbol, chunk)
            yield FeedStatus(kind=FeedStatusKind.SESSION_END, ts_ns=int(session["ts_event"][-1]))


class FixedRegime(RegimeClassifier):
    """Always the configured regime, at full confidence."""

    name = "fixed"

    class Settings(PluginSettings):
        regime: Regime = Regime.RANGING

    def classify(self, history: FootprintHistory) -> RegimeState:
        return RegimeState(
            regime=self.settings.regime,
            confidence=1.0,
            bar_ts_ns=int(history.bars[-1]["ts_open"]),
            reason="fixed for a test",
        )


class ApproveAll(Router):
    """Approves every signal with the configured bracket, at the config's ``quantity``."""

    name = "approve_all"

    class Settings(PluginSettings):
        stop_ticks: int = 8
        target_ticks: int = 8

    def route(self, signal: Signal, regime: RegimeState) -> RouteDecision:
        context: PluginContext = self.context  # type: ignore[assignment]
        intent = OrderIntent(
            symbol=context.symbol,
            direction=signal.direction,
            quantity=context.config.quantity if context.config else 1,
            stop_ticks=self.settings.stop_ticks,
            target_ticks=self.settings.target_ticks,
            signal=signal,
            regime=regime,
            reasons=("approve_all",),
        )
        return RouteDecision(signal=signal, intent=intent, reasons=("approve_all",))


class _TestingPlugin:
    @hookimpl
    def register_feeds(self, register: Any) -> None:
        register(ScriptedFeed)

    @hookimpl
    def register_regime_classifiers(self, register: Any) -> None:
        register(FixedRegime)

    @hookimpl
    def register_routers(self, register: Any) -> None:
        register(ApproveAll)


@dataclass
class RunResult:
    """What a test run produced: its events by kind, and the run's summary."""

    events: list[Event] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def of(self, kind: EventKind) -> list[Any]:
        return [event.payload for event in self.events if event.kind is kind]

    @property
    def signals(self) -> list[Signal]:
        return self.of(EventKind.SIGNAL)

    @property
    def decisions(self) -> list[RouteDecision]:
        return self.of(EventKind.ROUTE_DECISION)

    @property
    def trades(self) -> list[Trade]:
        return self.of(EventKind.TRADE_CLOSED)


def run_pipeline(
    ticks: np.ndarray | Sequence[np.ndarray],
    *,
    plugins: Sequence[Any] = (),
    detectors: dict[str, dict[str, Any] | None] | None = None,
    symbol: str = "ES",
    timeframe_s: int = 60,
    regime: str = "fixed",
    router: str = "approve_all",
    config: dict[str, Any] | None = None,
    builtins: bool = True,
    batches: int = 1,
    broker: str = "paper",
) -> RunResult:
    """Run the whole pipeline on ``ticks`` (one array per session) with the paper broker.

    ``plugins``: plugin modules or objects to register for this run (the one under test).
    ``detectors``: the ``detectors:`` section. ``config``: more YAML keys, merged on top.
    ``builtins``: also load the installed plugins (entry points), e.g. the ``adx`` regime.
    """
    from .config import load_config
    from .plugins import PluginManager
    from .run.runner import Pipeline

    sessions = [ticks] if isinstance(ticks, np.ndarray) else list(ticks)
    raw: dict[str, Any] = {
        "symbol": symbol,
        "timeframe_s": timeframe_s,
        "feed": {"plugin": "scripted", "speed": "max", "scripted": {"batches": batches}},
        "detectors": detectors or {},
        "regime": {"plugin": regime},
        "router": {"plugin": router},
        "broker": {"plugin": broker},
        "risk": {"daily_profit_target": 1_000_000, "daily_loss_limit": -1_000_000},
        "account": {"tiers": []},
    }
    for key, value in (config or {}).items():
        raw[key] = {**raw[key], **value} if isinstance(raw.get(key), dict) else value
    manager = PluginManager(load_entrypoints=builtins)
    if not builtins:
        import importlib

        paper = importlib.import_module("tradebot_plugins.brokers.paper")
        manager.register(paper, "paper")
    manager.register(_TestingPlugin(), "tradebot-testing")
    for index, plugin in enumerate(plugins):
        name = getattr(plugin, "__name__", type(plugin).__name__)
        manager.register(plugin, f"under-test-{index}-{name}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tradebot.yaml"
        raw["journal"] = {"path": str(Path(folder) / "journal.db")}
        path.write_text(yaml.safe_dump(raw))
        loaded = load_config(path)
        ScriptedFeed.sessions = sessions
        try:
            pipeline = Pipeline(loaded, manager)
            result = RunResult()
            pipeline.bus.subscribe(
                result.events.append, frozenset(EventKind) - {EventKind.BAR_CLOSED}
            )
            summary = asyncio.run(pipeline.run())
        finally:
            ScriptedFeed.sessions = []
        result.summary = summary.as_dict()
    return result
