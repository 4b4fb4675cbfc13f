"""Watchers against a real L1 (our py-evm node over JSON-RPC): they rebuild the state from
L1 alone, find the first wrong step of a bad batch and prove it (a commitment, then the
reveal in a later block: batch and descendants reverted, half the bond held and then paid
to the challenger); they leave correct batches alone; a second watcher sees the batch
already proven and carries on; a watcher killed at any point (object dropped
mid-challenge, or a real `watch` process killed with SIGKILL) resumes from its store and
still proves the fraud in the window; an L1 reorganisation rolls the watcher back to the
common ancestor; a hostile watcher's challenges of correct batches are all refused and the
batches finalize.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.logs import DISCARD
from web3.types import RPCEndpoint

from challengers import store as st
from challengers.watcher import NOT_PENDING, STEP_IS_CORRECT, WINDOW_CLOSED, Watcher
from rollup.deploy import Deployment, deploy
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.rollup_client import FINAL, PENDING, REVERTED, RollupL1
from rollup.l1.world import SCENARIOS, World, make_world
from rollup.stf import apply
from rollup.stf.transactions import Trade, decode
from tests.conftest import Process, params_for

KEYS = [bytes(a.key) for a in dev_accounts(10)]
DEPLOYER, PROPOSER, CHALLENGER = KEYS[0], KEYS[1], KEYS[2]
USERS = KEYS[3:7]
SECOND, THIRD, HOSTILE_KEY = KEYS[7], KEYS[8], KEYS[9]
WINDOW = 3_600
BOND = 10**18
GARBAGE = [b"", b"\x00", b"\xff" * 64, bytes(range(256)) * 4 + b"\x01" * 171]  # the last: 1,195 bytes


@pytest.fixture(scope="module")
def deployment(l1_url: str) -> Deployment:
    return deploy(L1(l1_url, DEPLOYER), params=params_for(PROPOSER, challenge_window=WINDOW, inclusion_delay=2 * WINDOW, bond=BOND))


@pytest.fixture
def world(l1_url: str, deployment: Deployment) -> Iterator[World]:
    w3 = Web3(Web3.HTTPProvider(l1_url))
    snapshot = w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    try:
        yield make_world(l1_url, deployment, PROPOSER, USERS)
    finally:
        w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [True])
        w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])


@pytest.fixture
def new_watcher(world: World, tmp_path: Path) -> Iterator[Callable[..., Watcher]]:
    made: list[Watcher] = []

    def make(key: bytes = CHALLENGER, name: str = "watcher", **kwargs: Any) -> Watcher:
        w = Watcher(world.url, world.deployment, key, tmp_path / f"{name}.sqlite3", poll_interval=0.1, **kwargs)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def address(key: bytes) -> ChecksumAddress:
    return Account.from_key(key).address


def nonce(world: World, key: bytes) -> int:
    return int(world.w3.eth.get_transaction_count(address(key)))


def status(world: World, batch_id: int) -> int:
    return world.proposer.batch(batch_id).status


def past_window(world: World) -> None:
    world.travel(WINDOW + 1)


# ---------------------------------------------------------------------- (a) honest batches


def test_honest_batches_are_verified_and_left_alone(world: World, new_watcher: Callable[..., Watcher],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    for kind in ("Trade", "Withdraw", "FundingTick", "ForcedRequest(close)"):
        world.post(SCENARIOS[kind](world))
    world.post([world.advance(), *GARBAGE])  # bytes that are no transaction: refused, the root unchanged
    watcher = new_watcher(snapshot_every=1)
    before = nonce(world, CHALLENGER)
    watcher.step()
    batches = watcher.store.batches()
    assert len(batches) == len(world.history) and {b.verdict for b in batches} == {st.VALID}
    assert watcher.store.challenges() == []
    watcher.step()  # idempotent: nothing new, nothing done
    assert watcher.store.batches() == batches and watcher.store.challenges() == []

    past_window(world)
    world.proposer.finalize(64)
    watcher.step()
    assert {b.status for b in watcher.store.batches()} == {st.FINAL}
    snapshot = watcher.store.snapshot()
    assert snapshot is not None and snapshot[0] == len(world.history) - 1  # the state after the last final batch
    assert nonce(world, CHALLENGER) == before  # a watcher of honest batches spends nothing

    # a restart resumes from the snapshot: nothing to re-execute, the verdicts kept
    watcher.close()
    again = new_watcher()
    world.travel(1)
    world.post([world.advance()])
    with caplog.at_level(logging.INFO, logger="challengers"):
        again.step()
    assert any("0 re-executed from the snapshot" in r.message for r in caplog.records)
    assert again.verdicts() == {b.id: st.VALID for b in again.store.batches()}
    assert len(again.verdicts()) == len(world.history)

    # without the snapshot, a restart re-executes the whole live chain from genesis
    again.store.drop_snapshot()
    again.close()
    caplog.clear()
    replay = new_watcher()
    with caplog.at_level(logging.INFO, logger="challengers"):
        replay.step()
    assert any(f"{len(world.history)} re-executed from genesis" in r.message for r in caplog.records)
    assert replay.verdicts() == {b.id: st.VALID for b in replay.store.batches()}
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)


# ---------------------------------------------------------------------- (b) fraud of several kinds


def lie_in_scenario(kind: str) -> Callable[[World], tuple[int, int]]:
    def post(world: World) -> tuple[int, int]:
        txs = SCENARIOS[kind](world)
        step = len(txs) - 1
        return world.post(txs, lie_at=step).id, step
    return post


def lie_after_garbage(world: World) -> tuple[int, int]:
    """A transaction that does not decode: nothing changes, but the root posted after it does."""
    return world.post([world.advance(), GARBAGE[2], GARBAGE[3]], lie_at=1).id, 1


def accept_forged_signature(world: World) -> tuple[int, int]:
    """The proposer accepts a trade with a forged signature: it posts the root the trade would
    give if it were valid (tests/test_fraud_accepting_invalid.py)."""
    valid = world.trade(world.users[0], world.users[1], 0, True, 10, 300_000)
    trade = decode(valid)
    assert isinstance(trade, Trade)
    sig = trade.taker_signature
    forged = trade._replace(taker_signature=sig[:5] + bytes([sig[5] ^ 1]) + sig[6:]).encode()
    timestamp = world.state.globals.time  # the batch runs at the clock's time
    accepted = world.state.copy()
    assert apply(accepted, valid, world.context(timestamp)).ok
    assert not apply(world.state, forged, world.context(timestamp)).applied
    batch_id, _ = world.proposer.submit([forged], [accepted.root()], timestamp)
    return batch_id, 0


FRAUDS: dict[str, Callable[[World], tuple[int, int]]] = {
    "Trade": lie_in_scenario("Trade"),
    "Deposit": lie_in_scenario("Deposit"),
    "Withdraw": lie_in_scenario("Withdraw"),
    "Liquidate": lie_in_scenario("Liquidate"),
    "garbage": lie_after_garbage,
    "forged-signature": accept_forged_signature,
}


@pytest.mark.parametrize("kind", list(FRAUDS))
def test_fraud_is_proven_with_a_commitment_and_a_reveal(world: World, new_watcher: Callable[..., Watcher],
                                                        kind: str) -> None:
    watcher = new_watcher()
    watcher.step()  # the honest start, verified
    bad_id, bad_step = FRAUDS[kind](world)
    world.travel(1)
    child = world.post([world.advance()])  # a descendant, posted on the bad batch
    balance, sent = world.w3.eth.get_balance(watcher.address), nonce(world, CHALLENGER)

    watcher.step()  # the verdict, the commitment, and once it is mined the reveal
    row = watcher.store.batch(bad_id)
    assert row is not None and row.verdict == st.INVALID and row.bad_step == bad_step
    child_row = watcher.store.batch(child.id)
    assert child_row is not None and child_row.verdict == st.AFTER_INVALID  # its pre-state is not the truth
    [challenge] = watcher.store.challenges()
    assert (challenge.batch_id, challenge.step, challenge.outcome) == (bad_id, bad_step, st.PROVEN)
    assert challenge.tx_hash is not None and challenge.commit_tx is not None
    assert challenge.commit_block is not None and challenge.commit_block < world.w3.eth.block_number
    assert status(world, bad_id) == REVERTED and status(world, child.id) == REVERTED
    assert nonce(world, CHALLENGER) == sent + 2  # two L1 transactions

    watcher.step()  # the revert is read back; nothing more is sent while the reward is held
    assert watcher.store.batch(bad_id).status == st.REVERTED  # type: ignore[union-attr]
    assert watcher.store.batch(child.id).status == st.REVERTED  # type: ignore[union-attr]
    assert watcher.store.batch(bad_id).proven_by == watcher.address  # type: ignore[union-attr]
    assert nonce(world, CHALLENGER) == sent + 2
    world.travel(int(world.deployment.params["reward_delay"]))
    watcher.step()  # the reward is claimed
    assert nonce(world, CHALLENGER) == sent + 3
    fees = 0
    for tx_hash in (challenge.commit_tx, challenge.tx_hash, watcher.store.challenge(challenge.id).reward_tx):
        receipt = world.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        fees += int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    assert int(challenge.reward or 0) == BOND // 2
    assert world.w3.eth.get_balance(watcher.address) == balance + BOND // 2 - fees
    watcher.step()
    assert len(watcher.store.challenges()) == 1 and nonce(world, CHALLENGER) == sent + 3


def test_window_closed_is_recorded_not_fatal(world: World, new_watcher: Callable[..., Watcher],
                                             caplog: pytest.LogCaptureFixture) -> None:
    bad = world.post(SCENARIOS["Trade"](world), lie_at=0)
    past_window(world)
    watcher = new_watcher()
    sent = nonce(world, CHALLENGER)
    with caplog.at_level(logging.INFO, logger="challengers"):
        watcher.step()
        [challenge] = watcher.store.challenges()
        assert (challenge.outcome, challenge.reason, challenge.tx_hash) == (st.REFUSED, WINDOW_CLOSED, None)
        world.proposer.finalize(64)
        watcher.step()
    assert nonce(world, CHALLENGER) == sent and status(world, bad.id) == FINAL
    assert any("FINAL although invalid" in r.message for r in caplog.records)


# ---------------------------------------------------------------------- L1 reorganisations


def test_reorganised_l1_is_rolled_back_to_the_common_ancestor(
        world: World, new_watcher: Callable[..., Watcher], caplog: pytest.LogCaptureFixture) -> None:
    """L1 blocks the watcher processed disappear (a reorganisation; here evm_revert, then
    new blocks) and the same batch id comes back as a bad batch: the watcher rolls back to
    the last block both chains share, keeps what came before it, and proves the new batch."""
    watcher = new_watcher()
    rpc = world.w3.provider.make_request
    snapshot = rpc(RPCEndpoint("evm_snapshot"), [])["result"]
    shared_block = int(world.w3.eth.block_number)
    state, history = world.state.copy(), list(world.history)
    kept = [p.id for p in history]
    honest = world.post(SCENARIOS["Trade"](world))
    watcher.step()
    assert watcher.verdicts()[honest.id] == st.VALID
    rpc(RPCEndpoint("evm_revert"), [snapshot])
    world.state, world.history = state, history
    world.travel(1)
    bad = world.post([world.advance(), *SCENARIOS["Cancel"](world)], lie_at=1)
    assert bad.id == honest.id
    with caplog.at_level(logging.INFO, logger="challengers"):
        watcher.step()
        watcher.step()
    # back to a block both chains share (not to before the deployment), the batches
    # before it kept with their verdicts
    [ancestor] = [int(m.group(1)) for r in caplog.records if (m := re.search(r"rolling back to block (\d+)", r.message))]
    assert world.deployment.deploy_block <= ancestor <= shared_block
    assert all(watcher.verdicts()[i] == st.VALID for i in kept) and len(kept) >= 3
    assert watcher.verdicts()[bad.id] == st.INVALID
    assert [c.outcome for c in watcher.store.challenges()] == [st.PROVEN]
    assert status(world, bad.id) == REVERTED


# ---------------------------------------------------------------------- (c) two watchers


def test_second_watcher_sees_it_already_proven(world: World, new_watcher: Callable[..., Watcher],
                                               caplog: pytest.LogCaptureFixture) -> None:
    first, second = new_watcher(CHALLENGER, "first"), new_watcher(SECOND, "second")
    bad = world.post(SCENARIOS["Cancel"](world), lie_at=0)
    for w in (first, second):
        w.sync()  # both see the bad batch pending
    second_nonce = nonce(world, SECOND)
    with caplog.at_level(logging.INFO, logger="challengers"):
        first.act()  # the commitment and the reveal: proven
        second.act()  # L1 refuses its estimate: "batch not pending"; nothing is sent
        for w in (first, second):
            w.step()
    assert status(world, bad.id) == REVERTED
    assert [c.outcome for c in first.store.challenges()] == [st.PROVEN]
    [refused] = second.store.challenges()
    assert (refused.outcome, refused.reason, refused.tx_hash) == (st.ALREADY_PROVEN, NOT_PENDING, None)
    assert nonce(world, SECOND) == second_nonce  # nothing spent
    assert any("already proven by someone else" in r.message for r in caplog.records)
    assert second.store.batch(bad.id).proven_by == first.address  # type: ignore[union-attr]


def test_an_older_commitment_takes_the_reward(world: World, new_watcher: Callable[..., Watcher]) -> None:
    """Another challenger committed to the same proof before this watcher did, and reveals
    it after this watcher's proof landed, while the reward is held: the reward goes to the
    older commitment; the watcher records it and claims nothing."""
    first = new_watcher(CHALLENGER, "first")
    bad = world.post(SCENARIOS["Cancel"](world), lie_at=0)
    other = RollupL1(L1(world.url, THIRD), world.deployment)
    truth = world.history[-1].pre_states[0].copy()
    apply(truth, bad.txs[0], world.context(world.proposer.batch(bad.id).timestamp))
    salt = b"\x07" * 32
    other.commit(other.commitment(bad.id, 0, truth.root(), salt))  # older than the watcher's
    first.step()
    assert [c.outcome for c in first.store.challenges()] == [st.PROVEN]
    receipt = other.l1.send(other.challenge_call(bad.id, 0, bad.txs, bad.roots, bad.pre_states[0], salt))
    [moved] = other.rollup.events.RewardReassigned().process_receipt(receipt, errors=DISCARD)
    assert moved["args"]["challenger"] == other.l1.address and moved["args"]["previous"] == first.address
    world.travel(int(world.deployment.params["reward_delay"]))
    sent = nonce(world, CHALLENGER)
    first.step()
    assert first.store.challenges()[0].reward_tx == f"taken by {other.l1.address}"
    assert nonce(world, CHALLENGER) == sent  # the watcher claims nothing
    before = world.w3.eth.get_balance(other.l1.address)
    paid = other.claim_reward(bad.id)
    fee = int(paid["gasUsed"]) * int(paid["effectiveGasPrice"])
    assert world.w3.eth.get_balance(other.l1.address) == before + BOND // 2 - fee


# ---------------------------------------------------------------------- (d) restarts


class Killed(BaseException):
    """Stands for a kill -9: nothing after the point it is raised runs."""


@pytest.mark.parametrize("nonce_taken", [False, True], ids=["resent-as-signed", "nonce-taken"])
@pytest.mark.parametrize("killed_at", ["commitment", "reveal"])
def test_killed_mid_challenge_resumes(world: World, new_watcher: Callable[..., Watcher],
                                      monkeypatch: pytest.MonkeyPatch, killed_at: str, nonce_taken: bool) -> None:
    """Killed once a transaction of the challenge is signed and recorded, before it is
    broadcast: the restarted watcher sends the same signed transaction; if its nonce went
    to another transaction meanwhile, a lost commitment starts the challenge anew and a
    lost reveal is revealed again on the standing commitment."""
    watcher = new_watcher()
    watcher.step()
    bad = world.post(SCENARIOS["Withdraw"](world), lie_at=0)
    real = watcher.w3.eth.send_raw_transaction
    sends = []

    def die(raw: bytes) -> Any:
        sends.append(raw)
        if len(sends) == (1 if killed_at == "commitment" else 2):
            raise Killed
        return real(raw)

    monkeypatch.setattr(watcher.w3.eth, "send_raw_transaction", die)
    with pytest.raises(Killed):  # recorded and signed, never broadcast
        watcher.step()
    [recorded] = watcher.store.challenges()
    assert recorded.outcome == (st.COMMITTING if killed_at == "commitment" else st.SENT)
    assert status(world, bad.id) == PENDING
    verdicts = watcher.verdicts()
    del watcher  # dropped without closing, as a killed process would
    if nonce_taken:  # meanwhile the key's nonce went to another transaction
        L1(world.url, CHALLENGER).transfer_eth(address(SECOND), 1)

    resumed = new_watcher()
    resumed.step()
    assert status(world, bad.id) == REVERTED
    challenges = resumed.store.challenges()
    if killed_at == "commitment" and nonce_taken:
        assert [c.outcome for c in challenges] == [st.LOST, st.PROVEN]
        assert challenges[1].commit_tx != recorded.commit_tx
    elif killed_at == "commitment":
        assert [(c.commit_tx, c.outcome) for c in challenges] == [(recorded.commit_tx, st.PROVEN)]
    else:
        [challenge] = challenges
        assert challenge.outcome == st.PROVEN and challenge.commit_tx == recorded.commit_tx
        assert (challenge.tx_hash == recorded.tx_hash) != nonce_taken  # the same signed reveal, unless lost
    assert {k: v for k, v in resumed.verdicts().items() if k in verdicts} == verdicts


def watch_command() -> list[str]:
    """`python -m rollup watch` once rollup/cli.py registers it, else `python -m challengers watch`."""
    from rollup.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    return [sys.executable, "-m", "rollup" if "watch" in commands else "challengers", "watch"]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; watcher log:\n{log.read_text(errors='replace')}")


def last_block(path: Path) -> int:
    if not path.exists():
        return -1
    try:
        with sqlite3.connect(path, timeout=5) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'last_block'").fetchone()
            return -1 if row is None else int(row[0])
    except sqlite3.OperationalError:  # not created yet
        return -1


def challenge_outcomes(path: Path) -> list[str]:
    if not path.exists():
        return []
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return [r[0] for r in db.execute("SELECT outcome FROM challenges ORDER BY id")]
    except sqlite3.OperationalError:  # not created yet
        return []


def test_watch_process_killed_mid_challenge(world: World, tmp_path: Path) -> None:
    deployment_file = tmp_path / "deployment.json"
    world.deployment.save(deployment_file)
    store = tmp_path / "watch.sqlite3"
    args = [*watch_command(), "--l1-rpc", world.url, "--deployment", str(deployment_file),
            "--key", "0x" + CHALLENGER.hex(), "--store", str(store), "--poll", "0.2"]
    bad = world.post(SCENARIOS["Trade"](world), lie_at=0)
    sent = nonce(world, CHALLENGER)
    rpc = world.w3.provider.make_request
    rpc(RPCEndpoint("evm_setAutomine"), [False])  # the commitment will wait in the pending block
    log = tmp_path / "watch-1.log"
    process = Process(args, log)
    try:
        wait_for(lambda: challenge_outcomes(store) == [st.COMMITTING]
                 and world.w3.eth.get_transaction_count(address(CHALLENGER), "pending") > sent,
                 60, "the commitment to be sent (and wait in the pending block)", log)
    finally:
        process.popen.send_signal(signal.SIGKILL)
        process.stop()
    assert process.popen.returncode == -signal.SIGKILL
    rpc(RPCEndpoint("evm_setAutomine"), [True])
    rpc(RPCEndpoint("evm_mine"), [])  # the commitment lands while no watcher runs
    assert status(world, bad.id) == PENDING and nonce(world, CHALLENGER) == sent + 1

    log = tmp_path / "watch-2.log"
    process = Process(args, log)
    try:
        wait_for(lambda: challenge_outcomes(store) == [st.PROVEN], 60, "the outcome to be recorded", log)
    finally:
        process.stop(20)
    assert process.popen.returncode == 0, log.read_text()
    assert status(world, bad.id) == REVERTED
    # one commitment, one reveal, never repeated (and perhaps, once due, the reward's claim)
    assert sent + 2 <= nonce(world, CHALLENGER) <= sent + 3
    text = log.read_text()
    assert "fraud proven at step 0" in text and "Traceback" not in text


def test_watch_process_killed_then_restarted_proves(world: World, tmp_path: Path) -> None:
    """A watcher killed before the fraud appears; the restarted one finds and proves it."""
    deployment_file = tmp_path / "deployment.json"
    world.deployment.save(deployment_file)
    store = tmp_path / "watch.sqlite3"
    args = [*watch_command(), "--l1-rpc", world.url, "--deployment", str(deployment_file),
            "--key", "0x" + CHALLENGER.hex(), "--store", str(store), "--poll", "0.2"]
    log = tmp_path / "watch-1.log"
    process = Process(args, log)
    try:
        wait_for(lambda: last_block(store) >= world.w3.eth.block_number, 60, "the watcher to catch up", log)
    finally:
        os.kill(process.popen.pid, signal.SIGKILL)
        process.stop()
    bad = world.post(SCENARIOS["Deposit"](world), lie_at=0)
    log = tmp_path / "watch-2.log"
    process = Process(args, log)
    try:
        wait_for(lambda: challenge_outcomes(store) == [st.PROVEN], 60, "the fraud to be proven", log)
    finally:
        process.stop(20)
    assert status(world, bad.id) == REVERTED


# ---------------------------------------------------------------------- (e) a hostile watcher


def test_hostile_watcher_is_refused_and_batches_finalize(world: World, new_watcher: Callable[..., Watcher],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    for kind in ("Trade", "OracleUpdate", "Withdraw"):
        world.post(SCENARIOS[kind](world))
    hostile = new_watcher(HOSTILE_KEY, "hostile", hostile=True, seed=7)
    with caplog.at_level(logging.INFO, logger="challengers"):
        hostile.step()
        hostile.step()
    challenges = hostile.store.challenges()
    assert len(challenges) == len(world.history)  # one per batch, not repeated
    for c in challenges:
        assert (c.kind, c.outcome, c.reason) == (st.HOSTILE, st.REFUSED, STEP_IS_CORRECT), c
        receipt = world.w3.eth.get_transaction_receipt(c.tx_hash)  # type: ignore[arg-type]
        assert receipt["status"] == 0  # sent and mined: L1 itself refused it
    assert {status(world, p.id) for p in world.history} == {PENDING}

    past_window(world)
    world.proposer.finalize(64)
    hostile.step()
    assert {status(world, p.id) for p in world.history} == {FINAL}
    assert {b.status for b in hostile.store.batches()} == {st.FINAL}
    assert len(hostile.store.challenges()) == len(world.history)
