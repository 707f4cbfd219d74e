"""A loopback Rithmic gateway for tests: R|Protocol (protocol buffers over a TLS WebSocket).

The official asyncio client, ``async-rithmic``, connects to it as to a real Rithmic gateway. Every
frame is a 4-byte big-endian length followed by a serialized message whose ``template_id`` says
which message it is; the message classes are the ones ``async-rithmic`` ships
(``async_rithmic.protocol_buffers``), nothing here is a hand-written schema.

The client opens one WebSocket per plant (ticker, order, pnl, history), asks the ticker socket
for the list of systems first (and reconnects), then logs in on each socket. The gateway keeps
one :class:`Session` per socket and answers (template ids in brackets):

- system info [16 -> 17], login [10 -> 11], logout [12 -> 13], heartbeat [18 -> 19];
- ticker plant: market data subscribe/unsubscribe [100 -> 101], pushed last trades [150],
  front-month contract [113 -> 114];
- order plant, what the client's login needs: login info [300 -> 301], accounts [302 -> 303],
  trade routes [310 -> 311], order/bracket update subscriptions [308 -> 309, 336 -> 337];
- pnl plant: position update subscription [400 -> 401];
- history plant: tick replay [206 -> 207], from the trades pushed so far (and ``history``).

The order desk: bracket orders [330 -> 331] (a market entry with its stop and target in ticks,
server-side OCO), cancel [316 -> 317] and exit position [3504 -> 3505], with the notifications
Rithmic sends (351 order notifications, 352 exchange notifications with fills and fill ids, 353
bracket updates), order and position listings [320 -> 352 snapshots + 321, 402 -> 450 snapshots
+ 403], bracket listings [338/340], account and product RMS [304/306] (margin per contract in
``margins``). Orders fill against the trades tests push, by the paper broker's rules (see
:meth:`RithmicGateway._match`). Steering: :meth:`reject_next`, :meth:`partial_fills`,
:meth:`drop_next_order`, :meth:`forced_logout`, ``duplicate_fills``; records: ``orders``,
``positions``, ``fills``, ``notifications``.

Other order requests (new order, modify, bracket level updates, cancel all) are counted in
``order_requests`` and refused, as is any other request: its response template with an error
``rp_code``, or a Reject [75] when it has none. See README.md in this folder.

Tests steer it: :meth:`push_trade`, :meth:`drop` (abort or close a plant's sockets),
:meth:`refuse_login`, and read what it received: ``logins``, ``logouts``, ``subscriptions``
(the live ones), ``subscription_log``, ``heartbeats``, ``replay_requests``, ``order_requests``,
``received``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from async_rithmic import protocol_buffers as pb
from async_rithmic.plants.base import TEMPLATES_MAP as CLIENT_TEMPLATES
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

# The requests the gateway parses, by template id (responses are built by class below).
REQUESTS = {
    10: pb.request_login_pb2.RequestLogin,
    12: pb.request_logout_pb2.RequestLogout,
    16: pb.request_rithmic_system_info_pb2.RequestRithmicSystemInfo,
    18: pb.request_heartbeat_pb2.RequestHeartbeat,
    100: pb.request_market_data_update_pb2.RequestMarketDataUpdate,
    113: pb.request_front_month_contract_pb2.RequestFrontMonthContract,
    206: pb.request_tick_bar_replay_pb2.RequestTickBarReplay,
    300: pb.request_login_info_pb2.RequestLoginInfo,
    302: pb.request_account_list_pb2.RequestAccountList,
    308: pb.request_subscribe_for_order_updates_pb2.RequestSubscribeForOrderUpdates,
    310: pb.request_trade_routes_pb2.RequestTradeRoutes,
    336: pb.request_subscribe_to_bracket_updates_pb2.RequestSubscribeToBracketUpdates,
    400: pb.request_pnl_position_updates_pb2.RequestPnLPositionUpdates,
}

# Order-entry requests: counted, refused until the order step implements them.
ORDER_REQUESTS = {
    312: "RequestNewOrder",
    314: "RequestModifyOrder",
    316: "RequestCancelOrder",
    330: "RequestBracketOrder",
    332: "RequestUpdateTargetBracketLevel",
    334: "RequestUpdateStopBracketLevel",
    346: "RequestCancelAllOrders",
    3504: "RequestExitPosition",
}

# Order-entry requests the order desk implements (the others above stay refused), and the
# order-plant / pnl-plant listings it answers; every one of them is counted in order_requests.
DESK_REQUESTS = {330, 316, 3504}
LISTINGS = {
    304: "RequestAccountRmsInfo",
    306: "RequestProductRmsInfo",
    320: "RequestShowOrders",
    338: "RequestShowBrackets",
    340: "RequestShowBracketStops",
    402: "RequestPnLPositionSnapshot",
}

LoginRq = pb.request_login_pb2.RequestLogin
MarketDataRq = pb.request_market_data_update_pb2.RequestMarketDataUpdate
LastTrade = pb.last_trade_pb2.LastTrade
TickReplayRq = pb.request_tick_bar_replay_pb2.RequestTickBarReplay

PLANTS = {
    LoginRq.TICKER_PLANT: "ticker",
    LoginRq.ORDER_PLANT: "order",
    LoginRq.HISTORY_PLANT: "history",
    LoginRq.PNL_PLANT: "pnl",
    LoginRq.REPOSITORY_PLANT: "repository",
}
AGGRESSOR = {"B": LastTrade.BUY, "S": LastTrade.SELL}
RON = pb.rithmic_order_notification_pb2.RithmicOrderNotification
EON = pb.exchange_order_notification_pb2.ExchangeOrderNotification
BracketRq = pb.request_bracket_order_pb2.RequestBracketOrder

# Illustrative error codes (Rithmic sends a code and a text in ``rp_code``).
BAD_CREDENTIALS = ["13", "permission denied"]
NO_DATA = ["7", "no data"]
NOT_IMPLEMENTED = ["1", "not implemented by the loopback gateway"]


def frame(message) -> bytes:
    """R|Protocol framing: a 4-byte big-endian length, then the serialized message."""
    body = message.SerializeToString()
    return len(body).to_bytes(4, "big", signed=True) + body


def parse(data: bytes):
    """The message in a frame, as the class of its template id (None for an unknown id)."""
    body = data[4:]
    base = pb.base_pb2.Base()
    base.ParseFromString(body)
    cls = REQUESTS.get(base.template_id) or CLIENT_TEMPLATES.get(base.template_id)
    if cls is None:
        return base
    message = cls()
    message.ParseFromString(body)
    return message


def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext, Path]:
    """A server context for 127.0.0.1, a client context trusting only its throwaway CA, and
    the CA file."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    ca_file = tmp_path / "loopback-rithmic-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    # the same kind of context async-rithmic builds for its bundled Rithmic CA
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(ca_file)
    return server, client, ca_file


@dataclass(frozen=True)
class Trade:
    symbol: str
    exchange: str
    price: float
    size: int
    aggressor: str  # "B" (buyer lifted the offer) or "S" (seller hit the bid)
    ssboe: int  # seconds since the epoch
    usecs: int


@dataclass(frozen=True)
class Login:
    plant: str
    user: str
    system_name: str
    app_name: str
    app_version: str
    template_version: str
    accepted: bool


@dataclass
class Order:
    """An order the desk holds: a bracket's entry, its stop or target, or an exit position's
    market order. Prices are floats on the tick grid (as R|Protocol sends them)."""

    basket_id: str
    user_tag: str
    account_id: str
    symbol: str
    exchange: str
    side: int  # TransactionType: 1 BUY, 2 SELL
    quantity: int
    price_type: int  # PriceType: 1 LIMIT, 2 MARKET, 4 STOP_MARKET
    role: str  # "entry", "stop", "target", "exit"
    trade_route: str = "loopback"
    price: float = 0.0  # a target's limit
    trigger_price: float = 0.0  # a stop's trigger
    stop_ticks: int = 0
    target_ticks: int = 0
    parent: str = ""  # a child's entry basket id
    sibling: str = ""  # the OCO sibling's basket id
    window_name: str = ""
    status: str = "open"  # open, complete
    completion_reason: str = ""  # Fill, Cancel, Reject
    filled: int = 0
    fill_value: float = 0.0
    active_from: int = 0  # the first trade (1-based count) it may fill on
    children: list[str] = field(default_factory=list)

    @property
    def sign(self) -> int:
        return 1 if self.side == 1 else -1

    @property
    def unfilled(self) -> int:
        return self.quantity - self.filled if self.status == "open" else 0

    @property
    def avg_fill_price(self) -> float:
        return self.fill_value / self.filled if self.filled else 0.0


def product_code(symbol: str) -> str:
    """ESZ6 -> ES, MNQH27 -> MNQ (the contract month letter and year digits dropped)."""
    match = re.fullmatch(r"([A-Z0-9]+?)[FGHJKMNQUVXZ]\d{1,2}", symbol)
    return match.group(1) if match else symbol


@dataclass
class Session:
    """One WebSocket: a plant once logged in."""

    ws: ServerConnection
    plant: str | None = None
    user: str = ""
    subscriptions: dict[tuple[str, str], int] = field(default_factory=dict)  # -> update bits
    order_updates: bool = False  # subscribed to order updates [308]
    pnl_updates: bool = False  # subscribed to position updates [400]


@dataclass
class RithmicGateway:
    users: dict[str, str] = field(default_factory=lambda: {"trader": "secret"})
    systems: tuple[str, ...] = ("Rithmic Test", "Rithmic Paper Trading")
    front_months: dict[tuple[str, str], str] = field(
        default_factory=lambda: {("ES", "CME"): "ESZ6", ("NQ", "CME"): "NQZ6"}
    )
    accounts: tuple[str, ...] = ("LOOP-0001",)
    fcm_id: str = "LoopFCM"
    ib_id: str = "LoopIB"
    heartbeat_interval: float = 30.0  # seconds, told to the client at login
    replay_page: int = 10_000  # ticks per replay answer (Rithmic truncates long replays)
    history: list[Trade] = field(default_factory=list)  # replayable; pushed trades join it

    # what it received
    logins: list[Login] = field(default_factory=list)
    logouts: list[str] = field(default_factory=list)
    subscription_log: list[tuple[str, str, str, int]] = field(default_factory=list)
    heartbeats: Counter[str] = field(default_factory=Counter)
    replay_requests: list[dict] = field(default_factory=list)
    order_requests: Counter[str] = field(default_factory=Counter)
    received: list[tuple[str | None, int]] = field(default_factory=list)  # (plant, template)

    # the order desk: how it fills (the paper broker's rules, see OrderDesk) and what it holds
    tick_size: float = 0.25
    slippage_ticks: int = 1
    limit_fill: str = "through"  # or "touch"
    margins: dict[str, float] = field(
        default_factory=lambda: {"ES": 15_000.0, "NQ": 21_000.0, "MES": 1_500.0, "MNQ": 2_100.0}
    )  # per contract, by product code (product RMS buy/sell margin rate)
    orders: dict[str, Order] = field(default_factory=dict)  # basket id -> order
    positions: dict[tuple[str, str, str], int] = field(default_factory=dict)  # net contracts
    fills: list[dict] = field(default_factory=list)  # every fill sent, in order
    notifications: list[tuple[int, str, str]] = field(default_factory=list)  # (tid, basket, what)

    def __post_init__(self) -> None:
        self.sessions: list[Session] = []
        self.refusing: dict[str, int] = {}  # plant (or "*") -> logins left to refuse
        self.server: Server | None = None
        self.port = 0
        self.client_ssl: ssl.SSLContext | None = None
        self._changed = asyncio.Event()
        self._baskets = 0
        self._fill_ids = 0
        self._trades = 0  # trades pushed so far: orders act from the trade after they arrive
        self._rejects: list[tuple[str, str]] = []  # (reason, "exchange" or "request")
        self._splits: list[int] = []  # sizes of the next fills (partial fills)
        self._drop_next: str | None = None  # drop the order socket on the next order request
        self.duplicate_fills = False  # send every fill notification twice
        self._now: tuple[int, int] | None = None  # the trade being matched (ssboe, usecs)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, tmp_path: Path) -> RithmicGateway:
        server_ssl, self.client_ssl, _ = tls_contexts(tmp_path)
        self.server = await serve(self._serve, "127.0.0.1", 0, ssl=server_ssl)
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"wss://127.0.0.1:{self.port}"

    # -- steering ------------------------------------------------------------------------------

    def refuse_login(self, plant: str = "*", times: int = 1) -> None:
        """Refuse the next ``times`` logins of ``plant`` ("ticker", "order"...; "*": any)."""
        self.refusing[plant] = times

    async def push_trade(
        self,
        symbol: str,
        price: float,
        size: int,
        aggressor: str,
        exchange: str = "CME",
        at: float | None = None,
    ) -> int:
        """Send a last trade [150] to every ticker socket subscribed to last trades of the
        symbol, keep it for replay; returns the number of sockets it went to."""
        at = time.time() if at is None else at
        ssboe = int(at)
        trade = Trade(
            symbol, exchange, price, size, aggressor, ssboe, round((at - ssboe) * 1e6) % 1_000_000
        )
        self.history.append(trade)
        volume = sum(t.size for t in self.history if (t.symbol, t.exchange) == (symbol, exchange))
        message = LastTrade(
            template_id=150,
            symbol=symbol,
            exchange=exchange,
            presence_bits=LastTrade.LAST_TRADE | LastTrade.VOLUME,
            is_snapshot=False,
            trade_price=price,
            trade_size=size,
            aggressor=AGGRESSOR[aggressor],
            volume=volume,
            ssboe=trade.ssboe,
            usecs=trade.usecs,
            source_ssboe=trade.ssboe,
            source_usecs=trade.usecs,
        )
        sent = 0
        for session in list(self.sessions):
            bits = session.subscriptions.get((symbol, exchange), 0)
            if session.plant == "ticker" and bits & MarketDataRq.LAST_TRADE:
                await self._send(session, message)
                sent += 1
        await self._match(trade)
        return sent

    async def repeat_trades(self, symbol: str, count: int = 1, exchange: str = "CME") -> int:
        """Send the last ``count`` trades of the symbol again, as new last trades [150] (not
        snapshots), without recording them again: a gateway repeating what it sent before a
        reconnect. Returns the number of messages sent."""
        trades = [t for t in self.history if (t.symbol, t.exchange) == (symbol, exchange)]
        sent = 0
        for trade in trades[len(trades) - count :]:
            volume = sum(
                t.size
                for t in self.history[: self.history.index(trade) + 1]
                if (t.symbol, t.exchange) == (symbol, exchange)
            )
            message = LastTrade(
                template_id=150,
                symbol=symbol,
                exchange=exchange,
                presence_bits=LastTrade.LAST_TRADE | LastTrade.VOLUME,
                is_snapshot=False,
                trade_price=trade.price,
                trade_size=trade.size,
                aggressor=AGGRESSOR[trade.aggressor],
                volume=volume,
                ssboe=trade.ssboe,
                usecs=trade.usecs,
                source_ssboe=trade.ssboe,
                source_usecs=trade.usecs,
            )
            for session in list(self.sessions):
                bits = session.subscriptions.get((symbol, exchange), 0)
                if session.plant == "ticker" and bits & MarketDataRq.LAST_TRADE:
                    await self._send(session, message)
                    sent += 1
        return sent

    async def drop(self, plant: str | None = None, clean: bool = False) -> int:
        """Cut the sockets of ``plant`` (all when None): abort the TCP connection, or, when
        ``clean``, close the WebSocket with code 1001. Returns how many were cut."""
        cut = [s for s in self.sessions if plant is None or s.plant == plant]
        for session in cut:
            if clean:
                await session.ws.close(1001, "going away")
            else:
                session.ws.transport.abort()
        return len(cut)

    # -- reading -------------------------------------------------------------------------------

    @property
    def subscriptions(self) -> set[tuple[str, str, int]]:
        """The live market data subscriptions: (symbol, exchange, update bits)."""
        return {
            (symbol, exchange, bits)
            for s in self.sessions
            for (symbol, exchange), bits in s.subscriptions.items()
        }

    def connected(self, plant: str) -> int:
        return sum(1 for s in self.sessions if s.plant == plant)

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``condition()`` holds, re-checking whenever a message arrives and every
        10 ms (for conditions on the client's side)."""

        async def until() -> None:
            while not condition():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.01)

        await asyncio.wait_for(until(), timeout)

    # -- the protocol --------------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        session = Session(ws)
        self.sessions.append(session)
        try:
            async for data in ws:
                if isinstance(data, bytes):
                    await self._handle(session, parse(data))
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.sessions.remove(session)
            self._changed.set()

    async def _send(self, session: Session, message) -> None:
        with contextlib.suppress(ConnectionClosed):
            await session.ws.send(frame(message))

    async def _answer(self, session: Session, request, cls=None, **fields) -> None:
        """The response template (request id + 1) with the request's ``user_msg``."""
        cls = cls or CLIENT_TEMPLATES[request.template_id + 1]
        fields.setdefault("rp_code", ["0"])
        await self._send(
            session,
            cls(template_id=request.template_id + 1, user_msg=list(request.user_msg), **fields),
        )

    async def _handle(self, session: Session, rq) -> None:
        tid = rq.template_id
        self.received.append((session.plant, tid))
        if tid == 16:
            await self._answer(
                session,
                rq,
                system_name=list(self.systems),
                has_aggregated_quotes=[False] * len(self.systems),
            )
        elif tid == 10:
            await self._login(session, rq)
        elif tid == 18:
            self.heartbeats[session.plant or "?"] += 1
            now = time.time()
            await self._answer(session, rq, ssboe=int(now), usecs=int(now % 1 * 1e6))
        elif tid == 12:
            self.logouts.append(session.plant or "?")
            await self._answer(session, rq)
        elif session.plant is None:
            await self._reject(session, rq, ["1", "login first"])
        elif tid == 100:
            await self._market_data(session, rq)
        elif tid == 113:
            await self._front_month(session, rq)
        elif tid == 206:
            await self._tick_replay(session, rq)
        elif tid == 300:
            await self._answer(
                session,
                rq,
                fcm_id=self.fcm_id,
                ib_id=self.ib_id,
                user=session.user,
                user_type=pb.response_login_info_pb2.ResponseLoginInfo.USER_TYPE_TRADER,
                country_code="US",
            )
        elif tid == 302:
            for account in self.accounts:
                await self._answer(
                    session,
                    rq,
                    rp_code=[],
                    rq_handler_rp_code=["0"],
                    fcm_id=self.fcm_id,
                    ib_id=self.ib_id,
                    account_id=account,
                    account_name=account,
                    account_currency="USD",
                )
            await self._answer(session, rq)
        elif tid == 310:
            await self._answer(
                session,
                rq,
                rp_code=[],
                rq_handler_rp_code=["0"],
                fcm_id=self.fcm_id,
                ib_id=self.ib_id,
                exchange="CME",
                trade_route="loopback",
                status="UP",
                is_default=True,
            )
            await self._answer(session, rq)
        elif tid in (308, 336, 400):
            if tid == 308:
                session.order_updates = True
            elif tid == 400:
                session.pnl_updates = rq.request != rq.UNSUBSCRIBE
            await self._answer(session, rq)
        elif tid in DESK_REQUESTS:
            self.order_requests[ORDER_REQUESTS[tid]] += 1
            await self._desk(session, rq)
        elif tid in LISTINGS:
            self.order_requests[LISTINGS[tid]] += 1
            await self._listing(session, rq)
        elif tid in ORDER_REQUESTS:
            self.order_requests[ORDER_REQUESTS[tid]] += 1
            await self._refuse(session, rq)
        else:
            await self._refuse(session, rq)

    async def _login(self, session: Session, rq) -> None:
        plant = PLANTS.get(rq.infra_type, "?")
        refused = next((key for key in (plant, "*") if self.refusing.get(key, 0) > 0), None)
        accepted = (
            refused is None
            and self.users.get(rq.user) == rq.password
            and rq.system_name in self.systems
        )
        if refused is not None:
            self.refusing[refused] -= 1
        self.logins.append(
            Login(
                plant,
                rq.user,
                rq.system_name,
                rq.app_name,
                rq.app_version,
                rq.template_version,
                accepted,
            )
        )
        if not accepted:
            await self._answer(session, rq, rp_code=BAD_CREDENTIALS)
            return
        session.plant, session.user = plant, rq.user
        await self._answer(
            session,
            rq,
            template_version="3.9",
            fcm_id=self.fcm_id,
            ib_id=self.ib_id,
            country_code="US",
            unique_user_id=rq.user,
            heartbeat_interval=self.heartbeat_interval,
        )

    async def _market_data(self, session: Session, rq) -> None:
        key = (rq.symbol, rq.exchange)
        if rq.request == MarketDataRq.SUBSCRIBE:
            session.subscriptions[key] = session.subscriptions.get(key, 0) | rq.update_bits
            action = "subscribe"
        else:
            left = session.subscriptions.get(key, 0) & ~rq.update_bits
            if left:
                session.subscriptions[key] = left
            else:
                session.subscriptions.pop(key, None)
            action = "unsubscribe"
        self.subscription_log.append((action, rq.symbol, rq.exchange, rq.update_bits))
        await self._answer(session, rq)

    async def _front_month(self, session: Session, rq) -> None:
        contract = self.front_months.get((rq.symbol, rq.exchange))
        if contract is None:
            await self._answer(session, rq, rp_code=NO_DATA)
            return
        await self._answer(
            session,
            rq,
            symbol=rq.symbol,
            exchange=rq.exchange,
            is_front_month_symbol=True,
            symbol_name=contract,
            trading_symbol=contract,
            trading_exchange=rq.exchange,
        )

    async def _tick_replay(self, session: Session, rq) -> None:
        """One tick per 207 (its second in ``data_bar_ssboe``), then a 207 with ``rp_code``
        "0" that ends the answer. Ticks are those in [start_index, finish_index] (seconds)."""
        self.replay_requests.append(
            {
                "symbol": rq.symbol,
                "exchange": rq.exchange,
                "bar_type": rq.bar_type,
                "start_index": rq.start_index,
                "finish_index": rq.finish_index,
            }
        )
        cls = pb.response_tick_bar_replay_pb2.ResponseTickBarReplay
        ticks = sorted(
            (
                t
                for t in self.history
                if (t.symbol, t.exchange) == (rq.symbol, rq.exchange)
                and rq.start_index <= t.ssboe <= (rq.finish_index or t.ssboe)
            ),
            key=lambda t: (t.ssboe, t.usecs),
        )[: self.replay_page]
        for tick in ticks:
            await self._answer(
                session,
                rq,
                cls,
                rp_code=[],
                rq_handler_rp_code=["0"],
                symbol=tick.symbol,
                exchange=tick.exchange,
                type=cls.TICK_BAR,
                sub_type=cls.REGULAR,
                type_specifier="1",
                num_trades=1,
                volume=tick.size,
                bid_volume=tick.size if tick.aggressor == "S" else 0,
                ask_volume=tick.size if tick.aggressor == "B" else 0,
                open_price=tick.price,
                close_price=tick.price,
                high_price=tick.price,
                low_price=tick.price,
                data_bar_ssboe=[tick.ssboe],
                data_bar_usecs=[tick.usecs],
            )
        await self._answer(session, rq, cls, symbol=rq.symbol, exchange=rq.exchange)

    async def _refuse(self, session: Session, rq) -> None:
        """Not implemented: the response template with an error code, or a Reject [75]."""
        cls = CLIENT_TEMPLATES.get(rq.template_id + 1)
        if cls is not None and "rp_code" in cls.DESCRIPTOR.fields_by_name:
            await self._answer(session, rq, rp_code=NOT_IMPLEMENTED)
        else:
            await self._reject(session, rq, NOT_IMPLEMENTED)

    async def _reject(self, session: Session, rq, rp_code: list[str]) -> None:
        user_msg = list(getattr(rq, "user_msg", []))
        await self._send(
            session, pb.reject_pb2.Reject(template_id=75, user_msg=user_msg, rp_code=rp_code)
        )

    # -- the order desk: steering --------------------------------------------------------------

    def reject_next(self, reason: str = "insufficient margin", at: str = "exchange") -> None:
        """Reject the next bracket order with ``reason``: ``at="exchange"``, it is accepted
        (basket id in the 331) and then rejected (an exchange order notification [352] REJECT
        and a Rithmic order notification [351] complete, both carrying the reason in ``text``);
        ``at="request"``, the 331 itself carries the error in ``rp_code``."""
        assert at in ("exchange", "request"), at
        self._rejects.append((reason, at))

    def partial_fills(self, *sizes: int) -> None:
        """The next fills (of any order) take at most these sizes, one fill per trade; what is
        left of an order fills on the trades after."""
        self._splits.extend(sizes)

    def drop_next_order(self) -> None:
        """When the next bracket order arrives, take it (it works and fills as any other) and
        abort the order plant's socket before answering: the client never sees its answer nor
        the notifications sent while it reconnects."""
        self._drop_next = "before_answer"

    async def forced_logout(self, plant: str = "order") -> int:
        """A ForcedLogout [77] to the plant's sockets, which are then closed (what Rithmic does
        when the user's session limit is exceeded). Returns how many were logged out."""
        cut = [s for s in self.sessions if s.plant == plant]
        for session in cut:
            await self._send(session, pb.forced_logout_pb2.ForcedLogout(template_id=77))
            with contextlib.suppress(ConnectionClosed):
                await session.ws.close(1000, "forced logout")
        return len(cut)

    def working(self, account: str | None = None) -> list[Order]:
        """Open orders, oldest first."""
        return [
            o
            for o in self.orders.values()
            if o.status == "open" and (account is None or o.account_id == account)
        ]

    def position(self, symbol: str, account: str | None = None, exchange: str = "CME") -> int:
        return self.positions.get((account or self.accounts[0], symbol, exchange), 0)

    # -- the order desk: requests --------------------------------------------------------------

    async def _desk(self, session: Session, rq) -> None:
        if rq.template_id == 330:
            await self._bracket(session, rq)
        elif rq.template_id == 316:
            await self._cancel(session, rq)
        else:
            await self._exit_position(session, rq)

    def _stamp(self) -> dict:
        ssboe, usecs = self._now or _split_time(time.time())
        return {"ssboe": ssboe, "usecs": usecs}

    async def _bracket(self, session: Session, rq) -> None:
        """A market entry with its stop and target in ticks [330 -> 331], then 351/352."""
        if rq.account_id not in self.accounts:
            await self._answer(session, rq, rp_code=["5", f"unknown account {rq.account_id}"])
            return
        if rq.price_type != BracketRq.MARKET:
            await self._answer(session, rq, rp_code=["3", "loopback desk: market entries only"])
            return
        if self._rejects and self._rejects[0][1] == "request":
            reason, _ = self._rejects.pop(0)
            await self._answer(session, rq, rp_code=["3", reason], user_tag=rq.user_tag)
            return
        order = Order(
            basket_id=self._next_basket(),
            user_tag=rq.user_tag,
            account_id=rq.account_id,
            symbol=rq.symbol,
            exchange=rq.exchange,
            side=rq.transaction_type,
            quantity=rq.quantity,
            price_type=rq.price_type,
            role="entry",
            trade_route=rq.trade_route or "loopback",
            stop_ticks=rq.stop_ticks if rq.stop_quantity else 0,
            target_ticks=rq.target_ticks if rq.target_quantity else 0,
            window_name=rq.window_name,
            active_from=self._trades + 1,
        )
        self.orders[order.basket_id] = order
        if self._drop_next is not None:
            self._drop_next = None
            session.ws.transport.abort()
            return
        await self._answer(
            session, rq, user_tag=rq.user_tag, basket_id=order.basket_id, **self._stamp()
        )
        await self._notify(order, RON.ORDER_RCVD_FROM_CLNT, "order received from client")
        if self._rejects:
            reason, _ = self._rejects.pop(0)
            order.status, order.completion_reason = "complete", "Reject"
            await self._exchange(order, EON.REJECT, "reject", text=reason)
            await self._notify(order, RON.COMPLETE, "complete", text=reason)
            return
        await self._open(order)

    async def _open(self, order: Order) -> None:
        await self._notify(order, RON.OPEN_PENDING, "open pending")
        await self._exchange(order, EON.STATUS, "status")
        await self._notify(order, RON.OPEN, "open")

    async def _cancel(self, session: Session, rq) -> None:
        order = self.orders.get(rq.basket_id)
        if order is None or order.status != "open" or order.account_id != rq.account_id:
            await self._answer(session, rq, rp_code=["5", "no working order with that basket id"])
            return
        await self._answer(session, rq, basket_id=rq.basket_id, **self._stamp())
        await self._notify(order, RON.CANCEL_RCVD_FROM_CLNT, "cancel received from client")
        await self._cancel_order(order)

    async def _cancel_order(self, order: Order, reason: str = "Cancel") -> None:
        cancelled = order.unfilled
        order.status, order.completion_reason = "complete", reason
        await self._exchange(order, EON.CANCEL, "cancel", cancelled_size=cancelled)
        await self._notify(order, RON.COMPLETE, "complete")

    async def _exit_position(self, session: Session, rq) -> None:
        """Exit position [3504 -> 3505]: cancel the account's working orders in the contract
        (brackets' stops and targets included), then a market order for the net position."""
        await self._answer(session, rq, symbol=rq.symbol, exchange=rq.exchange)
        keys = [
            key
            for key in {(o.account_id, o.symbol, o.exchange) for o in self.working()}
            | set(self.positions)
            if key[0] == rq.account_id
            and (not rq.symbol or (key[1], key[2]) == (rq.symbol, rq.exchange))
        ]
        for account, symbol, exchange in sorted(keys):
            for order in self.working(account):
                if (order.symbol, order.exchange) == (symbol, exchange):
                    await self._cancel_order(order)
            net = self.positions.get((account, symbol, exchange), 0)
            if not net:
                continue
            order = Order(
                basket_id=self._next_basket(),
                user_tag="",  # RequestExitPosition carries none
                account_id=account,
                symbol=symbol,
                exchange=exchange,
                side=2 if net > 0 else 1,
                quantity=abs(net),
                price_type=BracketRq.MARKET,
                role="exit",
                window_name=rq.window_name,
                active_from=self._trades + 1,
            )
            self.orders[order.basket_id] = order
            await self._notify(order, RON.ORDER_RCVD_FROM_CLNT, "order received from client")
            await self._open(order)

    # -- the order desk: fills -----------------------------------------------------------------

    async def _match(self, trade: Trade) -> None:
        """Fill against one pushed trade, by the paper broker's rules: a market order (entry,
        exit) at the first trade after it arrived, worsened by ``slippage_ticks``; a stop at a
        trade at or through its trigger, at the trade worsened by the slippage; a target at its
        limit when a trade prints through it (``limit_fill="touch"``: at it); stop and target
        act from the trade after the entry fill, and the stop goes first."""
        self._trades += 1
        self._now = (trade.ssboe, trade.usecs)
        slip = self.slippage_ticks * self.tick_size
        try:
            for order in list(self.orders.values()):
                if (
                    order.status != "open"
                    or (order.symbol, order.exchange) != (trade.symbol, trade.exchange)
                    or order.active_from > self._trades
                ):
                    continue
                price = None
                if order.price_type == BracketRq.MARKET:
                    price = trade.price + order.sign * slip
                elif order.role == "stop":
                    if (trade.price - order.trigger_price) * order.sign >= 0:
                        price = trade.price + order.sign * slip
                elif order.role == "target":
                    beyond = (order.price - trade.price) * order.sign
                    if beyond > 0 or (beyond == 0 and self.limit_fill == "touch"):
                        price = order.price
                if price is not None:
                    size = min(order.unfilled, self._splits.pop(0) if self._splits else 10**9)
                    await self._fill(order, size, self._on_grid(price))
        finally:
            self._now = None

    def _on_grid(self, price: float) -> float:
        return round(round(price / self.tick_size) * self.tick_size, 9)

    async def _fill(self, order: Order, size: int, price: float) -> None:
        self._fill_ids += 1
        fill_id = f"LF{self._fill_ids:06d}"
        order.filled += size
        order.fill_value += size * price
        if order.filled >= order.quantity:
            order.status, order.completion_reason = "complete", "Fill"
        key = (order.account_id, order.symbol, order.exchange)
        self.positions[key] = self.positions.get(key, 0) + order.sign * size
        ssboe, _ = self._now or _split_time(time.time())
        when = datetime.fromtimestamp(ssboe, UTC)
        self.fills.append(
            {
                "fill_id": fill_id,
                "basket_id": order.basket_id,
                "user_tag": order.user_tag,
                "role": order.role,
                "side": "B" if order.side == 1 else "S",
                "size": size,
                "price": price,
            }
        )
        for _ in range(2 if self.duplicate_fills else 1):
            await self._exchange(
                order,
                EON.FILL,
                "fill",
                fill_price=price,
                fill_size=size,
                fill_id=fill_id,
                fill_time=when.strftime("%H:%M:%S"),
                fill_date=when.strftime("%Y%m%d"),
            )
        if order.status == "complete":
            await self._notify(order, RON.COMPLETE, "complete")
        if order.role == "entry":
            await self._release_brackets(order, size)
        elif order.role in ("stop", "target"):
            sibling = self.orders.get(order.sibling)
            if sibling is not None and sibling.status == "open":
                if order.status == "complete":
                    await self._cancel_order(sibling)  # OCO
                else:
                    sibling.quantity -= size
                    await self._notify(sibling, RON.MODIFIED, "open")
        await self._position_update(key)

    async def _release_brackets(self, entry: Order, size: int) -> None:
        """The entry filled ``size`` more: its stop and target (new orders, the parent's user
        tag, ``original_basket_id`` the entry's, ``linked_basket_ids`` each other's) cover
        the filled quantity, priced from the entry's first fill."""
        if not entry.stop_ticks and not entry.target_ticks:
            return
        if entry.children:
            for basket in entry.children:
                child = self.orders[basket]
                if child.status == "open":
                    child.quantity += size
                    await self._notify(child, RON.MODIFIED, "open")
        else:
            base = entry.avg_fill_price
            distance = {"stop": entry.stop_ticks, "target": entry.target_ticks}
            for role in ("stop", "target"):
                if not distance[role]:
                    continue
                offset = distance[role] * self.tick_size * entry.sign
                level = self._on_grid(base - offset if role == "stop" else base + offset)
                child = Order(
                    basket_id=self._next_basket(),
                    user_tag=entry.user_tag,
                    account_id=entry.account_id,
                    symbol=entry.symbol,
                    exchange=entry.exchange,
                    side=2 if entry.side == 1 else 1,
                    quantity=size,
                    price_type=BracketRq.STOP_MARKET if role == "stop" else BracketRq.LIMIT,
                    role=role,
                    trade_route=entry.trade_route,
                    price=level if role == "target" else 0.0,
                    trigger_price=level if role == "stop" else 0.0,
                    parent=entry.basket_id,
                    window_name=entry.window_name,
                    active_from=self._trades + 1,
                )
                self.orders[child.basket_id] = child
                entry.children.append(child.basket_id)
            if len(entry.children) == 2:
                stop, target = (self.orders[b] for b in entry.children)
                stop.sibling, target.sibling = target.basket_id, stop.basket_id
        released = sum(self.orders[b].quantity for b in entry.children[:1])
        update = pb.bracket_updates_pb2.BracketUpdates(
            template_id=353,
            fcm_id=self.fcm_id,
            ib_id=self.ib_id,
            account_id=entry.account_id,
            basket_id=entry.basket_id,
            stop_ticks=entry.stop_ticks,
            stop_quantity=entry.quantity if entry.stop_ticks else 0,
            stop_quantity_released=released if entry.stop_ticks else 0,
            target_ticks=entry.target_ticks,
            target_quantity=entry.quantity if entry.target_ticks else 0,
            target_quantity_released=released if entry.target_ticks else 0,
        )
        self.notifications.append((353, entry.basket_id, "bracket"))
        await self._broadcast("order", update)
        for basket in entry.children:
            child = self.orders[basket]
            if child.quantity == size and child.filled == 0:  # just released
                await self._open(child)

    # -- the order desk: notifications and listings --------------------------------------------

    def _order_fields(self, order: Order) -> dict:
        fields = {
            "user_tag": order.user_tag,
            "basket_id": order.basket_id,
            "fcm_id": self.fcm_id,
            "ib_id": self.ib_id,
            "user_id": next(iter(self.users), ""),
            "account_id": order.account_id,
            "symbol": order.symbol,
            "exchange": order.exchange,
            "trade_exchange": order.exchange,
            "trade_route": order.trade_route,
            "instrument_type": "Future",
            "quantity": order.quantity,
            "transaction_type": order.side,
            "duration": RON.DAY,
            "price_type": order.price_type,
            "manual_or_auto": RON.AUTO,
            "total_fill_size": order.filled,
            "total_unfilled_size": order.unfilled,
            "status": order.status,
            **self._stamp(),
        }
        if order.price:
            fields["price"] = order.price
        if order.trigger_price:
            fields["trigger_price"] = order.trigger_price
        if order.filled:
            fields["avg_fill_price"] = order.avg_fill_price
        if order.parent:
            fields["original_basket_id"] = order.parent
        if order.sibling:
            fields["linked_basket_ids"] = order.sibling
        if order.window_name:
            fields["window_name"] = order.window_name
        if order.role == "entry" and (order.stop_ticks or order.target_ticks):
            fields["bracket_type"] = RON.TARGET_AND_STOP_STATIC
        return fields

    async def _notify(self, order: Order, notify_type: int, status: str, **extra) -> None:
        """A Rithmic order notification [351] to the order sockets."""
        fields = self._order_fields(order) | {"status": status} | extra
        if order.status == "complete":
            fields["completion_reason"] = order.completion_reason
        self.notifications.append((351, order.basket_id, status))
        await self._broadcast("order", RON(template_id=351, notify_type=notify_type, **fields))

    async def _exchange(self, order: Order, notify_type: int, report_type: str, **extra) -> None:
        """An exchange order notification [352] to the order sockets."""
        fields = self._order_fields(order) | {"report_type": report_type} | extra
        self.notifications.append((352, order.basket_id, report_type))
        await self._broadcast("order", EON(template_id=352, notify_type=notify_type, **fields))

    async def _broadcast(self, plant: str, message) -> None:
        for session in list(self.sessions):
            if session.plant == plant and (
                session.order_updates if plant == "order" else session.pnl_updates
            ):
                await self._send(session, message)

    def _position_message(self, key: tuple[str, str, str], snapshot: bool):
        account, symbol, exchange = key
        net = self.positions.get(key, 0)
        bought = sum(o.filled for o in self.orders.values() if o.side == 1 and _key(o) == key)
        sold = sum(o.filled for o in self.orders.values() if o.side == 2 and _key(o) == key)
        return pb.instrument_pnl_position_update_pb2.InstrumentPnLPositionUpdate(
            template_id=450,
            is_snapshot=snapshot,
            fcm_id=self.fcm_id,
            ib_id=self.ib_id,
            account_id=account,
            symbol=symbol,
            exchange=exchange,
            product_code=product_code(symbol),
            instrument_type="Future",
            fill_buy_qty=bought,
            fill_sell_qty=sold,
            buy_qty=max(net, 0),
            sell_qty=max(-net, 0),
            open_position_quantity=abs(net),
            net_quantity=net,
            **self._stamp(),
        )

    async def _position_update(self, key: tuple[str, str, str]) -> None:
        await self._broadcast("pnl", self._position_message(key, snapshot=False))

    async def _listing(self, session: Session, rq) -> None:
        tid = rq.template_id
        data = {"rp_code": [], "rq_handler_rp_code": ["0"]}
        if tid == 320:  # the working orders as 352 snapshots, then 321
            for order in self.working(rq.account_id):
                fields = self._order_fields(order) | {"report_type": "status"}
                await self._send(
                    session,
                    EON(template_id=352, notify_type=EON.STATUS, is_snapshot=True, **fields),
                )
        elif tid == 402:  # positions as 450 snapshots, then 403
            for key in sorted(self.positions):
                if key[0] == rq.account_id:
                    await self._send(session, self._position_message(key, snapshot=True))
        elif tid == 304:
            for account in self.accounts:
                await self._answer(
                    session,
                    rq,
                    **data,
                    fcm_id=self.fcm_id,
                    ib_id=self.ib_id,
                    account_id=account,
                    currency="USD",
                    status="active",
                    algorithm="Max Loss",
                    loss_limit=2_000.0,
                    min_account_balance=0.0,
                    buy_limit=10,
                    sell_limit=10,
                    max_order_quantity=10,
                    presence_bits=1 | 2 | 4 | 8 | 16 | 64 | 128 | 256,
                )
        elif tid == 306:
            for code, margin in self.margins.items():
                await self._answer(
                    session,
                    rq,
                    **data,
                    fcm_id=self.fcm_id,
                    ib_id=self.ib_id,
                    account_id=rq.account_id,
                    product_code=code,
                    buy_margin_rate=margin,
                    sell_margin_rate=margin,
                    commission_fill_rate=0.62,
                    buy_limit=10,
                    sell_limit=10,
                    max_order_quantity=10,
                    presence_bits=1 | 2 | 8 | 16 | 32 | 64,
                )
        elif tid in (338, 340):  # the working brackets' targets / stops
            role = "target" if tid == 338 else "stop"
            for entry in self.orders.values():
                children = [self.orders[b] for b in entry.children]
                for child in children:
                    if child.role == role and child.status == "open":
                        await self._answer(
                            session,
                            rq,
                            **data,
                            basket_id=entry.basket_id,
                            **{
                                f"{role}_quantity": str(entry.quantity),
                                f"{role}_quantity_released": str(child.quantity),
                                f"{role}_ticks": str(getattr(entry, f"{role}_ticks")),
                            },
                        )
        await self._answer(session, rq)

    def _next_basket(self) -> str:
        self._baskets += 1
        return str(100_000 + self._baskets)


def trades_at(
    symbol: str, start: float, rows: Iterable[tuple[float, int, str]], exchange: str = "CME"
) -> list[Trade]:
    """History rows (price, size, aggressor), one a second from ``start``."""
    return [
        Trade(symbol, exchange, price, size, side, int(start) + i, 0)
        for i, (price, size, side) in enumerate(rows)
    ]


def _split_time(at: float) -> tuple[int, int]:
    ssboe = int(at)
    return ssboe, round((at - ssboe) * 1e6) % 1_000_000


def _key(order: Order) -> tuple[str, str, str]:
    return order.account_id, order.symbol, order.exchange
