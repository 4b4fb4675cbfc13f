# pragma version ~=0.4.3
"""
@title Money rules (a module): funding settlement, value, requirements, the margin rule
@notice The EVM side of rollup/stf/margin.py (whose name it takes) and of the perpetual's
        rules in products.py, rule for rule. The EVM's
        signed division truncates toward zero; the rules floor and ceil, so both are
        spelled out here.
        The loops over positions use unchecked arithmetic where the records' widths bound
        it far below 2**255 (accounts and markets come range-checked from the witness or
        are computed from such): |size| < 2**63, prices and margin fractions < 2**64,
        funding indexes and collateral < 2**127 (after settlement < 2**170), so a term
        size * price or (index - index') * size stays below 2**193 and a sum of 17 terms
        below 2**198. `portfolio_requirement`'s net sums (size times a Greek or a fraction)
        are those portfolio.vy bounds (below 2**108).
"""
import portfolio
import state

FUNDING_SCALE: constant(int256) = 10**9
PPM: constant(int256) = 10**6
MAX_MARKETS: constant(uint256) = 48
MAX_POSITIONS: constant(uint256) = 16


OPTION: constant(uint256) = 1 << 255  # Marks.risk: the market is an option series
NO_MARKET: constant(uint256) = MAX_MARKETS  # portfolio_requirements: no position changed

interface Portfolio:
    def requirement(a: state.Account, k: Marks, initial: bool) -> int256: view
    def margin_ok(after: state.Account, k: Marks, market: uint256, old_size: int256, new_size: int256, value_before: int256) -> bool: view


# What the money rules read of the markets, by market id (witness.open_markets builds it:
# only opened markets' entries are set, `opened` says which): 130 words where the records
# are 1,152 (internal calls copy their arguments, so the rules pass these). `risk` packs what
# the portfolio rule reads: an option series' OPTION | underlying << 160 | its record's
# risk word (delta int32 | gamma int64 | vega int64); a perpetual's volatility shock.
# `portfolio`: the Portfolio contract that computes an option holder's requirement.
struct Marks:
    market: uint256[MAX_MARKETS]
    risk: uint256[MAX_MARKETS]
    opened: uint256
    portfolio: address


# Marks.market[i]: oracle price u64 << 192 | initial fraction u32 << 160 | maintenance
# fraction u32 << 128 | funding index (int128, two's complement): the record's widths.
U32: constant(uint256) = 2**32 - 1
U64: constant(uint256) = 2**64 - 1
U128: constant(uint256) = 2**128 - 1


@internal
@pure
def floor_div(a: int256, b: int256) -> int256:
    """floor(a / b) for b > 0 (|a| < 2**254: no overflow)."""
    q: int256 = unsafe_div(a, b)
    if a < 0 and unsafe_mul(q, b) != a:
        q = unsafe_sub(q, 1)
    return q


@internal
@pure
def ceil_div(a: int256, b: int256) -> int256:
    """ceil(a / b) for b > 0."""
    return -self.floor_div(-a, b)


@internal
@pure
def settle_funding(a: state.Account, k: Marks) -> (state.Account, int256):
    """Every position's funding index brought up to its market's; the payment
    (sum of ceil((market index - position index) * size / FUNDING_SCALE)) taken from
    collateral. Every market the account holds must be opened (`k.opened`: reverts
    otherwise); every rule settles an account before it reads its positions' markets."""
    payment: int256 = 0
    out: state.Account = a
    for i: uint256 in range(a.count, bound=16):
        p: state.Position = a.positions[i]
        assert k.opened & (1 << p.market) != 0, "witness: market not opened"
        index: int256 = unsafe_sub(convert((k.market[p.market] & U128) ^ 2**127, int256), 2**127)
        if index != p.funding_index:
            payment = unsafe_add(payment, self.ceil_div(unsafe_mul(unsafe_sub(index, p.funding_index), p.size), FUNDING_SCALE))
            out.positions[i].funding_index = index
    out.collateral = a.collateral - payment
    return out, payment


@internal
@pure
def value(a: state.Account, k: Marks) -> int256:
    """collateral + sum(size * oracle_price) (perpetuals; the one product of version 1)."""
    total: int256 = a.collateral
    for i: uint256 in range(a.count, bound=16):
        p: state.Position = a.positions[i]
        total = unsafe_add(total, unsafe_mul(p.size, convert(k.market[p.market] >> 192, int256)))
    return total


@internal
@view
def requirement(a: state.Account, k: Marks, initial: bool) -> int256:
    """Perpetuals only: sum(ceil(|size * price| * fraction / PPM)); an account holding an
    option series: the portfolio rule (`portfolio_requirement`, computed by the Portfolio
    contract `k.portfolio`)."""
    total: int256 = 0
    for i: uint256 in range(a.count, bound=16):
        p: state.Position = a.positions[i]
        if k.risk[p.market] >= OPTION:
            return staticcall Portfolio(k.portfolio).requirement(a, k, initial)
        w: uint256 = k.market[p.market]
        fraction: int256 = convert((w >> 128) & U32, int256)
        if initial:
            fraction = convert((w >> 160) & U32, int256)
        total = unsafe_add(total, self.ceil_div(unsafe_mul(abs(unsafe_mul(p.size, convert(w >> 192, int256))), fraction), PPM))
    return total


@internal
@pure
def portfolio_requirement(a: state.Account, k: Marks, initial: bool) -> int256:
    """margin.portfolio_requirement (initial or maintenance: `portfolio_requirements`)."""
    initial_requirement: int256 = 0
    maintenance_requirement: int256 = 0
    unchanged: int256 = 0
    initial_requirement, maintenance_requirement, unchanged = self.portfolio_requirements(a, k, NO_MARKET, 0)
    if initial:
        return initial_requirement
    return maintenance_requirement


@internal
@pure
def portfolio_requirements(a: state.Account, k: Marks, market: uint256, size: int256) -> (int256, int256, int256):
    """margin.portfolio_requirement, initial and maintenance in one pass: the positions
    netted per underlying (margin.exposure: a perpetual is its own underlying, delta
    10**6; a series is written on its underlying with the feed's Greeks, its own
    fractions the floors of a short position), then for each underlying held
    (margin.underlying) its worst loss, from which both of its terms are taken
    (portfolio.terms), each summed.
    Third, the maintenance requirement of the account with its position in `market` at
    `size` instead (a trade's `before`, `a` its `after`; NO_MARKET: the maintenance
    itself). The requirement is a sum of per-underlying terms, and only the traded
    market's underlying's sums differ: moved by the size's change times the market's
    Greeks (a perpetual: delta 10**6), its short floors by max(-size, 0) - max(-current,
    0) times its fractions. So that underlying's term is computed a second time on the
    moved sums, and the rest is shared (a term of all-zero sums is 0, as for an
    underlying not held)."""
    delta: int256[MAX_MARKETS] = empty(int256[MAX_MARKETS])
    gamma: int256[MAX_MARKETS] = empty(int256[MAX_MARKETS])
    vega: int256[MAX_MARKETS] = empty(int256[MAX_MARKETS])
    short_maintenance: int256[MAX_MARKETS] = empty(int256[MAX_MARKETS])
    short_initial: int256[MAX_MARKETS] = empty(int256[MAX_MARKETS])
    held: uint256 = 0
    current: int256 = 0  # the size held in `market`
    for i: uint256 in range(a.count, bound=MAX_POSITIONS):
        p: state.Position = a.positions[i]
        r: uint256 = k.risk[p.market]
        u: uint256 = p.market
        if p.market == market:
            current = p.size
        if r < OPTION:
            delta[u] = unsafe_add(delta[u], unsafe_mul(p.size, portfolio.PPM))
        else:
            # the risk word's int32 and int64s sign-extended: (x ^ 2**(b-1)) - 2**(b-1)
            u = (r >> 160) & 255
            delta[u] = unsafe_add(delta[u], unsafe_mul(p.size, unsafe_sub(convert(((r >> 128) & U32) ^ 2**31, int256), 2**31)))
            gamma[u] = unsafe_add(gamma[u], unsafe_mul(p.size, unsafe_sub(convert(((r >> 64) & (2**64 - 1)) ^ 2**63, int256), 2**63)))
            vega[u] = unsafe_add(vega[u], unsafe_mul(p.size, unsafe_sub(convert((r & (2**64 - 1)) ^ 2**63, int256), 2**63)))
            if p.size < 0:
                w: uint256 = k.market[p.market]
                short_maintenance[u] = unsafe_add(short_maintenance[u], unsafe_mul(-p.size, convert((w >> 128) & U32, int256)))
                short_initial[u] = unsafe_add(short_initial[u], unsafe_mul(-p.size, convert((w >> 160) & U32, int256)))
        held |= 1 << u

    # the change in `market`: its underlying `focus` (bit set in `focus_bit`) and the moves
    # of its sums (unchecked: sizes below 2**64, Greeks and fractions at their widths)
    focus_bit: uint256 = 0
    moved_delta: int256 = 0
    moved_gamma: int256 = 0
    moved_vega: int256 = 0
    moved_short_maintenance: int256 = 0
    moved_short_initial: int256 = 0
    if market < MAX_MARKETS:
        r: uint256 = k.risk[market]
        change: int256 = unsafe_sub(size, current)
        if r < OPTION:
            focus_bit = 1 << market
            moved_delta = unsafe_mul(change, portfolio.PPM)
        else:
            focus_bit = 1 << ((r >> 160) & 255)
            greek_delta: int256 = 0
            greek_gamma: int256 = 0
            greek_vega: int256 = 0
            greek_delta, greek_gamma, greek_vega = state.greeks(r)
            moved_delta = unsafe_mul(change, greek_delta)
            moved_gamma = unsafe_mul(change, greek_gamma)
            moved_vega = unsafe_mul(change, greek_vega)
            shorter: int256 = unsafe_sub(max(-size, 0), max(-current, 0))
            w: uint256 = k.market[market]
            moved_short_maintenance = unsafe_mul(shorter, convert((w >> 128) & U32, int256))
            moved_short_initial = unsafe_mul(shorter, convert((w >> 160) & U32, int256))

    initial: int256 = 0
    maintenance: int256 = 0
    moved: int256 = 0  # the traded underlying's term after the change less before it
    counted: uint256 = held | focus_bit
    for u: uint256 in range(MAX_MARKETS):
        if counted >> u == 0:
            break  # no underlying held from here on
        if counted & (1 << u) == 0:
            continue
        # margin.underlying: a listed perpetual's price, fractions and volatility shock; any
        # other underlying reads as price 0, fractions 1, no shock
        w: uint256 = k.market[u]
        d: portfolio.Underlying = portfolio.Underlying(price=0, maintenance_ppm=1, initial_ppm=1, vol_shock_ppm=0)
        if k.risk[u] < OPTION and (w >> 128) & U32 > 0:
            d = portfolio.Underlying(
                price=convert(w >> 192, int256), maintenance_ppm=convert((w >> 128) & U32, int256),
                initial_ppm=convert((w >> 160) & U32, int256), vol_shock_ppm=convert(k.risk[u], int256),
            )
        term_initial: int256 = 0
        term_maintenance: int256 = 0
        term_initial, term_maintenance = portfolio.terms(delta[u], gamma[u], vega[u], short_maintenance[u], short_initial[u], d)
        initial = unsafe_add(initial, term_initial)
        maintenance = unsafe_add(maintenance, term_maintenance)
        if (focus_bit >> u) & 1 != 0:
            moved_initial: int256 = 0
            moved_maintenance: int256 = 0
            moved_initial, moved_maintenance = portfolio.terms(
                unsafe_add(delta[u], moved_delta), unsafe_add(gamma[u], moved_gamma), unsafe_add(vega[u], moved_vega),
                unsafe_add(short_maintenance[u], moved_short_maintenance), unsafe_add(short_initial[u], moved_short_initial), d,
            )
            moved = unsafe_sub(moved_maintenance, term_maintenance)
    return initial, maintenance, unsafe_add(maintenance, moved)


@internal
@pure
def gross(a: state.Account, k: Marks) -> int256:
    """sum(|size * price|)."""
    total: int256 = 0
    for i: uint256 in range(a.count, bound=16):
        p: state.Position = a.positions[i]
        total = unsafe_add(total, unsafe_mul(abs(p.size), convert(k.market[p.market] >> 192, int256)))
    return total


@internal
@pure
def size_of(a: state.Account, market: uint256) -> int256:
    for i: uint256 in range(a.count, bound=16):
        if a.positions[i].market == market:
            return a.positions[i].size
    return 0


@internal
@pure
def is_reduce_only(before: state.Account, after: state.Account) -> bool:
    """No position grew or flipped, and something shrank (a position's old size: `before`'s
    first position in its market, Account.size; read from a table by market id, not a
    search per position)."""
    old_sizes: int256[MAX_MARKETS] = empty(int256[MAX_MARKETS])
    seen: uint256 = 0
    for i: uint256 in range(before.count, bound=16):
        p: state.Position = before.positions[i]
        if seen & (1 << p.market) == 0:
            seen |= 1 << p.market
            old_sizes[p.market] = p.size
    shrank: bool = False
    for i: uint256 in range(after.count, bound=16):
        p: state.Position = after.positions[i]
        old: int256 = old_sizes[p.market]
        if old == 0 or (old > 0) != (p.size > 0) or abs(p.size) > abs(old):
            return False
        if abs(p.size) < abs(old):
            shrank = True
    if after.count < before.count:
        shrank = True
    return shrank


@internal
@pure
def reduces(old_size: int256, new_size: int256) -> bool:
    """is_reduce_only for a change of one position, every other unchanged (and nonzero: the
    STF never stores a zero size): the old size is nonzero and the new one is 0 or has its
    sign and a smaller magnitude."""
    return old_size != 0 and (new_size == 0 or ((new_size > 0) == (old_size > 0) and abs(new_size) < abs(old_size)))


@internal
@view
def margin_ok(before: state.Account, after: state.Account, k: Marks) -> bool:
    """value' >= IMR', or reduce-only with value' * MMR >= value * MMR' (value' >= 0 if MMR' = 0)."""
    value_after: int256 = self.value(after, k)
    if value_after >= self.requirement(after, k, True):
        return True
    if not self.is_reduce_only(before, after):
        return False
    maintenance_after: int256 = self.requirement(after, k, False)
    if maintenance_after == 0:
        return value_after >= 0
    return value_after * self.requirement(before, k, False) >= self.value(before, k) * maintenance_after


@internal
@pure
def with_position(a: state.Account, market: uint256, size: int256, funding_index: int256) -> state.Account:
    """The account with its position in `market` set to `size` (removed when 0), positions
    kept sorted by market (margin.with_position). A new position beyond MAX_POSITIONS
    cannot be stored: the account comes back with count MAX_POSITIONS + 1 and its old
    positions, which the bounds check refuses (OVERFLOW, fork.in_bounds)."""
    out: state.Account = a
    held: bool = False
    for i: uint256 in range(a.count, bound=16):
        if a.positions[i].market == market:
            held = True
            if size != 0:  # the position stays where it is
                out.positions[i] = state.Position(market=market, size=size, funding_index=funding_index)
                return out
    if a.count == state.MAX_POSITIONS and size != 0 and not held:
        out.count = state.MAX_POSITIONS + 1
        return out
    out.positions = empty(state.Position[16])
    n: uint256 = 0
    placed: bool = False
    for i: uint256 in range(a.count, bound=16):
        p: state.Position = a.positions[i]
        if not placed and p.market >= market:
            placed = True
            if size != 0:
                out.positions[n] = state.Position(market=market, size=size, funding_index=funding_index)
                n += 1
            if p.market == market:
                continue
        out.positions[n] = p
        n += 1
    if not placed and size != 0:
        out.positions[n] = state.Position(market=market, size=size, funding_index=funding_index)
        n += 1
    out.count = n
    return out


@internal
@pure
def long_part(size: int256) -> int256:
    """The long part of a size (0 for a short): what it adds to open interest."""
    if size > 0:
        return size
    return 0
