# pragma version ~=0.4.3
"""
@title One-step verifier: the risk rules (Liquidate, Deleverage)
@notice Re-executes one transaction under rollup/stf/fork.py's rules, with its checks in
        the same order, and returns (reason, applied, post-state root). Stateless: `step`
        checks the shape of the transaction's bytes and the witness against the pre-state
        root first (witness.vy `begin`). Liquidate: "first" is the account, "second" the insurance
        fund (account 0). Deleverage: "first" is the deleveragee, "second" the deleverager,
        and the fund's value is read from the witness's "fund".
"""
import fork
import margin
import state
import transactions
import witness

PPM: constant(int256) = 10**6


@external
@view
def step(data: Bytes[transactions.MAX_TX], pre_root: bytes32, ctx: witness.Context, w: witness.Witness) -> (uint8, bool, bytes32):
    """Verifier.vy `step`, for the transaction types of this contract, in the context
    `ctx` the router gives (`route`): the Rollup asks the router, then calls this."""
    reason: uint8 = transactions.shape(data)
    if reason != transactions.OK:
        return reason, False, pre_root
    named: uint256 = transactions.u8(data, 9)  # Deleverage's market; Liquidate's at byte 5
    if transactions.u8(data, 0) == transactions.LIQUIDATE:
        named = transactions.u8(data, 5)
    market: state.Market = empty(state.Market)  # the market the transaction names
    k: margin.Marks = empty(margin.Marks)
    market_leaves: bytes32[witness.MAX_MARKETS] = empty(bytes32[witness.MAX_MARKETS])
    market, k, market_leaves = witness.open_markets(w.markets, w.listed, w.hashes, named, ctx.portfolio)
    reason = witness.begin(data, pre_root, ctx.timestamp, market_leaves, w.globals, w.accounts_root, w.withdrawals_root)
    if reason != transactions.OK:
        return reason, False, pre_root
    tag: uint256 = transactions.u8(data, 0)
    writes: witness.Writes = empty(witness.Writes)
    if tag == transactions.LIQUIDATE:
        writes = self._liquidate(data, w.accounts_root, w.first, w.second, w.globals, k, market, w.listed)
    else:
        assert tag == transactions.DELEVERAGE, "verifier: not a risk rule"
        assert len(w.fund) == 1, "witness: no fund"
        writes = self._deleverage(data, w.accounts_root, w.first, w.second, w.fund[0], w.globals, k, market, w.listed)
    return witness.finish(
        w.first, w.second, w.accounts_root, w.withdrawals_root, w.globals.withdrawal_count, w.withdrawal_proof,
        writes, market_leaves, pre_root,
    )


@internal
@view
def _liquidate(
    data: Bytes[transactions.MAX_TX], accounts_root: bytes32, first: witness.Opened, second: witness.Opened,
    g: state.Globals, k: margin.Marks, candidate: state.Market, listed: uint256,
) -> witness.Writes:
    """apply_liquidate: the account exists and is not the fund (UNKNOWN_ACCOUNT,
    BAD_COUNTERPARTY); the market exists with a price (UNKNOWN_MARKET, NO_PRICE); after
    funding (the account's and the fund's) it has a position (NO_POSITION);
    0 < size <= |position| (BAD_FIELD, NOT_REDUCE_ONLY); value < maintenance requirement
    (NOT_LIQUIDATABLE). Then the slice moves to the fund at the oracle price, and if
    value >= 0 the account pays the fund min(ceil(notional * penalty_ppm / PPM), value);
    if value < 0 the fund pays the slice's deficit share, at most the fund's value
    (INSURANCE_INSUFFICIENT). Bounds (OVERFLOW)."""
    account_id: uint256 = transactions.u32(data, 1)
    size: int256 = convert(transactions.u64(data, 6), int256)
    account: state.Account = empty(state.Account)
    known: bool = False
    account, known = fork.known_account(accounts_root, first, account_id)
    if not known:
        return witness.refuse(transactions.UNKNOWN_ACCOUNT)
    if account_id == fork.INSURANCE_ACCOUNT:
        return witness.refuse(transactions.BAD_COUNTERPARTY)
    m: state.Market = empty(state.Market)
    reason: uint8 = transactions.OK
    m, reason = fork.priced_market(candidate, listed, transactions.u8(data, 5))
    if reason != transactions.OK:
        return witness.refuse(reason)
    paid: int256 = 0
    account, paid = margin.settle_funding(account, k)
    fund: state.Account = witness.open_account(accounts_root, second, fork.INSURANCE_ACCOUNT)
    fund_paid: int256 = 0
    fund, fund_paid = margin.settle_funding(fund, k)
    held: int256 = margin.size_of(account, m.id)
    if held == 0:
        return witness.refuse(transactions.NO_POSITION)
    if size == 0:
        return witness.refuse(transactions.BAD_FIELD)
    if size > abs(held):
        return witness.refuse(transactions.NOT_REDUCE_ONLY)
    value: int256 = margin.value(account, k)
    if value >= margin.requirement(account, k, False):
        return witness.refuse(transactions.NOT_LIQUIDATABLE)
    notional: int256 = size * convert(m.oracle_price, int256)
    transfer: int256 = 0
    if value >= 0:
        transfer = -min(margin.ceil_div(notional * convert(m.liquidation_penalty_ppm, int256), PPM), value)
    else:
        transfer = fork.deficit_share(account, k, notional)
        if transfer > margin.value(fund, k):
            return witness.refuse(transactions.INSURANCE_INSUFFICIENT)
    closed: state.Account = empty(state.Account)
    taken: state.Account = empty(state.Account)
    closed, taken = fork.transfer_position(account, fund, m, size)
    closed.collateral += transfer
    taken.collateral -= transfer
    if not fork.in_bounds(closed) or not fork.in_bounds(taken):
        return witness.refuse(transactions.OVERFLOW)
    return fork.transfer_effects(
        g, m, account_id, account, closed, fork.INSURANCE_ACCOUNT, fund, taken, paid + fund_paid
    )


@internal
@pure
def _deleverage(
    data: Bytes[transactions.MAX_TX], accounts_root: bytes32, first: witness.Opened, second: witness.Opened,
    insurance: witness.Opened, g: state.Globals, k: margin.Marks, candidate: state.Market, listed: uint256,
) -> witness.Writes:
    """apply_deleverage: both accounts exist (UNKNOWN_ACCOUNT) and differ
    (BAD_COUNTERPARTY); the market exists with a price (UNKNOWN_MARKET, NO_PRICE); after
    funding the deleveragee has a position (NO_POSITION) and the deleverager an opposite
    one (BAD_COUNTERPARTY); 0 < size <= both |positions| (BAD_FIELD, NOT_REDUCE_ONLY); the
    deleveragee's value < 0 and its slice's deficit share exceeds the insurance fund's
    value (NOT_DELEVERAGEABLE). Then the slice moves at the oracle price and the
    deleverager pays the deficit share; its value must stay >= 0 (BAD_COUNTERPARTY).
    Bounds (OVERFLOW). The fund (the witness's "fund") is read, not written."""
    bankrupt_id: uint256 = transactions.u32(data, 1)
    taker_id: uint256 = transactions.u32(data, 5)
    size: int256 = convert(transactions.u64(data, 10), int256)
    bankrupt: state.Account = empty(state.Account)
    taker: state.Account = empty(state.Account)
    known: bool = False
    bankrupt, known = fork.known_account(accounts_root, first, bankrupt_id)
    if not known:
        return witness.refuse(transactions.UNKNOWN_ACCOUNT)
    taker, known = fork.known_account(accounts_root, second, taker_id)
    if not known:
        return witness.refuse(transactions.UNKNOWN_ACCOUNT)
    if bankrupt_id == taker_id:
        return witness.refuse(transactions.BAD_COUNTERPARTY)
    m: state.Market = empty(state.Market)
    reason: uint8 = transactions.OK
    m, reason = fork.priced_market(candidate, listed, transactions.u8(data, 9))
    if reason != transactions.OK:
        return witness.refuse(reason)
    paid_a: int256 = 0
    paid_b: int256 = 0
    bankrupt, paid_a = margin.settle_funding(bankrupt, k)
    taker, paid_b = margin.settle_funding(taker, k)
    held: int256 = margin.size_of(bankrupt, m.id)
    if held == 0:
        return witness.refuse(transactions.NO_POSITION)
    opposite: int256 = margin.size_of(taker, m.id)
    if opposite == 0 or (opposite > 0) == (held > 0):
        return witness.refuse(transactions.BAD_COUNTERPARTY)
    if size == 0:
        return witness.refuse(transactions.BAD_FIELD)
    if size > abs(held) or size > abs(opposite):
        return witness.refuse(transactions.NOT_REDUCE_ONLY)
    if margin.value(bankrupt, k) >= 0:
        return witness.refuse(transactions.NOT_DELEVERAGEABLE)
    share: int256 = fork.deficit_share(bankrupt, k, size * convert(m.oracle_price, int256))
    fund: state.Account = witness.open_account(accounts_root, insurance, fork.INSURANCE_ACCOUNT)
    fund_paid: int256 = 0
    fund, fund_paid = margin.settle_funding(fund, k)
    if share <= margin.value(fund, k):
        return witness.refuse(transactions.NOT_DELEVERAGEABLE)
    closed: state.Account = empty(state.Account)
    taken: state.Account = empty(state.Account)
    closed, taken = fork.transfer_position(bankrupt, taker, m, size)
    closed.collateral += share
    taken.collateral -= share
    if margin.value(taken, k) < 0:
        return witness.refuse(transactions.BAD_COUNTERPARTY)
    if not fork.in_bounds(closed) or not fork.in_bounds(taken):
        return witness.refuse(transactions.OVERFLOW)
    return fork.transfer_effects(g, m, bankrupt_id, bankrupt, closed, taker_id, taker, taken, paid_a + paid_b)
