"""Hostile challenges: against correct batches of every transaction type, challenges with
one part forged (a field of the witness, a sibling of either step path, the step index,
the disputed step's data or posted root, the previous step's root, hash or path, the
batch id). Every one is refused by L1 with the contract's named reason, and no batch is
reverted: a forgery that slipped through would reach the commitment check and be refused
as "challenge: not committed", which is counted as a failure.

On anvil (its EVM is fast): 1,000 forgeries in CI, 10,000 with ROLLUP_LONG=1, by eth_call.
On our py-evm node: a sample sent as real transactions, mined and refused on chain.
The forgeries are made once, in a session fixture; the tests read what it counted.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from web3.types import RPCEndpoint

from rollup.batch import step_proof
from rollup.contracts import encode_call, function_abi
from rollup.deploy import Deployment, deploy
from rollup.l1 import records
from rollup.l1.client import L1, EncodedCall
from rollup.l1.rollup_client import PENDING, RollupL1
from rollup.l1.world import SCENARIOS, World, make_world
from rollup.listing import devnet_listing
from rollup.stf.hashing import ZERO_HASH, keccak
from rollup.stf.witness import step_witness
from tests.conftest import DEV_KEYS, l1_snapshot, params_for
from tests.forge import WITNESS, change, forge, leaves
from tests.verifier_harness import ALL_TAGS, revert_string

LONG = bool(os.environ.get("ROLLUP_LONG"))
FORGERIES = 10_000 if LONG else 1_000
SENT_ON_PY_EVM = 200 if LONG else 40
HOSTILE = DEV_KEYS[9]
PARTS = ("witness", "path", "step", "data", "posted_root", "previous_root", "previous_tx_hash", "previous_path",
         "batch_id")
NAMED = ("challenge: no such step", "challenge: step not in batch", "challenge: previous step not in batch",
         "challenge: step is correct", "challenge: batch not pending")


def named(reason: str) -> bool:
    return reason in NAMED or reason.startswith("witness: ")


@dataclass
class Target:
    """A correct step of a correct batch, and the true arguments of a challenge of it."""

    kind: str
    batch_id: int
    step: int
    args: list[Any]


@dataclass
class Counts:
    by_reason: Counter[str] = field(default_factory=Counter)
    by_part: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_tag: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    fraud_events: int = 0


def correct_batches(url: str) -> tuple[World, list[Target]]:
    """A world with a correct batch of every kind of transaction, and the targets."""
    l1 = L1(url, DEV_KEYS[0])
    deployment: Deployment = deploy(l1, params=params_for(DEV_KEYS[1], challenge_window=10**6),
                                    listing=devnet_listing(int(l1.w3.eth.get_block("latest")["timestamp"])))
    world = make_world(url, deployment, DEV_KEYS[1], DEV_KEYS[3:7])
    targets = []
    for kind, scenario in SCENARIOS.items():
        posted = world.post(scenario(world))
        for step, tx in enumerate(posted.txs):
            path = step_proof(posted.txs, posted.roots, step)
            if step:
                previous = [posted.roots[step - 1], keccak(posted.txs[step - 1]),
                            step_proof(posted.txs, posted.roots, step - 1)]
            else:
                previous = [ZERO_HASH, ZERO_HASH, []]
            witness = records.step_witness(step_witness(posted.pre_states[step], tx))
            targets.append(Target(kind, posted.id, step, [posted.id, step, tx, posted.roots[step], path, *previous,
                                                          witness, b"\x05" * 32]))
    return world, targets


def forged(target: Target, rng: random.Random, ids: list[int]) -> tuple[str, list[Any]]:
    """The target's challenge with one part forged: (the part, the arguments)."""
    args = list(target.args)
    part = rng.choice(PARTS)
    if part == "witness":
        args[8], _ = forge(args[8], rng, [p for p in leaves(args[8]) if p[0] == rng.randrange(len(WITNESS))], WITNESS)
    elif part in ("path", "previous_path"):
        index = 4 if part == "path" else 7
        path = list(args[index])
        if path and rng.random() < 0.7:
            path[rng.randrange(len(path))] = change(path[rng.randrange(len(path))], rng)
        elif path and rng.random() < 0.5:
            path.pop()
        else:
            path.append(rng.randbytes(32))
        args[index] = path
    elif part == "step":
        args[1] = rng.choice([args[1] + 1, max(0, args[1] - 1) if args[1] else args[1] + 2, rng.randrange(2**16)])
    elif part == "data":
        data = bytearray(args[2] or b"\x00")
        data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
        args[2] = bytes(data)
    elif part == "batch_id":
        args[0] = rng.choice([i for i in ids if i != args[0]])
    else:
        index = {"posted_root": 3, "previous_root": 5, "previous_tx_hash": 6}[part]
        args[index] = change(args[index], rng)
    return part, args


@pytest.fixture(scope="session")
def anvil_forgeries(anvil_url: str) -> Counts:
    """FORGERIES forged challenges, by eth_call on anvil."""
    counts = Counts()
    with l1_snapshot(anvil_url):
        world, targets = correct_batches(anvil_url)
        selector, types = function_abi("Rollup", "challenge")
        rollup = world.proposer.rollup.address
        rng = random.Random(11)
        ids = sorted({t.batch_id for t in targets})
        for i in range(FORGERIES):
            target = targets[i % len(targets)]
            part, args = forged(target, rng, ids)
            data = selector + abi_encode(types, args)
            answer = world.w3.provider.make_request(RPCEndpoint("eth_call"), [
                {"from": L1(anvil_url, HOSTILE).address, "to": rollup, "data": "0x" + data.hex()}, "latest"])
            reason = revert_string(answer["error"]) if "error" in answer else "<accepted>"
            counts.by_reason[reason] += 1
            counts.by_part[part] += 1
            counts.by_kind[target.kind] += 1
            counts.by_tag[target.args[2][0] if target.args[2] else 0] += 1
            if not named(reason):
                counts.failures.append(f"{target.kind} step {target.step}, forged {part}: {reason or '<no reason>'}")
        counts.statuses = {world.proposer.batch(i).status for i in ids}
    return counts


@pytest.mark.slow
def test_every_forged_challenge_is_refused_with_a_named_reason(anvil_forgeries: Counts) -> None:
    counts = anvil_forgeries
    print(f"\nforged challenges: {sum(counts.by_reason.values())}; by refusal: {sorted(counts.by_reason.items())}")
    assert sum(counts.by_reason.values()) >= FORGERIES
    assert counts.failures == []
    assert set(counts.by_kind) == set(SCENARIOS)
    assert set(counts.by_tag) >= ALL_TAGS  # against a correct step of every transaction type
    assert set(counts.by_part) == set(PARTS)
    for reason in ("challenge: step not in batch", "challenge: previous step not in batch", "challenge: no such step",
                   "challenge: step is correct"):
        assert counts.by_reason[reason] > 0, reason
    assert any(r.startswith("witness: ") for r in counts.by_reason)
    assert counts.statuses == {PENDING}  # no batch reverted


@pytest.mark.slow
def test_forged_challenges_mined_on_our_node_are_refused(l1_url: str) -> None:
    """A sample sent as real transactions on our node: each mined and reverted, with a
    named reason; no batch reverted, no FraudProven event."""
    with l1_snapshot(l1_url):
        world, targets = correct_batches(l1_url)
        hostile = RollupL1(L1(l1_url, HOSTILE), world.deployment)
        ids = sorted({t.batch_id for t in targets})
        rng = random.Random(12)
        reasons: Counter[str] = Counter()
        for i in range(SENT_ON_PY_EVM):
            target = targets[(i * 7) % len(targets)]
            _, args = forged(target, rng, ids)
            call = EncodedCall(hostile.l1.w3, hostile.rollup.address, encode_call("Rollup", "challenge", args))
            receipt = hostile.l1.w3.eth.wait_for_transaction_receipt(hostile.l1.w3.eth.send_raw_transaction(
                hostile.l1.account.sign_transaction(call.build_transaction({  # type: ignore[union-attr]
                    "from": hostile.l1.address, "gas": 1_500_000, "chainId": hostile.l1.chain_id,
                    "nonce": hostile.l1.w3.eth.get_transaction_count(hostile.l1.address, "pending"),
                    **hostile.l1.fees()})).raw_transaction))
            assert receipt["status"] == 0
            try:
                call.call({"from": hostile.l1.address}, block_identifier=receipt["blockNumber"])
                reason = "<accepted>"
            except Exception as exc:  # noqa: BLE001 - the revert reason is what is checked
                reason = str(getattr(exc, "message", exc)).split("execution reverted: ")[-1]
            reasons[reason] += 1
            assert named(reason), (target.kind, target.step, reason)
        assert {world.proposer.batch(i).status for i in ids} == {PENDING}
        assert not hostile.rollup.events.FraudProven().get_logs(from_block=world.deployment.deploy_block)
        print(f"\nmined forged challenges: {sorted(reasons.items())}")
