"""Warm days: each backtest day trades after the bars of the days before it, so days run in
parallel give the trades of one continuous run, and a day can trade in its first hour."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from zoneinfo import ZoneInfo

from tradebot_plugins.backtest.engine import run_backtest
from tradebot_plugins.backtest.executors import LocalExecutor

from tradebot_core import EventKind, Pipeline, PluginManager, calendar, load_config

CONFIG = """
symbol: MES
timeframe_s: 300
feed:
  plugin: demo
  speed: max
  demo: {{seed: 3, sessions: {sessions}, trades_per_session: 30000, start_date: "2024-11-11"}}
detectors: {{imbalance: {{ratio: 2.5}}, stacked_imbalance: {{}}, exhaustion: {{}},
  absorption: {{}}, delta_divergence: {{}}, unfinished_business: {{}}}}
regime: {{plugin: adx}}
router: {{plugin: regime}}
risk: {{daily_profit_target: 100000, daily_loss_limit: -100000}}
account: {{starting_balance: 2500, tiers: []}}
journal: {{path: {journal}}}
"""

FIELDS = (
    "entry_ts_ns",
    "exit_ts_ns",
    "direction",
    "quantity",
    "entry_price",
    "exit_price",
    "net_pnl",
    "exit_reason",
    "pattern",
)


def key(trade: dict) -> tuple:
    return tuple(str(trade[f]) for f in FIELDS)


def test_ten_days_in_parallel_trade_as_one_continuous_run(tmp_path):
    days = calendar.trading_days(date(2024, 11, 11), date(2024, 11, 22))
    assert len(days) == 10
    continuous = tmp_path / "continuous.yaml"
    continuous.write_text(CONFIG.format(sessions=10, journal=tmp_path / "c.db"))
    pipeline = Pipeline(load_config(continuous), PluginManager())
    trades: list[dict] = []
    pipeline.bus.subscribe(
        lambda e: trades.append(e.payload.model_dump(mode="json")), [EventKind.TRADE_CLOSED]
    )
    assert asyncio.run(pipeline.run()).exit == "completed"

    parallel = tmp_path / "parallel.yaml"
    parallel.write_text(CONFIG.format(sessions=1, journal=tmp_path / "p.db"))
    executor = LocalExecutor(2)
    try:
        result = run_backtest(load_config(parallel), days, executor)
        cold = run_backtest(load_config(parallel), days, executor, warmup_bars=0)
    finally:
        executor.close()
    assert [key(t) for t in cold.trades] != [key(t) for t in trades]  # cold days differ
    assert [key(t) for t in result.trades] == [key(t) for t in trades]
    assert len(trades) > 20

    # warmed by the days before, a day trades in its first hour (the regime needs 28 bars cold)
    et = ZoneInfo("America/New_York")
    first_hour = [
        t
        for t in result.trades[1:]
        if datetime.fromtimestamp(t["entry_ts_ns"] / 1e9, et).time().hour < 10
        or datetime.fromtimestamp(t["entry_ts_ns"] / 1e9, et).strftime("%H:%M") < "10:30"
    ]
    assert first_hour, "no day traded in its first hour"
    assert all(d["warmup_bars"] > 0 for d in result.days[1:])


def test_days_warmed_by_earlier_days_trade_as_in_the_whole_run(tmp_path):
    """What a walk-forward window does: its days, warmed by the days before it (not traded),
    trade exactly as the same days inside a backtest of them all."""
    days = calendar.trading_days(date(2024, 11, 11), date(2024, 11, 15))
    path = tmp_path / "parallel.yaml"
    path.write_text(CONFIG.format(sessions=1, journal=tmp_path / "p.db"))
    executor = LocalExecutor(2)
    try:
        whole = run_backtest(load_config(path), days, executor)
        window = run_backtest(load_config(path), days[3:], executor, warm_days=days[:3])
        cold = run_backtest(load_config(path), days[3:], executor)
    finally:
        executor.close()
    later = days[3]
    start = int(datetime(later.year, later.month, later.day, tzinfo=ZoneInfo("UTC")).timestamp())
    fields = FIELDS[:-3]  # the balance differs (the window starts afresh): sizes and P&L may too
    in_whole = [
        tuple(str(t[f]) for f in fields) for t in whole.trades if t["entry_ts_ns"] > start * 10**9
    ]
    assert in_whole and [tuple(str(t[f]) for f in fields) for t in window.trades] == in_whole
    assert [tuple(str(t[f]) for f in fields) for t in cold.trades] != in_whole
    assert window.days[0]["warmup_bars"] > 0 and cold.days[0]["warmup_bars"] == 0
