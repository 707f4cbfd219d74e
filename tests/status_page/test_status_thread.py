"""The page runs in a thread of its own and keeps to its CPU share: its health answers while the
trading loop is stuck, reads of the run's state wait for that loop, and the budget holds the
thread to ``share`` of a CPU while trading is busy, more while trading waits for ticks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import tradebot_plugins.services._status_stream as stream
from status_page.queued import AUTH, feed, minutes
from tradebot_plugins.services._status_stream import CpuBudget


def fetch(url: str, timeout: float = 5, after: float = 0.0) -> tuple[float, int, Any]:
    """(seconds it took, status, JSON body), with the standard library (no event loop), asked
    ``after`` seconds from now."""
    time.sleep(after)
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return time.monotonic() - started, response.status, json.loads(response.read())


def in_thread(call: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call(*args)), daemon=True)
    thread.start()
    return thread, out


async def test_health_answers_while_the_trading_loop_is_stuck(live):
    await feed(minutes(0, 3), live.pipeline)
    assert live.page._thread is not threading.current_thread() and live.page._thread.is_alive()
    health, health_out = in_thread(fetch, live.url + "/", 5, 0.5)
    status, status_out = in_thread(fetch, live.url + "/api/session/status", 5, 0.1)
    time.sleep(1.0)  # the trading loop (this test's loop) is stuck for a second
    stuck_until = time.monotonic()
    await asyncio.to_thread(health.join, 5)  # the loop runs again: the status read can answer
    await asyncio.to_thread(status.join, 5)
    assert health_out and status_out, "a request got no answer"
    (health_took, health_code, body), (status_took, status_code, state) = (
        health_out[0],
        status_out[0],
    )
    assert health_code == 200 and body["status"] == "ok"
    assert health_took < 0.4  # answered by the page's thread while trading was stuck
    assert 0.5 <= body["last_batch_age_s"] < 5  # and it shows how long trading has been quiet
    assert status_code == 200 and state["summary"]["bars"] == live.pipeline.summary.bars
    assert status_took >= 0.8  # read on the trading loop, once it ran again
    assert time.monotonic() >= stuck_until


async def test_a_status_read_is_shared_until_something_changes(live, monkeypatch):
    reads: list[int] = []
    real = live.page.status_state

    def counting() -> dict[str, Any]:
        reads.append(live.pipeline.last_ts_ns)
        return real()

    monkeypatch.setattr(live.page, "status_state", counting)
    await feed(minutes(0, 2), live.pipeline)
    loop = asyncio.get_running_loop()
    first = [await loop.run_in_executor(None, fetch, live.url + "/api/session/status")]
    first += [await loop.run_in_executor(None, fetch, live.url + "/api/session/status")]
    assert len(reads) == 1 and first[0][2] == first[1][2]  # nothing happened: one read
    await feed(minutes(2, 1), live.pipeline)
    _, _, after = await loop.run_in_executor(None, fetch, live.url + "/api/session/status")
    assert len(reads) == 2 and after["summary"]["bars"] > first[0][2]["summary"]["bars"]


class FakeClock:
    """``time`` for :class:`CpuBudget`: the page's CPU clock, the trading thread's CPU clock
    and the wall clock, moved by the test; ``sleep`` moves the wall clock (and trading's, if
    trading is busy: it runs while the page sleeps)."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.page_cpu = 10.0
        self.trading_cpu = 50.0
        self.trading_busy = False  # trading runs while the page sleeps (a max-speed replay)
        self.slept: list[float] = []

    def perf_counter(self) -> float:
        return self.wall

    def thread_time(self) -> float:
        return self.page_cpu

    def process_time(self) -> float:
        return self.page_cpu + self.trading_cpu

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.wall += seconds
        if self.trading_busy:
            self.trading_cpu += seconds

    def work(self, page: float, trading: float, wall: float) -> None:
        self.page_cpu += page
        self.trading_cpu += trading
        self.wall += wall


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(stream, "time", fake)
    return fake


def test_the_budget_holds_the_page_to_its_share_while_trading_is_busy(clock):
    budget = CpuBudget(share=0.05, burst=0.01, idle_share=0.5)
    budget.restart()
    clock.trading_busy = True
    for _ in range(1000):  # the page wants 2 ms in every 10 ms; trading takes the rest
        clock.work(page=0.002, trading=0.008, wall=0.010)
        budget.pace()
    wall = clock.wall - 100.0
    assert budget.spent == pytest.approx(2.0)
    assert budget.spent <= 0.05 * wall + 0.01 + 1e-9  # 5 % of the wall time, one burst more
    assert budget.slept == pytest.approx(sum(clock.slept)) and budget.pauses > 0


def test_the_page_may_use_what_trading_leaves_idle(clock):
    budget = CpuBudget(share=0.05, burst=0.01, idle_share=0.5)
    budget.restart()
    for _ in range(1000):  # a live session: trading uses 1 ms in 10; the page wants 3 ms
        clock.work(page=0.003, trading=0.001, wall=0.010)
        budget.pace()
    assert budget.pauses == 0  # 5 % + half of the 60 % idle covers 30 %: never slept
    budget_without = CpuBudget(share=0.05, burst=0.01, idle_share=0.0)  # no idle time taken
    budget_without.restart()
    for _ in range(100):
        clock.work(page=0.003, trading=0.001, wall=0.010)
        budget_without.pace()
    assert budget_without.pauses > 0 and budget_without.spent == pytest.approx(0.3)


def test_charged_cpu_of_other_threads_counts(clock):
    budget = CpuBudget(share=0.1, burst=0.01, idle_share=0.0)
    budget.restart()
    clock.work(page=0.0, trading=0.0, wall=0.001)
    budget.charge(0.05)  # a journal read in its thread
    assert budget.pace() == pytest.approx(
        0.4, abs=0.002
    )  # 4 cents of debt (a burst covered 1) at 10 %
    assert budget.debt() == 0 and max(clock.slept) == 0.05  # paid in slices of 50 ms


def test_a_page_in_debt_catches_up_faster_while_trading_waits(clock):
    budget = CpuBudget(share=0.05, burst=0.01, idle_share=0.5)
    budget.restart()
    clock.work(page=0.11, trading=0.0, wall=0.11)  # 100 ms past the burst
    assert budget.pace() == pytest.approx(0.2, abs=0.051)  # at 55 %, not 2 s at 5 %


async def test_a_change_made_while_a_status_read_waits_is_not_hidden_by_it(live):
    """A status read queued on the trading loop before a settings change answers the old state;
    it must not become the cached answer (no tick or event follows to change the key)."""
    await feed(minutes(0, 2), live.pipeline)
    url = live.url

    def change() -> int:
        body = json.dumps({"max_position": 3}).encode()
        headers = {**AUTH, "Content-Type": "application/json"}
        request = urllib.request.Request(url + "/api/settings", body, headers, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status

    reader, read_out = in_thread(fetch, url + "/api/session/status", 5, 0.1)
    changer, change_out = in_thread(lambda: (time.sleep(0.3), change())[1])
    time.sleep(0.6)  # the trading loop is busy: the read, then the change, queue up in order
    await asyncio.to_thread(reader.join, 5)
    await asyncio.to_thread(changer.join, 5)
    assert change_out == [200] and read_out[0][2]["risk"]["max_position"] == 1  # read before
    _, _, after = await asyncio.to_thread(fetch, url + "/api/session/status")
    assert after["risk"]["max_position"] == 3


class ViewStub:
    def subscribe(self, callback, kinds=None) -> None:
        pass

    def unsubscribe(self, callback) -> None:
        pass


class RunStub:
    view = ViewStub()


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.05, 0.5])
async def test_a_cancelled_start_leaves_no_page_behind(delay):
    from tradebot_plugins.services.status_page import StatusPage, StatusPageSettings

    page = StatusPage(StatusPageSettings(port=0), None)
    starting = asyncio.create_task(page.start(RunStub()))
    await asyncio.sleep(delay)
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    await page.stop()
    for _ in range(100):
        if not any(t.name == "status-page" for t in threading.enumerate()):
            break
        await asyncio.sleep(0.02)
    assert not [t for t in threading.enumerate() if t.name == "status-page"]
    if page.port:  # it had bound a port: nothing listens there any more
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", page.port), timeout=1).close()


def test_the_risk_state_a_reader_gets_is_a_copy():
    from tradebot_core.risk import RiskState

    state = RiskState(by_pattern={"absorption": ["1", "12.50"]})
    shown = state.to_dict()
    state.by_pattern["exhaustion"] = ["1", "-3.00"]
    state.by_pattern["absorption"][0] = "2"
    assert shown["by_pattern"] == {"absorption": ["1", "12.50"]}


async def test_no_journal_read_starts_once_the_page_is_stopping(live):
    """The run closes the journal after its services stop: a read the page started then would
    reopen it, or a deleted file."""
    await feed(minutes(0, 2), live.pipeline)
    live.page._closing = True
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(fetch, live.url + "/api/trades")
    assert refused.value.code == 503 and b"stopping" in refused.value.read()
    live.page._closing = False
