"""How long does a whole ``tradebot`` process take, from exec to exit?

Times each command as a separate process (``subprocess``), median of ``--runs`` runs, and prints
a table: the interpreter floor (numpy, pydantic, click), ``tradebot --help``, ``tradebot plugins``,
``tradebot validate tradebot.yaml`` and a 750,000-trade session replayed from a DBN file
(``tradebot run`` with the file feed at full speed, no notifiers, no services, so no port is
opened). The DBN file is written once into a temporary directory from the demo feed's trades;
for the session the pipeline's own seconds (``wall_seconds`` of ``--summary-json``) are shown too.
Beside the wall-clock seconds, the CPU seconds (user + system) of the median run: on a loaded
machine they vary less than the wall clock. ``--no-session``: the start-up commands only.

    python benchmarks/startup.py [--runs 5] [--trades 750000] [--no-session]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2024, 11, 13)
SYMBOL = "MES"
RAW_SYMBOL = "MESZ4"
INSTRUMENT_ID = 42_140_878


def write_session_dbn(path: Path, trades: int) -> int:
    """A zstd DBN file (``trades`` schema) of one demo session; the number of trades."""
    import databento_dbn
    import zstandard
    from tradebot_plugins.feeds.demo import DemoSettings, generate_session

    from tradebot_core.instruments import InstrumentRegistry

    settings = DemoSettings(trades_per_session=trades)
    ticks = generate_session(settings, InstrumentRegistry()[SYMBOL], DAY, seed=7)
    dtype = np.dtype(databento_dbn.TradeMsg._dtypes)
    records = np.zeros(len(ticks), dtype=dtype)
    records["length"] = dtype.itemsize // 4
    records["rtype"] = 0x00  # trades
    records["publisher_id"] = 1
    records["instrument_id"] = INSTRUMENT_ID
    records["ts_event"] = ticks["ts_event"]
    records["ts_recv"] = ticks["ts_event"]
    records["price"] = ticks["price"]
    records["size"] = ticks["size"]
    records["action"] = b"T"
    records["side"] = np.where(ticks["side"] > 0, b"B", np.where(ticks["side"] < 0, b"A", b"N"))
    records["sequence"] = np.arange(len(ticks), dtype=np.uint32)
    day_ns = (DAY - date(1970, 1, 1)).days * 86_400 * 10**9
    start, end = int(ticks["ts_event"][0]), int(ticks["ts_event"][-1]) + 1
    interval_start = date.fromordinal(DAY.toordinal() - 1)
    interval_end = date.fromordinal(DAY.toordinal() + 1)
    mapping = type("Mapping", (), {})()
    mapping.raw_symbol = RAW_SYMBOL
    interval = type("Interval", (), {})()
    interval.start_date, interval.end_date = interval_start, interval_end
    interval.symbol = str(INSTRUMENT_ID)
    mapping.intervals = [interval]
    metadata = databento_dbn.Metadata(
        dataset="GLBX.MDP3",
        start=min(start, day_ns),
        end=end,
        stype_in=databento_dbn.SType.RAW_SYMBOL,
        stype_out=databento_dbn.SType.INSTRUMENT_ID,
        schema=databento_dbn.Schema.TRADES,
        symbols=[RAW_SYMBOL],
        partial=[],
        not_found=[],
        mappings=[mapping],
        ts_out=False,
        version=databento_dbn.DBN_VERSION,
    )
    body = metadata.encode() + records.tobytes()
    path.write_bytes(zstandard.ZstdCompressor().compress(body))
    return len(records)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], runs: int, cwd: Path) -> list[tuple[float, float]]:
    """(wall seconds, CPU seconds) of each run."""
    times = []
    for _ in range(runs):
        cpu0, t0 = _children_cpu(), time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
        times.append((time.perf_counter() - t0, _children_cpu() - cpu0))
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command; the median shows")
    parser.add_argument("--trades", type=int, default=750_000)
    parser.add_argument("--config", default=str(ROOT / "tradebot.yaml"))
    parser.add_argument("--no-session", action="store_true", help="skip the 750,000-trade run")
    args = parser.parse_args()

    tradebot = shutil.which("tradebot")
    if tradebot is None:
        sys.exit("no tradebot command on PATH (pip install -e .)")
    with tempfile.TemporaryDirectory(prefix="tradebot-startup-") as tmp_name:
        tmp = Path(tmp_name)
        dbn = tmp / "session.trades.dbn.zst"
        trades = 0 if args.no_session else write_session_dbn(dbn, args.trades)
        summary = tmp / "summary.json"
        run = [
            tradebot,
            "run",
            args.config,
            "--set",
            "feed.plugin=file",
            "--set",
            f"feed.file.path={dbn}",
            "--set",
            "feed.speed=max",
            "--set",
            "notifiers={}",
            "--set",
            "services={}",
            "--journal",
            str(tmp / "journal.db"),
            "--summary-json",
            str(summary),
            "-q",
        ]
        commands = [
            (
                "floor: python3 -c 'import numpy, pydantic, click'",
                [sys.executable, "-c", "import numpy, pydantic, click"],
            ),
            ("tradebot --help", [tradebot, "--help"]),
            ("tradebot plugins", [tradebot, "plugins"]),
            ("tradebot validate tradebot.yaml", [tradebot, "validate", args.config]),
        ]
        if not args.no_session:
            commands.append((f"tradebot run: {trades:,}-trade DBN file session", run))
        rows: list[tuple[str, float, float, float, float | None]] = []
        pipeline_seconds: list[float] = []
        for label, argv in commands:
            times: list[tuple[float, float]] = []
            for _ in range(args.runs):
                times += timed(argv, 1, ROOT)
                if argv is run:
                    (tmp / "journal.db").unlink(missing_ok=True)
                    pipeline_seconds.append(float(json.loads(summary.read_text())["wall_seconds"]))
            walls = [wall for wall, _ in times]
            _, cpu = sorted(times)[len(times) // 2]  # the median run's
            rows.append((label, statistics.median(walls), min(walls), max(walls), cpu))
        if pipeline_seconds:
            rows.append(
                (
                    "  of which the pipeline (summary wall_seconds)",
                    statistics.median(pipeline_seconds),
                    min(pipeline_seconds),
                    max(pipeline_seconds),
                    None,
                )
            )
        ticks = json.loads(summary.read_text()).get("ticks") if pipeline_seconds else None

    width = max(len(label) for label, *_ in rows)
    print(
        f"{'command':<{width}}  {'median s':>8}  {'min s':>6}  {'max s':>6}  {'cpu s':>6}"
        f"   ({args.runs} runs)"
    )
    for label, median, low, high, cpu_s in rows:
        cpu_text = "" if cpu_s is None else f"{cpu_s:>6.3f}"
        print(f"{label:<{width}}  {median:>8.3f}  {low:>6.3f}  {high:>6.3f}  {cpu_text}")
    if ticks is not None:
        print(f"session: {ticks:,} ticks played")


if __name__ == "__main__":
    main()
