"""A day computed from one starting balance is reused for another only if the tiers would have
followed the same path: with hysteresis the path matters, not just where it ends."""

from __future__ import annotations

from decimal import Decimal

from tradebot_plugins.backtest.engine import _Reuse

from tradebot_core import load_config


def reuse(tmp_path) -> _Reuse:
    config = tmp_path / "t.yaml"
    config.write_text("symbol: MES\naccount: {starting_balance: 2500}\n")  # the default ladder
    return _Reuse(load_config(config))


def day(start: str, *pnls: str) -> dict:
    return {
        "start_balance": start,
        "rejections": [],
        "trades": [{"net_pnl": p} for p in pnls],
    }


def test_a_loss_that_crosses_the_demotion_line_from_one_start_only_is_not_reused(tmp_path):
    r = reuse(tmp_path)
    # both start in Tier 2 (from $3,500); -870 leaves 2,730 (below the 2,750 demotion line,
    # demoted) from 3,600, but 2,780 (kept) from 3,650: plain thresholds would call them equal
    assert not r.reusable(day("3600", "-870"), Decimal("3650"))


def test_the_same_path_is_reused(tmp_path):
    r = reuse(tmp_path)
    assert r.reusable(day("3600", "100", "-50"), Decimal("3620"))
    assert r.reusable(day("3600", "-870"), Decimal("3600"))
