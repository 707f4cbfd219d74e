"""Operations: the ``watchdog``, ``status``, ``preflight`` commands (the ``heartbeat`` service is
the plugin of its own module, :mod:`tradebot_plugins.ops.heartbeat`).

The heartbeat (a service inside the run) writes ``heartbeat.json`` beside the journal every few
seconds; the other three are separate processes that read it and the journal, so they work
while the bot is stuck or dead. See docs/operations.md.
"""

from __future__ import annotations

from typing import Any

from tradebot_core import hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    from .commands import preflight, status, watchdog

    cli.add_command(watchdog)
    cli.add_command(status)
    cli.add_command(preflight)


# For ``tradebot --help`` (the ``tradebot.commands`` entry-point group): each function's
# docstring is the command's line there; the command module is imported only when it runs.


def watchdog_command() -> Any:
    """Watch the bot from outside: heartbeat, process, memory, disk; alert through notifiers."""
    from .commands import watchdog

    return watchdog


def status_command() -> Any:
    """The bot's state, position, orders and P&L from the journal and heartbeat (no port)."""
    from .commands import status

    return status


def preflight_command() -> Any:
    """Check everything that can be known before trading: PASS / WARN / FAIL per line."""
    from .commands import preflight

    return preflight
