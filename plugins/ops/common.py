"""What the ops commands share: the config, the files beside the journal, the time, notifiers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tradebot_core import Event
from tradebot_core.calendar import EXCHANGE_TZ
from tradebot_core.components import start_notifiers, stop_notifiers, wanted_kinds
from tradebot_core.config import LoadedConfig

from .settings import WATCHDOG_STATE_FILE, HeartbeatSettings, heartbeat_path, ops_settings

log = logging.getLogger(__name__)


@dataclass
class OpsConfig:
    loaded: LoadedConfig
    settings: HeartbeatSettings
    journal: Path
    heartbeat: Path

    @classmethod
    def of(cls, loaded: LoadedConfig) -> OpsConfig:
        settings = ops_settings(loaded)
        journal = Path(loaded.config.journal.path)
        return cls(loaded, settings, journal, heartbeat_path(settings, journal))

    @property
    def state_file(self) -> Path:
        return self.heartbeat.parent / WATCHDOG_STATE_FILE


def parse_now(text: str | None) -> int | None:
    """``--now``: an ISO time; without an offset it is exchange time (America/New_York)."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=EXCHANGE_TZ)
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def market_open(now_ns: int) -> bool:
    """Whether the CME Globex session is open at ``now_ns`` (closed: weekends, holidays, the
    17:00-18:00 ET daily break)."""
    from tradebot_core import calendar

    day = calendar.trading_date_of(now_ns)
    open_ns, close_ns = calendar.session_bounds(day)
    return open_ns <= now_ns < close_ns


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


class Notifiers:
    """The notifiers the config's ``notifiers:`` section selects, built outside a run."""

    def __init__(self, loaded: LoadedConfig) -> None:
        from tradebot_core import PluginContext, PluginManager
        from tradebot_core.instruments import InstrumentRegistry

        cfg = loaded.config
        manager = PluginManager()
        context = PluginContext(
            symbol=cfg.symbol,
            instruments=InstrumentRegistry(cfg.extra_instruments()),
            timeframe_s=cfg.timeframe_s,
            data_dir=Path(cfg.journal.path).parent,
            config=cfg,
        )
        self.items: list[Any] = [
            manager.build("notifier", name, raw, ("notifiers", name), context, loaded)
            for name, raw in cfg.notifiers.items()
        ]
        self._started: list[Any] = []

    async def start(self) -> None:
        await start_notifiers(self.items, self._started)

    def notify(self, event: Event) -> None:
        for notifier in self._started:
            kinds = wanted_kinds(notifier)
            if kinds is not None and event.kind not in kinds:
                continue
            try:
                notifier.notify(event)
            except Exception:
                log.exception("notifier %s failed", getattr(notifier, "name", "?"))

    async def stop(self) -> None:
        await stop_notifiers(self._started)
