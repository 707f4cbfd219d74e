"""Fixtures of the ops tests: a folder with a config, the ``tradebot`` CLI as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ops.ops_support import OpsEnv


@pytest.fixture
def ops_env(tmp_path: Path) -> OpsEnv:
    return OpsEnv(tmp_path)


@pytest.fixture
def tradebot() -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tradebot_core.cli", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
            timeout=120,
        )

    return run
