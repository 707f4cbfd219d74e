"""Fixtures of the kernel tests; the throwaway plugins live in ``kernel.scripted``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from kernel.scripted import BASE_CONFIG, ScriptedFeed, kernel_manager

from tradebot_core import Pipeline
from tradebot_core.config import load_config


@pytest.fixture
def build_pipeline(tmp_path: Path) -> Callable[..., Pipeline]:
    """``build_pipeline(sessions, *overrides, yaml=BASE_CONFIG, journal=...)``."""

    def build(
        sessions: list[np.ndarray],
        *overrides: str,
        yaml: str = BASE_CONFIG,
        journal: Path | None = None,
    ) -> Pipeline:
        ScriptedFeed.script = sessions
        path = tmp_path / "tradebot.yaml"
        path.write_text(yaml)
        # the scripted sessions trade the configured symbol: no tiers unless the test sets some
        no_tiers = () if "tiers" in yaml else ("account.tiers=[]",)
        loaded = load_config(path, (*no_tiers, *overrides))
        return Pipeline(loaded, kernel_manager(), journal_path=journal or tmp_path / "j.db")

    return build
