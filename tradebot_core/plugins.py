"""The plugin manager: a typed facade over pluggy.

Plugins are loaded from the ``tradebot`` entry-point group (built-ins included) one by one, so a
plugin that fails to import is reported by name with the reason and the others still load. Each
plugin's ``register_*`` hooks run once; the component classes they register are kept by kind and
name. Two components of one kind with one name stop start-up with both sources named.

Environment:

``TRADEBOT_DISABLE_PLUGINS``
    comma-separated entry-point names not to load (``pm.set_blocked``).
``TRADEBOT_LOAD_PLUGINS``
    comma-separated entry-point names: load only these.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from . import DISTRIBUTION_NAME, PROJECT_NAME, hookimpl, hookspecs
from .components import NoSettings, PluginContext
from .config import ConfigError, LoadedConfig, format_validation_error
from .secrets import register_secrets_of

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = PROJECT_NAME

REGISTER_HOOKS: dict[str, str] = {
    "feed": "register_feeds",
    "detector": "register_detectors",
    "regime": "register_regime_classifiers",
    "router": "register_routers",
    "broker": "register_brokers",
    "notifier": "register_notifiers",
    "service": "register_services",
}


@dataclass(frozen=True)
class ComponentInfo:
    """A registered component class and where it came from."""

    name: str
    kind: str
    cls: type
    plugin: str  # the pluggy plugin (entry point) name
    module: str
    version: str
    source: str  # "builtin" or the distribution that provides it

    @property
    def settings_model(self) -> type[BaseModel]:
        return getattr(self.cls, "Settings", None) or NoSettings

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "module": self.module,
            "source": self.source,
            "plugin": self.plugin,
        }


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    reason: str


class PluginManager:
    """Loads plugins, collects their components, builds them from config sections."""

    def __init__(self, load_entrypoints: bool = True) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self._origins: dict[str, tuple[str, str]] = {}  # plugin name -> (version, source)
        self._components: dict[str, dict[str, ComponentInfo]] | None = None
        if load_entrypoints:
            self.load_entrypoints()

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def load_entrypoints(self) -> None:
        only = _env_list("TRADEBOT_LOAD_PLUGINS")
        for name in _env_list("TRADEBOT_DISABLE_PLUGINS") or ():
            self.pm.set_blocked(name)
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if only is not None and ep.name not in only:
                continue
            if self.pm.is_blocked(ep.name) or self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                reason = f"{type(exc).__name__}: {exc}"
                self.failures.append(PluginFailure(ep.name, reason))
                log.debug(
                    "plugin %r failed to load: %s\n%s", ep.name, reason, traceback.format_exc()
                )
                continue
            if isinstance(plugin, type):
                try:
                    plugin = component_plugin(plugin)
                except TypeError as exc:
                    self.failures.append(PluginFailure(ep.name, str(exc)))
                    continue
            dist = ep.dist
            version = dist.version if dist else "0"
            dist_name = dist.metadata["Name"] if dist else "?"
            source = "builtin" if dist_name == DISTRIBUTION_NAME else dist_name
            self.register(plugin, ep.name, version=version, source=source)
        self.pm.check_pending()

    def register(
        self, plugin: ModuleType | object, name: str, version: str = "0", source: str = "local"
    ) -> None:
        """Register a plugin object (a module or any object with hookimpls) by name."""
        self.pm.register(plugin, name=name)
        self._origins[name] = (version, source)
        self._components = None

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._components = None

    # -- components -------------------------------------------------------------------------

    @property
    def components(self) -> dict[str, dict[str, ComponentInfo]]:
        if self._components is None:
            self._components = self._collect()
        return self._components

    def _collect(self) -> dict[str, dict[str, ComponentInfo]]:
        found: dict[str, dict[str, ComponentInfo]] = {kind: {} for kind in REGISTER_HOOKS}
        problems: list[str] = []
        for kind, hook_name in REGISTER_HOOKS.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                plugin_name = self.pm.get_name(impl.plugin) or "?"
                registered: list[type] = []
                try:
                    impl.function(registered.append)
                except Exception as exc:
                    problems.append(f"plugin {plugin_name!r}: {hook_name} failed: {exc}")
                    continue
                for cls in registered:
                    info = self._info(cls, kind, plugin_name)
                    if info is None:
                        problems.append(
                            f"plugin {plugin_name!r}: {hook_name} registered {cls!r}, "
                            "which has no 'name'"
                        )
                        continue
                    earlier = found[kind].get(info.name)
                    if earlier is not None and earlier.cls is not cls:
                        problems.append(
                            f"two {kind}s named {info.name!r}: {earlier.module} "
                            f"(plugin {earlier.plugin!r}) and {info.module} "
                            f"(plugin {info.plugin!r}); disable one with "
                            "TRADEBOT_DISABLE_PLUGINS"
                        )
                        continue
                    found[kind][info.name] = info
        if problems:
            raise ConfigError(problems)
        return found

    def _info(self, cls: type, kind: str, plugin_name: str) -> ComponentInfo | None:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            return None
        version, source = self._origins.get(plugin_name, ("0", "local"))
        return ComponentInfo(
            name=name,
            kind=kind,
            cls=cls,
            plugin=plugin_name,
            module=cls.__module__,
            version=version,
            source=source,
        )

    def listing(self) -> list[dict[str, str]]:
        """Every component, for ``tradebot plugins``."""
        rows = [info.as_dict() for kind in self.components.values() for info in kind.values()]
        return sorted(rows, key=lambda row: (row["kind"], row["name"]))

    def get(self, kind: str, name: str, where: str) -> ComponentInfo:
        """The component ``name`` of ``kind``, or a ConfigError that says what there is."""
        try:
            return self.components[kind][name]
        except KeyError:
            pass
        known = ", ".join(sorted(self.components[kind])) or "none"
        message = f"{where}: no {kind} plugin named {name!r} (installed: {known})"
        same = [f for f in self.failures if f.plugin == name]
        if same:
            message += f"; plugin {name!r} failed to load: {same[0].reason}"
        elif self.failures:
            message += "; plugins that failed to load: " + ", ".join(
                f.plugin for f in self.failures
            )
        raise ConfigError([message])

    def build(
        self,
        kind: str,
        name: str,
        raw_settings: dict[str, Any] | None,
        path: tuple[str, ...],
        context: PluginContext,
        loaded: LoadedConfig | None = None,
    ) -> Any:
        """Validate a section against the component's Settings and construct the component."""
        info = self.get(kind, name, loaded.where(path) if loaded else ".".join(path))
        settings = self.validate(info, raw_settings, path, loaded)
        try:
            return info.cls(settings, context)
        except ConfigError:
            raise
        except Exception as exc:
            where = loaded.where(path) if loaded else ".".join(path)
            raise ConfigError([f"{where}: {kind} {name!r} could not start: {exc}"]) from exc

    def validate(
        self,
        info: ComponentInfo,
        raw_settings: dict[str, Any] | None,
        path: tuple[str, ...],
        loaded: LoadedConfig | None = None,
    ) -> BaseModel:
        problems = loaded.check_env(path) if loaded else []
        if problems:
            raise ConfigError(problems)
        try:
            settings = info.settings_model.model_validate(raw_settings or {})
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, loaded, path)) from None
        register_secrets_of(settings)
        return settings


_KIND_METHODS = {
    "feed": "stream",
    "detector": "on_bar_closed",
    "regime": "classify",
    "router": "route",
    "broker": "submit_bracket",
    "notifier": "notify",
    "service": "start",
}


def component_plugin(cls: type) -> object:
    """Wrap a bare component class (an entry point may name one) in a plugin that registers it.

    The kind is the class's ``kind`` attribute, or follows from its methods: ``on_bar_closed``
    makes a detector, ``stream`` a feed, ``classify`` a regime classifier, and so on.
    """
    kind = getattr(cls, "kind", None)
    if kind is None:
        kinds = [k for k, method in _KIND_METHODS.items() if callable(getattr(cls, method, None))]
        if len(kinds) != 1:
            raise TypeError(
                f"{cls.__module__}.{cls.__qualname__}: cannot tell what kind of component it is; "
                f"give it a 'kind' attribute ({', '.join(REGISTER_HOOKS)})"
            )
        kind = kinds[0]
    if kind not in REGISTER_HOOKS:
        raise TypeError(f"{cls.__qualname__}: unknown kind {kind!r}")
    hook_name = REGISTER_HOOKS[kind]

    def register(register: Any) -> None:
        register(cls)

    register.__name__ = hook_name
    namespace = {hook_name: staticmethod(hookimpl(register))}
    return type(f"{cls.__name__}Plugin", (), namespace)()


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}
