# pragma version ~=0.4.3
"""
@title Test harness exposing the state module (differential tests against the STF)
"""
import state


@external
@pure
def account_leaf(a: state.Account) -> bytes32:
    return state.account_leaf(a)


@external
@pure
def slot_leaf(s: state.Slot) -> bytes32:
    return state.slot_leaf(s)


@external
@pure
def market_leaf(m: state.Market) -> bytes32:
    return state.market_leaf(m)


@external
@pure
def account_of(record: Bytes[state.ACCOUNT_RECORD]) -> state.Account:
    return state.account_of(record)


@external
@pure
def market_of(record: Bytes[state.OPTION_RECORD]) -> state.Market:
    return state.market_of(record)


@external
@pure
def option_fields(m: state.Market) -> (uint256, uint256, uint256, uint256, int256, int256, int256):
    """(underlying, strike, expiry, settlement_price, delta, gamma, vega) of a series."""
    delta: int256 = 0
    gamma: int256 = 0
    vega: int256 = 0
    delta, gamma, vega = state.greeks_of(m)
    return state.underlying_of(m), state.strike_of(m), state.expiry_of(m), state.settlement_of(m), delta, gamma, vega


@external
@pure
def globals_hash(g: state.Globals) -> bytes32:
    return state.globals_hash(g)


@external
@pure
def withdrawal_leaf(r: state.Withdrawal) -> bytes32:
    return state.withdrawal_leaf(r)


@external
@pure
def state_root(accounts: bytes32, markets: bytes32, globals_hash: bytes32, withdrawals: bytes32) -> bytes32:
    return state.state_root(accounts, markets, globals_hash, withdrawals)
