# pragma version ~=0.4.3
"""
@title Portfolio margin of an account holding option series (a stateless rules contract)
@notice money.vy's `requirement` calls this for an account that holds an option series
        (an account of perpetuals only keeps the linear rule inline, which the portfolio
        rule equals on it), and VerifyTrade its `margin_ok` when a side of a trade holds
        or trades one. Its own contract because the 24 KB code limit of each rules
        contract that checks margin has no room for it; calls happen on the options path
        only. The Verifier names it in every step's context (`k.portfolio` in the marks).
"""
import leaves
import money


@external
@pure
def requirement(a: leaves.Account, k: money.Marks, initial: bool) -> int256:
    """margin.portfolio_requirement of `a` (funding settled) under the marks `k`."""
    return money.portfolio_requirement(a, k, initial)


@external
@pure
def margin_ok(before: leaves.Account, after: leaves.Account, k: money.Marks) -> bool:
    """margin.margin_ok, every requirement by the portfolio rule: money.vy's `margin_ok`
    with `portfolio_requirement` for `requirement` (equal on an account of perpetuals
    only, so whichever of the two accounts holds a series), without calling this
    contract back. `after`'s initial and maintenance requirements come from one pass
    (money.vy `portfolio_requirements`); `before`'s maintenance, on the reduce-only path
    only, from a second."""
    initial_after: int256 = 0
    maintenance_after: int256 = 0
    initial_after, maintenance_after = money.portfolio_requirements(after, k)
    value_after: int256 = money.value(after, k)
    if value_after >= initial_after:
        return True
    if not money.is_reduce_only(before, after):
        return False
    if maintenance_after == 0:
        return value_after >= 0
    return value_after * money.portfolio_requirement(before, k, False) >= money.value(before, k) * maintenance_after
