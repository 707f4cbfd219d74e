"""Throwaway plugins for kernel tests, imported as ``kernel.scripted``: a scripted feed, a
bar-direction detector, a fixed regime and a router that approves everything (pluggy plugins)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import tradebot_plugins.brokers.paper as paper_plugin

from tradebot_core import hookimpl
from tradebot_core.components import PluginSettings
from tradebot_core.plugins import PluginManager
from tradebot_core.testing import ApproveAll, FixedRegime
from tradebot_core.types import (
    TICK_DTYPE,
    Direction,
    FeedStatus,
    FeedStatusKind,
    Signal,
    TickBatch,
)

ES_TICK = 250_000_000


def make_ticks(
    start: datetime, n: int, seed: int = 1, step_ms: int = 200, price: float = 5000.0
) -> np.ndarray:
    """A seeded random walk of ES trades, one every ``step_ms`` on average."""
    rng = np.random.default_rng(seed)
    ticks = np.zeros(n, dtype=TICK_DTYPE)
    t0 = int(start.timestamp() * 1e9)
    ticks["ts_event"] = t0 + np.cumsum(rng.integers(1, 2 * step_ms, n)) * 1_000_000
    moves = rng.choice([-1, 0, 1], n, p=[0.3, 0.4, 0.3])
    ticks["price"] = (int(price * 4) + np.cumsum(moves)) * ES_TICK
    ticks["size"] = rng.integers(1, 20, n)
    ticks["side"] = np.where(moves > 0, 1, np.where(moves < 0, -1, rng.choice([-1, 1], n)))
    return ticks


class ScriptedFeed:
    """Plays ``ScriptedFeed.script``: a list of tick arrays (one session each), in batches.

    With ``day`` set it plays only the session that starts on that (UTC) date.
    """

    name = "scripted"
    script: ClassVar[list[np.ndarray]] = []

    class Settings(PluginSettings):
        batches: int = 1
        day: str | None = None
        live: bool = False  # plays as a live feed: a run goes on from the journal's account

    def __init__(self, settings: Any, context: Any) -> None:
        self.settings = settings
        self.symbol = context.symbol
        self.live = settings.live

    @classmethod
    def day_settings(cls, settings: dict, day: Any) -> dict:
        return {**settings, "day": day.isoformat()}

    def sessions(self) -> list[np.ndarray]:
        if self.settings.day is None:
            return self.script
        return [
            s
            for s in self.script
            if datetime.fromtimestamp(int(s["ts_event"][0]) / 1e9, UTC).date().isoformat()
            == self.settings.day
        ]

    async def stream(self):
        for session in self.sessions():
            yield FeedStatus(kind=FeedStatusKind.SESSION_START, ts_ns=int(session["ts_event"][0]))
            for chunk in np.array_split(session, self.settings.batches):
                yield TickBatch(self.symbol, chunk)
            yield FeedStatus(kind=FeedStatusKind.SESSION_END, ts_ns=int(session["ts_event"][-1]))


class BarDirection:
    """LONG after an up bar, SHORT after a down bar: simple, deterministic, frequent."""

    name = "bar_direction"

    def __init__(self, settings: Any, context: Any) -> None:
        self.seen_lengths: list[int] = []

    def on_bar_closed(self, history: Any) -> list[Signal]:
        self.seen_lengths.append(len(history))
        bar = history.bars[-1]
        if bar["close"] == bar["open"]:
            return []
        direction = Direction.LONG if bar["close"] > bar["open"] else Direction.SHORT
        return [
            Signal(
                pattern=f"bar_{direction.value}",
                direction=direction,
                price=history.price(int(bar["close"])),
                bar_ts_ns=int(bar["ts_open"]),
                strength=1.0,
                reason="bar direction",
                detector=self.name,
            )
        ]


class KernelTestPlugin:
    @hookimpl
    def register_feeds(self, register):
        register(ScriptedFeed)

    @hookimpl
    def register_detectors(self, register):
        register(BarDirection)

    @hookimpl
    def register_regime_classifiers(self, register):
        register(FixedRegime)

    @hookimpl
    def register_routers(self, register):
        register(ApproveAll)


BASE_CONFIG = """
symbol: ES
timeframe_s: 60
feed: {plugin: scripted, scripted: {batches: 1}}
detectors: {bar_direction: {}}
regime: {plugin: fixed}
router: {plugin: approve_all}
broker: {plugin: paper, paper: {slippage_ticks: 1, commission_per_side: 2.25}}
risk: {daily_profit_target: 100000, daily_loss_limit: -100000, max_position: 1}
"""


def kernel_manager() -> PluginManager:
    manager = PluginManager(load_entrypoints=False)
    manager.register(paper_plugin, "paper")
    manager.register(KernelTestPlugin(), "kernel-test")
    return manager


def et(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("America/New_York"))
