"""Does the status page slow trading? A max-speed demo session with and without a crowd of clients.

Plays the same demo session (``tradebot.yaml`` with ``feed.speed=max``, 750,000 trades: a
session; the status page on a free port with a token, no notifiers) through
``tradebot_core.Pipeline`` in this process, three ways:

- ``no page``: ``services`` without the status page (the watchdog only);
- ``(a) page, no clients``: the page listening, nobody connected;
- ``(b) page + load``: 200 WebSocket clients that connect and never read, 200 that read
  everything, and 50 REST pollers that fetch ``/api/session/status``, ``/api/trades`` and
  ``/api/signals`` then wait 10 ms, over and over.

The clients run in a subprocess of their own (this script with ``--clients``, its own event loop,
aiohttp's client, loopback only); they are all connected before the session starts and stop by
themselves when the session ends (or after ``--client-seconds`` at most). The timed part is the
trading: from the feed's first item (the session is generated before, not timed) to the end of
the run (``SYSTEM_STOP``), start-up and shutdown excluded. With two or more CPUs, this process
(trading loop, page, journal thread) is pinned to one and the client process to another.

Prints the wall time of each way (the best and the median of ``--repeat`` runs, interleaved), the
ratio b/a (the median of each round's ratio, which a slow spell of a shared machine hits on both
sides; the bound: 1.2 at most), whether the run summaries (bars, signals, orders, trades,
net P&L) are identical, what the clients got, and the largest per-client queue the page held.

    python benchmarks/status_load.py [--trades 750000] [--repeat 5] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import aclosing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "status-load-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PATHS = ("/api/session/status", "/api/trades", "/api/signals")
SUMMARY = ("bars", "signals", "orders", "trades", "net_pnl")


# -- the clients (a process of their own) ----------------------------------------------------------


async def run_clients(
    url: str, silent: int, readers: int, pollers: int, period: float, max_seconds: float
) -> dict[str, Any]:
    """Connect every WebSocket client, say ``ready`` on stdout, load the page until stdin says
    stop (or closes) or ``max_seconds`` pass, then report what the clients got."""
    import aiohttp

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.call_later(max_seconds, stop.set)

    def on_stdin() -> None:  # "stop", or the pipe closed
        sys.stdin.buffer.readline()
        stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    stats: dict[str, Any] = {
        "ws_messages": 0,
        "ws_bytes": 0,
        "requests": 0,
        "request_errors": 0,
        "statuses": {},
    }
    ws_url = url.replace("http://", "ws://") + "/ws"
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as http:
        sockets: list[Any] = []
        for start in range(0, silent + readers, 50):  # in waves: the listen backlog is 128
            count = min(50, silent + readers - start)
            sockets += await asyncio.gather(
                *(http.ws_connect(ws_url, headers=AUTH, max_msg_size=0) for _ in range(count))
            )
        quiet, reading = sockets[:silent], sockets[silent:]

        async def read(ws: Any) -> None:
            async for message in ws:
                stats["ws_messages"] += 1
                stats["ws_bytes"] += len(message.data)

        async def poll() -> None:
            while not stop.is_set():
                for path in PATHS:
                    try:
                        async with http.get(url + path) as response:
                            await response.read()
                            key = str(response.status)
                            stats["statuses"][key] = stats["statuses"].get(key, 0) + 1
                    except aiohttp.ClientError:
                        stats["request_errors"] += 1
                    stats["requests"] += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), period)

        health: list[float] = []

        async def probe() -> None:  # what a watchdog sees: GET / every 50 ms, its latency
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    async with http.get(url + "/") as response:
                        await response.read()
                    health.append(time.perf_counter() - started)
                except aiohttp.ClientError:
                    stats["request_errors"] += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.05)

        print(json.dumps({"ready": len(sockets)}), flush=True)
        started = time.perf_counter()
        tasks = [asyncio.create_task(read(ws)) for ws in reading]
        tasks += [asyncio.create_task(poll()) for _ in range(pollers)]
        tasks.append(asyncio.create_task(probe()))
        await stop.wait()
        stats["seconds"] = round(time.perf_counter() - started, 3)
        stats["health_s"] = health
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in quiet + reading), return_exceptions=True)
    loop.remove_reader(sys.stdin.fileno())
    return stats


def clients_main(args: argparse.Namespace) -> None:
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    stats = asyncio.run(
        run_clients(
            args.clients, args.silent, args.readers, args.pollers, args.period, args.client_seconds
        )
    )
    stats["cpu"] = sorted(os.sched_getaffinity(0))
    print(json.dumps(stats), flush=True)


# -- the session ---------------------------------------------------------------------------------


def config_overrides(trades: int, page: bool, extra: list[str]) -> list[str]:
    services = (
        f"services={{status_page: {{port: 0, token: {TOKEN}}}, watchdog: {{}}}}"
        if page
        else "services={watchdog: {}}"
    )
    return [
        "feed.plugin=demo",
        "feed.speed=max",
        f"feed.demo.trades_per_session={trades}",
        "notifiers={}",
        services,
        *extra,
    ]


async def session(
    args: argparse.Namespace, page: bool, load: bool, journal: Path
) -> dict[str, Any]:
    """One run; the clients (if ``load``) are connected before its first tick."""
    from tradebot_core import EventKind, Pipeline
    from tradebot_core.config import load_config
    from tradebot_core.plugins import PluginManager

    loaded = load_config(args.config, config_overrides(args.trades, page, args.set))
    pipeline = Pipeline(loaded, PluginManager(), journal_path=journal)
    gate = asyncio.Event()
    times: dict[str, float] = {}
    stream = pipeline.feed.stream

    def page_cpu() -> float:
        """CPU seconds the page's thread has used (its own clock, read from this thread)."""
        thread = status_page._thread if status_page is not None else None
        if thread is None or thread.ident is None:
            return 0.0
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))

    async def gated() -> Any:
        async with aclosing(stream()) as items:
            async for item in items:  # the first item comes once the session is generated
                if "start" not in times:
                    await gate.wait()
                    times["start"] = time.perf_counter()
                    times["page_cpu_start"] = page_cpu()
                yield item

    pipeline.feed.stream = gated
    status_page = next((s for s in pipeline.services if s.name == "status_page"), None)
    largest = {"queue": 0, "bars": 0}
    proc: asyncio.subprocess.Process | None = None

    def measure_queues() -> None:
        if status_page is not None:
            for client in list(status_page.clients):
                largest["queue"] = max(largest["queue"], client.most)
                largest["bars"] = max(largest["bars"], client.bars)

    def on_stop(event: Any) -> None:
        times.setdefault("end", time.perf_counter())
        times.setdefault("page_cpu_end", page_cpu())
        measure_queues()
        if proc is not None and proc.stdin is not None:  # the clients go, the page stops fast
            proc.stdin.write(b"stop\n")

    pipeline.bus.subscribe(on_stop, [EventKind.SYSTEM_STOP])
    run = asyncio.create_task(pipeline.run())
    if status_page is not None:
        while not (status_page.port and status_page._runner is not None):
            if run.done():
                raise RuntimeError(f"the run ended before the page started: {run.result()}")
            await asyncio.sleep(0.01)
    if load:
        assert status_page is not None
        command = [sys.executable, __file__, "--clients", f"http://127.0.0.1:{status_page.port}"]
        command += ["--silent", str(args.silent), "--readers", str(args.readers)]
        command += ["--pollers", str(args.pollers), "--period", str(args.period)]
        command += ["--client-seconds", str(args.client_seconds)]
        if args.client_cpu is not None:
            command += ["--cpu", str(args.client_cpu)]
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None
        ready = json.loads(await proc.stdout.readline())
        for _ in range(500):  # the page has taken every WebSocket
            if len(status_page.clients) >= ready["ready"]:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(args.settle)  # the pollers polling, the handshakes paid off

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.05)
            measure_queues()

    sampler = asyncio.create_task(sample())
    gate.set()
    summary = await run
    sampler.cancel()
    clients: dict[str, Any] | None = None
    if proc is not None:
        assert proc.stdout is not None and proc.stdin is not None
        out = await proc.stdout.read()
        proc.stdin.close()
        await proc.wait()
        clients = json.loads(out.decode().strip().splitlines()[-1])
    return {
        "wall": times["end"] - times["start"],
        "page_cpu": times.get("page_cpu_end", 0.0) - times.get("page_cpu_start", 0.0),
        "summary": {key: str(getattr(summary, key)) for key in SUMMARY},
        "exit": summary.exit,
        "ticks": summary.ticks,
        "largest_queue": largest,
        "client_queue": status_page.settings.client_queue if status_page else None,
        "clients": clients,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "tradebot.yaml"))
    parser.add_argument("--trades", type=int, default=750_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each way, interleaved")
    parser.add_argument("--set", action="append", default=[], help="another config override")
    parser.add_argument("--silent", type=int, default=200, help="WebSockets that never read")
    parser.add_argument("--readers", type=int, default=200, help="WebSockets that read all")
    parser.add_argument("--pollers", type=int, default=50, help="REST pollers")
    parser.add_argument("--period", type=float, default=0.01, help="a poller's pause, seconds")
    parser.add_argument("--client-seconds", type=float, default=120.0, help="clients' deadline")
    parser.add_argument(
        "--settle", type=float, default=1.0, help="seconds of load before the session starts"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--profile", help="cProfile the loaded runs into this file")
    parser.add_argument("--clients", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients:
        clients_main(args)
        return

    cpus = sorted(os.sched_getaffinity(0))
    args.client_cpu = None
    if len(cpus) >= 2 and not args.no_pin:
        os.sched_setaffinity(0, {cpus[0]})
        args.client_cpu = cpus[1]
        where = (
            f"trading loop + status page + journal thread pinned to CPU {cpus[0]}; "
            f"client process pinned to CPU {cpus[1]} (of {len(cpus)} CPUs)"
        )
    else:
        where = f"nothing pinned: trading and clients share {len(cpus)} CPU(s)"
    print(f"{os.cpu_count()} CPUs: {where}")
    print(
        f"session: {args.trades:,} demo trades at feed.speed=max; load (b): {args.silent} "
        f"silent WebSockets, {args.readers} reading WebSockets, {args.pollers} REST pollers "
        f"({', '.join(PATHS)} then {args.period * 1000:g} ms pause)"
    )

    from tradebot_core import calendar

    calendar.trading_date_of(time.time_ns())  # built once per process: not in the first run
    ways = {"no page": (False, False), "(a) page, no clients": (True, False)}
    ways["(b) page + load"] = (True, True)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in ways}
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    for round_ in range(args.repeat + 1):  # round 0 warms up (imports, caches): not counted
        for name, (page, load) in ways.items():
            with tempfile.TemporaryDirectory() as tmp:
                if profiler is not None and load:
                    profiler.enable()
                result = asyncio.run(session(args, page, load, Path(tmp) / "journal.db"))
                if profiler is not None and load:
                    profiler.disable()
            if round_:
                results[name].append(result)
                print(
                    f"  run {round_} {name}: {result['wall']:.3f} s ({result['exit']}), "
                    f"page thread CPU {result['page_cpu'] * 1000:.0f} ms "
                    f"({result['page_cpu'] / result['wall']:.0%} of the run)"
                )
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"profile of the loaded runs: {args.profile}")

    print()
    best = {name: min(r["wall"] for r in runs) for name, runs in results.items()}
    median = {name: statistics.median(r["wall"] for r in runs) for name, runs in results.items()}
    for name, runs in results.items():
        ticks = runs[0]["ticks"]
        print(
            f"{name:22} best {best[name]:.3f} s ({ticks / best[name]:,.0f} ticks/s), "
            f"median {median[name]:.3f} s"
        )
    a, b = "(a) page, no clients", "(b) page + load"
    ratio_best, ratio_median = best[b] / best[a], median[b] / median[a]
    # each round's b over the same round's a: a slow spell of the machine hits both
    paired = statistics.median(
        rb["wall"] / ra["wall"] for ra, rb in zip(results[a], results[b], strict=True)
    )
    verdict = "within" if paired <= 1.2 else "ABOVE"
    print(
        f"ratio b/a: {paired:.3f} median of the rounds' ratios ({verdict} the 1.2 bound); "
        f"{ratio_best:.3f} best over best, {ratio_median:.3f} median over median; "
        f"a/no page: {best[a] / best['no page']:.3f}"
    )
    summaries = [r["summary"] for runs in results.values() for r in runs]
    same = all(s == summaries[0] for s in summaries)
    print(
        f"results identical in all {len(summaries)} runs: {same} "
        + ", ".join(f"{k} {v}" for k, v in summaries[0].items())
    )
    if not same:
        for name, runs in results.items():
            for r in runs:
                print(f"  {name}: {r['summary']}")
    loaded = results[b]
    clients = [r["clients"] for r in loaded]
    seconds = sum(c["seconds"] for c in clients)
    requests = sum(c["requests"] for c in clients)
    statuses: dict[str, int] = {}
    for c in clients:
        for key, count in c["statuses"].items():
            statuses[key] = statuses.get(key, 0) + count
    print(
        f"clients (CPU {clients[0]['cpu']}), per loaded run: "
        f"{sum(c['ws_messages'] for c in clients) / len(clients) / max(args.readers, 1):,.0f} "
        f"messages per reading WebSocket, {requests / len(clients):,.0f} REST requests "
        f"({requests / seconds:,.0f}/s while connected; statuses {statuses}, "
        f"errors {sum(c['request_errors'] for c in clients)})"
    )
    latencies = sorted(t for c in clients for t in c["health_s"])
    if latencies:

        def quantile(q: float) -> float:
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

        print(
            f"GET / (health, every 50 ms, {len(latencies)} answers): "
            f"p50 {quantile(0.5):.1f} ms, p99 {quantile(0.99):.1f} ms, "
            f"max {latencies[-1] * 1000:.1f} ms"
        )
    queue = max(r["largest_queue"]["queue"] for r in loaded)
    print(
        f"largest per-client queue the page held: {queue} messages "
        f"({max(r['largest_queue']['bars'] for r in loaded)} bars); "
        f"bound client_queue = {loaded[0]['client_queue']}"
    )
    if paired > 1.2 or not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
