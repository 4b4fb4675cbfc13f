# pragma version ~=0.4.3
"""
@title Test harness: the L1 queue heads the verifier reads, set directly
@notice Differential tests of the verifier replay queues built in Python; the real
        queues (the bridge) expose the same two getters.
"""

deposit_head: public(HashMap[uint256, bytes32])
forced_head: public(HashMap[uint256, bytes32])


@external
def set_heads(deposit_start: uint256, deposits: DynArray[bytes32, 256], forced_start: uint256, forced: DynArray[bytes32, 256]):
    for i: uint256 in range(len(deposits), bound=256):
        self.deposit_head[deposit_start + i] = deposits[i]
    for i: uint256 in range(len(forced), bound=256):
        self.forced_head[forced_start + i] = forced[i]
