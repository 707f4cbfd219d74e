"""Statistics and Monte Carlo, checked against hand-worked numbers."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from tradebot_plugins.backtest import stats, stress


def trades(*nets):
    return [{"net_pnl": str(n)} for n in nets]


def test_profit_factor_win_rate_and_net():
    s = stats.trade_stats(trades("100.00", "-50.00", "25.50", "-25.50", "0"))
    assert s["trades"] == 5 and s["wins"] == 2
    assert s["win_rate"] == 0.4
    assert s["net_pnl"] == "50.00"
    assert s["profit_factor"] == "1.66"  # 125.50 / 75.50 = 1.662
    assert stats.trade_stats(trades("10"))["profit_factor"] is None


def test_drawdown_and_losing_streak():
    nets = [Decimal(x) for x in ("100", "-30", "-50", "40", "-90", "200")]
    worst, curve = stats.drawdown(Decimal("1000"), nets)
    assert curve == [Decimal(x) for x in ("1100", "1070", "1020", "1060", "970", "1170")]
    assert worst == Decimal("130")  # 1100 -> 970
    assert stats.max_consecutive_losses(nets) == 2


def test_monte_carlo_is_seeded_and_exact():
    nets = [Decimal(x) for x in ("12.50", "-25.00", "37.50", "-6.25", "50.00", "-12.50")]
    first = stress.monte_carlo(nets, Decimal("2500"), runs=200, seed=3)
    again = stress.monte_carlo(nets, Decimal("2500"), runs=200, seed=3)
    other = stress.monte_carlo(nets, Decimal("2500"), runs=200, seed=4)
    assert first == again and first != other
    # a reshuffle never changes the final balance, only the path
    final = first["reshuffled"]["final_balance"]
    assert set(final.values()) == {"2556.25"}
    # drawdowns: recompute the same paths independently
    rng = np.random.default_rng(3)
    cents = np.array([1250, -2500, 3750, -625, 5000, -1250])
    worst = []
    for _ in range(200):
        balance = peak = 250_000
        dd = 0
        for c in rng.permutation(cents):
            balance += int(c)
            peak = max(peak, balance)
            dd = max(dd, peak - balance)
        worst.append(dd)
    expected = sorted(worst)[int(np.floor(0.5 * (200 - 1)))]
    assert first["reshuffled"]["max_drawdown"]["p50"] == str(Decimal(expected) / 100)


def test_monte_carlo_refuses_fractions_of_a_cent():
    import pytest

    with pytest.raises(ValueError, match="fractions of a cent"):
        stress.monte_carlo([Decimal("0.005")], Decimal("100"), runs=10)
