"""tradebot's kernel, and its public face for plugin authors.

Import what a plugin needs from here (``from tradebot_core import Detector, Signal, hookimpl``)
and, in tests, from :mod:`tradebot_core.testing`; the submodules behind these names may move.
The kernel imports no vendor SDK and no built-in plugin: every concrete component lives under
``plugins/`` (imported as ``tradebot_plugins``) and arrives through the ``tradebot`` entry-point
group, as a third-party plugin does.

The run machinery (``Pipeline``, ``PluginManager``, ``load_config``) and the ``calendar`` and
``indicators`` modules are loaded on first use, so ``import tradebot_core`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "tradebot"
"""The entry-point group, the pluggy project name and the command."""
DISTRIBUTION_NAME = "tradebot-orderflow"
"""What ``pip install`` calls it (``tradebot`` on PyPI is another project)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's hook implementations: ``@hookimpl def register_detectors(register): ...``."""

from .components import (  # noqa: E402  (hookimpl first: the modules below import it)
    Broker,
    Component,
    Detector,
    Feed,
    NoSettings,
    Notifier,
    PluginContext,
    PluginSettings,
    RegimeClassifier,
    Router,
    Service,
)
from .config import ConfigError  # noqa: E402
from .footprint import BAR_DTYPE, FootprintHistory  # noqa: E402
from .instruments import Instrument, InstrumentRegistry, root_symbol  # noqa: E402
from .ladder import DiagonalSettings, Imbalances, Ladder, exact_ratio, runs, weak_ratio  # noqa: E402
from .secrets import redact, register_secret  # noqa: E402
from .types import (  # noqa: E402
    BUY,
    PRICE_SCALE,
    SELL,
    TICK_DTYPE,
    UNKNOWN_SIDE,
    Direction,
    Event,
    EventKind,
    FeedStatus,
    FeedStatusKind,
    Fill,
    OrderIntent,
    OrderSide,
    OrderUpdate,
    Regime,
    RegimeState,
    RouteDecision,
    Signal,
    TickBatch,
    Trade,
    empty_ticks,
)

if TYPE_CHECKING:
    from . import calendar, indicators
    from .config import LoadedConfig, load_config
    from .plugins import PluginManager
    from .run.runner import Pipeline
    from .run.view import RunView
    from .session import RunSummary

_LAZY = {
    "Pipeline": ("run.runner", "Pipeline"),
    "RunSummary": ("session", "RunSummary"),
    "RunView": ("run.view", "RunView"),
    "PluginManager": ("plugins", "PluginManager"),
    "LoadedConfig": ("config", "LoadedConfig"),
    "load_config": ("config", "load_config"),
    "calendar": ("calendar", None),
    "indicators": ("indicators", None),
}


def __getattr__(name: str) -> Any:
    """Load the heavier public names on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'tradebot_core' has no attribute {name!r}")
    import importlib

    module_name, attribute = _LAZY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


__all__ = [
    "BAR_DTYPE",
    "BUY",
    "DISTRIBUTION_NAME",
    "PRICE_SCALE",
    "PROJECT_NAME",
    "SELL",
    "TICK_DTYPE",
    "UNKNOWN_SIDE",
    "Broker",
    "Component",
    "ConfigError",
    "Detector",
    "DiagonalSettings",
    "Direction",
    "Event",
    "EventKind",
    "Feed",
    "FeedStatus",
    "FeedStatusKind",
    "Fill",
    "FootprintHistory",
    "Imbalances",
    "Instrument",
    "InstrumentRegistry",
    "Ladder",
    "LoadedConfig",
    "NoSettings",
    "Notifier",
    "OrderIntent",
    "OrderSide",
    "OrderUpdate",
    "Pipeline",
    "PluginContext",
    "PluginManager",
    "PluginSettings",
    "Regime",
    "RegimeClassifier",
    "RegimeState",
    "RouteDecision",
    "Router",
    "RunSummary",
    "RunView",
    "Service",
    "Signal",
    "TickBatch",
    "Trade",
    "__version__",
    "calendar",
    "empty_ticks",
    "exact_ratio",
    "hookimpl",
    "indicators",
    "load_config",
    "redact",
    "register_secret",
    "root_symbol",
    "runs",
    "weak_ratio",
]
