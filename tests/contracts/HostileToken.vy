# pragma version ~=0.4.3
"""
@title Test harness: an ERC-20 that calls back into a target on every transfer
@notice For the bridge's reentrancy tests: while moving tokens it replays `payload`
        against `target` (e.g. a second claim or deposit) and records whether that
        inner call succeeded; the outer transfer goes on either way.
"""

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
target: public(address)
payload: public(Bytes[4096])
attempts: public(uint256)
# How many inner calls succeeded (the bridge must keep this at 0).
reentered: public(uint256)


@external
def arm(target_: address, payload_: Bytes[4096]):
    self.target = target_
    self.payload = payload_


@external
def mint(receiver: address, amount: uint256):
    self.balanceOf[receiver] += amount


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True


@internal
def _call_back():
    if self.target == empty(address):
        return
    self.attempts += 1
    ok: bool = raw_call(self.target, self.payload, max_outsize=0, revert_on_failure=False)
    if ok:
        self.reentered += 1


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._call_back()
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[receiver] += amount
    return True


@external
def transferFrom(owner: address, receiver: address, amount: uint256) -> bool:
    self._call_back()
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[receiver] += amount
    return True
