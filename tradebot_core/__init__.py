"""tradebot's kernel, and its public face for plugin authors.

Import what a plugin needs from here (``from tradebot_core import Detector, Signal, hookimpl``)
and, in tests, from :mod:`tradebot_core.testing`; the submodules behind these names may move.
The kernel imports no vendor SDK and no built-in plugin: every concrete component lives under
``plugins/`` (imported as ``tradebot_plugins``) and arrives through the ``tradebot`` entry-point
group, as a third-party plugin does.

Every name but ``hookimpl``, ``PROJECT_NAME``, ``DISTRIBUTION_NAME`` and ``__version__`` is
loaded on first use (PEP 562), from the submodule that defines it: ``import tradebot_core`` costs
pluggy and no more, so ``tradebot --help`` need not import numpy or pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

__version__ = "0.2.0.dev0"

PROJECT_NAME = "tradebot"
"""The entry-point group, the pluggy project name and the command."""
DISTRIBUTION_NAME = "tradebot-orderflow"
"""What ``pip install`` calls it (``tradebot`` on PyPI is another project)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's hook implementations: ``@hookimpl def register_detectors(register): ...``."""

if TYPE_CHECKING:
    from . import calendar, indicators
    from .components import (
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
    from .config import ConfigError, LoadedConfig, load_config
    from .footprint import BAR_DTYPE, FootprintHistory
    from .instruments import Instrument, InstrumentRegistry, root_symbol
    from .ladder import DiagonalSettings, Imbalances, Ladder, exact_ratio, runs, weak_ratio
    from .plugins import PluginManager
    from .run.runner import Pipeline
    from .run.view import RunView
    from .secrets import redact, register_secret
    from .session import RunSummary
    from .types import (
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

_MODULES = {
    "components": (
        "Broker Component Detector Feed NoSettings Notifier PluginContext PluginSettings "
        "RegimeClassifier Router Service"
    ),
    "config": "ConfigError LoadedConfig load_config",
    "footprint": "BAR_DTYPE FootprintHistory",
    "instruments": "Instrument InstrumentRegistry root_symbol",
    "ladder": "DiagonalSettings Imbalances Ladder exact_ratio runs weak_ratio",
    "plugins": "PluginManager",
    "run.runner": "Pipeline",
    "run.view": "RunView",
    "secrets": "redact register_secret",
    "session": "RunSummary",
    "types": (
        "BUY PRICE_SCALE SELL TICK_DTYPE UNKNOWN_SIDE Direction Event EventKind FeedStatus "
        "FeedStatusKind Fill OrderIntent OrderSide OrderUpdate Regime RegimeState RouteDecision "
        "Signal TickBatch Trade empty_ticks"
    ),
}
_LAZY: dict[str, tuple[str, str | None]] = {
    name: (module, name) for module, names in _MODULES.items() for name in names.split()
}
_LAZY.update(calendar=("calendar", None), indicators=("indicators", None))


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


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
