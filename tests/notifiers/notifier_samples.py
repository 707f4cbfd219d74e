"""Events shaped as the pipeline publishes them (tradebot_core/pipeline.py), one per kind."""

from __future__ import annotations

from decimal import Decimal

from tradebot_core.types import Direction, Event, EventKind, FeedStatus, FeedStatusKind, Trade

OPEN_TS_NS = 1_731_508_200_000_000_000  # 2024-11-13 09:30:00 America/New_York


def trade(net: str, reason: str = "target") -> Trade:
    return Trade(
        bracket_id="R1-1",
        symbol="MES",
        direction=Direction.LONG,
        quantity=1,
        entry_price=Decimal("5000.25"),
        exit_price=Decimal("5003.25"),
        entry_ts_ns=OPEN_TS_NS,
        exit_ts_ns=OPEN_TS_NS + 60_000_000_000,
        ticks=12,
        tick_size=Decimal("0.25"),
        tick_value=Decimal("1.25"),
        gross_pnl=Decimal("15.00"),
        commissions=Decimal("1.24"),
        net_pnl=Decimal(net),
        exit_reason=reason,
        pattern="buy_imbalance",
    )


def position() -> dict:
    """pipeline.position_payload: what trade_opened carries (published without a message)."""
    return {
        "bracket_id": "R1-1",
        "symbol": "MES",
        "direction": "long",
        "quantity": 1,
        "entry_price": "5000.25",
        "entry_ts_ns": OPEN_TS_NS,
        "entry_commission": "0.62",
        "instrument": {"symbol": "MES", "tick_size": "0.25"},
        "pattern": "buy_imbalance",
        "stop_price": "4998.25",
        "target_price": "5003.25",
    }


def startup() -> dict:
    return {
        "symbol": "MES",
        "timeframe_s": 300,
        "feed": "demo",
        "speed": "max",
        "detectors": ["imbalance", "stacked_imbalance"],
        "regime": "adx",
        "router": "regime",
        "broker": "paper",
        "daily_profit_target": "500",
        "daily_loss_limit": "250",
        "max_position": 2,
        "version": "0.1.0",
    }


PAYLOADS: dict[EventKind, object] = {
    EventKind.SYSTEM_START: startup(),
    EventKind.SYSTEM_STOP: {"trades": 4, "net_pnl": "41.50", "patterns": {"buy_imbalance": 3}},
    EventKind.REBOOT_DETECTED: {
        "open_positions": 1,
        "pending": 0,
        "realized_pnl": "-12.50",
        "unclean": True,
    },
    EventKind.HIGH_MARGIN_DAY: {"reason": "margin 1500 > 50% of balance", "balance": "2500"},
    EventKind.TRADE_OPENED: position(),
    EventKind.TRADE_CLOSED: trade("13.76"),
    EventKind.TIER_CHANGE: {
        "old": {"name": "micro", "symbol": "MES"},
        "new": {"name": "mini", "symbol": "ES"},
        "balance": "25000",
    },
    EventKind.FEED_STATUS: FeedStatus(
        kind=FeedStatusKind.DISCONNECTED, ts_ns=OPEN_TS_NS, detail="socket closed"
    ),
    EventKind.SESSION_STATE: {
        "state": "halted",
        "reason": "daily loss limit",
        "realized_pnl": "-250",
    },
    EventKind.AUTO_FLATTEN: {"open_positions": 1},
    EventKind.DAILY_DIGEST: {
        "day": "2024-11-13",
        "trades": 4,
        "realized_pnl": "41.50",
        "balance": "2541.50",
        "patterns": {"buy_imbalance": 3, "stacked_sell_imbalance": 1},
        "halted": False,
    },
    EventKind.WATCHDOG: {"stalled": True, "message": "no ticks for 120 s"},
    EventKind.ERROR: {"error": "feed failed"},
}


def sample(kind: EventKind, i: int = 0) -> Event:
    message = "" if kind is EventKind.TRADE_OPENED else f"{kind.value} number {i}"
    return Event(
        kind=kind,
        ts_ns=OPEN_TS_NS + i,
        payload=PAYLOADS.get(kind, {"detail": kind.value}),
        message=message,
    )


def every_kind(kinds: list[EventKind]) -> list[Event]:
    return [sample(kind, i) for i, kind in enumerate(kinds)]
