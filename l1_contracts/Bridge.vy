# pragma version ~=0.4.3
"""
@title Collateral bridge: deposit queue, forced-request inbox, withdrawal claims, escape hatch
@notice Holds the collateral (any ERC-20) and is the rollup's L1 inbox. It is also the
        EIP-712 verifying contract of every L2 signature.
        - Deposits: the first deposit for an address registers it (account ids from 1; 0 is
          the insurance fund, registered to `insurance_owner`). Each deposit extends a hash
          chain that the STF consumes strictly in order:
              deposit_head[n+1] = keccak256(deposit_head[n] ++ abi_encode(n, account, owner, amount, timestamp))
        - Forced requests (withdraw collateral, close a position) from an account's owner,
          in a second chain the STF must consume within the rollup's inclusion delay:
              forced_head[n+1] = keccak256(forced_head[n] ++ abi_encode(n, kind, account, requester, market, amount, timestamp))
        - Withdrawals: a withdrawal record in a final state root is paid to its owner,
          exactly once, with a Merkle proof.
        - Escape: once the rollup is frozen, each account is paid its equity at the last
          final root (collateral after funding + sum(size * oracle price), at least 0),
          once, with a Merkle proof of the account; and every deposit the last final state
          had not yet consumed is paid back to its owner. Payments are capped by what the
          bridge holds (first come, first served); what could not be paid stays owed, and
          the same call pays the rest once the bridge holds it.
        - No deposit is taken once the rollup is frozen.
        A watcher rebuilds both queues from the `Deposited` and `ForcedRequested` events.
"""
from ethereum.ercs import IERC20
import margin
import merkle
import state
import witness

interface Rollup:
    def frozen() -> bool: view
    def final_root() -> bytes32: view
    def is_final(batch_id: uint256) -> bool: view
    def batches(batch_id: uint256) -> (uint256, bytes32, bytes32, uint256, uint256, uint256, uint256, address, uint256, uint8, bytes32): view

event Deposited:
    index: indexed(uint256)
    account: indexed(uint256)
    owner: indexed(address)
    amount: uint256
    timestamp: uint256
    head: bytes32

event Registered:
    account: indexed(uint256)
    owner: indexed(address)

event ForcedRequested:
    index: indexed(uint256)
    kind: uint256
    account: indexed(uint256)
    requester: indexed(address)
    market: uint256
    amount: uint256
    timestamp: uint256
    head: bytes32

event WithdrawalClaimed:
    index: indexed(uint256)
    account: indexed(uint256)
    owner: indexed(address)
    amount: uint256
    paid: uint256

event DepositReclaimed:
    index: indexed(uint256)
    owner: indexed(address)
    amount: uint256
    paid: uint256

event Escaped:
    account: indexed(uint256)
    owner: indexed(address)
    equity: int256
    paid: uint256

FORCED_WITHDRAW: constant(uint256) = 0
FORCED_CLOSE: constant(uint256) = 1
MAX_DEPOSIT: constant(uint256) = 10**15  # 1e9 units of a 6-decimal token; fits the STF's u64
MAX_ACCOUNTS: constant(uint256) = 4**10  # the L2 account tree's capacity
MAX_MARKETS: constant(uint256) = witness.MAX_MARKETS

token: public(immutable(IERC20))
insurance_owner: public(immutable(address))
deployer: immutable(address)
rollup: public(Rollup)

deposit_count: public(uint256)
deposit_head: public(HashMap[uint256, bytes32])
forced_count: public(uint256)
forced_head: public(HashMap[uint256, bytes32])
forced_time: public(HashMap[uint256, uint256])
account_of: public(HashMap[address, uint256])
owner_of: public(HashMap[uint256, address])
registered: public(HashMap[address, bool])
next_account: public(uint256)
# What has been paid so far: per withdrawal record, per escaped account, per reclaimed deposit.
claimed: public(HashMap[uint256, uint256])
escaped: public(HashMap[uint256, uint256])
reclaimed: public(HashMap[uint256, uint256])


@deploy
def __init__(token_: IERC20, insurance_owner_: address):
    token = token_
    insurance_owner = insurance_owner_
    deployer = msg.sender
    self.registered[insurance_owner_] = True
    self.account_of[insurance_owner_] = 0
    self.owner_of[0] = insurance_owner_
    self.next_account = 1
    log Registered(account=0, owner=insurance_owner_)


@external
def set_rollup(rollup_: Rollup):
    """Wire the rollup contract, once, by the deployer (the two contracts name each other)."""
    assert msg.sender == deployer, "bridge: not the deployer"
    assert self.rollup.address == empty(address), "bridge: rollup already set"
    self.rollup = rollup_


# ---------------------------------------------------------------------- deposits


@internal
def _account(owner: address) -> uint256:
    if self.registered[owner]:
        return self.account_of[owner]
    account: uint256 = self.next_account
    assert account < MAX_ACCOUNTS, "deposit: account tree full"
    self.registered[owner] = True
    self.account_of[owner] = account
    self.owner_of[account] = owner
    self.next_account = account + 1
    log Registered(account=account, owner=owner)
    return account


@external
@nonreentrant
def deposit(owner: address, amount: uint256) -> uint256:
    """
    @notice Lock `amount` of the collateral token for the L2 account of `owner`
            (registered on first use). The amount credited is what the bridge received.
    @return The deposit's index in the queue.
    """
    assert amount > 0, "deposit: zero amount"
    assert self.rollup.address != empty(address), "deposit: no rollup"
    assert not staticcall self.rollup.frozen(), "deposit: rollup frozen"
    assert amount <= MAX_DEPOSIT, "deposit: amount too large"
    assert owner != empty(address), "deposit: zero owner"
    before: uint256 = staticcall token.balanceOf(self)
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), "deposit: transfer failed"
    received: uint256 = staticcall token.balanceOf(self) - before
    assert received > 0, "deposit: nothing received"
    account: uint256 = self._account(owner)
    index: uint256 = self.deposit_count
    new_head: bytes32 = keccak256(
        concat(self.deposit_head[index], abi_encode(index, account, owner, received, block.timestamp))
    )
    self.deposit_head[index + 1] = new_head
    self.deposit_count = index + 1
    log Deposited(index=index, account=account, owner=owner, amount=received, timestamp=block.timestamp, head=new_head)
    return index


# ---------------------------------------------------------------------- forced requests


@internal
def _force(kind: uint256, market: uint256, amount: uint256) -> uint256:
    assert self.registered[msg.sender], "forced: no account"
    assert not staticcall self.rollup.frozen(), "forced: rollup frozen"
    account: uint256 = self.account_of[msg.sender]
    index: uint256 = self.forced_count
    new_head: bytes32 = keccak256(concat(
        self.forced_head[index],
        abi_encode(index, kind, account, msg.sender, market, amount, block.timestamp),
    ))
    self.forced_head[index + 1] = new_head
    self.forced_time[index] = block.timestamp
    self.forced_count = index + 1
    log ForcedRequested(
        index=index, kind=kind, account=account, requester=msg.sender, market=market,
        amount=amount, timestamp=block.timestamp, head=new_head,
    )
    return index


@external
@nonreentrant
def force_withdraw(amount: uint256) -> uint256:
    """
    @notice Ask, through L1, that `amount` of the caller's collateral be withdrawn; the
            operator must include the request within the rollup's inclusion delay.
    @return The request's index.
    """
    assert amount > 0 and amount < 2**64, "forced: bad amount"
    return self._force(FORCED_WITHDRAW, 0, amount)


@external
@nonreentrant
def force_close(market: uint256) -> uint256:
    """
    @notice Ask, through L1, that the caller's whole position in `market` be closed
            against the insurance fund at the oracle price.
    @return The request's index.
    """
    assert market < MAX_MARKETS, "forced: bad market"
    return self._force(FORCED_CLOSE, market, 0)


# ---------------------------------------------------------------------- payments


@view
@internal
def _payable(owed: uint256, paid_before: uint256) -> uint256:
    """What to pay now of `owed` (`paid_before` was paid earlier): the rest, up to what
    the bridge holds; at least one unit, else the call is refused and nothing recorded."""
    paid: uint256 = min(owed - paid_before, staticcall token.balanceOf(self))
    assert paid > 0, "bridge: nothing to pay now"
    return paid


@internal
def _transfer(to: address, amount: uint256):
    assert extcall token.transfer(to, amount, default_return_value=True), "bridge: transfer failed"


@external
@nonreentrant
def claim(
    batch_id: uint256, index: uint256, record: state.Withdrawal, proof: bytes32[30],
    accounts_root: bytes32, markets_root: bytes32, globals_hash: bytes32,
) -> uint256:
    """
    @notice Pay withdrawal record `index` of the final batch `batch_id`'s state to its
            owner: the record and its path recompute the withdrawals root, which with the
            other three parts recomputes the batch's state root. Pays what is still owed
            of the record, as far as the bridge's balance goes.
    @return The amount paid by this call.
    """
    assert staticcall self.rollup.is_final(batch_id), "claim: batch not final"
    assert state.withdrawal_fits(record), "claim: record out of range"
    before: uint256 = self.claimed[index]
    assert before < record.amount, "claim: already claimed"
    withdrawals_root: bytes32 = merkle.root10(index, state.withdrawal_leaf(record), proof)
    state_root: bytes32 = (staticcall self.rollup.batches(batch_id))[1]
    assert state.state_root(accounts_root, markets_root, globals_hash, withdrawals_root) == state_root, "claim: bad proof"
    paid: uint256 = self._payable(record.amount, before)
    self.claimed[index] = before + paid
    self._transfer(record.owner, paid)
    log WithdrawalClaimed(index=index, account=record.account, owner=record.owner, amount=record.amount, paid=paid)
    return paid


@external
@nonreentrant
def escape(
    account_id: uint256, account: state.Account, proof: bytes32[30],
    records: Bytes[witness.MAX_MARKET_BYTES], listed: uint256, hashes: Bytes[witness.MAX_HASH_BYTES],
    g: state.Globals, withdrawals_root: bytes32,
) -> uint256:
    """
    @notice Once the rollup is frozen, pay an account its equity at the last final root:
            funding settled, collateral + sum(size * oracle price), nothing if negative.
            Anyone may call; the account's owner is paid; what the bridge could not pay
            stays owed (the same call pays the rest later). The markets come as a step's
            witness carries them (witness.vy `open_markets`), opening those the account holds
            (margin.settle_funding reverts otherwise).
    @return The amount paid by this call.
    """
    assert staticcall self.rollup.frozen(), "escape: rollup not frozen"
    assert account.owner != empty(address), "escape: no account"
    assert state.account_fits(account) and state.globals_fit(g), "escape: record out of range"
    named: state.Market = empty(state.Market)  # none: MAX_MARKETS names no market
    k: margin.Marks = empty(margin.Marks)  # value only: no requirement is asked (no Portfolio)
    market_leaves: bytes32[MAX_MARKETS] = empty(bytes32[MAX_MARKETS])
    named, k, market_leaves = witness.open_markets(records, listed, hashes, MAX_MARKETS, empty(address))
    accounts_root: bytes32 = merkle.root10(account_id, state.account_leaf(account), proof)
    root: bytes32 = state.state_root(accounts_root, state.markets_root(market_leaves), state.globals_hash(g), withdrawals_root)
    assert root == staticcall self.rollup.final_root(), "escape: bad proof"
    settled: state.Account = empty(state.Account)
    payment: int256 = 0
    settled, payment = margin.settle_funding(account, k)
    equity: int256 = margin.value(settled, k)
    assert equity > 0, "escape: no equity"
    before: uint256 = self.escaped[account_id]
    assert before < convert(equity, uint256), "escape: already escaped"
    paid: uint256 = self._payable(convert(equity, uint256), before)
    self.escaped[account_id] = before + paid
    self._transfer(account.owner, paid)
    log Escaped(account=account_id, owner=account.owner, equity=equity, paid=paid)
    return paid


@external
@nonreentrant
def reclaim_deposit(
    index: uint256, account: uint256, owner: address, amount: uint256, timestamp: uint256,
    accounts_root: bytes32, markets_root: bytes32, g: state.Globals, withdrawals_root: bytes32,
) -> uint256:
    """
    @notice Once the rollup is frozen, pay back deposit `index` to its owner if the last
            final state had not consumed it (its globals, opened against the final root,
            show deposit_count <= index). The deposit's fields are checked against the hash
            chain. Anyone may call; what the bridge could not pay stays owed.
    @return The amount paid by this call.
    """
    assert staticcall self.rollup.frozen(), "reclaim: rollup not frozen"
    before: uint256 = self.reclaimed[index]
    assert before < amount, "reclaim: already reclaimed"
    assert index < self.deposit_count, "reclaim: no such deposit"
    entry: bytes32 = keccak256(concat(self.deposit_head[index], abi_encode(index, account, owner, amount, timestamp)))
    assert entry == self.deposit_head[index + 1], "reclaim: not this deposit"
    assert state.globals_fit(g), "reclaim: record out of range"
    root: bytes32 = state.state_root(accounts_root, markets_root, state.globals_hash(g), withdrawals_root)
    assert root == staticcall self.rollup.final_root(), "reclaim: bad proof"
    assert g.deposit_count <= index, "reclaim: deposit was credited"
    paid: uint256 = self._payable(amount, before)
    self.reclaimed[index] = before + paid
    self._transfer(owner, paid)
    log DepositReclaimed(index=index, owner=owner, amount=amount, paid=paid)
    return paid
