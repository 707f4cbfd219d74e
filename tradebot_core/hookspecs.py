"""The hooks a tradebot plugin can implement.

A plugin is a module (or object) with functions marked ``@tradebot_core.hookimpl``, made known
through an entry point in the ``tradebot`` group::

    [project.entry-points.tradebot]
    my_detector = "my_package.my_detector"

Registration, not per-tick calls
--------------------------------
The ``register_*`` hooks run once, at start-up. Each hands the plugin a ``register`` function; the
plugin calls it with a component *class* (see :mod:`tradebot_core.components` for what each kind of
class must provide). The pipeline then builds the components the YAML config selects and calls them
directly, per tick batch or per closed bar. A pluggy call costs 1-2 us; a session has 750,000
trades; so nothing in this module is ever called per tick.

Example, a whole detector plugin::

    from tradebot_core import hookimpl

    class BigBar:
        name = "big_bar"
        Settings = BigBarSettings        # a pydantic model: this plugin's YAML section

        def __init__(self, settings, context): ...
        def on_bar_closed(self, history): return []

    @hookimpl
    def register_detectors(register):
        register(BigBar)

The lifecycle hooks (``tradebot_startup``, ``tradebot_event``, ``tradebot_shutdown``) fan out
through pluggy to every plugin; they run a few times per session or per event, never per tick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from . import PROJECT_NAME

if TYPE_CHECKING:
    import click

    from .run.runner import Pipeline
    from .types import Event

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

Register = Callable[[type], None]


@hookspec
def register_feeds(register: Register) -> None:
    """Register feed classes: where tick batches come from.

    Called once at start-up. Call ``register(FeedClass)`` for each feed the plugin provides.
    A feed class has ``name``, ``Settings`` and an async ``stream()`` that yields
    :class:`~tradebot_core.types.TickBatch` (and :class:`~tradebot_core.types.FeedStatus`) objects.
    The config selects one with ``feed: {plugin: NAME}``.
    """


@hookspec
def register_detectors(register: Register) -> None:
    """Register detector classes: patterns found in closed footprint bars.

    Called once at start-up. A detector's ``on_bar_closed(history)`` is called once per closed bar
    and returns a list of :class:`~tradebot_core.types.Signal`. Every detector named under
    ``detectors:`` in the config runs.
    """


@hookspec
def register_regime_classifiers(register: Register) -> None:
    """Register regime classifier classes: what kind of market this is.

    Called once at start-up. ``classify(history)`` is called once per closed bar and returns a
    :class:`~tradebot_core.types.RegimeState`. The config selects one with
    ``regime: {plugin: NAME}``.
    """


@hookspec
def register_routers(register: Register) -> None:
    """Register router classes: which signals trade, in which direction and at what size.

    Called once at start-up. ``route(signal, regime)`` is called once per signal and returns a
    :class:`~tradebot_core.types.RouteDecision`. The config selects one with
    ``router: {plugin: NAME}``.
    """


@hookspec
def register_brokers(register: Register) -> None:
    """Register broker classes: where order intents become fills.

    Called once at start-up. The pipeline calls ``submit_bracket`` per approved intent and
    ``on_ticks`` per tick batch (the paper broker fills against those ticks; a live broker may
    ignore them and report fills from its venue). The config selects one with
    ``broker: {plugin: NAME}``.
    """


@hookspec
def register_notifiers(register: Register) -> None:
    """Register notifier classes: where events are told to people (console, Discord...).

    Called once at start-up. ``notify(event)`` is called for each event the notifier's
    ``kinds`` lists; it must not block (queue the work and send it in the background).
    Every notifier named under ``notifiers:`` in the config runs.
    """


@hookspec
def register_services(register: Register) -> None:
    """Register service classes: long-running companions of a run (status page, watchdog).

    Called once at start-up. A service gets ``async start(pipeline)`` before the feed starts and
    ``async stop()`` after it ends. Every service named under ``services:`` in the config runs.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``tradebot`` command line.

    Called when the CLI is asked for a command it does not know otherwise, and by ``tradebot
    plugins``; ``tradebot --help`` does not load plugins, so a command it should list is better
    declared in the ``tradebot.commands`` entry-point group (see docs/plugins.md). Use
    ``@cli.command()`` as in any click group.
    """


@hookspec
def tradebot_startup(pipeline: Pipeline) -> None:
    """The pipeline is built and about to start its feed. Called once per run."""


@hookspec
def tradebot_event(event: Event) -> None:
    """An event left the pipeline (signal, fill, trade, state change...).

    For plugins that observe without being a notifier. Not called for ``bar_closed``.
    """


@hookspec
def tradebot_shutdown(pipeline: Pipeline, summary: dict[str, Any]) -> None:
    """The run ended (feed exhausted, stopped or failed). Called once per run."""
