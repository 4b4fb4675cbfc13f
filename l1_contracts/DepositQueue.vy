# pragma version ~=0.4.3
"""
@title Deposit queue (L1 -> L2 messages) and account registry
@notice Users lock collateral here for an L2 account. The first deposit for an
        address registers it: account ids are assigned here, in order, from 1
        (account 0 is the insurance fund, registered to `insurance_owner`).
        Each deposit is appended to a hash chain that the rollup's state
        transition consumes strictly in order (docs/spec.md, Deposit):
            head[0]   = 0
            head[n+1] = keccak256(head[n] ++ abi_encode(n, account, owner, amount, timestamp))
        A watcher rebuilds the queue from the `Deposited` events alone.
"""
from ethereum.ercs import IERC20

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

token: public(immutable(IERC20))
count: public(uint256)
head: public(HashMap[uint256, bytes32])
account_of: public(HashMap[address, uint256])
registered: public(HashMap[address, bool])
next_account: public(uint256)

MAX_DEPOSIT: constant(uint256) = 10**15  # 1e9 units of a 6-decimal token
MAX_ACCOUNTS: constant(uint256) = 4**10  # the L2 account tree's capacity


@deploy
def __init__(token_: IERC20, insurance_owner: address):
    token = token_
    self.registered[insurance_owner] = True
    self.account_of[insurance_owner] = 0
    self.next_account = 1
    log Registered(account=0, owner=insurance_owner)


@internal
def _account(owner: address) -> uint256:
    if self.registered[owner]:
        return self.account_of[owner]
    account: uint256 = self.next_account
    assert account < MAX_ACCOUNTS, "deposit: account tree full"
    self.registered[owner] = True
    self.account_of[owner] = account
    self.next_account = account + 1
    log Registered(account=account, owner=owner)
    return account


@external
@nonreentrant
def deposit(owner: address, amount: uint256) -> uint256:
    """
    @notice Lock `amount` of the collateral token for the L2 account of `owner`
            (registered on first use).
    @return The deposit's index in the queue.
    """
    assert amount > 0, "deposit: zero amount"
    assert amount <= MAX_DEPOSIT, "deposit: amount too large"
    assert owner != empty(address), "deposit: zero owner"
    account: uint256 = self._account(owner)
    index: uint256 = self.count
    new_head: bytes32 = keccak256(
        concat(self.head[index], abi_encode(index, account, owner, amount, block.timestamp))
    )
    self.head[index + 1] = new_head
    self.count = index + 1
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), "deposit: transfer failed"
    log Deposited(index=index, account=account, owner=owner, amount=amount, timestamp=block.timestamp, head=new_head)
    return index
