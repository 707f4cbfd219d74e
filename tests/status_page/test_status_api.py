"""The status page's read-only REST API, against a live pipeline."""

from __future__ import annotations

import time
from decimal import Decimal

import aiohttp
from status_page.queued import feed, minutes

from tradebot_core.types import EventKind


async def get(url: str) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
        http.get(url) as response,
    ):
        return response.status, await response.json()


async def test_health_before_and_after_ticks(live):
    status, before = await get(live.url + "/")
    assert status == 200
    assert before["status"] == "ok" and before["feed_connected"] is True
    assert before["last_tick_age_s"] is None and before["last_batch_age_s"] is None
    ticks = minutes(0, 5)
    await feed(ticks, live.pipeline)
    _, after = await get(live.url + "/")
    expected_age = time.time() - int(ticks["ts_event"][-1]) / 1e9  # wall now vs the last tick
    assert abs(after["last_tick_age_s"] - expected_age) < 60
    assert 0 <= after["last_batch_age_s"] < 60
    assert after["uptime_s"] >= before["uptime_s"]
    from tradebot_core import __version__

    assert after["version"] == __version__


async def test_session_status(live):
    await feed(minutes(0, 5), live.pipeline)
    _, status = await get(live.url + "/api/session/status")
    p = live.pipeline
    assert status["symbol"] == "ES" and status["trading_symbol"] == p.account.symbol
    assert status["regime"]["regime"] == p.regime_state.regime.value
    assert status["regime"]["confidence"] == p.regime_state.confidence
    assert status["summary"]["bars"] == p.summary.bars >= 4
    assert status["risk"]["max_position"] == p.risk.settings.max_position
    assert status["risk"]["halted"] is False
    assert Decimal(status["account"]["balance"]) == p.account.balance
    assert status["token_configured"] is True


async def test_trades_and_signals_newest_first_with_a_limit(live):
    await feed(minutes(0, 30), live.pipeline)
    p = live.pipeline
    assert p.summary.trades >= 3, "the scripted run should have closed a few trades"
    _, trades = await get(live.url + "/api/trades")
    assert len(trades) == p.summary.trades
    exits = [t["exit_ts_ns"] for t in trades]
    assert exits == sorted(exits, reverse=True)
    _, two = await get(live.url + "/api/trades?limit=2")
    assert two == trades[:2]
    _, signals = await get(live.url + "/api/signals?limit=5")
    assert len(signals) == 5
    assert [s["id"] for s in signals] == sorted((s["id"] for s in signals), reverse=True)
    assert all(isinstance(s["reasons"], list) and s["approved"] in (0, 1) for s in signals)
    _, decisions = await get(live.url + "/api/decisions?limit=3")
    assert [d["signal_id"] for d in decisions] == [s["id"] for s in signals[:3]]
    status, bad = await get(live.url + "/api/trades?limit=lots")
    assert status == 400 and "limit" in bad["error"]


async def test_positions_carry_decimal_prices(live):
    p = live.pipeline
    for minute in range(30):  # until a position is open at the end of a minute
        await feed(minutes(minute, 1), p)
        if p.session.positions.open_positions():
            break
    (position,) = p.session.positions.open_positions()
    _, positions = await get(live.url + "/api/positions")
    (shown,) = positions
    (lot,) = position.lots
    spec = lot.instrument
    stop, target = (p.session.orders.orders[f"{lot.bracket_id}-{r}"] for r in ("stop", "target"))
    assert shown["bracket_id"] == lot.bracket_id
    assert shown["direction"] == position.direction.value
    assert Decimal(shown["entry_price"]) == spec.to_decimal(lot.entry_price)
    assert Decimal(shown["stop_price"]) == spec.to_decimal(stop.price)
    assert Decimal(shown["target_price"]) == spec.to_decimal(target.price)
    tick = spec.tick_fixed * position.direction.sign
    assert stop.price == lot.entry_price - 8 * tick  # the bracket's distances, from the fill
    _, status = await get(live.url + "/api/session/status")
    assert status["position"] == position.quantity


async def test_statistics_match_the_closed_trades(live):
    closed = []
    live.pipeline.bus.subscribe(lambda e: closed.append(e.payload), [EventKind.TRADE_CLOSED])
    await feed(minutes(0, 60), live.pipeline)
    _, stats = await get(live.url + "/api/statistics")
    nets = [t.net_pnl for t in sorted(closed, key=lambda t: t.exit_ts_ns)]
    assert len(nets) >= 5 and any(n > 0 for n in nets) and any(n < 0 for n in nets)
    equity, curve = Decimal(0), [Decimal(0)]
    for n in nets:
        equity += n
        curve.append(equity)
    deepest = max(max(curve[: i + 1]) - c for i, c in enumerate(curve))
    wins = [n for n in nets if n > 0]
    losses = [n for n in nets if n < 0]
    assert stats["trades"] == len(nets) and stats["wins"] == len(wins)
    assert stats["win_rate"] == round(len(wins) / len(nets), 4)
    assert Decimal(stats["net_pnl"]) == sum(nets) == live.pipeline.summary.net_pnl
    assert Decimal(stats["max_drawdown"]) == deepest
    assert Decimal(stats["profit_factor"]) == round(sum(wins) / -sum(losses), 2)


async def test_recent_bars_are_the_last_closed_ones(live):
    await feed(minutes(0, 40), live.pipeline)
    _, bars = await get(live.url + "/api/bars")
    history = live.pipeline.history
    keep = live.page.settings.recent_bars
    assert len(bars) == keep < len(history)
    assert [b["ts_open"] for b in bars] == [int(t) for t in history.bars["ts_open"][-keep:]]
    last = bars[-1]
    volume = sum(bid + ask for _, bid, ask in last["levels"])
    assert volume == last["volume"]
    assert Decimal(last["low"]) <= Decimal(last["poc"]) <= Decimal(last["high"])
