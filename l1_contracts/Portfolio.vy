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
def margin_ok(after: leaves.Account, k: money.Marks, market: uint256, old_size: int256, value_before: int256) -> bool:
    """margin.margin_ok(before, after), every requirement by the portfolio rule (equal to
    the linear one on an account of perpetuals only, so whichever of the two accounts
    holds a series), for a trade: `before` (settled) held `old_size` in `market`, was
    worth `value_before`, and is otherwise `after` but for its collateral. `after`'s
    initial and maintenance requirements come from one pass (money.vy
    `portfolio_requirements`). On the reduce-only path, as VerifyTrade reads it for
    perpetuals: every other position is unchanged, so the change is reduce-only iff the
    old size is nonzero and the new one is 0 or has its sign and a smaller magnitude;
    and `before`'s maintenance is `after`'s with the share of the traded market's
    underlying replaced (the requirement is a sum of per-underlying shares, and only
    that one's positions differ)."""
    initial_after: int256 = 0
    maintenance_after: int256 = 0
    initial_after, maintenance_after = money.portfolio_requirements(after, k, money.EVERY_UNDERLYING)
    value_after: int256 = money.value(after, k)
    if value_after >= initial_after:
        return True
    new_size: int256 = money.size_of(after, market)
    if old_size == 0 or (new_size != 0 and ((new_size > 0) != (old_size > 0) or abs(new_size) >= abs(old_size))):
        return False  # not reduce-only
    if maintenance_after == 0:
        return value_after >= 0
    underlying: uint256 = market
    if k.risk[market] >= money.OPTION:
        underlying = (k.risk[market] >> 160) & 255
    # before's positions (funding indexes aside: no requirement reads them)
    before: leaves.Account = money.with_position(after, market, old_size, 0)
    maintenance_before: int256 = unsafe_add(
        unsafe_sub(maintenance_after, money.portfolio_requirements(after, k, 1 << underlying)[1]),
        money.portfolio_requirements(before, k, 1 << underlying)[1],
    )
    return value_after * maintenance_before >= value_before * maintenance_after
