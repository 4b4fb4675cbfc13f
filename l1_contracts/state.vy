# pragma version ~=0.4.3
"""
@title State records, their leaf encodings and the state root (a module)
@notice The EVM side of rollup/stf/state.py: packed big-endian encodings (two's
        complement for signed fields); a default account or slot hashes to zero.
            state_root = keccak256(accounts_root ++ markets_root ++ globals_hash ++ withdrawals_root)
        Records are held in full words (uint256, int256): ABI decoding then needs no range
        checks, and each field is narrowed to its stored width only when it is encoded
        (a value outside its width reverts, as the STF's encoder raises). Records that come
        from outside (a witness, a claim) are first checked with the `*_fits` functions, so
        that such a record is refused with a named reason.
"""

MAX_POSITIONS: constant(uint256) = 16
MAX_MARKETS: constant(uint256) = 48
PERPETUAL: constant(uint256) = 0  # products.PERPETUAL; any other product is an option series
CALL: constant(uint256) = 1  # products.CALL
PUT: constant(uint256) = 2  # products.PUT
PERPETUAL_RECORD: constant(uint256) = 94
OPTION_RECORD: constant(uint256) = 139
ACCOUNT_RECORD: constant(uint256) = 69 + 25 * MAX_POSITIONS  # account_leaf's encoding, 16 positions


struct Position:
    market: uint256
    size: int256
    funding_index: int256


# An account's positions are positions[0:count], sorted by market; the rest are zero.
struct Account:
    owner: address
    collateral: int256
    orders_root: bytes32
    count: uint256
    positions: Position[MAX_POSITIONS]


struct Market:
    id: uint256
    product: uint256
    oracle_price: uint256
    oracle_time: uint256
    funding_index: int256
    funding_time: uint256
    open_interest: uint256
    initial_margin_ppm: uint256
    maintenance_margin_ppm: uint256
    liquidation_penalty_ppm: uint256
    max_funding_rate_ppm: uint256
    max_price_move_ppm: uint256
    oracle_staleness: uint256
    tick_size: uint256
    step_size: uint256
    vol_shock_ppm: uint256
    # An option series' terms and risk as their record bytes read as big-endian numbers
    # (two words where seven fields would make every copy of a market table 112 words
    # longer): `terms` = underlying u8 | strike u64 | expiry u64 | settlement_price u64
    # (bytes 94-118), `risk` = delta int32 | gamma int64 | vega int64 (bytes 119-138);
    # zero for a perpetual. Read them with the accessors below.
    terms: uint256
    risk: uint256


struct Globals:
    time: uint256
    deposit_count: uint256
    deposit_head: bytes32
    forced_count: uint256
    forced_head: bytes32
    withdrawal_count: uint256
    total_deposited: uint256
    total_withdrawn: uint256
    fee_pool: uint256
    funding_pool: int256


struct Slot:
    nonce: uint256
    order_hash: bytes32
    filled: uint256


struct Withdrawal:
    account: uint256
    owner: address
    amount: uint256


# Range checks for records from outside, branch-free: each ORs the bits a field has beyond
# its width (a signed field is first offset by half its range).

@internal
@pure
def _over(x: int256, bits: uint256) -> uint256:
    """Nonzero iff x is outside [-2^(bits-1), 2^(bits-1))."""
    return unsafe_add(convert(convert(x, bytes32), uint256), 1 << (bits - 1)) >> bits


@internal
@pure
def account_fits(a: Account) -> bool:
    """Every field within its stored width, at most 16 positions, zeros past the count."""
    bad: uint256 = self._over(a.collateral, 128)
    if a.count > MAX_POSITIONS:
        return False
    for i: uint256 in range(MAX_POSITIONS):
        p: Position = a.positions[i]
        if i < a.count:
            bad |= (
                (p.market >> 8)
                | (unsafe_add(convert(convert(p.size, bytes32), uint256), 1 << 63) >> 64)
                | (unsafe_add(convert(convert(p.funding_index, bytes32), uint256), 1 << 127) >> 128)
            )
        else:
            bad |= p.market | convert(convert(p.size, bytes32), uint256) | convert(convert(p.funding_index, bytes32), uint256)
    return bad == 0


@internal
@pure
def slot_fits(s: Slot) -> bool:
    return (s.nonce | s.filled) >> 64 == 0


@internal
@pure
def market_fits(m: Market) -> bool:
    bad: uint256 = (m.id | m.product) >> 8
    bad |= (m.oracle_price | m.oracle_time | m.funding_time | m.open_interest | m.tick_size | m.step_size) >> 64
    bad |= (m.initial_margin_ppm | m.maintenance_margin_ppm | m.liquidation_penalty_ppm | m.max_funding_rate_ppm
            | m.max_price_move_ppm | m.oracle_staleness | m.vol_shock_ppm) >> 32
    bad |= (m.terms >> 200) | (m.risk >> 160)
    return bad | self._over(m.funding_index, 128) == 0


@internal
@pure
def globals_fit(g: Globals) -> bool:
    bad: uint256 = (g.time | g.deposit_count | g.forced_count | g.withdrawal_count) >> 64
    bad |= (g.total_deposited | g.total_withdrawn | g.fee_pool) >> 128
    return bad | self._over(g.funding_pool, 128) == 0


@internal
@pure
def withdrawal_fits(r: Withdrawal) -> bool:
    return r.account >> 32 == 0 and r.amount >> 64 == 0


@internal
@pure
def account_leaf(a: Account) -> bytes32:
    """owner 20 | collateral int128 | orders_root 32 | count u8 | (market u8 | size int64 | funding_index int128)*"""
    assert a.count <= MAX_POSITIONS, "state: position count"
    if a.owner == empty(address) and a.collateral == 0 and a.orders_root == empty(bytes32) and a.count == 0:
        return empty(bytes32)
    # Vyper's byte strings cannot grow in a loop: concatenate all 16 position slots at a
    # fixed 25 bytes each (market u8 | size int64 | funding_index int128), then cut to the
    # real length. One concatenation of fixed-size pieces: no call per position.
    full: Bytes[469] = concat(
        convert(a.owner, bytes20),
        convert(convert(a.collateral, int128), bytes16),
        a.orders_root,
        convert(convert(a.count, uint8), bytes1),
        convert(convert(a.positions[0].market, uint8), bytes1), convert(convert(a.positions[0].size, int64), bytes8), convert(convert(a.positions[0].funding_index, int128), bytes16),
        convert(convert(a.positions[1].market, uint8), bytes1), convert(convert(a.positions[1].size, int64), bytes8), convert(convert(a.positions[1].funding_index, int128), bytes16),
        convert(convert(a.positions[2].market, uint8), bytes1), convert(convert(a.positions[2].size, int64), bytes8), convert(convert(a.positions[2].funding_index, int128), bytes16),
        convert(convert(a.positions[3].market, uint8), bytes1), convert(convert(a.positions[3].size, int64), bytes8), convert(convert(a.positions[3].funding_index, int128), bytes16),
        convert(convert(a.positions[4].market, uint8), bytes1), convert(convert(a.positions[4].size, int64), bytes8), convert(convert(a.positions[4].funding_index, int128), bytes16),
        convert(convert(a.positions[5].market, uint8), bytes1), convert(convert(a.positions[5].size, int64), bytes8), convert(convert(a.positions[5].funding_index, int128), bytes16),
        convert(convert(a.positions[6].market, uint8), bytes1), convert(convert(a.positions[6].size, int64), bytes8), convert(convert(a.positions[6].funding_index, int128), bytes16),
        convert(convert(a.positions[7].market, uint8), bytes1), convert(convert(a.positions[7].size, int64), bytes8), convert(convert(a.positions[7].funding_index, int128), bytes16),
        convert(convert(a.positions[8].market, uint8), bytes1), convert(convert(a.positions[8].size, int64), bytes8), convert(convert(a.positions[8].funding_index, int128), bytes16),
        convert(convert(a.positions[9].market, uint8), bytes1), convert(convert(a.positions[9].size, int64), bytes8), convert(convert(a.positions[9].funding_index, int128), bytes16),
        convert(convert(a.positions[10].market, uint8), bytes1), convert(convert(a.positions[10].size, int64), bytes8), convert(convert(a.positions[10].funding_index, int128), bytes16),
        convert(convert(a.positions[11].market, uint8), bytes1), convert(convert(a.positions[11].size, int64), bytes8), convert(convert(a.positions[11].funding_index, int128), bytes16),
        convert(convert(a.positions[12].market, uint8), bytes1), convert(convert(a.positions[12].size, int64), bytes8), convert(convert(a.positions[12].funding_index, int128), bytes16),
        convert(convert(a.positions[13].market, uint8), bytes1), convert(convert(a.positions[13].size, int64), bytes8), convert(convert(a.positions[13].funding_index, int128), bytes16),
        convert(convert(a.positions[14].market, uint8), bytes1), convert(convert(a.positions[14].size, int64), bytes8), convert(convert(a.positions[14].funding_index, int128), bytes16),
        convert(convert(a.positions[15].market, uint8), bytes1), convert(convert(a.positions[15].size, int64), bytes8), convert(convert(a.positions[15].funding_index, int128), bytes16),
    )
    return keccak256(slice(full, 0, 69 + 25 * a.count))


@internal
@pure
def account_of(record: Bytes[ACCOUNT_RECORD]) -> Account:
    """The account whose leaf is keccak256(record) (account_leaf's layout), empty for the
    default account (leaf zero). Every string of 69 + 25 * count bytes, count <= 16 its
    byte 68, is one, each field within its width, zeros past its positions; reverts on any
    other length and on the default account's 69 bytes (its leaf is zero, not their hash),
    so that account_leaf(account_of(r)) == keccak256(r) for every r it accepts. (Its
    refusals are named as the witness's: a record comes from a challenger's witness.)"""
    a: Account = empty(Account)
    if len(record) == 0:
        return a
    assert len(record) >= 69, "witness: account record length"
    head: uint256 = extract32(record, 0, output_type=uint256)  # bytes 0-31: owner, collateral's top 12
    a.owner = convert(convert(head >> 96, uint160), address)
    collateral: uint256 = extract32(record, 4, output_type=uint256) & (2**128 - 1)  # bytes 20-35
    a.collateral = unsafe_sub(convert(collateral ^ 2**127, int256), 2**127)
    a.orders_root = extract32(record, 36, output_type=bytes32)  # bytes 36-67
    a.count = extract32(record, 37, output_type=uint256) & 255  # byte 68
    assert a.count <= MAX_POSITIONS and len(record) == 69 + 25 * a.count, "witness: account record length"
    assert head != 0 or collateral != 0 or a.orders_root != empty(bytes32) or a.count != 0, "witness: default account record"
    for i: uint256 in range(a.count, bound=MAX_POSITIONS):
        w: uint256 = extract32(record, unsafe_add(62, unsafe_mul(25, i)), output_type=uint256)  # position i: its last 25 bytes
        a.positions[i] = Position(
            market=(w >> 192) & 255,
            size=unsafe_sub(convert(((w >> 128) & (2**64 - 1)) ^ 2**63, int256), 2**63),
            funding_index=unsafe_sub(convert((w & (2**128 - 1)) ^ 2**127, int256), 2**127),
        )
    return a


@internal
@pure
def slot_leaf(s: Slot) -> bytes32:
    """nonce u64 | order_hash 32 | filled u64 (an empty slot is zero)"""
    if s.nonce == 0 and s.order_hash == empty(bytes32) and s.filled == 0:
        return empty(bytes32)
    return keccak256(concat(convert(convert(s.nonce, uint64), bytes8), s.order_hash, convert(convert(s.filled, uint64), bytes8)))


@internal
@pure
def market_leaf(m: Market) -> bytes32:
    """id u8 | product u8 | oracle_price u64 | oracle_time u64 | funding_index int128 |
    funding_time u64 | open_interest u64 | five fractions u32 | oracle_staleness u32 | tick u64 |
    step u64 | vol_shock u32 (94 bytes, laid into three words by arithmetic); an option series
    (product != 0) goes on with underlying u8 | strike u64 | expiry u64 | settlement u64 |
    delta int32 | gamma int64 | vega int64 (139 bytes)."""
    assert (m.id | m.product) < 256, "state: value out of range"
    assert (m.oracle_price | m.oracle_time | m.funding_time | m.open_interest | m.tick_size | m.step_size) < 1 << 64, "state: value out of range"
    assert m.terms < 1 << 200 and m.risk < 1 << 160, "state: value out of range"
    assert (m.initial_margin_ppm | m.maintenance_margin_ppm | m.liquidation_penalty_ppm | m.max_funding_rate_ppm
            | m.max_price_move_ppm | m.oracle_staleness | m.vol_shock_ppm) < 1 << 32, "state: value out of range"
    funding: uint256 = convert(convert(m.funding_index, bytes32), uint256)
    assert unsafe_add(funding, 1 << 127) >> 128 == 0, "state: value out of range"
    funding &= 2**128 - 1
    # bytes 0-31: id, product, oracle_price, oracle_time, the top 14 bytes of funding_index
    w0: uint256 = (m.id << 248) | (m.product << 240) | (m.oracle_price << 176) | (m.oracle_time << 112) | (funding >> 16)
    # bytes 32-63: its last 2 bytes, funding_time, open_interest, three fractions, the top 2 bytes of the fourth
    w1: uint256 = (
        (funding << 240) | (m.funding_time << 176) | (m.open_interest << 112)
        | (m.initial_margin_ppm << 80) | (m.maintenance_margin_ppm << 48) | (m.liquidation_penalty_ppm << 16)
        | (m.max_funding_rate_ppm >> 16)
    )
    # bytes 64-93: the rest of max_funding_rate, max_price_move, staleness, tick, step, vol_shock
    w2: uint256 = (
        (m.max_funding_rate_ppm << 240) | (m.max_price_move_ppm << 208) | (m.oracle_staleness << 176)
        | (m.tick_size << 112) | (m.step_size << 48) | (m.vol_shock_ppm << 16)
    )
    base: Bytes[96] = concat(convert(w0, bytes32), convert(w1, bytes32), convert(w2, bytes32))
    if m.product == PERPETUAL:
        return keccak256(slice(base, 0, PERPETUAL_RECORD))
    # bytes 94-138: terms (25 bytes) and risk (20 bytes), left-aligned in two words
    return keccak256(concat(
        slice(base, 0, 94), slice(convert(m.terms << 56, bytes32), 0, 25), slice(convert(m.risk << 96, bytes32), 0, 20)
    ))


@internal
@pure
def market_of(record: Bytes[OPTION_RECORD]) -> Market:
    """The market of its leaf encoding (market_leaf's layout): 94 bytes of a perpetual,
    139 of an option series (the caller takes the length the product byte gives). Every
    such string is one, each field within its width."""
    a: uint256 = extract32(record, 0, output_type=uint256)  # bytes 0-31
    b: uint256 = extract32(record, 18, output_type=uint256)  # bytes 18-49
    c: uint256 = extract32(record, 26, output_type=uint256)  # bytes 26-57
    d: uint256 = extract32(record, 58, output_type=uint256)  # bytes 58-89
    e: uint256 = extract32(record, 62, output_type=uint256)  # bytes 62-93
    funding: int256 = convert(b >> 128, int256)
    if funding >= 2**127:
        funding -= 2**128
    m: Market = Market(
        id=a >> 248, product=(a >> 240) & 255, oracle_price=(a >> 176) & (2**64 - 1),
        oracle_time=(a >> 112) & (2**64 - 1), funding_index=funding, funding_time=(b >> 64) & (2**64 - 1),
        open_interest=b & (2**64 - 1), initial_margin_ppm=(c >> 32) & (2**32 - 1),
        maintenance_margin_ppm=c & (2**32 - 1), liquidation_penalty_ppm=d >> 224,
        max_funding_rate_ppm=(d >> 192) & (2**32 - 1), max_price_move_ppm=(d >> 160) & (2**32 - 1),
        oracle_staleness=(d >> 128) & (2**32 - 1), tick_size=(d >> 64) & (2**64 - 1), step_size=d & (2**64 - 1),
        vol_shock_ppm=e & (2**32 - 1), terms=0, risk=0,
    )
    if len(record) == OPTION_RECORD:
        m.terms = extract32(record, 94, output_type=uint256) >> 56  # bytes 94-118
        m.risk = extract32(record, 107, output_type=uint256) & (2**160 - 1)  # bytes 119-138
    return m


@internal
@pure
def underlying_of(m: Market) -> uint256:
    return m.terms >> 192


@internal
@pure
def strike_of(m: Market) -> uint256:
    return (m.terms >> 128) & (2**64 - 1)


@internal
@pure
def expiry_of(m: Market) -> uint256:
    return (m.terms >> 64) & (2**64 - 1)


@internal
@pure
def settlement_of(m: Market) -> uint256:
    return m.terms & (2**64 - 1)


@internal
@pure
def greeks_of(m: Market) -> (int256, int256, int256):
    """(delta, gamma, vega) of an option series (`greeks` of its risk word)."""
    return self.greeks(m.risk)


@internal
@pure
def greeks(risk: uint256) -> (int256, int256, int256):
    """(delta, gamma, vega): the risk word's int32, int64 and int64 (its low 160 bits:
    bytes 119-138 of the record), sign-extended."""
    return (
        self._signed((risk >> 128) & (2**32 - 1), 32), self._signed((risk >> 64) & (2**64 - 1), 64),
        self._signed(risk & (2**64 - 1), 64),
    )


@internal
@pure
def _signed(x: uint256, bits: uint256) -> int256:
    """The `bits`-bit two's complement number x (0 <= x < 2**bits)."""
    if x >> (bits - 1) != 0:
        return convert(x, int256) - convert(1 << bits, int256)
    return convert(x, int256)


@internal
@pure
def markets_root(hashes: bytes32[MAX_MARKETS]) -> bytes32:
    """keccak of the 48 market leaves (an unlisted market's leaf is zero), concatenated."""
    return keccak256(abi_encode(hashes))


@internal
@pure
def globals_hash(g: Globals) -> bytes32:
    """time u64 | deposit_count u64 | deposit_head 32 | forced_count u64 | forced_head 32 |
    withdrawal_count u64 | total_deposited u128 | total_withdrawn u128 | fee_pool u128 | funding_pool int128"""
    return keccak256(concat(
        convert(convert(g.time, uint64), bytes8), convert(convert(g.deposit_count, uint64), bytes8), g.deposit_head,
        convert(convert(g.forced_count, uint64), bytes8), g.forced_head, convert(convert(g.withdrawal_count, uint64), bytes8),
        convert(convert(g.total_deposited, uint128), bytes16), convert(convert(g.total_withdrawn, uint128), bytes16),
        convert(convert(g.fee_pool, uint128), bytes16), convert(convert(g.funding_pool, int128), bytes16),
    ))


@internal
@pure
def withdrawal_leaf(r: Withdrawal) -> bytes32:
    """account u32 | owner 20 | amount u64"""
    return keccak256(concat(
        convert(convert(r.account, uint32), bytes4), convert(r.owner, bytes20), convert(convert(r.amount, uint64), bytes8)
    ))


@internal
@pure
def state_root(accounts: bytes32, markets: bytes32, globals_hash: bytes32, withdrawals: bytes32) -> bytes32:
    return keccak256(concat(accounts, markets, globals_hash, withdrawals))
