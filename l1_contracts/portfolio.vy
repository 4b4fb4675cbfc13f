# pragma version ~=0.4.3
"""
@title Portfolio margin from the Greeks (a module)
@notice The EVM side of rollup/stf/portfolio.py, rule for rule. Positions are netted per
        underlying (sums of size * delta, size * gamma, size * vega and of the short
        options' |size| * floor fraction); an underlying's worst loss over its grid of
        7 price moves (k * m // 3, k = -3..3) times 3 volatility moves (-W, 0, W) is, times
        SCENARIO_SCALE, the worst price part max(0, max over s > 0 of (-lin - quad,
        lin - quad)), lin = 2 * delta * s * S, quad = gamma * s**2, plus the worst
        volatility part |2 * 10**6 * vega| * W. Then
            maintenance(u) = ceil((loss + floors_m) / SCALE)
            initial(u)     = ceil((loss * i / m + floors_i) / SCALE)
        and the account's requirement is their sum over the underlyings it holds.
        Unchecked arithmetic: the inputs come from range-checked records at their widths
        (|size| < 2**40, |delta| <= 2**31, |gamma|, |vega| <= 2**63, 0 <= price < 2**64,
        fractions and the volatility shock < 2**32, at most 16 positions): the net sums
        stay below 2**108, every scenario term below 2**173, and the largest product
        formed, loss * i for the initial requirement, below 2**206.
"""

PPM: constant(int256) = 10**6
SCENARIO_SCALE: constant(int256) = 2 * 10**12
PRICE_STEPS: constant(int256) = 3
MAX_UNDERLYINGS: constant(uint256) = 16
MAX_EXPOSURES: constant(uint256) = 16


# One position as the margin rule reads it (portfolio.Exposure).
struct Exposure:
    underlying: uint256
    size: int256
    delta: int256
    gamma: int256
    vega: int256
    floor_maintenance_ppm: int256
    floor_initial_ppm: int256


# An underlying as the margin rule reads it (portfolio.Underlying).
struct Underlying:
    price: int256
    maintenance_ppm: int256
    initial_ppm: int256
    vol_shock_ppm: int256


@internal
@pure
def requirement(exposures: DynArray[Exposure, MAX_EXPOSURES], underlyings: Underlying[MAX_UNDERLYINGS],
                initial: bool) -> int256:
    """The sum over the underlyings some position is written on of their requirements:
    maintenance ceil((loss + floors_m) / SCALE), initial ceil((loss * i / m + floors_i) / SCALE),
    a floor being |size| * S * fraction (times SCALE / 10**6)."""
    delta: int256[MAX_UNDERLYINGS] = empty(int256[MAX_UNDERLYINGS])
    gamma: int256[MAX_UNDERLYINGS] = empty(int256[MAX_UNDERLYINGS])
    vega: int256[MAX_UNDERLYINGS] = empty(int256[MAX_UNDERLYINGS])
    short: int256[MAX_UNDERLYINGS] = empty(int256[MAX_UNDERLYINGS])
    held: bool[MAX_UNDERLYINGS] = empty(bool[MAX_UNDERLYINGS])
    for e: Exposure in exposures:
        u: uint256 = e.underlying
        delta[u] = unsafe_add(delta[u], unsafe_mul(e.size, e.delta))
        gamma[u] = unsafe_add(gamma[u], unsafe_mul(e.size, e.gamma))
        vega[u] = unsafe_add(vega[u], unsafe_mul(e.size, e.vega))
        if e.size < 0:
            fraction: int256 = e.floor_maintenance_ppm
            if initial:
                fraction = e.floor_initial_ppm
            short[u] = unsafe_add(short[u], unsafe_mul(-e.size, fraction))
        held[u] = True
    total: int256 = 0
    for u: uint256 in range(MAX_UNDERLYINGS):
        if held[u]:
            total = unsafe_add(total, self.underlying_requirement(delta[u], gamma[u], vega[u], short[u], underlyings[u], initial))
    return total


@internal
@pure
def underlying_requirement(delta: int256, gamma: int256, vega: int256, short: int256, d: Underlying, initial: bool) -> int256:
    """One underlying's requirement on its net exposure (sums of size * delta, gamma, vega
    and of the short options' |size| * floor fraction), rounded up once (`terms`)."""
    initial_term: int256 = 0
    maintenance_term: int256 = 0
    initial_term, maintenance_term = self.terms(delta, gamma, vega, short, short, d)
    if initial:
        return initial_term
    return maintenance_term


@internal
@pure
def terms(delta: int256, gamma: int256, vega: int256, short_maintenance: int256, short_initial: int256,
          d: Underlying) -> (int256, int256):
    """One underlying's (initial, maintenance) requirements on its net exposure, each
    rounded up once, both from its worst loss over the 21 scenarios, times SCENARIO_SCALE:
    the worst price part over s = k * m // 3 (k = 1..3; s = 0 gives 0), max(0, -lin - quad,
    lin - quad), plus the volatility part. Written out: s >= 0, so
    max(-lin - quad, lin - quad) = |2 * delta * S| * s - gamma * s**2, the same integer for
    each of the three sizes. Then, `short_*` the short options' sums of |size| times the
    floor fraction,
        maintenance = ceil((loss + floors_m) / SCALE)
        initial     = ceil((loss * i / m + floors_i) / SCALE)."""
    m: int256 = d.maintenance_ppm
    slope: int256 = abs(unsafe_mul(unsafe_mul(2, delta), d.price))
    s: int256 = unsafe_div(m, PRICE_STEPS)
    loss: int256 = max(0, unsafe_sub(unsafe_mul(slope, s), unsafe_mul(unsafe_mul(gamma, s), s)))
    s = unsafe_div(unsafe_mul(2, m), PRICE_STEPS)
    loss = max(loss, unsafe_sub(unsafe_mul(slope, s), unsafe_mul(unsafe_mul(gamma, s), s)))
    loss = max(loss, unsafe_sub(unsafe_mul(slope, m), unsafe_mul(unsafe_mul(gamma, m), m)))  # s = 3 * m // 3
    loss = unsafe_add(loss, unsafe_mul(abs(unsafe_mul(2 * PPM, vega)), d.vol_shock_ppm))
    per_short: int256 = unsafe_mul(d.price, 2 * PPM)  # a floor per unit of |size| * fraction
    # ceil(a / b) = (a + b - 1) // b for a >= 0, b > 0 (written out: a call each costs more)
    b: int256 = unsafe_mul(SCENARIO_SCALE, m)
    return (
        unsafe_div(unsafe_add(unsafe_add(unsafe_mul(loss, d.initial_ppm), unsafe_mul(unsafe_mul(short_initial, per_short), m)), unsafe_sub(b, 1)), b),
        unsafe_div(unsafe_add(unsafe_add(loss, unsafe_mul(short_maintenance, per_short)), SCENARIO_SCALE - 1), SCENARIO_SCALE),
    )
