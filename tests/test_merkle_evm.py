"""The EVM's Merkle paths (l1_contracts/merkle.vy) agree with the STF's (rollup/stf/merkle.py),
checked on a real EVM over JSON-RPC with random sparse trees of several depths."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from rollup.l1.client import L1, default_dev_key
from rollup.stf.merkle import QuadTree, compute_root, hash_node

CASES = 2_000 if os.environ.get("ROLLUP_LONG") else 150


@pytest.fixture(scope="module")
def harness(l1_url: str) -> Iterator[Contract]:
    l1 = L1(l1_url, default_dev_key())
    yield l1.deploy("MerkleHarness")


def flat(proof: tuple[tuple[bytes, ...], ...]) -> list[bytes]:
    return [sibling for level in proof for sibling in level]


def test_paths_agree_with_the_stf(harness: Contract) -> None:
    rng = random.Random(11)
    zero = b"\0" * 32
    for depth in (1, 4, 10):
        tree = QuadTree(depth)
        for _ in range(rng.randrange(1, 40)):
            tree.set(rng.randrange(4**depth) if rng.random() < 0.5 else rng.randrange(min(64, 4**depth)),
                     rng.randbytes(32))
        for _ in range(CASES // 3):
            index = rng.randrange(min(4**depth, 128)) if rng.random() < 0.7 else rng.randrange(4**depth)
            leaf = tree.leaf(index) if rng.random() < 0.7 else rng.choice([zero, rng.randbytes(32)])
            proof = tree.proof(index)
            expected = compute_root(index, leaf, proof)
            assert harness.functions.compute_root(index, leaf, flat(proof), depth).call() == expected
            if leaf == tree.leaf(index):
                assert expected == tree.root()


def test_zero_rule_and_refusals(harness: Contract) -> None:
    zero = b"\0" * 32
    one = b"\1" * 32
    assert harness.functions.hash_node(zero, zero, zero, zero).call() == zero
    assert harness.functions.hash_node(zero, zero, one, zero).call() == hash_node(zero, zero, one, zero)
    with pytest.raises(ContractLogicError, match="merkle: bad proof length"):
        harness.functions.compute_root(0, one, [zero] * 5, 2).call()
    with pytest.raises(ContractLogicError, match="merkle: index out of range"):
        harness.functions.compute_root(16, one, [zero] * 6, 2).call()


def test_gas_of_an_account_path(harness: Contract, l1_url: str) -> None:
    """A depth-10 path (the account tree) costs a few tens of thousands of gas at most."""
    tree = QuadTree(10)
    rng = random.Random(5)
    for _ in range(200):
        tree.set(rng.randrange(4**10), rng.randbytes(32))
    gas = harness.functions.compute_root(7, tree.leaf(7), flat(tree.proof(7)), 10).estimate_gas()
    assert gas < 60_000, gas
    assert Web3(Web3.HTTPProvider(l1_url)).eth.chain_id == 31337  # still serving
