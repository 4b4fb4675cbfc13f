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
def account_of(record: Bytes[leaves.ACCOUNT_RECORD]) -> leaves.Account:
    return leaves.account_of(record)


@external
@pure
def market_of(record: Bytes[leaves.OPTION_RECORD]) -> leaves.Market:
    return leaves.market_of(record)


@external
@pure
def option_fields(m: leaves.Market) -> (uint256, uint256, uint256, uint256, int256, int256, int256):
    """(underlying, strike, expiry, settlement_price, delta, gamma, vega) of a series."""
    delta: int256 = 0
    gamma: int256 = 0
    vega: int256 = 0
    delta, gamma, vega = leaves.greeks_of(m)
    return leaves.underlying_of(m), leaves.strike_of(m), leaves.expiry_of(m), leaves.settlement_of(m), delta, gamma, vega


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
