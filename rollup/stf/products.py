"""Products: how a position in a market is valued and margined.

The seam where a second product (options) plugs in: the money rules in `margin` ask the
market's product for a position's mark value and its margin requirement, and nothing
else about what the position is. Version 1 has one product.
"""

from __future__ import annotations

from .constants import PPM

PERPETUAL = 0
"""A linear perpetual future: value size * price, requirement a fraction of |notional|."""

CALL = 1
"""A European call, cash-settled: pays max(settlement - strike, 0) per lot at expiry."""

PUT = 2
"""A European put, cash-settled: pays max(strike - settlement, 0) per lot at expiry."""

PRODUCTS = frozenset({PERPETUAL})
"""The products a market may trade in this version (checked at genesis). CALL and PUT
records exist (state.Market, its option fields) but are not listed until the risk feed
and settlement rules are in."""


def mark_value(product: int, size: int, price: int) -> int:
    """A position's contribution to account value, in collateral units."""
    # PERPETUAL is the only product of version 1; markets are created with it at genesis.
    return size * price


def requirement(product: int, size: int, price: int, fraction_ppm: int) -> int:
    """A position's margin requirement at `fraction_ppm` of |notional|, rounded up."""
    return -((-abs(size * price) * fraction_ppm) // PPM)
