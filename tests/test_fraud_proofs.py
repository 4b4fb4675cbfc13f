"""One-step fraud proofs on a real EVM, for every transaction type: a batch whose posted
root after that transaction is wrong is proven wrong on L1 (commitment, then the reveal
one block later: reverted, proposer slashed), and the same transaction posted honestly
survives the same challenge. Prints the gas of each kind of proof.

Every kind is proven once, in a session fixture; the tests read its results, in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from web3.logs import DISCARD

from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1, L1Error
from rollup.l1.rollup_client import PENDING, REVERTED, RollupL1
from rollup.l1.world import SCENARIOS, make_world
from tests.conftest import DEV_KEYS, deploy_rollup, l1_snapshot

KEYS = [bytes(a.key) for a in dev_accounts(8)]
CHALLENGER = KEYS[2]
GAS_CEILING = 1_000_000


@dataclass(frozen=True)
class Proof:
    kind: str
    step: int
    event: dict[str, Any]
    status_after: int
    commit_gas: int
    reveal_gas: int
    honest_refusals: tuple[str, ...]
    """L1's refusal of a challenge of each step of the same transactions posted honestly."""
    honest_status: int
    other_step_refusal: str | None
    """L1's refusal of a challenge of another (correct) step of the lying batch."""


def refusal(call: Any, *args: Any) -> str | None:
    try:
        call(*args)
    except L1Error as exc:
        return exc.reason
    return None


@pytest.fixture(scope="session")
def proofs(l1_url: str) -> dict[str, Proof]:
    """Each kind of transaction, valid, posted with a wrong root after it and proven."""
    deployment = deploy_rollup(l1_url)
    out = {}
    for kind, scenario in SCENARIOS.items():
        with l1_snapshot(l1_url):
            world = make_world(l1_url, deployment, DEV_KEYS[1], DEV_KEYS[3:7])
            challenger = RollupL1(L1(world.url, CHALLENGER), world.deployment)
            txs = scenario(world)
            step = len(txs) - 1
            start = world.state.copy()
            lying = world.post(txs, lie_at=step)
            assert lying.receipts[step].ok, (kind, lying.receipts[step])  # a valid transaction, a wrong root
            other = None
            if step > 0:
                other = refusal(challenger.challenge, lying.id, 0, lying.txs, lying.roots, lying.pre_states[0])
            receipt = challenger.challenge(lying.id, step, lying.txs, lying.roots, lying.pre_states[step])
            event = challenger.rollup.events.FraudProven().process_receipt(receipt, errors=DISCARD)[0]["args"]
            commit = world.w3.eth.get_block(event["commit_block"], full_transactions=True)["transactions"][0]
            assert not isinstance(commit, bytes)  # full transactions, not their hashes
            commit_gas = int(world.w3.eth.get_transaction_receipt(commit["hash"])["gasUsed"])
            status_after = world.proposer.batch(lying.id).status

            # the proposer re-bonds and posts the same transactions honestly: they survive
            world.state = start
            world.proposer.bond()
            honest = world.post(txs)
            refusals = tuple(
                str(refusal(challenger.challenge, honest.id, i, honest.txs, honest.roots, honest.pre_states[i]))
                for i in range(len(txs)))
            out[kind] = Proof(kind, step, dict(event), status_after, commit_gas, int(receipt["gasUsed"]), refusals,
                              world.proposer.batch(honest.id).status, other)
    return out


@pytest.mark.parametrize("kind", list(SCENARIOS))
def test_wrong_root_is_proven_and_honest_step_survives(proofs: dict[str, Proof], kind: str) -> None:
    proof = proofs[kind]
    assert proof.event["step"] == proof.step and proof.event["reason"] == 0
    assert proof.status_after == REVERTED
    assert proof.other_step_refusal in (None, "challenge: step is correct")
    assert set(proof.honest_refusals) == {"challenge: step is correct"}
    assert proof.honest_status == PENDING


def test_print_proof_gas(proofs: dict[str, Proof]) -> None:
    """The gas of each kind of proof: the commitment and the reveal (the whole fraud proof)."""
    assert set(proofs) == set(SCENARIOS)
    width = max(len(k) for k in proofs)
    print("\nfraud-proof gas (commitment + reveal):")
    for kind, proof in proofs.items():
        print(f"  {kind:<{width}}  {proof.commit_gas:>7,} + {proof.reveal_gas:>9,}")
    assert max(p.reveal_gas for p in proofs.values()) < GAS_CEILING
