"""Fixtures for the ``databento_live`` feed tests: real CME trades for the loopback gateway."""

from __future__ import annotations

import sys
from pathlib import Path

import databento
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # live_gateway and dblive_support, beside this

from live_gateway import trades_from_mbo


@pytest.fixture(scope="session")
def mbo_records(shared_data: Path) -> np.ndarray:
    """One real ES session of MBO events (68,792 records, 2,973 trades)."""
    path = shared_data / "databento" / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
    return databento.DBNStore.from_file(path).to_ndarray()


@pytest.fixture(scope="session")
def trade_records(mbo_records: np.ndarray) -> np.ndarray:
    """The session's trades as DBN trade records (what a ``trades`` subscription sends)."""
    return trades_from_mbo(mbo_records)
