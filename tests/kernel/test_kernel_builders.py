"""What a plugin author relies on: registration through pluggy, base classes with defaults,
malformed plugins caught at registration, one name per plugin, names that cannot clash, and the
live-money guard by capability rather than by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

from tradebot_core import (
    Broker,
    ConfigError,
    Detector,
    EventKind,
    Notifier,
    hookimpl,
)
from tradebot_core.testing import run_pipeline, trades

BUILTINS = {ep.name for ep in entry_points(group="tradebot")} - {"backtest"}


def cli(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tradebot_core.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def install(tmp_path, name: str, module: str, code: str, entry_points_toml: str) -> str:
    """pip-install a throwaway distribution into a folder; returns the folder for PYTHONPATH."""
    source = tmp_path / f"src-{name}"
    source.mkdir()
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=70.1"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{name}"
            version = "1.0"

            [project.entry-points.tradebot]
            """
        )
        + textwrap.dedent(entry_points_toml)
    )
    (source / f"{module}.py").write_text(textwrap.dedent(code))
    target = tmp_path / f"site-{name}"
    subprocess.run(
        [
            sys.executable,
            *("-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"),
            *("--target", str(target), str(source)),
        ],
        check=True,
        capture_output=True,
    )
    return str(target)


def test_builtins_load_from_a_folder_that_has_its_own_plugins_package(tmp_path):
    for folder in ("plugins", "plugins/feeds", "plugins/detectors"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("MINE = True\n")
    result = cli("plugins", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {row["plugin"] for row in rows} >= BUILTINS
    assert {("command", "backtest"), ("command", "stress")} <= {
        (row["kind"], row["name"]) for row in rows
    }
    assert "failed to load" not in result.stderr


def test_one_name_per_plugin_entry_points_match_component_names():
    from tradebot_core import PluginManager

    manager = PluginManager()
    names = {
        (info.kind, info.name): info.plugin
        for kind in manager.components.values()
        for info in kind.values()
    }
    assert names[("regime", "adx")] == "adx"
    assert names[("router", "regime")] == "regime"
    assert all(name == plugin for (_, name), plugin in names.items())


def test_disable_by_the_name_the_config_uses(monkeypatch):
    from tradebot_core import PluginManager

    monkeypatch.setenv("TRADEBOT_DISABLE_PLUGINS", "adx")
    manager = PluginManager()
    assert "adx" not in manager.components["regime"]
    with pytest.raises(ConfigError, match="TRADEBOT_DISABLE_PLUGINS lists it"):
        manager.get("regime", "adx", "regime.plugin")


def test_load_only_names_what_was_left_out(monkeypatch):
    from tradebot_core import PluginManager

    monkeypatch.setenv("TRADEBOT_LOAD_PLUGINS", "demo,paper,imbalance")
    manager = PluginManager()
    with pytest.raises(ConfigError, match="TRADEBOT_LOAD_PLUGINS does not list it"):
        manager.get("notifier", "console", "notifiers.console")


def test_a_hookwrapper_around_register_detectors_sees_the_call():
    from tradebot_core import PluginManager

    seen: list[str] = []

    class Extra(Detector):
        name = "extra"

        def on_bar_closed(self, history):
            return []

    class Wrapper:
        @hookimpl(wrapper=True)
        def register_detectors(self, register):
            seen.append("before")
            register(Extra)  # a wrapper may register too: it gets the same register function
            result = yield
            seen.append("after")
            return result

    manager = PluginManager()
    manager.register(Wrapper(), "wrapper")
    assert "extra" in manager.components["detector"]
    assert "imbalance" in manager.components["detector"]
    assert seen == ["before", "after"]
    assert manager.components["detector"]["extra"].plugin == "wrapper"


def test_pluggy_tracing_sees_registration():
    from tradebot_core import PluginManager

    calls: list[str] = []
    manager = PluginManager()
    undo = manager.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: calls.append(name), lambda *args: None
    )
    try:
        assert manager.components["feed"]
    finally:
        undo()
    assert {"register_feeds", "register_detectors", "register_brokers"} <= set(calls)


def test_a_plugin_whose_hook_raises_is_named_and_the_others_still_register(caplog):
    from tradebot_core import PluginManager

    class Broken:
        @hookimpl
        def register_detectors(self, register):
            raise RuntimeError("boom")

    manager = PluginManager()
    manager.register(Broken(), "broken")
    assert "imbalance" in manager.components["detector"]
    assert any("'broken'" in p and "boom" in p for p in manager.registration_problems)


class Bare:
    """A notifier with only a name and notify: no base class, no settings, no start/stop."""

    name = "bare"
    received: list = []

    def notify(self, event):
        Bare.received.append(event.kind)


class BarePlugin:
    @hookimpl
    def register_notifiers(self, register):
        register(Bare)


def test_a_notifier_with_only_name_and_notify_runs():
    Bare.received = []
    ticks = trades([(i, "5000.00", 1, "buy") for i in range(130)])
    result = run_pipeline(
        ticks, plugins=[BarePlugin()], config={"notifiers": {"bare": {}}}, builtins=False
    )
    assert result.summary["exit"] == "completed"
    assert EventKind.SYSTEM_START in Bare.received
    assert EventKind.SYSTEM_STOP in Bare.received


def test_a_notifier_subclass_needs_only_notify():
    class Quiet(Notifier):
        name = "quiet"

        def notify(self, event):
            pass

    import asyncio

    notifier = Quiet()
    asyncio.run(notifier.start())
    asyncio.run(notifier.stop())
    assert notifier.kinds is None


MALFORMED = """
from tradebot_core import Detector, hookimpl

class NoBarClosed(Detector):
    name = "no_bar_closed"   # forgot on_bar_closed

class NoBarClosedEither:
    name = "no_bar_closed_either"

@hookimpl
def register_detectors(register):
    register(NoBarClosed)
    register(NoBarClosedEither)
"""


def test_a_detector_without_on_bar_closed_fails_validate_with_its_name(tmp_path):
    site = install(
        tmp_path,
        "tradebot-malformed",
        "tradebot_malformed",
        MALFORMED,
        'malformed = "tradebot_malformed"\n',
    )
    config = tmp_path / "t.yaml"
    for name in ("no_bar_closed", "no_bar_closed_either"):
        config.write_text(f"feed: {{plugin: demo}}\ndetectors: {{{name}: {{}}}}\n")
        result = cli("validate", str(config), env={"PYTHONPATH": site})
        assert result.returncode != 0
        assert f"detector '{name}'" in result.stderr
        assert "has no on_bar_closed()" in result.stderr
    listing = cli("plugins", env={"PYTHONPATH": site})
    assert listing.returncode == 0
    assert "no_bar_closed" in listing.stderr  # reported, and the listing still works


CLASH = """
from tradebot_core import Broker, hookimpl

class NotPaper(Broker):
    name = "not_paper"
    def submit_bracket(self, intent, bracket_id, ts_ns): ...
    def flatten(self, reason, ts_ns): ...

@hookimpl
def register_brokers(register):
    register(NotPaper)
"""


def test_an_entry_point_named_like_a_builtin_stops_start_up_naming_both(tmp_path):
    site = install(
        tmp_path, "tradebot-impostor", "tradebot_impostor", CLASH, 'paper = "tradebot_impostor"\n'
    )
    result = cli(
        "validate",
        "tradebot.yaml",
        env={"PYTHONPATH": site},
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert result.returncode != 0
    assert "two plugins named 'paper'" in result.stderr
    assert "tradebot-orderflow" in result.stderr and "tradebot-impostor" in result.stderr


def _guarded_config(tmp_path, broker: str, live: bool = False):
    from tradebot_core import load_config

    path = tmp_path / "t.yaml"
    path.write_text(
        "symbol: ES\nfeed: {plugin: scripted}\nregime: {plugin: fixed}\n"
        f"router: {{plugin: approve_all}}\nbroker: {{plugin: {broker}}}\n"
        f"live: {{enabled: {str(live).lower()}}}\n"
        f"journal: {{path: {tmp_path / 'j.db'}}}\n"
    )
    return load_config(path)


def _manager_with(broker_cls):
    from tradebot_core import PluginManager
    from tradebot_core.testing import _TestingPlugin

    class Plugin:
        @hookimpl
        def register_brokers(self, register):
            register(broker_cls)

    manager = PluginManager(load_entrypoints=False)
    manager.register(_TestingPlugin(), "testing")
    manager.register(Plugin(), "third-party")
    return manager


class RealMoneyNamedPaper(Broker):
    name = "paper"  # the name of the built-in simulator, but it says it trades real money

    def submit_bracket(self, intent, bracket_id, ts_ns): ...

    def flatten(self, reason, ts_ns): ...


class SilentBroker:  # says nothing about real money: treated as live
    name = "silent"

    def submit_bracket(self, intent, bracket_id, ts_ns): ...

    def flatten(self, reason, ts_ns): ...


class Simulator(Broker):
    name = "simulator"
    real_money = False

    def submit_bracket(self, intent, bracket_id, ts_ns): ...

    def flatten(self, reason, ts_ns): ...


@pytest.mark.parametrize("broker_cls", [RealMoneyNamedPaper, SilentBroker])
def test_real_money_needs_both_switches_whatever_the_name(tmp_path, monkeypatch, broker_cls):
    from tradebot_core import Pipeline

    monkeypatch.delenv("TRADEBOT_LIVE", raising=False)
    manager = _manager_with(broker_cls)
    with pytest.raises(ConfigError, match="trades real money"):
        Pipeline(_guarded_config(tmp_path, broker_cls.name), manager)
    with pytest.raises(ConfigError, match="trades real money"):  # one switch is not enough
        Pipeline(_guarded_config(tmp_path, broker_cls.name, live=True), manager)
    monkeypatch.setenv("TRADEBOT_LIVE", "1")
    Pipeline(_guarded_config(tmp_path, broker_cls.name, live=True), manager)


def test_a_simulator_that_says_so_runs_without_the_switches(tmp_path, monkeypatch):
    from tradebot_core import Pipeline

    monkeypatch.delenv("TRADEBOT_LIVE", raising=False)
    pipeline = Pipeline(_guarded_config(tmp_path, "simulator"), _manager_with(Simulator))
    assert pipeline.broker.name == "simulator"


def test_the_public_face_is_typed_and_complete():
    import pathlib

    import tradebot_core

    assert (pathlib.Path(tradebot_core.__file__).parent / "py.typed").is_file()
    for name in tradebot_core.__all__:
        assert getattr(tradebot_core, name) is not None, name
    assert tradebot_core.hookimpl.project_name == tradebot_core.PROJECT_NAME == "tradebot"


def test_the_version_is_the_distributions():
    """``tradebot --version``, the status page and the start message say what pip installed."""
    from importlib.metadata import version

    import tradebot_core

    assert tradebot_core.__version__ == version(tradebot_core.DISTRIBUTION_NAME)
