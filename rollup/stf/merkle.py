"""Sparse quaternary (4-ary) keccak Merkle trees.

A node's preimage is its four children, 128 bytes: one keccak block (the rate is
136 bytes), so a 4-ary level costs what a binary level costs while a path is half as
long. An empty leaf is 32 zero bytes, and a node whose four children are all zero is
itself zero (no table of empty-subtree hashes is needed, here or in the EVM).

    node(c0, c1, c2, c3) = 0                        if c0 = c1 = c2 = c3 = 0
                         = keccak(c0 ++ c1 ++ c2 ++ c3)  otherwise

A proof for leaf `i` lists, level by level from the leaves up, the three siblings in
position order (the leaf's own position, `i mod 4`, is skipped).
"""

from __future__ import annotations

from collections.abc import Sequence

from .hashing import ZERO_HASH, keccak, keccak_256

Proof = tuple[tuple[bytes, bytes, bytes], ...]


def hash_node(c0: bytes, c1: bytes, c2: bytes, c3: bytes) -> bytes:
    """The parent of four children (zero if all four are zero)."""
    if c0 == ZERO_HASH and c1 == ZERO_HASH and c2 == ZERO_HASH and c3 == ZERO_HASH:
        return ZERO_HASH
    return keccak(c0 + c1 + c2 + c3)


class QuadTree:
    """A sparse 4-ary tree of `4**depth` leaves; nodes kept per level in dicts."""

    __slots__ = ("depth", "levels")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        # levels[0] holds leaves, levels[depth] holds the root (at index 0)
        self.levels: list[dict[int, bytes]] = [{} for _ in range(depth + 1)]

    @property
    def capacity(self) -> int:
        return 4**self.depth

    def root(self) -> bytes:
        return self.levels[self.depth].get(0, ZERO_HASH)

    def leaf(self, index: int) -> bytes:
        return self.levels[0].get(index, ZERO_HASH)

    def set(self, index: int, value: bytes) -> None:
        """Write leaf `index` and rehash its path to the root (the hot path of the STF:
        written for speed, equal to `hash_node` level by level)."""
        zero = ZERO_HASH
        hasher = keccak_256
        for nodes in self.levels[: self.depth]:
            if value == zero:
                nodes.pop(index, None)
            else:
                nodes[index] = value
            base = index & ~3
            get = nodes.get
            c0 = get(base, zero)
            c1 = get(base + 1, zero)
            c2 = get(base + 2, zero)
            c3 = get(base + 3, zero)
            # zeros are never stored, so an absent child is the `zero` object itself
            if c0 is zero and c1 is zero and c2 is zero and c3 is zero:
                value = zero
            else:
                value = hasher(c0 + c1 + c2 + c3).digest()
            index >>= 2
        top = self.levels[self.depth]
        if value == zero:
            top.pop(0, None)
        else:
            top[0] = value

    def set_many(self, items: dict[int, bytes]) -> None:
        """Write several leaves, then rehash each touched node once: paths that share
        ancestors (small account ids all do, near the root) are not hashed twice."""
        if len(items) == 1:
            for index, value in items.items():
                self.set(index, value)
            return
        zero = ZERO_HASH
        hasher = keccak_256
        nodes = self.levels[0]
        dirty = set()
        for index, value in items.items():
            if value == zero:
                nodes.pop(index, None)
            else:
                nodes[index] = value
            dirty.add(index >> 2)
        for level in range(1, self.depth + 1):
            get = nodes.get
            parents = self.levels[level]
            for parent in dirty:
                base = parent << 2
                c0 = get(base, zero)
                c1 = get(base + 1, zero)
                c2 = get(base + 2, zero)
                c3 = get(base + 3, zero)
                if c0 is zero and c1 is zero and c2 is zero and c3 is zero:
                    parents.pop(parent, None)
                else:
                    parents[parent] = hasher(c0 + c1 + c2 + c3).digest()
            nodes = parents
            dirty = {parent >> 2 for parent in dirty}

    def proof(self, index: int) -> Proof:
        """The siblings of leaf `index`, from the leaves up."""
        out = []
        for nodes in self.levels[: self.depth]:
            base = index & ~3
            out.append(
                tuple(nodes.get(base + k, ZERO_HASH) for k in range(4) if base + k != index)
            )
            index >>= 2
        return tuple(out)  # type: ignore[return-value]

    def copy(self) -> QuadTree:
        clone = QuadTree(self.depth)
        clone.levels = [dict(level) for level in self.levels]
        return clone


def compute_root(index: int, leaf: bytes, proof: Sequence[Sequence[bytes]]) -> bytes:
    """The root implied by `leaf` at `index` with `proof` (depth = len(proof))."""
    value = leaf
    for siblings in proof:
        position = index & 3
        children = list(siblings)
        children.insert(position, value)
        value = hash_node(*children)
        index >>= 2
    return value


def well_formed(proof: Sequence[Sequence[bytes]], depth: int, index: int) -> bool:
    """A proof of exactly `depth` levels of three siblings, for an index inside the tree."""
    return len(proof) == depth and all(len(s) == 3 for s in proof) and 0 <= index < 4**depth
