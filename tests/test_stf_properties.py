"""Property tests of the STF (hypothesis): conservation, determinism, witness soundness,
totality, funding never creates money, no account below maintenance opens risk.

Each property runs `EXAMPLES` examples: 2,000 in CI's short mode, 10,000 with
ROLLUP_LONG=1. A scenario is a list of actions turned into mostly-valid transactions
(trades near the oracle price, withdrawals, funding, price moves, liquidations,
deleveraging, cancels) mixed with random and mutated bytes.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollup.stf import Reason, builders, margin, witness
from rollup.stf.constants import ACCOUNT_TREE_DEPTH
from rollup.stf.transactions import Cancel, Deleverage, FundingTick, Liquidate
from tests.scenarios import USERS, run, scenarios, world_factory
from tests.stf_world import USER_KEYS

EXAMPLES = 10_000 if os.environ.get("ROLLUP_LONG") else 2_000
property_settings = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

fresh_world = world_factory()


@property_settings
@given(scenarios)
def test_conservation_after_every_transaction(scenario: list[tuple[Any, ...]]) -> None:
    """sum(collateral) + fee pool + funding pool + withdrawn == deposited, always."""
    world = fresh_world()

    def check(before: Any, tx: bytes, receipt: Any) -> None:
        assert world.conserved(), receipt

    run(world, scenario, check)


@property_settings
@given(scenarios)
def test_determinism_same_inputs_same_roots(scenario: list[tuple[Any, ...]]) -> None:
    world = fresh_world()
    log = run(world, scenario)
    replay = fresh_world()
    for tx, receipt, context in log:
        replay.context = context
        again = replay.apply(tx)
        assert again == receipt
    assert replay.state.root() == world.state.root()
    assert replay.state.globals == world.state.globals


@property_settings
@given(scenarios, st.integers(0, 4**ACCOUNT_TREE_DEPTH - 1), st.integers(0, USERS + 2),
       st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32))
def test_witness_soundness(scenario: list[tuple[Any, ...]], far: int, near: int, nonce: int,
                           other_root: bytes) -> None:
    """Account, nonce-slot and withdrawal witnesses verify against the root they came from
    and fail against any other root, and for any other leaf."""
    world = fresh_world()
    earlier = world.state.root()
    run(world, scenario)
    state = world.state
    root = state.root()
    others = [r for r in (earlier, other_root) if r != root]
    for account_id in (near, far):
        w = witness.account_witness(state, account_id)
        assert witness.verify_account(root, w)
        assert not any(witness.verify_account(r, w) for r in others)
        changed = w.account._replace(collateral=w.account.collateral + 1)
        assert not witness.verify_account(root, w._replace(account=changed))
        if state.account(account_id ^ 1) != w.account:  # the same leaf elsewhere is no lie
            assert not witness.verify_account(root, w._replace(account_id=account_id ^ 1))
        s = witness.slot_witness(state, account_id, nonce)
        assert witness.verify_slot(root, s)
        assert not any(witness.verify_slot(r, s) for r in others)
        assert not witness.verify_slot(root, s._replace(slot=s.slot._replace(filled=s.slot.filled + 1)))
    for index in range(len(state.withdrawals)):
        ww = witness.withdrawal_witness(state, index)
        assert witness.verify_withdrawal(root, ww)
        assert not any(witness.verify_withdrawal(r, ww) for r in others)
        bigger = ww.record._replace(amount=ww.record.amount + 1)
        assert not witness.verify_withdrawal(root, ww._replace(record=bigger))


@property_settings
@given(st.one_of(st.binary(max_size=600), st.tuples(st.integers(0, 9), st.binary(min_size=1, max_size=8))))
def test_totality_random_and_mutated_bytes(data: Any) -> None:
    """Any byte string is a transaction: no exception, and a no-op leaves the root alone."""
    world = fresh_world()
    if isinstance(data, tuple):
        kind, noise = data
        base = _SAMPLES[kind]
        mutated = bytearray(base)
        for i, byte in enumerate(noise):
            mutated[(byte * 7919 + i * 131) % len(mutated)] ^= byte or 1
        data = bytes(mutated)
    root = world.state.root()
    receipt = world.apply(data)
    assert isinstance(receipt.reason, Reason)
    if not receipt.applied:
        assert world.state.root() == root


def _samples() -> list[bytes]:
    world = fresh_world()
    maker = world.order(1, 0, True, 10, 300_000)
    taker = world.order(2, 0, False, 10, 300_000)
    return [
        world.trade(maker, taker, 5),
        builders.withdraw(1, 1_000, 99, 10**12, USER_KEYS[0], world.context).encode(),
        builders.cancel(1, 5, USER_KEYS[0], world.context).encode(),
        FundingTick(0, 5).encode(),
        Liquidate(1, 0, 3).encode(),
        Deleverage(1, 2, 0, 3).encode(),
        Cancel(1, 1, b"\x00" * 65).encode(),
        world.queues.deposits[0].encode(),
        builders.oracle_update(0, 10, [(0, 5, b"\x01" * 32)], world.context).encode(),
        bytes([0x0A]) + (2_000).to_bytes(8, "big"),
    ]


_SAMPLES = _samples()


@property_settings
@given(scenarios)
def test_funding_never_creates_money(scenario: list[tuple[Any, ...]]) -> None:
    """Once every account settles its funding, the funding pool is never negative:
    payments round up and receipts round down."""
    world = fresh_world()
    run(world, scenario)
    pool = world.state.globals.funding_pool
    for account in world.state.accounts.values():
        _, payment = margin.settle_funding(account, world.state.markets)
        pool += payment
    assert pool >= 0


@property_settings
@given(scenarios)
def test_no_account_below_maintenance_opens_risk(scenario: list[tuple[Any, ...]]) -> None:
    """An accepted trade never leaves an account that was below maintenance with a larger
    position unless it now meets the initial requirement."""
    world = fresh_world()

    def check(before: Any, tx: bytes, receipt: Any) -> None:
        if not receipt.ok or tx[0] != 0x03:
            return
        markets = world.state.markets
        for account_id, old in before.accounts.items():
            settled, _ = margin.settle_funding(old, before.markets)
            if margin.value(settled, before.markets) >= margin.requirement(settled, before.markets, False):
                continue
            new = world.state.account(account_id)
            grew = any(abs(p.size) > abs(settled.size(p.market)) for p in new.positions)
            if grew:
                assert margin.value(new, markets) >= margin.requirement(new, markets, True)

    run(world, scenario, check)
