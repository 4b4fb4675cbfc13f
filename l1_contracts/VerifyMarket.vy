# pragma version ~=0.4.3
"""
@title One-step verifier: the market and clock rules (OracleUpdate, RiskUpdate, SettleSeries, FundingTick, AdvanceTime) and Deposit
@notice Re-executes one transaction under rollup/stf/fork.py's rules, with its checks in
        the same order, and returns (reason, applied, post-state root). Stateless: `step`
        checks the shape of the transaction's bytes and the witness against the pre-state
        root first (witness.vy `begin`). Deposit is here because it needs no margin rule
        and this contract has room under the 24 KB code limit: the deposit queue's heads
        are read from the inbox, and the account is the witness's "first".
"""
import fork
import margin
import signing
import state
import transactions
import witness

PPM: constant(uint256) = 10**6
FUNDING_SCALE: constant(uint256) = 10**9
SECONDS_PER_HOUR: constant(uint256) = 3600
MAX_PRICE: constant(uint256) = 2**40 - 1
MAX_FUNDING_INDEX: constant(int256) = 2**100 - 1
MAX_FUNDING_DELTA: constant(int256) = 2**64 - 1

interface Inbox:
    def deposit_head(index: uint256) -> bytes32: view


@external
@view
def step(data: Bytes[transactions.MAX_TX], pre_root: bytes32, ctx: witness.Context, w: witness.Witness) -> (uint8, bool, bytes32):
    """Verifier.vy `step`, for the transaction types of this contract, in the context
    `ctx` the router gives (`route`): the Rollup asks the router, then calls this."""
    reason: uint8 = transactions.shape(data)
    if reason != transactions.OK:
        return reason, False, pre_root
    market: state.Market = empty(state.Market)  # the market the transaction names
    k: margin.Marks = empty(margin.Marks)
    market_leaves: bytes32[witness.MAX_MARKETS] = empty(bytes32[witness.MAX_MARKETS])
    market, k, market_leaves = witness.open_markets(w.markets, w.listed, w.hashes, transactions.u8(data, 1), ctx.portfolio)
    reason = witness.begin(data, pre_root, ctx.timestamp, market_leaves, w.globals, w.accounts_root, w.withdrawals_root)
    if reason != transactions.OK:
        return reason, False, pre_root
    tag: uint256 = transactions.u8(data, 0)
    writes: witness.Writes = empty(witness.Writes)
    # the market rules name their market at byte 1 (`begin` opens it)
    if tag == transactions.ADVANCE_TIME:
        writes = self._advance_time(data, ctx.timestamp, w.globals)
    elif tag == transactions.DEPOSIT:
        writes = self._deposit(data, ctx.deposit_count, ctx.inbox, w.accounts_root, w.first, w.globals)
    elif tag == transactions.FUNDING_TICK:
        writes = self._funding_tick(data, w.globals, market, w.listed)
    else:
        assert tag == transactions.ORACLE_UPDATE or tag == transactions.RISK_UPDATE or tag == transactions.SETTLE_SERIES, "verifier: not a market rule"
        writes = self._oracle_update(data, ctx, w.globals, market, w.listed)
    return witness.finish(
        w.first, w.second, w.accounts_root, w.withdrawals_root, w.globals.withdrawal_count, w.withdrawal_proof,
        writes, market_leaves, pre_root,
    )


@internal
@view
def _deposit(
    data: Bytes[transactions.MAX_TX], queued: uint256, inbox: address, accounts_root: bytes32, first: witness.Opened,
    g: state.Globals,
) -> witness.Writes:
    """apply_deposit: index = deposits consumed (DEPOSIT_OUT_OF_ORDER); the entry
    extends the chain to the L1 queue's head after it, as of the batch
    (DEPOSIT_NOT_ON_L1); account id in range and owner nonzero (BAD_FIELD); the account
    is new or has this owner (OWNER_MISMATCH); bounds, total_deposited included
    (OVERFLOW). A new account is created with the deposit's owner."""
    index: uint256 = transactions.u64(data, 1)
    account_id: uint256 = transactions.u32(data, 9)
    owner: address = transactions.addr(data, 13)
    amount: uint256 = transactions.u64(data, 33)
    if index != g.deposit_count:
        return witness.refuse(transactions.DEPOSIT_OUT_OF_ORDER)
    if index + 1 > queued:
        return witness.refuse(transactions.DEPOSIT_NOT_ON_L1)
    head: bytes32 = keccak256(concat(g.deposit_head, abi_encode(index, account_id, owner, amount, transactions.u64(data, 41))))
    if head != staticcall Inbox(inbox).deposit_head(index + 1):
        return witness.refuse(transactions.DEPOSIT_NOT_ON_L1)
    if account_id >= witness.ACCOUNT_CAPACITY or owner == empty(address):
        return witness.refuse(transactions.BAD_FIELD)
    account: state.Account = witness.open_account(accounts_root, first, account_id)
    if account.owner == empty(address):
        account.owner = owner
    elif account.owner != owner:
        return witness.refuse(transactions.OWNER_MISMATCH)
    account.collateral += convert(amount, int256)
    total: uint256 = g.total_deposited + amount
    if not fork.in_bounds(account) or total > fork.MAX_TOTAL:
        return witness.refuse(transactions.OVERFLOW)
    out: witness.Writes = witness.nothing(g)
    out.flags = witness.WRITE_FIRST
    out.first_id = account_id
    out.first = account
    out.globals.deposit_count = g.deposit_count + 1
    out.globals.deposit_head = head
    out.globals.total_deposited = total
    return out


@internal
@pure
def _advance_time(data: Bytes[transactions.MAX_TX], batch_time: uint256, g: state.Globals) -> witness.Writes:
    """apply_advance_time: timestamp > time (TIME_NOT_LATER); timestamp <= the batch's
    timestamp (TIME_AFTER_BATCH)."""
    timestamp: uint256 = transactions.u64(data, 1)
    if timestamp <= g.time:
        return witness.refuse(transactions.TIME_NOT_LATER)
    if timestamp > batch_time:
        return witness.refuse(transactions.TIME_AFTER_BATCH)
    out: witness.Writes = witness.nothing(g)
    out.globals.time = timestamp
    return out


@internal
@pure
def _funding_tick(data: Bytes[transactions.MAX_TX], g: state.Globals, candidate: state.Market, listed: uint256) -> witness.Writes:
    """apply_funding_tick: |delta| <= MAX_FUNDING_DELTA (BAD_FIELD, a decoding check); the
    market exists, is a perpetual and has a price (UNKNOWN_MARKET, WRONG_PRODUCT, NO_PRICE); elapsed > 0 (FUNDING_NO_TIME);
    |delta| * PPM * 3600 <= max rate * price * elapsed * FUNDING_SCALE (FUNDING_TOO_LARGE);
    |index| <= MAX_FUNDING_INDEX (OVERFLOW)."""
    delta: int256 = transactions.i128(data, 2)
    if abs(delta) > MAX_FUNDING_DELTA:
        return witness.refuse(transactions.BAD_FIELD)
    market: state.Market = empty(state.Market)
    exists: bool = False
    market, exists = witness.market(candidate, listed, transactions.u8(data, 1))
    if not exists:
        return witness.refuse(transactions.UNKNOWN_MARKET)
    if market.product != state.PERPETUAL:
        return witness.refuse(transactions.WRONG_PRODUCT)
    if market.oracle_price == 0:
        return witness.refuse(transactions.NO_PRICE)
    if g.time <= market.funding_time:
        return witness.refuse(transactions.FUNDING_NO_TIME)
    elapsed: uint256 = g.time - market.funding_time
    cap: uint256 = market.max_funding_rate_ppm * market.oracle_price * elapsed * FUNDING_SCALE
    if convert(abs(delta), uint256) * PPM * SECONDS_PER_HOUR > cap:
        return witness.refuse(transactions.FUNDING_TOO_LARGE)
    index: int256 = market.funding_index + delta
    if abs(index) > MAX_FUNDING_INDEX:
        return witness.refuse(transactions.OVERFLOW)
    market.funding_index = index
    market.funding_time = g.time
    out: witness.Writes = witness.nothing(g)
    out.flags = witness.WRITE_MARKET
    out.market = market
    return out


@internal
@view
def _oracle_update(data: Bytes[transactions.MAX_TX], ctx: witness.Context, g: state.Globals, candidate: state.Market, listed: uint256) -> witness.Writes:
    """apply_oracle_update (a perpetual's price), apply_risk_update (a series' mark and
    Greeks) and apply_settle_series (a series' settlement price), with check_reports
    between them, check for check. A RiskUpdate's report is an OracleUpdate's followed by
    its Greeks, 20 bytes laid out as the record's risk word."""
    tag: uint256 = transactions.u8(data, 0)
    risk: bool = tag == transactions.RISK_UPDATE
    settle: bool = tag == transactions.SETTLE_SERIES
    market_id: uint256 = transactions.u8(data, 1)
    market: state.Market = empty(state.Market)
    exists: bool = False
    market, exists = witness.market(candidate, listed, market_id)
    if not exists:
        return witness.refuse(transactions.UNKNOWN_MARKET)
    if (market.product == state.PERPETUAL) != (tag == transactions.ORACLE_UPDATE):
        return witness.refuse(transactions.WRONG_PRODUCT)
    expiry: uint256 = state.expiry_of(market)
    if settle and state.settlement_of(market) != 0:
        return witness.refuse(transactions.ALREADY_SETTLED)
    count: uint256 = transactions.u8(data, 10)
    if count < ctx.oracle_quorum:
        return witness.refuse(transactions.ORACLE_QUORUM)
    timestamp: uint256 = transactions.u64(data, 2)
    if settle:
        if timestamp != expiry:
            return witness.refuse(transactions.BAD_FIELD)
        if g.time < expiry:
            return witness.refuse(transactions.NOT_EXPIRED)
    else:
        if timestamp > g.time or timestamp + market.oracle_staleness < g.time:
            return witness.refuse(transactions.ORACLE_STALE)
        if timestamp <= market.oracle_time:
            return witness.refuse(transactions.ORACLE_NOT_NEWER)
    stride: uint256 = transactions.REPORT_LENGTH
    if risk:
        if timestamp >= expiry:
            return witness.refuse(transactions.SERIES_EXPIRED)
        stride = transactions.RISK_REPORT_LENGTH
    # the Greeks of each report, sign-extended (fork.greeks_in_range: a call's delta in
    # [0, PPM], a put's in [-PPM, 0], gamma and vega >= 0, read as u64 below 2**63)
    deltas: int256[transactions.MAX_REPORTS] = empty(int256[transactions.MAX_REPORTS])
    gammas: int256[transactions.MAX_REPORTS] = empty(int256[transactions.MAX_REPORTS])
    vegas: int256[transactions.MAX_REPORTS] = empty(int256[transactions.MAX_REPORTS])
    low: int256 = -convert(PPM, int256)
    high: int256 = 0
    if market.product == state.CALL:
        low = 0
        high = convert(PPM, int256)
    for i: uint256 in range(count, bound=transactions.MAX_REPORTS):
        at: uint256 = 11 + stride * i
        price: uint256 = transactions.u64(data, at + 1)
        if price == 0 or price > MAX_PRICE or transactions.u8(data, at) >= ctx.oracle_count:
            return witness.refuse(transactions.BAD_FIELD)
        if risk:
            at += transactions.REPORT_LENGTH
            deltas[i] = transactions.i32(data, at)
            gamma: uint256 = transactions.u64(data, at + 4)
            vega: uint256 = transactions.u64(data, at + 12)
            if deltas[i] < low or deltas[i] > high or gamma >= 2**63 or vega >= 2**63:
                return witness.refuse(transactions.BAD_FIELD)
            gammas[i] = convert(gamma, int256)
            vegas[i] = convert(vega, int256)
    for i: uint256 in range(1, count, bound=transactions.MAX_REPORTS):
        at: uint256 = 11 + stride * i
        if transactions.u64(data, at + 1) < transactions.u64(data, at + 1 - stride):
            return witness.refuse(transactions.ORACLE_UNSORTED)
    seen: uint256 = 0
    for i: uint256 in range(count, bound=transactions.MAX_REPORTS):
        bit: uint256 = 1 << transactions.u8(data, 11 + stride * i)
        if seen & bit != 0:
            return witness.refuse(transactions.ORACLE_QUORUM)
        seen |= bit
    for i: uint256 in range(count, bound=transactions.MAX_REPORTS):
        at: uint256 = 11 + stride * i
        digest: bytes32 = empty(bytes32)
        if risk:
            digest = keccak256(abi_encode(
                signing.RISK_REPORT_TYPEHASH, market_id, transactions.u64(data, at + 1), deltas[i], gammas[i], vegas[i], timestamp
            ))
        else:
            typehash: bytes32 = signing.ORACLE_PRICE_TYPEHASH
            if settle:
                typehash = signing.SETTLEMENT_TYPEHASH
            digest = keccak256(abi_encode(typehash, market_id, transactions.u64(data, at + 1), timestamp))
        signer: address = signing.recover(signing.typed_digest(ctx.domain, digest), transactions.signature(data, at + 9))
        if signer == empty(address):
            return witness.refuse(transactions.BAD_SIGNATURE)
        if signer != ctx.oracle_signers[transactions.u8(data, at)]:
            return witness.refuse(transactions.WRONG_SIGNER)
    median: uint256 = transactions.u64(data, 11 + stride * ((count - 1) // 2) + 1)
    out: witness.Writes = witness.nothing(g)
    out.flags = witness.WRITE_MARKET
    market.oracle_time = timestamp
    if settle:
        # fork.payoff per lot becomes the mark, the Greeks 0; the median unclamped
        strike: uint256 = state.strike_of(market)
        market.oracle_price = 0
        if market.product == state.CALL and median > strike:
            market.oracle_price = median - strike
        elif market.product == state.PUT and strike > median:
            market.oracle_price = strike - median
        market.terms |= median
        market.risk = 0
        out.market = market
        return out
    old: uint256 = market.oracle_price
    price: uint256 = median
    if old != 0:
        # fork.clamp: within floor(old * max_price_move_ppm / PPM) of the current price
        bound: uint256 = old * market.max_price_move_ppm // PPM
        if median > old + bound:
            price = old + bound
        elif median + bound < old:
            price = old - bound
    elif not risk:
        market.funding_time = g.time  # a perpetual's first price starts its funding clock
    market.oracle_price = price
    if risk:
        # fork.lower_median of each Greek, packed back into the risk word (delta's two's complement)
        delta: int256 = self._lower_median(deltas, count)
        market.risk = (
            (convert(delta + 2**32, uint256) & (2**32 - 1)) << 128
            | convert(self._lower_median(gammas, count), uint256) << 64
            | convert(self._lower_median(vegas, count), uint256)
        )
    out.market = market
    return out


@internal
@pure
def _lower_median(values: int256[transactions.MAX_REPORTS], count: uint256) -> int256:
    """fork.lower_median: the ((count-1)//2)-th smallest of values[:count], found as the
    value with at most that many smaller and more than that many smaller or equal."""
    mid: uint256 = (count - 1) // 2
    for i: uint256 in range(count, bound=transactions.MAX_REPORTS):
        below: uint256 = 0
        equal: uint256 = 0
        for j: uint256 in range(count, bound=transactions.MAX_REPORTS):
            if values[j] < values[i]:
                below += 1
            elif values[j] == values[i]:
                equal += 1
        if below <= mid and mid < below + equal:
            return values[i]
    raise "unreachable"
