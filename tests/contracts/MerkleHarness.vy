# pragma version ~=0.4.3
"""
@title Test harness exposing the merkle module (differential tests against the STF)
"""
import merkle


@external
@pure
def compute_root(index: uint256, leaf: bytes32, proof: DynArray[bytes32, 30], depth: uint256) -> bytes32:
    return merkle.compute_root(index, leaf, proof, depth)


@external
@pure
def hash_node(c0: bytes32, c1: bytes32, c2: bytes32, c3: bytes32) -> bytes32:
    return merkle.hash_node(c0, c1, c2, c3)
