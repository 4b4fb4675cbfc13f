# pragma version ~=0.4.3
"""
@title Test harness exposing the margin module (differential tests against the STF)
"""
import margin
import state
import witness

portfolio: immutable(address)


@deploy
def __init__(portfolio_: address):
    portfolio = portfolio_


@internal
@view
def _marks(records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256) -> margin.Marks:
    """The marks of the markets `records` (`listed` as witness.vy's Witness has it, every
    listed market opened)."""
    named: state.Market = empty(state.Market)
    k: margin.Marks = empty(margin.Marks)
    market_leaves: bytes32[margin.MAX_MARKETS] = empty(bytes32[margin.MAX_MARKETS])
    named, k, market_leaves = witness.open_markets(records, listed, b"", 0, portfolio)
    return k


@external
@view
def settle_funding(a: state.Account, records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256) -> (state.Account, int256):
    return margin.settle_funding(a, self._marks(records, listed))


@external
@view
def value_and_requirements(a: state.Account, records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256) -> (int256, int256, int256):
    k: margin.Marks = self._marks(records, listed)
    return margin.value(a, k), margin.requirement(a, k, True), margin.requirement(a, k, False)


@external
@view
def margin_ok(before: state.Account, after: state.Account, records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256) -> bool:
    return margin.margin_ok(before, after, self._marks(records, listed))


@external
@view
def portfolio_requirements(a: state.Account, records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256, market: uint256,
                           size: int256) -> (int256, int256, int256):
    """margin.portfolio_requirements: `a`'s initial and maintenance requirements by the
    portfolio rule, and the maintenance with its position in `market` at `size`."""
    return margin.portfolio_requirements(a, self._marks(records, listed), market, size)


@external
@view
def portfolio_margin_ok(before: state.Account, after: state.Account, records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256,
                        market: uint256) -> bool:
    """The Portfolio contract's margin_ok (VerifyTrade's rule for an option holder: `after`
    differs from `before` in its collateral and its position in `market` only)."""
    k: margin.Marks = self._marks(records, listed)
    return staticcall margin.Portfolio(k.portfolio).margin_ok(
        after, k, market, margin.size_of(before, market), margin.size_of(after, market), margin.value(before, k)
    )


@external
@pure
def with_position(a: state.Account, market: uint256, size: int256, funding_index: int256) -> state.Account:
    return margin.with_position(a, market, size, funding_index)


@external
@pure
def floor_ceil(a: int256, b: int256) -> (int256, int256):
    return margin.floor_div(a, b), margin.ceil_div(a, b)
