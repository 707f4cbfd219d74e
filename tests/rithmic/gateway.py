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

Order requests (new, modify, cancel, bracket, exit position, ...) are counted in
``order_requests`` and refused; any other request gets its response template with an error
``rp_code``, or a Reject [75] when it has none. See README.md in this folder.

Tests steer it: :meth:`push_trade`, :meth:`drop` (abort or close a plant's sockets),
:meth:`refuse_login`, and read what it received: ``logins``, ``logouts``, ``subscriptions``
(the live ones), ``subscription_log``, ``heartbeats``, ``replay_requests``, ``order_requests``,
``received``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
class Session:
    """One WebSocket: a plant once logged in."""

    ws: ServerConnection
    plant: str | None = None
    user: str = ""
    subscriptions: dict[tuple[str, str], int] = field(default_factory=dict)  # -> update bits


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

    def __post_init__(self) -> None:
        self.sessions: list[Session] = []
        self.refusing: dict[str, int] = {}  # plant (or "*") -> logins left to refuse
        self.server: Server | None = None
        self.port = 0
        self.client_ssl: ssl.SSLContext | None = None
        self._changed = asyncio.Event()

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
            await self._answer(session, rq)
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


def trades_at(
    symbol: str, start: float, rows: Iterable[tuple[float, int, str]], exchange: str = "CME"
) -> list[Trade]:
    """History rows (price, size, aggressor), one a second from ``start``."""
    return [
        Trade(symbol, exchange, price, size, side, int(start) + i, 0)
        for i, (price, size, side) in enumerate(rows)
    ]
