"""One-step fraud proofs on a real EVM, for every transaction type: a batch whose posted
root after that transaction is wrong is proven wrong on L1 in one transaction (reverted,
proposer slashed), and the same transaction posted honestly survives the same challenge.
Prints the gas of each kind of proof."""

from __future__ import annotations

from typing import Any

import pytest
from web3.logs import DISCARD

from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1, L1Error
from rollup.l1.rollup_client import PENDING, REVERTED, RollupL1
from rollup.l1.world import SCENARIOS, World

KEYS = [bytes(a.key) for a in dev_accounts(8)]
DEPLOYER, PROPOSER, CHALLENGER = KEYS[0], KEYS[1], KEYS[2]
USERS = KEYS[3:7]

GAS: dict[str, int] = {}


def refused(reason: str, call: Any, *args: Any) -> None:
    with pytest.raises(L1Error) as info:
        call(*args)
    assert info.value.reason == reason, info.value


@pytest.mark.parametrize("kind", list(SCENARIOS))
def test_wrong_root_is_proven_and_honest_step_survives(world: World, kind: str) -> None:
    challenger = RollupL1(L1(world.url, CHALLENGER), world.deployment)
    txs = SCENARIOS[kind](world)
    step = len(txs) - 1
    start = world.state.copy()
    lying = world.post(txs, lie_at=step)
    assert lying.receipts[step].ok, (kind, lying.receipts[step])  # a valid transaction, a wrong root
    # challenging another step of the same batch fails and changes nothing
    if step > 0:
        refused("challenge: step is correct", challenger.challenge, lying.id, 0, lying.txs, lying.roots,
                lying.pre_states[0])
    receipt = challenger.challenge(lying.id, step, lying.txs, lying.roots, lying.pre_states[step])
    proven = challenger.rollup.events.FraudProven().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert proven["id"] == lying.id and proven["step"] == step and proven["reason"] == 0
    assert world.proposer.batch(lying.id).status == REVERTED
    GAS[kind] = int(receipt["gasUsed"])

    # the proposer re-bonds and posts the same transactions honestly: they survive
    world.state = start
    world.proposer.bond()
    honest = world.post(txs)
    for i in range(len(txs)):
        refused("challenge: step is correct", challenger.challenge, honest.id, i, honest.txs, honest.roots,
                honest.pre_states[i])
    assert world.proposer.batch(honest.id).status == PENDING


def test_print_proof_gas() -> None:
    """The gas of each kind of proof (a whole challenge transaction), measured above."""
    if not GAS:
        pytest.skip("no proofs ran")
    width = max(len(k) for k in GAS)
    print("\nfraud-proof gas (whole challenge transaction):")
    for kind, gas in GAS.items():
        print(f"  {kind:<{width}}  {gas:>9,}")
    assert max(GAS.values()) < 1_000_000
