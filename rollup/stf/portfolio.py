"""Portfolio margin from the Greeks: the scenario rule for perpetuals and options together.

An account's positions are grouped by underlying (an underlying is a perpetual market; an
option series names the perpetual it is written on, and the perpetual's oracle price is
its spot `S`). Each underlying is shocked on a fixed grid of scenarios, and a position's
profit in a scenario is its Taylor expansion in the signed Greeks of the risk feed:

    pnl(position, s, w) = size * (delta * s * S + gamma * s**2 / 2 + vega * w)

with `s` the relative price move and `w` the absolute volatility move, both in parts per
million. A perpetual is delta 1 (`DELTA_ONE`), gamma and vega 0. Units, all integers:

- delta: parts per million of the underlying (a perpetual: 1,000,000);
- gamma: "cash gamma", d2V/dS2 * S**2, collateral units per lot (a move of s costs
  gamma * s**2 / 2);
- vega: collateral units per lot per 1.0 of volatility (a move of w ppm: vega * w / 10**6).

The grid of an underlying with maintenance fraction `m` (its perpetual's
maintenance_margin_ppm) and volatility shock `W`:

    s in { k * m // 3 : k = 0, 1, 2, 3 } and their negatives       (7 price moves)
    w in { -W, 0, W }                                                 (3 volatility moves)

The requirements, per underlying `u`, are computed on exact integers scaled by
SCENARIO_SCALE = 2 * 10**12 and rounded up once, at the end:

    loss(u)        = max(0, -(the lowest, over the 21 scenarios, of the sum of u's positions' pnl))
    floors_m(u)    = sum over u's short options of |size| * S * option.maintenance_margin_ppm / 10**6
    floors_i(u)    = the same at option.initial_margin_ppm
    maintenance(u) = ceil(loss(u) + floors_m(u))
    initial(u)     = ceil(loss(u) * i / m + floors_i(u))      (i: the perpetual's initial fraction)

and an account's requirement is the sum over its underlyings: losses on one underlying are
never offset by gains on another. The floors keep the expansion from understating the risk
of short options on far moves (a short call's gamma loss grows without bound); `initial`
is the maintenance loss times the factor i / m >= 1.

For an account of perpetuals only this is exactly the rule of `margin.requirement`:
each underlying holds one position, its worst scenario is the move of the full fraction
against it, and ceil(|size * S| * m / 10**6) (or i) is what both give.

Properties the tests hold this to: never negative; scaling every position by k scales the
loss by k; a perpetual that moves an underlying's net delta toward zero (without crossing
past the opposite value) never raises its requirement (the grid is symmetric, so the
worst loss grows with |net delta| alone).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from .constants import PPM

DELTA_ONE = PPM
"""A perpetual's delta: one lot of the underlying per lot."""

PRICE_STEPS = 3
"""Price moves at k/3 of the fraction, k = -3..3: seven moves, zero included."""

SCENARIO_SCALE = 2 * PPM * PPM
"""The common denominator of scenario profits (the 1/2 of gamma and two ppm factors)."""


class Exposure(NamedTuple):
    """What the margin rule reads of one position: the underlying's id (its perpetual
    market), the size in lots (negative short), the Greeks per lot, and for a short
    option the fractions of spot notional taken as its floors (0 for a perpetual)."""

    underlying: int
    size: int
    delta: int = DELTA_ONE
    gamma: int = 0
    vega: int = 0
    floor_maintenance_ppm: int = 0
    floor_initial_ppm: int = 0


class Underlying(NamedTuple):
    """What the margin rule reads of an underlying: its spot (the perpetual's oracle
    price), its perpetual's maintenance and initial fractions (1 <= m <= i), and its
    volatility shock in ppm of volatility."""

    price: int
    maintenance_ppm: int
    initial_ppm: int
    vol_shock_ppm: int


class Net(NamedTuple):
    """An underlying's net exposure: the sums over its positions of size * delta,
    size * gamma and size * vega, and of |size| * floor fraction over its short options."""

    delta: int = 0
    gamma: int = 0
    vega: int = 0
    short_maintenance: int = 0
    short_initial: int = 0


def net_exposures(exposures: Iterable[Exposure]) -> dict[int, Net]:
    """The net exposure of each underlying some position is written on."""
    out: dict[int, Net] = {}
    for e in exposures:
        n = out.get(e.underlying, Net())
        short = -e.size if e.size < 0 else 0
        out[e.underlying] = Net(
            n.delta + e.size * e.delta,
            n.gamma + e.size * e.gamma,
            n.vega + e.size * e.vega,
            n.short_maintenance + short * e.floor_maintenance_ppm,
            n.short_initial + short * e.floor_initial_ppm,
        )
    return out


def price_moves(maintenance_ppm: int) -> tuple[int, ...]:
    """The seven price moves of the grid, in ppm: k * m // 3 for k = -3..3 (symmetric:
    the negative moves are the negated positive ones)."""
    up = [k * maintenance_ppm // PRICE_STEPS for k in range(PRICE_STEPS + 1)]
    return tuple([-x for x in reversed(up[1:])] + up)


def scenarios(underlying: Underlying) -> list[tuple[int, int]]:
    """The 21 (price move, volatility move) pairs of an underlying, in ppm."""
    w = underlying.vol_shock_ppm
    return [(s, v) for s in price_moves(underlying.maintenance_ppm) for v in (-w, 0, w)]


def scenario_pnl(net: Net, price: int, s: int, w: int) -> int:
    """The profit of an underlying's positions in scenario (s, w), times SCENARIO_SCALE
    (exact): 2 * delta * s * S + gamma * s**2 + 2 * 10**6 * vega * w, on the net sums
    (the sum over positions of each one's expansion)."""
    return 2 * net.delta * s * price + net.gamma * s * s + 2 * PPM * net.vega * w


def worst_loss(net: Net, underlying: Underlying) -> int:
    """max(0, -(the lowest of the 21 scenario profits)), times SCENARIO_SCALE.

    A scenario's profit is a price part, -(2 * delta * s * S + gamma * s**2), plus a
    volatility part, 2 * 10**6 * vega * w, and the grid is every price move with every
    volatility move, so the worst loss is the worst price part plus the worst volatility
    part. Both sets of moves are symmetric and hold 0, so: the price part is the largest
    of 0 and, for each positive move s, -lin - quad and lin - quad (lin = 2 * delta * s * S,
    quad = gamma * s**2); the volatility part is |2 * 10**6 * vega| * W. (Equal to the
    maximum over `scenarios` of -scenario_pnl, and never negative.)"""
    price_part = 0
    for k in range(1, PRICE_STEPS + 1):
        s = k * underlying.maintenance_ppm // PRICE_STEPS
        lin = 2 * net.delta * s * underlying.price
        quad = net.gamma * s * s
        price_part = max(price_part, -lin - quad, lin - quad)
    return price_part + abs(2 * PPM * net.vega) * underlying.vol_shock_ppm


def ceil_div(a: int, b: int) -> int:
    """ceil(a / b) for b > 0."""
    return -((-a) // b)


def underlying_requirement(net: Net, underlying: Underlying, initial: bool) -> int:
    """One underlying's requirement in collateral units, rounded up once:
    maintenance ceil((loss + floors_m) / SCALE), initial ceil((loss * i / m + floors_i) / SCALE),
    where a floor is |size| * S * fraction (times SCENARIO_SCALE / 10**6 = 2 * 10**6)."""
    loss = worst_loss(net, underlying)
    if not initial:
        return ceil_div(loss + net.short_maintenance * underlying.price * 2 * PPM, SCENARIO_SCALE)
    m = underlying.maintenance_ppm
    floors = net.short_initial * underlying.price * 2 * PPM
    return ceil_div(loss * underlying.initial_ppm + floors * m, SCENARIO_SCALE * m)


def requirement(exposures: Iterable[Exposure], underlyings: Sequence[Underlying], initial: bool) -> int:
    """The account's requirement: the sum over its underlyings of each one's requirement
    on its net exposure."""
    return sum(underlying_requirement(net, underlyings[u], initial) for u, net in net_exposures(exposures).items())
