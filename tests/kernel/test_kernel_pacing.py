"""Replay pace, on a virtual clock (so the test measures the schedule, not the machine)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tradebot_core import pacing
from tradebot_core.types import TICK_DTYPE, FeedStatus, FeedStatusKind, TickBatch

HOUR_NS = 3600 * 10**9


class VirtualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@pytest.fixture
def clock(monkeypatch):
    clock = VirtualClock()
    monkeypatch.setattr(pacing.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(pacing.asyncio, "sleep", clock.sleep)
    return clock


def hour_of_ticks(n=36_000, start_ns=0) -> np.ndarray:
    ticks = np.zeros(n, dtype=TICK_DTYPE)
    ticks["ts_event"] = start_ns + np.linspace(0, HOUR_NS, n).astype(np.int64)
    ticks["size"] = 1
    return ticks


async def source(items):
    for item in items:
        yield item


def play(items, speed):
    async def collect():
        return [item async for item in pacing.paced(source(items), speed)]

    return asyncio.run(collect())


@pytest.mark.parametrize("speed", [100, 3600, 1])
def test_an_hour_of_ticks_takes_an_hour_divided_by_speed(clock, speed):
    ticks = hour_of_ticks()
    started = clock.now
    out = play([TickBatch("ES", ticks[i : i + 5000]) for i in range(0, len(ticks), 5000)], speed)
    assert clock.now - started == pytest.approx(3600 / speed, rel=1e-6)
    replayed = np.concatenate([b.ticks for b in out])
    assert np.array_equal(replayed, ticks)


def test_slices_are_short_so_a_dashboard_sees_a_steady_flow(clock):
    ticks = hour_of_ticks()
    out = play([TickBatch("ES", ticks)], 100)
    spans = [(b.ticks["ts_event"][-1] - b.ticks["ts_event"][0]) / 1e9 / 100 for b in out]
    assert len(out) > 300
    assert max(spans) <= 0.1 + 1e-9


def test_the_night_between_sessions_is_not_waited_for(clock):
    day1, day2 = hour_of_ticks(), hour_of_ticks(start_ns=24 * HOUR_NS)
    items = [
        FeedStatus(kind=FeedStatusKind.SESSION_START, ts_ns=0),
        TickBatch("ES", day1),
        FeedStatus(kind=FeedStatusKind.SESSION_START, ts_ns=24 * HOUR_NS),
        TickBatch("ES", day2),
    ]
    started = clock.now
    play(items, 100)
    assert clock.now - started == pytest.approx(72, rel=1e-6)


def test_max_speed_never_sleeps(clock):
    started = clock.now
    out = play([TickBatch("ES", hour_of_ticks())], "max")
    assert clock.now == started and len(out) == 1
