"""Witnesses: a leaf with what it takes to recompute the state root from it.

L1 uses these to pay a withdrawal against a final root, to let an account escape with its
equity when the rollup is frozen, and (through the verifier) to check a disputed step's
pre-state. Each `verify_*` returns True iff the witness recomputes exactly `root`.
"""

from __future__ import annotations

from typing import NamedTuple

from .constants import ACCOUNT_TREE_DEPTH, ORDER_SLOTS, ORDER_TREE_DEPTH, WITHDRAWAL_TREE_DEPTH
from .merkle import Proof, compute_root, well_formed
from .state import Account, OrderSlot, State, Withdrawal, state_root


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
    index: int
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
