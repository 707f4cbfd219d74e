from decimal import Decimal

import numpy as np
from tradebot_delta_surge import DeltaSurge, DeltaSurgeSettings

from tradebot_core.footprint import FootprintEngine
from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import TICK_DTYPE, Direction

ES = InstrumentRegistry()["ES"]


def bar_of(buys: int, sells: int) -> FootprintEngine:
    """One closed 60 s bar at 5000.00 with ``buys`` and ``sells`` one-lot trades."""
    n = buys + sells
    ticks = np.zeros(n + 1, dtype=TICK_DTYPE)
    ticks["ts_event"] = np.arange(n + 1) * 1_000_000
    ticks["ts_event"][-1] = 60 * 10**9  # opens the next bar, closing the first
    ticks["price"] = 20_000 * ES.tick_fixed
    ticks["size"] = 1
    ticks["side"][:buys] = 1
    ticks["side"][buys:n] = -1
    engine = FootprintEngine(ES, 60)
    engine.update(ticks)
    return engine


def detect(buys, sells, **settings):
    detector = DeltaSurge(DeltaSurgeSettings(min_volume=10, **settings), None)
    return detector.on_bar_closed(bar_of(buys, sells).history)


def test_buying_surge_fires_long_at_the_close():
    (signal,) = detect(80, 20)
    assert signal.direction is Direction.LONG
    assert signal.price == Decimal("5000.00")
    assert signal.strength == 0.6


def test_selling_surge_fires_short():
    (signal,) = detect(10, 40)
    assert signal.direction is Direction.SHORT


def test_just_below_the_share_does_not_fire():
    assert detect(79, 21, min_share=0.6) == []
    assert detect(8, 1) == []  # below min_volume
