"""Products: how a position in a market is valued and margined.

The money rules in `margin` ask the market's product for a position's mark value and its
linear margin requirement; an account holding an option series is margined as a
portfolio instead (`portfolio`, through `margin.requirement`).
"""

from __future__ import annotations

from .constants import PPM

PERPETUAL = 0
"""A linear perpetual future: value size * price, requirement a fraction of |notional|."""

CALL = 1
"""A European call, cash-settled: pays max(settlement - strike, 0) per lot at expiry."""

PUT = 2
"""A European put, cash-settled: pays max(strike - settlement, 0) per lot at expiry."""

PRODUCTS = frozenset({PERPETUAL, CALL, PUT})
"""The products a market may trade (checked at genesis: `genesis.check_market`)."""


def mark_value(product: int, size: int, price: int) -> int:
    """A position's contribution to account value, in collateral units: its size times
    the price (a perpetual's oracle price, a series' mark), whatever the product."""
    return size * price


def requirement(product: int, size: int, price: int, fraction_ppm: int) -> int:
    """A position's margin requirement at `fraction_ppm` of |notional|, rounded up."""
    return -((-abs(size * price) * fraction_ppm) // PPM)
