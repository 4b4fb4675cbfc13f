"""A small rollup world on a real L1: an honest proposer running the STF over the L1
queues, a few funded users, the devnet oracle committee, and a valid transaction of every
type built against the current state. The fraud-proof tests, the gas benchmark and the
demos drive the contracts through it.

The proposer can lie: `post(txs, lie_at=i)` posts a wrong root after step i while its own
state goes on from the truth (so the batch's last root, and every later batch, are true).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from web3 import Web3
from web3.types import RPCEndpoint

from ..batch import batch_time
from ..deploy import DEVNET_ORACLE_KEYS, Deployment
from ..pricing import SECONDS_PER_YEAR, Smile, quote
from ..stf import apply, builders, products
from ..stf.fork import Context, Receipt
from ..stf.state import Market, State
from ..stf.transactions import (
    ORDER_NO_EXPIRY,
    AdvanceTime,
    Deleverage,
    FundingTick,
    Liquidate,
    Order,
    SettlePosition,
    SweepFees,
)
from .client import L1
from .inbox import Inbox
from .rollup_client import RollupL1, config_of

LIE = b"\x13" * 32
"""The wrong root a lying proposer posts."""


@dataclass
class Posted:
    """A submitted batch with everything a challenger needs."""

    id: int
    txs: list[bytes]
    roots: list[bytes]
    pre_states: list[State]
    """The true state before each step."""
    receipts: list[Receipt]
    gas_used: int
    calldata_bytes: int


@dataclass
class User:
    key: bytes
    chain: RollupL1
    account: int = -1
    nonce: int = 0

    @property
    def address(self) -> str:
        return self.chain.l1.address

    def next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce


@dataclass
class World:
    url: str
    deployment: Deployment
    proposer: RollupL1
    users: list[User]
    state: State
    w3: Web3
    oracle_keys: Sequence[bytes] = DEVNET_ORACLE_KEYS
    deposits_seen: int = 0
    forced_seen: int = 0
    history: list[Posted] = field(default_factory=list)
    inbox: Inbox = field(init=False)

    def __post_init__(self) -> None:
        self.inbox = Inbox(self.proposer.bridge, self.deployment.deploy_block, rpc=self.proposer.l1.rpc)

    # --- time and context

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def travel(self, seconds: int) -> None:
        """Mine a block `seconds` after the latest one (dev nodes: ours and anvil)."""
        self.w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [self.now() + seconds])
        self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])

    def context(self, timestamp: int | None = None) -> Context:
        """The STF context of a batch posted now: the L1 queues as they stand."""
        self.inbox.sync()
        deposits, forced = self.inbox.heads(len(self.inbox.deposits), len(self.inbox.forced))
        return Context(config_of(self.deployment), self.now() if timestamp is None else timestamp,
                       deposits, forced)

    # --- the proposer

    def post(self, txs: Sequence[bytes], lie_at: int | None = None) -> Posted:
        """Apply `txs` to the state and submit them as one batch (a wrong root at `lie_at`),
        at the time its AdvanceTime moves the clock to (else at the clock's time)."""
        timestamp = batch_time(txs, self.state.globals.time)
        context = self.context(timestamp)
        roots, pre_states, receipts = [], [], []
        for i, tx in enumerate(txs):
            pre_states.append(self.state.copy())
            receipts.append(apply(self.state, tx, context))
            roots.append(LIE if i == lie_at else self.state.root())
        batch_id, receipt = self.proposer.submit(list(txs), roots, timestamp)
        l1_tx = self.w3.eth.get_transaction(receipt["transactionHash"])
        posted = Posted(batch_id, list(txs), roots, pre_states, receipts, int(receipt["gasUsed"]),
                        len(bytes(l1_tx["input"])))
        self.history.append(posted)
        return posted

    def new_deposits(self) -> list[bytes]:
        """The L2 Deposit transactions of L1 deposits not yet taken into a batch."""
        self.inbox.sync()
        out = [d.encode() for d in self.inbox.deposits[self.deposits_seen:]]
        self.deposits_seen += len(out)
        return out

    def new_forced(self) -> list[bytes]:
        """The L2 ForcedRequest transactions of L1 forced requests not yet taken into a batch."""
        self.inbox.sync()
        out = [f.encode() for f in self.inbox.forced[self.forced_seen:]]
        self.forced_seen += len(out)
        return out

    # --- transactions of every type, valid against the current state

    def oracle_update(self, market: int, price: int, timestamp: int | None = None) -> bytes:
        ts = self.state.globals.time if timestamp is None else timestamp
        reports = [(i, price, key) for i, key in enumerate(self.oracle_keys)]
        return builders.oracle_update(market, ts, reports, self.context()).encode()

    def series(self) -> list[Market]:
        """The option series the deployment lists (none on a perpetuals-only listing)."""
        return [m for m in self.state.markets if m is not None and m.product != products.PERPETUAL]

    def risk_update(self, market: int, timestamp: int | None = None) -> bytes:
        """The committee's mark and Greeks of a series (Black-Scholes on the devnet smile at
        its underlying's price), at `timestamp` (default: the clock's time)."""
        series = self.state.markets[market]
        assert series is not None
        spot = self.state.markets[series.underlying].oracle_price  # type: ignore[union-attr]
        ts = self.state.globals.time if timestamp is None else timestamp
        q = quote(spot, series.strike, max(series.expiry - ts, 1) / SECONDS_PER_YEAR,
                  Smile().vol(spot, series.strike), series.product == products.CALL)
        marks = [(i, q.mark, q.delta, q.gamma, q.vega, key) for i, key in enumerate(self.oracle_keys)]
        return builders.risk_update(market, ts, marks, self.context()).encode()

    def settle_series(self, market: int, price: int) -> bytes:
        """The committee's settlement of an expired series at `price`."""
        series = self.state.markets[market]
        assert series is not None
        prices = [(i, price, key) for i, key in enumerate(self.oracle_keys)]
        return builders.settle_series(market, series.expiry, prices, self.context()).encode()

    def order(self, user: User, market: int, is_buy: bool, size: int, price: int) -> Order:
        return Order(user.account, market, is_buy, size, price, 1_000, user.next_nonce(), ORDER_NO_EXPIRY)

    def trade(self, maker: User, taker: User, market: int, maker_buys: bool, size: int,
              price: int) -> bytes:
        m = self.order(maker, market, maker_buys, size, price)
        t = self.order(taker, market, not maker_buys, size, price)
        return builders.trade(m, maker.key, t, taker.key, size, self.context(), 200, 500).encode()

    def fill(self, maker: Order, taker: User, size: int) -> bytes:
        """A later fill of `maker` (posted by an earlier trade) by a new taker order."""
        t = self.order(taker, maker.market, not maker.is_buy, size, maker.limit_price)
        return builders.fill(maker, t, taker.key, size, self.context(), 200, 500).encode()

    def withdraw(self, user: User, amount: int) -> bytes:
        return builders.withdraw(user.account, amount, user.next_nonce(), 2**40, user.key, self.context()).encode()

    def cancel(self, user: User) -> bytes:
        return builders.cancel(user.account, user.next_nonce(), user.key, self.context()).encode()

    def funding_tick(self, market: int, delta: int) -> bytes:
        return FundingTick(market, delta).encode()

    def liquidate(self, account: int, market: int, size: int) -> bytes:
        return Liquidate(account, market, size).encode()

    def deleverage(self, bankrupt: int, taker: int, market: int, size: int) -> bytes:
        return Deleverage(bankrupt, taker, market, size).encode()

    def advance(self) -> bytes:
        return AdvanceTime(self.now()).encode()




def make_world(url: str, deployment: Deployment, proposer_key: bytes, user_keys: Sequence[bytes],
               deposit: int = 50_000_000, insurance_key: bytes | None = None, insurance: int = 0) -> World:
    """A world on `deployment`: the proposer bonded, each user's deposit (and, with
    `insurance_key`, the insurance owner's deposit into the fund, account 0) taken into a
    first batch, then the time and first prices (ETH-USD 300,000, BTC-USD 1,000,000 per lot),
    and each option series' first mark and Greeks."""
    w3 = Web3(Web3.HTTPProvider(url))
    proposer = RollupL1(L1(url, proposer_key), deployment)
    world = World(url, deployment, proposer, [], deployment.genesis(), w3)
    proposer.bond()
    for key in user_keys:
        chain = RollupL1(L1(url, key), deployment)
        chain.deposit(chain.l1.address, deposit)
        user = User(key, chain)
        user.account = int(chain.bridge.functions.account_of(chain.l1.address).call())
        world.users.append(user)
    if insurance_key is not None and insurance:
        funder = RollupL1(L1(url, insurance_key), deployment)
        funder.deposit(funder.l1.address, insurance)
    world.travel(1)
    txs = [world.advance(), *world.new_deposits()]
    world.post(txs)
    world.travel(1)
    world.post([world.advance()])
    world.post([world.oracle_update(0, 300_000), world.oracle_update(1, 1_000_000)])
    if world.series():
        world.post([world.risk_update(series.id) for series in world.series()])
    return world


# ---------------------------------------------------------------------- one scenario per type
# Each prepares the world (posting what it needs first) and returns the transactions of
# the batch to dispute; the last one is the transaction of the named type, valid.


def levered_pair(w: World, size: int = 1_600) -> None:
    """User 2 long `size` lots of ETH-USD at 300,000 against user 3 (about 9.6x leverage)."""
    w.travel(1)
    w.post([w.advance(), w.trade(w.users[2], w.users[3], 0, True, size, 300_000)])


def price_move(w: World, market: int, price: int) -> None:
    w.travel(1)
    w.post([w.advance(), w.oracle_update(market, price, timestamp=w.now())])


def advance_time(w: World) -> list[bytes]:
    w.travel(5)
    return [w.advance()]


def oracle_update(w: World) -> list[bytes]:
    w.travel(5)
    return [w.advance(), w.oracle_update(0, 303_000, timestamp=w.now())]


def funding_tick(w: World) -> list[bytes]:
    w.travel(60)
    return [w.advance(), w.funding_tick(0, 1_000)]


def trade(w: World) -> list[bytes]:
    return [w.trade(w.users[0], w.users[1], 0, True, 100, 300_000)]


def fill(w: World) -> list[bytes]:
    maker = w.order(w.users[0], 0, True, 100, 300_000)
    taker = w.order(w.users[1], 0, False, 40, 300_000)
    w.post([builders.trade(maker, w.users[0].key, taker, w.users[1].key, 40, w.context(), 200, 500).encode()])
    return [w.fill(maker, w.users[2], 60)]


def deposit(w: World) -> list[bytes]:
    user = w.users[0]
    user.chain.deposit(user.address, 7_000_000)
    return w.new_deposits()


def withdraw(w: World) -> list[bytes]:
    return [w.withdraw(w.users[0], 1_000_000)]


def cancel(w: World) -> list[bytes]:
    return [w.cancel(w.users[0])]


def forced_withdraw(w: World) -> list[bytes]:
    w.users[1].chain.force_withdraw(2_000_000)
    return w.new_forced()


def forced_close(w: World) -> list[bytes]:
    w.post([w.trade(w.users[0], w.users[1], 1, False, 20, 1_000_000)])
    w.users[1].chain.force_close(1)
    return w.new_forced()


def liquidate(w: World) -> list[bytes]:
    levered_pair(w)
    price_move(w, 0, 282_000)  # -6%: user 2 under maintenance, still solvent
    return [w.liquidate(w.users[2].account, 0, 800)]


def deleverage(w: World) -> list[bytes]:
    levered_pair(w)
    price_move(w, 0, 282_000)
    price_move(w, 0, 265_080)  # -11.6% in all: user 2 bankrupt, the fund is empty
    return [w.deleverage(w.users[2].account, w.users[3].account, 0, 100)]


def sweep_fees(w: World) -> list[bytes]:
    w.post([w.trade(w.users[0], w.users[1], 0, True, 100, 300_000)])  # fees to sweep
    return [SweepFees(w.state.globals.fee_pool).encode()]


def risk_update(w: World) -> list[bytes]:
    w.travel(5)
    return [w.advance(), w.risk_update(w.series()[0].id, timestamp=w.now())]


def sold_and_expired(w: World) -> Market:
    """User 0 sells 10 of the first series to user 1 at its mark; the clock then passes
    the series' expiry (hours, perhaps a day: the L1 travels)."""
    series = w.series()[0]
    w.post([w.trade(w.users[1], w.users[0], series.id, True, 10, series.oracle_price)])
    w.travel(series.expiry - w.now() + 1)
    return series


def settle_series(w: World) -> list[bytes]:
    series = sold_and_expired(w)
    spot = w.state.markets[series.underlying].oracle_price  # type: ignore[union-attr]
    return [w.advance(), w.settle_series(series.id, spot + spot // 20)]  # 5% above: in the money


def settle_position(w: World) -> list[bytes]:
    w.post(settle_series(w))
    return [SettlePosition(w.users[1].account, w.series()[0].id).encode()]


SCENARIOS: dict[str, Callable[[World], list[bytes]]] = {
    "AdvanceTime": advance_time,
    "OracleUpdate": oracle_update,
    "FundingTick": funding_tick,
    "Trade": trade,
    "Fill": fill,
    "Deposit": deposit,
    "Withdraw": withdraw,
    "Cancel": cancel,
    "ForcedRequest(withdraw)": forced_withdraw,
    "ForcedRequest(close)": forced_close,
    "Liquidate": liquidate,
    "Deleverage": deleverage,
    "SweepFees": sweep_fees,
    "RiskUpdate": risk_update,
    "SettleSeries": settle_series,
    "SettlePosition": settle_position,
}
"""One scenario per transaction type; the last three need a deployment that lists option
series (rollup/listing.py `devnet_listing`)."""
