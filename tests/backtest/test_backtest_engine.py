"""Backtest days: parity with a run, exact stitching across tier changes, no look-ahead."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np
import pytest
from kernel.scripted import BASE_CONFIG, ScriptedFeed, kernel_manager
from tradebot_plugins.backtest import stats
from tradebot_plugins.backtest.engine import run_backtest
from tradebot_plugins.backtest.executors import InlineExecutor
from tradebot_plugins.backtest.jobs import DayJob, run_day

from tradebot_core import Pipeline
from tradebot_core.config import load_config
from tradebot_core.types import EventKind

TIERS = """
account:
  starting_balance: 2500
  demote_buffer: 50
  tiers:
    - {name: micro, min_balance: 0, symbol: MES, max_contracts: 1}
    - {name: mini, min_balance: 2400, symbol: ES, max_contracts: 1}
"""


def config(tmp_path, extra=""):
    """The kernel config on MES; no account tiers unless ``extra`` sets them."""
    path = tmp_path / "bt.yaml"
    path.write_text(BASE_CONFIG.replace("symbol: ES", "symbol: MES") + extra)
    return load_config(path, () if "tiers" in extra else ("account.tiers=[]",))


def trades_of_run(loaded, day_ticks, balance):
    """The same day through a plain pipeline run, as `tradebot run` would do it."""
    ScriptedFeed.script = [day_ticks]
    pipeline = Pipeline(loaded, kernel_manager(), journal_path=":memory:", starting_balance=balance)
    trades = []
    pipeline.bus.subscribe(
        lambda e: trades.append(e.payload.model_dump(mode="json")), [EventKind.TRADE_CLOSED]
    )
    asyncio.run(pipeline.run())
    return trades


def test_a_backtested_day_equals_the_same_day_run(scripted_backtest, tmp_path):
    loaded = config(tmp_path)
    day = scripted_backtest[2]
    script = list(ScriptedFeed.script)
    backtested = run_day(DayJob(loaded, day, Decimal("2500")))
    run_trades = trades_of_run(loaded, script[2], Decimal("2500"))
    assert len(run_trades) > 3
    assert backtested["trades"] == run_trades


def test_parallel_days_stitch_exactly_like_a_sequential_run_across_tier_changes(
    scripted_backtest, tmp_path
):
    loaded = config(tmp_path, TIERS)
    days = scripted_backtest
    script = list(ScriptedFeed.script)
    # the stitching alone (cold days; warm days are test_backtest_warm's)
    result = run_backtest(loaded, days, InlineExecutor(), warmup_bars=0)
    ScriptedFeed.script = script
    # the truth: day after day, each starting from the previous day's end
    balance = Decimal("2500")
    sequential = []
    for day in days:
        day_result = run_day(DayJob(loaded, day, balance))
        sequential.append(day_result)
        balance = Decimal(day_result["end_balance"])
    strip = lambda d: {k: v for k, v in d.items() if k != "wall_s"}  # noqa: E731
    assert [strip(d) for d in result.days] == [strip(d) for d in sequential]
    symbols = {t["symbol"] for t in result.trades}
    assert symbols == {"MES", "ES"}, "the scenario must cross a tier"
    assert result.reruns > 0
    assert stats.tier_progression(result)


def test_results_json_is_byte_identical_across_runs(scripted_backtest, tmp_path):
    loaded = config(tmp_path, TIERS)
    script = list(ScriptedFeed.script)
    first = run_backtest(loaded, scripted_backtest, InlineExecutor()).to_json()
    ScriptedFeed.script = script
    second = run_backtest(loaded, scripted_backtest, InlineExecutor()).to_json()
    assert first == second
    assert '"wall_s"' not in first


class Peeker:
    """A detector that tries to read the bar after the one that just closed."""

    name = "peeker"
    found: list = []

    def __init__(self, settings, context):
        pass

    def on_bar_closed(self, history):
        n = len(history)
        with pytest.raises(IndexError):
            history.bars[n]
        # even the private storage holds nothing beyond the last closed bar
        Peeker.found.append(bool(np.any(history._bars[n : n + 1]["volume"])))
        return []


def test_a_future_peeking_detector_finds_nothing(tmp_path):
    from kernel.scripted import et, make_ticks

    from tradebot_core import hookimpl

    class PeekPlugin:
        @hookimpl
        def register_detectors(self, register):
            register(Peeker)

    manager = kernel_manager()
    manager.register(PeekPlugin(), "peek")
    # the whole session in one batch: every bar closes ahead of the pipeline's cut
    ScriptedFeed.script = [make_ticks(et(2024, 11, 13, 9, 30), 20_000, seed=8)]
    path = tmp_path / "peek.yaml"
    path.write_text(
        BASE_CONFIG.replace("detectors: {bar_direction: {}}", "detectors: {peeker: {}}")
    )
    Peeker.found = []
    pipeline = Pipeline(load_config(path), manager, journal_path=":memory:")
    summary = asyncio.run(pipeline.run())
    assert len(Peeker.found) == summary.bars > 50
    assert not any(Peeker.found)
