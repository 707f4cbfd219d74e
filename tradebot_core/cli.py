"""The ``tradebot`` command line."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import PROJECT_NAME, __version__

# `tradebot --help` must stay quick: the pipeline, the config, the plugins and rich are imported
# by the commands that use them
if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from rich.console import Console

    from .config import LoadedConfig
    from .plugins import PluginManager
    from .run.runner import Pipeline, RunSummary

log = logging.getLogger("tradebot")

COMMANDS_GROUP = f"{PROJECT_NAME}.commands"
"""Plugin sub-commands: ``name = "module:function"``, the function returning the click command."""
QUIET_ENV = "TRADEBOT_QUIET"
"""Set (to 1) by ``tradebot run -q``: the console notifier prints warnings and errors only."""


@functools.cache
def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True)


SET_HELP = "Override a config key by its dotted path, e.g. --set feed.speed=max (repeatable)."


def _setup_logging(verbose: int, quiet: bool) -> None:
    from rich.logging import RichHandler

    from .secrets import protect_handlers

    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="%H:%M:%S",
        handlers=[RichHandler(console=_stderr(), show_path=False, rich_tracebacks=True)],
        force=True,
    )
    protect_handlers()  # secrets scrubbed from this handler's records too, tracebacks included


def _fail(problems: list[str], code: int = 2) -> None:
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    raise SystemExit(code)


class _Cli(click.Group):
    """The built-in commands, and the plugins'.

    A command declared in the ``tradebot.commands`` entry-point group is listed from the installed
    distributions' metadata, described by its function's docstring, and built when it runs: the
    help does not import what the command needs. The ``register_commands`` hook loads every
    plugin, so it is called only for a name found nowhere else.
    """

    _declared: dict[str, EntryPoint] | None = None
    _hook_called = False

    def declared(self) -> dict[str, EntryPoint]:
        """The ``tradebot.commands`` entry points, by command name."""
        if self._declared is None:
            from importlib.metadata import entry_points

            self._declared = {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}
        return self._declared

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.declared()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self.declared():
            self.add_command(self._build(name), name)
        if name not in self.commands and not self._hook_called:
            from .plugins import PluginManager

            self._hook_called = True
            PluginManager().hook.register_commands(cli=self)
        return self.commands.get(name)

    def _build(self, name: str) -> click.Command:
        target = self._load(name)
        command = target if isinstance(target, click.Command) else target()
        if not isinstance(command, click.Command):
            raise click.ClickException(
                f"plugin command {name!r} ({self.declared()[name].value}) is not a click command"
            )
        return command

    def _load(self, name: str) -> Any:
        entry_point = self.declared()[name]
        try:
            return entry_point.load()
        except Exception as exc:  # a broken plugin must not take the command line down
            raise click.ClickException(
                f"plugin command {name!r} ({entry_point.value}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _listed(self, name: str) -> click.Command:
        """The command, or for one not built yet a stand-in carrying its function's docstring."""
        if name in self.commands:
            return self.commands[name]
        try:
            target = self._load(name)
        except click.ClickException as exc:
            return click.Command(name, help=exc.message)
        if isinstance(target, click.Command):
            return target
        return click.Command(name, help=target.__doc__)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own, but with the stand-ins
        commands = [(name, self._listed(name)) for name in self.list_commands(ctx)]
        commands = [(name, command) for name, command in commands if not command.hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, c.get_short_help_str(limit)) for name, c in commands])


@click.group(cls=_Cli)
@click.version_option(__version__, prog_name="tradebot")
def cli() -> None:
    """tradebot: regime-adaptive order-flow trading for CME futures.

    \b
    Quick start:
      tradebot init                      write a starter tradebot.yaml
      tradebot validate tradebot.yaml    check it, naming any bad key and its line
      tradebot run tradebot.yaml         trade the demo feed on paper
      tradebot plugins                   list feeds, detectors, brokers... installed

    Every component is a plugin; tradebot.yaml picks them by name.
    """


def _load(config: str, overrides: tuple[str, ...]) -> tuple[LoadedConfig, PluginManager]:
    from .config import ConfigError, load_config
    from .plugins import PluginManager

    try:
        loaded = load_config(config, overrides)
    except ConfigError as exc:
        _fail(exc.problems)
    return loaded, PluginManager()


def build_pipeline(
    config: str, overrides: tuple[str, ...], journal: str | None = None, resume: bool = False
) -> Pipeline:
    from .config import ConfigError
    from .run.runner import Pipeline

    loaded, manager = _load(config, overrides)
    for failure in manager.failures:
        log.warning("plugin %r failed to load: %s", failure.plugin, failure.reason)
    try:
        return Pipeline(loaded, manager, journal_path=journal, resume=resume)
    except ConfigError as exc:
        _fail(exc.problems)
    raise AssertionError("unreachable")


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False, writable=True),
    help="Write {bars, signals, orders, trades, net_pnl, ticks, wall_seconds} here at the end.",
)
@click.option("--journal", help="SQLite journal path (default: journal.path of the config).")
@click.option(
    "--resume",
    is_flag=True,
    help="A replayed feed (demo, file) goes on from where the journal's last run stopped: the "
    "ticks before rebuild bars and indicators without trading. Live feeds always resume.",
)
@click.option("-v", "--verbose", count=True, help="More logging.")
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    envvar=QUIET_ENV,
    help="Warnings, errors and the final summary only (also TRADEBOT_QUIET=1).",
)
def run(
    config: str,
    overrides: tuple[str, ...],
    summary_json: str | None,
    journal: str | None,
    resume: bool,
    verbose: int,
    quiet: bool,
) -> None:
    """Run the pipeline CONFIG describes until its feed ends (or Ctrl-C).

    \b
    A replayed feed (demo, file) trades a fresh simulated account each run, so the same
    command gives the same result; --resume continues the journal's instead. A live feed
    resumes the journal's account, positions, orders and day P&L, and checks them against the
    broker. Ctrl-C or SIGTERM stops within a second. Exit status: 0 when the run completed or
    was stopped, 1 when it failed (the summary says why), 2 for a bad config, 3 when it will not
    trade today (a high margin day: see risk.margin_limits).
    """
    import asyncio

    _setup_logging(verbose, quiet)
    was_quiet = os.environ.get(QUIET_ENV)
    if quiet:  # read by the notifiers as they are built
        os.environ[QUIET_ENV] = "1"
    try:
        pipeline = build_pipeline(config, overrides, journal, resume=resume)
    finally:  # for a caller in the same process (tests)
        if was_quiet is None:
            os.environ.pop(QUIET_ENV, None)
    summary = asyncio.run(_run(pipeline))
    _print_summary(summary, pipeline)
    if summary_json:
        data = {k: v for k, v in summary.as_dict().items()}
        Path(summary_json).write_text(json.dumps(data, indent=2) + "\n")
    if summary.exit.startswith("failed"):
        _stderr().print(f"[red]run {summary.exit}[/]")
        raise SystemExit(1)
    if summary.exit.startswith("not_trading"):  # a high margin day: systemd must not restart
        raise SystemExit(3)  # it in a loop (RestartPreventExitStatus=3); tomorrow trades


async def _run(pipeline: Pipeline) -> RunSummary:
    import asyncio

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, pipeline.request_stop)
    try:
        return await pipeline.run()
    except Exception as exc:  # run() reports its own failures; this is a bug's last stand
        log.exception("run failed: %s", exc)
        pipeline.summary.exit = f"failed: {exc}"
        return pipeline.summary


def _print_summary(summary: RunSummary, pipeline: Pipeline) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console()
    table = Table(title=f"tradebot run: {summary.exit}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rate = summary.ticks / summary.wall_seconds if summary.wall_seconds else 0
    for what, value in (
        ("ticks", f"{summary.ticks:,}"),
        ("ticks/s", f"{rate:,.0f}"),
        ("bars", f"{summary.bars:,}"),
        ("signals", f"{summary.signals:,}"),
        ("orders", f"{summary.orders:,}"),
        ("rejected", f"{summary.rejected:,}"),
        ("trades", f"{summary.trades:,}"),
        ("net P&L", f"${summary.net_pnl:,}"),
        ("dropped ticks", f"{summary.dropped_ticks:,}"),
        ("wall", f"{summary.wall_seconds:.2f} s"),
        ("journal", str(pipeline.journal_path)),
    ):
        table.add_row(what, value)
    out.print(table)
    if summary.patterns:
        patterns = Table(title="signals per pattern")
        patterns.add_column("pattern")
        patterns.add_column("count", justify="right")
        for name, count in sorted(summary.patterns.items()):
            patterns.add_row(name, f"{count:,}")
        out.print(patterns)


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option(
    "--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Trading day."
)
@click.option("--symbol", help="Instrument (default: the config's symbol).")
@click.option("--speed", default="max", show_default=True, help="1 = real time, 100 = 100x, max.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--summary-json", type=click.Path(dir_okay=False, writable=True))
@click.option("--journal", help="SQLite journal path (default: journal.path of the config).")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and the final summary only.")
def replay(
    config: str,
    day: Any,
    symbol: str | None,
    speed: str,
    overrides: tuple[str, ...],
    summary_json: str | None,
    journal: str | None,
    quiet: bool,
) -> None:
    """Replay one trading day of CONFIG's feed through the whole pipeline.

    \b
    tradebot replay tradebot.yaml --date 2024-11-13 --symbol ES --speed 100
    plays the 13th of November 2024 at 100x (an hour of ticks in 36 s).
    """
    from .config import ConfigError

    _setup_logging(0, quiet)
    extra = [f"feed.speed={speed}", *overrides]
    if symbol:
        extra.insert(0, f"symbol={symbol}")
    try:
        extra.append(replay_override(config, extra, day.date()))
    except (ConfigError, ValueError) as exc:
        _fail(getattr(exc, "problems", [str(exc)]))
    assert run.callback is not None  # the function under @cli.command()
    run.callback(config, tuple(extra), summary_json, journal, False, 0, quiet)


def replay_override(config: str, overrides: list[str], day: Any) -> str:
    """``feed.<plugin>=<settings for that day>``, from the feed's own ``day_settings``."""
    from .components import day_settings
    from .config import load_config
    from .plugins import PluginManager

    loaded = load_config(config, overrides)
    feed = loaded.config.feed
    info = PluginManager().get("feed", feed.plugin, loaded.where(("feed", "plugin")))
    settings = day_settings(info.cls, feed.settings_for(feed.plugin), day)
    return f"feed.{feed.plugin}={json.dumps(settings, default=str)}"


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
def validate(config: str, overrides: tuple[str, ...]) -> None:
    """Check CONFIG: every key, every selected plugin and its settings. Writes nothing."""
    pipeline = build_pipeline(config, overrides)
    cfg = pipeline.config
    click.echo(
        f"{config}: ok: {cfg.symbol} {cfg.timeframe_s}s bars, feed {cfg.feed.plugin}, "
        f"{len(pipeline.detectors)} detectors, regime {cfg.regime.plugin}, "
        f"router {cfg.router.plugin}, broker {cfg.broker.plugin}, "
        f"{len(pipeline.notifiers)} notifiers, {len(pipeline.services)} services"
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON list of {name, kind, version, ...}.")
def plugins(as_json: bool) -> None:
    """List the installed components: feeds, detectors, regimes, routers, brokers, notifiers."""
    from rich.console import Console
    from rich.table import Table

    from .config import ConfigError
    from .plugins import PluginManager

    manager = PluginManager()
    try:
        rows = manager.listing()
    except ConfigError as exc:
        _fail(exc.problems)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        table = Table(title="tradebot plugins")
        for column in ("kind", "name", "version", "module", "source"):
            table.add_column(column)
        for row in rows:
            table.add_row(*(row[c] for c in ("kind", "name", "version", "module", "source")))
        Console().print(table)
    for failure in manager.failures:
        _stderr().print(f"[yellow]plugin {failure.plugin!r} failed to load: {failure.reason}[/]")


@cli.command()
@click.argument("path", default="tradebot.yaml", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def init(path: str, force: bool) -> None:
    """Write a starter config to PATH (default tradebot.yaml): demo feed, paper broker."""
    from importlib import resources

    target = Path(path)
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; use --force to overwrite it")
    template = resources.files("tradebot_core") / "templates" / "tradebot.yaml"
    target.write_text(template.read_text())
    click.echo(f"wrote {target}; next: tradebot validate {target} && tradebot run {target}")


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="tradebot")


if __name__ == "__main__":
    sys.exit(main())
