"""Every footprint drawn in docs/patterns.md does what the page says it does."""

from __future__ import annotations

import re
from decimal import Decimal

from detectors.footprint_builder import BarSpec
from tradebot_plugins.detectors.absorption import AbsorptionDetector
from tradebot_plugins.detectors.delta_divergence import DeltaDivergenceDetector
from tradebot_plugins.detectors.exhaustion import ExhaustionDetector
from tradebot_plugins.detectors.imbalance import ImbalanceDetector
from tradebot_plugins.detectors.stacked_imbalance import StackedImbalanceDetector
from tradebot_plugins.detectors.unfinished_business import UnfinishedBusinessDetector

ROW = re.compile(r"^\s*(\d+\.\d+)\s+(\d+) x\s+(\d+)(.*)$")
CLAIM = re.compile(r"^=> (?:(not) (\w+)|(\w+) at (\d+\.\d+) \((LONG|SHORT)\))$")
DETECTOR_OF = {
    "buy_imbalance": ImbalanceDetector,
    "sell_imbalance": ImbalanceDetector,
    "stacked_buy_imbalance": StackedImbalanceDetector,
    "stacked_sell_imbalance": StackedImbalanceDetector,
    "buying_exhaustion": ExhaustionDetector,
    "selling_exhaustion": ExhaustionDetector,
    "buying_absorption": AbsorptionDetector,
    "selling_absorption": AbsorptionDetector,
    "unfinished_business_high": UnfinishedBusinessDetector,
    "unfinished_business_low": UnfinishedBusinessDetector,
}


def ladders(repo_root) -> list[tuple[BarSpec, list[tuple]]]:
    """The ``bid x ask`` code blocks of the page: each bar with its ``=>`` claims."""
    blocks, current = [], None
    for line in (repo_root / "docs" / "patterns.md").read_text().splitlines():
        if line.startswith("```") and current is None:
            current = []
        elif line.startswith("```"):
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    found = []
    for block in blocks:
        if "bid x ask" not in block[0]:
            continue
        levels, close, claims = {}, None, []
        for line in block[1:]:
            if row := ROW.match(line):
                price = Decimal(row[1])
                levels[price] = (int(row[2]), int(row[3]))
                if "<- close" in row[4]:
                    close = price
            elif claim := CLAIM.match(line):
                claims.append(claim.groups())
            else:
                raise AssertionError(f"docs/patterns.md: cannot read {line!r}")
        found.append((BarSpec(levels, close=close), claims))
    return found


BAR_ROW = re.compile(r"^\s*t(?:-\d+)?\s+(\S+)\s+(\S+)\s+([+-]\d+)\s+([+-]\d+)")


def test_the_delta_divergence_table_adds_up_and_fires(repo_root, footprint, detect):
    text = (repo_root / "docs" / "patterns.md").read_text()
    section = text[text.index("(`delta_divergence`)") :]
    rows = [m.groups() for line in section.splitlines() if (m := BAR_ROW.match(line))]
    assert len(rows) == 6
    bars = []
    for high, low, delta, _ in rows:
        prices = footprint.ticks_of(high) - footprint.ticks_of(low) + 1
        d = int(delta)  # the whole delta at the low, 50 x 50 everywhere else
        ladder_rows = [(50 + max(-d, 0), 50 + max(d, 0))] + [(50, 50)] * (prices - 1)
        low_price = Decimal(low)
        bars.append(
            BarSpec({low_price + Decimal("0.25") * i: r for i, r in enumerate(ladder_rows)})
        )
    history = footprint.history(*bars)
    assert history.bars["cum_delta"].tolist() == [int(r[3]) for r in rows]
    assert history.bars["high"].tolist() == [footprint.ticks_of(r[0]) for r in rows]
    claim = CLAIM.match(next(line for line in section.splitlines() if line.startswith("=>")))
    _, _, pattern, price, direction = claim.groups()
    signal = detect(DeltaDivergenceDetector, history)[pattern]
    assert (signal.price, signal.direction.name) == (Decimal(price), direction)


def test_the_page_draws_every_single_bar_pattern(repo_root):
    drawn = {c[2] for _, claims in ladders(repo_root) for c in claims if c[2]}
    assert drawn >= {
        "buy_imbalance",
        "stacked_buy_imbalance",
        "buying_exhaustion",
        "buying_absorption",
        "unfinished_business_high",
    }


def test_each_drawn_footprint_fires_as_claimed(repo_root, footprint, detect):
    drawn = ladders(repo_root)
    assert len(drawn) >= 6
    for bar, claims in drawn:
        history = footprint.history(bar)
        assert claims, bar
        for negated, absent, pattern, price, direction in claims:
            if negated:
                assert absent not in detect(DETECTOR_OF[absent], history), bar
                continue
            signal = detect(DETECTOR_OF[pattern], history)[pattern]
            assert (signal.price, signal.direction.name) == (Decimal(price), direction), bar
