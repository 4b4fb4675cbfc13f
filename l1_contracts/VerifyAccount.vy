# pragma version ~=0.4.3
"""
@title One-step verifier: the account rules (Withdraw, Cancel, SweepFees, SettlePosition)
@notice Re-executes one transaction under rollup/stf/fork.py's rules, with its checks in
        the same order, and returns (reason, applied, post-state root). Stateless: `step`
        checks the shape of the transaction's bytes and the witness against the pre-state
        root first (witness.vy `begin`). The account the transaction names is the witness's
        "first" (for SweepFees: the insurance fund, account 0).
"""
import fork
import margin
import signing
import state
import transactions
import witness

CANCELLED_HASH: constant(bytes32) = 0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff


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
    market, k, market_leaves = witness.open_markets(w.markets, w.listed, w.hashes, transactions.u8(data, 5), ctx.portfolio)
    reason = witness.begin(data, pre_root, ctx.timestamp, market_leaves, w.globals, w.accounts_root, w.withdrawals_root)
    if reason != transactions.OK:
        return reason, False, pre_root
    tag: uint256 = transactions.u8(data, 0)
    writes: witness.Writes = empty(witness.Writes)
    if tag == transactions.WITHDRAW:
        writes = self._withdraw(data, ctx.domain, w.accounts_root, w.first, w.globals, k)
    elif tag == transactions.CANCEL:
        writes = self._cancel(data, ctx.domain, w.accounts_root, w.first, w.globals)
    elif tag == transactions.SETTLE_POSITION:
        writes = self._settle_position(data, w.accounts_root, w.first, w.globals, market, w.listed)
    else:
        assert tag == transactions.SWEEP_FEES, "verifier: not an account rule"
        writes = self._sweep_fees(data, w.accounts_root, w.first, w.globals)
    return witness.finish(
        w.first, w.second, w.accounts_root, w.withdrawals_root, w.globals.withdrawal_count, w.withdrawal_proof,
        writes, market_leaves, pre_root,
    )


@internal
@pure
def _settle_position(
    data: Bytes[transactions.MAX_TX], accounts_root: bytes32, first: witness.Opened, g: state.Globals, candidate: state.Market,
    listed: uint256,
) -> witness.Writes:
    """apply_settle_position: the account exists (UNKNOWN_ACCOUNT); the market exists
    (UNKNOWN_MARKET), is a series (WRONG_PRODUCT) and is settled (NOT_SETTLED); a position
    in it (NO_POSITION); bounds (OVERFLOW): fork.settlement_effects."""
    account_id: uint256 = transactions.u32(data, 1)
    market_id: uint256 = transactions.u8(data, 5)
    account: state.Account = empty(state.Account)
    known: bool = False
    account, known = fork.known_account(accounts_root, first, account_id)
    if not known:
        return witness.refuse(transactions.UNKNOWN_ACCOUNT)
    market: state.Market = empty(state.Market)
    exists: bool = False
    market, exists = witness.market(candidate, listed, market_id)
    if not exists:
        return witness.refuse(transactions.UNKNOWN_MARKET)
    if market.product == state.PERPETUAL:
        return witness.refuse(transactions.WRONG_PRODUCT)
    if state.settlement_of(market) == 0:
        return witness.refuse(transactions.NOT_SETTLED)
    return fork.settlement_effects(g, account_id, account, market)


@internal
@pure
def _sweep_fees(data: Bytes[transactions.MAX_TX], accounts_root: bytes32, first: witness.Opened, g: state.Globals) -> witness.Writes:
    """apply_sweep_fees: the insurance fund exists (UNKNOWN_ACCOUNT); amount > 0
    (BAD_FIELD); amount <= the fee pool (INSUFFICIENT_COLLATERAL); the fund's collateral
    in bounds (OVERFLOW). The amount moves from the fee pool to the fund's collateral."""
    amount: uint256 = transactions.u64(data, 1)
    fund: state.Account = empty(state.Account)
    known: bool = False
    fund, known = fork.known_account(accounts_root, first, 0)
    if not known:
        return witness.refuse(transactions.UNKNOWN_ACCOUNT)
    if amount == 0:
        return witness.refuse(transactions.BAD_FIELD)
    if amount > g.fee_pool:
        return witness.refuse(transactions.INSUFFICIENT_COLLATERAL)
    fund.collateral += convert(amount, int256)
    if not fork.in_bounds(fund):
        return witness.refuse(transactions.OVERFLOW)
    out: witness.Writes = witness.nothing(g)
    out.flags = witness.WRITE_FIRST
    out.first_id = 0
    out.first = fund
    out.globals.fee_pool = g.fee_pool - amount
    return out


@internal
@view
def _withdraw(
    data: Bytes[transactions.MAX_TX], domain: bytes32, accounts_root: bytes32, first: witness.Opened, g: state.Globals,
    k: margin.Marks,
) -> witness.Writes:
    """apply_withdraw: the account exists (UNKNOWN_ACCOUNT); amount > 0 (BAD_FIELD); not
    expired (EXPIRED); signed by the owner over the EIP-712 Withdrawal (BAD_SIGNATURE,
    WRONG_SIGNER); nonce unused in its slot (NONCE_USED); then withdraw_effects. The
    slot records (nonce, the withdrawal's struct hash, amount)."""
    account_id: uint256 = transactions.u32(data, 1)
    amount: uint256 = transactions.u64(data, 5)
    nonce: uint256 = transactions.u64(data, 13)
    expiry: uint256 = transactions.u64(data, 21)
    account: state.Account = empty(state.Account)
    known: bool = False
    account, known = fork.known_account(accounts_root, first, account_id)
    if not known:
        return witness.refuse(transactions.UNKNOWN_ACCOUNT)
    if amount == 0:
        return witness.refuse(transactions.BAD_FIELD)
    if g.time > expiry:
        return witness.refuse(transactions.EXPIRED)
    digest: bytes32 = keccak256(abi_encode(signing.WITHDRAWAL_TYPEHASH, account_id, amount, nonce, expiry))
    signer: address = signing.recover(signing.typed_digest(domain, digest), transactions.signature(data, 29))
    if signer == empty(address):
        return witness.refuse(transactions.BAD_SIGNATURE)
    if signer != account.owner:
        return witness.refuse(transactions.WRONG_SIGNER)
    slot: state.Slot = witness.open_slot(first, nonce)
    if slot.order_hash != empty(bytes32) and slot.nonce >= nonce:
        return witness.refuse(transactions.NONCE_USED)
    out: witness.Writes = fork.withdraw_effects(g, k, account_id, account, amount)
    if out.reason != transactions.OK:
        return out
    out.flags |= witness.WRITE_FIRST_SLOT
    out.first_nonce = nonce
    out.first_slot = state.Slot(nonce=nonce, order_hash=digest, filled=amount)
    return out


@internal
@view
def _cancel(
    data: Bytes[transactions.MAX_TX], domain: bytes32, accounts_root: bytes32, first: witness.Opened, g: state.Globals
) -> witness.Writes:
    """apply_cancel: the account exists (UNKNOWN_ACCOUNT); signed by the owner over the
    EIP-712 Cancel (BAD_SIGNATURE, WRONG_SIGNER); not already cancelled
    (ALREADY_CANCELLED); the slot holds no higher nonce (NONCE_USED). The slot becomes
    (nonce, CANCELLED_HASH, its filled amount if it held this nonce, else 0)."""
    account_id: uint256 = transactions.u32(data, 1)
    nonce: uint256 = transactions.u64(data, 5)
    account: state.Account = empty(state.Account)
    known: bool = False
    account, known = fork.known_account(accounts_root, first, account_id)
    if not known:
        return witness.refuse(transactions.UNKNOWN_ACCOUNT)
    digest: bytes32 = keccak256(abi_encode(signing.CANCEL_TYPEHASH, account_id, nonce))
    signer: address = signing.recover(signing.typed_digest(domain, digest), transactions.signature(data, 13))
    if signer == empty(address):
        return witness.refuse(transactions.BAD_SIGNATURE)
    if signer != account.owner:
        return witness.refuse(transactions.WRONG_SIGNER)
    slot: state.Slot = witness.open_slot(first, nonce)
    if slot.nonce == nonce and slot.order_hash == CANCELLED_HASH:
        return witness.refuse(transactions.ALREADY_CANCELLED)
    if slot.order_hash != empty(bytes32) and slot.nonce > nonce:
        return witness.refuse(transactions.NONCE_USED)
    filled: uint256 = 0
    if slot.nonce == nonce:
        filled = slot.filled
    out: witness.Writes = witness.nothing(g)
    out.flags = witness.WRITE_FIRST_SLOT
    out.first_id = account_id
    out.first_nonce = nonce
    out.first_slot = state.Slot(nonce=nonce, order_hash=CANCELLED_HASH, filled=filled)
    return out
