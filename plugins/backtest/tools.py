"""``tradebot backtests summary`` (the backtest database's runs) and ``tradebot data download``
(fetch a feed's days into its cache before backtesting them)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

# -- tradebot backtests summary ------------------------------------------------------------------

COLUMNS = (
    ("id", "id"),
    ("when", "when"),
    ("kind", "kind"),
    ("symbol", "symbol"),
    ("range", "range"),
    ("days", "days"),
    ("trades", "trades"),
    ("net_pnl", "net P&L"),
    ("final_balance", "final balance"),
    ("profit_factor", "profit factor"),
    ("max_drawdown", "max drawdown"),
)


def list_runs(path: str | Path) -> list[dict[str, Any]]:
    """The runs of a backtest database, newest first, with their headline figures."""
    db = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT r.id, r.created_ns, r.kind, r.scenario, r.symbol, r.date_from, r.date_to,"
            " r.final_balance, r.summary, (SELECT count(*) FROM days d WHERE d.run_id = r.id),"
            " (SELECT count(*) FROM trades t WHERE t.run_id = r.id)"
            " FROM runs r ORDER BY r.created_ns DESC, r.id DESC"
        ).fetchall()
    finally:
        db.close()
    runs = []
    for (
        run_id,
        created_ns,
        kind,
        scenario,
        symbol,
        start,
        end,
        final,
        summary,
        days,
        trades,
    ) in rows:
        data = json.loads(summary or "{}")
        overall = data.get("overall", data)  # a stress scenario stores its overall figures alone
        when = datetime.fromtimestamp(created_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M UTC")
        runs.append(
            {
                "id": run_id,
                "when": when,
                "kind": f"{kind} {scenario}".strip(),
                "symbol": symbol,
                "range": f"{start} to {end}",
                "from": start,
                "to": end,
                "days": days,
                "trades": trades,
                "net_pnl": overall.get("net_pnl"),
                "final_balance": final,
                "profit_factor": overall.get("profit_factor"),
                "max_drawdown": overall.get("max_drawdown"),
            }
        )
    return runs


def print_summary(runs: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"backtest runs ({len(runs)}, newest first)")
    for key, label in COLUMNS:
        left = key in ("when", "kind", "range")
        table.add_column(label, justify="left" if left else "right", no_wrap=key != "kind")
    for run in runs:
        table.add_row(*("-" if run[key] is None else str(run[key]) for key, _ in COLUMNS))
    console = Console()
    if not console.is_terminal:  # piped or captured: no 80-column wrapping
        console = Console(width=160)
    console.print(table)


@click.group(name="backtests")
def backtests_group() -> None:
    """The backtest database: runs saved by `tradebot backtest` and `tradebot stress`."""


@backtests_group.command(name="summary")
@click.option(
    "--db",
    default="data/backtests.db",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Backtest database (SQLite).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def summary_command(db: str, as_json: bool) -> None:
    """Every run in the backtest database, newest first: when, range, days, trades, net P&L,
    final balance, profit factor, max drawdown."""
    if not Path(db).is_file():
        raise click.ClickException(f"no backtest database at {db} (run `tradebot backtest`)")
    try:
        runs = list_runs(db)
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"{db} is not a backtest database: {exc}") from None
    if as_json:
        click.echo(json.dumps(runs, indent=2))
    else:
        print_summary(runs)


# -- tradebot data download ----------------------------------------------------------------------


@click.group(name="data")
def data_group() -> None:
    """Market data: fetch a feed's days into its cache."""


@data_group.command(name="download")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--symbol", help="Instrument (default: the config's symbol).")
@click.option(
    "--max-cost",
    type=str,
    help="Refuse when the days to download cost more (USD); default: the feed's budget.",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a key.")
def download_command(
    config: str,
    start: Any,
    end: Any,
    symbol: str | None,
    max_cost: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Fetch the CME trading days from --from to --to into the configured feed's cache.

    \b
    tradebot data download tradebot.yaml --from 2025-07-01 --to 2025-07-31 --max-cost 20
    Databento: asks the price of the days not cached yet and shows it, refuses above --max-cost,
    then downloads each missing day; a backtest of those days then makes no request.
    """
    from tradebot_core import Pipeline

    from .commands import _days, _load
    from .jobs import _manager, day_config

    limit = _money(max_cost) if max_cost is not None else None
    loaded = _load(config, symbol, overrides)
    days = _days(start, end)
    choice = loaded.config.feed
    info = _manager().get("feed", choice.plugin, loaded.where(("feed", "plugin")))
    if not all(hasattr(info.cls, name) for name in ("missing_days", "price_days", "download_day")):
        click.echo(
            f"the {choice.plugin} feed keeps no cache of downloaded days: nothing to download"
        )
        return
    if limit is not None:
        # --max-cost replaces the feed's budget: the price is checked here, against it
        loaded = loaded.override([f"feed.{choice.plugin}.confirm=true"])
    pipeline = Pipeline(day_config(loaded, days[0]), _manager(), journal_path=":memory:")
    feed = pipeline.feed
    missing = feed.missing_days(days)
    cached = len(days) - len(missing)
    if not missing:
        click.echo(f"all {len(days)} day(s) already in the cache: nothing to download")
        return
    try:
        cost = Decimal(feed.price_days(missing)).quantize(Decimal("0.01"))
    except Exception as exc:  # the feed's budget, a refused key: the feed's own message
        raise click.ClickException(str(exc)) from None
    click.echo(f"{len(missing)} day(s) to download ({cached} already cached): ${cost}")
    if limit is not None and cost > limit:
        raise click.ClickException(
            f"downloading {len(missing)} day(s) costs ${cost}, above --max-cost ${limit}: "
            "nothing downloaded"
        )
    for day in missing:
        try:
            feed.download_day(day)
        except Exception as exc:
            raise click.ClickException(f"{day}: {exc}") from None
        click.echo(f"{day}: {feed.cache_path(day)}")
    click.echo(f"downloaded {len(missing)} day(s) for ${cost}")


def _money(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        value = Decimal("-1")
    if not value.is_finite() or value < 0:
        raise click.BadParameter(f"{text!r}: dollars, like 12.50", param_hint="--max-cost")
    return value
