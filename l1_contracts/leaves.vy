# pragma version ~=0.4.3
"""
@title Leaf encodings and the state root (a module)
@notice The EVM side of rollup/stf/state.py: packed big-endian encodings (two's
        complement for signed fields), a default record hashing to zero.
            state_root = keccak256(accounts_root ++ markets_root ++ globals_hash ++ withdrawals_root)
"""

MAX_POSITIONS: constant(uint256) = 16


struct Position:
    market: uint8
    size: int64
    funding_index: int128


struct Account:
    owner: address
    collateral: int128
    orders_root: bytes32
    positions: DynArray[Position, MAX_POSITIONS]


@internal
@pure
def account_leaf(a: Account) -> bytes32:
    """owner 20 | collateral int128 | orders_root 32 | count u8 | (market u8 | size int64 | funding_index int128)*"""
    if a.owner == empty(address) and a.collateral == 0 and a.orders_root == empty(bytes32) and len(a.positions) == 0:
        return empty(bytes32)
    # Vyper's byte strings cannot grow in a loop: concatenate all 16 position slots at a
    # fixed 25 bytes each (zeros past the last position), then cut to the real length.
    n: uint256 = len(a.positions)
    full: Bytes[469] = concat(
        convert(a.owner, bytes20),
        convert(a.collateral, bytes16),
        a.orders_root,
        convert(convert(n, uint8), bytes1),
        self._piece(a, 0), self._piece(a, 1), self._piece(a, 2), self._piece(a, 3),
        self._piece(a, 4), self._piece(a, 5), self._piece(a, 6), self._piece(a, 7),
        self._piece(a, 8), self._piece(a, 9), self._piece(a, 10), self._piece(a, 11),
        self._piece(a, 12), self._piece(a, 13), self._piece(a, 14), self._piece(a, 15),
    )
    packed: Bytes[469] = slice(full, 0, 69 + 25 * n)
    return keccak256(packed)


@internal
@pure
def _piece(a: Account, i: uint256) -> Bytes[25]:
    """Position i's 25 bytes (market u8 | size int64 | funding_index int128), or 25 zeros."""
    if i >= len(a.positions):
        return slice(empty(bytes32), 0, 25)
    p: Position = a.positions[i]
    return concat(convert(p.market, bytes1), convert(p.size, bytes8), convert(p.funding_index, bytes16))


@internal
@pure
def slot_leaf(nonce: uint64, order_hash: bytes32, filled: uint64) -> bytes32:
    """nonce u64 | order_hash 32 | filled u64"""
    if nonce == 0 and order_hash == empty(bytes32) and filled == 0:
        return empty(bytes32)
    return keccak256(concat(convert(nonce, bytes8), order_hash, convert(filled, bytes8)))


@internal
@pure
def state_root(accounts: bytes32, markets: bytes32, globals_hash: bytes32, withdrawals: bytes32) -> bytes32:
    return keccak256(concat(accounts, markets, globals_hash, withdrawals))
