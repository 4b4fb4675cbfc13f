# pragma version ~=0.4.3
"""
@title Deposit queue (L1 -> L2 messages)
@notice Users lock collateral here; each deposit is appended to a hash chain
        that the rollup's state transition consumes strictly in order:
            head[0]   = 0
            head[n+1] = keccak256(head[n] ++ abi_encode(n, depositor, recipient, amount, timestamp))
        A watcher rebuilds the queue from the `Deposited` events alone and
        checks it against `head`.
"""
from ethereum.ercs import IERC20

event Deposited:
    index: indexed(uint256)
    depositor: indexed(address)
    recipient: address
    amount: uint256
    timestamp: uint256
    head: bytes32

token: public(immutable(IERC20))
count: public(uint256)
head: public(HashMap[uint256, bytes32])

MAX_DEPOSIT: constant(uint256) = 10**15  # 1e9 units of a 6-decimal token


@deploy
def __init__(token_: IERC20):
    token = token_


@external
@nonreentrant
def deposit(recipient: address, amount: uint256) -> uint256:
    """
    @notice Lock `amount` of the collateral token for `recipient` on L2.
    @return The deposit's index in the queue.
    """
    assert amount > 0, "deposit: zero amount"
    assert amount <= MAX_DEPOSIT, "deposit: amount too large"
    assert recipient != empty(address), "deposit: zero recipient"
    index: uint256 = self.count
    new_head: bytes32 = keccak256(
        concat(self.head[index], abi_encode(index, msg.sender, recipient, amount, block.timestamp))
    )
    self.head[index + 1] = new_head
    self.count = index + 1
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), "deposit: transfer failed"
    log Deposited(index=index, depositor=msg.sender, recipient=recipient, amount=amount, timestamp=block.timestamp, head=new_head)
    return index
