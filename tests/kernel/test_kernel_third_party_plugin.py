"""A separate distribution that only declares a ``tradebot`` entry point to a detector class is
listed by ``tradebot plugins`` and trades through the pipeline, with no change to the kernel."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from kernel.scripted import KernelTestPlugin, ScriptedFeed, et, make_ticks

from tradebot_core import Pipeline
from tradebot_core.config import load_config
from tradebot_core.plugins import PluginManager

DETECTOR = '''
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from tradebot_core.types import Direction, Signal


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_volume: int = Field(default=1, ge=1)


class BigBar:
    """Fires on every bar whose volume reaches min_volume, in the direction of its delta."""

    name = "big_bar"
    Settings = Settings

    def __init__(self, settings, context):
        self.settings = settings

    def on_bar_closed(self, history):
        bar = history.bars[-1]
        if bar["volume"] < self.settings.min_volume or bar["delta"] == 0:
            return []
        direction = Direction.LONG if bar["delta"] > 0 else Direction.SHORT
        return [Signal(pattern="big_bar", direction=direction,
                       price=history.price(int(bar["close"])), bar_ts_ns=int(bar["ts_open"]),
                       strength=0.5, reason=f"volume {bar['volume']}", detector=self.name)]
'''

PYPROJECT = """
[build-system]
requires = ["setuptools>=70.1"]
build-backend = "setuptools.build_meta"

[project]
name = "tradebot-big-bar"
version = "0.3.1"

[project.entry-points.tradebot]
big_bar = "tradebot_big_bar:BigBar"
"""


@pytest.fixture(scope="module")
def installed_package(tmp_path_factory):
    source = tmp_path_factory.mktemp("src")
    (source / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (source / "tradebot_big_bar.py").write_text(DETECTOR)
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return target


def test_tradebot_plugins_lists_the_third_party_detector(installed_package):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed_package), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-m", "tradebot_core.cli", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rows = json.loads(result.stdout)
    big_bar = [row for row in rows if row["name"] == "big_bar"]
    assert big_bar == [
        {
            "name": "big_bar",
            "kind": "detector",
            "version": "0.3.1",
            "module": "tradebot_big_bar",
            "source": "tradebot-big-bar",
            "plugin": "big_bar",
        }
    ]
    paper = next(row for row in rows if row["name"] == "paper")
    assert (paper["kind"], paper["source"]) == ("broker", "builtin")


def test_its_signals_reach_the_journal(installed_package, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(installed_package))
    monkeypatch.setenv("TRADEBOT_LOAD_PLUGINS", "big_bar,paper")
    manager = PluginManager()
    manager.register(KernelTestPlugin(), "kernel-test")
    assert manager.get("detector", "big_bar", "test").source == "tradebot-big-bar"
    config = tmp_path / "tradebot.yaml"
    config.write_text(
        "symbol: ES\ntimeframe_s: 60\nfeed: {plugin: scripted}\n"
        "detectors: {big_bar: {min_volume: 10}}\nregime: {plugin: fixed}\n"
        "router: {plugin: approve_all}\n"
    )
    ScriptedFeed.script = [make_ticks(et(2024, 11, 13, 9, 30), 5_000, seed=2)]
    journal = tmp_path / "j.db"
    pipeline = Pipeline(load_config(config), manager, journal_path=journal)
    summary = asyncio.run(pipeline.run())
    db = sqlite3.connect(journal)
    signals = db.execute("SELECT detector, pattern FROM signals").fetchall()
    assert signals and set(signals) == {("big_bar", "big_bar")}
    assert summary.signals == len(signals)
    assert summary.orders > 0
