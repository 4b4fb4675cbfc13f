"""Batches as L1 sees them: the calldata encoding of a batch's transactions and the
step tree that commits to every (transaction, post-state root) pair.

A batch carries its transactions as one byte string, each prefixed with its length
(u16, big-endian, at most MAX_TX), and the state root after each transaction. At
submission the rollup contract hashes every step into a leaf

    leaf_i = keccak(post_root_i ++ keccak(tx_i))

and the leaves into a binary Merkle tree (padded with zero leaves to a power of two;
node = keccak(left ++ right)). A challenger opens step i (and step i - 1 for its
pre-state root; step 0's pre-state is the parent batch's root) with Merkle paths, so a
fraud proof costs a path, whatever the batch's size.
"""

from __future__ import annotations

from collections.abc import Sequence

from .stf.hashing import ZERO_HASH, keccak
from .stf.transactions import ADVANCE_TIME

MAX_TX = 1195
"""Longest transaction a batch may carry (an OracleUpdate with 16 reports)."""
MAX_BATCH_BYTES = 49_152
"""Largest encoded transaction list of one batch."""
MAX_STEPS = 1024
"""Most transactions in one batch."""


def encode_txs(txs: Sequence[bytes]) -> bytes:
    """The length-prefixed concatenation the contract parses."""
    out = bytearray()
    for tx in txs:
        if len(tx) > MAX_TX:
            raise ValueError(f"transaction of {len(tx)} bytes exceeds MAX_TX")
        out += len(tx).to_bytes(2, "big") + tx
    return bytes(out)


def decode_txs(blob: bytes, count: int) -> list[bytes] | None:
    """The `count` transactions of a blob, or None if it is not exactly that."""
    txs = []
    offset = 0
    for _ in range(count):
        if offset + 2 > len(blob):
            return None
        n = int.from_bytes(blob[offset : offset + 2], "big")
        if n > MAX_TX or offset + 2 + n > len(blob):
            return None
        txs.append(blob[offset + 2 : offset + 2 + n])
        offset += 2 + n
    return txs if offset == len(blob) else None


def batch_time(txs: Sequence[bytes], clock: int) -> int:
    """The timestamp a batch of `txs` runs at, starting from a state whose clock reads
    `clock`: its latest AdvanceTime's, if any is later, else the clock's (every other
    transaction is refused while the clock is behind the batch's timestamp)."""
    times = [int.from_bytes(tx[1:], "big") for tx in txs if len(tx) == 9 and tx[0] == ADVANCE_TIME]
    return max([clock, *times])


def step_leaf(post_root: bytes, tx: bytes) -> bytes:
    return keccak(post_root + keccak(tx))


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    width = 1
    while width < len(leaves):
        width *= 2
    level = list(leaves) + [ZERO_HASH] * (width - len(leaves))
    levels = [level]
    while len(level) > 1:
        level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        levels.append(level)
    return levels


def step_root(txs: Sequence[bytes], roots: Sequence[bytes]) -> bytes:
    """The root of the step tree."""
    return _levels([step_leaf(r, tx) for tx, r in zip(txs, roots, strict=True)])[-1][0]


def step_proof(txs: Sequence[bytes], roots: Sequence[bytes], index: int) -> list[bytes]:
    """The siblings of step `index`'s leaf, from the leaves up."""
    levels = _levels([step_leaf(r, tx) for tx, r in zip(txs, roots, strict=True)])
    path = []
    for level in levels[:-1]:
        path.append(level[index ^ 1])
        index //= 2
    return path
