"""The operator: a JSON-RPC 2.0 API over the order books and the sequencer.

Methods (params as an object, or positionally in the order listed):
    status()                                   chain, head state, batches, markets
    markets()                                  every market with its price, funding and parameters
                                               (a series: its terms, settlement and Greeks)
    submit_order(order, signature, kind)       match a signed order (limit | ioc | post_only)
    cancel_order(account, nonce, signature)    a signed Cancel: the order leaves the book
    withdraw(account, amount, nonce, expiry, signature)   a signed Withdraw; answers the
                                               record's index (it can move if L1 drops the
                                               operator's batches: `account` lists the current)
    account(account)                           collateral, positions, value, margin, open orders,
                                               and per underlying the portfolio (net Greeks, the
                                               worst scenario, its loss, floors, requirement)
    account_of(owner)                          the account id of an L1 address
    book(market, depth)                        price levels per side
    trades(market, limit)                      recent trades, newest first
    batches(limit)                             the operator's batches and their L1 status
    withdrawal_proof(index)                    what Bridge.claim needs, against a final batch
    next_nonce(account)                        a nonce above every one the account used
    submit_oracle(tx)                          an OracleUpdate, RiskUpdate or SettleSeries (hex), from
                                               the feeder

An `order` is {account, market, side: "buy" | "sell", size, price, max_fee_ppm, nonce,
expiry}, signed with EIP-712 (docs/spec.md, Signing). Every refusal is a JSON-RPC error
with a stable code (ERRORS) and, in `data`, the reason's name; a refused request changes
nothing. Every accepted request is in the store before its reply is sent.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

from .. import jsonrpc
from ..api import book_id_of, order_id, order_json
from ..jsonrpc import RpcError, hex_data, integer, param
from ..l1.records import proof as flat_proof
from ..stf import margin, portfolio, products
from ..stf.constants import MAX_PRICE, MAX_SIZE, ORDER_SLOTS, PPM
from ..stf.fork import filled_so_far, order_hash
from ..stf.reasons import Reason
from ..stf.signing import recover, typed_digest
from ..stf.transactions import (
    FEE_BOUND,
    ORACLE_UPDATE,
    ORDER_LENGTH,
    RISK_UPDATE,
    SETTLE_SERIES,
    Cancel,
    Order,
    Trade,
    Withdraw,
    decode,
)
from ..stf.transactions import Fill as FillTx
from . import keeper
from .book import Entry, ExitReason, Fill, Kind, OrderBook, Verdict
from .sequencer import Sequencer
from .store import BatchStatus, OrderStatus

log = logging.getLogger("rollup.operator")

ERRORS = {
    "invalid_params": -32602,
    "rejected": 1001,
    "unknown_account": 1002,
    "bad_signature": 1003,
    "unknown_market": 1004,
    "book": 1005,
    "not_found": 1006,
    "unavailable": 1007,
}
"""Error codes of the operator API (beyond JSON-RPC's own)."""

KINDS = {"limit": Kind.LIMIT, "ioc": Kind.IOC, "post_only": Kind.POST_ONLY}
PRODUCT_NAMES = {products.PERPETUAL: "perpetual", products.CALL: "call", products.PUT: "put"}
U64 = 2**64 - 1
MAKER_REASONS = {Reason.UNKNOWN_ACCOUNT, Reason.BAD_SIGNATURE, Reason.WRONG_SIGNER, Reason.NONCE_USED,
                 Reason.OVERFILL, Reason.EXPIRED, Reason.NO_ORDER, Reason.PRICE_OUT_OF_BAND}
"""Refusals of a fill that are the resting order's fault: it leaves the book (a maker
priced beyond the band trades at its own price, so it is the one out of band)."""


def portfolio_view(account: Any, markets: Any) -> list[dict[str, Any]]:
    """Per underlying an account's positions are written on (the portfolio rule, spec
    §10.2): the net Greeks (delta in ppm of a lot, cash gamma and vega in collateral units),
    the worst of the 21 scenarios (price and volatility moves in ppm) with its loss, the
    short options' maintenance floors, and the underlying's maintenance requirement."""
    exposures = [margin.exposure(p, markets[p.market]) for p in account.positions]
    out = []
    for underlying_id, net in sorted(portfolio.net_exposures(exposures).items()):
        u = margin.underlying(markets[underlying_id] if underlying_id < len(markets) else None)
        s, w = min(portfolio.scenarios(u), key=lambda sw: (portfolio.scenario_pnl(net, u.price, *sw), sw))
        out.append({
            "underlying": underlying_id, "delta": net.delta, "gamma": net.gamma, "vega": net.vega,
            "worst_price_move_ppm": s, "worst_vol_move_ppm": w,
            "worst_loss": portfolio.ceil_div(portfolio.worst_loss(net, u), portfolio.SCENARIO_SCALE),
            "floors": portfolio.ceil_div(net.short_maintenance * u.price, PPM),
            "maintenance_requirement": portfolio.underlying_requirement(net, u, False),
        })
    return out


def error(kind: str, message: str, reason: Any = None) -> RpcError:
    return RpcError(ERRORS[kind], message, None if reason is None else str(getattr(reason, "name", reason)))


def parse_order(value: Any) -> Order:
    if not isinstance(value, dict):
        raise error("invalid_params", "invalid params: order must be an object")
    side = value.get("side")
    if side not in ("buy", "sell"):
        raise error("invalid_params", "invalid params: order.side must be 'buy' or 'sell'")
    return Order(
        integer(value.get("account"), "order.account", 0, 2**32 - 1),
        integer(value.get("market"), "order.market", 0, 255),
        side == "buy",
        integer(value.get("size"), "order.size", 1, MAX_SIZE),
        integer(value.get("price"), "order.price", 1, MAX_PRICE),
        integer(value.get("max_fee_ppm"), "order.max_fee_ppm", 0, 2**32 - 1),
        integer(value.get("nonce"), "order.nonce", 0, U64),
        integer(value.get("expiry"), "order.expiry", 0, U64),
    )


class Collector:
    """When Python's cycle collector runs in the operator (the request path's latency).

    A full collection walks every tracked object, and the operator holds millions (the
    journal back to the newest final batch, the trees' nodes, the books): here one took
    150-220 ms, and a request that arrives meanwhile waits that long. So: what exists
    after recovery is frozen (never walked again), automatic full collections are off,
    and the background loop runs one only after the API has been idle for `idle`
    seconds. The young generations still run automatically (a few ms at most): cycles
    are collected young, which is where they are made (tracebacks, the event loop's
    futures); a cycle that outlives them waits for the next quiet moment."""

    def __init__(self, idle: float = 2.0, every: float = 60.0) -> None:
        self.idle = idle
        self.every = every
        self.last_full = time.monotonic()

    def start(self) -> None:
        gc.collect()
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, 2**31 - 1)  # never a full collection on its own

    def tick(self, last_request: float, now: float | None = None) -> bool:
        """Run a full collection if the API is quiet and the last one is `every` seconds
        old; whether it ran."""
        now = time.monotonic() if now is None else now
        if now - last_request < self.idle or now - self.last_full < self.every:
            return False
        gc.collect()
        self.last_full = now
        return True


class OperatorService(jsonrpc.Service):
    arity = {"status": 0, "markets": 0, "submit_order": 3, "cancel_order": 3, "withdraw": 5, "account": 1,
             "account_of": 1, "book": 2, "trades": 2, "batches": 1, "withdrawal_proof": 1, "next_nonce": 1,
             "submit_oracle": 1}
    named = frozenset(arity)

    def __init__(self, sequencer: Sequencer, maker_fee_ppm: int = 200, taker_fee_ppm: int = 500,
                 funding_interval: int = 60) -> None:
        super().__init__()
        if not (0 <= maker_fee_ppm <= FEE_BOUND and 0 <= taker_fee_ppm <= FEE_BOUND):
            raise ValueError(f"fee rates are at most {FEE_BOUND} ppm (the width a trade carries)")
        self.lock = sequencer.lock  # one lock for the API, the books and the sequencer
        self.funding_interval = funding_interval
        self.seq = sequencer
        self.store = sequencer.store
        self.maker_fee_ppm = maker_fee_ppm
        self.taker_fee_ppm = taker_fee_ppm
        self.books: dict[int, OrderBook] = {
            m.id: OrderBook.for_market(m) for m in sequencer.state.markets if m is not None
        }
        listing = sequencer.deployment.listing()
        self.symbols = {info.id: info.symbol for info, _ in listing}
        self.lots = {info.id: info.lot for info, _ in listing}
        self.stopping = threading.Event()
        self.collector: Collector | None = None
        """The cycle collector's policy, when this process is the operator's own (`cli`)."""
        self._restore_books()
        sequencer.on_resequenced = self._after_resequencing

    # ------------------------------------------------------------------ persistence of the books

    def _restore_books(self) -> None:
        by_market: dict[int, list[Entry]] = {}
        for row in self.store.open_orders():
            order = Order.decode(row.body[:ORDER_LENGTH])
            entry = Entry(book_id_of(row.id), order, row.body[ORDER_LENGTH:], KINDS[row.kind], row.remaining,
                          row.created_seq)
            by_market.setdefault(order.market, []).append(entry)
        for market, entries in by_market.items():
            self.books[market].restore(entries)
        # ids already handed out (filled orders included) are never reused
        for market, book in self.books.items():
            top = self.store.highest_order_id(market)
            if top is not None:
                book._next_id = max(book._next_id, book_id_of(top) + 1)

    def _after_resequencing(self, results: list[tuple[bytes, Any]], adopted: bool) -> None:
        """The sequencer rebased on L1 (a batch of ours dropped or refused, or another
        proposer's adopted) and sequenced user transactions again: a trade the state now
        refuses did not happen, so both its orders are aligned with what the state records
        of them; after another proposer's batch (which may have filled or cancelled
        orders), every resting order is."""
        if adopted:
            for book in self.books.values():
                for is_buy in (True, False):
                    for entry in list(book.orders(is_buy)):
                        self._realign(entry.order, entry.signature)
        for tx, receipt in results:
            trade = decode(tx)
            if receipt.applied:
                continue
            if isinstance(trade, Trade):
                self._realign(trade.maker, trade.maker_signature)
            if isinstance(trade, FillTx):  # the maker order as acknowledged (its Trade may be refused too)
                for row in self.store.orders_by_nonce(trade.maker_account, trade.maker_nonce):
                    self._realign(Order.decode(row.body[:ORDER_LENGTH]), row.body[ORDER_LENGTH:])
            if isinstance(trade, (Trade, FillTx)):
                self._realign(trade.taker, trade.taker_signature)

    def _realign(self, order: Order, signature: bytes) -> None:
        """Make an acknowledged order's book entry and stored status agree with the state:
        its slot's fill (it rests again if it can still fill), or its end (slot reused)."""
        row = self.store.order_by_body(order.account, order.nonce, order.encode() + signature)
        book = self.books.get(order.market)
        if row is None or book is None:
            return
        gid, kind_name, seq = row.id, row.kind, row.created_seq
        book_id = book_id_of(gid)
        filled = filled_so_far(self.state.slot(order.account, order.nonce), order.nonce, order_hash(order))
        entry = book.remove(book_id)
        remaining = 0 if filled is None else order.size - filled
        rests = KINDS[kind_name] != Kind.IOC and remaining >= book.step_size
        if rests:
            book.restore([Entry(book_id, order, signature, KINDS[kind_name], remaining,
                                entry.seq if entry is not None else int(seq))])
        status = OrderStatus.OPEN if rests else (OrderStatus.CANCELLED if filled is None else OrderStatus.DONE)
        with self.store.transaction() as db:
            db.order_remaining(gid, remaining, status)

    # ------------------------------------------------------------------ checks

    def _posted(self, order: Order) -> bool:
        """Whether a Trade posted `order` already: its nonce slot holds it (a later fill
        then names it, a Fill, instead of carrying it again)."""
        slot = self.state.slot(order.account, order.nonce)
        return slot.nonce == order.nonce and slot.order_hash in self.state.orders \
            and self.state.orders[slot.order_hash] == order

    @property
    def state(self) -> Any:
        return self.seq.state

    def _context(self) -> Any:
        if self.seq.batch is not None:
            return self.seq.batch.context
        return self.seq.context_for(self.state.globals.time, self.state.globals.deposit_count,
                                    self.state.globals.forced_count)

    def _owner(self, account_id: int) -> bytes:
        account = self.state.account(account_id)
        if account.owner == b"\0" * 20:
            raise error("unknown_account", f"account {account_id} does not exist", Reason.UNKNOWN_ACCOUNT)
        return account.owner

    def _check_taker(self, order: Order, signature: bytes) -> None:
        """What the book cannot know: the taker's account, signature, nonce, fee, market."""
        market = self.state.market(order.market)
        if market is None or order.market not in self.books:
            raise error("unknown_market", f"market {order.market} does not exist", Reason.UNKNOWN_MARKET)
        if market.oracle_price == 0:
            raise error("rejected", f"market {order.market} has no price yet", Reason.NO_PRICE)
        owner = self._owner(order.account)
        digest = order_hash(order)
        if recover(typed_digest(self._context().domain, digest), signature) != owner:
            raise error("bad_signature", "the signature is not the account owner's", Reason.WRONG_SIGNER)
        if order.expiry < self.state.globals.time:
            raise error("rejected", "the order has expired", Reason.EXPIRED)
        if filled_so_far(self.state.slot(order.account, order.nonce), order.nonce, digest) is None:
            raise error("rejected", "the nonce is used", Reason.NONCE_USED)
        if order.max_fee_ppm < max(self.maker_fee_ppm, self.taker_fee_ppm):
            raise error("rejected", f"max_fee_ppm must be at least {max(self.maker_fee_ppm, self.taker_fee_ppm)}",
                        Reason.FEE_TOO_HIGH)
        # pre-trade margin: the whole order, filled at its limit, must keep the margin rule
        # (the STF checks each fill again; this refuses orders that could never fill)
        book = self.books[order.market]
        if not self._margin_ok(order, order.size - order.size % book.step_size, order.limit_price, self.taker_fee_ppm):
            raise error("rejected", "not enough margin for this order", Reason.UNDER_MARGIN)

    def _margin_ok(self, order: Order, size: int, price: int, fee_ppm: int) -> bool:
        """Whether one side of a fill keeps the margin rule (the STF checks both)."""
        before, _ = margin.settle_funding(self.state.account(order.account), self.state.markets)
        market = self.state.markets[order.market]
        assert market is not None
        notional = size * price
        fee = -((-notional * fee_ppm) // PPM)
        old = before.size(order.market)
        new, collateral = (old + size, before.collateral - notional - fee) if order.is_buy else (
            old - size, before.collateral + notional - fee)
        after = margin.with_position(before, order.market, new, market.funding_index, collateral)
        return margin.margin_ok(before, after, self.state.markets)

    # ------------------------------------------------------------------ orders

    def rpc_submit_order(self, params: Any) -> dict[str, Any]:
        order = parse_order(param(params, 0, name="order"))
        signature = hex_data(param(params, 1, name="signature"), "signature", 65, prefixed=False)
        kind_name = param(params, 2, "limit", name="kind")
        if kind_name not in KINDS:
            raise error("invalid_params", "invalid params: kind must be limit, ioc or post_only")
        self._check_taker(order, signature)
        book = self.books[order.market]
        rejection = book.admit(order, signature, self.state.globals.time)
        if rejection is not None:
            raise error("book", f"the book refuses the order: {rejection.name.lower()}", rejection.name)
        fills: list[dict[str, Any]] = []
        with self.store.transaction() as db:
            def execute(fill: Fill) -> Verdict:
                tx = fill.trade(self.maker_fee_ppm, self.taker_fee_ppm, posted=self._posted(fill.maker_entry.order)).encode()
                receipt = self.seq.sequence(db, tx)
                if receipt.ok:
                    maker = fill.maker_entry
                    db.order_filled(order_id(order.market, maker.id), fill.size, book.step_size)
                    db.add_trade(order.market, fill.price, fill.size, maker.order.account, order.account,
                                 order_id(order.market, maker.id), order_id(order.market, fill.taker_entry.id),
                                 self.state.globals.time)
                    fills.append({"price": fill.price, "size": fill.size, "maker_order": order_id(order.market, maker.id)})
                    return Verdict.ACCEPT
                if receipt.reason in MAKER_REASONS:
                    return Verdict.DROP_MAKER
                if receipt.reason == Reason.UNDER_MARGIN and not self._margin_ok(
                        fill.maker_entry.order, fill.size, fill.price, self.maker_fee_ppm):
                    return Verdict.DROP_MAKER
                return Verdict.STOP

            result = book.submit(order, signature, KINDS[kind_name], now=self.state.globals.time, execute=execute)
            if result.rejected is not None:
                raise error("book", f"the book refuses the order: {result.rejected.name.lower()}", result.rejected.name)
            taker = result.taker
            gid = order_id(order.market, taker.id)
            status = OrderStatus.OPEN if result.rested else OrderStatus.DONE
            db.add_order(gid, order.account, order.nonce, order.market, order.encode() + signature, kind_name, status,
                         taker.remaining, taker.seq)
            for dropped in result.dropped:
                db.order_status(order_id(order.market, dropped.id), OrderStatus.CANCELLED)
            for exit_ in result.exits:
                db.order_status(order_id(order.market, exit_.entry.id),
                                OrderStatus.DONE if exit_.reason == ExitReason.FILLED else OrderStatus.CANCELLED)
        return {
            "id": gid,
            "status": "resting" if result.rested else ("filled" if taker.remaining < book.step_size else "done"),
            "filled": order.size - taker.remaining,
            "remaining": taker.remaining if result.rested else 0,
            "fills": fills,
        }

    def rpc_cancel_order(self, params: Any) -> dict[str, Any]:
        account = integer(param(params, 0, name="account"), "account", 0, 2**32 - 1)
        nonce = integer(param(params, 1, name="nonce"), "nonce")
        signature = hex_data(param(params, 2, name="signature"), "signature", 65, prefixed=False)
        self._owner(account)
        with self.store.transaction() as db:
            receipt = self.seq.sequence(db, Cancel(account, nonce, signature).encode())
            if not receipt.ok:
                raise error("rejected", f"the cancel is refused: {receipt.reason.name}", receipt.reason)
            cancelled = None
            for market, book in self.books.items():
                entry = book.cancel(account, nonce)
                if entry is not None:
                    cancelled = order_id(market, entry.id)
                    db.order_status(cancelled, OrderStatus.CANCELLED)
        return {"cancelled": cancelled, "nonce": nonce}

    def rpc_withdraw(self, params: Any) -> dict[str, Any]:
        account = integer(param(params, 0, name="account"), "account", 0, 2**32 - 1)
        amount = integer(param(params, 1, name="amount"), "amount", 1)
        nonce = integer(param(params, 2, name="nonce"), "nonce")
        expiry = integer(param(params, 3, name="expiry"), "expiry")
        signature = hex_data(param(params, 4, name="signature"), "signature", 65, prefixed=False)
        self._owner(account)
        with self.store.transaction() as db:
            receipt = self.seq.sequence(db, Withdraw(account, amount, nonce, expiry, signature).encode())
            if not receipt.ok:
                raise error("rejected", f"the withdrawal is refused: {receipt.reason.name}", receipt.reason)
            # read after sequencing: opening a batch may first append forced withdrawals
            index = self.state.globals.withdrawal_count - 1
        return {"index": index, "amount": amount}

    def rpc_submit_oracle(self, params: Any) -> dict[str, Any]:
        tx = hex_data(param(params, 0, name="tx"), "tx", prefixed=False)
        if not tx or tx[0] not in (ORACLE_UPDATE, RISK_UPDATE, SETTLE_SERIES):
            raise error("invalid_params", "invalid params: not an OracleUpdate, RiskUpdate or SettleSeries")
        with self.store.transaction() as db:
            receipt = self.seq.sequence(db, tx)
        if not receipt.ok:
            raise error("rejected", f"the oracle update is refused: {receipt.reason.name}", receipt.reason)
        update = decode(tx)
        return {"market": getattr(update, "market", None), "time": getattr(update, "timestamp", None)}

    # ------------------------------------------------------------------ reads

    def rpc_status(self, params: Any) -> dict[str, Any]:
        g = self.state.globals

        return {
            "chain_id": self.seq.deployment.chain_id,
            "contracts": self.seq.deployment.contracts,
            "state_root": "0x" + self.state.root().hex(),
            "time": g.time,
            "deposits": g.deposit_count,
            "forced_requests": g.forced_count,
            "withdrawals": g.withdrawal_count,
            "batches": self.store.batch_counts(),
            "open_batch_txs": len(self.seq.batch.txs) if self.seq.batch else 0,
            "accounts": len(self.state.accounts),
            "fee_pool": g.fee_pool,
            "funding_pool": g.funding_pool,
            "total_deposited": g.total_deposited,
            "total_withdrawn": g.total_withdrawn,
        }

    def rpc_markets(self, params: Any) -> list[dict[str, Any]]:
        out = []
        for m in self.state.markets:
            if m is None:
                continue
            book = self.books.get(m.id)
            out.append({
                "id": m.id, "symbol": self.symbols.get(m.id, f"M{m.id}"), "lot": self.lots.get(m.id),
                "price": m.oracle_price,
                "oracle_time": m.oracle_time, "funding_index": m.funding_index, "open_interest": m.open_interest,
                "initial_margin_ppm": m.initial_margin_ppm, "maintenance_margin_ppm": m.maintenance_margin_ppm,
                "tick_size": m.tick_size, "step_size": m.step_size,
                "best_bid": book.best_bid() if book else None, "best_ask": book.best_ask() if book else None,
                "product": PRODUCT_NAMES.get(m.product, str(m.product)),
            })
            if m.product != products.PERPETUAL:  # a series: its terms and the risk feed's Greeks
                out[-1].update({
                    "underlying": m.underlying, "strike": m.strike, "expiry": m.expiry,
                    "settlement_price": m.settlement_price, "delta": m.delta, "gamma": m.gamma, "vega": m.vega,
                })
        return out

    def rpc_account(self, params: Any) -> dict[str, Any]:
        account_id = integer(param(params, 0, name="account"), "account", 0, 2**32 - 1)
        account = self.state.account(account_id)
        if account.owner == b"\0" * 20:
            raise error("not_found", f"account {account_id} does not exist")
        markets = self.state.markets
        settled, _ = margin.settle_funding(account, markets)
        open_orders = [
            {"id": order_id(market, e.id), **order_json(e.order), "remaining": e.remaining}
            for market, book in self.books.items() for is_buy in (True, False) for e in book.orders(is_buy)
            if e.order.account == account_id
        ]
        return {
            "account": account_id,
            "owner": "0x" + account.owner.hex(),
            "collateral": account.collateral,
            "positions": [{"market": p.market, "size": p.size, "funding_index": p.funding_index}
                          for p in account.positions],
            "value": margin.value(settled, markets),
            "initial_requirement": margin.requirement(settled, markets, True),
            "maintenance_requirement": margin.requirement(settled, markets, False),
            "portfolio": portfolio_view(settled, markets),
            "open_orders": open_orders,
            "withdrawals": [{"index": i, "amount": w.amount} for i, w in enumerate(self.state.withdrawals)
                            if w.account == account_id],
        }

    def rpc_account_of(self, params: Any) -> dict[str, Any]:
        owner = hex_data(param(params, 0, name="owner"), "owner", 20, prefixed=False)
        for account_id, account in self.state.accounts.items():
            if account.owner == owner:
                return {"account": account_id}
        raise error("not_found", "no account for this address (deposit first)")

    def rpc_book(self, params: Any) -> dict[str, Any]:
        market = integer(param(params, 0, name="market"), "market", 0, 255)
        levels = integer(param(params, 1, 10, name="depth"), "depth", 1, 1000)
        book = self.books.get(market)
        if book is None:
            raise error("unknown_market", f"market {market} does not exist")
        depth = book.depth(levels)
        return {"market": market, "bids": [[lv.price, lv.size, lv.orders] for lv in depth.bids],
                "asks": [[lv.price, lv.size, lv.orders] for lv in depth.asks]}

    def rpc_trades(self, params: Any) -> list[dict[str, Any]]:
        market = integer(param(params, 0, name="market"), "market", 0, 255)
        limit = integer(param(params, 1, 50, name="limit"), "limit", 1, 1000)
        if market not in self.books:
            raise error("unknown_market", f"market {market} does not exist")
        return self.store.trades(market, limit)

    def rpc_batches(self, params: Any) -> list[dict[str, Any]]:
        limit = integer(param(params, 0, 50, name="limit"), "limit", 1, 1000)
        return [{"local": row.local, "index": row.l1_id, "position": row.position, "status": row.status,
                 "timestamp": row.timestamp, "l1_tx": row.l1_tx, "txs": txs,
                 "state_root": None if root is None else "0x" + root.hex()}
                for row, txs, root in self.store.newest_batches(limit)]

    def rpc_withdrawal_proof(self, params: Any) -> dict[str, Any]:
        index = integer(param(params, 0, name="index"), "index")
        batch = self.seq.final_batch()
        if batch is None or index >= batch.end.withdrawal_count:
            raise error("not_found", f"withdrawal {index} is in no final batch yet")
        accounts, markets, globals_hash, _ = batch.end.root_parts
        record = self.state.withdrawals[index]  # the head's withdrawals extend the final batch's
        return {"batch": batch.l1_id, "index": index,
                "record": {"account": record.account, "owner": "0x" + record.owner.hex(), "amount": record.amount},
                "proof": ["0x" + p.hex() for p in flat_proof(self.seq.final_withdrawals.proof(index))],
                "accounts_root": "0x" + accounts.hex(), "markets_root": "0x" + markets.hex(),
                "globals_hash": "0x" + globals_hash.hex()}

    def rpc_next_nonce(self, params: Any) -> dict[str, Any]:
        account = integer(param(params, 0, name="account"), "account", 0, 2**32 - 1)
        used = 0
        slots = self.state.slots.get(account, {})
        for slot in slots.values():
            used = max(used, slot.nonce)
        for book in self.books.values():
            for is_buy in (True, False):
                for e in book.orders(is_buy):
                    if e.order.account == account:
                        used = max(used, e.order.nonce)
        return {"nonce": used + 1, "slots": ORDER_SLOTS}

    # ------------------------------------------------------------------ background work

    def run(self, interval: float = 0.2) -> None:
        """The background loop, beside the request path, until stopped: read L1, follow
        it, cut and post batches (the sequencer takes the lock only to change the head),
        then expire orders and run the keeper (under the lock, no L1), and finalize what
        the window allows."""
        last_finalize = 0.0
        while not self.stopping.wait(interval):
            try:
                self.seq.tick()
                with self.lock:
                    for book in self.books.values():
                        expired = book.expire(self.state.globals.time)
                        if expired:
                            with self.store.transaction() as db:
                                for entry in expired:
                                    db.order_status(order_id(book.market, entry.id), OrderStatus.EXPIRED)
                    self._keep()
                if time.monotonic() - last_finalize > 2.0:
                    last_finalize = time.monotonic()
                    self._finalize()
                if self.collector is not None:
                    self.collector.tick(self.last_request)
            except Exception:  # L1 hiccups must not stop the operator
                log.exception("operator tick failed")

    def _keep(self) -> None:
        """Funding ticks, liquidations, fee sweeps and settlements (rollup/operator/keeper.py),
        in one store transaction."""
        with self.store.transaction() as db:
            def sequence(tx: bytes) -> Any:
                return self.seq.sequence(db, tx)

            mids = {}
            for market, book in self.books.items():
                bid, ask = book.best_bid(), book.best_ask()
                mids[market] = (bid + ask) // 2 if bid is not None and ask is not None else None
            keeper.fund_ticks(self.state, mids, self.funding_interval, sequence)
            keeper.liquidate(self.state, sequence)
            keeper.sweep_fees(self.state, sequence)
            keeper.settle_positions(self.state, sequence)

    def _finalize(self) -> None:
        """Finalize what the window allows (asked first with a call: no gas for nothing)."""
        if not any(b.status == BatchStatus.POSTED for b in self.seq.posted):
            return
        call = self.seq.chain.rollup.functions.finalize(64)
        if int(call.call({"from": self.seq.chain.l1.address}, block_identifier="pending")) > 0:
            self.seq.chain.l1.send(call)
            self.seq.follow_l1()
