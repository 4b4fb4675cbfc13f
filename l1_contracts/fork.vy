# pragma version ~=0.4.3
"""
@title Pieces shared by the account and risk rules (a module)
@notice The helpers of rollup/stf/fork.py that more than one rule uses, rule for rule:
        known_account, priced_market, in_bounds, withdraw_effects (Withdraw and a forced
        withdrawal), transfer_position, deficit_share and transfer_effects (Liquidate,
        Deleverage and a forced close). Arithmetic is on int256: every intermediate of an
        honest pre-state and a decodable transaction fits (sizes < 2**64, prices < 2**64,
        collateral and funding indexes < 2**128), so nothing reverts where the STF
        returns a reason.
        Named after rollup/stf/fork.py, which holds these helpers; the rules that call them
        (fork.py's apply_*) are the Verify* contracts'.
"""
import margin
import state
import transactions
import witness

MAX_COLLATERAL: constant(int256) = 2**100 - 1
MAX_TOTAL: constant(uint256) = 2**100 - 1
MAX_SIZE: constant(int256) = 2**40 - 1
INSURANCE_ACCOUNT: constant(uint256) = 0


@internal
@pure
def in_bounds(a: state.Account) -> bool:
    """At most MAX_POSITIONS positions, |collateral| <= MAX_COLLATERAL and every
    |size| <= MAX_SIZE (else OVERFLOW)."""
    if a.count > state.MAX_POSITIONS or abs(a.collateral) > MAX_COLLATERAL:
        return False
    for i: uint256 in range(a.count, bound=state.MAX_POSITIONS):
        if abs(a.positions[i].size) > MAX_SIZE:
            return False
    return True


@internal
@pure
def known_account(accounts_root: bytes32, o: witness.Opened, account_id: uint256) -> (state.Account, bool):
    """(the account, whether it is known): its id is in the tree (an id outside opens
    nothing and is not looked at) and it has an owner."""
    if account_id >= witness.ACCOUNT_CAPACITY:
        return empty(state.Account), False
    a: state.Account = witness.open_account(accounts_root, o, account_id)
    return a, a.owner != empty(address)


@internal
@pure
def priced_market(candidate: state.Market, listed: uint256, market_id: uint256) -> (state.Market, uint8):
    """(the market, OK) if it exists (UNKNOWN_MARKET) and has a price (NO_PRICE);
    `candidate`: the market the step names, as witness.open_markets opened it (witness.market)."""
    m: state.Market = empty(state.Market)
    exists: bool = False
    m, exists = witness.market(candidate, listed, market_id)
    if not exists:
        return m, transactions.UNKNOWN_MARKET
    if m.oracle_price == 0:
        return m, transactions.NO_PRICE
    return m, transactions.OK


@internal
@view
def withdraw_effects(
    g: state.Globals, k: margin.Marks, account_id: uint256, account: state.Account, amount: uint256
) -> witness.Writes:
    """fork.withdraw_effects: settle funding; collateral - amount >= 0
    (INSUFFICIENT_COLLATERAL); the margin rule (UNDER_MARGIN); a free withdrawal leaf and
    total_withdrawn + amount <= MAX_COLLATERAL (OVERFLOW). Writes the account (as "first"),
    the globals (count, total, funding pool) and the withdrawal record."""
    before: state.Account = empty(state.Account)
    payment: int256 = 0
    before, payment = margin.settle_funding(account, k)
    after: state.Account = before
    after.collateral = before.collateral - convert(amount, int256)
    if after.collateral < 0:
        return witness.refuse(transactions.INSUFFICIENT_COLLATERAL)
    if not margin.margin_ok(before, after, k):
        return witness.refuse(transactions.UNDER_MARGIN)
    if g.withdrawal_count >= witness.WITHDRAWAL_CAPACITY or g.total_withdrawn + amount > MAX_TOTAL:
        return witness.refuse(transactions.OVERFLOW)
    out: witness.Writes = witness.nothing(g)
    out.flags = witness.WRITE_FIRST | witness.WRITE_WITHDRAWAL
    out.first_id = account_id
    out.first = after
    out.globals.withdrawal_count = g.withdrawal_count + 1
    out.globals.total_withdrawn = g.total_withdrawn + amount
    out.globals.funding_pool = g.funding_pool + payment
    out.withdrawal = state.Withdrawal(account=account_id, owner=before.owner, amount=amount)
    return out


@internal
@pure
def transfer_position(
    seller_side: state.Account, buyer_side: state.Account, m: state.Market, size: int256
) -> (state.Account, state.Account):
    """fork.transfer_position: `size` lots of the seller side's position move to the
    buyer side at the oracle price; the seller side's size moves toward 0, collateral
    moves by size * price, both positions carry the market's funding index."""
    held: int256 = margin.size_of(seller_side, m.id)
    direction: int256 = -1
    if held > 0:
        direction = 1
    notional: int256 = size * convert(m.oracle_price, int256)
    reduced: state.Account = seller_side
    reduced.collateral = seller_side.collateral + direction * notional
    reduced = margin.with_position(reduced, m.id, held - direction * size, m.funding_index)
    taken: state.Account = buyer_side
    taken.collateral = buyer_side.collateral - direction * notional
    taken = margin.with_position(taken, m.id, margin.size_of(buyer_side, m.id) + direction * size, m.funding_index)
    return reduced, taken


@internal
@pure
def deficit_share(a: state.Account, k: margin.Marks, slice_notional: int256) -> int256:
    """fork.deficit_share: floor(-value * slice_notional / gross) (the account holds a
    position in a priced market, so gross > 0)."""
    return margin.floor_div(-margin.value(a, k) * slice_notional, margin.gross(a, k))


@internal
@pure
def transfer_effects(
    g: state.Globals, m: state.Market,
    first_id: uint256, first_before: state.Account, first_after: state.Account,
    second_id: uint256, second_before: state.Account, second_after: state.Account,
    funding_paid: int256,
) -> witness.Writes:
    """fork.transfer_effects: both accounts' new records (befores are the settled
    accounts), the market's open interest moved by each side's change of long size, and
    the funding settled on the way added to the funding pool."""
    open_interest: int256 = convert(m.open_interest, int256)
    open_interest += margin.long_part(margin.size_of(first_after, m.id)) - margin.long_part(margin.size_of(first_before, m.id))
    open_interest += margin.long_part(margin.size_of(second_after, m.id)) - margin.long_part(margin.size_of(second_before, m.id))
    out: witness.Writes = witness.nothing(g)
    out.flags = witness.WRITE_FIRST | witness.WRITE_SECOND | witness.WRITE_MARKET
    out.first_id = first_id
    out.first = first_after
    out.second_id = second_id
    out.second = second_after
    out.market = m
    out.market.open_interest = convert(open_interest, uint256)
    out.globals.funding_pool = g.funding_pool + funding_paid
    return out


@internal
@pure
def settlement_effects(g: state.Globals, account_id: uint256, account: state.Account, series: state.Market) -> witness.Writes:
    """fork.settlement_effects (SettlePosition, and a forced close of a settled series):
    a position to close (NO_POSITION); bounds (OVERFLOW); collateral moves by size * payoff
    (the series' mark since SettleSeries), the funding pool the other way, open interest
    less the long part."""
    held: int256 = margin.size_of(account, series.id)
    if held == 0:
        return witness.refuse(transactions.NO_POSITION)
    paid: int256 = held * convert(series.oracle_price, int256)
    closed: state.Account = margin.with_position(account, series.id, 0, 0)
    closed.collateral += paid
    if not self.in_bounds(closed):
        return witness.refuse(transactions.OVERFLOW)
    market: state.Market = series
    if held > 0:
        market.open_interest -= convert(held, uint256)
    out: witness.Writes = witness.nothing(g)
    out.globals.funding_pool = g.funding_pool - paid
    out.flags = witness.WRITE_FIRST | witness.WRITE_MARKET
    out.first_id = account_id
    out.first = closed
    out.market = market
    return out
