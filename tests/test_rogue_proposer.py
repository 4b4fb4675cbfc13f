"""Rogue-proposer fuzz: once the sequencer has been silent for the silence period, a bonded
outsider posts batches of random and mutated content (on anvil): random bytes with
random roots, truncated encodings of valid transactions (with true roots, or with the
roots they would have if they were valid), valid transactions with a plausible root that
has one field changed (an account's collateral, a position, a market's price, a global
counter) at some step, and correct batches. An honest watcher proves every wrong root
within the window (the outsider bonds again after each slash); a hostile watcher
challenges a random step of every correct batch, and each such batch survives and
finalizes. No watcher logs an error. CI posts 100 batches, ROLLUP_LONG=1 posts 2,000.
"""

from __future__ import annotations

import logging
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from challengers import store as st
from challengers.watcher import Watcher
from rollup.batch import batch_time
from rollup.deploy import deploy
from rollup.l1.client import L1
from rollup.l1.rollup_client import FINAL, PENDING, REVERTED, RollupL1
from rollup.l1.world import World, make_world
from rollup.stf import apply
from rollup.stf.state import Globals, Market, State
from rollup.stf.transactions import AdvanceTime
from tests.conftest import DEV_KEYS, l1_snapshot, params_for

LONG = bool(os.environ.get("ROLLUP_LONG"))
BATCHES = int(os.environ.get("ROGUE_BATCHES", 2_000 if LONG else 100))
SEQUENCER, OUTSIDER = DEV_KEYS[1], DEV_KEYS[8]
HONEST, HOSTILE = DEV_KEYS[2], DEV_KEYS[9]
WINDOW, SILENCE = 3_600, 60
KINDS = ("random", "truncated-true", "truncated-as-valid", "one-field", "correct")


def valid_txs(world: World, rng: random.Random) -> list[bytes]:
    """A few valid transactions against the world's state (built, not applied)."""
    users = world.users
    a, b = rng.sample(range(len(users)), 2)
    out = []
    for _ in range(rng.randrange(1, 4)):
        pick = rng.randrange(4)
        if pick == 0:
            out.append(world.trade(users[a], users[b], rng.randrange(2), rng.random() < 0.5, rng.randrange(1, 20),
                                   300_000 if rng.random() < 0.5 else 1_000_000))
        elif pick == 1:
            out.append(world.withdraw(users[a], rng.randrange(1, 100_000)))
        elif pick == 2:
            out.append(world.cancel(users[b]))
        else:
            out.append(world.funding_tick(rng.randrange(2), rng.randrange(-10, 10)))
    return out


def tamper(state: State, rng: random.Random) -> None:
    """Change one field of one record: what a plausible lie looks like."""
    pick = rng.randrange(4)
    if pick == 0:
        account_id = rng.choice(sorted(state.accounts))
        account = state.account(account_id)
        state.set_accounts({account_id: account._replace(collateral=account.collateral + rng.choice([-1, 1, 10**6]))})
    elif pick == 1 and any(a.positions for a in state.accounts.values()):
        account_id = rng.choice(sorted(i for i, a in state.accounts.items() if a.positions))
        account = state.account(account_id)
        position = account.positions[0]._replace(size=account.positions[0].size + 1)
        state.set_accounts({account_id: account._replace(positions=(position, *account.positions[1:]))})
    elif pick == 2:
        market: Market = state.markets[rng.randrange(2)]  # type: ignore[assignment]
        state.set_market(market._replace(oracle_price=market.oracle_price + 1))
    else:
        g: Globals = state.globals
        state.set_globals(g._replace(fee_pool=g.fee_pool + 1))


def roots_of(state: State, txs: list[bytes], context: Any, lie: tuple[int, random.Random] | None = None,
             ) -> list[bytes]:
    """The roots of `txs` applied to a copy of `state`; with `lie` = (step, rng), one field
    of the state is changed after that step (and the later roots go on from the lie)."""
    state = state.copy()
    out = []
    for i, tx in enumerate(txs):
        apply(state, tx, context)
        if lie is not None and i == lie[0]:
            tamper(state, lie[1])
        out.append(state.root())
    return out


def rogue_batch(world: World, rng: random.Random, kind: str) -> tuple[list[bytes], list[bytes], int, bool]:
    """(txs, roots, timestamp, whether every root is true) of one batch on the world's state."""
    if kind == "random":
        txs = [rng.randbytes(rng.randrange(0, 120)) for _ in range(rng.randrange(1, 6))]
    else:
        txs = [AdvanceTime(world.now()).encode(), *valid_txs(world, rng)]
    original = list(txs)
    if kind.startswith("truncated"):
        i = rng.randrange(1, len(txs))
        txs[i] = txs[i][: rng.randrange(len(txs[i]))]
    # the batch's time: its AdvanceTime's, else the clock's, but never so old that L1 refuses
    # it (a run of wrong batches leaves the clock behind while L1 time moves on)
    timestamp = max(batch_time(txs, world.state.globals.time), world.now() - 60)
    context = world.context(timestamp)
    truth = roots_of(world.state, txs, context)
    if kind == "random":
        roots = [rng.randbytes(32) for _ in txs]
    elif kind == "truncated-as-valid":  # posted as if the cut transaction had its effect
        roots = roots_of(world.state, original, context)
    elif kind == "one-field":
        roots = roots_of(world.state, txs, context, (rng.randrange(len(txs)), rng))
    else:
        roots = truth
    return txs, roots, timestamp, roots == truth


@pytest.mark.slow
def test_rogue_proposer_fuzz(anvil_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with l1_snapshot(anvil_url):
        deployment = deploy(L1(anvil_url, DEV_KEYS[0]), params=params_for(
            SEQUENCER, challenge_window=WINDOW, silence_period=SILENCE, reward_delay=10**6))
        world = make_world(anvil_url, deployment, SEQUENCER, DEV_KEYS[3:7])
        world.post([world.trade(world.users[0], world.users[1], 0, True, 50, 300_000)])  # positions to tamper with
        outsider = RollupL1(L1(anvil_url, OUTSIDER), deployment)
        outsider.bond()
        honest = Watcher(anvil_url, deployment, HONEST, tmp_path / "honest.sqlite3")
        hostile = Watcher(anvil_url, deployment, HOSTILE, tmp_path / "hostile.sqlite3", hostile=True, seed=3)
        world.travel(SILENCE)
        rng = random.Random(2026)
        outcomes: Counter[tuple[str, bool]] = Counter()
        wrong_ids, right_ids = [], []
        with caplog.at_level(logging.INFO, logger="challengers"):
            for n in range(BATCHES):
                kind = KINDS[n % len(KINDS)] if n < len(KINDS) else rng.choice(KINDS)
                txs, roots, timestamp, true = rogue_batch(world, rng, kind)
                if int(outsider.rollup.functions.bonds(outsider.l1.address).call()) == 0:
                    outsider.bond()  # slashed by the last proof: bond again
                batch_id, _ = outsider.submit(txs, roots, timestamp)
                honest.step()
                hostile.step()
                status = outsider.batch(batch_id).status
                outcomes[(kind, true)] += 1
                if true:
                    assert status == PENDING, (n, kind)
                    right_ids.append(batch_id)
                    context = world.context(timestamp)
                    for tx in txs:
                        apply(world.state, tx, context)
                else:
                    assert status == REVERTED, (n, kind)
                    assert [c.outcome for c in honest.store.challenges(batch_id=batch_id)] == [st.PROVEN], (n, kind)
                    wrong_ids.append(batch_id)
                world.travel(1)
                if len(right_ids) and n % 100 == 99:  # let the correct batches finalize (room for more)
                    world.travel(WINDOW)
                    outsider.finalize()
            world.travel(WINDOW + 1)
            while outsider.finalize().get("logs"):
                pass
            honest.step()
            hostile.step()
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert errors == [], [r.getMessage() for r in errors[:5]]
        print(f"\nrogue batches: {BATCHES}; by (kind, correct): {sorted(outcomes.items())}")
        assert len(wrong_ids) + len(right_ids) == BATCHES >= 100
        assert {kind for kind, _ in outcomes} == set(KINDS) and len(wrong_ids) > 0 and len(right_ids) > 0
        assert {outsider.batch(i).status for i in right_ids} == {FINAL}
        assert {outsider.batch(i).status for i in wrong_ids} == {REVERTED}
        hostile_tries = hostile.store.challenges(kind=st.HOSTILE)
        assert {c.batch_id for c in hostile_tries} >= set(right_ids)  # and the sequencer's first batches
        assert {c.outcome for c in hostile_tries} == {st.REFUSED}
        honest.close()
        hostile.close()

