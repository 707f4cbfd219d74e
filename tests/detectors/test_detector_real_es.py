"""The detectors on the real ES session in ../shared/data, checked bar by bar against the rules
written out again in plain Python."""

from __future__ import annotations

import databento as db
import pytest

from plugins.detectors.imbalance import ImbalanceDetector, ImbalanceSettings
from plugins.detectors.stacked_imbalance import (
    StackedImbalanceDetector,
    StackedImbalanceSettings,
)
from plugins.detectors.unfinished_business import (
    UnfinishedBusinessDetector,
    UnfinishedBusinessSettings,
)
from plugins.feeds.dbn_ticks import records_to_ticks
from tradebot_core.footprint import FootprintEngine
from tradebot_core.instruments import InstrumentRegistry

ES = InstrumentRegistry()["ES"]


@pytest.fixture(scope="module")
def es_ticks(shared_data):
    store = db.DBNStore.from_file(shared_data / "databento" / "esh4-glbx-mdp3-20231225.mbo.dbn.zst")
    return records_to_ticks(store.to_ndarray())


def plain_levels(ticks, start_ns, end_ns):
    """{price_ticks: [bid, ask]} of one bar, trade by trade."""
    levels = {}
    for ts, price, size, side in ticks.tolist():
        if start_ns <= ts < end_ns:
            row = levels.setdefault(price // ES.tick_fixed, [0, 0])
            if side == -1:
                row[0] += size
            elif side == 1:
                row[1] += size
    return levels


def has_run(prices, low, high, length=3):
    run = best = 0
    for p in range(low, high + 1):
        run = run + 1 if p in prices else 0
        best = max(best, run)
    return best >= length


def test_imbalances_and_stacks_match_the_rules_bar_by_bar(es_ticks):
    settings = dict(ratio=3.0, min_volume=5)
    imbalance = ImbalanceDetector(ImbalanceSettings(**settings), None)
    stacked = StackedImbalanceDetector(StackedImbalanceSettings(levels=3, **settings), None)
    unfinished = UnfinishedBusinessDetector(UnfinishedBusinessSettings(), None)
    engine = FootprintEngine(ES, 60)
    engine.update(es_ticks, reveal=False)
    engine.flush(reveal=False)
    fired = 0
    while engine.staged:
        engine.release_next()
        history = engine.history
        bar = history.bars[-1]
        levels = plain_levels(es_ticks, int(bar["ts_open"]), int(bar["ts_close"]))
        low, high = min(levels), max(levels)
        bid = {p: levels.get(p, [0, 0])[0] for p in range(low, high + 1)}
        ask = {p: levels.get(p, [0, 0])[1] for p in range(low, high + 1)}
        buy = [p for p in range(low + 1, high + 1) if ask[p] >= 5 and ask[p] >= 3 * bid[p - 1]]
        sell = [p for p in range(low, high) if bid[p] >= 5 and bid[p] >= 3 * ask[p + 1]]
        found = {s.pattern for s in imbalance.on_bar_closed(history)}
        assert ("buy_imbalance" in found) == bool(buy)
        assert ("sell_imbalance" in found) == bool(sell)
        fired += len(found)

        stacks = {s.pattern for s in stacked.on_bar_closed(history)}
        assert ("stacked_buy_imbalance" in stacks) == has_run(set(buy), low, high)
        assert ("stacked_sell_imbalance" in stacks) == has_run(set(sell), low, high)
        # a one-price bar has no extreme to leave unfinished
        unfinished_found = {s.pattern for s in unfinished.on_bar_closed(history)}
        two_sided = high > low and min(bid[high], ask[high]) >= 1
        assert ("unfinished_business_high" in unfinished_found) == two_sided
        two_sided = high > low and min(bid[low], ask[low]) >= 1
        assert ("unfinished_business_low" in unfinished_found) == two_sided
    assert fired > 10
