"""The YAML config: loading, ``${ENV}`` interpolation, ``--set`` overrides and validation.

The kernel validates its own keys here; each plugin's section is validated later against the
plugin's own ``Settings`` model by :mod:`tradebot_core.plugins`. Every error names the key path and,
when the key is in the file, the line: ``tradebot.yaml:14: risk.max_position: must be >= 1``.

Layout::

    symbol: MES
    timeframe_s: 300
    feed:      {plugin: demo, speed: max, demo: {seed: 7}}   # settings of each feed by name
    detectors: {imbalance: {ratio: 3.0}, stacked_imbalance: {}}
    regime:    {plugin: adx}
    router:    {plugin: regime}
    broker:    {plugin: paper, paper: {slippage_ticks: 1}}
    notifiers: {console: {}}
    services:  {status_page: {port: 8000}}
    risk:      {daily_profit_target: 500, daily_loss_limit: -300, max_position: 2}
    journal:   {path: data/tradebot.db}
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from .instruments import Instrument, InstrumentRegistry


class ConfigError(Exception):
    """A config problem a human can fix. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self) -> tuple[type, tuple[list[str]]]:  # survive a trip to a worker process
        return (type(self), (self.problems,))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PluginChoice(BaseModel):
    """``{plugin: NAME, NAME: {settings...}, OTHER: {...}}``: one plugin chosen, settings by name.

    Settings of plugins that are not chosen may stay in the file (so switching is one line); they
    are not validated until chosen.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    plugin: str

    def settings_for(self, name: str) -> dict[str, Any]:
        raw = (self.model_extra or {}).get(name)
        return dict(raw or {})


class FeedChoice(PluginChoice):
    speed: float | Literal["max"] = "max"
    """Replay pace: 1 = real time, 100 = 100x, ``max`` = as fast as the pipeline goes."""

    @field_validator("speed", mode="before")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        """One message for anything else (not pydantic's one per member of the union)."""
        if value == "max":
            return value
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not number > 0:
            raise ValueError("must be a number > 0 or 'max'")
        return number


class InstrumentSpec(_Strict):
    tick_size: Decimal = Field(gt=0)
    tick_value: Decimal = Field(gt=0)
    exchange: str = "CME"
    margin: Decimal = Field(default=Decimal("0"), ge=0)
    description: str = ""


class RiskSettings(_Strict):
    daily_profit_target: Decimal = Field(default=Decimal("500"), ge=0)
    """Realized P&L at which the day stops: no new entries, open positions flattened."""
    daily_loss_limit: Decimal = Field(default=Decimal("-300"), le=0)
    """Realized P&L (a negative number) at which the day stops."""
    max_position: int = Field(default=2, ge=1)
    """Contracts at most in the net position, counting entries not filled yet."""
    opposite_signal: Literal["reject", "reverse"] = "reject"
    """A signal against the open position: ``reject`` it, or ``reverse`` (flatten, then enter)."""
    price_band_pct: Decimal = Field(default=Decimal("5"), gt=0, le=100)
    """A trade print further than this from the last good price is dropped (a bad tick)."""
    margin_limits: dict[str, Decimal] = Field(
        default_factory=lambda: {"MES": Decimal("40"), "ES": Decimal("400")}
    )
    """Day-trade margin per contract above which a day is not traded (a "high margin day"):
    checked with the broker before the day's first trade. Symbols not listed are not limited."""
    reconcile: Literal["halt", "adopt"] = "halt"
    """At start, if the broker's positions or orders differ from the journal's: ``halt`` until
    an operator resumes, or ``adopt`` the broker's view."""
    flatten_at: time | None = time(15, 55)
    """Exchange-local time (``timezone``) at which everything is flattened; null turns it off."""
    digest_at: time | None = time(16, 0)
    timezone: str = "America/New_York"

    @field_validator("flatten_at", "digest_at", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> Any:
        """``15:55`` unquoted is YAML 1.1's base-60 integer 955: read it as the time it shows.
        Anything else must be ``HH:MM`` (or ``HH:MM:SS``) or null."""
        if value is None or isinstance(value, time):
            return value
        if isinstance(value, bool):
            raise ValueError("must be a time of day, HH:MM")
        if isinstance(value, int):
            hours, minutes = divmod(value, 60)
            if value < 0 or hours > 23:
                raise ValueError(f"must be a time of day, HH:MM (got the number {value})")
            return time(hours, minutes)
        match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", str(value).strip())
        if match and int(match[1]) < 24 and int(match[2]) < 60 and int(match[3] or 0) < 60:
            return time(int(match[1]), int(match[2]), int(match[3] or 0))
        raise ValueError(f"must be a time of day, HH:MM (got {value!r})")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. America/New_York)") from None
        return value


class Tier(_Strict):
    name: str
    min_balance: Decimal
    """Balance from which the tier applies (the lowest tier also applies below it)."""
    symbol: str
    max_contracts: int = Field(default=1, ge=1)


class AccountSettings(_Strict):
    """Starting balance and the balance tiers; the rules are in :mod:`tradebot_core.account`."""

    starting_balance: Decimal = Field(default=Decimal("2500"), gt=0)
    tiers: list[Tier] = Field(default_factory=lambda: AccountSettings.default_tiers())
    """Balance tiers, in any order (kept sorted by ``min_balance``, which must be unique).

    Default: the capital plan (:meth:`default_tiers`), applied when ``symbol`` is MES or ES; ``[]``:
    no tiers, always ``symbol`` at the router's size."""
    demote_buffer: Decimal | None = Field(default=None, ge=0)
    """A tier is left downward only below ``min_balance - demote_buffer``; null: half the width
    of the tier being left (its ``min_balance`` minus the previous tier's)."""

    @staticmethod
    def default_tiers() -> list[Tier]:
        """The capital plan: MES up to $3,500, then ES with more contracts as the balance grows.

        Tier 1's $2,000 floor only sets Tier 2's default demotion buffer ($750: Tier 2 is left
        below $2,750); Tier 1 applies at any balance below $3,500.
        """
        plan = [
            ("MES building", "2000", "MES", 1),
            ("ES entry", "3500", "ES", 1),
            ("ES growth", "5000", "ES", 1),
            ("ES scaling", "7500", "ES", 2),
            ("ES full", "10000", "ES", 3),
        ]
        return [
            Tier(name=name, min_balance=Decimal(low), symbol=symbol, max_contracts=most)
            for name, low, symbol, most in plan
        ]

    @field_validator("tiers")
    @classmethod
    def _sorted_and_distinct(cls, tiers: list[Tier]) -> list[Tier]:
        ordered = sorted(tiers, key=lambda t: t.min_balance)
        for index in range(1, len(ordered)):
            lower, upper = ordered[index - 1], ordered[index]
            if lower.min_balance == upper.min_balance:
                raise ValueError(
                    f"tiers {lower.name!r} and {upper.name!r} have the same min_balance "
                    f"{upper.min_balance}: each tier needs its own"
                )
        return ordered

    def tiers_for(self, symbol: str) -> list[Tier]:
        """The tiers in force when ``symbol`` is traded: the default plan (MES/ES) applies only
        to MES or ES; tiers set in the config always apply."""
        from .instruments import root_symbol

        if "tiers" in self.model_fields_set or root_symbol(symbol) in {"MES", "ES"}:
            return list(self.tiers)
        return []


class JournalSettings(_Strict):
    path: Path = Path("data/tradebot.db")


class LiveSettings(_Strict):
    enabled: bool = False
    """Live trading is off unless this is true AND TRADEBOT_LIVE=1 is set in the environment."""


_DEFAULT_PLUGINS = {"feed": "demo", "regime": "adx", "router": "regime", "broker": "paper"}


class TradebotConfig(_Strict):
    symbol: str = "MES"
    timeframe_s: int = Field(default=300, gt=0)
    quantity: int = Field(default=1, ge=1)
    """Base order size in contracts, before the router's multipliers."""
    instruments: dict[str, InstrumentSpec] = Field(default_factory=dict)
    feed: FeedChoice = FeedChoice(plugin="demo")
    detectors: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    regime: PluginChoice = PluginChoice(plugin="adx")
    router: PluginChoice = PluginChoice(plugin="regime")
    broker: PluginChoice = PluginChoice(plugin="paper")
    notifiers: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    services: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    risk: RiskSettings = RiskSettings()
    account: AccountSettings = AccountSettings()
    journal: JournalSettings = JournalSettings()
    live: LiveSettings = LiveSettings()

    @model_validator(mode="before")
    @classmethod
    def _default_plugins(cls, data: Any) -> Any:
        """A choice section without ``plugin:`` keeps the default plugin."""
        if isinstance(data, dict):
            for section, default in _DEFAULT_PLUGINS.items():
                value = data.get(section)
                if isinstance(value, dict) and "plugin" not in value:
                    data = {**data, section: {"plugin": default, **value}}
        return data

    def extra_instruments(self) -> dict[str, Instrument]:
        return {
            symbol: Instrument(symbol=symbol, **spec.model_dump())
            for symbol, spec in self.instruments.items()
        }


@dataclass
class LoadedConfig:
    """A validated config, with what is needed to report later errors against the file."""

    config: TradebotConfig
    path: Path | None
    raw: dict[str, Any]
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    missing_env: dict[tuple[str, ...], str] = field(default_factory=dict)
    overridden: dict[tuple[str, ...], str] = field(default_factory=dict)
    """Key paths whose values ``--set`` changed -> the override as shown in errors
    (``feed.speed=fast``; ``risk={...}`` for a section, ``feed.polygon.api_key=***``)."""

    def where(self, path: tuple[str | int, ...]) -> str:
        """``file:line: a.b.c`` for a key path (the nearest line known), or
        ``--set a.b=VALUE: a.b.c`` when the value came from an override."""
        keys = tuple(str(p) for p in path)
        for end in range(len(keys), 0, -1):
            item = self.overridden.get(keys[:end])
            if item is not None:
                if item.startswith("env:"):
                    return f"environment {item[4:]}: {'.'.join(keys)}"
                return f"--set {item}: {'.'.join(keys)}"
        line = None
        for end in range(len(keys), 0, -1):
            line = self.lines.get(keys[:end])
            if line is not None:
                break
        dotted = ".".join(keys)
        if self.path is None:
            return dotted
        return f"{self.path.name}:{line}: {dotted}" if line else f"{self.path.name}: {dotted}"

    def override(self, overrides: list[str] | tuple[str, ...]) -> LoadedConfig:
        """A copy with ``--set``-style overrides applied and validated again."""
        import copy

        raw = copy.deepcopy(self.raw)
        overridden = dict(self.overridden)
        for item in overrides:
            _note_override(overridden, item, *_apply_override(raw, item))
        return _validated(
            LoadedConfig(
                config=self.config,
                path=self.path,
                raw=raw,
                lines=self.lines,
                missing_env=self.missing_env,
                overridden=overridden,
            )
        )

    def check_env(self, prefix: tuple[str, ...]) -> list[str]:
        """Problems for ``${VARS}`` left unset inside the section at ``prefix``."""
        return [
            f"{self.where(path)}: environment variable {var} is not set (nor in .env)"
            for path, var in self.missing_env.items()
            if path[: len(prefix)] == prefix
        ]


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(
    path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()
) -> LoadedConfig:
    """Read, interpolate, override and validate a config file (``None``: defaults only)."""
    raw: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    file_path = Path(path) if path is not None else None
    env = dict(os.environ)
    if file_path is not None:
        if not file_path.is_file():
            raise ConfigError([f"config file not found: {file_path}"])
        text = file_path.read_text()
        env_file = file_path.parent / ".env"
        if env_file.is_file():
            env = {**{k: v for k, v in dotenv_values(env_file).items() if v is not None}, **env}
        try:
            node = yaml.compose(text)
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{file_path.name}:{mark.line + 1}" if mark else file_path.name
            raise ConfigError(
                [f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]
            ) from None
        if not isinstance(raw, dict):
            raise ConfigError([f"{file_path.name}: the top level must be a mapping of keys"])
        if node is not None:
            _collect_lines(node, (), lines)

    missing: dict[tuple[str, ...], str] = {}
    raw = _interpolate(raw, env, (), missing)
    overridden: dict[tuple[str, ...], str] = {}
    for name, override in environment_overrides(env):
        keys, old, new = _apply_override(raw, override)
        secret = _looks_secret(keys)
        shown = f"{name}=***" if secret else f"{name}={override.partition('=')[2]}"
        for changed in _changed(keys, old, new):
            overridden[changed] = f"env:{shown}"
    for override in overrides:
        _note_override(overridden, override, *_apply_override(raw, override))
    loaded = LoadedConfig(
        config=TradebotConfig(),
        path=file_path,
        raw=raw,
        lines=lines,
        missing_env=missing,
        overridden=overridden,
    )
    return _validated(loaded)


ENVIRONMENT: dict[str, str] = {
    "TRADING_SYMBOL": "symbol",
    "DAILY_PROFIT_TARGET": "risk.daily_profit_target",
    "DAILY_LOSS_LIMIT": "risk.daily_loss_limit",
    "MES_MARGIN_LIMIT": "risk.margin_limits.MES",
    "ES_MARGIN_LIMIT": "risk.margin_limits.ES",
    "DISCORD_WEBHOOK_URL": "notifiers.discord.webhook_url",
}
"""The environment variables our users know, and the config keys they set (over the file,
under ``--set``). ``TRADING_MODE`` (``paper`` | ``live``) picks the broker: ``live`` selects
``TRADING_BROKER`` (default ``rithmic``) with ``live.enabled: true``, which still needs
``TRADEBOT_LIVE=1`` to trade. See docs/configuration.md."""


def environment_overrides(env: dict[str, str]) -> list[tuple[str, str]]:
    """``(variable, "key=value")`` for each documented variable set (and not empty)."""
    found = []
    for name, key in ENVIRONMENT.items():
        value = env.get(name, "").strip()
        if value:
            found.append((name, f"{key}={value}"))
    mode = env.get("TRADING_MODE", "").strip().lower()
    if mode == "paper":
        found.append(("TRADING_MODE", "broker.plugin=paper"))
    elif mode == "live":
        broker = env.get("TRADING_BROKER", "").strip() or "rithmic"
        found.append(("TRADING_MODE", f"broker.plugin={broker}"))
        found.append(("TRADING_MODE", "live.enabled=true"))
    elif mode:
        raise ConfigError([f"environment TRADING_MODE={mode}: must be paper or live"])
    return found


def _note_override(
    overridden: dict[tuple[str, ...], str],
    item: str,
    keys: tuple[str, ...],
    old: Any,
    new: Any,
) -> None:
    """Remember the key paths whose values ``--set item`` changed, so that their errors blame
    it, not the file's line (a section set to what the file has, as ``tradebot replay`` does
    with the feed's settings and the day, leaves the unchanged keys to the file). The value is
    shown as typed unless it is a section (``{...}``) or under a secret-looking key (``***``)."""
    dotted = ".".join(keys)
    if _looks_secret(keys):
        shown = f"{dotted}=***"
    elif isinstance(new, dict | list):
        shown = f"{dotted}={{...}}" if isinstance(new, dict) else f"{dotted}=[...]"
    else:
        shown = f"{dotted}={item.partition('=')[2].strip()}"
    for path in _changed(keys, old, new):
        overridden[path] = shown


def _changed(keys: tuple[str, ...], old: Any, new: Any) -> list[tuple[str, ...]]:
    if isinstance(new, dict) and isinstance(old, dict):
        return [
            path
            for key, value in new.items()
            for path in _changed((*keys, str(key)), old.get(key, _ABSENT), value)
        ]
    return [] if old == new else [keys]


def _validated(loaded: LoadedConfig) -> LoadedConfig:
    try:
        loaded.config = TradebotConfig.model_validate(loaded.raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, loaded, ())) from None
    symbol = loaded.config.symbol
    instruments = InstrumentRegistry(loaded.config.extra_instruments())
    if symbol not in instruments:
        known = ", ".join(instruments.symbols())
        raise ConfigError(
            [
                f"{loaded.where(('symbol',))}: unknown instrument {symbol!r} (known: {known}; "
                "declare others under 'instruments:')"
            ]
        )
    return loaded


def format_validation_error(
    exc: ValidationError, loaded: LoadedConfig | None, prefix: tuple[str, ...]
) -> list[str]:
    """One human line per pydantic error: ``file:line: key.path: message (got X)``.

    The members of a union (``feed.speed.float``, ``feed.speed.literal['max']``) are not keys:
    they are left out of the path, and the members' messages share one line."""
    found: dict[tuple[str, ...], list[str]] = {}
    for error in exc.errors():
        path = _key_path(prefix + tuple(error["loc"]), loaded.raw if loaded else None)
        message = _humane(error)
        got = error.get("input")
        shown = (
            f" (got {got!r})"
            if error["type"] not in ("missing", "extra_forbidden")
            and not isinstance(got, dict | list)
            and not _looks_secret(path)
            and not (  # the --set shows the value
                loaded and loaded.overridden.get(path, "").startswith(".".join(path) + "=")
            )
            else ""
        )
        messages = found.setdefault(path, [])
        if f"{message}{shown}" not in messages:
            messages.append(f"{message}{shown}")
    return [
        f"{loaded.where(path) if loaded else '.'.join(path)}: {' or '.join(messages)}"
        for path, messages in found.items()
    ]


_ABSENT = object()


def _key_path(loc: tuple[Any, ...], raw: Any) -> tuple[str, ...]:
    """The keys of a pydantic error location, walking the raw config beside it: a location
    part under a plain value (not a mapping or list) can only be a union member's tag."""
    node = raw if raw is not None else _ABSENT
    keys: list[str] = []
    for part in loc:
        if node is _ABSENT:
            keys.append(str(part))
        elif isinstance(node, dict):
            keys.append(str(part))
            node = next((v for k, v in node.items() if str(k) == str(part)), _ABSENT)
        elif isinstance(node, list):
            keys.append(str(part))
            index = int(part) if str(part).isdigit() else len(node)
            node = node[index] if index < len(node) else _ABSENT
        # else: a tag such as 'float' or "literal['max']" under a plain value: not a key
    return tuple(keys)


def _looks_secret(path: tuple[str, ...]) -> bool:
    return any(word in path[-1].lower() for word in ("key", "token", "secret", "password", "url"))


def _humane(error: ErrorDetails) -> str:
    ctx = error.get("ctx") or {}
    kind = error["type"]
    simple = {
        "greater_than_equal": "must be >= {ge}",
        "greater_than": "must be > {gt}",
        "less_than_equal": "must be <= {le}",
        "less_than": "must be < {lt}",
        "missing": "is required",
        "extra_forbidden": "unknown key (misspelt, or not a setting here)",
    }
    if kind in simple:
        return simple[kind].format(**ctx)
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return message[0].lower() + message[1:] if message else kind


def _collect_lines(node: yaml.Node, path: tuple[str, ...], lines: dict) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            _collect_lines(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            _collect_lines(value, (*path, str(index)), lines)


def _interpolate(value: Any, env: dict[str, str], path: tuple[str, ...], missing: dict) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, env, (*path, str(k)), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, (*path, str(i)), missing) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            missing[path] = name
            return ""

        return _ENV.sub(replace, value)
    return value


def _apply_override(raw: dict[str, Any], override: str) -> tuple[tuple[str, ...], Any, Any]:
    """``a.b.c=VALUE``: VALUE is read as YAML (``2``, ``max``, ``[a, b]``, ``null``).
    Returns the key path, the value it had (or ``_ABSENT``) and the new value."""
    if "=" not in override:
        raise ConfigError([f"--set {override}: expected KEY=VALUE, e.g. feed.speed=max"])
    key, _, text = override.partition("=")
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError([f"--set {override}: the key is empty"])
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    node = raw
    for index, part in enumerate(keys[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            dotted = ".".join(keys[: index + 1])
            raise ConfigError([f"--set {override}: {dotted} is not a section"])
        node = child
    old = node.get(keys[-1], _ABSENT)
    node[keys[-1]] = value
    return tuple(keys), old, value
