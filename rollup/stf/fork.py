"""The state transition: `apply(state, tx_bytes, context) -> Receipt`.

`apply` is total: any byte string is a transaction. It decodes the bytes, runs the
rule of the transaction's type against the current state, and either commits the
rule's writes (Reason.OK) or changes nothing and names the reason. Every transaction but
AdvanceTime runs at the batch's time: while the state's clock is behind the batch's
timestamp they are refused (TIME_BEHIND_BATCH), so a batch starts by advancing the clock
(and L1 bounds how far a batch's timestamp may lag its L1 block). Each rule reads,
checks in a fixed order (the L1 verifier checks in the same order, so both name the
same reason), and only then writes. The one exception is ForcedRequest: once its queue
entry is proven to be the next one on L1, the entry is consumed whatever its action's
fate, and the receipt carries the action's reason with `applied = True`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple, cast

from eth_abi import encode as abi_encode

from . import margin, products
from .constants import (
    ACCOUNT_TREE_DEPTH,
    CANCELLED_HASH,
    FUNDING_SCALE,
    INSURANCE_ACCOUNT,
    MAX_COLLATERAL,
    MAX_FUNDING_INDEX,
    MAX_POSITIONS,
    MAX_PRICE,
    MAX_SIZE,
    PPM,
    SECONDS_PER_HOUR,
    WITHDRAWAL_TREE_DEPTH,
)
from .hashing import ZERO_HASH, keccak
from .margin import ceil_div, long_part, settle_funding, with_collateral, with_position
from .reasons import Reason
from .signing import (
    CANCEL_TYPEHASH,
    ORACLE_PRICE_TYPEHASH,
    ORDER_TYPEHASH,
    RISK_REPORT_TYPEHASH,
    SETTLEMENT_TYPEHASH,
    WITHDRAWAL_TYPEHASH,
    domain_separator,
    recover,
    struct_hash,
    typed_digest,
)
from .state import (
    ZERO_ADDRESS,
    Account,
    Config,
    Globals,
    Market,
    OrderSlot,
    State,
    Withdrawal,
)
from .transactions import (
    FORCED_WITHDRAW,
    AdvanceTime,
    Cancel,
    Deleverage,
    Deposit,
    Fill,
    ForcedRequest,
    FundingTick,
    Liquidate,
    OracleReport,
    OracleUpdate,
    Order,
    RiskReport,
    RiskUpdate,
    SettlePosition,
    SettleSeries,
    SweepFees,
    Trade,
    Withdraw,
    decode,
)

# ---------------------------------------------------------------------- context and receipts


@dataclass(frozen=True)
class Context:
    """What a transaction may know besides the state: the deployment's configuration,
    the batch's timestamp, and the L1 queues as they stood when the batch was posted
    (`deposit_heads[i]` is the deposit queue's hash-chain head after i deposits;
    `deposit_heads[0]` is zero; likewise `forced_heads`)."""

    config: Config
    timestamp: int
    deposit_heads: Sequence[bytes] = (ZERO_HASH,)
    forced_heads: Sequence[bytes] = (ZERO_HASH,)
    order_digests: dict[Order, tuple[bytes, bytes]] = field(
        default_factory=dict, compare=False, repr=False, init=False
    )
    """Memo of `order_digests_of` (a resting order is hashed once, not at every fill). Not
    an init field: a context made from another (dataclasses.replace, perhaps with another
    domain) starts with an empty memo."""

    @cached_property
    def domain(self) -> bytes:
        return domain_separator(self.config.chain_id, self.config.verifying_contract)

    def order_digests_of(self, order: Order) -> tuple[bytes, bytes]:
        """(EIP-712 struct hash, typed-data digest to sign) of an order in this domain."""
        found = self.order_digests.get(order)
        if found is None:
            if len(self.order_digests) >= 1 << 16:
                self.order_digests.clear()
            struct = order_hash(order)
            found = self.order_digests[order] = (struct, typed_digest(self.domain, struct))
        return found


class Receipt(NamedTuple):
    kind: int
    """The type tag, or 0 when the bytes did not decode."""
    reason: Reason
    applied: bool
    """Whether the state changed (OK, or a consumed ForcedRequest whose action failed)."""

    @property
    def ok(self) -> bool:
        return self.reason == Reason.OK


@dataclass
class Effects:
    """The writes a rule asks for; committed only when the rule succeeds."""

    accounts: dict[int, Account] = field(default_factory=dict)
    slots: list[tuple[int, int, OrderSlot]] = field(default_factory=list)
    markets: list[Market] = field(default_factory=list)
    globals: Globals | None = None
    withdrawal: Withdrawal | None = None
    orders: list[tuple[bytes, Order]] = field(default_factory=list)
    """Orders posted by this step, by struct hash (State.orders)."""


Outcome = Effects | Reason


# ---------------------------------------------------------------------- entry point


def apply(state: State, tx_bytes: bytes, context: Context) -> Receipt:
    """Apply one transaction to `state` (in place). Never raises on any input."""
    tx = decode(tx_bytes)
    kind = tx_bytes[0] if tx_bytes else 0
    if isinstance(tx, Reason):
        return Receipt(0, tx, False)
    if state.globals.time < context.timestamp and not isinstance(tx, AdvanceTime):
        return Receipt(kind, Reason.TIME_BEHIND_BATCH, False)
    rule = RULES[type(tx)]
    outcome = rule(state, tx, context)  # type: ignore[operator]
    if isinstance(outcome, Reason):
        return Receipt(kind, outcome, False)
    reason = Reason.OK
    if isinstance(tx, ForcedRequest) and isinstance(outcome, tuple):
        outcome, reason = outcome
    commit(state, outcome)
    return Receipt(kind, reason, True)


def commit(state: State, effects: Effects) -> None:
    """Write a rule's effects; nonce-slot writes update their account's orders_root
    (in `effects.accounts`, which commit consumes)."""
    accounts = effects.accounts
    for account_id, nonce, slot in effects.slots:
        orders_root = state.set_slot(account_id, nonce, slot)
        account = accounts.get(account_id) or state.account(account_id)
        accounts[account_id] = Account(account.owner, account.collateral, account.positions, orders_root)
    state.set_accounts(accounts)
    for market in effects.markets:
        state.set_market(market)
    if effects.globals is not None:
        state.set_globals(effects.globals)
    if effects.withdrawal is not None:
        state.append_withdrawal(effects.withdrawal)
    for digest, order in effects.orders:
        state.orders[digest] = order


# ---------------------------------------------------------------------- shared checks


def in_bounds(*accounts: Account) -> bool:
    """Every collateral and position size within its stored width, and at most
    MAX_POSITIONS positions per account (a position in a 17th market is refused)."""
    for account in accounts:
        if abs(account.collateral) > MAX_COLLATERAL or len(account.positions) > MAX_POSITIONS:
            return False
        for p in account.positions:
            if abs(p.size) > MAX_SIZE:
                return False
    return True


def valid_account_id(account_id: int) -> bool:
    return account_id < 4**ACCOUNT_TREE_DEPTH


def known_account(state: State, account_id: int) -> Account | None:
    """The account, if its id is in range and it has an owner (else UNKNOWN_ACCOUNT)."""
    if not valid_account_id(account_id):
        return None
    account = state.account(account_id)
    return None if account.owner == ZERO_ADDRESS else account


ORDER_WORDS = struct.Struct(">28xI31xB31xB24xQ24xQ28xI24xQ24xQ")
"""The eight fields of an Order as eight 32-byte ABI words (one pack instead of eight)."""


def order_hash(order: Order) -> bytes:
    """EIP-712 struct hash of an order: keccak(ORDER_TYPEHASH ++ its fields as words)."""
    return keccak(ORDER_TYPEHASH + ORDER_WORDS.pack(
        order.account, order.market, int(order.is_buy), order.size, order.limit_price,
        order.max_fee_ppm, order.nonce, order.expiry,
    ))


def slot_is_fresh(slot: OrderSlot, nonce: int) -> bool:
    """A nonce is unused in its slot iff the slot is empty or holds a lower nonce."""
    return slot.order_hash == ZERO_HASH or slot.nonce < nonce


def filled_so_far(slot: OrderSlot, nonce: int, digest: bytes) -> int | None:
    """How much of the order (nonce, digest) is filled, or None if the order is dead:
    its slot holds a higher nonce, or the same nonce for another order or a cancel."""
    if slot_is_fresh(slot, nonce):
        return 0
    if slot.nonce == nonce and slot.order_hash == digest:
        return slot.filled
    return None


def open_interest_change(before: int, after: int) -> int:
    return long_part(after) - long_part(before)


def priced_market(state: State, market_id: int) -> Market | Reason:
    """The market, if it exists (UNKNOWN_MARKET) and has a price (NO_PRICE)."""
    market = state.market(market_id)
    if market is None:
        return Reason.UNKNOWN_MARKET
    if market.oracle_price == 0:
        return Reason.NO_PRICE
    return market


def in_band(price: int, market: Market) -> bool:
    """The flash-crash band of trades: a price within max_price_move_ppm of the market's
    oracle price (a series' mark), |price - mark| * PPM <= mark * max_price_move_ppm: no
    trade prints farther from the index than one oracle update may move it."""
    return abs(price - market.oracle_price) * PPM <= market.oracle_price * market.max_price_move_ppm


def transfer_effects(
    state: State, market: Market, moves: dict[int, tuple[Account, Account]], funding_paid: int
) -> Effects:
    """The effects of moving a position between accounts: each account's new record,
    the market's open interest, and the funding settled on the way.
    `moves` maps account id -> (account settled before the move, account after)."""
    open_interest = market.open_interest
    for before, after in moves.values():
        open_interest += open_interest_change(before.size(market.id), after.size(market.id))
    g = state.globals
    return Effects(
        accounts={account_id: after for account_id, (_, after) in moves.items()},
        markets=[market._replace(open_interest=open_interest)],
        globals=g._replace(funding_pool=g.funding_pool + funding_paid),
    )


# ---------------------------------------------------------------------- rules


def apply_advance_time(state: State, tx: AdvanceTime, context: Context) -> Outcome:
    """Move the system time forward, to at most the batch's timestamp.
    Checks: timestamp > time (TIME_NOT_LATER); timestamp <= batch timestamp (TIME_AFTER_BATCH)."""
    g = state.globals
    if tx.timestamp <= g.time:
        return Reason.TIME_NOT_LATER
    if tx.timestamp > context.timestamp:
        return Reason.TIME_AFTER_BATCH
    return Effects(globals=g._replace(time=tx.timestamp))


def deposit_entry(index: int, account: int, owner: bytes, amount: int, l1_time: int) -> bytes:
    """The bytes the L1 deposit queue hashes into its chain for one deposit."""
    return abi_encode(
        ["uint256", "uint256", "address", "uint256", "uint256"],
        [index, account, owner, amount, l1_time],
    )


def forced_entry(tx: ForcedRequest) -> bytes:
    """The bytes the L1 forced-request queue hashes into its chain for one request."""
    return abi_encode(
        ["uint256", "uint256", "uint256", "address", "uint256", "uint256", "uint256"],
        [tx.index, tx.kind, tx.account, tx.requester, tx.market, tx.amount, tx.l1_time],
    )


def apply_deposit(state: State, tx: Deposit, context: Context) -> Outcome:
    """Credit the next L1 deposit. Checks, in order: index = deposits consumed
    (DEPOSIT_OUT_OF_ORDER); the entry extends the chain to the L1 queue's head after
    it, as of the batch (DEPOSIT_NOT_ON_L1); account id in range and owner nonzero
    (BAD_FIELD); the account is new or has this owner (OWNER_MISMATCH); bounds (OVERFLOW).
    A new account is created with the deposit's owner."""
    g = state.globals
    if tx.index != g.deposit_count:
        return Reason.DEPOSIT_OUT_OF_ORDER
    if tx.index + 1 >= len(context.deposit_heads):
        return Reason.DEPOSIT_NOT_ON_L1
    head = keccak(g.deposit_head + deposit_entry(tx.index, tx.account, tx.owner, tx.amount, tx.l1_time))
    if head != context.deposit_heads[tx.index + 1]:
        return Reason.DEPOSIT_NOT_ON_L1
    if not valid_account_id(tx.account) or tx.owner == ZERO_ADDRESS:
        return Reason.BAD_FIELD
    account = state.account(tx.account)
    if account.owner == ZERO_ADDRESS:
        account = account._replace(owner=tx.owner)
    elif account.owner != tx.owner:
        return Reason.OWNER_MISMATCH
    account = with_collateral(account, account.collateral + tx.amount)
    total = g.total_deposited + tx.amount
    if not in_bounds(account) or total > MAX_COLLATERAL:
        return Reason.OVERFLOW
    return Effects(
        accounts={tx.account: account},
        globals=g._replace(deposit_count=g.deposit_count + 1, deposit_head=head, total_deposited=total),
    )


def withdraw_effects(
    state: State, account_id: int, amount: int, markets: Sequence[Market | None]
) -> tuple[Effects, Account] | Reason:
    """The shared part of Withdraw and forced withdrawals: settle funding, take `amount`
    from collateral (which must stay >= 0: INSUFFICIENT_COLLATERAL), keep the margin rule
    (UNDER_MARGIN), append a withdrawal record (OVERFLOW when the tree is full)."""
    g = state.globals
    before, payment = settle_funding(state.account(account_id), markets)
    after = with_collateral(before, before.collateral - amount)
    if after.collateral < 0:
        return Reason.INSUFFICIENT_COLLATERAL
    if not margin.margin_ok(before, after, markets):
        return Reason.UNDER_MARGIN
    if g.withdrawal_count >= 4**WITHDRAWAL_TREE_DEPTH or g.total_withdrawn + amount > MAX_COLLATERAL:
        return Reason.OVERFLOW
    effects = Effects(
        accounts={account_id: after},
        globals=g._replace(
            withdrawal_count=g.withdrawal_count + 1,
            total_withdrawn=g.total_withdrawn + amount,
            funding_pool=g.funding_pool + payment,
        ),
        withdrawal=Withdrawal(account_id, before.owner, amount),
    )
    return effects, after


def apply_withdraw(state: State, tx: Withdraw, context: Context) -> Outcome:
    """Move collateral out to L1 as a withdrawal record. Checks, in order: the account
    exists (UNKNOWN_ACCOUNT); amount > 0 (BAD_FIELD); not expired (EXPIRED); signed by
    the owner (BAD_SIGNATURE, WRONG_SIGNER); nonce unused (NONCE_USED); then
    `withdraw_effects`. The nonce's slot records the withdrawal's hash."""
    account = known_account(state, tx.account)
    if account is None:
        return Reason.UNKNOWN_ACCOUNT
    if tx.amount == 0:
        return Reason.BAD_FIELD
    if state.globals.time > tx.expiry:
        return Reason.EXPIRED
    digest = struct_hash(WITHDRAWAL_TYPEHASH, tx.account, tx.amount, tx.nonce, tx.expiry)
    signer = recover(typed_digest(context.domain, digest), tx.signature)
    if signer is None:
        return Reason.BAD_SIGNATURE
    if signer != account.owner:
        return Reason.WRONG_SIGNER
    if not slot_is_fresh(state.slot(tx.account, tx.nonce), tx.nonce):
        return Reason.NONCE_USED
    result = withdraw_effects(state, tx.account, tx.amount, state.markets)
    if isinstance(result, Reason):
        return result
    effects, _ = result
    effects.slots.append((tx.account, tx.nonce, OrderSlot(tx.nonce, digest, tx.amount)))
    return effects


def apply_cancel(state: State, tx: Cancel, context: Context) -> Outcome:
    """Kill nonce `nonce` of an account: no order with it can fill from now on.
    Checks: the account exists (UNKNOWN_ACCOUNT); signed by the owner (BAD_SIGNATURE,
    WRONG_SIGNER); not already cancelled (ALREADY_CANCELLED); the slot holds no higher
    nonce (NONCE_USED)."""
    account = known_account(state, tx.account)
    if account is None:
        return Reason.UNKNOWN_ACCOUNT
    digest = struct_hash(CANCEL_TYPEHASH, tx.account, tx.nonce)
    signer = recover(typed_digest(context.domain, digest), tx.signature)
    if signer is None:
        return Reason.BAD_SIGNATURE
    if signer != account.owner:
        return Reason.WRONG_SIGNER
    slot = state.slot(tx.account, tx.nonce)
    if slot.nonce == tx.nonce and slot.order_hash == CANCELLED_HASH:
        return Reason.ALREADY_CANCELLED
    if not slot_is_fresh(slot, tx.nonce) and slot.nonce != tx.nonce:
        return Reason.NONCE_USED
    filled = slot.filled if slot.nonce == tx.nonce else 0
    return Effects(slots=[(tx.account, tx.nonce, OrderSlot(tx.nonce, CANCELLED_HASH, filled))])


def apply_trade(state: State, tx: Trade, context: Context) -> Outcome:
    """Fill `fill` lots between a maker and a taker order at the maker's limit price (the
    maker order's first fill: it comes with its signature). Checks, in order:
    - orders: same market (MARKET_MISMATCH), opposite sides (SAME_SIDE), different
      accounts (SELF_TRADE); the market exists (UNKNOWN_MARKET) and has a price (NO_PRICE);
      an option series is before its expiry (SERIES_EXPIRED: expired series take no orders);
    - amounts: order sizes, limit prices and fill in (0, bound] (BAD_FIELD); fill a
      multiple of the step (NOT_STEP_MULTIPLE); maker price a multiple of the tick
      (NOT_TICK_MULTIPLE); the taker's limit allows the maker's price (PRICE_NOT_FAIR);
      the price within the market's band around its oracle price (`in_band`,
      PRICE_OUT_OF_BAND); fee rates within each order's max fee (FEE_TOO_HIGH); neither
      expired (EXPIRED);
    - authority, maker then taker: account exists (UNKNOWN_ACCOUNT), owner signed
      (BAD_SIGNATURE, WRONG_SIGNER), order alive (NONCE_USED), fill <= size - filled (OVERFILL);
    - effects, both settled for funding first: buyer pays fill * price + fee, seller gets
      fill * price - fee; fee = ceil(fill * price * fee_ppm / PPM); bounds (OVERFLOW);
      each side satisfies the margin rule (UNDER_MARGIN).
    """
    return match(state, context, tx.maker, tx.taker, tx.taker_signature, tx.fill, tx.maker_fee_ppm,
                 tx.taker_fee_ppm, lambda: order_authority(state, context, tx.maker, tx.maker_signature, tx.fill))


def apply_fill(state: State, tx: Fill, context: Context) -> Outcome:
    """A later fill of a posted order, named by its account and nonce. Checks first: the
    maker's account exists (UNKNOWN_ACCOUNT); its nonce slot holds a live order of exactly
    `maker_nonce` (NO_ORDER: an empty, cancelled or reused slot); that order (the preimage
    of the slot's hash) is the maker order. Then every check of `apply_trade` in its
    order, the maker's authority being its slot's: fill <= size - filled (OVERFILL); its
    signature was checked when it was posted."""
    account = known_account(state, tx.maker_account)
    if account is None:
        return Reason.UNKNOWN_ACCOUNT
    slot = state.slot(tx.maker_account, tx.maker_nonce)
    maker = state.orders.get(slot.order_hash) if slot.nonce == tx.maker_nonce else None
    if maker is None:
        return Reason.NO_ORDER

    def authority() -> tuple[Account, bytes, int] | Reason:
        if slot.filled + tx.fill > maker.size:
            return Reason.OVERFILL
        return account, slot.order_hash, slot.filled

    return match(state, context, maker, tx.taker, tx.taker_signature, tx.fill, tx.maker_fee_ppm,
                 tx.taker_fee_ppm, authority)


def match(
    state: State, context: Context, maker: Order, taker: Order, taker_signature: bytes, fill: int,
    maker_fee_ppm: int, taker_fee_ppm: int, maker_authority: Callable[[], tuple[Account, bytes, int] | Reason],
) -> Outcome:
    """The checks and effects a Trade and a Fill share (apply_trade's list), the maker's
    authority given by the caller."""
    if maker.market != taker.market:
        return Reason.MARKET_MISMATCH
    if maker.is_buy == taker.is_buy:
        return Reason.SAME_SIDE
    if maker.account == taker.account:
        return Reason.SELF_TRADE
    market = priced_market(state, maker.market)
    if isinstance(market, Reason):
        return market
    if market.product != products.PERPETUAL and state.globals.time >= market.expiry:
        return Reason.SERIES_EXPIRED
    if not (
        0 < maker.size <= MAX_SIZE and 0 < taker.size <= MAX_SIZE and 0 < fill <= MAX_SIZE
        and 0 < maker.limit_price <= MAX_PRICE and 0 < taker.limit_price <= MAX_PRICE
        and maker_fee_ppm <= PPM and taker_fee_ppm <= PPM
    ):
        return Reason.BAD_FIELD
    if fill % market.step_size != 0:
        return Reason.NOT_STEP_MULTIPLE
    price = maker.limit_price
    if price % market.tick_size != 0:
        return Reason.NOT_TICK_MULTIPLE
    if (taker.is_buy and price > taker.limit_price) or (not taker.is_buy and price < taker.limit_price):
        return Reason.PRICE_NOT_FAIR
    if not in_band(price, market):
        return Reason.PRICE_OUT_OF_BAND
    if maker_fee_ppm > maker.max_fee_ppm or taker_fee_ppm > taker.max_fee_ppm:
        return Reason.FEE_TOO_HIGH
    now = state.globals.time
    if now > maker.expiry or now > taker.expiry:
        return Reason.EXPIRED

    maker_side = maker_authority()
    if isinstance(maker_side, Reason):
        return maker_side
    taker_side = order_authority(state, context, taker, taker_signature, fill)
    if isinstance(taker_side, Reason):
        return taker_side

    markets = state.markets
    notional = fill * price
    g = state.globals
    funding_paid = 0
    fees = 0
    accounts: dict[int, Account] = {}
    slots = []
    open_interest = market.open_interest
    for order, (account, digest, filled), fee_ppm in (
        (maker, maker_side, maker_fee_ppm), (taker, taker_side, taker_fee_ppm)
    ):
        before, payment = settle_funding(account, markets)
        funding_paid += payment
        fee = ceil_div(notional * fee_ppm, PPM)
        fees += fee
        old_size = before.size(market.id)
        if order.is_buy:
            new_size, collateral = old_size + fill, before.collateral - notional - fee
        else:
            new_size, collateral = old_size - fill, before.collateral + notional - fee
        after = with_position(before, market.id, new_size, market.funding_index, collateral)
        if not in_bounds(after):
            return Reason.OVERFLOW
        if not margin.margin_ok(before, after, markets):
            return Reason.UNDER_MARGIN
        open_interest += open_interest_change(old_size, new_size)
        accounts[order.account] = after
        slots.append((order.account, order.nonce, OrderSlot(order.nonce, digest, filled + fill)))
    if g.fee_pool + fees > MAX_COLLATERAL:
        return Reason.OVERFLOW
    return Effects(
        accounts=accounts,
        slots=slots,
        markets=[market.with_open_interest(open_interest)],
        orders=[(maker_side[1], maker), (taker_side[1], taker)],
        globals=g.with_pools(g.fee_pool + fees, g.funding_pool + funding_paid),
    )


def order_authority(
    state: State, context: Context, order: Order, signature: bytes, fill: int
) -> tuple[Account, bytes, int] | Reason:
    """One order's side of a Trade's authority checks, in order: the account exists
    (UNKNOWN_ACCOUNT), its owner signed the order (BAD_SIGNATURE, WRONG_SIGNER), the
    order is alive (NONCE_USED) and `fill` more lots fit in it (OVERFILL).
    Returns (account, order hash, amount filled so far)."""
    account = known_account(state, order.account)
    if account is None:
        return Reason.UNKNOWN_ACCOUNT
    digest, signed = context.order_digests_of(order)
    signer = recover(signed, signature)
    if signer is None:
        return Reason.BAD_SIGNATURE
    if signer != account.owner:
        return Reason.WRONG_SIGNER
    filled = filled_so_far(state.slot(order.account, order.nonce), order.nonce, digest)
    if filled is None:
        return Reason.NONCE_USED
    if filled + fill > order.size:
        return Reason.OVERFILL
    return account, digest, filled


def apply_oracle_update(state: State, tx: OracleUpdate, context: Context) -> Outcome:
    """Set a perpetual's price to the median of k-of-n signed reports of one timestamp.
    Checks, in order: the market exists (UNKNOWN_MARKET) and is a perpetual (WRONG_PRODUCT:
    a series' mark comes with its Greeks, by RiskUpdate); then `check_reports`; the median
    (report (k-1)//2) becomes the price, clamped to within max_price_move_ppm of the
    current one (`clamp`; the first price is free): a move beyond the bound, as in a real
    crash, is followed one bounded step per update instead of refused. The first price
    also starts the market's funding clock (funding_time := time)."""
    market = state.market(tx.market)
    if market is None:
        return Reason.UNKNOWN_MARKET
    if market.product != products.PERPETUAL:
        return Reason.WRONG_PRODUCT
    refused = check_reports(state, market, tx, context)
    if refused is not None:
        return refused
    median = tx.reports[(len(tx.reports) - 1) // 2].price
    old = market.oracle_price
    price = clamp(median, old, market.max_price_move_ppm) if old != 0 else median
    # funding accrues from a market's first price: before it, funding_time means nothing
    # (a first tick measured from genesis would allow an unbounded move)
    funding_time = market.funding_time if old != 0 else state.globals.time
    return Effects(markets=[market._replace(oracle_price=price, oracle_time=tx.timestamp, funding_time=funding_time)])


def apply_risk_update(state: State, tx: RiskUpdate, context: Context) -> Outcome:
    """Set an option series' mark and Greeks from k-of-n signed reports of one timestamp
    (the risk feed). Checks, in order: the market exists (UNKNOWN_MARKET) and is a series
    (WRONG_PRODUCT); then `check_reports`, whose field check adds the Greeks' signs: a
    call's delta in [0, PPM], a put's in [-PPM, 0], gamma and vega >= 0 (BAD_FIELD); the
    timestamp before the series' expiry (SERIES_EXPIRED: after it the series is settled,
    not marked). The mark is the median report's (they are sorted by mark), clamped as a
    price is (`clamp`); each Greek is the median of its own values (`lower_median`), so a
    minority of signers can move none of them outside the range the others span."""
    market = state.market(tx.market)
    if market is None:
        return Reason.UNKNOWN_MARKET
    if market.product == products.PERPETUAL:
        return Reason.WRONG_PRODUCT
    refused = check_reports(state, market, tx, context)
    if refused is not None:
        return refused
    reports = tx.reports
    median = reports[(len(reports) - 1) // 2].mark
    old = market.oracle_price
    return Effects(markets=[market._replace(
        oracle_price=clamp(median, old, market.max_price_move_ppm) if old != 0 else median,
        oracle_time=tx.timestamp,
        delta=lower_median([r.delta for r in reports]),
        gamma=lower_median([r.gamma for r in reports]),
        vega=lower_median([r.vega for r in reports]),
    )])


def apply_settle_series(state: State, tx: SettleSeries, context: Context) -> Outcome:
    """Fix an expired series' settlement price, once: the median of k-of-n signed reports
    of its underlying's price at its expiry (`Settlement(market, price, expiry)`). Checks,
    in order: the market exists (UNKNOWN_MARKET) and is a series (WRONG_PRODUCT) without a
    settlement price (ALREADY_SETTLED); then `check_reports` (its timestamp the series'
    expiry, BAD_FIELD; the system time at or past it, NOT_EXPIRED). The median is taken
    as signed, unclamped: it is the price at one past instant, not a move. Effect:
    settlement_price := median; the series' mark becomes its payoff per lot (`payoff`,
    perhaps 0) and its Greeks 0, so that until each position is closed (SettlePosition)
    the margin rules value it at what it will pay."""
    market = state.market(tx.market)
    if market is None:
        return Reason.UNKNOWN_MARKET
    if market.product == products.PERPETUAL:
        return Reason.WRONG_PRODUCT
    if market.settlement_price != 0:
        return Reason.ALREADY_SETTLED
    refused = check_reports(state, market, tx, context)
    if refused is not None:
        return refused
    price = tx.reports[(len(tx.reports) - 1) // 2].price
    return Effects(markets=[market._replace(
        settlement_price=price, oracle_price=payoff(market, price), oracle_time=tx.timestamp, delta=0, gamma=0, vega=0,
    )])


def payoff(series: Market, settlement_price: int) -> int:
    """What one lot of a series pays at `settlement_price`: a call max(S - K, 0), a put
    max(K - S, 0)."""
    if series.product == products.CALL:
        return max(settlement_price - series.strike, 0)
    return max(series.strike - settlement_price, 0)


def apply_settle_position(state: State, tx: SettlePosition, context: Context) -> Outcome:
    """Close an account's position in a settled series at its payoff: a long is paid
    size * payoff from the funding pool, a short pays it into the pool. Longs and shorts
    hold equal sizes, so once every position of the series is settled its payments net to
    zero in the pool; in between, the pool holds what the shorts paid less what the longs
    took (negative while longs settle first), and the sum of collateral and pools is
    conserved at every step, as with funding. Anyone's to post, for any account: it takes no
    signature and cannot be refused for margin (a short's deficit is its own, as a
    bankrupt account's). Checks: the account exists (UNKNOWN_ACCOUNT); the market exists
    (UNKNOWN_MARKET), is a series (WRONG_PRODUCT) and is settled (NOT_SETTLED); the account
    holds a position in it (NO_POSITION); bounds (OVERFLOW). Effect: the position removed,
    collateral += size * payoff (the series' mark since SettleSeries), the funding pool
    less as much, the series' open interest less the long part."""
    account = known_account(state, tx.account)
    if account is None:
        return Reason.UNKNOWN_ACCOUNT
    market = state.market(tx.market)
    if market is None:
        return Reason.UNKNOWN_MARKET
    if market.product == products.PERPETUAL:
        return Reason.WRONG_PRODUCT
    if market.settlement_price == 0:
        return Reason.NOT_SETTLED
    return settlement_effects(state, tx.account, account, market)


def settlement_effects(state: State, account_id: int, account: Account, series: Market) -> Outcome:
    """Closing an account's position in a settled series (SettlePosition, and a forced
    close of one): a position to close (NO_POSITION); bounds (OVERFLOW); the payoff moves
    between the account and the funding pool."""
    held = account.size(series.id)
    if held == 0:
        return Reason.NO_POSITION
    paid = held * series.oracle_price
    closed = with_position(account, series.id, 0, 0, account.collateral + paid)
    if not in_bounds(closed):
        return Reason.OVERFLOW
    g = state.globals
    return Effects(
        accounts={account_id: closed},
        markets=[series._replace(open_interest=series.open_interest - long_part(held))],
        globals=g._replace(funding_pool=g.funding_pool - paid),
    )


def check_reports(
    state: State, market: Market, tx: OracleUpdate | RiskUpdate | SettleSeries, context: Context
) -> Reason | None:
    """The checks the feed's transactions share, in order: at least `quorum` reports
    (ORACLE_QUORUM); then the time: for a SettleSeries, its timestamp the series' expiry
    (BAD_FIELD) and the system time at or past it (NOT_EXPIRED); otherwise a timestamp not
    after the system time and not older than the market's staleness window (ORACLE_STALE),
    later than the current price's (ORACLE_NOT_NEWER), and a RiskUpdate's before the
    series' expiry (SERIES_EXPIRED). Then each price in (0, MAX_PRICE], signer index
    within the committee and, for a RiskUpdate, `greeks_in_range` (BAD_FIELD); prices
    non-decreasing (ORACLE_UNSORTED); signers distinct (ORACLE_QUORUM); each report signed
    by its signer (`report_hash`; BAD_SIGNATURE, WRONG_SIGNER). None when all hold."""
    signers = context.config.oracle_signers
    if len(tx.reports) < context.config.oracle_quorum:
        return Reason.ORACLE_QUORUM
    now = state.globals.time
    if isinstance(tx, SettleSeries):
        if tx.timestamp != market.expiry:
            return Reason.BAD_FIELD
        if now < market.expiry:
            return Reason.NOT_EXPIRED
    else:
        if tx.timestamp > now or tx.timestamp + market.oracle_staleness < now:
            return Reason.ORACLE_STALE
        if tx.timestamp <= market.oracle_time:
            return Reason.ORACLE_NOT_NEWER
        if isinstance(tx, RiskUpdate) and tx.timestamp >= market.expiry:
            return Reason.SERIES_EXPIRED
    reports: Sequence[OracleReport | RiskReport] = tx.reports
    prices = [r.mark if isinstance(r, RiskReport) else r.price for r in reports]
    for report, price in zip(reports, prices, strict=True):
        if not 0 < price <= MAX_PRICE or report.signer >= len(signers):
            return Reason.BAD_FIELD
        if isinstance(report, RiskReport) and not greeks_in_range(market.product, report):
            return Reason.BAD_FIELD
    for previous, price in zip(prices, prices[1:], strict=False):
        if price < previous:
            return Reason.ORACLE_UNSORTED
    seen = 0
    for report in reports:
        bit = 1 << report.signer
        if seen & bit:
            return Reason.ORACLE_QUORUM
        seen |= bit
    for report in reports:
        signer = recover(typed_digest(context.domain, report_hash(tx, report)), report.signature)
        if signer is None:
            return Reason.BAD_SIGNATURE
        if signer != signers[report.signer]:
            return Reason.WRONG_SIGNER
    return None


def report_hash(tx: OracleUpdate | RiskUpdate | SettleSeries, report: OracleReport | RiskReport) -> bytes:
    """The EIP-712 struct hash a report's signer signed: OraclePrice(market, price,
    timestamp), RiskReport(market, mark, delta, gamma, vega, timestamp), or
    Settlement(market, price, expiry) (a SettleSeries' timestamp is the expiry)."""
    if isinstance(report, RiskReport):
        return struct_hash(RISK_REPORT_TYPEHASH, tx.market, report.mark, report.delta, report.gamma, report.vega,
                           tx.timestamp)
    typehash = SETTLEMENT_TYPEHASH if isinstance(tx, SettleSeries) else ORACLE_PRICE_TYPEHASH
    return struct_hash(typehash, tx.market, report.price, tx.timestamp)


def greeks_in_range(product: int, report: RiskReport) -> bool:
    """A long option's Greeks have fixed signs: a call's delta in [0, PPM], a put's in
    [-PPM, 0], gamma (cash gamma) and vega non-negative."""
    low, high = (0, PPM) if product == products.CALL else (-PPM, 0)
    return low <= report.delta <= high and report.gamma >= 0 and report.vega >= 0


def lower_median(values: Sequence[int]) -> int:
    """The ((k-1)//2)-th smallest of k values: the median, the lower one when k is even
    (the rule a report's price follows, as the reports are sorted by it)."""
    return sorted(values)[(len(values) - 1) // 2]


def clamp(median: int, old: int, max_move_ppm: int) -> int:
    """The flash-crash clamp: `median` moved to within bound = floor(old * max_move_ppm /
    PPM) of `old`, the nearer end when it lies beyond (|median - old| <= bound is exactly
    |median - old| * PPM <= max_move_ppm * old). Genesis keeps max_move_ppm <= PPM, so a
    clamped price stays positive, and a raised one stays below the median."""
    bound = old * max_move_ppm // PPM
    if median > old + bound:
        return old + bound
    if median + bound < old:
        return old - bound
    return median


def apply_funding_tick(state: State, tx: FundingTick, context: Context) -> Outcome:
    """Add `index_delta` to a market's funding index (positive: longs pay shorts).
    Checks: the market exists (UNKNOWN_MARKET), is a perpetual (WRONG_PRODUCT: an option
    pays no funding) and has a price (NO_PRICE); time has passed since the last tick
    (FUNDING_NO_TIME); the move is within the rate cap:
        |delta| * PPM * 3600 <= max_funding_rate_ppm * price * elapsed * FUNDING_SCALE
    (FUNDING_TOO_LARGE); the index stays in bounds (OVERFLOW)."""
    market = state.market(tx.market)
    if market is None:
        return Reason.UNKNOWN_MARKET
    if market.product != products.PERPETUAL:
        return Reason.WRONG_PRODUCT
    if market.oracle_price == 0:
        return Reason.NO_PRICE
    elapsed = state.globals.time - market.funding_time
    if elapsed <= 0:
        return Reason.FUNDING_NO_TIME
    cap = market.max_funding_rate_ppm * market.oracle_price * elapsed * FUNDING_SCALE
    if abs(tx.index_delta) * PPM * SECONDS_PER_HOUR > cap:
        return Reason.FUNDING_TOO_LARGE
    index = market.funding_index + tx.index_delta
    if abs(index) > MAX_FUNDING_INDEX:
        return Reason.OVERFLOW
    return Effects(
        markets=[market._replace(funding_index=index, funding_time=state.globals.time)]
    )


def deficit_share(account: Account, markets: Sequence[Market | None], slice_notional: int) -> int:
    """The part of a bankrupt account's deficit (-value) that a closed slice carries,
    pro rata to notional, rounded down (against the bankrupt account):
        floor(-value * slice_notional / sum(|size * price|))"""
    # a position's market is listed (cast from Market | None)
    gross = sum(abs(p.size) * cast(Market, markets[p.market]).oracle_price for p in account.positions)
    return (-margin.value(account, markets) * slice_notional) // gross


def transfer_position(
    seller_side: Account, buyer_side: Account, market: Market, size: int
) -> tuple[Account, Account]:
    """Move `size` lots of `seller_side`'s position (reducing it) to `buyer_side` at the
    oracle price: the reducing side's size moves toward 0, the other side takes the
    opposite; collateral moves by size * price; both positions carry the market's index."""
    held = seller_side.size(market.id)
    direction = 1 if held > 0 else -1
    notional = size * market.oracle_price
    reduced = with_position(
        with_collateral(seller_side, seller_side.collateral + direction * notional),
        market.id, held - direction * size, market.funding_index,
    )
    taken = with_position(
        with_collateral(buyer_side, buyer_side.collateral - direction * notional),
        market.id, buyer_side.size(market.id) + direction * size, market.funding_index,
    )
    return reduced, taken


def apply_liquidate(state: State, tx: Liquidate, context: Context) -> Outcome:
    """Close `size` lots of an under-maintenance account's position in `market` against
    the insurance fund (account 0) at the oracle price. Checks, in order: the account
    exists and is not the fund (UNKNOWN_ACCOUNT, BAD_COUNTERPARTY); the market exists
    with a price (UNKNOWN_MARKET, NO_PRICE); after funding, it has a position
    (NO_POSITION); 0 < size <= |position| (BAD_FIELD, NOT_REDUCE_ONLY); value <
    maintenance requirement (NOT_LIQUIDATABLE).
    Then: if value >= 0 the account pays the fund a penalty
    min(ceil(size * price * penalty_ppm / PPM), value); if value < 0 the fund pays the
    slice's `deficit_share`, which must not exceed the fund's value (INSURANCE_INSUFFICIENT).
    Bounds (OVERFLOW)."""
    account = known_account(state, tx.account)
    if account is None:
        return Reason.UNKNOWN_ACCOUNT
    if tx.account == INSURANCE_ACCOUNT:
        return Reason.BAD_COUNTERPARTY
    market = priced_market(state, tx.market)
    if isinstance(market, Reason):
        return market
    markets = state.markets
    account, paid = settle_funding(account, markets)
    fund, fund_paid = settle_funding(state.account(INSURANCE_ACCOUNT), markets)
    settled_account, settled_fund = account, fund
    held = account.size(tx.market)
    if held == 0:
        return Reason.NO_POSITION
    if tx.size == 0:
        return Reason.BAD_FIELD
    if tx.size > abs(held):
        return Reason.NOT_REDUCE_ONLY
    value = margin.value(account, markets)
    if value >= margin.requirement(account, markets, initial=False):
        return Reason.NOT_LIQUIDATABLE
    notional = tx.size * market.oracle_price
    if value >= 0:
        transfer = -min(ceil_div(notional * market.liquidation_penalty_ppm, PPM), value)
    else:
        transfer = deficit_share(account, markets, notional)
        if transfer > margin.value(fund, markets):
            return Reason.INSURANCE_INSUFFICIENT
    account, fund = transfer_position(account, fund, market, tx.size)
    account = with_collateral(account, account.collateral + transfer)
    fund = with_collateral(fund, fund.collateral - transfer)
    if not in_bounds(account, fund):
        return Reason.OVERFLOW
    moves = {tx.account: (settled_account, account), INSURANCE_ACCOUNT: (settled_fund, fund)}
    return transfer_effects(state, market, moves, paid + fund_paid)


def apply_deleverage(state: State, tx: Deleverage, context: Context) -> Outcome:
    """Close `size` lots of a bankrupt account's position against an opposite position
    of another account, when the insurance fund cannot carry the slice. Checks, in order:
    both accounts exist and differ (UNKNOWN_ACCOUNT, BAD_COUNTERPARTY); the market exists
    with a price (UNKNOWN_MARKET, NO_PRICE); after funding, the deleveragee has a
    position (NO_POSITION) and the deleverager an opposite one (BAD_COUNTERPARTY);
    0 < size <= both |positions| (BAD_FIELD, NOT_REDUCE_ONLY); the deleveragee's value
    < 0 and its slice's `deficit_share` exceeds the fund's value (NOT_DELEVERAGEABLE).
    Then the slice moves at the oracle price and the deleverager pays the deficit share;
    the deleverager's value must stay >= 0 (BAD_COUNTERPARTY). Bounds (OVERFLOW)."""
    for account_id in (tx.deleveragee, tx.deleverager):
        if known_account(state, account_id) is None:
            return Reason.UNKNOWN_ACCOUNT
    if tx.deleveragee == tx.deleverager:
        return Reason.BAD_COUNTERPARTY
    market = priced_market(state, tx.market)
    if isinstance(market, Reason):
        return market
    markets = state.markets
    bankrupt, paid_a = settle_funding(state.account(tx.deleveragee), markets)
    taker, paid_b = settle_funding(state.account(tx.deleverager), markets)
    settled_bankrupt, settled_taker = bankrupt, taker
    held = bankrupt.size(tx.market)
    if held == 0:
        return Reason.NO_POSITION
    opposite = taker.size(tx.market)
    if opposite == 0 or (opposite > 0) == (held > 0):
        return Reason.BAD_COUNTERPARTY
    if tx.size == 0:
        return Reason.BAD_FIELD
    if tx.size > abs(held) or tx.size > abs(opposite):
        return Reason.NOT_REDUCE_ONLY
    if margin.value(bankrupt, markets) >= 0:
        return Reason.NOT_DELEVERAGEABLE
    share = deficit_share(bankrupt, markets, tx.size * market.oracle_price)
    fund, _ = settle_funding(state.account(INSURANCE_ACCOUNT), markets)
    if share <= margin.value(fund, markets):
        return Reason.NOT_DELEVERAGEABLE
    bankrupt, taker = transfer_position(bankrupt, taker, market, tx.size)
    bankrupt = with_collateral(bankrupt, bankrupt.collateral + share)
    taker = with_collateral(taker, taker.collateral - share)
    if margin.value(taker, markets) < 0:
        return Reason.BAD_COUNTERPARTY
    if not in_bounds(bankrupt, taker):
        return Reason.OVERFLOW
    moves = {tx.deleveragee: (settled_bankrupt, bankrupt), tx.deleverager: (settled_taker, taker)}
    return transfer_effects(state, market, moves, paid_a + paid_b)


def apply_forced_request(
    state: State, tx: ForcedRequest, context: Context
) -> Reason | tuple[Effects, Reason]:
    """Consume the next L1 forced request. Checks: index = requests consumed
    (FORCED_OUT_OF_ORDER); the entry extends the chain to the L1 queue's head after it
    (FORCED_NOT_ON_L1). From here the entry is consumed, and its action runs:
    - withdraw: the account exists (UNKNOWN_ACCOUNT), the requester owns it
      (WRONG_SIGNER), amount > 0 (BAD_FIELD), then `withdraw_effects`;
    - close: the account exists and is not the fund (UNKNOWN_ACCOUNT), the requester
      owns it (WRONG_SIGNER), the market exists with a price (UNKNOWN_MARKET, NO_PRICE),
      after funding it has a position (NO_POSITION) and is at or above maintenance
      (UNDER_MARGIN: liquidation is the path below it); the whole position moves to the
      insurance fund at the oracle price (OVERFLOW on bounds); a position in a settled
      option series is instead closed at its payoff, as SettlePosition closes it
      (`settlement_effects`), so no operator can keep a holder from realizing it.
    A failed action leaves everything but the cursor unchanged; its reason is returned."""
    g = state.globals
    if tx.index != g.forced_count:
        return Reason.FORCED_OUT_OF_ORDER
    if tx.index + 1 >= len(context.forced_heads):
        return Reason.FORCED_NOT_ON_L1
    head = keccak(g.forced_head + forced_entry(tx))
    if head != context.forced_heads[tx.index + 1]:
        return Reason.FORCED_NOT_ON_L1
    consumed = g._replace(forced_count=g.forced_count + 1, forced_head=head)
    result = forced_action(state, tx)
    if isinstance(result, Reason):
        return Effects(globals=consumed), result
    # the action's globals are built on the unconsumed ones; add the cursor move
    if result.globals is None:
        result.globals = consumed
    else:
        result.globals = result.globals._replace(forced_count=consumed.forced_count, forced_head=head)
    return result, Reason.OK


def forced_action(state: State, tx: ForcedRequest) -> Effects | Reason:
    account = known_account(state, tx.account)
    if account is None:
        return Reason.UNKNOWN_ACCOUNT
    if tx.requester != account.owner:
        return Reason.WRONG_SIGNER
    if tx.kind == FORCED_WITHDRAW:
        if tx.amount == 0:
            return Reason.BAD_FIELD
        result = withdraw_effects(state, tx.account, tx.amount, state.markets)
        return result if isinstance(result, Reason) else result[0]
    if tx.account == INSURANCE_ACCOUNT:
        return Reason.UNKNOWN_ACCOUNT
    series = state.market(tx.market)
    if series is not None and series.product != products.PERPETUAL and series.settlement_price != 0:
        # a settled series is closed at its payoff, as SettlePosition does: the operator
        # cannot keep a holder from realizing it
        return settlement_effects(state, tx.account, account, series)
    market = priced_market(state, tx.market)
    if isinstance(market, Reason):
        return market
    markets = state.markets
    account, paid = settle_funding(account, markets)
    fund, fund_paid = settle_funding(state.account(INSURANCE_ACCOUNT), markets)
    held = account.size(tx.market)
    if held == 0:
        return Reason.NO_POSITION
    if margin.value(account, markets) < margin.requirement(account, markets, initial=False):
        return Reason.UNDER_MARGIN
    closed, taken = transfer_position(account, fund, market, abs(held))
    if not in_bounds(closed, taken):
        return Reason.OVERFLOW
    moves = {tx.account: (account, closed), INSURANCE_ACCOUNT: (fund, taken)}
    return transfer_effects(state, market, moves, paid + fund_paid)


def apply_sweep_fees(state: State, tx: SweepFees, context: Context) -> Outcome:
    """Move `amount` of the fee pool into the insurance fund's collateral (account 0),
    whose owner withdraws it like any account: the way trading fees leave the rollup.
    Checks: the fund exists (UNKNOWN_ACCOUNT); amount > 0 (BAD_FIELD); amount <= the fee
    pool (INSUFFICIENT_COLLATERAL); the fund's collateral in bounds (OVERFLOW)."""
    fund = known_account(state, INSURANCE_ACCOUNT)
    if fund is None:
        return Reason.UNKNOWN_ACCOUNT
    g = state.globals
    if tx.amount == 0:
        return Reason.BAD_FIELD
    if tx.amount > g.fee_pool:
        return Reason.INSUFFICIENT_COLLATERAL
    fund = with_collateral(fund, fund.collateral + tx.amount)
    if not in_bounds(fund):
        return Reason.OVERFLOW
    return Effects(accounts={INSURANCE_ACCOUNT: fund}, globals=g._replace(fee_pool=g.fee_pool - tx.amount))


RULES = {
    AdvanceTime: apply_advance_time,
    Deposit: apply_deposit,
    Withdraw: apply_withdraw,
    Trade: apply_trade,
    Fill: apply_fill,
    Cancel: apply_cancel,
    OracleUpdate: apply_oracle_update,
    RiskUpdate: apply_risk_update,
    SettleSeries: apply_settle_series,
    SettlePosition: apply_settle_position,
    FundingTick: apply_funding_tick,
    Liquidate: apply_liquidate,
    Deleverage: apply_deleverage,
    ForcedRequest: apply_forced_request,
    SweepFees: apply_sweep_fees,
}
"""The rule for each transaction type."""
