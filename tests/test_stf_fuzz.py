"""Totality under fuzzing: random byte strings and mutated valid transactions never raise
and, when not applied, never change the root. 5,000 inputs in CI's short mode;
100,000 with ROLLUP_LONG=1 (`make test-long`)."""

from __future__ import annotations

import os
import random

import pytest

from rollup.stf import Reason, builders
from rollup.stf.fork import Context
from rollup.stf.signing import address_of
from rollup.stf.transactions import FORCED_WITHDRAW, Deleverage, FundingTick, Liquidate
from tests.stf_world import ORACLE_KEYS, USER_KEYS, make_world

CASES = 100_000 if os.environ.get("ROLLUP_LONG") else 5_000


@pytest.mark.slow
def test_random_and_mutated_bytes_never_raise_or_change_the_root() -> None:
    seed = int(os.environ.get("ROLLUP_FUZZ_SEED", "20261124"))
    rng = random.Random(seed)
    world = make_world(deposit=5_000_000)
    maker = world.order(1, 0, False, 100, 300_000)
    taker = world.order(2, 0, True, 100, 300_000)
    world.queues.force(FORCED_WITHDRAW, 1, address_of(USER_KEYS[0]), amount=5)
    world.context = Context(world.context.config, world.context.timestamp,
                            tuple(world.queues.deposit_heads), tuple(world.queues.forced_heads))
    valid = [
        world.trade(maker, taker, 10),
        builders.withdraw(1, 1_000, 99, 10**12, USER_KEYS[0], world.context).encode(),
        builders.cancel(3, 5, USER_KEYS[2], world.context).encode(),
        builders.oracle_update(1, world.time, [(0, 1_000_100, ORACLE_KEYS[0]), (1, 1_000_000, ORACLE_KEYS[1])],
                               world.context).encode(),
        FundingTick(0, 5).encode(),
        Liquidate(1, 0, 3).encode(),
        Deleverage(1, 2, 0, 3).encode(),
        world.queues.forced[0].encode(),
        bytes([0x0A]) + (world.time + 5).to_bytes(8, "big"),
    ]
    applied = 0
    for case in range(CASES):
        if case % 3 == 0:
            data = rng.randbytes(rng.randrange(0, 400))
            if data and rng.random() < 0.5:
                data = bytes([rng.randrange(1, 11)]) + data[1:]  # a known type byte
        else:
            mutated = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                how = rng.randrange(4)
                if how == 0:
                    mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
                elif how == 1:
                    mutated[rng.randrange(len(mutated))] = rng.randrange(256)
                elif how == 2 and len(mutated) > 1:
                    del mutated[rng.randrange(len(mutated))]
                else:
                    mutated.insert(rng.randrange(len(mutated) + 1), rng.randrange(256))
            data = bytes(mutated)
        root = world.state.root()
        receipt = world.apply(data)
        assert isinstance(receipt.reason, Reason), (seed, case)
        if receipt.applied:
            applied += 1
        else:
            assert world.state.root() == root, (seed, case, data.hex())
        assert world.conserved(), (seed, case, data.hex())
    # the mutations are near misses, not just noise: some still apply
    assert applied > 0
