"""The plugin manager: failures named with their reason, duplicate names refused, switches."""

from __future__ import annotations

import asyncio

import pytest
from tradebot_plugins.routers.regime_router import ALL_PATTERNS

from tradebot_core import Pipeline, hookimpl
from tradebot_core.config import ConfigError, load_config
from tradebot_core.plugins import PluginManager, component_plugin


class AnotherImbalance:
    name = "imbalance"

    def __init__(self, settings, context):
        pass

    def on_bar_closed(self, history):
        return []


def test_two_detectors_with_one_name_stop_start_up_naming_both():
    manager = PluginManager()

    class Clash:
        @hookimpl
        def register_detectors(self, register):
            register(AnotherImbalance)

    manager.register(Clash(), "clash")
    with pytest.raises(ConfigError) as error:
        manager.listing()
    message = str(error.value)
    assert "two detectors named 'imbalance'" in message
    assert "tradebot_plugins.detectors.imbalance" in message and "clash" in message


def test_a_plugin_that_fails_to_import_is_named_with_its_reason(monkeypatch):
    import importlib.metadata

    real = importlib.metadata.entry_points

    class Broken:
        name, value, group, dist = "broken_feed", "no_such_module_xyz", "tradebot", None

        def load(self):
            raise ModuleNotFoundError("No module named 'no_such_module_xyz'")

    def entry_points(group=None):
        return [*real(group=group), Broken()]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    manager = PluginManager()
    assert [(f.plugin, f.reason) for f in manager.failures] == [
        ("broken_feed", "ModuleNotFoundError: No module named 'no_such_module_xyz'")
    ]
    with pytest.raises(ConfigError, match="plugin 'broken_feed' failed to load: ModuleNotFound"):
        manager.get("feed", "broken_feed", "feed.broken_feed")
    assert manager.get("broker", "paper", "broker.paper")  # the others still load


def test_plugins_can_be_disabled_or_restricted_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRADEBOT_DISABLE_PLUGINS", "discord,polygon")
    names = {row["name"] for row in PluginManager().listing()}
    assert "discord" not in names and "polygon" not in names and "console" in names
    monkeypatch.delenv("TRADEBOT_DISABLE_PLUGINS")
    monkeypatch.setenv("TRADEBOT_LOAD_PLUGINS", "demo,paper")
    assert {row["name"] for row in PluginManager().listing()} == {"demo", "paper"}


def test_a_bare_class_without_a_recognisable_kind_is_refused():
    class Mystery:
        name = "mystery"

    with pytest.raises(TypeError, match="give it a 'kind' attribute"):
        component_plugin(Mystery)


def test_the_default_demo_session_shows_every_pattern(repo_root):
    loaded = load_config(
        repo_root / "tradebot.yaml", ["feed.speed=max", "notifiers={}", "services={}"]
    )
    summary = asyncio.run(Pipeline(loaded, PluginManager(), journal_path=":memory:").run())
    assert set(summary.patterns) == set(ALL_PATTERNS)
    assert summary.trades > 0
