# pragma version ~=0.4.3
"""
@title Test harness exposing the money module (differential tests against the STF)
"""
import leaves
import money
import witness

portfolio: immutable(address)


@deploy
def __init__(portfolio_: address):
    portfolio = portfolio_


@internal
@view
def _marks(records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256) -> money.Marks:
    """The marks of the markets `records` (`listed` as witness.vy's Witness has it, every
    listed market opened)."""
    named: leaves.Market = empty(leaves.Market)
    k: money.Marks = empty(money.Marks)
    market_leaves: bytes32[money.MAX_MARKETS] = empty(bytes32[money.MAX_MARKETS])
    named, k, market_leaves = witness.open_markets(records, listed, b"", 0, portfolio)
    return k


@external
@view
def settle(a: leaves.Account, records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256) -> (leaves.Account, int256):
    return money.settle(a, self._marks(records, listed))


@external
@view
def value_and_requirements(a: leaves.Account, records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256) -> (int256, int256, int256):
    k: money.Marks = self._marks(records, listed)
    return money.value(a, k), money.requirement(a, k, True), money.requirement(a, k, False)


@external
@view
def margin_ok(before: leaves.Account, after: leaves.Account, records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256) -> bool:
    return money.margin_ok(before, after, self._marks(records, listed))


@external
@view
def portfolio_requirements(a: leaves.Account, records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256, market: uint256,
                           size: int256) -> (int256, int256, int256):
    """money.portfolio_requirements: `a`'s initial and maintenance requirements by the
    portfolio rule, and the maintenance with its position in `market` at `size`."""
    return money.portfolio_requirements(a, self._marks(records, listed), market, size)


@external
@view
def portfolio_margin_ok(before: leaves.Account, after: leaves.Account, records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256,
                        market: uint256) -> bool:
    """The Portfolio contract's margin_ok (VerifyTrade's rule for an option holder: `after`
    differs from `before` in its collateral and its position in `market` only)."""
    k: money.Marks = self._marks(records, listed)
    return staticcall money.Portfolio(k.portfolio).margin_ok(
        after, k, market, money.size_of(before, market), money.size_of(after, market), money.value(before, k)
    )


@external
@pure
def with_position(a: leaves.Account, market: uint256, size: int256, funding_index: int256) -> leaves.Account:
    return money.with_position(a, market, size, funding_index)


@external
@pure
def floor_ceil(a: int256, b: int256) -> (int256, int256):
    return money.floor_div(a, b), money.ceil_div(a, b)
