"""The ``services.heartbeat`` section: the heartbeat's own settings, the watchdog's thresholds
(``watchdog:``) and what preflight checks against (``clock_url``).

The config's top level admits only the kernel's keys, so the watchdog's thresholds live inside
the heartbeat's section: the watchdog reads the file the heartbeat writes, and both take the
same section from the same config.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tradebot_core import PluginSettings
from tradebot_core.config import ConfigError, LoadedConfig, format_validation_error

HEARTBEAT_FILE = "heartbeat.json"
WATCHDOG_STATE_FILE = "watchdog.json"


class WatchdogThresholds(BaseModel):
    """``services.heartbeat.watchdog``: when ``tradebot watchdog`` alerts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check_every_s: float = Field(default=5.0, gt=0)
    """Seconds between two looks at the heartbeat file."""
    stale_after_s: float = Field(default=30.0, gt=0)
    """A heartbeat older than this while the CME session is open is a stall (the heartbeat is
    written every ``interval_s``: keep this a few intervals). A closed market is not a stall."""
    max_rss_mb: float = Field(default=2048.0, gt=0)
    """The bot's resident memory, MB."""
    max_memory_pct: float = Field(default=90.0, ge=0, le=100)
    """The machine's memory in use, percent."""
    max_disk_pct: float = Field(default=90.0, ge=0, le=100)
    """The disk holding the journal, percent used (alert at or above)."""
    max_feed_reconnects: int = Field(default=5, ge=0)
    """Feed reconnects in the bot's current run (the heartbeat's count) above which to alert."""
    report_at: time = time(16, 5)
    """Exchange time (ET) after which the end-of-day health report is sent, once a trading day."""
    repeat_after_s: float = Field(default=1800.0, gt=0)
    """An alert whose cause persists is sent again after this long."""

    @field_validator("report_at", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> Any:
        """``16:05`` unquoted is YAML 1.1's base-60 integer 965: read it as the time it shows."""
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return time(*divmod(value, 60))
        if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
            hours, minutes = (int(p) for p in value.strip().split(":"))
            return time(hours, minutes)
        return value


class HeartbeatSettings(PluginSettings):
    """``services.heartbeat``."""

    interval_s: float = Field(default=5.0, gt=0)
    """Seconds between two writes of the heartbeat file."""
    path: Path | None = None
    """The heartbeat file; default ``heartbeat.json`` in the journal's folder."""
    clock_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    """Preflight compares the local clock with this URL's HTTP ``Date`` header; none: not
    checked."""
    watchdog: WatchdogThresholds = WatchdogThresholds()


def heartbeat_path(settings: HeartbeatSettings, journal_path: str | Path) -> Path:
    return settings.path or Path(journal_path).parent / HEARTBEAT_FILE


def ops_settings(loaded: LoadedConfig) -> HeartbeatSettings:
    """The ``services.heartbeat`` section of a config (defaults when it is absent)."""
    raw = loaded.config.services.get("heartbeat") or {}
    try:
        return HeartbeatSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, loaded, ("services", "heartbeat"))) from None
