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
def slot_leaf(nonce: uint64, order_hash: bytes32, filled: uint64) -> bytes32:
    return leaves.slot_leaf(nonce, order_hash, filled)


@external
@pure
def state_root(accounts: bytes32, markets: bytes32, globals_hash: bytes32, withdrawals: bytes32) -> bytes32:
    return leaves.state_root(accounts, markets, globals_hash, withdrawals)
