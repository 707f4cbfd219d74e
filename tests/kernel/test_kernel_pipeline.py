"""The pipeline end to end, with throwaway plugins and the real paper broker and journal."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal

import numpy as np
from kernel.scripted import BarDirection, et, make_ticks

from tradebot_core.instruments import InstrumentRegistry
from tradebot_core.types import EventKind

ES = InstrumentRegistry()["ES"]


def run(pipeline):
    return asyncio.run(pipeline.run())


def journal_rows(path, sql):
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql)]
    finally:
        db.close()


def session_ticks(n=20_000, seed=3):
    return make_ticks(et(2024, 11, 13, 9, 30), n, seed=seed)


def test_one_batch_or_ten_thousand_give_identical_bars_signals_and_trades(build_pipeline, tmp_path):
    ticks = session_ticks()
    results = []
    for batches in (1, 10_000):
        journal = tmp_path / f"j{batches}.db"
        pipeline = build_pipeline([ticks], f"feed.scripted.batches={batches}", journal=journal)
        summary = run(pipeline)
        bars = pipeline.history.bars.copy()
        signals = journal_rows(journal, "SELECT pattern, direction, price, bar_ts_ns FROM signals")
        trades = journal_rows(
            journal,
            "SELECT direction, entry_price, exit_price, entry_ts_ns, exit_ts_ns, net_pnl, "
            "exit_reason FROM trades ORDER BY exit_ts_ns",
        )
        results.append((bars, signals, trades, summary))
    (bars1, signals1, trades1, s1), (bars2, signals2, trades2, s2) = results
    assert len(bars1) > 50
    assert np.array_equal(bars1, bars2)
    assert signals1 == signals2 and len(signals1) > 20
    assert trades1 == trades2 and len(trades1) > 5
    assert (s1.ticks, s1.orders, s1.net_pnl) == (s2.ticks, s2.orders, s2.net_pnl)


def test_every_trade_pnl_is_ticks_times_tick_value_minus_commissions(build_pipeline, tmp_path):
    journal = tmp_path / "j.db"
    summary = run(build_pipeline([session_ticks()], "quantity=1", journal=journal))
    trades = journal_rows(journal, "SELECT * FROM trades")
    assert len(trades) == summary.trades > 5
    total = Decimal("0")
    for t in trades:
        sign = 1 if t["direction"] == "long" else -1
        points = (Decimal(t["exit_price"]) - Decimal(t["entry_price"])) * sign
        expected = points / ES.tick_size * ES.tick_value * t["quantity"]
        expected -= Decimal("2.25") * 2 * t["quantity"]
        assert Decimal(t["net_pnl"]) == expected
        assert Decimal(t["commissions"]) == Decimal("4.50") * t["quantity"]
        total += Decimal(t["net_pnl"])
    assert summary.net_pnl == total


def test_entry_fills_on_the_first_trade_after_the_signal_bar_closed(build_pipeline, tmp_path):
    ticks = session_ticks()
    journal = tmp_path / "j.db"
    run(build_pipeline([ticks], journal=journal))
    entries = journal_rows(
        journal,
        "SELECT f.ts_ns, f.price, o.direction, s.bar_ts_ns FROM fills f "
        "JOIN orders o ON o.bracket_id = f.bracket_id "
        "JOIN signals s ON s.ts_ns = o.ts_ns AND s.direction = o.direction "
        "WHERE f.role = 'entry'",
    )
    assert len(entries) > 5
    ts = ticks["ts_event"]
    for entry in entries:
        bar_close = entry["bar_ts_ns"] + 60 * 10**9
        first_after = int(np.searchsorted(ts, bar_close, side="left"))
        assert entry["ts_ns"] >= ts[first_after] >= bar_close
        if entry["ts_ns"] == ts[first_after]:  # no position was blocking: filled at once
            slip = Decimal("0.25") * (1 if entry["direction"] == "long" else -1)
            traded = Decimal(int(ticks["price"][first_after])) / 10**9
            assert Decimal(entry["price"]) == traded + slip


def test_detectors_never_see_a_bar_that_closed_later_in_the_same_batch(build_pipeline):
    pipeline = build_pipeline([session_ticks()], "feed.scripted.batches=1")
    run(pipeline)
    detector = pipeline.detectors[0]
    assert isinstance(detector, BarDirection)
    assert detector.seen_lengths == list(range(1, len(pipeline.history) + 1))


def test_daily_loss_limit_halts_entries_and_is_journaled(build_pipeline, tmp_path):
    journal = tmp_path / "j.db"
    summary = run(build_pipeline([session_ticks()], "risk.daily_loss_limit=-1", journal=journal))
    trades = journal_rows(journal, "SELECT net_pnl, exit_ts_ns FROM trades ORDER BY exit_ts_ns")
    states = journal_rows(journal, "SELECT state, reason, ts_ns FROM session_state")
    halts = [s for s in states if s["state"] in ("halted", "loss_limit", "profit_target")]
    assert halts and "daily loss limit" in halts[0]["reason"]
    first_loss = next(t for t in trades if Decimal(t["net_pnl"]) < 0)
    assert halts[0]["ts_ns"] == first_loss["exit_ts_ns"]
    entries_after = journal_rows(
        journal, f"SELECT ts_ns FROM fills WHERE role = 'entry' AND ts_ns > {halts[0]['ts_ns']}"
    )
    assert entries_after == []  # halted: nothing new opened for the rest of the day
    rejected = (
        journal_rows(
            journal,
            "SELECT reasons FROM decisions WHERE approved = 0 AND ts_ns > ?",
        )
        if False
        else journal_rows(
            journal,
            f"SELECT reasons FROM decisions WHERE approved = 0 AND ts_ns > {halts[0]['ts_ns']}",
        )
    )
    assert rejected and all("halted: daily loss limit" in r["reasons"] for r in rejected)
    assert summary.rejected >= len(rejected)


def test_auto_flatten_at_1555_exits_open_positions_and_blocks_entries(build_pipeline, tmp_path):
    ticks = make_ticks(et(2024, 11, 13, 15, 40), 12_000, seed=5, step_ms=200)
    journal = tmp_path / "j.db"
    run(
        build_pipeline(
            [ticks],
            "router.approve_all.target_ticks=400",
            "router.approve_all.stop_ticks=400",
            journal=journal,
        )
    )
    flatten_ns = int(et(2024, 11, 13, 15, 55).timestamp() * 1e9)
    fills = journal_rows(journal, "SELECT role, ts_ns FROM fills ORDER BY ts_ns")
    exits = [f for f in fills if f["role"] == "flatten"]
    assert len(exits) == 1
    first_after = ticks["ts_event"][np.searchsorted(ticks["ts_event"], flatten_ns)]
    assert exits[0]["ts_ns"] == first_after
    assert all(f["ts_ns"] <= first_after for f in fills)
    decisions = journal_rows(journal, f"SELECT reasons FROM decisions WHERE ts_ns > {flatten_ns}")
    assert decisions and all("entries closed" in d["reasons"] for d in decisions)


def test_restart_resumes_open_position_and_day_pnl(build_pipeline, tmp_path):
    ticks = session_ticks(n=30_000, seed=11)
    journal = tmp_path / "j.db"
    wide = ("router.approve_all.target_ticks=60", "router.approve_all.stop_ticks=60")
    full = build_pipeline([ticks], *wide, journal=tmp_path / "full.db")
    run(full)
    full_trades = journal_rows(
        tmp_path / "full.db", "SELECT entry_ts_ns, exit_ts_ns, net_pnl FROM trades"
    )
    # cut the session while a position is open, as a crash would
    open_entry = full_trades[len(full_trades) // 2]
    cut = int(np.searchsorted(ticks["ts_event"], open_entry["entry_ts_ns"], side="right")) + 5
    live = "feed.scripted.live=true"  # the second run goes on in time: the journal's account
    first = build_pipeline([ticks[:cut]], *wide, live, journal=journal)
    run(first)
    assert first.session.positions.open_positions(), "the first run must end with a position"
    realized = first.risk.state.realized
    second = build_pipeline([ticks[cut:]], *wide, live, journal=journal)
    asyncio.run(_start_and_check(second, realized))
    trades = journal_rows(journal, "SELECT entry_ts_ns, exit_ts_ns, net_pnl FROM trades")
    assert open_entry in trades


async def _start_and_check(pipeline, realized):
    summary_task = asyncio.create_task(pipeline.run())
    await summary_task
    assert (
        pipeline.risk.state.realized - realized
        == sum((Decimal(0),), Decimal(0)) + pipeline.summary.net_pnl
    )


def test_bad_config_names_the_key_and_writes_no_journal(build_pipeline, tmp_path):
    import pytest

    from tradebot_core.config import ConfigError

    journal = tmp_path / "never.db"
    cases = {
        "broker.paper.slippage_ticks=-1": "broker.paper.slippage_ticks: must be >= 0",
        "feed.plugin=nope": "feed.nope: no feed plugin named 'nope'",
        "risk.daily_loss_limit=50": "risk.daily_loss_limit: must be <= 0",
        "timeframe_s=abc": "timeframe_s: ",
        "detectors.bar_direction.ratio=3": "detectors.bar_direction.ratio: unknown key",
    }
    for override, expected in cases.items():
        with pytest.raises(ConfigError) as error:
            build_pipeline([session_ticks(100)], override, journal=journal)
        assert expected in str(error.value), (override, str(error.value))
    assert not journal.exists()


def test_a_batch_spanning_two_trading_days_rolls_at_the_same_tick_as_small_batches(
    build_pipeline, tmp_path
):
    # 16:30 ET to 19:30 ET: crosses the 18:00 ET roll to the next trading day
    ticks = make_ticks(et(2024, 11, 13, 16, 30), 40_000, seed=21, step_ms=300)
    outcomes = []
    for batches in (1, 5_000):
        journal = tmp_path / f"roll{batches}.db"
        run(
            build_pipeline(
                [ticks],
                f"feed.scripted.batches={batches}",
                "risk.daily_loss_limit=-40",
                journal=journal,
            )
        )
        states = journal_rows(journal, "SELECT ts_ns, state, reason FROM session_state")
        trades = journal_rows(journal, "SELECT entry_ts_ns, exit_ts_ns, net_pnl FROM trades")
        digests = journal_rows(journal, "SELECT ts_ns FROM events WHERE kind = 'daily_digest'")
        outcomes.append((states, trades, digests))
    assert outcomes[0] == outcomes[1]
    states = outcomes[0][0]
    roll_ns = int(et(2024, 11, 13, 18, 0).timestamp() * 1e9)
    new_days = [s for s in states if s["state"] == "new_day"]
    assert [s["reason"] for s in new_days] == ["trading day 2024-11-13", "trading day 2024-11-14"]
    first_after_roll = ticks["ts_event"][np.searchsorted(ticks["ts_event"], roll_ns)]
    assert new_days[1]["ts_ns"] == first_after_roll
    # the loss limit halted day one; day two trades again
    assert any(s["state"] == "loss_limit" and s["ts_ns"] < roll_ns for s in states)
    assert any(t["entry_ts_ns"] > roll_ns for t in outcomes[0][1])
    assert len(outcomes[0][2]) == 2


def test_entries_still_pending_when_the_session_ends_are_cancelled(build_pipeline, tmp_path):
    ticks = session_ticks(n=3_000, seed=4)
    journal = tmp_path / "j.db"
    pipeline = build_pipeline([ticks], "risk.max_position=50", journal=journal)
    run(pipeline)
    assert not pipeline.session.orders.working_entries()  # positions may stay; entries may not
    assert all(b["state"] == "open" for b in pipeline.broker.working_brackets())
    entries = "SELECT status, bracket_id FROM orders WHERE role = 'entry'"
    statuses = {r["status"] for r in journal_rows(journal, entries)}
    assert "cancelled" in statuses
    cancelled = journal_rows(journal, entries + " AND status = 'cancelled'")
    fills = journal_rows(journal, "SELECT bracket_id FROM fills")
    assert not {c["bracket_id"] for c in cancelled} & {f["bracket_id"] for f in fills}


def test_a_symbol_switch_keeps_the_open_positions_tick_value(build_pipeline, tmp_path):
    ticks = session_ticks(n=20_000, seed=6)
    journal = tmp_path / "j.db"
    wide = ("router.approve_all.target_ticks=60", "router.approve_all.stop_ticks=60")
    live = "feed.scripted.live=true"  # the second run goes on in time: the journal's account
    pipeline = build_pipeline([ticks[:10_000]], *wide, "symbol=MES", live, journal=journal)
    run(pipeline)
    positions = pipeline.session.positions.open_positions()
    assert positions, "a position must be open at the switch"
    opened_before = positions[0].lots[0].bracket_id
    second = build_pipeline([ticks[10_000:]], *wide, "symbol=MES", live, journal=journal)
    second.switch_symbol("ES")
    run(second)
    rows = journal_rows(journal, "SELECT bracket_id, symbol, tick_value FROM trades")
    by_id = {r["bracket_id"]: r for r in rows}
    assert by_id[opened_before]["tick_value"] == "1.25"  # opened as MES, closed as MES
    later = [r for r in rows if r["bracket_id"].startswith("R2-")]
    assert later and all((r["symbol"], r["tick_value"]) == ("ES", "12.50") for r in later)


def test_malformed_ticks_are_dropped_counted_and_the_run_goes_on(build_pipeline, tmp_path):
    ticks = session_ticks(n=5_000, seed=9)
    bad = ticks.copy()
    bad["size"][10] = 0
    bad["price"][20] += 1  # off the tick grid
    bad["side"][30] = 7
    bad["ts_event"][40] = bad["ts_event"][39] - 10**9  # back in time
    pipeline = build_pipeline([bad], journal=tmp_path / "j.db")
    summary = run(pipeline)
    assert summary.dropped_ticks == 4
    assert summary.ticks == len(ticks) - 4
    assert pipeline.history.bars["volume"].sum() == ticks["size"].sum() - sum(
        int(ticks["size"][i]) for i in (10, 20, 30, 40)
    )


def test_a_feed_that_delivers_is_connected_even_if_it_never_says_so(build_pipeline):
    """The demo and file feeds send no CONNECTED status: their first batch says it for them
    (health, heartbeat and the watchdog read ``feed_connected``)."""
    pipeline = build_pipeline([session_ticks(2_000)])
    seen: list[bool] = []
    pipeline.bus.subscribe(
        lambda event: seen.append(pipeline.feed_connected), [EventKind.BAR_CLOSED]
    )
    assert not pipeline.feed_connected
    run(pipeline)
    assert seen and all(seen)
