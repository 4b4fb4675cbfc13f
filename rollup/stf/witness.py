"""Witnesses: a leaf with what it takes to recompute the state root from it.

L1 uses these to pay a withdrawal against a final root, to let an account escape with its
equity when the rollup is frozen, and (through the verifier) to check a disputed step's
pre-state. Each `verify_*` returns True iff the witness recomputes exactly `root`.
"""

from __future__ import annotations

from typing import NamedTuple

from .constants import (
    ACCOUNT_TREE_DEPTH,
    INSURANCE_ACCOUNT,
    ORDER_SLOTS,
    ORDER_TREE_DEPTH,
    WITHDRAWAL_TREE_DEPTH,
)
from .hashing import ZERO_HASH
from .merkle import Proof, compute_root, well_formed
from .products import PERPETUAL
from .state import Account, OrderSlot, State, Withdrawal, state_root
from .transactions import (
    Cancel,
    Deleverage,
    Deposit,
    Fill,
    ForcedRequest,
    Liquidate,
    Order,
    SettlePosition,
    SweepFees,
    Trade,
    Withdraw,
    decode,
)


class AccountWitness(NamedTuple):
    account_id: int
    account: Account
    proof: Proof
    markets_root: bytes
    globals_hash: bytes
    withdrawals_root: bytes


class SlotWitness(NamedTuple):
    nonce: int
    slot: OrderSlot
    proof: Proof
    account: AccountWitness


class WithdrawalWitness(NamedTuple):
    index: int  # type: ignore[assignment]  # the field shadows tuple.index (never called on it)
    record: Withdrawal
    proof: Proof
    accounts_root: bytes
    markets_root: bytes
    globals_hash: bytes


def account_witness(state: State, account_id: int) -> AccountWitness:
    accounts_root, markets, globals_hash, withdrawals = state.root_parts()
    del accounts_root
    return AccountWitness(account_id, state.account(account_id), state.account_proof(account_id),
                          markets, globals_hash, withdrawals)


def slot_witness(state: State, account_id: int, nonce: int) -> SlotWitness:
    return SlotWitness(nonce, state.slot(account_id, nonce), state.slot_proof(account_id, nonce),
                       account_witness(state, account_id))


def withdrawal_witness(state: State, index: int) -> WithdrawalWitness:
    accounts_root, markets, globals_hash, _ = state.root_parts()
    return WithdrawalWitness(index, state.withdrawals[index], state.withdrawal_proof(index),
                             accounts_root, markets, globals_hash)


def verify_account(root: bytes, w: AccountWitness) -> bool:
    if not well_formed(w.proof, ACCOUNT_TREE_DEPTH, w.account_id):
        return False
    accounts_root = compute_root(w.account_id, w.account.leaf(), w.proof)
    return state_root(accounts_root, w.markets_root, w.globals_hash, w.withdrawals_root) == root


def verify_slot(root: bytes, w: SlotWitness) -> bool:
    """The slot under the account's orders_root, and the account under `root`."""
    if not well_formed(w.proof, ORDER_TREE_DEPTH, w.nonce % ORDER_SLOTS):
        return False
    orders_root = compute_root(w.nonce % ORDER_SLOTS, w.slot.leaf(), w.proof)
    return orders_root == w.account.account.orders_root and verify_account(root, w.account)


def verify_withdrawal(root: bytes, w: WithdrawalWitness) -> bool:
    if not well_formed(w.proof, WITHDRAWAL_TREE_DEPTH, w.index):
        return False
    withdrawals_root = compute_root(w.index, w.record.leaf(), w.proof)
    return state_root(w.accounts_root, w.markets_root, w.globals_hash, withdrawals_root) == root


# ---------------------------------------------------------------------- one step's pre-state


class Opened(NamedTuple):
    """An account of the pre-state with its path, and one of its nonce slots with its path
    (an account id outside the tree opens nothing: zeros)."""

    account_id: int
    account: Account
    proof: Proof
    nonce: int
    slot: OrderSlot
    slot_proof: Proof


class StepWitness(NamedTuple):
    """What the L1 verifier needs to re-execute one transaction: the parts of the state
    root, the markets (those the step reads opened, `markets_read`; the others by their
    leaves), the globals, the (at most two) accounts and slots the transaction names, the
    insurance fund when a Deleverage reads it, and the path of the next withdrawal leaf
    when the step may append one (Withdraw, ForcedRequest; empty for every other type)."""

    accounts_root: bytes
    withdrawals_root: bytes
    state: State
    first: Opened
    second: Opened
    fund: Opened | None
    """The insurance fund, for the one rule that reads it without writing it (Deleverage;
    None for every other type: on L1 an empty list, since zero bytes cost calldata too)."""
    withdrawal_proof: Proof
    order: Order = Order(0, 0, False, 0, 0, 0, 0, 0)
    """The order a Fill names (the preimage of its slot's hash; zeros otherwise)."""
    opened_markets: frozenset[int] = frozenset()
    """The markets the witness opens (`markets_read`)."""


def _empty_proof(depth: int) -> Proof:
    return tuple((ZERO_HASH, ZERO_HASH, ZERO_HASH) for _ in range(depth))


def opened(state: State, account_id: int | None, nonce: int | None = None) -> Opened:
    if account_id is None or not 0 <= account_id < 4**ACCOUNT_TREE_DEPTH:
        return Opened(0, Account(), _empty_proof(ACCOUNT_TREE_DEPTH), 0, OrderSlot(), _empty_proof(ORDER_TREE_DEPTH))
    nonce = nonce or 0
    return Opened(account_id, state.account(account_id), state.account_proof(account_id), nonce,
                  state.slot(account_id, nonce), state.slot_proof(account_id, nonce))


def touched(tx: object) -> tuple[tuple[int | None, int | None], tuple[int | None, int | None]]:
    """The (account id, nonce) pairs a transaction's rule opens, first and second."""
    if isinstance(tx, Trade):
        return (tx.maker.account, tx.maker.nonce), (tx.taker.account, tx.taker.nonce)
    if isinstance(tx, Fill):
        return (tx.maker_account, tx.maker_nonce), (tx.taker.account, tx.taker.nonce)
    if isinstance(tx, (Withdraw, Cancel)):
        return (tx.account, tx.nonce), (None, None)
    if isinstance(tx, (Deposit, SettlePosition)):
        return (tx.account, None), (None, None)
    if isinstance(tx, Liquidate):
        return (tx.account, None), (INSURANCE_ACCOUNT, None)
    if isinstance(tx, Deleverage):
        return (tx.deleveragee, None), (tx.deleverager, None)
    if isinstance(tx, ForcedRequest):
        return (tx.account, None), (INSURANCE_ACCOUNT, None)
    if isinstance(tx, SweepFees):
        return (INSURANCE_ACCOUNT, None), (None, None)
    return (None, None), (None, None)


def named_market(tx: object, order: Order | None) -> int | None:
    """The market a transaction names (a Trade's and a Fill's: the maker order's; None
    for the types that name none)."""
    if isinstance(tx, Trade):
        return tx.maker.market
    if isinstance(tx, Fill):
        return None if order is None else order.market
    market = getattr(tx, "market", None)
    return market if isinstance(market, int) else None


def markets_read(state: State, named: int | None, accounts: list[Account]) -> frozenset[int]:
    """The markets a step's rule may read, which its witness opens: the market it names,
    every market the opened accounts hold (funding and margin read them), and the
    underlying of each such series; those that are listed."""
    ids = {p.market for a in accounts for p in a.positions}
    if named is not None:
        ids.add(named)
    for i in list(ids):
        m = state.market(i)
        if m is not None and m.product != PERPETUAL:
            ids.add(m.underlying)
    return frozenset(i for i in ids if state.market(i) is not None)


def step_witness(state: State, tx_bytes: bytes) -> StepWitness:
    """The witness of `tx_bytes`'s pre-state in `state` (before applying it)."""
    tx = decode(tx_bytes)
    (first_id, first_nonce), (second_id, second_nonce) = touched(tx)
    count = state.globals.withdrawal_count
    withdrawal_proof: Proof = ()  # no withdrawal appended: none sent
    if isinstance(tx, (Withdraw, ForcedRequest)):  # the types that may append one
        withdrawal_proof = (
            state.withdrawal_proof(count) if count < 4**WITHDRAWAL_TREE_DEPTH else _empty_proof(WITHDRAWAL_TREE_DEPTH)
        )
    accounts_root, _, _, withdrawals_root = state.root_parts()
    fund = opened(state, INSURANCE_ACCOUNT) if isinstance(tx, Deleverage) else None
    first = opened(state, first_id, first_nonce)
    second = opened(state, second_id, second_nonce)
    order = state.orders.get(first.slot.order_hash) if isinstance(tx, Fill) else None
    accounts = [first.account, second.account] + ([] if fund is None else [fund.account])
    return StepWitness(
        accounts_root, withdrawals_root, state, first, second, fund,
        withdrawal_proof, order or StepWitness._field_defaults["order"],
        markets_read(state, named_market(tx, order), accounts),
    )
