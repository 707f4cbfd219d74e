"""Backtesting: ``tradebot backtest`` and ``tradebot stress``, on the same pipeline as a run.

A plugin like any other: it adds its commands through the ``register_commands`` hook.
"""

from __future__ import annotations

from typing import Any

from tradebot_core import hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    from .commands import backtest, stress_command

    cli.add_command(backtest)
    cli.add_command(stress_command)
