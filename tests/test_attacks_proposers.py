"""Attacks on the proposer side, through real L1 transactions, against the operator's own
code (its sequencer and API in process, over our py-evm node or anvil):

- a bonded outsider posts at the tip once the sequencer has been silent (with a user's
  signed cancel in it): the operator adopts the batch, sequences its unposted work again
  on top, keeps every acknowledged order in step with the state, and carries on; the
  outsider's departure and a later forced request change nothing;
- after L1 reverts a batch of the operator, every honest deposit, forced request and user
  transaction of it is sequenced again, and each one is found in the new batches on L1;
- a backlog of 2,000 queued entries (1,000 deposits and 1,000 forced requests, sent by a
  contract in a handful of L1 transactions) is consumed over as many batches as it
  takes, each within the contract's limits, users' orders still going through.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import vyper
from web3 import Web3
from web3.types import RPCEndpoint

from challengers import store as st
from challengers.watcher import Watcher
from rollup.api import order_json
from rollup.batch import MAX_BATCH_BYTES, MAX_STEPS
from rollup.deploy import DEVNET_ORACLE_KEYS, Deployment, deploy
from rollup.l1.batches import batch_calldata
from rollup.l1.client import L1, L1Error
from rollup.l1.rollup_client import REVERTED, RollupL1
from rollup.operator.sequencer import Sequencer
from rollup.operator.service import OperatorService
from rollup.operator.store import Store
from rollup.proposer import Proposer
from rollup.stf import builders
from rollup.stf.fork import Context
from rollup.stf.transactions import Deposit, ForcedRequest, Order, decode
from tests.conftest import DEV_KEYS, l1_snapshot, params_for

DEPLOYER, SEQUENCER, WATCHER, OUTSIDER = DEV_KEYS[0], DEV_KEYS[1], DEV_KEYS[2], DEV_KEYS[8]
ALICE, BOB, CAROL = DEV_KEYS[3], DEV_KEYS[4], DEV_KEYS[5]
WINDOW, DELAY, SILENCE = 300, 600, 900


def travel(w3: Web3, seconds: int) -> None:
    latest = int(w3.eth.get_block("latest")["timestamp"])
    w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [latest + seconds])
    w3.provider.make_request(RPCEndpoint("evm_mine"), [])


@pytest.fixture
def l1(l1_url: str) -> Iterator[str]:
    with l1_snapshot(l1_url):
        yield l1_url


def started(url: str, path: Path, *keys: bytes) -> tuple[Deployment, list[RollupL1], Sequencer, OperatorService]:
    """A deployment sequenced by SEQUENCER; the users of `keys` with 50 USD each; the
    operator in process (its sequencer and API), its first batches posted (the deposits,
    then the first prices)."""
    deployment = deploy(L1(url, DEPLOYER), params=params_for(
        SEQUENCER, challenge_window=WINDOW, inclusion_delay=DELAY, silence_period=SILENCE))
    users = [RollupL1(L1(url, key), deployment) for key in keys]
    for user in users:
        user.deposit(user.l1.address, 50_000_000)
    chain = RollupL1(L1(url, SEQUENCER), deployment)
    chain.bond()
    seq = Sequencer(Store(path), chain, max_age=0.0, heartbeat=3_600)
    seq.recover()
    service = OperatorService(seq, funding_interval=10**9)
    seq.tick()
    seq.tick()
    prices(seq, service)
    seq.tick()
    return deployment, users, seq, service


class Client:
    """A user signing for the operator's API, in process."""

    def __init__(self, service: OperatorService, chain: RollupL1, key: bytes) -> None:
        self.service, self.chain, self.key = service, chain, key
        self.nonce = 0
        self.context = Context(service.seq.config, 0)

    @property
    def account(self) -> int:
        return int(self.chain.bridge.functions.account_of(self.chain.l1.address).call())

    def order(self, side: str, size: int, price: int, kind: str = "limit") -> tuple[Order, dict[str, Any]]:
        self.nonce += 1
        order = Order(self.account, 0, side == "buy", size, price, 1_000, self.nonce, 2**32 - 1)
        signature = builders.sign_order(order, self.key, self.context)
        answer = self.service.rpc_submit_order({"order": order_json(order), "signature": "0x" + signature.hex(),
                                                "kind": kind})
        return order, answer

    def cancel_tx(self, nonce: int) -> bytes:
        return builders.cancel(self.account, nonce, self.key, self.context).encode()


def prices(seq: Sequencer, service: OperatorService, price: int = 300_000) -> None:
    context = Context(seq.config, 0)
    for market, value in ((0, price), (1, 1_000_000)):
        reports = [(i, value, key) for i, key in enumerate(DEVNET_ORACLE_KEYS)]
        tx = builders.oracle_update(market, seq.state.globals.time, reports, context).encode()
        service.rpc_submit_oracle({"tx": "0x" + tx.hex()})


def l1_txs(chain: RollupL1, deployment: Deployment) -> dict[int, list[bytes]]:
    """Every live batch's transactions, read from L1, by batch id."""
    submitted = {int(e["args"]["id"]): e for e in
                 chain.rollup.events.BatchSubmitted().get_logs(from_block=deployment.deploy_block)}
    out = {}
    for position, info in enumerate(chain.live_chain()):
        entry = submitted[info.id]
        out[info.id] = batch_calldata(chain.l1.w3, chain.rollup, Web3.to_hex(entry["transactionHash"]), position,
                                      info.timestamp, info.steps, info.step_root).txs
    return out


# ---------------------------------------------------------------------- an outsider at the tip


def test_an_outsiders_batch_is_adopted_and_no_acknowledged_order_is_lost(l1: str, tmp_path: Path) -> None:
    deployment, (alice, bob, carol), seq, service = started(l1, tmp_path / "op.db", ALICE, BOB, CAROL)
    w3 = seq.chain.l1.w3
    a, b = Client(service, alice, ALICE), Client(service, bob, BOB)
    resting, answer = a.order("buy", 10, 300_000)
    assert answer["status"] == "resting"
    doomed, _ = a.order("buy", 5, 299_000)
    _, fill = b.order("sell", 4, 300_000, "ioc")
    assert fill["filled"] == 4
    with seq.store.transaction() as db:
        seq.cut(db)  # acknowledged, cut, not yet posted when the operator falls silent
    posted_before = len(seq.posted)

    travel(w3, SILENCE)
    outsider = Proposer(l1, deployment, OUTSIDER)
    proposal = outsider.propose(extra=[a.cancel_tx(doomed.nonce)])  # Alice cancels through the outsider
    assert proposal.position == posted_before

    seq.tick()  # L1 moved on without the operator: adopt, sequence the rest again, post
    seq.tick()
    assert seq.posted[posted_before].foreign and seq.posted[posted_before].l1_id == proposal.batch_id
    assert seq.blocked is None and not seq.cut_batches
    chain_txs = l1_txs(seq.chain, deployment)
    assert seq.state.root() == seq.chain.batch(seq.posted[-1].l1_id).state_root
    assert len(chain_txs) == int(seq.chain.rollup.functions.length().call()) == len(seq.posted)
    # the trade that was cut but not posted is on L1 now, after the outsider's batch
    trades = [tx for txs in chain_txs.values() for tx in txs if tx and tx[0] == 0x03]
    assert len(trades) == 1 and decode(trades[0]).maker.nonce == resting.nonce  # type: ignore[union-attr]
    # the books agree with the state: the resting order keeps its remaining, the order the
    # outsider's batch cancelled is gone
    book = service.books[0]
    assert book.find(a.account, resting.nonce).remaining == 6  # type: ignore[union-attr]
    assert book.find(a.account, doomed.nonce) is None
    assert service.store.query("SELECT status FROM orders WHERE account = ? AND nonce = ?",
                               (a.account, doomed.nonce))[0][0] == "cancelled"
    _, rest = b.order("sell", 6, 300_000, "ioc")
    assert rest["filled"] == 6
    seq.tick()
    seq.tick()

    # every batch is valid; the outsider leaves once its batch is final; a later forced
    # request is served
    watcher = Watcher(l1, deployment, WATCHER, tmp_path / "watcher.sqlite3")
    watcher.step()
    assert set(watcher.verdicts().values()) == {st.VALID}
    travel(w3, WINDOW + 1)
    seq.chain.finalize()
    outsider.chain.l1.send(outsider.chain.rollup.functions.unbond())  # it leaves at no cost: nothing stalls
    carol.force_withdraw(1_000_000)
    seq.tick()
    seq.tick()
    assert seq.state.globals.forced_count == 1
    travel(w3, DELAY + WINDOW + 1)
    with pytest.raises(L1Error) as info:
        carol.freeze(0, seq.state)
    assert info.value.reason == "freeze: request was included"
    watcher.step()
    assert set(watcher.verdicts().values()) == {st.VALID}
    watcher.close()


# ---------------------------------------------------------------------- after a revert


def test_after_a_revert_every_honest_entry_is_sequenced_again(l1: str, tmp_path: Path) -> None:
    """The operator's batch holds two deposits, a forced request, a trade, a withdrawal and a
    cancel, and a fraud (a collateral credit from nowhere). A watcher proves it; the
    operator goes back to the last good state and sequences everything again: each of
    those entries is found in the new batches on L1."""
    from rollup.operator.fraud import CATALOG

    deployment, (alice, bob), seq, service = started(l1, tmp_path / "op.db", ALICE, BOB)
    seq.corrupt = CATALOG["mint"]  # the next batch posted is a fraud
    carol = RollupL1(L1(l1, CAROL), deployment)
    carol.deposit(carol.l1.address, 7_000_000)
    alice.deposit(alice.l1.address, 3_000_000)
    bob.force_withdraw(1_000_000)
    seq.refresh()  # what the background loop does: read the queues and the clock
    with seq.store.transaction() as db:
        seq.cut(db)
        seq.open(db)  # takes the two deposits and the forced request
    a, b = Client(service, alice, ALICE), Client(service, bob, BOB)
    a.order("buy", 10, 300_000)
    b.order("sell", 10, 300_000, "ioc")
    withdrawal = builders.withdraw(a.account, 1_000_000, 77, 2**40, ALICE, a.context).encode()
    cancel = a.cancel_tx(90)
    with seq.store.transaction() as db:
        assert seq.sequence(db, withdrawal).ok and seq.sequence(db, cancel).ok
    user_txs = [tx for tx in seq.batch.txs if tx[0] in (0x02, 0x03, 0x04)]  # type: ignore[union-attr]
    assert len(user_txs) == 3
    seq.tick()  # cut and posted: the fraud
    bad = seq.posted[-1]
    assert bad.posted_roots != bad.roots
    watcher = Watcher(l1, deployment, WATCHER, tmp_path / "watcher.sqlite3")
    watcher.step()
    assert seq.chain.batch(bad.l1_id).status == REVERTED
    seq.chain.bond()
    for _ in range(4):
        seq.tick()
    watcher.step()
    assert {v for k, v in watcher.verdicts().items() if seq.chain.batch(k).status != REVERTED} == {st.VALID}
    live = [tx for txs in l1_txs(seq.chain, deployment).values() for tx in txs]
    for tx in user_txs:
        assert live.count(tx) == 1, decode(tx)
    decoded = [decode(tx) for tx in live]
    deposits = sorted(d.index for d in decoded if isinstance(d, Deposit))
    forced = sorted(d.index for d in decoded if isinstance(d, ForcedRequest))
    assert deposits == [0, 1, 2, 3] and forced == [0]
    assert seq.state.globals.deposit_count == 4 and seq.state.globals.forced_count == 1
    watcher.close()


# ---------------------------------------------------------------------- a queue backlog

SPAMMER = """
# pragma version ~=0.4.3
interface Bridge:
    def deposit(owner: address, amount: uint256) -> uint256: nonpayable
    def force_withdraw(amount: uint256) -> uint256: nonpayable

interface Token:
    def approve(spender: address, amount: uint256) -> bool: nonpayable

@external
def deposits(bridge: Bridge, token: Token, count: uint256):
    extcall token.approve(bridge.address, count)
    for i: uint256 in range(count, bound=1000):
        extcall bridge.deposit(self, 1)

@external
def forced(bridge: Bridge, count: uint256):
    for i: uint256 in range(count, bound=1000):
        extcall bridge.force_withdraw(1)
"""


def test_a_backlog_of_2000_entries_is_consumed_within_the_limits(anvil_url: str, tmp_path: Path) -> None:
    """An attacker's contract queues 1,000 deposits and 1,000 forced requests between two
    batch openings (on anvil: a handful of L1 transactions). The operator consumes them
    oldest first over as many batches as it takes, each within the contract's limits and
    with room left for users; a user's trade goes through meanwhile; a watcher finds every
    batch valid."""
    with l1_snapshot(anvil_url):
        deployment, (alice, bob), seq, service = started(anvil_url, tmp_path / "op.db", ALICE, BOB)
        attacker = L1(anvil_url, OUTSIDER)
        compiled = vyper.compile_code(SPAMMER, output_formats=["abi", "bytecode"])
        factory = attacker.w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
        spammer = attacker.w3.eth.contract(address=attacker.send(factory.constructor())["contractAddress"],
                                           abi=compiled["abi"])
        token = RollupL1(attacker, deployment).token
        attacker.send(token.functions.transfer(spammer.address, 10_000))
        bridge = seq.chain.bridge.address
        for _ in range(5):
            attacker.send(spammer.functions.deposits(bridge, token.address, 200), gas=29_000_000)
        for _ in range(5):
            attacker.send(spammer.functions.forced(bridge, 200), gas=29_000_000)
        assert int(seq.chain.bridge.functions.deposit_count().call()) == 1_000 + 2
        assert int(seq.chain.bridge.functions.forced_count().call()) == 1_000

        a, b = Client(service, alice, ALICE), Client(service, bob, BOB)
        before = len(seq.posted)
        traded = False
        for _ in range(40):
            seq.tick()
            if not traded and seq.state.globals.forced_count > 0:
                a.order("buy", 10, 300_000)
                assert b.order("sell", 10, 300_000, "ioc")[1]["filled"] == 10  # a user is not starved
                traded = True
            if seq.state.globals.forced_count == 1_000 and not seq.cut_batches and seq.batch is None:
                break
        g = seq.state.globals
        assert (g.deposit_count, g.forced_count) == (1_002, 1_000) and traded
        new = seq.posted[before:]
        assert len(new) >= 2_000 // seq.max_txs
        for batch in new:
            assert len(batch.txs) <= min(seq.max_txs, MAX_STEPS)
            assert sum(2 + len(tx) for tx in batch.txs) <= MAX_BATCH_BYTES
            assert seq.chain.batch(batch.l1_id).steps == len(batch.txs)
        watcher = Watcher(anvil_url, deployment, WATCHER, tmp_path / "watcher.sqlite3")
        watcher.step()
        assert set(watcher.verdicts().values()) == {st.VALID}
        watcher.close()



# ---------------------------------------------------------------------- rollup propose


def test_rollup_propose_moves_the_chain_from_l1_data_alone(l1: str, tmp_path: Path) -> None:
    """The operator is gone. A user deposits and asks for a forced withdrawal; once the
    sequencer has been silent for the silence period, `rollup propose` (run by anyone,
    here another dev account) rebuilds the state from L1 and posts the batch that carries
    it out; after the window the user claims the withdrawal on L1. Before the silence
    period it says why it cannot."""
    import subprocess
    import sys

    deployment = deploy(L1(l1, DEPLOYER), params=params_for(
        SEQUENCER, challenge_window=WINDOW, inclusion_delay=DELAY, silence_period=SILENCE))
    path = tmp_path / "deployment.json"
    deployment.save(path)
    alice = RollupL1(L1(l1, ALICE), deployment)
    alice.deposit(alice.l1.address, 5_000_000)
    alice.force_withdraw(2_000_000)
    command = [sys.executable, "-m", "rollup", "propose", "--l1-rpc", l1, "--deployment", str(path),
               "--key", "0x" + OUTSIDER.hex()]
    early = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert early.returncode == 1 and "the sequencer is active" in early.stderr, early.stderr
    travel(alice.l1.w3, SILENCE)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "at position 0: 3 steps, 1 deposits, 1 forced requests" in done.stdout, done.stdout
    position, state = Proposer(l1, deployment, WATCHER).tip()
    assert position == 1 and state.withdrawals[0].amount == 2_000_000
    travel(alice.l1.w3, WINDOW + 1)
    alice.finalize()
    token = alice.token.functions
    before = int(token.balanceOf(alice.l1.address).call())
    alice.claim(int(alice.rollup.functions.live(0).call()), 0, state)
    assert int(token.balanceOf(alice.l1.address).call()) == before + 2_000_000
