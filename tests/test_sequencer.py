"""The operator's sequencer on a real L1: batches opened with the time and the L1 queues,
cut and posted; a restart from the store rebuilds the same state; a batch cut but not
recorded as posted is recognised on L1 (or posted again); after L1 reverts a fraudulent
batch the sequencer goes back to the last good state and sequences the rest again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3
from web3.types import RPCEndpoint

from rollup.deploy import Deployment, deploy
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.rollup_client import REVERTED, RollupL1
from rollup.operator.sequencer import Sequencer
from rollup.operator.store import Store
from rollup.stf import apply, builders
from rollup.stf.fork import Context
from rollup.stf.state import State
from tests.conftest import params_for

KEYS = [bytes(a.key) for a in dev_accounts(8)]
DEPLOYER, PROPOSER, CHALLENGER, ALICE, BOB = KEYS[:5]


@pytest.fixture(scope="module")
def deployment(l1_url: str) -> Deployment:
    return deploy(L1(l1_url, DEPLOYER), params=params_for(PROPOSER, challenge_window=600, inclusion_delay=1_200))


@pytest.fixture
def l1(l1_url: str, deployment: Deployment) -> Iterator[str]:
    w3 = Web3(Web3.HTTPProvider(l1_url))
    snapshot = w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    yield l1_url
    w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])


def make(url: str, deployment: Deployment, path: Path, **kwargs: object) -> Sequencer:
    chain = RollupL1(L1(url, PROPOSER), deployment)
    if not chain.rollup.functions.bonds(chain.l1.address).call():
        chain.bond()
    seq = Sequencer(Store(path), chain, max_age=0.0, heartbeat=3_600, **kwargs)  # type: ignore[arg-type]
    seq.recover()
    return seq


def fund(url: str, deployment: Deployment, key: bytes, amount: int) -> RollupL1:
    user = RollupL1(L1(url, key), deployment)
    user.deposit(user.l1.address, amount)
    return user


def withdraw_tx(seq: Sequencer, user: RollupL1, amount: int, nonce: int, key: bytes) -> bytes:
    account = int(user.bridge.functions.account_of(user.l1.address).call())
    context = Context(seq.config, 0)
    return builders.withdraw(account, amount, nonce, 2**40, key, context).encode()


def test_batches_restart_and_reconcile(l1: str, deployment: Deployment, tmp_path: Path) -> None:
    alice = fund(l1, deployment, ALICE, 5_000_000)
    seq = make(l1, deployment, tmp_path / "op.db")
    seq.tick()  # the queue moved: a batch opens with the time and the deposit
    assert seq.batch is not None and len(seq.batch.txs) == 2
    seq.tick()  # due (max_age 0): cut and posted
    assert len(seq.posted) == 1 and seq.batch is None
    assert seq.chain.batch(seq.posted[0].l1_id).state_root == seq.state.root()
    with seq.store.transaction() as db:
        receipt = seq.sequence(db, withdraw_tx(seq, alice, 1_000_000, 1, ALICE))
    assert receipt.ok
    refused = None
    with seq.store.transaction() as db:
        refused = seq.sequence(db, withdraw_tx(seq, alice, 1_000_000, 1, ALICE))  # nonce used
    assert not refused.applied and len(seq.batch.txs) == 2
    head = seq.state.root()

    # a restart mid-batch: the open batch and its transactions come back
    again = make(l1, deployment, tmp_path / "op.db")
    assert again.state.root() == head and again.batch is not None and len(again.posted) == 1
    # cut, then "crash" before the post is recorded: the restart finds it on L1
    with again.store.transaction() as db:
        again.cut(db)
    cut = again.cut_batches[0]
    again.chain.submit(cut.txs, cut.roots, cut.timestamp, position=1)
    third = make(l1, deployment, tmp_path / "op.db")
    assert len(third.posted) == 2 and not third.cut_batches
    assert third.state.root() == head
    assert int(third.chain.rollup.functions.length().call()) == 2


def test_resume_after_a_proven_fraud(l1: str, deployment: Deployment, tmp_path: Path) -> None:
    alice = fund(l1, deployment, ALICE, 5_000_000)

    def lie_at_the_end(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> tuple[list[bytes], list[bytes]]:
        return txs, roots[:-1] + [b"\x66" * 32]

    seq = make(l1, deployment, tmp_path / "op.db", corrupt=lie_at_the_end)
    seq.tick()
    pre = seq.state.copy()
    seq.tick()
    bad = seq.posted[0]
    challenger = RollupL1(L1(l1, CHALLENGER), deployment)
    with seq.store.transaction() as db:
        assert seq.sequence(db, withdraw_tx(seq, alice, 1_000_000, 1, ALICE)).ok
    # the proof: the deposit step (the last one) was posted with a wrong root
    step = len(bad.txs) - 1
    state = seq.genesis.copy()
    context = seq.context_for(*(seq.store.query("SELECT timestamp, deposit_count, forced_count FROM batches WHERE local = ?",
                                                (bad.local,))[0]))
    for tx in bad.txs[:step]:
        apply(state, tx, context)
    assert bad.posted_roots is not None and bad.posted_txs == bad.txs
    challenger.challenge(bad.l1_id, step, bad.txs, bad.posted_roots, state)
    assert challenger.batch(bad.l1_id).status == REVERTED
    seq.chain.bond()  # slashed: bond again to resume
    seq.tick()  # sees the revert, resumes from genesis, sequences the withdrawal again
    seq.tick()
    seq.tick()
    assert seq.posted and seq.posted[0].position == 0 and seq.posted[0].l1_id != bad.l1_id
    assert seq.state.root() == seq.chain.batch(seq.posted[-1].l1_id).state_root
    assert len(seq.state.withdrawals) == 1 and seq.state.root() != pre.root()
    restarted = make(l1, deployment, tmp_path / "op.db")
    assert restarted.state.root() == seq.state.root()


def test_withdrawal_index_answered_after_the_batch_opens(l1: str, deployment: Deployment, tmp_path: Path) -> None:
    """A user's withdrawal that opens a batch comes after the forced withdrawals the batch
    opens with: the index the API answers is the user's record, not the forced one's."""
    from rollup.operator.service import OperatorService

    alice = fund(l1, deployment, ALICE, 5_000_000)
    bob = fund(l1, deployment, BOB, 5_000_000)
    seq = make(l1, deployment, tmp_path / "op.db")
    service = OperatorService(seq, funding_interval=10**9)
    seq.tick()
    seq.tick()  # the deposits' batch cut and posted: no batch open
    assert seq.batch is None
    bob.force_withdraw(2_000_000)
    seq.refresh()  # the forced request is read; the next batch opens with it
    account = int(alice.bridge.functions.account_of(alice.l1.address).call())
    signed = builders.withdraw(account, 1_000_000, 1, 2**40, ALICE, Context(seq.config, 0))
    with seq.lock:
        answer = service.rpc_withdraw([account, 1_000_000, 1, 2**40, "0x" + signed.signature.hex()])
    assert seq.state.globals.withdrawal_count == 2  # the forced one, then alice's
    record = seq.state.withdrawals[answer["index"]]
    assert answer["index"] == 1 and record.owner == bytes.fromhex(alice.l1.address[2:]) and record.amount == 1_000_000
