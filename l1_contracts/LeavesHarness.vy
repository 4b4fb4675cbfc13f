# pragma version ~=0.4.3
"""
@title Test harness exposing the leaves module (differential tests against the STF)
"""
import leaves


@external
@pure
def account_leaf(a: leaves.Account) -> bytes32:
    return leaves.account_leaf(a)


@external
@pure
def slot_leaf(s: leaves.Slot) -> bytes32:
    return leaves.slot_leaf(s)


@external
@pure
def market_leaf(m: leaves.Market) -> bytes32:
    return leaves.market_leaf(m)


@external
@pure
def globals_hash(g: leaves.Globals) -> bytes32:
    return leaves.globals_hash(g)


@external
@pure
def withdrawal_leaf(r: leaves.Withdrawal) -> bytes32:
    return leaves.withdrawal_leaf(r)


@external
@pure
def state_root(accounts: bytes32, markets: bytes32, globals_hash: bytes32, withdrawals: bytes32) -> bytes32:
    return leaves.state_root(accounts, markets, globals_hash, withdrawals)
