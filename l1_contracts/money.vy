# pragma version ~=0.4.3
"""
@title Money rules (a module): funding settlement, value, requirements, the margin rule
@notice The EVM side of rollup/stf/margin.py and products.py, rule for rule. The EVM's
        signed division truncates toward zero; the rules floor and ceil, so both are
        spelled out here.
"""
import leaves

FUNDING_SCALE: constant(int256) = 10**9
PPM: constant(int256) = 10**6
MAX_MARKETS: constant(uint256) = 16


struct MarketView:
    product: uint8
    oracle_price: uint64
    funding_index: int128
    initial_margin_ppm: uint32
    maintenance_margin_ppm: uint32


@internal
@pure
def floor_div(a: int256, b: int256) -> int256:
    """floor(a / b) for b > 0."""
    q: int256 = a // b
    if a < 0 and q * b != a:
        q -= 1
    return q


@internal
@pure
def ceil_div(a: int256, b: int256) -> int256:
    """ceil(a / b) for b > 0."""
    return -self.floor_div(-a, b)


@internal
@pure
def settle(a: leaves.Account, markets: MarketView[MAX_MARKETS]) -> (leaves.Account, int256):
    """Every position's funding index brought up to its market's; the payment
    (sum of ceil((market index - position index) * size / FUNDING_SCALE)) taken from collateral."""
    payment: int256 = 0
    out: leaves.Account = a
    for i: uint256 in range(len(a.positions), bound=16):
        p: leaves.Position = a.positions[i]
        index: int128 = markets[convert(p.market, uint256)].funding_index
        if index != p.funding_index:
            diff: int256 = convert(index, int256) - convert(p.funding_index, int256)
            payment += self.ceil_div(diff * convert(p.size, int256), FUNDING_SCALE)
            out.positions[i].funding_index = index
    out.collateral = convert(convert(a.collateral, int256) - payment, int128)
    return out, payment


@internal
@pure
def value(a: leaves.Account, markets: MarketView[MAX_MARKETS]) -> int256:
    """collateral + sum(size * oracle_price) (perpetuals; the one product of version 1)."""
    total: int256 = convert(a.collateral, int256)
    for p: leaves.Position in a.positions:
        total += convert(p.size, int256) * convert(markets[convert(p.market, uint256)].oracle_price, int256)
    return total


@internal
@pure
def requirement(a: leaves.Account, markets: MarketView[MAX_MARKETS], initial: bool) -> int256:
    """sum(ceil(|size * price| * fraction / PPM))."""
    total: int256 = 0
    for p: leaves.Position in a.positions:
        m: MarketView = markets[convert(p.market, uint256)]
        fraction: int256 = convert(m.maintenance_margin_ppm, int256)
        if initial:
            fraction = convert(m.initial_margin_ppm, int256)
        total += self.ceil_div(abs(convert(p.size, int256) * convert(m.oracle_price, int256)) * fraction, PPM)
    return total


@internal
@pure
def size_of(a: leaves.Account, market: uint8) -> int256:
    for p: leaves.Position in a.positions:
        if p.market == market:
            return convert(p.size, int256)
    return 0


@internal
@pure
def is_reduce_only(before: leaves.Account, after: leaves.Account) -> bool:
    """No position grew or flipped, and something shrank."""
    shrank: bool = False
    for p: leaves.Position in after.positions:
        old: int256 = self.size_of(before, p.market)
        new: int256 = convert(p.size, int256)
        if old == 0 or (old > 0) != (new > 0) or abs(new) > abs(old):
            return False
        if abs(new) < abs(old):
            shrank = True
    if len(after.positions) < len(before.positions):
        shrank = True
    return shrank


@internal
@pure
def margin_ok(before: leaves.Account, after: leaves.Account, markets: MarketView[MAX_MARKETS]) -> bool:
    """value' >= IMR', or reduce-only with value' * MMR >= value * MMR' (value' >= 0 if MMR' = 0)."""
    value_after: int256 = self.value(after, markets)
    if value_after >= self.requirement(after, markets, True):
        return True
    if not self.is_reduce_only(before, after):
        return False
    maintenance_after: int256 = self.requirement(after, markets, False)
    if maintenance_after == 0:
        return value_after >= 0
    return value_after * self.requirement(before, markets, False) >= self.value(before, markets) * maintenance_after
