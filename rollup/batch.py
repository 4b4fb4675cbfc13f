"""Batches as L1 sees them: the calldata encoding of a batch's transactions and roots,
and the step tree that commits to every (transaction, post-state root) pair.

A batch carries its transactions as one byte string, each prefixed with its length: one
byte below 0x80, else two (0x8000 | length, big-endian; at most MAX_TX; the short form
whenever it fits, so each batch has one encoding). Its roots are the state root after
each transaction: the last (the batch's state root) whole, every earlier one by its first
16 bytes (ROOT_PREFIX). A truncated root only locates a wrong step: the challenger opens
the step before the disputed one with the whole pre-state root, which must begin with the
posted prefix; forging a pre-state whose root has a given 128-bit prefix is a second
preimage of keccak, and a lying proposer gains nothing from prefixes that collide (the
proof starts from the true state at the first step whose prefix differs, or the last).

At submission the rollup contract hashes every step into a leaf

    leaf_i = keccak(posted_i ++ keccak(tx_i))

where posted_i is the 32-byte posted root (a prefix padded with 16 zero bytes), and the
leaves into a binary Merkle tree (padded with zero leaves to a power of two;
node = keccak(left ++ right)). A challenger opens step i (and step i - 1 for its
pre-state root; step 0's pre-state is the parent batch's root) with Merkle paths, so a
fraud proof costs a path, whatever the batch's size.
"""

from __future__ import annotations

from collections.abc import Sequence

from .stf.hashing import ZERO_HASH, keccak
from .stf.transactions import ADVANCE_TIME, MAX_TX

MAX_BATCH_BYTES = 49_152
"""Largest encoded transaction list of one batch."""
MAX_STEPS = 1024
"""Most transactions in one batch."""
ROOT_PREFIX = 16
"""Bytes of every root but a batch's last that the batch carries."""
_PAD = bytes(32 - ROOT_PREFIX)


def prefix_length(n: int) -> int:
    """Bytes of the length prefix of an `n`-byte transaction."""
    return 1 if n < 0x80 else 2


def posted_root(root: bytes, last: bool) -> bytes:
    """The 32-byte root as a batch posts it: whole if `last`, else its prefix padded
    with zeros (idempotent)."""
    return root if last else root[:ROOT_PREFIX] + _PAD


def posted_roots(roots: Sequence[bytes]) -> list[bytes]:
    return [posted_root(r, i == len(roots) - 1) for i, r in enumerate(roots)]


def encode_roots(roots: Sequence[bytes]) -> tuple[bytes, bytes]:
    """(the packed prefixes of every root but the last, the last root)."""
    if not roots:
        raise ValueError("a batch has at least one step")
    return b"".join(r[:ROOT_PREFIX] for r in roots[:-1]), bytes(roots[-1])


def decode_roots(prefixes: bytes, state_root: bytes) -> list[bytes] | None:
    """The posted roots (32 bytes each) of a batch's calldata, or None if `prefixes` is
    not a whole number of prefixes."""
    if len(prefixes) % ROOT_PREFIX:
        return None
    return [prefixes[i : i + ROOT_PREFIX] + _PAD for i in range(0, len(prefixes), ROOT_PREFIX)] + [bytes(state_root)]


def encode_txs(txs: Sequence[bytes]) -> bytes:
    """The length-prefixed concatenation the contract parses."""
    out = bytearray()
    for tx in txs:
        n = len(tx)
        if n > MAX_TX:
            raise ValueError(f"transaction of {n} bytes exceeds MAX_TX")
        out += bytes((n,)) if n < 0x80 else (0x8000 | n).to_bytes(2, "big")
        out += tx
    return bytes(out)


def decode_txs(blob: bytes, count: int) -> list[bytes] | None:
    """The `count` transactions of a blob, or None if it is not exactly that (in the
    canonical length prefixes)."""
    txs = []
    offset = 0
    for _ in range(count):
        if offset >= len(blob):
            return None
        n = blob[offset]
        width = 1
        if n >= 0x80:
            if offset + 2 > len(blob):
                return None
            n = int.from_bytes(blob[offset : offset + 2], "big") & 0x7FFF
            width = 2
            if n < 0x80:
                return None
        if n > MAX_TX or offset + width + n > len(blob):
            return None
        txs.append(blob[offset + width : offset + width + n])
        offset += width + n
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
    """The root of the step tree (`roots` whole or as posted)."""
    return _levels([step_leaf(r, tx) for tx, r in zip(txs, posted_roots(roots), strict=True)])[-1][0]


def step_proof(txs: Sequence[bytes], roots: Sequence[bytes], index: int) -> list[bytes]:
    """The siblings of step `index`'s leaf, from the leaves up."""
    levels = _levels([step_leaf(r, tx) for tx, r in zip(txs, posted_roots(roots), strict=True)])
    path = []
    for level in levels[:-1]:
        path.append(level[index ^ 1])
        index //= 2
    return path
