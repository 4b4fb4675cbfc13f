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
from rollup.stf.transactions import AdvanceTime, Cancel, Deleverage, FundingTick, Liquidate
from tests.stf_world import ORACLE_KEYS, USER_KEYS, World, make_world

EXAMPLES = 10_000 if os.environ.get("ROLLUP_LONG") else 2_000
USERS = 6
property_settings = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

_BASE = make_world(USERS, deposit=20_000_000)


def fresh_world() -> World:
    return World(_BASE.state.copy(), _BASE.queues, _BASE.context, _BASE.time, dict(_BASE.nonces))


account_ids = st.integers(1, USERS)
markets = st.integers(0, 1)
trades = st.tuples(st.just("trade"), account_ids, st.integers(0, USERS - 1), markets, st.booleans(),
                   st.integers(1, 300), st.integers(-2_000, 2_000), st.integers(-5, 0))
actions = st.one_of(
    trades, trades, trades,
    st.tuples(st.just("withdraw"), account_ids, st.integers(1, 60_000_000)),
    st.tuples(st.just("funding"), markets, st.integers(-10**6, 10**6), st.integers(1, 7200)),
    st.tuples(st.just("price"), markets, st.integers(-150_000, 150_000)),
    st.tuples(st.just("liquidate"), st.integers(0, 50), markets, st.integers(0, 1_100_000)),
    st.tuples(st.just("deleverage"), st.integers(0, 50), st.integers(0, 50), markets,
              st.integers(0, 1_100_000)),
    st.tuples(st.just("cancel"), account_ids, st.integers(0, 3)),
    st.tuples(st.just("stress"), markets, st.booleans(), st.integers(1, 4), st.integers(1, 3)),
    st.tuples(st.just("junk"), st.binary(max_size=300)),
    st.tuples(st.just("mutate"), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 255)),
)
scenarios = st.lists(actions, min_size=1, max_size=12)


def build(world: World, action: tuple[Any, ...], history: list[bytes]) -> bytes | list[bytes]:
    """Turn an action into transaction bytes against the world's current state."""
    kind = action[0]
    if kind == "trade":
        _, maker_id, shift, market, maker_buys, size, offset, short = action
        taker_id = (maker_id - 1 + shift) % USERS + 1  # shift 0 is a self-trade
        fill = max(1, size + short)  # mostly the whole order, sometimes more (overfill)
        if short == 0 and size > 1:
            fill = size + 1
        elif short == -5:
            fill = size
        price = max(1, world.state.markets[market].oracle_price + offset)  # type: ignore[union-attr]
        maker = world.order(maker_id, market, maker_buys, size, price)
        taker = world.order(taker_id, market, not maker_buys, size, price + (50 if not maker_buys else -50))
        return world.trade(maker, taker, fill)
    if kind == "withdraw":
        _, account, amount = action
        return builders.withdraw(account, amount, world.next_nonce(account), 10**12,
                                 USER_KEYS[account - 1], world.context).encode()
    if kind == "funding":
        _, market, rate_ppm, seconds = action
        world.time += seconds
        price = world.state.markets[market].oracle_price  # type: ignore[union-attr]
        delta = rate_ppm * price * seconds * 10**9 // (10**6 * 3_600 * 50)
        return [AdvanceTime(world.time).encode(), FundingTick(market, delta).encode()]
    if kind == "price":
        _, market, move_ppm = action
        old = world.state.markets[market].oracle_price  # type: ignore[union-attr]
        world.time += 1
        new = max(1, old + old * move_ppm // 10**6)
        return [AdvanceTime(world.time).encode(), builders.oracle_update(
            market, world.time, [(0, new, ORACLE_KEYS[0]), (2, new, ORACLE_KEYS[2])], world.context
        ).encode()]
    if kind == "liquidate":
        _, pick, market, fraction_ppm = action
        holders = [i for i, a in sorted(world.state.accounts.items()) if a.size(market)] or [pick]
        account = holders[pick % len(holders)] if pick < 45 else pick - 45
        size = abs(world.state.account(account).size(market)) * fraction_ppm // 10**6
        return Liquidate(account, market, size).encode()
    if kind == "deleverage":
        _, pick_a, pick_b, market, fraction_ppm = action
        holders = [i for i, a in sorted(world.state.accounts.items()) if a.size(market)] or [1, 2]
        a = holders[pick_a % len(holders)]
        b = holders[pick_b % len(holders)]
        size = abs(world.state.account(a).size(market)) * fraction_ppm // 10**6
        return Deleverage(a, b, market, size).encode()
    if kind == "cancel":
        _, account, back = action
        nonce = max(0, world.nonces.get(account, 0) - back)
        return builders.cancel(account, nonce, USER_KEYS[account - 1], world.context).encode()
    if kind == "stress":
        return stress(world, *action[1:])
    if kind == "junk":
        return bytes(action[1])
    _, which, position, xor = action  # mutate an earlier transaction
    if not history:
        return b"\x03"
    original = bytearray(history[which % len(history)] or b"\x03")
    original[position % len(original)] ^= xor
    return bytes(original)


def stress(world: World, market: int, down: bool, steps: int, divisor: int) -> list[bytes]:
    """A crash or squeeze of `steps` oracle moves of 9% each, then a liquidation attempt
    on every holder (a 1/divisor slice) and a deleverage attempt between opposite holders.
    Built against the state as it will be: prices are predicted, sizes read now."""
    txs = []
    price = world.state.markets[market].oracle_price  # type: ignore[union-attr]
    for _ in range(steps):
        price = max(1, price * (91 if down else 109) // 100)
        world.time += 1
        txs.append(AdvanceTime(world.time).encode())
        txs.append(builders.oracle_update(
            market, world.time, [(0, price, ORACLE_KEYS[0]), (1, price, ORACLE_KEYS[1])], world.context
        ).encode())
    holders = [(i, a.size(market)) for i, a in sorted(world.state.accounts.items()) if a.size(market)]
    for account, size in holders:
        txs.append(Liquidate(account, market, max(1, abs(size) // divisor)).encode())
    longs = [i for i, size in holders if size > 0]
    shorts = [i for i, size in holders if size < 0]
    for a, b in zip(longs, shorts, strict=False):
        txs.append(Deleverage(a, b, market, 1).encode())
        txs.append(Deleverage(b, a, market, 1).encode())
    return txs


def run(world: World, scenario: list[tuple[Any, ...]], check: Any = None) -> list[tuple[bytes, Any]]:
    """Apply a scenario; `check(before_state, tx, receipt)` after each transaction.
    Every transaction that is not applied must leave the root unchanged."""
    log: list[tuple[bytes, Any]] = []
    for action in scenario:
        built = build(world, action, [tx for tx, _ in log])
        for tx in built if isinstance(built, list) else [built]:
            before = world.state.copy() if check is not None else None
            root_before = world.state.root()
            receipt = world.apply(tx)
            if not receipt.applied:
                assert world.state.root() == root_before, (receipt, tx.hex())
            if check is not None:
                check(before, tx, receipt)
            log.append((tx, receipt))
    return log


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
    for tx, receipt in log:
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
        w = witness.withdrawal_witness(state, index)
        assert witness.verify_withdrawal(root, w)
        assert not any(witness.verify_withdrawal(r, w) for r in others)
        bigger = w.record._replace(amount=w.record.amount + 1)
        assert not witness.verify_withdrawal(root, w._replace(record=bigger))


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
