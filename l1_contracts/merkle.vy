# pragma version ~=0.4.3
"""
@title 4-ary keccak Merkle paths (a module)
@notice The EVM side of rollup/stf/merkle.py, rule for rule:
            node(c0, c1, c2, c3) = 0 if all four are 0, else keccak256(c0 ++ c1 ++ c2 ++ c3)
        A proof lists, from the leaves up, the three siblings of each level in position
        order (the path's own position, index mod 4, skipped): 3 words per level.
"""

MAX_DEPTH: constant(uint256) = 10


@internal
@pure
def hash_node(c0: bytes32, c1: bytes32, c2: bytes32, c3: bytes32) -> bytes32:
    """The parent of four children (zero if all four are zero)."""
    return self.climb(c0, 0, c1, c2, c3)


@internal
@pure
def compute_root(index: uint256, leaf: bytes32, proof: DynArray[bytes32, 30], depth: uint256) -> bytes32:
    """
    @notice The root implied by `leaf` at `index` under `proof`; reverts unless the proof
            has exactly 3 * depth words and index < 4 ** depth (merkle.py's `well_formed`).
    """
    assert depth <= MAX_DEPTH and len(proof) == 3 * depth, "merkle: bad proof length"
    assert index < 4 ** depth, "merkle: index out of range"
    value: bytes32 = leaf
    position: uint256 = index
    for level: uint256 in range(depth, bound=MAX_DEPTH):
        at: uint256 = unsafe_mul(3, level)  # the level's siblings (unchecked: level < MAX_DEPTH)
        value = self.climb(value, position % 4, proof[at], proof[unsafe_add(at, 1)], proof[unsafe_add(at, 2)])
        position //= 4
    return value


@internal
@pure
def climb(child: bytes32, position: uint256, s0: bytes32, s1: bytes32, s2: bytes32) -> bytes32:
    """The parent of `child` at `position` (0..3) among the three siblings s0, s1, s2:
    hash_node(...) with `child` in its place: 0 if all four are 0, else the hash of the four words
    back to back (abi_encode of bytes32s: concat's bytes)."""
    if convert(child, uint256) | convert(s0, uint256) | convert(s1, uint256) | convert(s2, uint256) == 0:
        return empty(bytes32)
    if position == 0:
        return keccak256(abi_encode(child, s0, s1, s2))
    if position == 1:
        return keccak256(abi_encode(s0, child, s1, s2))
    if position == 2:
        return keccak256(abi_encode(s0, s1, child, s2))
    return keccak256(abi_encode(s0, s1, s2, child))


@internal
@pure
def root10(index: uint256, leaf: bytes32, proof: bytes32[30]) -> bytes32:
    """compute_root for a depth-10 tree (accounts, withdrawals); reverts if index >= 4**10."""
    assert index < 4**10, "merkle: index out of range"
    value: bytes32 = leaf
    position: uint256 = index
    for level: uint256 in range(10):
        at: uint256 = unsafe_mul(3, level)  # the level's siblings (unchecked: level < 10)
        value = self.climb(value, position % 4, proof[at], proof[unsafe_add(at, 1)], proof[unsafe_add(at, 2)])
        position //= 4
    return value


@internal
@pure
def root4(index: uint256, leaf: bytes32, proof: bytes32[12]) -> bytes32:
    """compute_root for a depth-4 tree (an account's nonce slots); reverts if index >= 4**4."""
    assert index < 4**4, "merkle: index out of range"
    value: bytes32 = leaf
    position: uint256 = index
    for level: uint256 in range(4):
        at: uint256 = unsafe_mul(3, level)  # the level's siblings (unchecked: level < 10)
        value = self.climb(value, position % 4, proof[at], proof[unsafe_add(at, 1)], proof[unsafe_add(at, 2)])
        position //= 4
    return value
