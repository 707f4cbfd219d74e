"""The example plugin's own tests: only ``tradebot_core`` and ``tradebot_core.testing``."""

from decimal import Decimal

import tradebot_delta_surge
from tradebot_delta_surge import DeltaSurge, DeltaSurgeSettings

from tradebot_core import Direction
from tradebot_core.testing import bars_from_ticks, run_pipeline, trades


def one_bar(buys: int, sells: int) -> list[tuple]:
    """``buys`` and ``sells`` one-lot trades at 5000.00 inside one 60 s bar."""
    return [(i * 0.01, "5000.00", 1, "buy" if i < buys else "sell") for i in range(buys + sells)]


def detect(buys, sells, **settings):
    detector = DeltaSurge(DeltaSurgeSettings(min_volume=10, **settings), None)
    return detector.on_bar_closed(bars_from_ticks(trades(one_bar(buys, sells))))


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


def test_a_surge_trades_through_the_whole_pipeline():
    # bar 1: a buying surge; bar 2: the price walks up 3 points, through the 8-tick target
    rows = one_bar(80, 20)
    rows += [(60 + i, f"{5000 + i * 0.25:.2f}", 1, "buy") for i in range(16)]
    result = run_pipeline(
        trades(rows),
        plugins=[tradebot_delta_surge],
        detectors={"delta_surge": {"min_volume": 10}},
        builtins=False,
    )
    assert [s.pattern for s in result.signals][:1] == ["delta_surge"]
    (trade, *_) = result.trades
    assert trade.direction is Direction.LONG
    assert trade.exit_reason == "target"
    assert trade.net_pnl > 0
