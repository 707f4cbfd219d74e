"""The ``rithmic`` broker: bracket orders at a Rithmic gateway, through ``async-rithmic``.

A bracket is one Rithmic server-side bracket order (``RequestBracketOrder``: a market entry with
its stop and target in ticks), so the protection lives at the broker: if this process dies, the
stop and the target stay working at Rithmic, as one OCO pair. What Rithmic reports is mapped
onto the kernel's reports (see docs/execution.md and docs/brokers.md):

* the entry's first order notification (or the 331 answer with its basket id): an
  :class:`OrderUpdate` ``accepted`` (``venue_order_id`` = Rithmic's basket id);
* an exchange order notification (352) ``fill``: a :class:`Fill` whose ``exec_id`` is Rithmic's
  ``fill_id`` (a fill delivered twice is forwarded once; the kernel would ignore it anyway), its
  ``order_id`` our client id (``R<run>-B<n>-entry``/``-stop``/``-target``, ``R<run>-F<n>``) and
  its role (entry, stop, target, flatten). The stop and target are new orders at Rithmic with
  their own basket ids; they are recognised by ``original_basket_id`` (the entry's basket) and
  their price type (stop market: the stop, limit: the target);
* a reject (352 ``reject`` or 351 complete with reason ``Reject``, or an error answer to the
  request itself): ``rejected`` with Rithmic's text;
* a cancel of an entry or of a flatten: ``cancelled``. The stop and target that Rithmic cancels
  itself (the OCO sibling of a fill, the children of an exit) are the kernel's own bookkeeping
  and are not reported, as with the paper broker.

``flatten`` is Rithmic's exit position (cancel the contract's working orders, then a market order
for the net position); it is confirmed when the position listing reports the contract flat.
``report()`` answers from the broker's own listings (orders and positions, re-read on connect and
on every reconnect) kept up to date by the notifications.

Threads: the kernel calls ``submit_bracket``/``flatten``/``cancel``/``report`` synchronously, and
``report()`` must answer from the broker's listings before the first order (the reconciliation on
start). So the client runs in its own thread with its own event loop: requests are scheduled on
it and return at once; the reports come back through ``on_fill``/``on_order_update`` on the
kernel's event loop (``call_soon_threadsafe``) when one is running, else directly. Only the first
``report()`` waits for the listings (at most 3 x ``request_timeout_s``).

``async_rithmic`` is imported inside the methods: importing this module is cheap.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from tradebot_core import (
    PRICE_SCALE,
    Broker,
    Direction,
    Fill,
    OrderIntent,
    OrderSide,
    OrderUpdate,
    PluginContext,
    hookimpl,
    register_secret,
    root_symbol,
)

if TYPE_CHECKING:
    from async_rithmic import RithmicClient

from ..feeds.rithmic_feed import ENV, RithmicConnectionSettings, _env, make_client

log = logging.getLogger(__name__)

_RP_CODE = re.compile(r"""['"]rp_?[cC]ode['"]:\s*\[([^\]]*)\]""")
_USER_TAG = re.compile(r"""['"]user_tag['"]:\s*['"]([^'"]+)['"]""")
MARKET, LIMIT, STOP_MARKET = 2, 1, 4  # PriceType in Rithmic's order notifications
BUY, SELL = 1, 2  # TransactionType


class RithmicBrokerError(RuntimeError):
    """The broker cannot work: settings missing, login refused, the contract unknown."""


class RithmicBrokerSettings(RithmicConnectionSettings):
    """YAML section ``broker.rithmic``; the credentials default to the ``RITHMIC_*`` variables."""

    account_id: str = Field(
        default_factory=_env("account_id"), description="required; default: $RITHMIC_ACCOUNT_ID"
    )
    contracts: dict[str, str] = Field(
        default_factory=dict, description="run symbol -> contract, e.g. {ES: ESZ6}"
    )
    front_month: bool = Field(
        default=True, description="a root symbol (ES) trades Rithmic's front month"
    )
    commission_per_side: Decimal = Field(
        default=Decimal("0.62"), ge=0, description="dollars per contract per fill (journal)"
    )
    flatten_confirm_s: float = Field(
        default=10.0, gt=0, description="how long the position listing is polled for flat"
    )


class _Tap(logging.Handler):
    """What the client only logs: a refused request's rp_code (by user tag), a forced logout."""

    def __init__(self, broker: RithmicBroker) -> None:
        super().__init__(level=logging.WARNING)
        self.broker = broker
        self.refusals: dict[str, list[str]] = {}
        self.last_rp_code: list[str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += "\n" + str(record.exc_info[1])
        except Exception:  # pragma: no cover - a broken record is not ours to fix
            return
        if "ForcedLogout" in text:
            self.broker._forced_logout()
        match = _RP_CODE.search(text)
        if match and record.levelno >= logging.ERROR:
            code = [part.strip().strip("'\"") for part in match.group(1).split(",")]
            self.last_rp_code = code
            tag = _USER_TAG.search(text)
            if tag:
                self.refusals[tag.group(1)] = code


@dataclass
class _Order:
    """One of our orders at Rithmic."""

    order_id: str
    bracket_id: str
    role: str  # entry, stop, target, flatten
    symbol: str  # the kernel's symbol
    contract: str
    side: OrderSide
    quantity: int
    basket_id: str = ""
    state: str = "submitted"  # submitted, working, done
    accepted: bool = False
    cancel_reason: str | None = None  # a cancel asked before the basket id was known
    children: dict[str, str] = field(default_factory=dict)  # role -> basket id


class RithmicBroker(Broker):
    """Rithmic server-side brackets; notifications reported as fills and order updates."""

    name: ClassVar[str] = "rithmic"
    Settings = RithmicBrokerSettings
    real_money: ClassVar[bool] = True

    def __init__(self, settings: RithmicBrokerSettings, context: PluginContext) -> None:
        super().__init__(settings, context)
        missing = [
            f"{name} (${ENV[name]})"
            for name in ("user", "password", "gateway", "account_id")
            if not str(
                getattr(settings, name).get_secret_value()
                if name == "password"
                else getattr(settings, name)
            ).strip()
        ]
        if missing:
            raise RithmicBrokerError(
                "Rithmic broker: set broker.rithmic." + ", broker.rithmic.".join(missing)
            )
        self._password = settings.password.get_secret_value()
        register_secret(self._password)
        self.instruments = context.instruments
        self.symbol = context.symbol
        self.account_id = settings.account_id
        self.on_fill: Any = lambda fill: None
        self.on_order_update: Any = lambda update: None
        # the client's thread and loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: RithmicClient | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._connected = False
        self._kernel_loop: asyncio.AbstractEventLoop | None = None
        self._tap = _Tap(self)
        # what we know (written in the client's thread)
        self._orders: dict[str, _Order] = {}  # our order id -> order
        self._by_basket: dict[str, str] = {}  # Rithmic basket id -> our order id
        self._fill_ids: set[str] = set()
        self._flattens: dict[str, list[str]] = {}  # contract -> flatten ids waiting for a basket
        self._contracts: dict[str, str] = dict(settings.contracts)  # symbol -> contract
        self._positions: dict[str, int] = {}  # contract -> net, from listings and fills
        self._working: set[str] = set()  # our order ids working at Rithmic
        self._synced = threading.Event()
        self._ever_synced = False
        self._first_listing: concurrent.futures.Future[Any] | None = None
        self._report_waited = False  # the first report() waited for the first listing
        self.forced_logouts = 0
        self.reconnects = 0
        self.duplicate_fills = 0
        self.flat_confirmed: list[str] = []  # flatten ids the position listing confirmed
        # the RMS (risk) figures Rithmic holds for the account, read at every (re)connect
        self.margins: dict[str, Decimal] = {}  # product code -> margin per contract
        self.account_rms: dict[str, Any] = {}

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"RithmicBroker(user={s.user!r}, system_name={s.system_name!r}, "
            f"gateway={s.gateway!r}, account_id={s.account_id!r})"
        )

    # -- the kernel's calls (its thread) --------------------------------------------------------

    def submit_bracket(self, intent: OrderIntent, bracket_id: str, ts_ns: int) -> None:
        side = OrderSide.BUY if intent.direction is Direction.LONG else OrderSide.SELL
        entry = _Order(
            order_id=f"{bracket_id}-entry",
            bracket_id=bracket_id,
            role="entry",
            symbol=intent.symbol,
            contract="",
            side=side,
            quantity=intent.quantity,
        )
        self._run(self._submit(entry, intent.stop_ticks, intent.target_ticks))

    def flatten(
        self, symbol: str, order_id: str, side: OrderSide, quantity: int, reason: str, ts_ns: int
    ) -> None:
        """Rithmic's exit position for the contract: its working orders (stops and targets
        included) cancelled, the net position closed at market. Confirmed when the position
        listing reports the contract flat."""
        order = _Order(order_id, order_id, "flatten", symbol, "", side, quantity)
        self._run(self._exit(order, reason))

    def cancel(self, order_id: str, reason: str) -> None:
        """Cancel an entry not filled yet (at Rithmic its bracket goes with it)."""
        self._run(self._cancel(order_id, reason))

    def day_margin(self, symbol: str) -> Decimal | None:
        """The margin per contract Rithmic's product RMS gives the account for ``symbol``'s
        product (the higher of the buy and sell rates), as read at the last (re)connect. The
        kernel asks before a day's first trade, on its event loop: this never waits for Rithmic.
        ``None`` when no figure is known yet (not connected, or no RMS for the product)."""
        self._start_connecting(retry=True)
        contract = self._contracts.get(symbol, symbol)
        for code in (symbol, root_symbol(symbol), root_symbol(contract)):
            if code in self.margins:
                return self.margins[code]
        if not self._ever_synced:
            log.warning("rithmic broker: no margin for %s yet (not connected)", symbol)
        return None

    def on_time(self, now_ns: int) -> None:
        """The wall clock (live runs): log in early, so the margins are known before the
        first trade."""
        self._start_connecting()

    def on_ticks(self, symbol: str, ticks: Any) -> None:
        if self._first_listing is None:
            self._start_connecting()

    def _start_connecting(self, retry: bool = False) -> None:
        """Log in in the background (never waits); with ``retry``, again if the last attempt
        failed."""
        if self._ever_synced:
            return
        first = self._first_listing
        if first is None or (retry and first.done()):
            self._first_listing = self._run(self._ensure_connected())

    def report(self) -> dict[str, Any]:
        """The broker's word: ``{"positions": {symbol: net}, "working": [our order ids]}``,
        from Rithmic's order and position listings (re-read on every (re)connect) and the
        notifications since. The first call waits for the first listing; later calls never
        block (while a reconnect's listing is on its way they answer with what was known)."""
        if not self._ever_synced:
            if self._first_listing is None or (
                not self._report_waited and not self._first_listing.done()
            ):
                self._report_waited = True
                if self._first_listing is None:
                    self._first_listing = self._run(self._ensure_connected())
                try:
                    self._first_listing.result(self.settings.request_timeout_s * 3)
                except Exception as exc:
                    log.error("rithmic broker: no listing from Rithmic for report(): %s", exc)
            elif self._first_listing.done():  # it failed: try again, without waiting
                self._first_listing = self._run(self._ensure_connected())
        positions: dict[str, int] = {}
        for contract, net in list(self._positions.items()):
            if net:
                symbol = self._symbol_of(contract)
                positions[symbol] = positions.get(symbol, 0) + net
        return {"positions": positions, "working": sorted(self._working)}

    def close(self) -> None:
        """Log out and stop the client's thread."""
        if self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        with contextlib.suppress(Exception):
            future.result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        logging.getLogger("rithmic").removeHandler(self._tap)
        self._loop = self._thread = self._client = None
        self._connected = False
        self._synced.clear()
        self._ever_synced = False
        self._first_listing = None
        self._report_waited = False

    async def _shutdown(self) -> None:
        """Log out, then end every task of the client's loop (reconnect loops included)."""
        if self._client is not None:
            await self._shutdown_client(self._client)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @staticmethod
    async def _shutdown_client(client: RithmicClient) -> None:
        with contextlib.suppress(Exception):
            await client.disconnect()
        for plant in client.plants.values():
            with contextlib.suppress(Exception):
                await plant._stop_background_tasks()

    async def stop(self) -> None:
        await asyncio.to_thread(self.close)

    # -- plumbing between the threads ----------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        with contextlib.suppress(RuntimeError):
            self._kernel_loop = asyncio.get_running_loop()
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()
                loop.close()

            self._thread = threading.Thread(target=main, name="rithmic-broker", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
        future = asyncio.run_coroutine_threadsafe(self._guard(coro), self._loop)
        return future

    async def _guard(self, coro: Coroutine[Any, Any, Any]) -> Any:
        try:
            return await coro
        except Exception:
            log.exception("rithmic broker: request failed")
            raise

    def _emit(self, handler: Callable[[Any], None], report: Any) -> None:
        """Hand a report to the kernel, on its loop when it has one."""
        loop = self._kernel_loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(handler, report)
        else:
            handler(report)

    def _update(self, order_id: str, status: str, reason: str = "", basket: str = "") -> None:
        self._emit(
            lambda u: self.on_order_update(u),
            OrderUpdate(
                order_id=order_id,
                status=status,
                ts_ns=time.time_ns(),
                venue_order_id=basket,
                reason=reason,
            ),
        )

    # -- the client (its thread) ----------------------------------------------------------------

    def _make_client(self) -> RithmicClient:
        client = make_client(self.settings, self._password)
        client.on_rithmic_order_notification += self._on_order_notification
        client.on_exchange_order_notification += self._on_exchange_notification
        client.on_connected += self._on_connected
        return client

    async def _ensure_connected(self) -> RithmicClient:
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._connected and self._client is not None:
                return self._client
            from async_rithmic import SysInfraType

            logging.getLogger("rithmic").addHandler(self._tap)
            client = self._client = self._make_client()
            plants = [SysInfraType.ORDER_PLANT, SysInfraType.PNL_PLANT]
            if self.settings.front_month:
                plants.append(SysInfraType.TICKER_PLANT)
            try:
                await client.connect(plants=plants)
            except Exception as exc:
                code = self._tap.last_rp_code
                self._client = None
                raise RithmicBrokerError(
                    f"Rithmic broker: cannot log in to {self.settings.gateway}"
                    + (f": {' '.join(code)}" if code else f": {exc}")
                ) from exc
            accounts = [a.account_id for a in client.accounts or []]
            if self.account_id not in accounts:
                await self._shutdown_client(client)
                self._client = None
                raise RithmicBrokerError(
                    f"Rithmic broker: account {self.account_id!r} is not this user's "
                    f"(accounts: {', '.join(accounts) or 'none'})"
                )
            self._connected = True
            log.info("rithmic broker: logged in, account %s", self.account_id)
            await self._resync()
            await self._read_rms()
            return client

    def _on_connected(self, plant: str) -> None:
        if plant == "order" and self._connected:  # a reconnect, not the first login
            self.reconnects += 1
            self._synced.clear()
            log.warning("rithmic broker: order plant reconnected; re-reading positions and orders")
            asyncio.get_running_loop().create_task(self._resync_later())

    async def _resync_later(self) -> None:
        await asyncio.sleep(0.05)  # let the plant finish its login (update subscriptions)
        try:
            await self._resync()
        except Exception:
            log.exception("rithmic broker: re-reading positions and orders failed")
        await self._read_rms()

    async def _read_rms(self) -> None:
        """The account's and its products' RMS (risk limits, margin per contract), cached for
        :meth:`day_margin`. A failure keeps what was known and is logged."""
        client = self._client
        if client is None:
            return
        try:
            async with asyncio.timeout(self.settings.request_timeout_s):
                accounts = await client.get_account_rms()
                products = await client.get_product_rms(account_id=self.account_id)
        except Exception as exc:
            log.warning("rithmic broker: no RMS from Rithmic (%s); margins unchanged", exc)
            return
        for info in accounts:
            if getattr(info, "account_id", "") == self.account_id:
                self.account_rms = {
                    name: getattr(info, name)
                    for name in ("status", "algorithm", "loss_limit", "max_order_quantity")
                    if hasattr(info, name)
                }
        margins: dict[str, Decimal] = {}
        for info in products:
            code = getattr(info, "product_code", "")
            rates = [
                Decimal(str(getattr(info, name, 0) or 0))
                for name in ("buy_margin_rate", "sell_margin_rate")
            ]
            if code and max(rates) > 0:
                margins[code] = max(rates)
        self.margins = margins
        log.info("rithmic broker: margins per contract %s", margins or "none")

    def _forced_logout(self) -> None:
        self.forced_logouts += 1
        log.error(
            "rithmic broker: Rithmic forced a logout (another session with this user?); "
            "the client reconnects, positions and orders are re-read"
        )

    async def _contract(self, symbol: str) -> str:
        if symbol in self._contracts:
            return self._contracts[symbol]
        contract = symbol
        if root_symbol(symbol) == symbol and self.settings.front_month:
            assert self._client is not None
            found = await self._client.get_front_month_contract(symbol, self.settings.exchange)
            if not found:
                raise RithmicBrokerError(f"Rithmic broker: no front-month contract for {symbol}")
            contract = found
        self._contracts[symbol] = contract
        return contract

    def _symbol_of(self, contract: str) -> str:
        for symbol, known in self._contracts.items():
            if known == contract:
                return symbol
        if root_symbol(contract) == root_symbol(self.symbol):
            return self.symbol
        return contract

    async def _resync(self) -> None:
        """Re-read the account's working orders and positions (Rithmic's listings)."""
        client = self._client
        if client is None:
            return
        orders = await client.list_orders(account_id=self.account_id)
        positions = await client.list_positions(account_id=self.account_id)
        working: set[str] = set()
        for snapshot in orders:
            our = self._adopt(snapshot)
            if our is not None:
                working.add(our.order_id)
                our.state = "working"
        for order in self._orders.values():
            if order.state == "working" and order.order_id not in working:
                log.warning(
                    "rithmic broker: %s is no longer working at Rithmic (done while the "
                    "connection was down?)",
                    order.order_id,
                )
        self._working = working
        self._positions = {p.symbol: int(p.net_quantity) for p in positions}
        self._synced.set()
        self._ever_synced = True
        log.info(
            "rithmic broker: positions %s, working %s",
            {k: v for k, v in self._positions.items() if v} or "flat",
            sorted(working) or "none",
        )

    # -- requests -------------------------------------------------------------------------------

    async def _submit(self, entry: _Order, stop_ticks: int, target_ticks: int) -> None:
        from async_rithmic import OrderType, TransactionType

        self._orders[entry.order_id] = entry
        try:
            client = await self._ensure_connected()
            entry.contract = await self._contract(entry.symbol)
        except Exception as exc:
            entry.state = "done"
            self._update(entry.order_id, "rejected", str(exc))
            raise
        try:
            answer = await client.submit_order(
                entry.order_id,
                entry.contract,
                self.settings.exchange,
                qty=entry.quantity,
                transaction_type=(
                    TransactionType.BUY if entry.side is OrderSide.BUY else TransactionType.SELL
                ),
                order_type=OrderType.MARKET,
                stop_ticks=stop_ticks,
                target_ticks=target_ticks,
                account_id=self.account_id,
            )
        except TimeoutError:
            # no answer: the connection may have dropped after the order went out. Never send
            # it again: the listings after the reconnect say whether Rithmic has it.
            log.error(
                "rithmic broker: no answer to %s; checking Rithmic's order listing",
                entry.order_id,
            )
            await self._after_lost_answer(entry)
            return
        basket = answer[0].basket_id if answer else ""
        if not basket:
            code = self._tap.refusals.pop(entry.order_id, None) or self._tap.last_rp_code
            entry.state = "done"
            reason = "Rithmic refused the order" + (
                f": {' '.join(code[1:] or code)}" if code else ""
            )
            self._update(entry.order_id, "rejected", reason)
            return
        self._know(entry, basket)
        if entry.cancel_reason is not None:
            await self._cancel(entry.order_id, entry.cancel_reason)

    async def _after_lost_answer(self, entry: _Order) -> None:
        deadline = time.monotonic() + self.settings.request_timeout_s * 3
        while time.monotonic() < deadline:
            if entry.basket_id:
                return  # a notification or the listing found it
            if self._synced.is_set() and self._client is not None:
                with contextlib.suppress(Exception):
                    await self._resync()
                if entry.basket_id:
                    return
                break
            await asyncio.sleep(0.05)
        if not entry.basket_id and entry.state != "done":
            entry.state = "done"
            self._update(
                entry.order_id,
                "rejected",
                "no answer from Rithmic and the order is not in its listing",
            )

    def _know(self, order: _Order, basket: str) -> None:
        """Rithmic's basket id for one of our orders: the entry is accepted."""
        if order.basket_id:
            return
        order.basket_id = basket
        self._by_basket[basket] = order.order_id
        if order.state == "submitted":
            order.state = "working"
            self._working.add(order.order_id)
        if order.role == "entry" and not order.accepted:
            order.accepted = True
            self._update(order.order_id, "accepted", basket=basket)

    async def _exit(self, order: _Order, reason: str) -> None:
        self._orders[order.order_id] = order
        client = await self._ensure_connected()
        order.contract = await self._contract(order.symbol)
        self._flattens.setdefault(order.contract, []).append(order.order_id)
        await client.exit_position(
            symbol=order.contract,
            exchange=self.settings.exchange,
            account_id=self.account_id,
            window_name=order.order_id,
        )
        deadline = time.monotonic() + self.settings.flatten_confirm_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            positions = await client.list_positions(account_id=self.account_id)
            net = sum(int(p.net_quantity) for p in positions if p.symbol == order.contract)
            if net == 0:
                self._positions[order.contract] = 0
                self.flat_confirmed.append(order.order_id)
                log.info("rithmic broker: %s confirmed flat (%s)", order.contract, reason)
                return
        log.error(
            "rithmic broker: %s not flat %.0f s after the exit (%s)",
            order.contract,
            self.settings.flatten_confirm_s,
            reason,
        )

    async def _cancel(self, order_id: str, reason: str) -> None:
        order = self._orders.get(order_id)
        if order is None or order.state == "done":
            log.warning("rithmic broker: cancel of %s, which is not working", order_id)
            return
        order.cancel_reason = reason
        if not order.basket_id:
            return  # sent once Rithmic answers with the basket id
        client = await self._ensure_connected()
        await client.cancel_order(basket_id=order.basket_id, account_id=self.account_id)

    # -- notifications (the client's thread) ----------------------------------------------------

    def _adopt(self, note: Any) -> _Order | None:
        """Our order for a notification or listing entry, learning its basket id."""
        basket = note.basket_id
        known = self._by_basket.get(basket)
        if known is not None:
            return self._orders[known]
        if getattr(note, "account_id", self.account_id) != self.account_id:
            return None
        tag = note.user_tag
        parent = note.original_basket_id
        if parent or (tag.endswith("-entry") and note.price_type != MARKET):
            # a bracket's stop or target: the entry's tag, its own basket id
            bracket = tag.removesuffix("-entry") if tag else ""
            entry_id = self._by_basket.get(parent) or (f"{bracket}-entry" if bracket else "")
            entry = self._orders.get(entry_id)
            if entry is not None:
                bracket = entry.bracket_id
            if not bracket:
                return None
            role = "stop" if note.price_type == STOP_MARKET else "target"
            order = self._orders.get(f"{bracket}-{role}")
            if order is None:
                order = _Order(
                    order_id=f"{bracket}-{role}",
                    bracket_id=bracket,
                    role=role,
                    symbol=entry.symbol if entry else self._symbol_of(note.symbol),
                    contract=note.symbol,
                    side=OrderSide.BUY if note.transaction_type == BUY else OrderSide.SELL,
                    quantity=int(note.quantity),
                )
                self._orders[order.order_id] = order
            self._know(order, basket)
            return order
        if tag.endswith("-entry"):
            order = self._orders.get(tag)
            if order is None:  # after a restart: an entry the kernel sent before
                order = _Order(
                    order_id=tag,
                    bracket_id=tag.removesuffix("-entry"),
                    role="entry",
                    symbol=self._symbol_of(note.symbol),
                    contract=note.symbol,
                    side=OrderSide.BUY if note.transaction_type == BUY else OrderSide.SELL,
                    quantity=int(note.quantity),
                    accepted=True,
                )
                self._orders[tag] = order
            self._know(order, basket)
            return order
        if note.price_type == MARKET:  # an exit position's market order
            waiting = self._flattens.get(note.symbol, [])
            window = getattr(note, "window_name", "")
            order_id = window if window in waiting else (waiting[0] if waiting else "")
            if order_id:
                waiting.remove(order_id)
                order = self._orders[order_id]
                self._know(order, basket)
                return order
        return None

    def _on_order_notification(self, note: Any) -> None:
        """Rithmic order notification (351): acceptance, and a reject's reason."""
        if note.is_snapshot:
            return
        order = self._adopt(note)
        if order is None:
            return
        if note.status == "complete" and note.completion_reason == "Reject":
            self._reject(order, note.text or note.completion_reason)

    def _on_exchange_notification(self, note: Any) -> None:
        """Exchange order notification (352): fills, cancels, rejects."""
        if note.is_snapshot:
            return
        order = self._adopt(note)
        if order is None:
            if note.report_type == "fill":
                log.warning(
                    "rithmic broker: a fill of basket %s (%s %s) that is not ours",
                    note.basket_id,
                    note.symbol,
                    note.fill_size,
                )
            return
        kind = note.report_type
        if kind == "fill":
            self._fill(order, note)
        elif kind == "reject":
            self._reject(order, note.text or "rejected")
        elif kind == "cancel":
            self._cancelled(order, note)

    def _fill(self, order: _Order, note: Any) -> None:
        fill_id = note.fill_id or f"{note.basket_id}-{note.sequence_number}"
        if fill_id in self._fill_ids:
            self.duplicate_fills += 1
            log.info("rithmic broker: fill %s reported again; ignored", fill_id)
            return
        self._fill_ids.add(fill_id)
        size = int(note.fill_size)
        sign = 1 if order.side is OrderSide.BUY else -1
        self._positions[order.contract or note.symbol] = (
            self._positions.get(order.contract or note.symbol, 0) + sign * size
        )
        if int(note.total_unfilled_size) == 0:
            order.state = "done"
            self._working.discard(order.order_id)
        ts_ns = int(note.ssboe) * 1_000_000_000 + int(note.usecs) * 1_000
        tick = self.instruments[order.symbol].tick_fixed
        price = int(Decimal(str(note.fill_price)) * PRICE_SCALE)
        price = round(price / tick) * tick
        fill = Fill(
            exec_id=fill_id,
            bracket_id=order.bracket_id,
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=size,
            price=price,
            ts_ns=ts_ns or time.time_ns(),
            role=order.role,  # type: ignore[arg-type]
            commission=self.settings.commission_per_side * size,
        )
        self._emit(lambda f: self.on_fill(f), fill)

    def _reject(self, order: _Order, reason: str) -> None:
        if order.state == "done":
            return
        order.state = "done"
        self._working.discard(order.order_id)
        self._update(order.order_id, "rejected", f"Rithmic: {reason}", basket=order.basket_id)

    def _cancelled(self, order: _Order, note: Any) -> None:
        if order.state == "done":
            return
        order.state = "done"
        self._working.discard(order.order_id)
        if order.role in ("stop", "target"):
            return  # the OCO sibling of a fill, or an exit's: the kernel's books cancel it
        reason = order.cancel_reason or note.text or "cancelled at Rithmic"
        self._update(order.order_id, "cancelled", reason, basket=order.basket_id)


@hookimpl
def register_brokers(register: Any) -> None:
    register(RithmicBroker)
