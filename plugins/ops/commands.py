"""The ops commands: ``tradebot watchdog``, ``tradebot status`` and ``tradebot preflight``."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from contextlib import suppress

import click

from tradebot_core.config import ConfigError, LoadedConfig

SET_HELP = "Override a config key by its dotted path (repeatable)."
NOW_HELP = (
    "Pretend it is this time (ISO 8601; without an offset, exchange time ET). For tests and "
    "rehearsals."
)


def _load(config: str, overrides: tuple[str, ...]) -> LoadedConfig:
    from tradebot_core import load_config

    try:
        return load_config(config, overrides)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(2) from None


def _now(text: str | None) -> int | None:
    from .common import parse_now

    try:
        return parse_now(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from None


def _ops(loaded: LoadedConfig):
    from .common import OpsConfig

    try:
        return OpsConfig.of(loaded)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(2) from None


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--once", is_flag=True, help="One check, then exit.")
@click.option("--now", "now", metavar="ISO", help=NOW_HELP)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
def watchdog(config: str, once: bool, now: str | None, overrides: tuple[str, ...]) -> None:
    """Watch the bot from a separate process: alert through CONFIG's notifiers.

    \b
    Reads the heartbeat file (services.heartbeat) every watchdog.check_every_s and alerts on a
    stale heartbeat while the market is open, a dead bot, memory, disk and feed reconnects over
    their limits; sends an end-of-day health report after 16:05 ET. Runs until stopped
    (Ctrl-C, SIGTERM), whatever happens to the bot.
    """

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    loaded = _load(config, overrides)
    ops = _ops(loaded)
    now_ns = _now(now)
    try:
        events = asyncio.run(_watch(ops, once, now_ns))
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(2) from None
    if once:
        for event in events:
            click.echo(event.message)


async def _watch(ops, once: bool, now_ns: int | None):
    from .watchdog import watch

    task = asyncio.ensure_future(watch(ops, once, now_ns))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        return []


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option("--now", "now", metavar="ISO", help=NOW_HELP)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
def status(config: str, as_json: bool, now: str | None, overrides: tuple[str, ...]) -> None:
    """Where the bot stands, from CONFIG's journal and heartbeat file (no port needed).

    State, position, working orders, day P&L, last tick and last heartbeat age. Works whether
    the bot runs or not; the journal is opened read-only.
    """
    from .status import gather, render

    ops = _ops(_load(config, overrides))
    try:
        data = gather(ops, _now(now))
    except (FileNotFoundError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(json.dumps(data, indent=2, default=str) if as_json else render(data))


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option(
    "--send-test-message", is_flag=True, help="Also post a test message to each notifier."
)
@click.option("--clock-url", help="Compare the clock with this URL's Date header.")
@click.option("--now", "now", metavar="ISO", help=NOW_HELP)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
def preflight(
    config: str,
    send_test_message: bool,
    clock_url: str | None,
    now: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Check everything needed to start the bot: one PASS/WARN/FAIL line per check.

    Config, secrets, journal (writable, not locked), disk, clock, today's session, vendors.
    Exit status 1 if any check FAILs.
    """
    from tradebot_core import load_config

    from .preflight import FAIL, Result, run_checks

    try:
        loaded = load_config(config, overrides)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(Result(FAIL, "config", problem).line())
        sys.exit(1)
    results = run_checks(loaded, now_ns=_now(now), clock_url=clock_url, send_test=send_test_message)
    for result in results:
        click.echo(result.line())
    if any(r.level == FAIL for r in results):
        sys.exit(1)
