"""Backtesting: ``tradebot backtest`` and ``tradebot stress``, on the same pipeline as a run;
``tradebot backtests summary`` (the saved runs), ``tradebot data download`` (a feed's cache) and
``tradebot optimize`` (walk-forward tuning with Optuna).

The commands are declared in the ``tradebot.commands`` entry-point group (by the functions
below, so that ``tradebot --help`` lists them without importing :mod:`.commands`, which imports
the pipeline) and through the ``register_commands`` hook, which ``tradebot plugins`` lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradebot_core import hookimpl

if TYPE_CHECKING:
    import click


def backtest_command() -> click.Command:
    """Backtest CONFIG one CME trading day per job, with the same plugins as `tradebot run`."""
    from .commands import backtest

    return backtest


def stress_command() -> click.Command:
    """Stress-test CONFIG: more slippage, time of day, day of week, Monte Carlo."""
    from .commands import stress_command

    return stress_command


def backtests_command() -> click.Group:
    """The backtest database: `tradebot backtests summary` lists its runs."""
    from .tools import backtests_group

    return backtests_group


def optimize_command() -> click.Command:
    """Walk-forward tuning of CONFIG's settings with Optuna: in-sample vs out-of-sample."""
    from .optimize import optimize

    return optimize


def data_command() -> click.Group:
    """Market data: `tradebot data download` fetches a feed's days into its cache."""
    from .tools import data_group

    return data_group


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(backtest_command())
    cli.add_command(stress_command())
    cli.add_command(backtests_command())
    cli.add_command(data_command())
    cli.add_command(optimize_command())
