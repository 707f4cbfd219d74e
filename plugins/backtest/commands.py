"""``tradebot backtest`` and ``tradebot stress``."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tradebot_core import ConfigError, LoadedConfig, Pipeline, load_config

# every tradebot process registers these commands: what only a backtest needs (rich's progress
# bar, the engine, the executors, the report) is imported when a command runs
if TYPE_CHECKING:
    from .engine import BacktestResult

SET_HELP = "Override a config key by its dotted path (repeatable)."


def trading_days(start: date, end: date) -> list[date]:
    """CME trading days from ``start`` to ``end``, both included."""
    from tradebot_core.calendar import trading_days as cme_days

    return list(cme_days(start, end))


def _options(command: Any) -> Any:
    options = [
        click.argument("config", type=click.Path(dir_okay=False)),
        click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"])),
        click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"])),
        click.option("--symbol", help="Instrument (default: the config's symbol)."),
        click.option("--workers", type=int, help="Worker processes (default: all cores)."),
        click.option(
            "--executor",
            default="local",
            show_default=True,
            help="'local' (processes on this machine) or dask://HOST:PORT (a Dask cluster).",
        ),
        click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Results."),
        click.option("--report", "report_path", type=click.Path(dir_okay=False), help="HTML."),
        click.option(
            "--db",
            default="data/backtests.db",
            show_default=True,
            help="Backtest database (SQLite): runs, days, trades, signals.",
        ),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _load(config: str, symbol: str | None, overrides: tuple[str, ...]) -> LoadedConfig:
    extra = [*overrides]
    if symbol:
        extra.insert(0, f"symbol={symbol}")
    try:
        return load_config(config, extra)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(2) from None


def _run(
    loaded: LoadedConfig,
    days: list[date],
    executor_spec: str,
    workers: int | None,
    quiet: bool,
    label: str = "days",
) -> BacktestResult:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from .engine import run_backtest
    from .executors import make_executor

    executor = make_executor(executor_spec, workers)
    console = Console(stderr=True)
    started = time.perf_counter()
    ticks = 0
    try:
        with Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
            disable=quiet,
            transient=False,
        ) as progress:
            task = progress.add_task(label, total=len(days), rate="")

            def advance(day_result: dict[str, Any], finished: int, total: int) -> None:
                nonlocal ticks
                ticks += day_result["ticks"]
                rate = ticks / max(1e-9, time.perf_counter() - started)
                progress.update(task, completed=finished, total=total, rate=f"{rate:,.0f} ticks/s")

            return run_backtest(loaded, days, executor, advance)
    finally:
        executor.close()


def prepare_feed(loaded: LoadedConfig, days: list[date]) -> None:
    """Let the feed fetch once what the day jobs need (Databento: price and download)."""
    from .jobs import _manager, day_config

    feed = loaded.config.feed
    info = _manager().get("feed", feed.plugin, loaded.where(("feed", "plugin")))
    if not hasattr(info.cls, "prepare_days"):
        return
    # a feed set up as for the first day; prepare_days looks at every day it is given
    pipeline = Pipeline(day_config(loaded, days[0]), _manager(), journal_path=":memory:")
    click.echo(pipeline.feed.prepare_days(days), err=True)


def _days(start: Any, end: Any) -> list[date]:
    days = trading_days(start.date(), end.date())
    if not days:
        raise click.ClickException(f"no CME trading day between {start.date()} and {end.date()}")
    return days


def _write(
    result: BacktestResult, data: dict[str, Any], json_path: str | None, report_path: str | None
) -> None:
    if json_path:
        payload = json.loads(result.to_json())
        payload["summary"] = data
        Path(json_path).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    if report_path:
        from . import report

        Path(report_path).write_text(report.html_report(result, data))
        click.echo(f"report: {report_path}")


def _stress_options(command: Any) -> Any:
    options = [
        click.option(
            "--slippage",
            default="1,2",
            show_default=True,
            help="Run the days again with these many more ticks of slippage ('' for none).",
        ),
        click.option("--monte-carlo", "runs", default=1000, show_default=True, help="Paths."),
        click.option("--seed", default=7, show_default=True, help="Monte Carlo seed."),
        click.option(
            "--min-profit-factor",
            type=str,
            default="1.2",
            show_default=True,
            help="PASS threshold: lowest profit factor (also under slippage).",
        ),
        click.option(
            "--max-drawdown",
            type=str,
            default="1000",
            show_default=True,
            help="PASS threshold: largest max drawdown ($); Monte Carlo's ruin.",
        ),
        click.option(
            "--mc-ruin-probability",
            type=float,
            default=0.05,
            show_default=True,
            help="PASS threshold: highest share of Monte Carlo paths reaching --max-drawdown.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _thresholds(min_profit_factor: str, max_drawdown: str, mc_ruin_probability: float) -> Any:
    from pydantic import ValidationError

    from .checks import Thresholds

    try:
        return Thresholds(
            min_profit_factor=min_profit_factor,
            max_drawdown=max_drawdown,
            mc_ruin_probability=mc_ruin_probability,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
            for e in exc.errors()
        )
        raise click.UsageError(problems) from None


def _slippage_ticks(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        problem = f"{text!r}: whole ticks, comma-separated"
        raise click.BadParameter(problem, param_hint="--slippage") from None


def _configured_slippage(loaded: LoadedConfig) -> int:
    """The broker's own slippage_ticks (the paper broker's default when the config has none)."""
    from .jobs import _manager

    choice = loaded.config.broker
    raw = (choice.model_extra or {}).get(choice.plugin) or {}
    try:
        info = _manager().get("broker", choice.plugin, loaded.where(("broker", "plugin")))
        return int(info.cls.Settings.model_validate(raw).slippage_ticks)
    except Exception:  # a broker without slippage_ticks: the scenarios set it from zero
        return int(raw.get("slippage_ticks", 0))


def _stress(
    loaded: LoadedConfig,
    days: list[date],
    base: BacktestResult,
    run: dict[str, Any],
    slippage: list[int],
    runs: int,
    seed: int,
    thresholds: Any,
    db: str | None,
) -> dict[str, Any]:
    """Slippage scenarios (saved to ``db`` when given), time of day, weekday, Monte Carlo."""
    from decimal import Decimal

    from . import stats, stress
    from .store import save_run

    scenarios: dict[str, Any] = {}
    broker = loaded.config.broker.plugin
    configured = _configured_slippage(loaded)
    for ticks in slippage:
        total = configured + ticks
        shifted = loaded.override([f"broker.{broker}.slippage_ticks={total}"])
        scenario = _run(shifted, days, label=f"slippage +{ticks}", **run)
        overall = stats.overall(scenario)
        scenarios[str(ticks)] = {
            k: overall[k] for k in ("net_pnl", "final_balance", "profit_factor", "trades")
        }
        scenarios[str(ticks)]["slippage_ticks"] = total
        if db:
            name = f"slippage_ticks={total}"
            save_run(db, scenario, overall, run["executor_spec"], "stress", name)
    nets = [Decimal(t["net_pnl"]) for t in base.trades]
    return {
        "slippage": scenarios,
        "by hour": stats.by_hour(base),
        "by weekday": stats.by_weekday(base),
        "monte_carlo": stress.monte_carlo(
            nets, base.starting_balance, runs, seed, thresholds.max_drawdown
        ),
    }


def _backtest(
    kind: str,
    config: str,
    start: Any,
    end: Any,
    symbol: str | None,
    workers: int | None,
    executor: str,
    json_path: str | None,
    report_path: str | None,
    db: str,
    overrides: tuple[str, ...],
    quiet: bool,
    slippage: str,
    runs: int,
    seed: int,
    min_profit_factor: str,
    max_drawdown: str,
    mc_ruin_probability: float,
) -> None:
    from . import report
    from .checks import evaluate
    from .store import save_run

    thresholds = _thresholds(min_profit_factor, max_drawdown, mc_ruin_probability)
    ticks = _slippage_ticks(slippage)
    loaded = _load(config, symbol, overrides)
    days = _days(start, end)
    prepare_feed(loaded, days)
    run = {"executor_spec": executor, "workers": workers, "quiet": quiet}
    base = _run(loaded, days, label="days" if kind == "backtest" else "baseline", **run)
    # `tradebot stress` keeps each slippage scenario as a run of its own
    scenario_db = db if kind == "stress" else None
    stress_data = _stress(loaded, days, base, run, ticks, runs, seed, thresholds, scenario_db)
    data = report.summary_data(base, stress_data)
    data["thresholds"] = json.loads(thresholds.model_dump_json())
    data["checks"] = evaluate(data, thresholds)
    report.print_report(data)
    if kind == "backtest":
        save_run(db, base, data, executor)
    else:
        save_run(db, base, data, executor, "stress", "baseline")
    _write(base, data, json_path, report_path)


@click.command()
@_options
@_stress_options
def backtest(**options: Any) -> None:
    """Backtest CONFIG one CME trading day per job, with the same plugins as `tradebot run`.

    \b
    tradebot backtest tradebot.yaml --from 2025-07-01 --to 2025-11-20 --symbol ES \\
        --json results.json --report report.html
    Days run in parallel (--workers, or a Dask cluster with --executor dask://HOST:PORT);
    results equal running the days one after another. The report has the overall figures, tier
    progression, months, patterns and the stress results (the days again with 1 and 2 more
    ticks of slippage, time of day, day of week, Monte Carlo), each check PASS or FAIL against
    the thresholds (--min-profit-factor, --max-drawdown, --mc-ruin-probability).
    """
    _backtest("backtest", **options)


@click.command(name="stress")
@_options
@_stress_options
def stress_command(**options: Any) -> None:
    """Stress-test CONFIG: more slippage, time of day, day of week, Monte Carlo.

    The same report as `tradebot backtest`; each slippage scenario is also saved as a run of
    its own in the backtest database.
    """
    _backtest("stress", **options)
