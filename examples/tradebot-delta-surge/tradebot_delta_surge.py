"""``delta_surge``: a bar where one side did almost all the aggressing.

Rule: ``|delta| / volume >= min_share`` and ``volume >= min_volume`` on the bar that just closed;
the signal goes with the surge (buyers -> LONG), its strength is the share.

A complete third-party tradebot plugin: a settings model, a detector class, one hook.
"""

from __future__ import annotations

from pydantic import Field

from tradebot_core import (
    Direction,
    FootprintHistory,
    PluginContext,
    PluginSettings,
    Signal,
    hookimpl,
)


class DeltaSurgeSettings(PluginSettings):
    min_share: float = Field(default=0.6, gt=0, le=1)
    """|delta| / volume at or above which the bar counts as a surge."""
    min_volume: int = Field(default=500, ge=1)


class DeltaSurge:
    name = "delta_surge"
    Settings = DeltaSurgeSettings

    def __init__(self, settings: DeltaSurgeSettings, context: PluginContext) -> None:
        self.settings = settings

    def on_bar_closed(self, history: FootprintHistory) -> list[Signal]:
        bar = history.bars[-1]
        volume, delta = int(bar["volume"]), int(bar["delta"])
        if volume < self.settings.min_volume:
            return []
        share = abs(delta) / volume
        if share < self.settings.min_share:
            return []
        direction = Direction.LONG if delta > 0 else Direction.SHORT
        return [
            Signal(
                pattern="delta_surge",
                direction=direction,
                price=history.price(int(bar["close"])),
                bar_ts_ns=int(bar["ts_open"]),
                strength=min(1.0, share),
                reason=f"delta {delta:+d} of {volume} traded ({share:.0%})",
                detector=self.name,
            )
        ]


@hookimpl
def register_detectors(register):
    register(DeltaSurge)
