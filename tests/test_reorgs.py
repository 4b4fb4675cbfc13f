"""L1 reorganisations, on our node (evm_snapshot / evm_revert, then new blocks) and on
anvil (anvil_reorg): a deposit credited by a batch disappears with the blocks that held
it, and the same batch is posted again on the new chain, where the deposit at that
index is another or none. The watcher notices the blocks it read are gone, rolls back to
the common ancestor, reads the queues anew and proves the batch wrong (a stale copy of
the queue would find it valid). The operator takes deposits only `confirmations` blocks
deep, and when a reorganisation drops entries or batches under its unposted (or posted)
work, it sequences that work again: it never posts a batch the new chain makes wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.types import RPCEndpoint

from challengers import store as st
from challengers.watcher import Watcher
from rollup.deploy import Deployment, deploy
from rollup.l1.client import L1
from rollup.l1.rollup_client import REVERTED, RollupL1
from rollup.l1.world import make_world
from rollup.operator.sequencer import Sequencer
from rollup.operator.store import Store
from tests.conftest import DEV_KEYS, l1_snapshot, params_for

DEPLOYER, SEQUENCER, WATCHER = DEV_KEYS[0], DEV_KEYS[1], DEV_KEYS[2]
ALICE, BOB = DEV_KEYS[3], DEV_KEYS[4]


class Reorg:
    """Drop the blocks mined since `mark()` and mine `replace` new, empty ones."""

    def __init__(self, w3: Web3, backend: str) -> None:
        self.w3, self.backend = w3, backend
        self.snapshot: Any = None
        self.height = 0

    def mark(self) -> None:
        self.height = int(self.w3.eth.block_number)
        if self.backend == "rollup-l1":
            self.snapshot = self.w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]

    def __call__(self, replace: int = 1) -> None:
        depth = int(self.w3.eth.block_number) - self.height
        dropped = {int(self.w3.eth.get_block(self.height + i)["hash"].hex(), 16) for i in range(1, depth + 1)}
        if self.backend == "rollup-l1":
            self.w3.provider.make_request(RPCEndpoint("evm_revert"), [self.snapshot])
            for _ in range(max(replace, depth)):
                self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
        else:
            answer = self.w3.provider.make_request(RPCEndpoint("anvil_reorg"), [depth, []])
            assert "error" not in answer, answer
            for _ in range(max(0, replace - depth)):
                self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
        kept = {int(self.w3.eth.get_block(self.height + i)["hash"].hex(), 16) for i in range(1, depth + 1)}
        assert not dropped & kept, "the blocks were not replaced"


@pytest.fixture(params=["rollup-l1", "anvil"])
def node(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    url = str(request.getfixturevalue("anvil_url" if request.param == "anvil" else "l1_url"))
    with l1_snapshot(url):
        yield url, request.param


def deployment_on(url: str) -> Deployment:
    return deploy(L1(url, DEPLOYER), params=params_for(SEQUENCER, challenge_window=3_600, inclusion_delay=7_200))


def test_a_batch_crediting_a_deposit_the_reorg_dropped_is_proven(node: tuple[str, str], tmp_path: Path) -> None:
    url, backend = node
    deployment = deployment_on(url)
    world = make_world(url, deployment, SEQUENCER, [ALICE])
    watcher = Watcher(url, deployment, WATCHER, tmp_path / "watcher.sqlite3")
    watcher.step()
    reorg = Reorg(world.w3, backend)
    reorg.mark()
    state, history, seen = world.state.copy(), list(world.history), world.deposits_seen
    alice = world.users[0]
    alice.chain.deposit(alice.address, 7_000_000)
    world.travel(1)
    credited = world.post([world.advance(), *world.new_deposits()])
    watcher.step()
    assert watcher.verdicts()[credited.id] == st.VALID
    reorg(replace=3)  # the deposit and the batch are gone
    world.state, world.history, world.deposits_seen = state, history, seen
    bob = RollupL1(L1(url, BOB), deployment)
    bob.deposit(bob.l1.address, 1_000_000)  # on the new chain, deposit of that index is another
    # the same batch, word for word, posted again on the new chain
    timestamp = int.from_bytes(credited.txs[0][1:], "big")  # its AdvanceTime's
    world.travel(max(1, timestamp - world.now() + 1))
    reposted, _ = world.proposer.submit(credited.txs, credited.roots, timestamp)
    watcher.step()
    watcher.step()
    row = watcher.store.batch(reposted)
    assert row is not None and row.verdict == st.INVALID and row.bad_step == 1  # the Deposit step
    assert world.proposer.batch(reposted).status == REVERTED
    assert [c.outcome for c in watcher.store.challenges()] == [st.PROVEN]
    watcher.close()


def sequencer(url: str, deployment: Deployment, path: Path, confirmations: int) -> Sequencer:
    chain = RollupL1(L1(url, SEQUENCER), deployment)
    chain.bond()
    seq = Sequencer(Store(path), chain, max_age=0.0, heartbeat=3_600, confirmations=confirmations)
    seq.recover()
    return seq


def deposit_after_a_mark(node: tuple[str, str], path: Path, confirmations: int
                         ) -> tuple[str, Deployment, Sequencer, Reorg]:
    """A deployment and the operator in process (`confirmations` deep); a mark to
    reorganise back to; then Alice's deposit."""
    url, backend = node
    deployment = deployment_on(url)
    seq = sequencer(url, deployment, path, confirmations=confirmations)
    reorg = Reorg(seq.chain.l1.w3, backend)
    reorg.mark()
    alice = RollupL1(L1(url, ALICE), deployment)
    alice.deposit(alice.l1.address, 5_000_000)
    return url, deployment, seq, reorg


def valid_chain(url: str, deployment: Deployment, path: Path) -> dict[int, str]:
    watcher = Watcher(url, deployment, WATCHER, path)
    try:
        watcher.step()
        return watcher.verdicts()
    finally:
        watcher.close()


def test_the_operator_takes_only_confirmed_deposits(node: tuple[str, str], tmp_path: Path) -> None:
    """With a confirmation depth of 3, a deposit is not taken until 3 blocks bury it; a
    reorganisation that drops it first leaves no trace in the operator's batches."""
    url, deployment, seq, reorg = deposit_after_a_mark(node, tmp_path / "op.db", confirmations=3)
    w3 = seq.chain.l1.w3
    for _ in range(2):
        seq.tick()
        assert seq.state.globals.deposit_count == 0 and seq.batch is None  # not yet 3 blocks deep
    reorg(replace=2)
    for _ in range(4):
        w3.provider.make_request(RPCEndpoint("evm_mine"), [])
        seq.tick()
    assert seq.state.globals.deposit_count == 0
    bob = RollupL1(L1(url, BOB), deployment)
    bob.deposit(bob.l1.address, 2_000_000)
    for _ in range(4):
        w3.provider.make_request(RPCEndpoint("evm_mine"), [])
    seq.tick()
    seq.tick()
    assert seq.state.globals.deposit_count == 1 and seq.state.account(1).owner == bytes.fromhex(bob.l1.address[2:])
    assert seq.posted and set(valid_chain(url, deployment, tmp_path / "w.sqlite3").values()) == {st.VALID}


@pytest.mark.parametrize("posted", [False, True], ids=["unposted", "posted"])
def test_the_operator_sequences_again_what_a_reorg_undid(node: tuple[str, str], tmp_path: Path,
                                                         posted: bool) -> None:
    """Without a confirmation depth the operator takes a deposit at once; a reorganisation
    then drops it (and, in the second case, the operator's batch that credited it). The
    operator notices, sequences its work again on the new chain, and every batch it
    posts is valid."""
    url, deployment, seq, reorg = deposit_after_a_mark(node, tmp_path / "op.db", confirmations=0)
    seq.tick()  # a batch opens with the deposit
    assert seq.batch is not None and seq.state.globals.deposit_count == 1
    if posted:
        seq.tick()
        assert seq.posted and seq.batch is None
    reorg(replace=3)
    bob = RollupL1(L1(url, BOB), deployment)
    bob.deposit(bob.l1.address, 2_000_000)  # deposit 0 on the new chain is Bob's
    for _ in range(3):
        seq.tick()
    assert seq.state.globals.deposit_count == 1
    assert seq.state.account(1).owner == bytes.fromhex(bob.l1.address[2:]) and seq.state.account(1).collateral == 2_000_000
    assert seq.posted and seq.state.root() == seq.chain.batch(seq.posted[-1].l1_id).state_root
    assert set(valid_chain(url, deployment, tmp_path / "w.sqlite3").values()) == {st.VALID}


def test_the_explorer_forgets_what_a_reorg_undid(node: tuple[str, str]) -> None:
    """The explorer's index (rollup/explorer/index.py) shows a deposit and the batch that
    credited it; L1 reorganises them away; the next refresh reads L1 again and shows the
    new chain's batch and none of the old."""
    from rollup.explorer.index import L1Index

    url, backend = node
    deployment = deployment_on(url)
    world = make_world(url, deployment, SEQUENCER, [ALICE])
    index = L1Index(deployment, url)
    index.refresh()
    reorg = Reorg(world.w3, backend)
    reorg.mark()
    state, history, seen = world.state.copy(), list(world.history), world.deposits_seen
    before = {b["id"] for b in index.batch_list(500)}
    alice = world.users[0]
    alice.chain.deposit(alice.address, 7_000_000)
    world.travel(1)
    credited = world.post([world.advance(), *world.new_deposits()])
    assert index.refresh()
    assert credited.id in {b["id"] for b in index.batch_list(500)}
    assert (index.deposits[-1]["owner"], index.deposits[-1]["amount"]) == (alice.address, 7_000_000)
    version = index.version
    reorg(replace=3)  # the deposit and the batch are gone
    world.state, world.history, world.deposits_seen = state, history, seen
    assert index.refresh() and index.version > version
    assert {b["id"] for b in index.batch_list(500)} == before
    assert all(d["amount"] != 7_000_000 for d in index.deposits)
    world.travel(1)
    again = world.post([world.advance()])
    assert again.id == credited.id  # the new chain's batch takes the dropped one's id
    index.refresh()
    shown = index.batch(again.id)
    assert shown is not None and shown["steps"] == 1 and [s["type"] for s in shown["step_list"]] == ["AdvanceTime"]

