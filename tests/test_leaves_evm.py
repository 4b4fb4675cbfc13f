"""Leaf encodings on the EVM (l1_contracts/leaves.vy) equal the STF's (rollup/stf/state.py),
on random records including the extremes of every field's width."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
from web3 import Web3
from web3.contract import Contract

from rollup.l1.client import L1, default_dev_key
from rollup.stf.constants import MAX_FUNDING_INDEX, MAX_SIZE
from rollup.stf.state import Account, OrderSlot, Position, state_root

CASES = 1_000 if os.environ.get("ROLLUP_LONG") else 60


@pytest.fixture(scope="module")
def harness(l1_url: str) -> Iterator[Contract]:
    yield L1(l1_url, default_dev_key()).deploy("LeavesHarness")


def random_account(rng: random.Random) -> Account:
    markets = sorted(rng.sample(range(16), rng.choice([0, 1, 2, 3, 16])))
    positions = tuple(
        Position(m, rng.choice([1, -1]) * rng.choice([1, rng.randrange(MAX_SIZE), MAX_SIZE]),
                 rng.choice([0, -MAX_FUNDING_INDEX, MAX_FUNDING_INDEX, rng.randrange(-2**90, 2**90)]))
        for m in markets
    )
    collateral = rng.choice([0, 1, -1, 2**100 - 1, -(2**100 - 1), rng.randrange(-2**64, 2**64)])
    owner = rng.choice([b"\0" * 20, rng.randbytes(20)])
    return Account(owner, collateral, positions, rng.choice([b"\0" * 32, rng.randbytes(32)]))


def as_struct(a: Account) -> tuple[object, ...]:
    return (Web3.to_checksum_address(a.owner), a.collateral, a.orders_root,
            [(p.market, p.size, p.funding_index) for p in a.positions])


def test_account_leaves_agree(harness: Contract) -> None:
    rng = random.Random(3)
    accounts = [Account(), Account(owner=b"\1" * 20)] + [random_account(rng) for _ in range(CASES)]
    for account in accounts:
        assert harness.functions.account_leaf(as_struct(account)).call() == account.leaf(), account


def test_slot_leaves_and_state_root_agree(harness: Contract) -> None:
    rng = random.Random(4)
    for _ in range(CASES // 3):
        slot = OrderSlot(rng.choice([0, 2**64 - 1, rng.randrange(2**64)]),
                         rng.choice([b"\0" * 32, b"\xff" * 32, rng.randbytes(32)]),
                         rng.choice([0, 2**64 - 1, rng.randrange(2**64)]))
        assert harness.functions.slot_leaf(*slot).call() == slot.leaf()
        parts = [rng.randbytes(32) for _ in range(4)]
        assert harness.functions.state_root(*parts).call() == state_root(*parts)
    assert harness.functions.slot_leaf(0, b"\0" * 32, 0).call() == b"\0" * 32
