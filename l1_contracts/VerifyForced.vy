# pragma version ~=0.4.3
"""
@title One-step verifier: the forced queue's rule (ForcedRequest)
@notice Re-executes one transaction under rollup/stf/fork.py's rules, with its checks in
        the same order, and returns (reason, applied, post-state root). Stateless: `step`
        checks the shape of the transaction's bytes and the witness against the pre-state
        root first (witness.vy `begin`). The forced queue's heads are read from the inbox; the
        account the request names is the witness's "first", the insurance fund (account 0)
        its "second". Alone in its contract: with the margin rules it needs, it nearly
        fills the 24 KB code limit.
"""
import fork
import margin
import signing
import state
import transactions
import witness

interface Inbox:
    def forced_head(index: uint256) -> bytes32: view

FORCED_WITHDRAW: constant(uint256) = 0
FORCED_CLOSE: constant(uint256) = 1


@external
@view
def step(data: Bytes[transactions.MAX_TX], pre_root: bytes32, ctx: witness.Context, w: witness.Witness) -> (uint8, bool, bytes32):
    """Verifier.vy `step`, for the transaction types of this contract, in the context
    `ctx` the router gives (`route`): the Rollup asks the router, then calls this.
    After witness.vy `begin`, apply_forced_request: kind 0 or 1 (BAD_FIELD, a decoding
    check); index = requests consumed (FORCED_OUT_OF_ORDER); the entry extends the chain
    to the L1 queue's head after it (FORCED_NOT_ON_L1). From there the entry is consumed
    whatever its action's fate (fork.forced_action, below): a failed action leaves all but
    the cursor unchanged and its reason is returned with applied = True; a successful
    one's writes carry the cursor move too."""
    reason: uint8 = transactions.shape(data)
    if reason != transactions.OK:
        return reason, False, pre_root
    market: state.Market = empty(state.Market)  # the market the transaction names
    k: margin.Marks = empty(margin.Marks)
    market_leaves: bytes32[witness.MAX_MARKETS] = empty(bytes32[witness.MAX_MARKETS])
    market, k, market_leaves = witness.open_markets(w.markets, w.listed, w.hashes, transactions.u8(data, 34), ctx.portfolio)
    reason = witness.begin(data, pre_root, ctx.timestamp, market_leaves, w.globals, w.accounts_root, w.withdrawals_root)
    if reason != transactions.OK:
        return reason, False, pre_root
    assert transactions.u8(data, 0) == transactions.FORCED_REQUEST, "verifier: not a forced request"
    # apply_forced_request, here rather than in a function of its own: a frame fewer under
    # the decoded witness (Vyper places a function's frame above its largest callee's)
    g: state.Globals = w.globals
    kind: uint256 = transactions.u8(data, 9)
    if kind != FORCED_WITHDRAW and kind != FORCED_CLOSE:
        return transactions.BAD_FIELD, False, pre_root
    index: uint256 = transactions.u64(data, 1)
    if index != g.forced_count:
        return transactions.FORCED_OUT_OF_ORDER, False, pre_root
    if index + 1 > ctx.forced_count:
        return transactions.FORCED_NOT_ON_L1, False, pre_root
    account_id: uint256 = transactions.u32(data, 10)
    requester: address = transactions.addr(data, 14)
    amount: uint256 = transactions.u64(data, 35)
    head: bytes32 = keccak256(concat(g.forced_head, abi_encode(
        index, kind, account_id, requester, transactions.u8(data, 34), amount, transactions.u64(data, 43)
    )))
    if head != staticcall Inbox(ctx.inbox).forced_head(index + 1):
        return transactions.FORCED_NOT_ON_L1, False, pre_root
    # from here the entry is consumed whatever its action's fate
    # fork.forced_action: the account exists (UNKNOWN_ACCOUNT) and the requester owns it
    # (WRONG_SIGNER); then a withdrawal: amount > 0 (BAD_FIELD), then withdraw_effects;
    # or a close (`_forced_close`). Each action called from here: the frame under the
    # decoded witness is the larger of theirs, not their sum
    account: state.Account = empty(state.Account)
    known: bool = False
    account, known = fork.known_account(w.accounts_root, w.first, account_id)
    out: witness.Writes = empty(witness.Writes)
    if not known:
        reason = transactions.UNKNOWN_ACCOUNT
    elif requester != account.owner:
        reason = transactions.WRONG_SIGNER
    elif kind == FORCED_WITHDRAW:
        reason = transactions.BAD_FIELD
        if amount != 0:
            out = fork.withdraw_effects(g, k, account_id, account, amount)
            reason = out.reason
    else:
        out = self._forced_close(data, account_id, account, w.accounts_root, w.second, g, k, market, w.listed)
        reason = out.reason
    if reason != transactions.OK:
        out = witness.nothing(g)
        out.reason = reason
    out.applied = True
    out.globals.forced_count = index + 1
    out.globals.forced_head = head
    return witness.finish(
        w.first, w.second, w.accounts_root, w.withdrawals_root, w.globals.withdrawal_count, w.withdrawal_proof,
        out, market_leaves, pre_root,
    )


@internal
@view
def _forced_close(
    data: Bytes[transactions.MAX_TX], account_id: uint256, account: state.Account, accounts_root: bytes32,
    second: witness.Opened, g: state.Globals, k: margin.Marks, candidate: state.Market, listed: uint256,
) -> witness.Writes:
    """fork.forced_action's close of `account` (known, and the requester's): the account is
    not the fund (UNKNOWN_ACCOUNT); the market exists with a price (UNKNOWN_MARKET,
    NO_PRICE); after funding (the account's and the fund's) it has a position
    (NO_POSITION) and is at or above maintenance (UNDER_MARGIN); the whole position moves
    to the fund (account 0, "second") at the oracle price (OVERFLOW on bounds); a settled
    series' position is closed at its payoff instead (fork.settlement_effects)."""
    if account_id == fork.INSURANCE_ACCOUNT:
        return witness.refuse(transactions.UNKNOWN_ACCOUNT)
    series: state.Market = empty(state.Market)
    listed_series: bool = False
    series, listed_series = witness.market(candidate, listed, transactions.u8(data, 34))
    if listed_series and series.product != state.PERPETUAL and state.settlement_of(series) != 0:
        return fork.settlement_effects(g, account_id, account, series)  # closed at its payoff
    m: state.Market = empty(state.Market)
    reason: uint8 = transactions.OK
    m, reason = fork.priced_market(candidate, listed, transactions.u8(data, 34))
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
    if margin.value(account, k) < margin.requirement(account, k, False):
        return witness.refuse(transactions.UNDER_MARGIN)
    closed: state.Account = empty(state.Account)
    taken: state.Account = empty(state.Account)
    closed, taken = fork.transfer_position(account, fund, m, abs(held))
    if not fork.in_bounds(closed) or not fork.in_bounds(taken):
        return witness.refuse(transactions.OVERFLOW)
    return fork.transfer_effects(
        g, m, account_id, account, closed, fork.INSURANCE_ACCOUNT, fund, taken, paid + fund_paid
    )
