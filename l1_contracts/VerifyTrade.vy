# pragma version ~=0.4.3
"""
@title One-step verifier: the trade rules (Trade, tag 0x03; Fill, tag 0x0C)
@notice Re-executes one Trade or Fill under rollup/stf/fork.py `apply_trade` and
        `apply_fill`, with their checks in the same order, and returns (reason, applied,
        post-state root). Stateless: `step` checks the shape of the transaction's bytes and
        the witness against the pre-state root first (witness.vy `begin`).
        Trade (190 bytes): tag | maker order 26 | maker signature 64 | taker order 26 |
        taker signature 64 | fill u40 | maker fee u16 | taker fee u16.
        Fill (108 bytes): tag | maker account u32 | maker nonce u32 | taker order 26 |
        taker signature 64 | fill u40 | maker fee u16 | taker fee u16; the witness
        carries the maker order (`w.order`), which must hash to its slot's order hash.
        Signatures are EIP-2098 (signing.recover_compact).
        The witness opens the maker's account as "first" (with its nonce slot at the
        maker order's nonce) and the taker's as "second" (rollup/stf/witness.py `touched`).
"""
import margin
import signing
import state
import transactions
import witness

PPM: constant(uint256) = 10**6
FUNDING_SCALE: constant(int256) = 10**9
MAX_SIZE: constant(uint256) = 2**40 - 1
MAX_PRICE: constant(uint256) = 2**40 - 1
MAX_COLLATERAL: constant(uint256) = 2**100 - 1
ACCOUNT_CAPACITY: constant(uint256) = 4**10

CANCELLED_HASH: constant(bytes32) = 0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff

# Trade
MAKER_ORDER: constant(uint256) = 1
MAKER_SIGNATURE: constant(uint256) = 27
TAKER_ORDER: constant(uint256) = 91
TAKER_SIGNATURE: constant(uint256) = 117
TRADE_FILL: constant(uint256) = 181  # the fill amount (FILL is the Fill tag)
MAKER_FEE: constant(uint256) = 186
TAKER_FEE: constant(uint256) = 188
# Fill
FILL_MAKER_ACCOUNT: constant(uint256) = 1
FILL_MAKER_NONCE: constant(uint256) = 5
FILL_TAKER_ORDER: constant(uint256) = 9
FILL_TAKER_SIGNATURE: constant(uint256) = 35
FILL_FILL: constant(uint256) = 99
FILL_MAKER_FEE: constant(uint256) = 104
FILL_TAKER_FEE: constant(uint256) = 106


# One side of a trade once its order is authorized: the account as opened, the order's
# EIP-712 struct hash (what its nonce slot stores) and how much of it was filled before.
struct Side:
    account: state.Account
    digest: bytes32
    filled: uint256


# One side after the fill: the account's new record, its share of the fees, the funding
# it paid when settled (negative: received), and the change of open interest it makes.
struct Filled:
    account: state.Account
    fee: int256
    funding_paid: int256
    open_interest_change: int256


@external
@view
def step(data: Bytes[transactions.MAX_TX], pre_root: bytes32, ctx: witness.Context, w: witness.Witness) -> (uint8, bool, bytes32):
    """Verifier.vy `step` for Trade and Fill, in the context `ctx` the router gives
    (`route`: the Rollup asks the router, then calls this). After witness.vy `begin`,
    apply_trade (Trade) or apply_fill (Fill), check for check:
    - Fill only, first: the maker's account exists (UNKNOWN_ACCOUNT); its nonce slot holds
      a live order of exactly the named nonce (NO_ORDER: empty, cancelled or reused); the
      witness's order is that order (its hash is the slot's: else the witness is refused);
    - orders: same market (MARKET_MISMATCH), opposite sides (SAME_SIDE), different
      accounts (SELF_TRADE); the market exists (UNKNOWN_MARKET) and has a price (NO_PRICE);
      an option series is before its expiry (SERIES_EXPIRED);
    - amounts: order sizes, limit prices and fill in (0, bound], fee rates <= PPM
      (BAD_FIELD); fill a multiple of the step (NOT_STEP_MULTIPLE); the maker's price a
      multiple of the tick (NOT_TICK_MULTIPLE); the taker's limit allows the maker's price
      (PRICE_NOT_FAIR); within the band (PRICE_OUT_OF_BAND); fee rates within each order's max fee (FEE_TOO_HIGH); neither
      order expired (EXPIRED);
    - authority, maker then taker (`_order_authority`; a Fill's maker: fill <= size - filled,
      OVERFILL);
    - effects, maker then taker (`_fill`); the fee pool stays in bounds (OVERFLOW).
    Writes both accounts, both nonce slots (nonce, struct hash, filled + fill), the
    market's open interest, and the fee and funding pools."""
    reason: uint8 = transactions.shape(data)
    if reason != transactions.OK:
        return reason, False, pre_root
    named: uint256 = w.order.market  # a Fill's maker order (the witness's; checked against its slot below)
    if transactions.u8(data, 0) == transactions.TRADE:
        named = transactions.u8(data, MAKER_ORDER + 4) & 127  # transactions.order's market
    market: state.Market = empty(state.Market)  # the market the transaction names
    k: margin.Marks = empty(margin.Marks)
    market_leaves: bytes32[witness.MAX_MARKETS] = empty(bytes32[witness.MAX_MARKETS])
    market, k, market_leaves = witness.open_markets(w.markets, w.listed, w.hashes, named, ctx.portfolio)
    reason = witness.begin(data, pre_root, ctx.timestamp, market_leaves, w.globals, w.accounts_root, w.withdrawals_root)
    if reason != transactions.OK:
        return reason, False, pre_root
    tag: uint256 = transactions.u8(data, 0)
    assert tag == transactions.TRADE or tag == transactions.FILL, "verifier: not a trade"
    maker: signing.Order = empty(signing.Order)
    taker: signing.Order = empty(signing.Order)
    fill: uint256 = 0
    maker_fee: uint256 = 0
    taker_fee: uint256 = 0
    taker_signature: Bytes[64] = b""
    posted: Side = empty(Side)  # a Fill's maker side, as its slot holds it
    if tag == transactions.TRADE:
        maker = transactions.order(data, MAKER_ORDER)
        taker = transactions.order(data, TAKER_ORDER)
        taker_signature = transactions.compact_signature(data, TAKER_SIGNATURE)
        fill = transactions.u40(data, TRADE_FILL)
        maker_fee = transactions.u16(data, MAKER_FEE)
        taker_fee = transactions.u16(data, TAKER_FEE)
    else:
        maker_id: uint256 = transactions.u32(data, FILL_MAKER_ACCOUNT)
        maker_nonce: uint256 = transactions.u32(data, FILL_MAKER_NONCE)
        if maker_id >= ACCOUNT_CAPACITY:
            return transactions.UNKNOWN_ACCOUNT, False, pre_root
        maker_account: state.Account = witness.open_account(w.accounts_root, w.first, maker_id)
        if maker_account.owner == empty(address):
            return transactions.UNKNOWN_ACCOUNT, False, pre_root
        slot: state.Slot = witness.open_slot(w.first, maker_nonce)
        if slot.nonce != maker_nonce or slot.order_hash == empty(bytes32) or slot.order_hash == CANCELLED_HASH:
            return transactions.NO_ORDER, False, pre_root
        assert signing.order_hash(w.order) == slot.order_hash, "witness: order is not its slot's"
        maker = w.order
        posted = Side(account=maker_account, digest=slot.order_hash, filled=slot.filled)
        taker = transactions.order(data, FILL_TAKER_ORDER)
        taker_signature = transactions.compact_signature(data, FILL_TAKER_SIGNATURE)
        fill = transactions.u40(data, FILL_FILL)
        maker_fee = transactions.u16(data, FILL_MAKER_FEE)
        taker_fee = transactions.u16(data, FILL_TAKER_FEE)

    if maker.market != taker.market:
        return transactions.MARKET_MISMATCH, False, pre_root
    if maker.is_buy == taker.is_buy:
        return transactions.SAME_SIDE, False, pre_root
    if maker.account == taker.account:
        return transactions.SELF_TRADE, False, pre_root
    exists: bool = False
    market, exists = witness.market(market, w.listed, maker.market)
    if not exists:
        return transactions.UNKNOWN_MARKET, False, pre_root
    if market.oracle_price == 0:
        return transactions.NO_PRICE, False, pre_root
    if market.product != state.PERPETUAL and w.globals.time >= (market.terms >> 64) & (2**64 - 1):  # state.expiry_of
        return transactions.SERIES_EXPIRED, False, pre_root
    if not (
        maker.size > 0 and maker.size <= MAX_SIZE and taker.size > 0 and taker.size <= MAX_SIZE
        and fill > 0 and fill <= MAX_SIZE
        and maker.limit_price > 0 and maker.limit_price <= MAX_PRICE
        and taker.limit_price > 0 and taker.limit_price <= MAX_PRICE
        and maker_fee <= PPM and taker_fee <= PPM
    ):
        return transactions.BAD_FIELD, False, pre_root
    if fill % market.step_size != 0:
        return transactions.NOT_STEP_MULTIPLE, False, pre_root
    price: uint256 = maker.limit_price
    if price % market.tick_size != 0:
        return transactions.NOT_TICK_MULTIPLE, False, pre_root
    if (taker.is_buy and price > taker.limit_price) or (not taker.is_buy and price < taker.limit_price):
        return transactions.PRICE_NOT_FAIR, False, pre_root
    # fork.in_band: |price - mark| * PPM <= mark * max_price_move_ppm
    if max(price, market.oracle_price) * PPM - min(price, market.oracle_price) * PPM > market.oracle_price * market.max_price_move_ppm:
        return transactions.PRICE_OUT_OF_BAND, False, pre_root
    if maker_fee > maker.max_fee_ppm or taker_fee > taker.max_fee_ppm:
        return transactions.FEE_TOO_HIGH, False, pre_root
    now: uint256 = w.globals.time
    if now > maker.expiry or now > taker.expiry:
        return transactions.EXPIRED, False, pre_root

    reason = transactions.OK
    maker_side: Side = posted
    if tag == transactions.TRADE:
        reason, maker_side = self._order_authority(maker, transactions.compact_signature(data, MAKER_SIGNATURE), fill, w.accounts_root, w.first, ctx.domain)
        if reason != transactions.OK:
            return reason, False, pre_root
    elif posted.filled + fill > maker.size:
        return transactions.OVERFILL, False, pre_root
    taker_side: Side = empty(Side)
    reason, taker_side = self._order_authority(taker, taker_signature, fill, w.accounts_root, w.second, ctx.domain)
    if reason != transactions.OK:
        return reason, False, pre_root

    notional: int256 = convert(fill * price, int256)
    maker_filled: Filled = empty(Filled)
    reason, maker_filled = self._fill(maker_side.account, maker.is_buy, fill, notional, maker_fee, market, k)
    if reason != transactions.OK:
        return reason, False, pre_root
    taker_filled: Filled = empty(Filled)
    reason, taker_filled = self._fill(taker_side.account, taker.is_buy, fill, notional, taker_fee, market, k)
    if reason != transactions.OK:
        return reason, False, pre_root
    fees: uint256 = convert(maker_filled.fee + taker_filled.fee, uint256)
    if w.globals.fee_pool + fees > MAX_COLLATERAL:
        return transactions.OVERFLOW, False, pre_root

    out: witness.Writes = empty(witness.Writes)  # witness.nothing(w.globals), built here: no 148-word return buffer
    out.applied = True
    out.globals = w.globals
    out.flags = witness.WRITE_FIRST | witness.WRITE_SECOND | witness.WRITE_FIRST_SLOT | witness.WRITE_SECOND_SLOT | witness.WRITE_MARKET
    out.first_id = maker.account
    out.second_id = taker.account
    out.first_nonce = maker.nonce
    out.second_nonce = taker.nonce
    out.first = maker_filled.account
    out.second = taker_filled.account
    out.first_slot = state.Slot(nonce=maker.nonce, order_hash=maker_side.digest, filled=maker_side.filled + fill)
    out.second_slot = state.Slot(nonce=taker.nonce, order_hash=taker_side.digest, filled=taker_side.filled + fill)
    out.market = market
    out.market.open_interest = convert(
        convert(market.open_interest, int256) + maker_filled.open_interest_change + taker_filled.open_interest_change,
        uint256,
    )
    out.globals.fee_pool = w.globals.fee_pool + fees
    out.globals.funding_pool = w.globals.funding_pool + maker_filled.funding_paid + taker_filled.funding_paid
    return witness.finish(
        w.first, w.second, w.accounts_root, w.withdrawals_root, w.globals.withdrawal_count, w.withdrawal_proof,
        out, market_leaves, pre_root,
    )


@internal
@view
def _order_authority(
    order: signing.Order, signature: Bytes[64], fill: uint256, accounts_root: bytes32, opened: witness.Opened, domain: bytes32,
) -> (uint8, Side):
    """One side's authority (fork.order_authority): the account
    exists (UNKNOWN_ACCOUNT: id in the tree and owner nonzero); the owner signed the
    order's typed digest (BAD_SIGNATURE, WRONG_SIGNER); the order is alive in its nonce
    slot (NONCE_USED, `filled_so_far`); fill <= size - filled (OVERFILL)."""
    if order.account >= ACCOUNT_CAPACITY:
        return transactions.UNKNOWN_ACCOUNT, empty(Side)
    account: state.Account = witness.open_account(accounts_root, opened, order.account)
    if account.owner == empty(address):
        return transactions.UNKNOWN_ACCOUNT, empty(Side)
    digest: bytes32 = signing.order_hash(order)
    signer: address = signing.recover_compact(signing.typed_digest(domain, digest), signature)
    if signer == empty(address):
        return transactions.BAD_SIGNATURE, empty(Side)
    if signer != account.owner:
        return transactions.WRONG_SIGNER, empty(Side)
    slot: state.Slot = witness.open_slot(opened, order.nonce)
    filled: uint256 = 0
    if slot.order_hash == empty(bytes32) or slot.nonce < order.nonce:
        filled = 0  # slot_is_fresh
    elif slot.nonce == order.nonce and slot.order_hash == digest:
        filled = slot.filled
    else:
        return transactions.NONCE_USED, empty(Side)
    if filled + fill > order.size:
        return transactions.OVERFILL, empty(Side)
    return transactions.OK, Side(account=account, digest=digest, filled=filled)


@internal
@view
def _fill(
    account: state.Account, is_buy: bool, fill: uint256, notional: int256, fee_ppm: uint256,
    market: state.Market, k: margin.Marks,
) -> (uint8, Filled):
    """One side's effects (the loop body of apply_trade's second loop): settle funding
    (margin.settle_funding); fee = ceil(notional * fee_ppm / PPM); a buyer's size grows by
    `fill` and it pays notional + fee, a seller's shrinks and it gets notional - fee; the
    position carries the market's funding index (margin.with_position); bounds
    (OVERFLOW); the margin rule (UNDER_MARGIN, margin.margin_ok(before, after)).

    An account that holds or trades an option series: margin.margin_ok as such, by the
    Portfolio contract. Otherwise (perpetuals only, the linear rule inline):
    one pass over the positions settles funding and sums the settled account's exposure
    (sum of size * price) and its initial and maintenance requirements (sums of
    ceil(|size * price| * fraction / PPM)). `after` differs from `before` in the traded
    market's position only, so its sums are `before`'s with that one term replaced
    (size 0 contributes 0): the same integers margin_ok sums position by position.
    Likewise is_reduce_only(before, after) is margin.vy `reduces(old, new)`: every other
    position is unchanged, and the traded size moved by fill > 0."""
    before: state.Account = account
    payment: int256 = 0
    exposure: int256 = 0
    initial: int256 = 0
    maintenance: int256 = 0
    old_size: int256 = 0
    options: bool = market.product != state.PERPETUAL
    for i: uint256 in range(account.count, bound=16):
        p: state.Position = account.positions[i]
        assert k.opened & (1 << p.market) != 0, "witness: market not opened"  # as margin.settle_funding
        if k.risk[p.market] >= margin.OPTION:
            options = True
        w: uint256 = k.market[p.market]  # margin.vy Marks
        index: int256 = unsafe_sub(convert((w & margin.U128) ^ 2**127, int256), 2**127)
        # unchecked: the widths bound every term far below 2**255 (margin.vy's notice)
        if index != p.funding_index:
            payment = unsafe_add(payment, margin.ceil_div(unsafe_mul(unsafe_sub(index, p.funding_index), p.size), FUNDING_SCALE))
            before.positions[i].funding_index = index
        price: int256 = convert(w >> 192, int256)
        exposure = unsafe_add(exposure, unsafe_mul(p.size, price))
        if not options:  # the linear sums (an option holder's margin is the Portfolio contract's)
            initial = unsafe_add(initial, self._requirement(p.size, price, convert((w >> 160) & margin.U32, int256)))
            maintenance = unsafe_add(maintenance, self._requirement(p.size, price, convert((w >> 128) & margin.U32, int256)))
        if p.market == market.id:
            old_size = p.size
    before.collateral = account.collateral - payment

    fee: int256 = margin.ceil_div(notional * convert(fee_ppm, int256), convert(PPM, int256))
    new_size: int256 = 0
    collateral: int256 = 0
    if is_buy:
        new_size = old_size + convert(fill, int256)
        collateral = before.collateral - notional - fee
    else:
        new_size = old_size - convert(fill, int256)
        collateral = before.collateral + notional - fee
    after: state.Account = margin.with_position(before, market.id, new_size, market.funding_index)
    after.collateral = collateral
    if not self._in_bounds(after):
        return transactions.OVERFLOW, empty(Filled)

    if options:  # the portfolio rule: margin.margin_ok, computed by the Portfolio contract
        if not staticcall margin.Portfolio(k.portfolio).margin_ok(after, k, market.id, old_size, new_size, before.collateral + exposure):
            return transactions.UNDER_MARGIN, empty(Filled)
    else:
        # margin_ok(before, after): value' >= initial'; else reduce-only and
        # value' * maintenance >= value * maintenance' (value' >= 0 when maintenance' = 0)
        price: int256 = convert(market.oracle_price, int256)
        value_after: int256 = collateral + exposure + (new_size - old_size) * price
        initial_after: int256 = (
            initial - self._requirement(old_size, price, convert(market.initial_margin_ppm, int256))
            + self._requirement(new_size, price, convert(market.initial_margin_ppm, int256))
        )
        if value_after < initial_after:
            if not margin.reduces(old_size, new_size):
                return transactions.UNDER_MARGIN, empty(Filled)
            maintenance_after: int256 = (
                maintenance - self._requirement(old_size, price, convert(market.maintenance_margin_ppm, int256))
                + self._requirement(new_size, price, convert(market.maintenance_margin_ppm, int256))
            )
            if maintenance_after == 0:
                if value_after < 0:
                    return transactions.UNDER_MARGIN, empty(Filled)
            elif value_after * maintenance < (before.collateral + exposure) * maintenance_after:
                return transactions.UNDER_MARGIN, empty(Filled)
    return transactions.OK, Filled(
        account=after, fee=fee, funding_paid=payment,
        open_interest_change=max(new_size, 0) - max(old_size, 0),
    )


@internal
@pure
def _requirement(size: int256, price: int256, fraction: int256) -> int256:
    """ceil(|size * price| * fraction / PPM) (products.requirement)."""
    return unsafe_div(unsafe_add(unsafe_mul(abs(unsafe_mul(size, price)), fraction), convert(PPM, int256) - 1), convert(PPM, int256))


@internal
@pure
def _in_bounds(a: state.Account) -> bool:
    """At most 16 positions, |collateral| <= MAX_COLLATERAL and every |size| <= MAX_SIZE
    (fork.in_bounds)."""
    if a.count > state.MAX_POSITIONS or abs(a.collateral) > convert(MAX_COLLATERAL, int256):
        return False
    for i: uint256 in range(a.count, bound=16):
        if abs(a.positions[i].size) > convert(MAX_SIZE, int256):
            return False
    return True
