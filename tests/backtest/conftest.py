"""Backtests over scripted days, run inline so the throwaway plugins are visible to the jobs."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from kernel.scripted import ScriptedFeed, et, kernel_manager, make_ticks
from tradebot_plugins.backtest import jobs

DAYS = [date(2024, 11, d) for d in (11, 12, 13, 14, 15, 18, 19)]


def scripted_days(days=DAYS, n=12_000) -> list[np.ndarray]:
    return [
        make_ticks(et(d.year, d.month, d.day, 9, 30), n, seed=100 + i) for i, d in enumerate(days)
    ]


@pytest.fixture
def scripted_backtest(monkeypatch):
    """Jobs use the kernel test plugins (and the real paper broker)."""
    ScriptedFeed.script = scripted_days()
    manager = kernel_manager()
    monkeypatch.setattr(jobs, "_manager", lambda: manager)
    return DAYS
