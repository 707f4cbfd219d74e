"""Per-bar cost of the six detectors: a demo MES session (5-minute bars) and the real ES sample.

Run by hand (pytest does not collect it): ``python tests/detectors/bench_detectors.py``. Bars are
released one at a time, as in the pipeline; each pass builds fresh detectors, so every bar is
seen cold; the best of 7 passes is reported.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import date
from pathlib import Path

import databento as db
import numpy as np
from tradebot_plugins.detectors import (
    absorption,
    delta_divergence,
    exhaustion,
    imbalance,
    stacked_imbalance,
    unfinished_business,
)
from tradebot_plugins.feeds.dbn_ticks import records_to_ticks
from tradebot_plugins.feeds.demo import DemoSettings, generate_session

from tradebot_core.footprint import FootprintEngine
from tradebot_core.instruments import Instrument, InstrumentRegistry

MODULES = (
    imbalance,
    stacked_imbalance,
    exhaustion,
    absorption,
    delta_divergence,
    unfinished_business,
)
SAMPLE = "databento/esh4-glbx-mdp3-20231225.mbo.dbn.zst"


def detector_classes() -> list[type]:
    found: list[type] = []
    for module in MODULES:
        module.register_detectors(found.append)
    return found


def one_pass(ticks: np.ndarray, instrument: Instrument, timeframe_s: int) -> tuple:
    detectors = [cls(cls.Settings(), None) for cls in detector_classes()]
    engine = FootprintEngine(instrument, timeframe_s)
    engine.update(ticks, reveal=False)
    engine.flush(reveal=False)
    spent = dict.fromkeys((d.name for d in detectors), 0.0)
    patterns: Counter[str] = Counter()
    prices = []
    while engine.staged:
        engine.release_next()
        history = engine.history
        prices.append(int(history.bars[-1]["level_count"]))
        history.levels(-1)  # the pipeline's bar event asks for the ladder first
        for detector in detectors:
            start = time.perf_counter()
            signals = detector.on_bar_closed(history)
            spent[detector.name] += time.perf_counter() - start
            patterns.update(s.pattern for s in signals)
    return spent, prices, patterns


def report(title: str, ticks: np.ndarray, instrument: Instrument, timeframe_s: int) -> None:
    passes = [one_pass(ticks, instrument, timeframe_s) for _ in range(7)]
    spent, prices, patterns = min(passes, key=lambda p: sum(p[0].values()))
    bars = len(prices)
    print(f"{title}: {bars} bars, prices per bar median {int(np.median(prices))} max {max(prices)}")
    for name, seconds in spent.items():
        print(f"  {name:22s} {seconds / bars * 1e6:6.1f} us/bar")
    total = sum(spent.values())
    print(
        f"  {'all six':22s} {total / bars * 1e6:6.1f} us/bar, {total * 1e3:.2f} ms per session,"
        f" {total / bars * 300 * 1e3:.1f} ms per 300 bars"
    )
    print(f"  signals: {dict(sorted(patterns.items()))}")


def main() -> None:
    registry = InstrumentRegistry()
    mes = registry["MES"]
    demo = generate_session(DemoSettings(), mes, date(2024, 11, 13))
    report("demo MES, 300 s bars", demo, mes, 300)
    data = Path(os.environ.get("TRADEBOT_TEST_DATA", Path(__file__).parents[1] / "data"))
    es = records_to_ticks(db.DBNStore.from_file(data / SAMPLE).to_ndarray())
    report("real ES sample, 60 s bars", es, registry["ES"], 60)


if __name__ == "__main__":
    main()
