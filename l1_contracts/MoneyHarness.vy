# pragma version ~=0.4.3
"""
@title Test harness exposing the money module (differential tests against the STF)
"""
import leaves
import money


@external
@pure
def settle(a: leaves.Account, markets: money.MarketView[16]) -> (leaves.Account, int256):
    return money.settle(a, markets)


@external
@pure
def value_and_requirements(a: leaves.Account, markets: money.MarketView[16]) -> (int256, int256, int256):
    return money.value(a, markets), money.requirement(a, markets, True), money.requirement(a, markets, False)


@external
@pure
def margin_ok(before: leaves.Account, after: leaves.Account, markets: money.MarketView[16]) -> bool:
    return money.margin_ok(before, after, markets)


@external
@pure
def floor_ceil(a: int256, b: int256) -> (int256, int256):
    return money.floor_div(a, b), money.ceil_div(a, b)
