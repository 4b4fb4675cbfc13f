# pragma version ~=0.4.3
"""
@title Test harness exposing the money module (differential tests against the STF)
"""
import leaves
import money

portfolio: immutable(address)


@deploy
def __init__(portfolio_: address):
    portfolio = portfolio_


@external
@view
def settle(a: leaves.Account, markets: leaves.Market[16]) -> (leaves.Account, int256):
    return money.settle(a, money.marks(markets, portfolio))


@external
@view
def value_and_requirements(a: leaves.Account, markets: leaves.Market[16]) -> (int256, int256, int256):
    k: money.Marks = money.marks(markets, portfolio)
    return money.value(a, k), money.requirement(a, k, True), money.requirement(a, k, False)


@external
@view
def margin_ok(before: leaves.Account, after: leaves.Account, markets: leaves.Market[16]) -> bool:
    return money.margin_ok(before, after, money.marks(markets, portfolio))


@external
@pure
def with_position(a: leaves.Account, market: uint256, size: int256, funding_index: int256) -> leaves.Account:
    return money.with_position(a, market, size, funding_index)


@external
@pure
def floor_ceil(a: int256, b: int256) -> (int256, int256):
    return money.floor_div(a, b), money.ceil_div(a, b)
