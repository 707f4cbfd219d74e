"""The session core against what a real account throws at it: opposite signals, partial and
repeated fills, position caps, bad prints, the 15:55 flatten by the tick and by the wall clock."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import yaml
from kernel.scripted import make_ticks

from tradebot_core import (
    Broker,
    Detector,
    Direction,
    EventKind,
    Feed,
    FeedStatus,
    FeedStatusKind,
    Fill,
    OrderSide,
    OrderUpdate,
    PluginSettings,
    Signal,
    TickBatch,
    hookimpl,
)
from tradebot_core.testing import run_pipeline

ET = ZoneInfo("America/New_York")


def et(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2024, 11, 13, hour, minute, second, tzinfo=ET)


def ns(when: datetime) -> int:
    return int(when.timestamp() * 1e9)


def signal(history, direction: Direction, name: str) -> Signal:
    bar = history.bars[-1]
    return Signal(
        pattern=name,
        direction=direction,
        price=history.price(int(bar["close"])),
        bar_ts_ns=int(bar["ts_open"]),
        strength=1.0,
        reason=name,
        detector=name,
    )


class BothWays(Detector):
    """A long and a short signal on every bar: opposite signals in one bar."""

    name = "both_ways"

    def on_bar_closed(self, history):
        return [signal(history, Direction.LONG, "up"), signal(history, Direction.SHORT, "down")]


class Alternate(Detector):
    """Long on even bars, short on odd ones: opposite signals across bars."""

    name = "alternate"

    def on_bar_closed(self, history):
        direction = Direction.LONG if len(history) % 2 == 0 else Direction.SHORT
        return [signal(history, direction, direction.value)]


class AlwaysLong(Detector):
    name = "always_long"

    def on_bar_closed(self, history):
        return [signal(history, Direction.LONG, "long")]


class Detectors:
    @hookimpl
    def register_detectors(self, register):
        for cls in (BothWays, Alternate, AlwaysLong):
            register(cls)


def fills_of(result) -> list[Fill]:
    return [Fill.model_validate(e.payload) for e in result.events if e.kind is EventKind.FILL]


def net_after_each_fill(result) -> list[int]:
    net, seen = 0, []
    for fill in fills_of(result):
        net += fill.quantity if fill.side == "buy" else -fill.quantity
        seen.append(net)
    return seen


def assert_never_opposite(result) -> None:
    """No long lot and short lot were ever open at once, and no fill jumped across flat."""
    trades = result.trades
    for a in trades:
        for b in trades:
            if a.direction is not b.direction:
                overlap = a.entry_ts_ns < b.exit_ts_ns and b.entry_ts_ns < a.exit_ts_ns
                assert not overlap, (a, b)
    nets = [0, *net_after_each_fill(result)]
    for before, after in itertools.pairwise(nets):
        assert before * after >= 0, f"one fill went from {before} to {after}"


def session_ticks(seed: int = 3, n: int = 12_000) -> np.ndarray:
    return make_ticks(et(9, 30), n, seed=seed)


def test_opposite_signals_in_one_bar_never_open_opposite_positions():
    result = run_pipeline(
        session_ticks(),
        plugins=[Detectors()],
        detectors={"both_ways": {}},
        config={"risk": {"max_position": 2}},
    )
    assert result.trades, "the walk must trade"
    assert_never_opposite(result)
    reasons = [d.reasons[-1] for d in result.decisions if d.intent is None]
    assert any("opposite to the open position" in r for r in reasons)


def test_opposite_signals_across_bars_are_rejected_by_default():
    result = run_pipeline(
        session_ticks(seed=5),
        plugins=[Detectors()],
        detectors={"alternate": {}},
        config={"risk": {"max_position": 1}, "router": {"approve_all": {"target_ticks": 40}}},
    )
    assert_never_opposite(result)
    assert not any(f.role == "flatten" for f in fills_of(result))


def test_reverse_flattens_then_enters_the_other_way():
    result = run_pipeline(
        session_ticks(seed=5),
        plugins=[Detectors()],
        detectors={"alternate": {}},
        config={
            "risk": {"max_position": 1, "opposite_signal": "reverse"},
            "router": {"approve_all": {"target_ticks": 40, "stop_ticks": 40}},
        },
    )
    assert_never_opposite(result)
    flattens = [t for t in result.trades if t.exit_reason == "flatten"]
    assert flattens, "an opposite signal must have reversed an open position"
    entries = {f.ts_ns: f for f in fills_of(result) if f.role == "entry"}
    for trade in flattens:  # the new entry fills on the trade the exit filled on, the other way
        entry = entries[trade.exit_ts_ns]
        assert entry.side == ("sell" if trade.direction is Direction.LONG else "buy")
    assert any("reversing" in d.reasons[-1] for d in result.decisions if d.intent)


def test_max_position_caps_the_net_size():
    result = run_pipeline(
        session_ticks(seed=8),
        plugins=[Detectors()],
        detectors={"always_long": {}},
        config={"risk": {"max_position": 2}, "router": {"approve_all": {"target_ticks": 80}}},
    )
    assert max(net_after_each_fill(result)) == 2
    reasons = [d.reasons[-1] for d in result.decisions if d.intent is None]
    assert any(r.startswith("risk: max position 2") for r in reasons)


class HalvesVenue(Broker):
    """A venue that fills every entry in two halves, reports the second half twice, and fills
    the target in one piece three trades later."""

    name = "halves"
    real_money = False

    def __init__(self, settings=None, context=None):
        self.pending: list = []
        self.open: list = []

    def submit_bracket(self, intent, bracket_id, ts_ns):
        self.on_order_update(
            OrderUpdate(order_id=f"{bracket_id}-entry", status="accepted", ts_ns=ts_ns)
        )
        self.pending.append((intent, bracket_id))

    def flatten(self, symbol, order_id, side, quantity, reason, ts_ns): ...

    def on_ticks(self, symbol, ticks):
        for tick in ticks:
            price, ts = int(tick["price"]), int(tick["ts_event"])
            for intent, bracket_id in self.pending:
                side = OrderSide.BUY if intent.direction is Direction.LONG else OrderSide.SELL
                half = intent.quantity // 2
                for part, qty in ((1, half), (2, intent.quantity - half)):
                    fill = Fill(
                        exec_id=f"{bracket_id}-e{part}",
                        bracket_id=bracket_id,
                        order_id=f"{bracket_id}-entry",
                        symbol=intent.symbol,
                        side=side,
                        quantity=qty,
                        price=price,
                        ts_ns=ts,
                        role="entry",
                        commission=Decimal("0.62") * qty,
                    )
                    self.on_fill(fill)
                self.on_fill(fill)  # the second half again, as after a reconnect
                self.open.append([intent, bracket_id, 3, side])
            self.pending = []
            for item in list(self.open):
                item[2] -= 1
                if item[2] < 0:
                    intent, bracket_id, _, side = item
                    exit_side = OrderSide.SELL if side is OrderSide.BUY else OrderSide.BUY
                    self.on_fill(
                        Fill(
                            exec_id=f"{bracket_id}-t",
                            bracket_id=bracket_id,
                            order_id=f"{bracket_id}-target",
                            symbol=intent.symbol,
                            side=exit_side,
                            quantity=intent.quantity,
                            price=price,
                            ts_ns=ts,
                            role="target",
                            commission=Decimal("0.62") * intent.quantity,
                        )
                    )
                    self.open.remove(item)


class Venue:
    @hookimpl
    def register_brokers(self, register):
        register(HalvesVenue)


def test_partial_fills_and_a_repeated_fill_id(caplog):
    result = run_pipeline(
        session_ticks(n=3_000),
        plugins=[Detectors(), Venue()],
        detectors={"always_long": {}},
        broker="halves",
        config={"quantity": 2, "risk": {"max_position": 2}},
    )
    assert "reported again: ignored" in caplog.text
    entries = [f for f in fills_of(result) if f.role == "entry"]
    assert len({f.exec_id for f in entries}) == len(entries)  # the repeat never got through
    transitions = [
        (e.payload["order"]["order_id"], e.payload["transition"]["new"])
        for e in result.events
        if e.kind is EventKind.ORDER and e.payload["order"]["role"] == "entry"
    ]
    first = transitions[0][0]
    assert [new for oid, new in transitions if oid == first] == [
        "submitted",
        "accepted",
        "partially_filled",
        "filled",
    ]
    trades = result.trades
    assert trades and all(t.quantity == 1 for t in trades)  # one trade per lot closed
    for trade in trades:  # exact money per lot
        expected = trade.ticks * Decimal("12.50") - Decimal("0.62") * 2
        assert trade.net_pnl == expected
    assert max(net_after_each_fill(result)) == 2


def test_bad_prints_are_dropped_row_by_row_and_counted():
    ticks = session_ticks(seed=11, n=4_000)
    ticks["price"][1_000] = 0  # a print at zero
    ticks["price"][2_000] = ticks["price"][1_999] * 2 // 1_000_000_000 * 1_000_000_000  # +100%
    ticks["ts_event"][3_000] = 5  # 1970: a timestamp out of range
    result = run_pipeline(
        ticks,
        plugins=[Detectors()],
        detectors={"always_long": {}},
        config={"router": {"approve_all": {"stop_ticks": 2, "target_ticks": 2}}},
    )
    assert result.summary["dropped_ticks"] == 3
    assert result.summary["ticks"] == len(ticks) - 3
    bad_prices = {0, int(ticks["price"][2_000])}
    assert all(f.price not in bad_prices for f in fills_of(result))
    assert all(f.price > 0 for f in fills_of(result))


def test_flatten_at_written_unquoted_flattens_at_1555():
    assert yaml.safe_load("flatten_at: 15:55") == {"flatten_at": 955}  # what YAML makes of it
    ticks = make_ticks(et(15, 40), 6_000, seed=4)
    result = run_pipeline(
        ticks,
        plugins=[Detectors()],
        detectors={"always_long": {}},
        config={
            "risk": {"flatten_at": 955, "max_position": 1},
            "router": {"approve_all": {"stop_ticks": 200, "target_ticks": 200}},
        },
    )
    flattens = [f for f in fills_of(result) if f.role == "flatten"]
    first_after = int(ticks["ts_event"][np.searchsorted(ticks["ts_event"], ns(et(15, 55)))])
    assert [f.ts_ns for f in flattens] == [first_after]
    (auto,) = result.of(EventKind.AUTO_FLATTEN)
    assert auto["open_positions"] == 1
    late = [f for f in fills_of(result) if f.role == "entry" and f.ts_ns > first_after]
    assert late == []  # entries closed for the day after the flatten


class GoesSilent(Feed):
    """A live feed: trades until 15:50, then nothing at all (the feed is down)."""

    name = "goes_silent"
    live = True
    ticks: np.ndarray = np.empty(0)

    class Settings(PluginSettings):
        pass

    async def stream(self):
        yield FeedStatus(kind=FeedStatusKind.CONNECTED, ts_ns=int(self.ticks["ts_event"][0]))
        for chunk in np.array_split(self.ticks, 4):
            yield TickBatch("ES", chunk)
        await asyncio.Event().wait()  # silent for ever
        yield  # pragma: no cover


class SilentFeedPlugin:
    @hookimpl
    def register_feeds(self, register):
        register(GoesSilent)


def test_a_silent_feed_is_flat_at_1555_by_the_wall_clock_and_gets_its_digest(tmp_path):
    from tradebot_core import Pipeline, PluginManager, load_config
    from tradebot_core.testing import _TestingPlugin

    GoesSilent.ticks = make_ticks(et(15, 30), 4_000, seed=6, step_ms=900)
    GoesSilent.ticks = GoesSilent.ticks[GoesSilent.ticks["ts_event"] < ns(et(15, 50))]
    manager = PluginManager(load_entrypoints=False)
    import tradebot_plugins.brokers.paper as paper

    manager.register(paper, "paper")
    manager.register(_TestingPlugin(), "testing")
    manager.register(SilentFeedPlugin(), "silent")
    manager.register(Detectors(), "detectors")
    config = tmp_path / "t.yaml"
    config.write_text(
        "symbol: ES\ntimeframe_s: 60\nfeed: {plugin: goes_silent}\n"
        "detectors: {always_long: {}}\nregime: {plugin: fixed}\n"
        "router: {plugin: approve_all, approve_all: {stop_ticks: 400, target_ticks: 400}}\n"
        "risk: {max_position: 1}\naccount: {tiers: []}\n"
    )
    now = [ns(et(15, 49, 50))]

    async def virtual_sleep(seconds: float) -> None:
        now[0] += int(seconds * 1e9)
        await asyncio.sleep(0)

    pipeline = Pipeline(
        load_config(config),
        manager,
        journal_path=tmp_path / "j.db",
        now_ns=lambda: now[0],
        sleep=virtual_sleep,
    )
    events = []
    pipeline.bus.subscribe(events.append, None)

    async def main():
        run = asyncio.ensure_future(pipeline.run())
        while now[0] < ns(et(16, 1)):
            await asyncio.sleep(0)
        pipeline.request_stop()
        return await asyncio.wait_for(run, 5)

    summary = asyncio.run(main())
    assert summary.exit == "stopped"
    fills = [Fill.model_validate(e.payload) for e in events if e.kind is EventKind.FILL]
    assert fills[0].role == "entry" and fills[0].ts_ns < ns(et(15, 50))
    (flatten,) = [f for f in fills if f.role == "flatten"]
    assert ns(et(15, 55)) <= flatten.ts_ns < ns(et(15, 55, 2))  # by the wall clock
    assert not pipeline.session.positions.open_positions()
    (digest,) = [e for e in events if e.kind is EventKind.DAILY_DIGEST]
    assert digest.ts_ns == ns(et(16, 0))
    assert digest.payload["trades"] == 1


def test_warmup_batches_build_bars_but_never_trade():
    from tradebot_core import TickBatch
    from tradebot_core.testing import ScriptedFeed

    ticks = session_ticks(seed=8, n=8_000)
    ScriptedFeed_stream = ScriptedFeed.stream

    async def marked(self):  # the first half arrives as a live feed's replay of the session
        async for item in ScriptedFeed_stream(self):
            if (
                isinstance(item, TickBatch)
                and item.ticks["ts_event"][-1] < ticks["ts_event"][4_000]
            ):
                item = TickBatch(item.symbol, item.ticks, warmup=True)
            yield item

    ScriptedFeed.stream = marked
    try:
        result = run_pipeline(
            ticks,
            plugins=[Detectors()],
            detectors={"always_long": {}},
            batches=16,
            config={"risk": {"max_position": 1}},
        )
    finally:
        ScriptedFeed.stream = ScriptedFeed_stream
    first_live = int(ticks["ts_event"][4_000])
    assert result.summary["warmup_ticks"] == 4_000
    fills = fills_of(result)
    assert fills and min(f.ts_ns for f in fills) >= first_live
    assert result.signals and min(s.bar_ts_ns for s in result.signals) >= first_live - 60 * 10**9


def test_a_csv_with_one_bad_row_plays_the_others_and_the_run_counts_it(tmp_path):
    """The file feed drops the row it cannot read; the run's dropped count includes it."""
    from tradebot_core import Pipeline, PluginManager, load_config

    rows = ["ts_event,price,size,side"]
    for i in range(600):
        rows.append(
            f"2024-11-13T14:{30 + i // 60:02d}:{i % 60:02d}Z,{5000 + (i % 7) * 0.25:.2f},1,B"
        )
    rows.insert(300, "not-a-time,5000.25,1,A")
    path = tmp_path / "trades.csv"
    path.write_text("\n".join(rows) + "\n")
    config = tmp_path / "t.yaml"
    config.write_text(
        f"symbol: ES\ntimeframe_s: 60\nfeed: {{plugin: file, speed: max, file: {{path: {path}}}}}\n"
        "detectors: {}\naccount: {tiers: []}\n"
        f"journal: {{path: {tmp_path / 'j.db'}}}\n"
    )
    summary = asyncio.run(Pipeline(load_config(config), PluginManager()).run())
    assert summary.exit == "completed"
    assert summary.ticks == 600
    assert summary.dropped_ticks == 1
    assert any("trades.csv" in reason for reason in summary.dropped_by_reason)


def test_a_run_whose_every_tick_is_dropped_fails(tmp_path):
    ticks = session_ticks(n=500)
    ticks["size"] = 0
    result = run_pipeline(ticks, plugins=[Detectors()], detectors={"always_long": {}})
    assert result.summary["exit"].startswith("failed: every tick was dropped (500")
