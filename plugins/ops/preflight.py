"""``tradebot preflight``: is everything in place to start the bot? One line per check.

Each check is a small function returning :class:`Result` lines (PASS, WARN or FAIL); the command
prints them and exits 1 if any FAILed. Nothing is written, nothing is left open.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import date
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from tradebot_core.config import ConfigError, LoadedConfig
from tradebot_core.execution.store import JournalLock

from .common import OpsConfig, market_open

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
MIN_FREE_GB = 1.0
"""Less free disk than this beside the journal fails preflight."""
MAX_CLOCK_OFFSET_S = 1.0
TIMEOUT_S = 5.0

_NOT_SET = "is not set (nor in .env)"


@dataclass(frozen=True)
class Result:
    level: str
    check: str
    message: str

    def line(self) -> str:
        return f"{self.level} {self.check}: {self.message}"


# -- the checks ---------------------------------------------------------------------------------


def check_config(loaded: LoadedConfig) -> list[Result]:
    """Every plugin section validates (a Pipeline is built: nothing is opened or written).
    Sections with unset ``${VARS}`` are reported by :func:`check_secrets`, not here."""
    from tradebot_core import Pipeline, PluginManager

    manager = PluginManager()
    problems: list[str] = []
    try:
        Pipeline(loaded, manager)
    except ConfigError as exc:
        problems = [p for p in exc.problems if _NOT_SET not in p]
    results = [Result(FAIL, "config", p) for p in problems]
    results += [
        Result(WARN, "config", f"plugin {f.plugin!r} failed to load: {f.reason}")
        for f in manager.failures
    ]
    if not problems:
        cfg = loaded.config
        results.insert(
            0,
            Result(
                PASS,
                "config",
                f"valid: {cfg.symbol}, feed {cfg.feed.plugin}, broker {cfg.broker.plugin}, "
                f"{len(cfg.notifiers)} notifiers, {len(cfg.services)} services",
            ),
        )
    return results


def _in_use(loaded: LoadedConfig, path: tuple[str, ...]) -> bool:
    """Whether a key is read by the run: a choice section's settings count only for the
    chosen plugin (``feed.databento`` is ignored while ``feed.plugin`` is ``demo``)."""
    cfg = loaded.config
    choices = {"feed": cfg.feed, "regime": cfg.regime, "router": cfg.router, "broker": cfg.broker}
    if len(path) >= 2 and path[0] in choices:
        choice = choices[path[0]]
        return path[1] in ("plugin", "speed") or path[1] == choice.plugin
    return True


def check_secrets(loaded: LoadedConfig) -> list[Result]:
    """Every ``${VAR}`` the config uses is set (in the environment or the config's .env)."""
    results = []
    for path, var in sorted(loaded.missing_env.items()):
        key = ".".join(path)
        if _in_use(loaded, path):
            results.append(
                Result(FAIL, "secrets", f"{var} is not set (needed by {key}; env or .env)")
            )
        else:
            results.append(Result(WARN, "secrets", f"{var} is not set ({key}, not in use)"))
    if not results:
        count = len(_referenced_vars(loaded.path))
        results.append(Result(PASS, "secrets", f"all {count} environment variables are set"))
    return results


def _referenced_vars(path: Path | None) -> set[str]:
    import re

    if path is None or not path.is_file():
        return set()
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", path.read_text()))


def _existing(folder: Path) -> Path:
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_journal(ops: OpsConfig) -> list[Result]:
    """The journal can be written, and no other process holds it."""
    journal = ops.journal
    holder = JournalLock.holder(journal)
    if holder is not None:
        return [
            Result(
                FAIL,
                "journal",
                f"{journal} is locked by process {holder} (a bot is running on it: stop it, "
                "or point journal.path elsewhere)",
            )
        ]
    target = journal if journal.exists() else _existing(journal.parent)
    if not os.access(target, os.W_OK):
        return [Result(FAIL, "journal", f"{target} is not writable by this user")]
    where = "exists" if journal.exists() else "will be created"
    return [Result(PASS, "journal", f"{journal} is writable and free ({where})")]


def check_disk(ops: OpsConfig) -> list[Result]:
    from .watchdog import disk_usage

    usage = disk_usage(ops.journal.parent)
    free_gb = usage.free / 1e9
    text = f"{free_gb:.1f} GB free ({usage.percent:.0f}% used) beside {ops.journal}"
    if free_gb < MIN_FREE_GB:
        return [Result(FAIL, "disk", f"only {text}; need {MIN_FREE_GB:g} GB")]
    if usage.percent >= ops.settings.watchdog.max_disk_pct:
        return [Result(WARN, "disk", f"{text}: over the watchdog's limit")]
    return [Result(PASS, "disk", text)]


def clock_offset_s(url: str) -> float:
    """Local clock minus the server's (its HTTP ``Date`` header, whole seconds: +-0.5 s)."""
    import httpx

    before = time.time()
    response = httpx.head(url, timeout=TIMEOUT_S, follow_redirects=True)
    after = time.time()
    header = response.headers.get("date")
    if not header:
        raise ValueError(f"{url} sent no Date header")
    server = parsedate_to_datetime(header).timestamp() + 0.5  # the middle of its second
    return (before + after) / 2 - server


def check_clock(ops: OpsConfig, url: str | None) -> list[Result]:
    url = url or ops.settings.clock_url
    if not url:
        return [
            Result(WARN, "clock", "not checked (set services.heartbeat.clock_url or --clock-url)")
        ]
    try:
        offset = clock_offset_s(url)
    except Exception as exc:
        return [Result(WARN, "clock", f"not checked: {url}: {_reason(exc)}")]
    text = f"offset {offset:+.1f} s from {url}"
    if abs(offset) > MAX_CLOCK_OFFSET_S:
        return [Result(WARN, "clock", f"{text}: over {MAX_CLOCK_OFFSET_S:g} s, fix NTP")]
    return [Result(PASS, "clock", text)]


def check_calendar(now_ns: int) -> list[Result]:
    from tradebot_core import calendar

    today = calendar.et_time(now_ns).date()
    state = "open now" if market_open(now_ns) else "closed now"
    if not calendar.is_trading_day(today):
        following = calendar.trading_date_of(now_ns)
        if following <= today:
            following = calendar.trading_days(today, date.fromordinal(today.toordinal() + 10))[0]
        return [
            Result(
                WARN,
                "calendar",
                f"{today} is not a CME trading day ({state}); next session {following}: "
                + _session_text(following),
            )
        ]
    early = " (early close)" if calendar.is_early_close(today) else ""
    return [
        Result(
            PASS,
            "calendar",
            f"{today} is a trading day{early}, market {state}: {_session_text(today)}",
        )
    ]


def _session_text(day: date) -> str:
    from tradebot_core import calendar

    b = calendar.get().bounds(day)

    def clock(ns: int) -> str:
        return calendar.et_time(ns).strftime("%a %H:%M")

    return (
        f"Globex {clock(b.open_ns)}-{clock(b.close_ns)} ET, "
        f"RTH {clock(b.rth_open_ns)}-{clock(b.rth_close_ns)} ET"
    )


def check_vendors(loaded: LoadedConfig, send_test: bool) -> list[Result]:
    """Each configured vendor answers: the Discord webhook, the feed's gateway."""
    results = []
    cfg = loaded.config
    for name, raw in cfg.notifiers.items():
        if name == "discord":
            results += check_discord((raw or {}).get("webhook_url"), send_test)
    feed = cfg.feed.plugin
    settings = cfg.feed.settings_for(feed)
    host = {
        "databento": (settings.get("gateway") or "hist.databento.com", 443),
        "databento_live": (settings.get("gateway"), settings.get("port", 13000)),
        "polygon": (settings.get("base_url") or "https://api.polygon.io", 443),
    }.get(feed)
    if host is not None and host[0]:
        results += check_tcp(f"feed {feed}", *host)
    return results


def check_discord(url: Any, send_test: bool) -> list[Result]:
    """The webhook answers a GET (Discord returns the webhook's name); optionally a test post.
    The URL holds a token: it is never printed."""
    import httpx

    if not url:
        return [Result(WARN, "discord", "not checked: no webhook_url (see secrets)")]
    try:
        response = httpx.get(str(url), timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        return [Result(FAIL, "discord", f"webhook unreachable: {_reason(exc)}")]
    if response.status_code in (401, 403, 404):
        return [
            Result(
                FAIL,
                "discord",
                f"webhook refused (HTTP {response.status_code}): deleted, or a wrong token",
            )
        ]
    if response.status_code >= 400:
        return [Result(FAIL, "discord", f"webhook answered HTTP {response.status_code}")]
    results = [Result(PASS, "discord", f"webhook answers (HTTP {response.status_code})")]
    if send_test:
        try:
            sent = httpx.post(
                str(url),
                json={"content": "tradebot preflight: test message", "username": "tradebot"},
                timeout=TIMEOUT_S,
            )
            ok = sent.status_code < 300
            level, text = (PASS, "sent") if ok else (FAIL, f"refused (HTTP {sent.status_code})")
        except httpx.HTTPError as exc:
            level, text = FAIL, f"not sent: {_reason(exc)}"
        results.append(Result(level, "discord", f"test message {text}"))
    return results


def check_tcp(what: str, host: str, port: int) -> list[Result]:
    """A TCP connection to a vendor's host opens (a URL's host and port are taken from it)."""
    import socket
    from urllib.parse import urlsplit

    if "://" in host:
        parts = urlsplit(host)
        host = parts.hostname or host
        port = parts.port or (443 if parts.scheme == "https" else 80)
    elif ":" in host:
        host, _, text = host.rpartition(":")
        port = int(text) if text.isdigit() else port
    try:
        with socket.create_connection((host, int(port)), timeout=TIMEOUT_S):
            pass
    except OSError as exc:
        return [Result(FAIL, what, f"{host}:{port} unreachable: {_reason(exc)}")]
    return [Result(PASS, what, f"{host}:{port} reachable")]


def _reason(exc: BaseException) -> str:
    from tradebot_core import redact

    text = str(exc) or type(exc).__name__
    return redact(text.splitlines()[0])


def run_checks(
    loaded: LoadedConfig,
    *,
    now_ns: int | None = None,
    clock_url: str | None = None,
    send_test: bool = False,
) -> list[Result]:
    now_ns = time.time_ns() if now_ns is None else now_ns
    results = check_config(loaded) + check_secrets(loaded)
    try:
        ops = OpsConfig.of(loaded)
    except ConfigError as exc:  # also reported by check_config
        return results + [Result(FAIL, "heartbeat", p) for p in exc.problems]
    for check in (
        lambda: check_journal(ops),
        lambda: check_disk(ops),
        lambda: check_clock(ops, clock_url),
        lambda: check_calendar(now_ns),
        lambda: check_vendors(loaded, send_test),
    ):
        try:
            results += check()
        except Exception as exc:
            results.append(Result(FAIL, "preflight", f"a check failed: {_reason(exc)}"))
    return results
