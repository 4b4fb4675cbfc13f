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
from typing import cast

from .hashing import ZERO_HASH, keccak, keccak_256

Proof = tuple[tuple[bytes, bytes, bytes], ...]


def hash_node(c0: bytes, c1: bytes, c2: bytes, c3: bytes) -> bytes:
    """The parent of four children (zero if all four are zero)."""
    if c0 == ZERO_HASH and c1 == ZERO_HASH and c2 == ZERO_HASH and c3 == ZERO_HASH:
        return ZERO_HASH
    return keccak(c0 + c1 + c2 + c3)


EMPTY_GROUP = [ZERO_HASH] * 4
"""Four zero children (never stored: their parent is zero). Not to be mutated."""


class QuadTree:
    """A sparse 4-ary tree of `4**depth` leaves.

    Nodes are kept in groups of four siblings: `groups[level][parent]` is the list
    [c0, c1, c2, c3] of the children of node `parent` one level up (level 0 holds the
    leaves). A group of four zeros is not stored, so its parent is zero by the rule of
    `hash_node`, and every stored group hashes to its parent."""

    __slots__ = ("depth", "groups", "_root")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.groups: list[dict[int, list[bytes]]] = [{} for _ in range(depth)]
        self._root = ZERO_HASH

    @property
    def capacity(self) -> int:
        return 4**self.depth

    def root(self) -> bytes:
        return self._root

    def leaf(self, index: int) -> bytes:
        if self.depth == 0:  # the one leaf is the root
            return self._root if index == 0 else ZERO_HASH
        return self.groups[0].get(index >> 2, EMPTY_GROUP)[index & 3]

    def set(self, index: int, value: bytes) -> None:
        """Write leaf `index` and rehash its path to the root."""
        self._write(index, value, self.depth)

    def set_many(self, items: dict[int, bytes]) -> None:
        """Write several leaves, hashing each touched node once: equal to `set` of each
        item in turn, but paths that share ancestors (small account ids all do, near the
        root) are not hashed twice. The leaves are written in index order; a leaf's path
        is rehashed up to the first group it shares with the next leaf's path, which then
        rehashes that group (its other changed child already written) and the rest."""
        indexes = sorted(items)
        last = len(indexes) - 1
        for i, index in enumerate(indexes):
            stop = self.depth if i == last else shared_level(index, indexes[i + 1])
            self._write(index, items[index], stop)

    def _write(self, index: int, value: bytes, stop: int) -> None:
        """Write leaf `index`, then rehash its ancestors below level `stop`: at each level,
        write the node into its group of four and hash the group to get the parent
        (`hash_node`, inlined for speed: zero iff the four are zero). At level `stop` only
        write, leaving the group for a later path to hash; `stop` = depth sets the root."""
        zero = ZERO_HASH
        hasher = keccak_256
        for groups in self.groups[:stop]:
            parent = index >> 2
            children = groups.get(parent)
            if children is None:
                children = groups[parent] = [zero, zero, zero, zero]
            children[index & 3] = value
            if children == EMPTY_GROUP:
                del groups[parent]
                value = zero
            else:
                value = hasher(b"".join(children)).digest()
            index = parent
        if stop == self.depth:
            self._root = value
            return
        groups = self.groups[stop]
        children = groups.get(index >> 2)
        if children is None:  # (if left all zero, the later path deletes the group)
            children = groups[index >> 2] = [zero, zero, zero, zero]
        children[index & 3] = value

    def proof(self, index: int) -> Proof:
        """The siblings of leaf `index`, from the leaves up."""
        out: list[tuple[bytes, ...]] = []
        for groups in self.groups:
            children = groups.get(index >> 2, EMPTY_GROUP)
            position = index & 3
            out.append(tuple(c for k, c in enumerate(children) if k != position))
            index >>= 2
        return cast(Proof, tuple(out))  # each level: the three siblings of a group of four

    def copy(self) -> QuadTree:
        clone = QuadTree(self.depth)
        clone.groups = [{parent: list(children) for parent, children in groups.items()}
                        for groups in self.groups]
        clone._root = self._root
        return clone


def shared_level(a: int, b: int) -> int:
    """The lowest level whose group holds an ancestor (or self) of both leaves a != b:
    the first L with a >> 2(L+1) == b >> 2(L+1)."""
    return ((a ^ b).bit_length() + 1) // 2 - 1


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
