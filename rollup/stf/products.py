"""Products: how a position in a market is valued and margined.

The seam where a second product (options) plugs in: the money rules in `margin` ask the
market's product for a position's mark value and its margin requirement, and nothing
else about what the position is. Version 1 has one product.
"""

from __future__ import annotations

from .constants import PPM

PERPETUAL = 0
"""A linear perpetual future: value size * price, requirement a fraction of |notional|."""

PRODUCTS = frozenset({PERPETUAL})
"""The products a market may trade in this version (checked at genesis)."""


def mark_value(product: int, size: int, price: int) -> int:
    """A position's contribution to account value, in collateral units."""
    # PERPETUAL is the only product of version 1; markets are created with it at genesis.
    return size * price


def requirement(product: int, size: int, price: int, fraction_ppm: int) -> int:
    """A position's margin requirement at `fraction_ppm` of |notional|, rounded up."""
    return -((-abs(size * price) * fraction_ppm) // PPM)
