"""At start: what the broker says it holds against what the journal says we hold.

Equal: the run resumes. Different: each difference is a line an operator can act on; the run
journals them, alerts, and stays halted until an operator resumes it (``risk.reconcile: halt``,
the default), or takes the broker's word (``adopt``).
"""

from __future__ import annotations

from typing import Any


def differences(
    journal_positions: dict[str, int],
    journal_working: set[str],
    broker: dict[str, Any],
) -> list[str]:
    """One line per mismatch between the journal's view and the broker's report.

    ``broker`` is what :meth:`Broker.report` returns: ``{"positions": {symbol: net},
    "working": [order ids]}`` (a live broker adds what else it knows, e.g. average prices).
    """
    lines: list[str] = []
    held = {k: v for k, v in broker.get("positions", {}).items() if v}
    ours = {k: v for k, v in journal_positions.items() if v}
    for symbol in sorted(set(held) | set(ours)):
        if held.get(symbol, 0) != ours.get(symbol, 0):
            lines.append(
                f"{symbol}: the broker holds {held.get(symbol, 0):+d}, "
                f"the journal {ours.get(symbol, 0):+d}"
            )
    theirs = set(broker.get("working", []))
    for order_id in sorted(journal_working - theirs):
        lines.append(f"order {order_id}: working in the journal, unknown to the broker")
    for order_id in sorted(theirs - journal_working):
        lines.append(f"order {order_id}: working at the broker, unknown to the journal")
    return lines
