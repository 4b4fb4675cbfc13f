# pragma version ~=0.4.3
"""
@title Portfolio margin of an account holding option series (a stateless rules contract)
@notice margin.vy's `requirement` calls this for an account that holds an option series
        (an account of perpetuals only keeps the linear rule inline, which the portfolio
        rule equals on it), and VerifyTrade its `margin_ok` when a side of a trade holds
        or trades one. Its own contract because the 24 KB code limit of each rules
        contract that checks margin has no room for it; calls happen on the options path
        only. The Verifier names it in every step's context (`k.portfolio` in the marks).
"""
import margin
import state


@external
@pure
def requirement(a: state.Account, k: margin.Marks, initial: bool) -> int256:
    """margin.portfolio_requirement of `a` (funding settled) under the marks `k`."""
    return margin.portfolio_requirement(a, k, initial)


@external
@pure
def margin_ok(after: state.Account, k: margin.Marks, market: uint256, old_size: int256, new_size: int256,
              value_before: int256) -> bool:
    """margin.margin_ok(before, after), every requirement by the portfolio rule (equal to
    the linear one on an account of perpetuals only, so whichever of the two accounts
    holds a series), for a trade: `before` (settled) was worth `value_before` and held
    `old_size` in `market`, `after` holds `new_size` there and is otherwise `before`
    but for its collateral. One pass (margin.vy `portfolio_requirements`) gives `after`'s
    initial and maintenance requirements and `before`'s maintenance (its traded
    underlying's term computed again). Every other position is unchanged, so the change is
    reduce-only as margin.vy `reduces` reads it (as VerifyTrade does for perpetuals)."""
    initial_after: int256 = 0
    maintenance_after: int256 = 0
    maintenance_before: int256 = 0
    initial_after, maintenance_after, maintenance_before = margin.portfolio_requirements(after, k, market, old_size)
    value_after: int256 = margin.value(after, k)
    if value_after >= initial_after:
        return True
    if not margin.reduces(old_size, new_size):
        return False
    if maintenance_after == 0:
        return value_after >= 0
    return value_after * maintenance_before >= value_before * maintenance_after
