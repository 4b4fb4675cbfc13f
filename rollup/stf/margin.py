"""Money rules: funding settlement, account value, margin requirements.

All arithmetic is on integers. Every division rounds against the account:
funding owed rounds up, funding received rounds down, requirements round up.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import portfolio, products
from .constants import FUNDING_SCALE, PPM
from .state import Account, Market, Position


def floor_div(a: int, b: int) -> int:
    """floor(a / b) for b > 0 (Python's // already floors; the EVM's sdiv truncates)."""
    return a // b


def ceil_div(a: int, b: int) -> int:
    """ceil(a / b) for b > 0."""
    return -floor_div(-a, b)


def settle_funding(account: Account, markets: Sequence[Market | None]) -> tuple[Account, int]:
    """Bring every position's funding index up to its market's; return the account with
    the payment taken from collateral, and the payment (negative when received).

        owed(position) = ceil((market.funding_index - position.funding_index) * size / FUNDING_SCALE)
    """
    for p in account.positions:
        if markets[p.market].funding_index != p.funding_index:  # type: ignore[union-attr]
            break
    else:
        return account, 0  # every index is current (or no positions): nothing owed
    payment = 0
    settled = []
    for p in account.positions:
        index = markets[p.market].funding_index  # type: ignore[union-attr]
        if index != p.funding_index:
            payment += ceil_div((index - p.funding_index) * p.size, FUNDING_SCALE)
            p = Position(p.market, p.size, index)
        settled.append(p)
    return (
        Account(account.owner, account.collateral - payment, tuple(settled), account.orders_root),
        payment,
    )


def value(account: Account, markets: Sequence[Market | None]) -> int:
    """Total value: collateral + sum(size * oracle price). Funding must be settled first."""
    total = account.collateral
    for p in account.positions:
        market: Market = markets[p.market]  # type: ignore[assignment]
        total += products.mark_value(market.product, p.size, market.oracle_price)
    return total


def requirement(account: Account, markets: Sequence[Market | None], initial: bool) -> int:
    """The margin requirement, initial or maintenance. An account of perpetuals only:
    sum(ceil(|size * price| * fraction / PPM)). An account holding an option series: the
    portfolio rule (portfolio.requirement) on its positions' exposures, which on
    perpetuals alone gives exactly the sum above."""
    total = 0
    for p in account.positions:
        market: Market = markets[p.market]  # type: ignore[assignment]  # a position's market exists
        if market.product != products.PERPETUAL:
            return portfolio_requirement(account, markets, initial)
        fraction = market.initial_margin_ppm if initial else market.maintenance_margin_ppm
        total += products.requirement(market.product, p.size, market.oracle_price, fraction)
    return total


def exposure(position: Position, market: Market) -> portfolio.Exposure:
    """What the portfolio rule reads of a position: a perpetual is its own underlying with
    delta 1; an option series is written on its `underlying` with the risk feed's Greeks,
    and its own margin fractions are the floors of a short position."""
    if market.product == products.PERPETUAL:
        return portfolio.Exposure(position.market, position.size)
    return portfolio.Exposure(
        market.underlying, position.size, market.delta, market.gamma, market.vega,
        market.maintenance_margin_ppm, market.initial_margin_ppm,
    )


def underlying(market: Market | None) -> portfolio.Underlying:
    """What the portfolio rule reads of an underlying: its perpetual's oracle price (the
    spot), margin fractions and volatility shock. Where no perpetual with a maintenance
    fraction is listed (genesis and listing refuse a series on anything else): price 0,
    fractions 1, no shock, so that the rule stays defined."""
    if market is None or market.product != products.PERPETUAL or market.maintenance_margin_ppm == 0:
        return portfolio.Underlying(0, 1, 1, 0)
    return portfolio.Underlying(
        market.oracle_price, market.maintenance_margin_ppm, market.initial_margin_ppm, market.vol_shock_ppm
    )


def portfolio_requirement(account: Account, markets: Sequence[Market | None], initial: bool) -> int:
    """portfolio.requirement on the account's exposures and the markets' underlyings."""
    exposures = [exposure(p, markets[p.market]) for p in account.positions]  # type: ignore[arg-type]
    return portfolio.requirement(exposures, [underlying(m) for m in markets], initial)


def is_reduce_only(before: Account, after: Account) -> bool:
    """True iff no position grew or flipped sign, and something shrank."""
    shrank = False
    for p in after.positions:
        old = before.size(p.market)
        if old == 0 or (old > 0) != (p.size > 0) or abs(p.size) > abs(old):
            return False
        if abs(p.size) < abs(old):
            shrank = True
    if len(after.positions) < len(before.positions):
        shrank = True
    return shrank


def margin_ok(before: Account, after: Account, markets: Sequence[Market | None]) -> bool:
    """The margin rule for a voluntary change (trade, withdrawal), both accounts settled:
    allowed if value' >= initial requirement'; otherwise only if the change is reduce-only
    and does not lower value/maintenance (compared by cross-multiplying):
        value' * maintenance >= value * maintenance'   (if maintenance' > 0)
        value' >= 0                                    (if maintenance' = 0)
    """
    # value(after) and requirement(after, initial=True) in one pass (the common case:
    # perpetuals only; an option series sends the account to the portfolio rule)
    value_after = after.collateral
    initial_after = 0
    for p in after.positions:
        market: Market = markets[p.market]  # type: ignore[assignment]
        if market.product != products.PERPETUAL:
            value_after = value(after, markets)
            initial_after = portfolio_requirement(after, markets, initial=True)
            break
        notional = p.size * market.oracle_price
        value_after += notional
        initial_after -= (-abs(notional) * market.initial_margin_ppm) // PPM
    if value_after >= initial_after:
        return True
    if not is_reduce_only(before, after):
        return False
    maintenance_after = requirement(after, markets, initial=False)
    if maintenance_after == 0:
        return value_after >= 0
    maintenance_before = requirement(before, markets, initial=False)
    return value_after * maintenance_before >= value(before, markets) * maintenance_after


def with_position(
    account: Account, market: int, size: int, funding_index: int, collateral: int | None = None
) -> Account:
    """The account with its position in `market` set to `size` (removed when 0), keeping
    positions sorted by market; optionally with a new collateral."""
    positions = account.positions
    new: tuple[Position, ...] = positions
    entry = (Position(market, size, funding_index),) if size != 0 else ()
    for i, p in enumerate(positions):
        if p.market == market:
            new = positions[:i] + entry + positions[i + 1 :]
            break
        if p.market > market:
            new = positions[:i] + entry + positions[i:]
            break
    else:
        new = positions + entry
    return Account(
        account.owner, account.collateral if collateral is None else collateral, new,
        account.orders_root,
    )


def with_collateral(account: Account, collateral: int) -> Account:
    return Account(account.owner, collateral, account.positions, account.orders_root)


def long_part(size: int) -> int:
    return size if size > 0 else 0
