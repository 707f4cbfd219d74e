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
