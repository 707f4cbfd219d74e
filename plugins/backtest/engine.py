"""A backtest: many days in parallel, stitched into one account exactly.

Days run in parallel, each from an *assumed* starting balance. A day's result depends on its
balance only through the account tier (symbol and size) and the margin check, so after each wave
the days are walked in order with the *actual* balance: a day whose tiers along the way and margin
headroom would be the same keeps its result; any other day runs again from its actual balance.
Tier changes are rare, so a backtest takes one wave and a few re-runs, and its results equal a
run of the days one after another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from tradebot_core import InstrumentRegistry, LoadedConfig, __version__
from tradebot_core.account import Account
from tradebot_core.footprint import BarSet

from .jobs import DayJob, day_bars, run_day

Progress = Callable[[dict[str, Any], int, int], None]


@dataclass
class BacktestResult:
    config_hash: str
    code_version: str
    symbol: str
    start: date
    end: date
    starting_balance: Decimal
    days: list[dict[str, Any]] = field(default_factory=list)
    reruns: int = 0

    @property
    def trades(self) -> list[dict[str, Any]]:
        return [dict(t, day=d["day"]) for d in self.days for t in d["trades"]]

    @property
    def final_balance(self) -> Decimal:
        return Decimal(self.days[-1]["end_balance"]) if self.days else self.starting_balance

    @property
    def ticks(self) -> int:
        return sum(d["ticks"] for d in self.days)

    def to_json(self) -> str:
        """The results, byte-identical for the same config and data (no wall-clock values)."""
        days = [{k: v for k, v in d.items() if k != "wall_s"} for d in self.days]
        data = {
            "config_hash": self.config_hash,
            "code_version": self.code_version,
            "symbol": self.symbol,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "starting_balance": str(self.starting_balance),
            "final_balance": str(self.final_balance),
            "days": days,
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def config_hash(loaded: LoadedConfig) -> str:
    text = json.dumps(loaded.config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


DEFAULT_WARMUP_BARS = 600
"""Bars of the days before that warm each day: ADX/ATR (Wilder, 1/14 a bar) and the EMAs forget
what came before to well under 1e-15 in 600 bars, so a day warmed by them trades as it would in
one continuous run. None: every earlier day of the backtest."""


def run_backtest(
    loaded: LoadedConfig,
    days: list[date],
    executor: Any,
    progress: Progress | None = None,
    warmup_bars: int | None = DEFAULT_WARMUP_BARS,
    warm_days: Sequence[date] = (),
) -> BacktestResult:
    """Days in parallel: first every day's bars (no trading), then every day trades, warmed by
    the bars of the days before it, from an assumed balance; then the stitching below.
    ``warm_days``: days before ``days`` whose bars warm the first of them, never traded (a
    walk-forward window warmed by the days before it, as in one continuous run)."""
    cfg = loaded.config
    start_balance = cfg.account.starting_balance
    result = BacktestResult(
        config_hash=config_hash(loaded),
        code_version=__version__,
        symbol=cfg.symbol,
        start=days[0] if days else date.min,
        end=days[-1] if days else date.min,
        starting_balance=start_balance,
    )
    if not days:
        return result
    checker = _Reuse(loaded)
    warm = _warm_sets(loaded, days, executor, warmup_bars, warm_days)
    assumed = dict.fromkeys(days, start_balance)
    done: dict[date, dict[str, Any]] = {}
    wave = list(days)
    total = len(days)
    finished = 0
    while wave:
        jobs = [DayJob(loaded, day, assumed[day], warm[day]) for day in wave]
        for index, day_result in executor.map(run_day, jobs):
            done[wave[index]] = day_result
            finished += 1
            if progress is not None:
                progress(day_result, finished, total)
        # walk the days in order with the real balance; collect those to run again
        balance = start_balance
        wave = []
        for day in days:
            day_result = done[day]
            if not checker.reusable(day_result, balance):
                assumed[day] = balance
                wave.append(day)
                total += 1
            elif Decimal(day_result["start_balance"]) != balance:
                done[day] = day_result = _rebased(day_result, balance)
            balance += Decimal(day_result["net_pnl"])
        # the first stale day now runs from its exact balance; later ones from the best estimate,
        # checked again after this wave, so each wave settles at least one more day
        result.reruns += len(wave)
    result.days = [done[day] for day in days]
    return result


def _warm_sets(
    loaded: LoadedConfig,
    days: list[date],
    executor: Any,
    warmup_bars: int | None,
    warm_days: Sequence[date] = (),
) -> dict[date, BarSet | None]:
    """For each day, the last ``warmup_bars`` closed bars of the days before it (``warm_days``
    first, then the earlier ``days``)."""
    if warmup_bars == 0:
        return dict.fromkeys(days)
    earlier = sorted(set(warm_days) - set(days))
    if earlier and days and earlier[-1] > days[0]:
        raise ValueError(f"warm_days must come before the backtest's first day {days[0]}")
    ordered = [*earlier, *days]
    key = _bars_key(loaded)
    known = _DAY_BARS.setdefault(key, {})
    todo = [day for day in ordered if day not in known]
    jobs = [DayJob(loaded, day, Decimal(0)) for day in todo]
    for index, day_set in executor.map(day_bars, jobs):
        known[todo[index]] = day_set
    bars = {day: known[day] for day in ordered}
    warm: dict[date, BarSet | None] = {}
    for i, day in enumerate(ordered):
        if i < len(earlier):
            continue
        first = max(0, i - _days_needed(bars, ordered, i, warmup_bars))
        before = [bars[d] for d in ordered[first:i]]
        warm[day] = BarSet.concat(before, last=warmup_bars) if before else None
    return warm


_DAY_BARS: dict[str, dict[date, BarSet]] = {}
"""Days' bars already built in this process, by what they depend on: a walk-forward search runs
many backtests of the same days with other detector or router settings, and their bars are the
same."""


def _bars_key(loaded: LoadedConfig) -> str:
    """What a day's bars depend on: the feed (its ticks), the instrument, the bar length and the
    price band (which ticks are dropped); not the detectors, the regime, the router or risk."""
    cfg = loaded.config
    part = {
        "feed": cfg.feed.model_dump(mode="json"),
        "symbol": cfg.symbol,
        "timeframe_s": cfg.timeframe_s,
        "instruments": {k: v.model_dump(mode="json") for k, v in cfg.instruments.items()},
        "price_band_pct": str(cfg.risk.price_band_pct),
    }
    return json.dumps(part, sort_keys=True, default=str)


def _days_needed(bars: dict[date, BarSet], days: list[date], i: int, want: int | None) -> int:
    """How many days before day ``i`` hold ``want`` bars (all of them for None)."""
    if want is None:
        return i
    total, count = 0, 0
    for day in reversed(days[:i]):
        total += len(bars[day])
        count += 1
        if total >= want:
            break
    return count


def _rebased(day_result: dict[str, Any], balance: Decimal) -> dict[str, Any]:
    """A reusable day's result moved to the balance it really starts from."""
    shift = balance - Decimal(day_result["start_balance"])
    return {
        **day_result,
        "start_balance": str(balance),
        "end_balance": str(Decimal(day_result["end_balance"]) + shift),
        "tier_changes": [
            {**change, "balance": str(Decimal(change["balance"]) + shift)}
            for change in day_result["tier_changes"]
        ],
    }


class _Reuse:
    """Whether a day computed from one balance holds for another."""

    def __init__(self, loaded: LoadedConfig) -> None:
        cfg = loaded.config
        self.account = Account(cfg.account, cfg.symbol)
        instruments = InstrumentRegistry(cfg.extra_instruments())
        symbols = {cfg.symbol, *(tier.symbol for tier in self.account.tiers)}
        self.margin_floor = max(instruments[s].margin for s in symbols) * cfg.risk.max_position

    def reusable(self, day_result: dict[str, Any], actual: Decimal) -> bool:
        assumed = Decimal(day_result["start_balance"])
        if actual == assumed:
            return True
        if any("margin" in reason for reason in day_result["rejections"]):
            return False
        steps = [Decimal(trade["net_pnl"]) for trade in day_result["trades"]]
        # tiers follow the balance's path (hysteresis): compare the paths, not the endpoints
        if self.account.tiers_along(assumed, steps) != self.account.tiers_along(actual, steps):
            return False
        path = [Decimal("0")]
        for step in steps:
            path.append(path[-1] + step)
        return all(min(assumed + p, actual + p) >= self.margin_floor for p in path)
