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
import sys
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from . import DISTRIBUTION_NAME, PROJECT_NAME, hookimpl, hookspecs
from .components import NoSettings, PluginContext, check_component, construct
from .config import ConfigError, LoadedConfig, PluginChoice, format_validation_error
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
        self.malformed: dict[tuple[str, str], list[str]] = {}
        self.registration_problems: list[str] = []
        self._installed: set[str] | None = None
        self._registered_by: dict[type, str] = {}
        self.not_loaded: dict[str, str] = {}  # entry point name -> why (environment switches)
        if load_entrypoints:
            self.load_entrypoints()

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def load_entrypoints(self) -> None:
        only = _env_list("TRADEBOT_LOAD_PLUGINS")
        disabled = _env_list("TRADEBOT_DISABLE_PLUGINS") or set()
        for name in disabled:
            self.pm.set_blocked(name)
        seen: dict[str, str] = {}  # entry point name -> distribution
        clashes: list[str] = []
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist_name = ep.dist.metadata["Name"] if ep.dist else "?"
            if ep.name in seen and seen[ep.name] != dist_name:
                clashes.append(
                    f"two plugins named {ep.name!r}: one from {seen[ep.name]}, one from "
                    f"{dist_name} ({ep.value}); uninstall one, or block it with "
                    "TRADEBOT_DISABLE_PLUGINS"
                )
                continue
            seen[ep.name] = dist_name
            if only is not None and ep.name not in only:
                self.not_loaded[ep.name] = "TRADEBOT_LOAD_PLUGINS does not list it"
                continue
            if ep.name in disabled:
                self.not_loaded[ep.name] = "TRADEBOT_DISABLE_PLUGINS lists it"
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
        if clashes:
            raise ConfigError(clashes)
        unknown = sorted((only or set()) - set(seen)) + sorted(disabled - set(seen))
        for name in unknown:
            log.warning("no plugin named %r is installed (TRADEBOT_*_PLUGINS)", name)
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
        """Call each ``register_*`` hook through pluggy (hookwrappers and tracing see it) and
        file what was registered under its kind and name."""
        found: dict[str, dict[str, ComponentInfo]] = {kind: {} for kind in REGISTER_HOOKS}
        problems: list[str] = []
        self.malformed = {}
        for kind, hook_name in REGISTER_HOOKS.items():
            for cls in self._call_register_hook(hook_name, problems):
                info = self._info(cls, kind)
                complaints = check_component(kind, cls)
                if complaints:
                    name = getattr(cls, "name", None)
                    if isinstance(name, str) and name:
                        self.malformed[(kind, name)] = complaints
                    problems.extend(
                        f"plugin {info.plugin!r}: {complaint}" for complaint in complaints
                    )
                    continue
                earlier = found[kind].get(info.name)
                if earlier is not None and earlier.cls is not cls:
                    raise ConfigError(
                        [
                            f"two {kind}s named {info.name!r}: {earlier.module} "
                            f"(plugin {earlier.plugin!r}, {earlier.source}) and {info.module} "
                            f"(plugin {info.plugin!r}, {info.source}); disable one with "
                            "TRADEBOT_DISABLE_PLUGINS"
                        ]
                    )
                found[kind][info.name] = info
        self.registration_problems = problems
        for problem in problems:
            log.warning("%s", problem)
        return found

    def _call_register_hook(self, hook_name: str, problems: list[str]) -> list[type]:
        """Everything the plugins register through ``hook_name``; a plugin whose hook raises is
        reported by name and left out, and the others still register."""
        excluded: list[object] = []
        while True:
            registered: list[type] = []
            caller = (
                self.pm.subset_hook_caller(hook_name, remove_plugins=excluded)
                if excluded
                else getattr(self.pm.hook, hook_name)
            )

            def register(cls: type, registered: list[type] = registered) -> None:
                # where the call came from: the plugin's hook (for classes defined elsewhere)
                self._registered_by[cls] = sys._getframe(1).f_globals.get("__name__", "")
                registered.append(cls)

            try:
                caller(register=register)
            except Exception as exc:
                culprit = self._plugin_in_traceback(exc)
                if culprit is None or culprit in excluded:
                    problems.append(f"{hook_name} failed: {type(exc).__name__}: {exc}")
                    return registered
                excluded.append(culprit)
                name = self.pm.get_name(culprit) or "?"
                problems.append(f"plugin {name!r}: {hook_name} failed: {exc}")
                continue
            return registered

    def _plugin_in_traceback(self, exc: BaseException) -> object | None:
        """The registered plugin whose code raised ``exc`` (the innermost frame that is one)."""
        modules = self._plugin_modules()
        tb = exc.__traceback__
        culprit = None
        while tb is not None:
            module = tb.tb_frame.f_globals.get("__name__", "")
            if module in modules:
                culprit = modules[module]
            tb = tb.tb_next
        return culprit

    def _plugin_modules(self) -> dict[str, object]:
        """Module name -> the plugin defined there (a module plugin, or an object's class)."""
        modules: dict[str, object] = {}
        for plugin in self.pm.get_plugins():
            if plugin is hookspecs:
                continue
            cls = getattr(plugin, "component_class", None)
            if isinstance(plugin, ModuleType):
                modules[plugin.__name__] = plugin
            elif cls is not None:
                modules.setdefault(cls.__module__, plugin)
            else:
                modules.setdefault(type(plugin).__module__, plugin)
        return modules

    def _plugin_of(self, cls: type) -> str:
        """The plugin a component class came from: the plugin module (or package) that defines
        the class, else the plugin whose hook registered it (a plugin may register classes it
        imports from elsewhere)."""
        for plugin in self.pm.get_plugins():
            if getattr(plugin, "component_class", None) is cls:
                return self.pm.get_name(plugin) or "?"
        modules = self._plugin_modules()
        for module in (cls.__module__, self._registered_by.get(cls, "")):
            best, best_len = "", -1
            for name in modules:
                if (module == name or module.startswith(name + ".")) and len(name) > best_len:
                    best, best_len = name, len(name)
            if best:
                return self.pm.get_name(modules[best]) or "?"
        return "?"

    def _info(self, cls: type, kind: str) -> ComponentInfo:
        plugin_name = self._plugin_of(cls)
        version, source = self._origins.get(plugin_name, ("0", "local"))
        name = getattr(cls, "name", None)
        return ComponentInfo(
            name=name if isinstance(name, str) else "?",
            kind=kind,
            cls=cls,
            plugin=plugin_name,
            module=cls.__module__,
            version=version,
            source=source,
        )

    def commands(self) -> list[dict[str, str]]:
        """The sub-commands plugins add to the CLI, as listing rows."""
        import click

        rows = []
        for impl in self.pm.hook.register_commands.get_hookimpls():
            group = click.Group()
            try:
                impl.function(cli=group)
            except Exception as exc:
                log.warning("plugin %r: register_commands failed: %s", impl.plugin_name, exc)
                continue
            version, source = self._origins.get(impl.plugin_name, ("0", "local"))
            module = getattr(impl.plugin, "__name__", type(impl.plugin).__module__)
            for name in sorted(group.commands):
                rows.append(
                    {
                        "name": name,
                        "kind": "command",
                        "version": version,
                        "module": module,
                        "source": source,
                        "plugin": impl.plugin_name,
                    }
                )
        return rows

    def listing(self) -> list[dict[str, str]]:
        """Every component, for ``tradebot plugins``."""
        rows = [info.as_dict() for kind in self.components.values() for info in kind.values()]
        rows += self.commands()
        return sorted(rows, key=lambda row: (row["kind"], row["name"]))

    def get(self, kind: str, name: str, where: str) -> ComponentInfo:
        """The component ``name`` of ``kind``, or a ConfigError that says what there is."""
        try:
            return self.components[kind][name]
        except KeyError:
            pass
        complaints = self.malformed.get((kind, name))
        if complaints:
            raise ConfigError([f"{where}: {complaint}" for complaint in complaints])
        known = ", ".join(sorted(self.components[kind])) or "none"
        message = f"{where}: no {kind} plugin named {name!r} (installed: {known})"
        if name in self.not_loaded:
            message += f"; it was not loaded: {self.not_loaded[name]}"
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
        stray = self.stray_keys(kind, path, loaded)
        try:
            settings = self.validate(info, raw_settings, path, loaded)
        except ConfigError as exc:
            raise ConfigError(stray + exc.problems) from None
        if stray:
            raise ConfigError(stray)
        try:
            return construct(info.cls, settings, context)
        except ConfigError:
            raise
        except Exception as exc:
            where = loaded.where(path) if loaded else ".".join(path)
            raise ConfigError([f"{where}: {kind} {name!r} could not start: {exc}"]) from exc

    def _installed_names(self) -> set[str]:
        """The entry-point names installed (read once: reading them costs ~40 ms)."""
        if self._installed is None:
            group = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            self._installed = {ep.name for ep in group}
        return self._installed

    def stray_keys(
        self, kind: str, path: tuple[str, ...], loaded: LoadedConfig | None
    ) -> list[str]:
        """Problems for the keys of a choice section (``feed: {plugin: demo, ...}``) that are
        neither its own settings nor the name of a plugin of its kind (a misspelt ``sped:``).
        Only when ``path`` is the chosen plugin's section of the run's config. A plugin that is
        installed but not loaded here (switched off, failed, a manager without entry points)
        may keep its section too."""
        if loaded is None:
            return []
        choice = getattr(loaded.config, kind, None)
        if not isinstance(choice, PluginChoice) or path != (kind, choice.plugin):
            return []
        names = set(self.components[kind]) | {failure.plugin for failure in self.failures}
        names |= self._installed_names()
        known = ", ".join(sorted(self.components[kind])) or "none installed"
        return [
            f"{loaded.where((kind, key))}: unknown key (not a setting, nor a {kind} plugin: "
            f"{known})"
            for key in choice.model_extra or {}
            if key not in names
        ]

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
    namespace = {hook_name: staticmethod(hookimpl(register)), "component_class": cls}
    return type(f"{cls.__name__}Plugin", (), namespace)()


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}
