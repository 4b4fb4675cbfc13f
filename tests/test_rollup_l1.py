"""The rollup chain on a real EVM: bonds, batches, the challenge window, finalization,
fraud proofs (revert + slash), withdrawal claims, forced requests, freeze and escape.
Each refusal carries its revert reason and moves nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from web3 import Web3
from web3.logs import DISCARD
from web3.types import RPCEndpoint

from rollup.batch import MAX_TX, batch_time
from rollup.deploy import Deployment, deploy
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1, L1Error
from rollup.l1.inbox import Inbox
from rollup.l1.rollup_client import FINAL, PENDING, REVERTED, RollupL1, config_of
from rollup.stf import apply, builders
from rollup.stf.constants import MAX_MARKETS
from rollup.stf.fork import Context
from rollup.stf.state import State
from rollup.stf.transactions import AdvanceTime, Deposit, ForcedRequest
from tests.conftest import params_for

KEYS = [bytes(a.key) for a in dev_accounts(6)]
DEPLOYER, OPERATOR, CHALLENGER, ALICE, BOB = (KEYS[i] for i in range(5))
WINDOW, DELAY = 100, 200


@pytest.fixture(scope="module")
def deployment(l1_url: str) -> Deployment:
    return deploy(L1(l1_url, DEPLOYER), params=params_for(OPERATOR, challenge_window=WINDOW, inclusion_delay=DELAY))


@dataclass
class Operator:
    """A minimal honest proposer: the STF over the L1 queues, one batch at a time."""

    chain: RollupL1
    state: State
    w3: Web3
    states: list[State] = field(default_factory=list)
    """The state after each submitted batch (for witnesses and claims)."""

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def context(self, timestamp: int) -> Context:
        """The queues as they stand (rollup/l1/inbox.py, the reader every component uses)."""
        inbox = Inbox(self.chain.bridge, self.chain.deployment.deploy_block)
        inbox.sync()
        deposits, forced = inbox.heads(len(inbox.deposits), len(inbox.forced))
        return Context(config_of(self.chain.deployment), timestamp, deposits, forced)

    def run(self, txs: list[bytes], lie_at: int | None = None) -> tuple[list[bytes], list[bytes], int]:
        """Apply `txs` (roots after each); at `lie_at`, post a wrong root instead. The batch
        runs at the time its AdvanceTime sets (else at the clock's)."""
        timestamp = batch_time(txs, self.state.globals.time)
        context = self.context(timestamp)
        roots = []
        for i, tx in enumerate(txs):
            apply(self.state, tx, context)
            roots.append(self.state.root() if i != lie_at else b"\x13" * 32)
        return txs, roots, timestamp

    def post(self, txs: list[bytes], lie_at: int | None = None) -> tuple[int, list[bytes], list[bytes]]:
        """Run and submit a batch (a lie changes only the posted root: the state goes on
        from the truth)."""
        txs, roots, timestamp = self.run(txs, lie_at)
        batch_id, _ = self.chain.submit(txs, roots, timestamp)
        self.states.append(self.state.copy())
        return batch_id, txs, roots


@pytest.fixture
def env(l1_url: str, deployment: Deployment) -> Iterator[dict[str, Any]]:
    w3 = Web3(Web3.HTTPProvider(l1_url))
    snapshot = w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    operator = RollupL1(L1(l1_url, OPERATOR), deployment)
    yield {
        "w3": w3,
        "deployment": deployment,
        "operator": Operator(operator, deployment.genesis(), w3),
        "challenger": RollupL1(L1(l1_url, CHALLENGER), deployment),
        "alice": RollupL1(L1(l1_url, ALICE), deployment),
        "bob": RollupL1(L1(l1_url, BOB), deployment),
    }
    w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])


def travel(w3: Web3, seconds: int) -> None:
    """Mine a block `seconds` after the latest one."""
    latest = int(w3.eth.get_block("latest")["timestamp"])
    w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [latest + seconds])
    w3.provider.make_request(RPCEndpoint("evm_mine"), [])


def refused(reason: str, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(L1Error) as info:
        call(*args, **kwargs)
    assert info.value.reason == reason, info.value


def deposits_since(chain: RollupL1, start: int) -> list[bytes]:
    """The L2 Deposit transactions of L1 deposits start.. (from the bridge's events)."""
    events = chain.bridge.events.Deposited().get_logs(from_block=chain.deployment.deploy_block)
    out = []
    for e in sorted(events, key=lambda e: e["args"]["index"]):
        a = e["args"]
        if a["index"] >= start:
            out.append(Deposit(a["index"], a["account"], bytes.fromhex(a["owner"][2:]), a["amount"],
                               a["timestamp"]).encode())
    return out


def test_bonds_and_malformed_batches_are_refused(env: dict[str, Any]) -> None:
    op: Operator = env["operator"]
    chain = op.chain
    rollup = chain.rollup.functions
    now = op.now()
    refused("batch: proposer not bonded", chain.submit, [AdvanceTime(now).encode()], [b"\1" * 32], now)
    refused("bond: wrong amount", chain.l1.send, rollup.bond(), value=5)
    chain.bond()
    refused("bond: already bonded", chain.bond)
    refused("batch: wrong position", chain.submit, [b"\x0a"], [b"\1" * 32], now, position=1)
    refused("batch: timestamp in the future", chain.submit, [b"\x0a"], [b"\1" * 32], now + 1000)
    refused("batch: timestamp too old", chain.submit, [b"\x0a"], [b"\1" * 32],
            now - int(rollup.max_time_lag().call()) - 1)
    # a batch has at least one step: no transaction for its one root is a bad encoding
    refused("batch: bad encoding", chain.l1.send, rollup.submit(0, now, b"", b"", b"\1" * 32))
    for blob, prefixes in (
        (b"\x05abc", b""),  # length prefix says 5, 3 follow
        (b"\x80\x05abcde", b""),  # a length below 0x80 in the long form: not canonical
        (b"\x81", b""),  # the first byte of a long length, the second missing
        ((0x8000 | MAX_TX + 1).to_bytes(2, "big") + b"x" * (MAX_TX + 1), b""),  # one more than a transaction may have
        (b"\x01\x0a", b"\1" * 15),  # not a whole number of root prefixes
        (b"\x01\x0a", b"\1" * 16),  # two roots, one transaction
        (b"\x01\x0a\x01\x0a", b""),  # one root, two transactions
    ):
        refused("batch: bad encoding", chain.l1.send, rollup.submit(0, now, blob, prefixes, b"\1" * 32))
    assert rollup.length().call() == 0 and rollup.batch_count().call() == 0
    # unbond works only without pending batches
    op.post([AdvanceTime(now).encode()])
    refused("unbond: batches pending", chain.l1.send, rollup.unbond())


def test_honest_batch_survives_every_challenge_and_finalizes(env: dict[str, Any]) -> None:
    op: Operator = env["operator"]
    alice: RollupL1 = env["alice"]
    challenger: RollupL1 = env["challenger"]
    alice.deposit(alice.l1.address, 3_000_000)
    alice.deposit(env["bob"].l1.address, 2_000_000)
    op.chain.bond()
    pre = op.state.copy()
    txs = [AdvanceTime(op.now()).encode(), *deposits_since(op.chain, 0), b"\x99junk", b""]
    batch_id, txs, roots = op.post(txs)
    assert op.chain.batch(batch_id).status == PENDING
    # a hostile watcher challenges every step: each is correct, nothing moves
    state = pre
    context = op.context(op.chain.batch(batch_id).timestamp)
    for step, tx in enumerate(txs):
        refused("challenge: step is correct", challenger.challenge, batch_id, step, txs, roots, state)
        apply(state, tx, context)
    # the window must pass before finalization
    assert op.chain.finalize().get("status") == 1
    assert op.chain.batch(batch_id).status == PENDING
    travel(env["w3"], WINDOW + 1)
    refused("challenge: window closed", challenger.challenge, batch_id, 1, txs, roots, pre)
    op.chain.finalize()
    info = op.chain.batch(batch_id)
    assert info.status == FINAL and bytes(op.chain.rollup.functions.final_root().call()) == roots[-1]
    refused("challenge: batch not pending", challenger.challenge, batch_id, 1, txs, roots, pre)
    op.chain.finalize()  # finalizing again changes nothing
    assert op.chain.rollup.functions.finalized().call() == 1


def test_fraud_reverts_the_batch_and_its_descendants_and_slashes(env: dict[str, Any]) -> None:
    op: Operator = env["operator"]
    challenger: RollupL1 = env["challenger"]
    w3: Web3 = env["w3"]
    rollup = op.chain.rollup.functions
    op.chain.bond()
    bond = rollup.bond_amount().call()
    first, _, _ = op.post([AdvanceTime(op.now()).encode()])
    travel(w3, 5)
    pre = op.state.copy()
    bad, txs, roots = op.post([b"\x02short", AdvanceTime(op.now()).encode(), AdvanceTime(op.now() + 1).encode()],
                              lie_at=1)
    travel(w3, 1)
    later, _, _ = op.post([AdvanceTime(op.now()).encode()])
    held = w3.eth.get_balance(op.chain.rollup.address)
    assert rollup.length().call() == 3
    # wrong step: refused, nothing moves
    refused("challenge: step is correct", challenger.challenge, bad, 0, txs, roots, pre)
    # the lie at step 1: step 0 was a no-op, so step 1's pre-state is `pre`
    receipt = challenger.challenge(bad, 1, txs, roots, pre)
    assert [op.chain.batch(i).status for i in (first, bad, later)] == [PENDING, REVERTED, REVERTED]
    assert rollup.length().call() == 1 and rollup.bonds(op.chain.l1.address).call() == 0
    event = op.chain.rollup.events.FraudProven().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert event["reward"] == bond // 2 and event["burned"] == bond - bond // 2
    assert event["challenger"] == challenger.l1.address and event["commit_block"] < receipt["blockNumber"]
    # the reward is held for the reward delay, then paid to the challenger (anyone may ask)
    refused("reward: still held", env["bob"].claim_reward, bad)
    travel(w3, int(rollup.reward_delay().call()))
    balance = w3.eth.get_balance(challenger.l1.address)
    env["bob"].claim_reward(bad)
    assert w3.eth.get_balance(challenger.l1.address) == balance + bond // 2
    # the burned half stays in the Rollup, which owes it to no one (the bond is zeroed)
    assert w3.eth.get_balance(op.chain.rollup.address) == held - bond // 2
    refused("reward: already paid", env["bob"].claim_reward, bad)
    refused("reward: no fraud proven", env["bob"].claim_reward, later)
    # a second challenger is told the batch is gone; the operator resumes after re-bonding
    refused("challenge: batch not pending", challenger.challenge, bad, 1, txs, roots, pre)
    refused("batch: proposer not bonded", op.chain.submit, [b"\x0a"], [b"\1" * 32], op.now())
    op.chain.bond()
    op.state = op.states[0].copy()
    resumed, _, _ = op.post([AdvanceTime(op.now()).encode()])
    assert op.chain.batch(resumed).position == 1
    travel(w3, WINDOW + 1)
    op.chain.finalize()
    assert op.chain.batch(resumed).status == FINAL


def test_withdrawal_is_paid_once_against_a_final_root(env: dict[str, Any]) -> None:
    op: Operator = env["operator"]
    alice: RollupL1 = env["alice"]
    token = alice.token.functions
    alice.deposit(alice.l1.address, 4_000_000)
    op.chain.bond()
    batch_id, _, _ = op.post([AdvanceTime(op.now()).encode(), *deposits_since(op.chain, 0)])
    account = alice.bridge.functions.account_of(alice.l1.address).call()
    context = op.context(op.now())
    withdraw = builders.withdraw(account, 1_500_000, 1, 2**40, ALICE, context).encode()
    travel(env["w3"], 1)
    second, _, _ = op.post([withdraw])
    final_state = op.states[-1]
    assert len(final_state.withdrawals) == 1
    refused("claim: batch not final", alice.claim, second, 0, final_state)
    travel(env["w3"], WINDOW + 1)
    op.chain.finalize()
    before = token.balanceOf(alice.l1.address).call()
    alice.claim(second, 0, final_state)
    assert token.balanceOf(alice.l1.address).call() == before + 1_500_000
    refused("claim: already claimed", alice.claim, second, 0, final_state)
    # a record that is not in the root is refused
    forged = final_state.copy()
    forged.append_withdrawal(final_state.withdrawals[0]._replace(amount=9_999_999))
    refused("claim: bad proof", env["bob"].claim, second, 1, forged)
    assert batch_id != second


def deposit_and_finalize(op: Operator, user: RollupL1, w3: Web3, amount: int) -> State:
    """`user` deposits `amount`; a batch credits it and becomes final; its state."""
    user.deposit(user.l1.address, amount)
    op.chain.bond()
    op.post([AdvanceTime(op.now()).encode(), *deposits_since(op.chain, 0)])
    travel(w3, WINDOW + 1)
    op.chain.finalize()
    return op.states[-1]


def test_ignored_forced_withdrawal_freezes_and_the_user_escapes(env: dict[str, Any]) -> None:
    """The operator ignores a forced withdrawal: once the inclusion delay and a challenge
    window have passed, the final state (every batch past its window finalized by the
    freeze itself) shows the request unconsumed; anyone freezes the rollup, and the user
    gets their equity back on L1 without the operator."""
    op: Operator = env["operator"]
    alice: RollupL1 = env["alice"]
    bob: RollupL1 = env["bob"]
    w3: Web3 = env["w3"]
    token = alice.token.functions
    old_final = deposit_and_finalize(op, alice, w3, 5_000_000)
    account = alice.bridge.functions.account_of(alice.l1.address).call()

    refused("escape: rollup not frozen", alice.escape, account, old_final)
    alice.force_withdraw(1_000_000)
    travel(w3, 1)
    op.post([AdvanceTime(op.now()).encode()])  # the operator carries on, ignoring the request
    travel(w3, DELAY + 1)
    refused("freeze: request not overdue", bob.freeze, 0, op.state)  # its batches are still pending
    travel(w3, WINDOW)
    refused("freeze: globals not of the final state", bob.freeze, 0, old_final)  # the new batch is final now
    bob.freeze(0, op.state)
    assert alice.rollup.functions.frozen().call()
    assert alice.rollup.functions.final_root().call() == op.state.root()
    refused("rollup: frozen", op.chain.submit, [b"\x0a"], [b"\1" * 32], op.now())
    refused("rollup: frozen", op.chain.finalize)
    refused("deposit: rollup frozen", alice.deposit, alice.l1.address, 1_000)

    before = token.balanceOf(alice.l1.address).call()
    refused("escape: bad proof", bob.escape, account, old_final)  # not the final root
    bob.escape(account, op.state)  # anyone may trigger it; the owner is paid
    assert token.balanceOf(alice.l1.address).call() == before + 5_000_000
    refused("escape: already escaped", alice.escape, account, op.state)


def test_deposits_not_in_the_final_state_are_paid_back_after_a_freeze(env: dict[str, Any]) -> None:
    """Deposited on L1 but never credited by a final batch: paid back once frozen."""
    op: Operator = env["operator"]
    alice: RollupL1 = env["alice"]
    bob: RollupL1 = env["bob"]
    w3: Web3 = env["w3"]
    token = alice.token.functions
    final_state = deposit_and_finalize(op, alice, w3, 5_000_000)
    alice.deposit(alice.l1.address, 700_000)  # index 1: the operator stops here
    events = alice.bridge.events.Deposited().get_logs(from_block=alice.deployment.deploy_block)
    a = sorted(events, key=lambda e: e["args"]["index"])[-1]["args"]
    entry = Deposit(a["index"], a["account"], bytes.fromhex(a["owner"][2:]), a["amount"], a["timestamp"])
    refused("reclaim: rollup not frozen", bob.reclaim_deposit, entry, final_state)
    # the operator never credits it: once overdue, anyone freezes the rollup
    travel(w3, DELAY + 1)
    refused("freeze: deposit not overdue", bob.freeze_on_deposit, entry, final_state)
    travel(w3, WINDOW)
    refused("freeze: not this deposit", bob.freeze_on_deposit, entry._replace(amount=1), final_state)
    refused("freeze: deposit was credited", bob.freeze_on_deposit,
            Deposit(0, entry.account, entry.owner, 5_000_000,
                    sorted(events, key=lambda e: e["args"]["index"])[0]["args"]["timestamp"]), final_state)
    bob.freeze_on_deposit(entry, final_state)
    before = token.balanceOf(alice.l1.address).call()
    refused("reclaim: not this deposit", bob.reclaim_deposit, entry._replace(amount=700_001), final_state)
    bob.reclaim_deposit(entry, final_state)
    assert token.balanceOf(alice.l1.address).call() == before + 700_000
    refused("reclaim: already reclaimed", bob.reclaim_deposit, entry, final_state)
    first = sorted(events, key=lambda e: e["args"]["index"])[0]["args"]
    credited = Deposit(0, first["account"], bytes.fromhex(first["owner"][2:]), first["amount"], first["timestamp"])
    refused("reclaim: deposit was credited", bob.reclaim_deposit, credited, final_state)


def test_included_forced_request_prevents_freeze(env: dict[str, Any]) -> None:
    op: Operator = env["operator"]
    alice: RollupL1 = env["alice"]
    w3: Web3 = env["w3"]
    alice.deposit(alice.l1.address, 5_000_000)
    op.chain.bond()
    op.post([AdvanceTime(op.now()).encode(), *deposits_since(op.chain, 0)])
    alice.force_withdraw(1_000_000)
    event = alice.bridge.events.ForcedRequested().get_logs(from_block=alice.deployment.deploy_block)[0]["args"]
    request = ForcedRequest(event["index"], event["kind"], event["account"], bytes.fromhex(event["requester"][2:]),
                            event["market"], event["amount"], event["timestamp"])
    travel(w3, 1)
    op.post([request.encode()])
    assert op.state.globals.forced_count == 1 and len(op.state.withdrawals) == 1
    travel(w3, DELAY + WINDOW + 1)
    refused("freeze: request was included", env["bob"].freeze, 0, op.state)
    refused("freeze: no such request", env["bob"].freeze, 1, op.state)


def test_bridge_bounds_are_refused(env: dict[str, Any]) -> None:
    """Values the L2 encodings cannot carry are refused on L1, before they enter a queue."""
    alice: RollupL1 = env["alice"]
    bob: RollupL1 = env["bob"]
    bridge = alice.bridge.functions
    alice.l1.send(alice.token.functions.approve(alice.bridge.address, 10**16))
    refused("deposit: amount too large", alice.l1.send, bridge.deposit(alice.l1.address, 10**15 + 1))
    refused("deposit: zero owner", alice.l1.send, bridge.deposit("0x" + "00" * 20, 1))
    refused("forced: no account", bob.force_withdraw, 1)
    alice.l1.send(bridge.deposit(alice.l1.address, 1_000))
    refused("forced: bad amount", alice.force_withdraw, 2**64)
    refused("forced: bad amount", alice.force_withdraw, 0)
    refused("forced: bad market", alice.force_close, MAX_MARKETS)
    refused("bridge: not the deployer", alice.l1.send, bridge.set_rollup(alice.l1.address))
    assert bridge.deposit_count().call() == 1 and bridge.forced_count().call() == 0


def test_proof_cost_does_not_grow_with_the_batch(env: dict[str, Any]) -> None:
    """The same lie proven in a batch of 2 steps and of 512 steps: only the two step paths
    grow (1 and 9 hashes each: calldata and hashing, under 2,000 gas per extra level)."""
    op: Operator = env["operator"]
    challenger: RollupL1 = env["challenger"]
    op.chain.bond()
    gas = []
    for size in (2, 512):
        pre = op.state.copy()
        txs = [b"\x0b" + i.to_bytes(2, "big") for i in range(size - 1)] + [AdvanceTime(op.now()).encode()]
        batch_id, txs, roots = op.post(txs, lie_at=size - 1)
        receipt = challenger.challenge(batch_id, size - 1, txs, roots, pre)
        gas.append(int(receipt["gasUsed"]))
        op.state = pre
        op.chain.bond()
        travel(env["w3"], 1)
    assert 0 < gas[1] - gas[0] < 8 * 2_000, gas
