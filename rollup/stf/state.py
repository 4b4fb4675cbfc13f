"""The state: its records, their fixed-width leaf encodings, and the one 32-byte root.

    state_root = keccak(accounts_root ++ markets_root ++ globals_hash ++ withdrawals_root)

- accounts_root: 4-ary tree (depth 10) of account leaves, indexed by account id.
  An account leaf commits to the account's nonce-slot tree (depth 5) by its root.
- markets_root: keccak of the 48 market leaf hashes concatenated (a market absent = 0).
- globals_hash: keccak of the packed globals.
- withdrawals_root: 4-ary tree (depth 10) of withdrawal records, indexed by number.

Every leaf hash is keccak of a packed big-endian encoding (widths given per field);
the all-default record hashes to 32 zero bytes, the empty leaf of the trees.
Signed integers are two's complement.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .constants import (
    ACCOUNT_TREE_DEPTH,
    MAX_MARKETS,
    ORDER_SLOTS,
    ORDER_TREE_DEPTH,
    WITHDRAWAL_TREE_DEPTH,
)
from .hashing import ZERO_HASH, keccak
from .merkle import Proof, QuadTree
from .products import PERPETUAL

ZERO_ADDRESS = b"\0" * 20


def i128(value: int) -> bytes:
    return value.to_bytes(16, "big", signed=True)


def u128(value: int) -> bytes:
    return value.to_bytes(16, "big")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


_POSITION_HEAD = struct.Struct(">Bq")
_SLOT = struct.Struct(">Q32sQ")
_MARKET_HEAD = struct.Struct(">BBQQ")
_MARKET_TAIL = struct.Struct(">QQIIIIIIQQI")
_OPTION_TAIL = struct.Struct(">BQQQiqq")
_GLOBALS_HEAD = struct.Struct(">QQ32sQ32sQ")

# ---------------------------------------------------------------------- records


class Position(NamedTuple):
    """A perpetual position: `size` lots (positive long, negative short, never 0) and
    the market's funding index when funding was last settled into collateral."""

    market: int
    size: int
    funding_index: int

    def encode(self) -> bytes:
        """market u8 | size int64 | funding_index int128 (25 bytes)."""
        return _POSITION_HEAD.pack(self.market, self.size) + i128(self.funding_index)


class Account(NamedTuple):
    """An account: its owner (who signs for it), collateral in token units (may be
    negative after losses), positions sorted by market, and its nonce-slot root."""

    owner: bytes = ZERO_ADDRESS
    collateral: int = 0
    positions: tuple[Position, ...] = ()
    orders_root: bytes = ZERO_HASH

    def encode(self) -> bytes:
        """owner 20 | collateral int128 | orders_root 32 | count u8 | positions (25 each)."""
        return b"".join([
            self.owner,
            self.collateral.to_bytes(16, "big", signed=True),
            self.orders_root,
            bytes((len(self.positions),)),
            *[_POSITION_HEAD.pack(p.market, p.size) + p.funding_index.to_bytes(16, "big", signed=True)
              for p in self.positions],
        ])

    def leaf(self) -> bytes:
        if self.owner == ZERO_ADDRESS and self.is_blank():
            return ZERO_HASH
        return keccak(self.encode())

    def is_blank(self) -> bool:
        return self.collateral == 0 and not self.positions and self.orders_root == ZERO_HASH

    def position(self, market: int) -> Position | None:
        for p in self.positions:
            if p.market == market:
                return p
        return None

    def size(self, market: int) -> int:
        p = self.position(market)
        return 0 if p is None else p.size


EMPTY_ACCOUNT = Account()


class OrderSlot(NamedTuple):
    """A nonce slot: the highest nonce used in it, that order's hash (or CANCELLED_HASH),
    and how much of it is filled. Empty iff order_hash is zero."""

    nonce: int = 0
    order_hash: bytes = ZERO_HASH
    filled: int = 0

    def encode(self) -> bytes:
        """nonce u64 | order_hash 32 | filled u64 (48 bytes)."""
        return _SLOT.pack(self.nonce, self.order_hash, self.filled)

    def leaf(self) -> bytes:
        if self.order_hash == ZERO_HASH and self.nonce == 0 and self.filled == 0:
            return ZERO_HASH
        return keccak(self.encode())


EMPTY_SLOT = OrderSlot()


class Market(NamedTuple):
    """A market: oracle state, funding state, open interest and parameters, and for an
    option series its terms and risk. Prices are collateral units per lot; fractions are
    parts per million. A perpetual's fields past `vol_shock_ppm` are zero."""

    id: int
    product: int = 0
    """What is traded (products.PERPETUAL, CALL or PUT): decides valuation and margin."""
    oracle_price: int = 0
    oracle_time: int = 0
    funding_index: int = 0
    funding_time: int = 0
    open_interest: int = 0
    initial_margin_ppm: int = 100_000
    maintenance_margin_ppm: int = 50_000
    liquidation_penalty_ppm: int = 10_000
    max_funding_rate_ppm: int = 10_000
    """Largest funding rate, per hour, as a fraction of the oracle price."""
    max_price_move_ppm: int = 100_000
    """Largest change of the oracle price in one update (flash-crash guard)."""
    oracle_staleness: int = 3_600
    """Oldest accepted oracle report, in seconds before the system time."""
    tick_size: int = 1
    step_size: int = 1
    vol_shock_ppm: int = 0
    """The volatility move W of the margin grid of the options written on this perpetual
    (portfolio.py), in ppm of volatility."""
    underlying: int = 0
    """An option series: the perpetual market it is written on (its spot)."""
    strike: int = 0
    """An option series: the strike, collateral units per lot."""
    expiry: int = 0
    """An option series: when it expires, in seconds (L2 time)."""
    settlement_price: int = 0
    """An option series: the underlying's signed price at expiry (0 until settled)."""
    delta: int = 0
    """An option series: delta per lot in ppm, from the risk feed (oracle_price is its mark)."""
    gamma: int = 0
    """An option series: cash gamma per lot, from the risk feed."""
    vega: int = 0
    """An option series: vega per lot per 1.0 of volatility, from the risk feed."""

    def encode(self) -> bytes:
        """id u8 | product u8 | oracle_price u64 | oracle_time u64 | funding_index int128 |
        funding_time u64 | open_interest u64 | initial, maintenance, penalty, max funding
        rate, max price move (u32 each) | oracle_staleness u32 | tick u64 | step u64 |
        vol_shock u32 (94 bytes); an option series (any product but PERPETUAL, 0) goes on
        with underlying u8 | strike u64 | expiry u64 | settlement_price u64 | delta int32 |
        gamma int64 | vega int64 (139 bytes)."""
        base = (
            _MARKET_HEAD.pack(self.id, self.product, self.oracle_price, self.oracle_time)
            + i128(self.funding_index)
            + _MARKET_TAIL.pack(
                self.funding_time, self.open_interest, self.initial_margin_ppm,
                self.maintenance_margin_ppm, self.liquidation_penalty_ppm,
                self.max_funding_rate_ppm, self.max_price_move_ppm, self.oracle_staleness,
                self.tick_size, self.step_size, self.vol_shock_ppm,
            )
        )
        if self.product == PERPETUAL:
            return base
        return base + _OPTION_TAIL.pack(self.underlying, self.strike, self.expiry, self.settlement_price,
                                        self.delta, self.gamma, self.vega)

    def leaf(self) -> bytes:
        return keccak(self.encode())

    def with_open_interest(self, open_interest: int) -> Market:
        """This market with another open interest (dataclasses.replace, faster)."""
        return Market(
            self.id, self.product, self.oracle_price, self.oracle_time, self.funding_index, self.funding_time,
            open_interest, self.initial_margin_ppm, self.maintenance_margin_ppm,
            self.liquidation_penalty_ppm, self.max_funding_rate_ppm, self.max_price_move_ppm,
            self.oracle_staleness, self.tick_size, self.step_size, self.vol_shock_ppm, self.underlying,
            self.strike, self.expiry, self.settlement_price, self.delta, self.gamma, self.vega,
        )


class Globals(NamedTuple):
    """System-wide values: time, the L1 message cursors, totals and pools."""

    time: int = 0
    deposit_count: int = 0
    deposit_head: bytes = ZERO_HASH
    forced_count: int = 0
    forced_head: bytes = ZERO_HASH
    withdrawal_count: int = 0
    total_deposited: int = 0
    total_withdrawn: int = 0
    fee_pool: int = 0
    funding_pool: int = 0
    """Funding paid minus funding received, and option payoffs paid by shorts minus those
    taken by longs (SettlePosition): never negative once every account has settled (each
    funding settlement rounds against the account; a settled series' payoffs net to
    zero), so neither creates money."""

    def encode(self) -> bytes:
        """time u64 | deposit_count u64 | deposit_head 32 | forced_count u64 |
        forced_head 32 | withdrawal_count u64 | total_deposited u128 |
        total_withdrawn u128 | fee_pool u128 | funding_pool int128 (160 bytes)."""
        return (
            _GLOBALS_HEAD.pack(self.time, self.deposit_count, self.deposit_head,
                               self.forced_count, self.forced_head, self.withdrawal_count)
            + u128(self.total_deposited)
            + u128(self.total_withdrawn)
            + u128(self.fee_pool)
            + i128(self.funding_pool)
        )

    def leaf(self) -> bytes:
        return keccak(self.encode())

    def with_pools(self, fee_pool: int, funding_pool: int) -> Globals:
        """These globals with other pool balances (dataclasses.replace, faster)."""
        return Globals(
            self.time, self.deposit_count, self.deposit_head, self.forced_count, self.forced_head,
            self.withdrawal_count, self.total_deposited, self.total_withdrawn, fee_pool, funding_pool,
        )


class Withdrawal(NamedTuple):
    """A withdrawal record: L1 pays `amount` to `owner` once its batch is final."""

    account: int
    owner: bytes
    amount: int

    def encode(self) -> bytes:
        """account u32 | owner 20 | amount u64 (32 bytes)."""
        return u32(self.account) + self.owner + u64(self.amount)

    def leaf(self) -> bytes:
        return keccak(self.encode())


class Config(NamedTuple):
    """Fixed for a deployment and known to the L1 verifier (not part of the root)."""

    chain_id: int
    verifying_contract: bytes
    oracle_signers: tuple[bytes, ...]
    oracle_quorum: int


# ---------------------------------------------------------------------- the state


def markets_root(market_leaves: list[bytes]) -> bytes:
    return keccak(b"".join(market_leaves))


def state_root(accounts: bytes, markets: bytes, globals_hash: bytes, withdrawals: bytes) -> bytes:
    return keccak(accounts + markets + globals_hash + withdrawals)


@dataclass
class State:
    """The whole state, with its trees kept up to date on every write.

    A state can keep a journal of its writes (`start_journal`): each write records what it
    replaced, `mark()` names the present moment and `rollback(mark)` undoes every write
    since, rehashing only the paths they touched. The operator keeps one state this way
    instead of a copy per batch (a copy costs time in the number of accounts; a mark
    nothing, a rollback the writes it undoes)."""

    accounts: dict[int, Account] = field(default_factory=dict)
    slots: dict[int, dict[int, OrderSlot]] = field(default_factory=dict)
    markets: list[Market | None] = field(default_factory=lambda: [None] * MAX_MARKETS)
    globals: Globals = field(default_factory=Globals)
    withdrawals: list[Withdrawal] = field(default_factory=list)
    account_tree: QuadTree = field(default_factory=lambda: QuadTree(ACCOUNT_TREE_DEPTH))
    order_trees: dict[int, QuadTree] = field(default_factory=dict)
    market_leaves: list[bytes] = field(default_factory=lambda: [ZERO_HASH] * MAX_MARKETS)
    withdrawal_tree: QuadTree = field(default_factory=lambda: QuadTree(WITHDRAWAL_TREE_DEPTH))
    _markets_root: bytes = b""
    _globals_hash: bytes = b""
    orders: dict[bytes, Any] = field(default_factory=dict)
    """Every order posted so far, by its struct hash (what its nonce slot stores): the
    preimages a Fill needs to find the order it names. Outside the root (the slot's hash
    commits to the order); only ever added to, so copies share it and a rollback keeps
    it: knowing a preimage is true of every state."""
    journal: list[tuple[Any, ...]] | None = None
    """What each write since `journal_base` replaced (None: no journal is kept)."""
    journal_base: int = 0

    # --- reads

    def account(self, account_id: int) -> Account:
        return self.accounts.get(account_id, EMPTY_ACCOUNT)

    def slot(self, account_id: int, nonce: int) -> OrderSlot:
        slots = self.slots.get(account_id)
        if slots is None:
            return EMPTY_SLOT
        return slots.get(nonce % ORDER_SLOTS, EMPTY_SLOT)

    def market(self, market_id: int) -> Market | None:
        if 0 <= market_id < MAX_MARKETS:
            return self.markets[market_id]
        return None

    # --- writes (each keeps its tree current)

    def set_slot(self, account_id: int, nonce: int, slot: OrderSlot) -> bytes:
        """Write a nonce slot; return the account's new orders_root."""
        index = nonce % ORDER_SLOTS
        slots = self.slots.setdefault(account_id, {})
        tree = self.order_trees.get(account_id)
        if tree is None:
            tree = self.order_trees[account_id] = QuadTree(ORDER_TREE_DEPTH)
        if self.journal is not None:
            self.journal.append(("slot", account_id, index, slots.get(index, EMPTY_SLOT)))
        if slot == EMPTY_SLOT:
            slots.pop(index, None)
        else:
            slots[index] = slot
        tree.set(index, slot.leaf())
        return tree.root()

    def set_accounts(self, accounts: dict[int, Account]) -> None:
        """Write several accounts, hashing shared tree nodes once."""
        if self.journal is not None:
            self.journal.append(("accounts", {a: self.accounts.get(a, EMPTY_ACCOUNT) for a in accounts}))
        leaves = {}
        for account_id, account in accounts.items():
            leaf = leaves[account_id] = account.leaf()
            if leaf == ZERO_HASH:
                self.accounts.pop(account_id, None)
            else:
                self.accounts[account_id] = account
        self.account_tree.set_many(leaves)

    def set_market(self, market: Market) -> None:
        if self.journal is not None:
            self.journal.append(("market", market.id, self.markets[market.id]))
        self.markets[market.id] = market
        self.market_leaves[market.id] = market.leaf()
        self._markets_root = b""

    def set_globals(self, values: Globals) -> None:
        if self.journal is not None:
            self.journal.append(("globals", self.globals))
        self.globals = values
        self._globals_hash = b""

    def append_withdrawal(self, record: Withdrawal) -> None:
        if self.journal is not None:
            self.journal.append(("withdrawal",))
        self.withdrawal_tree.set(len(self.withdrawals), record.leaf())
        self.withdrawals.append(record)

    # --- the journal

    def start_journal(self) -> None:
        """Record every write from now on (an empty journal, based here)."""
        self.journal = []
        self.journal_base = 0

    def mark(self) -> int:
        """The present moment of the journal, to roll back to."""
        assert self.journal is not None, "no journal is kept"
        return self.journal_base + len(self.journal)

    def rollback(self, mark: int) -> None:
        """Undo every write since `mark` (newest first): the state, its trees and its
        root are again what they were then."""
        journal = self.journal
        assert journal is not None and self.journal_base <= mark <= self.mark(), "mark outside the journal"
        undo = journal[mark - self.journal_base:]
        del journal[mark - self.journal_base:]
        self.journal = None  # the undoing writes are not journaled
        try:
            for entry in reversed(undo):
                kind = entry[0]
                if kind == "slot":
                    self.set_slot(entry[1], entry[2], entry[3])
                elif kind == "accounts":
                    self.set_accounts(entry[1])
                elif kind == "market":
                    _, market_id, old = entry
                    if old is None:
                        self.markets[market_id] = None
                        self.market_leaves[market_id] = ZERO_HASH
                        self._markets_root = b""
                    else:
                        self.set_market(old)
                elif kind == "globals":
                    self.set_globals(entry[1])
                else:  # withdrawal
                    self.withdrawals.pop()
                    self.withdrawal_tree.set(len(self.withdrawals), ZERO_HASH)
        finally:
            self.journal = journal

    def forget(self, mark: int) -> None:
        """Drop the journal before `mark` (no rollback will go back further)."""
        assert self.journal is not None
        cut = min(max(0, mark - self.journal_base), len(self.journal))
        del self.journal[:cut]
        self.journal_base += cut

    # --- commitment

    def markets_root(self) -> bytes:
        if not self._markets_root:
            self._markets_root = markets_root(self.market_leaves)
        return self._markets_root

    def globals_hash(self) -> bytes:
        if not self._globals_hash:
            self._globals_hash = self.globals.leaf()
        return self._globals_hash

    def root(self) -> bytes:
        return state_root(
            self.account_tree.root(),
            self.markets_root(),
            self.globals_hash(),
            self.withdrawal_tree.root(),
        )

    def copy(self) -> State:
        return State(
            accounts=dict(self.accounts),
            slots={k: dict(v) for k, v in self.slots.items()},
            markets=list(self.markets),
            globals=self.globals,
            withdrawals=list(self.withdrawals),
            account_tree=self.account_tree.copy(),
            order_trees={k: v.copy() for k, v in self.order_trees.items()},
            market_leaves=list(self.market_leaves),
            withdrawal_tree=self.withdrawal_tree.copy(),
            orders=self.orders,
        )

    # --- witnesses

    def account_proof(self, account_id: int) -> Proof:
        return self.account_tree.proof(account_id)

    def slot_proof(self, account_id: int, nonce: int) -> Proof:
        tree = self.order_trees.get(account_id) or QuadTree(ORDER_TREE_DEPTH)
        return tree.proof(nonce % ORDER_SLOTS)

    def withdrawal_proof(self, index: int) -> Proof:
        return self.withdrawal_tree.proof(index)

    def root_parts(self) -> tuple[bytes, bytes, bytes, bytes]:
        return (
            self.account_tree.root(),
            self.markets_root(),
            self.globals_hash(),
            self.withdrawal_tree.root(),
        )
