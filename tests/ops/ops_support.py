"""Helpers of the ops tests: configs with the ``log`` notifier, heartbeat files."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

from tradebot_core.calendar import EXCHANGE_TZ


def ns_at(iso: str) -> int:
    """An exchange-time (ET) ISO time as ns UTC."""
    from datetime import datetime

    moment = datetime.fromisoformat(iso).replace(tzinfo=EXCHANGE_TZ)
    return int(moment.timestamp()) * 10**9


class OpsEnv:
    """A folder with a config (journal, heartbeat and alerts inside it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.journal = folder / "data" / "j.db"
        self.heartbeat = folder / "data" / "heartbeat.json"
        self.alerts_path = folder / "alerts.jsonl"
        self.config = folder / "tradebot.yaml"

    def write_config(self, watchdog: str = "", extra: str = "", heartbeat: str = "") -> Path:
        # memory limits out of reach: the machine running the tests must not set them off
        limits = "max_rss_mb: 1000000, max_memory_pct: 100, max_disk_pct: 100"
        self.config.write_text(
            textwrap.dedent(
                f"""
                symbol: MES
                feed: {{plugin: demo, speed: max, demo: {{trades_per_session: 2000}}}}
                account: {{tiers: []}}
                journal: {{path: {self.journal}}}
                notifiers: {{log: {{path: {self.alerts_path}, to_logging: false}}}}
                services:
                  heartbeat: {{interval_s: 5, {heartbeat}watchdog: {{{limits}{watchdog}}}}}
                """
            )
            + textwrap.dedent(extra)
        )
        return self.config

    def write_heartbeat(self, written_ns: int, pid: int | None = None, **fields: Any) -> None:
        self.heartbeat.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "pid": os.getpid() if pid is None else pid,
            "state": "ok",
            "last_tick_age_s": 0.5,
            "feed_connected": True,
            "feed_reconnects": 0,
            "net_position": 1,
            "day_realized": "125.00",
            "unrealized": "12.50",
            "rss_bytes": 150 * 1024 * 1024,
            "interval_s": 5,
            "written_ns": written_ns,
            **fields,
        }
        self.heartbeat.write_text(json.dumps(data))

    def alerts(self) -> list[dict[str, Any]]:
        if not self.alerts_path.exists():
            return []
        lines = self.alerts_path.read_text().splitlines()
        return [e for e in map(json.loads, lines) if e["kind"] == "watchdog"]

    def checks(self) -> list[str]:
        return [a["payload"]["check"] for a in self.alerts()]
