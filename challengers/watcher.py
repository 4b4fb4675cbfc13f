"""The watcher: a permissionless process that rebuilds the rollup's state from L1 data
alone, re-executes every batch with the STF, and proves the first wrong step of a bad
batch on L1 inside its challenge window.

What it reads (nothing from the operator), `confirmations` blocks behind the L1 head:

- the Rollup's events, in L1 order: BatchSubmitted (a batch at a position of the live
  chain), BatchReverted, BatchFinalized, FraudProven, RewardReassigned, Frozen;
- each batch's transactions and posted roots, from the calldata of the L1 transaction
  that submitted it (checked against the event's step-tree root: the Rollup accepts only
  top-level submissions, so every batch can be read this way);
- the Bridge's deposit and forced-request queues (rollup/l1/inbox.py), for the context
  each batch was posted in.

The live chain: the batch at position p starts from the state after the batch at p - 1
(genesis for p = 0). The watcher keeps the state after each live position whose batch it
found valid, from the last final position on (a revert never reaches below it); a
reverted position's state is dropped and the batch that later takes the position is
verified from its parent's. A batch whose parent is invalid cannot be re-executed (its
true pre-state is unknown): its verdict is "after-invalid", and it goes when its
ancestor is proven wrong.

What it does (`step`, idempotent): read the new L1 blocks (`sync`), then act (`act`):
for every pending invalid batch not yet dealt with, build the fraud proof of its first
wrong step (the witness of the true pre-state) and prove it in two L1 transactions: the
commitment to (this watcher, the batch, the step, the true post-state root, a random
salt), then, once it is mined, the reveal. The contract's refusal reasons are
authoritative and each is final: "batch not pending" means someone else proved it (or an
ancestor) first with an older commitment; "window closed" means it came too late. Once a
proof's reward delay has passed, the watcher claims its reward.

L1 reorganisations: every block the watcher read events from is remembered with its
hash. When the last one is no longer on the chain, the watcher rolls its store back to
the newest remembered block that still is (the common ancestor), forgets the queue
entries read after it, and reads on from there.

Everything is recorded in a SQLite store (`challengers.store`) as it happens; each
challenge transaction is recorded, signed, before it is broadcast. After a restart (even
a kill -9 at any point) the watcher replays the live chain from its last state snapshot
(or genesis) out of L1, keeps every verdict, resolves any challenge left in flight (its
receipt, or a rebroadcast of the same signed transaction, or, if its nonce went to
another transaction, a new attempt), and carries on within the window.

`hostile=True` is a misbehaving watcher for tests: besides the honest challenges, it
reveals a proof of a random step of every batch it found valid, without a commitment,
and sends the transaction even though L1 would refuse it, to show that a correct batch
survives any challenge.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import threading
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.exceptions import BlockNotFound, ContractLogicError, TimeExhausted, TransactionNotFound
from web3.logs import DISCARD

from rollup.deploy import Deployment
from rollup.l1.batches import (
    INVALID,
    VALID,
    Calldata,
    Verdict,
    batch_calldata,
    state_before,
    verify_batch,
)
from rollup.l1.client import L1, revert_reason
from rollup.l1.inbox import Inbox
from rollup.l1.rollup_client import NOT_COMMITTED, RollupL1, commitment, config_of
from rollup.l1.rollup_client import PENDING as PENDING_ON_L1
from rollup.stf.fork import Context
from rollup.stf.prefetch import Recoverer
from rollup.stf.state import State

from .store import (
    AFTER_INVALID,
    ALREADY_PROVEN,
    COMMITTED,
    COMMITTING,
    FAILED,
    FINAL,
    HONEST,
    HOSTILE,
    LOST,
    PENDING,
    PROVEN,
    REFUSED,
    REVERTED,
    SENT,
    BatchRow,
    ChallengeRow,
    Store,
)

log = logging.getLogger(__name__)

NOT_PENDING = "challenge: batch not pending"
WINDOW_CLOSED = "challenge: window closed"
STEP_IS_CORRECT = "challenge: step is correct"

HOSTILE_GAS = 1_500_000
"""Gas of a hostile reveal, sent without an estimate (L1 would refuse to estimate it)."""
COMMIT_GAS = 80_000

EVENTS = ("BatchSubmitted", "BatchFinalized", "BatchReverted", "FraudProven", "RewardReassigned", "Frozen")


def _hex(value: Any) -> str:
    return Web3.to_hex(value)


class Watcher:
    """A watcher of one deployment, sending its challenges with `key`.

    `deployment` is a Deployment or the path of a deployment file; `store_path` is the
    SQLite file of its record (created if missing; it must belong to this deployment).
    `poll_interval` is the pause of `run` between steps, `log_chunk` the most L1 blocks
    read per eth_getLogs, `snapshot_every` how many newly final batches trigger a new state
    snapshot, `receipt_timeout` how long a step waits for a transaction's receipt before
    leaving it in flight for the next step, `confirmations` how many blocks behind the L1
    head it reads."""

    def __init__(self, l1_url: str, deployment: Deployment | str | Path, key: str | bytes,
                 store_path: str | Path, poll_interval: float = 1.0, *, hostile: bool = False,
                 log_chunk: int = 2_000, snapshot_every: int = 16, receipt_timeout: float = 60.0,
                 seed: int | None = None, confirmations: int = 0, workers: int = 0) -> None:
        if not isinstance(deployment, Deployment):
            deployment = Deployment.load(deployment)
        self.deployment = deployment
        self.l1 = L1(l1_url, key)
        self.w3 = self.l1.w3
        self.chain = RollupL1(self.l1, deployment)
        self.rollup = self.chain.rollup
        self.address = self.l1.address
        self._account = Account.from_key(key)
        self.config = config_of(deployment)
        self.poll_interval = poll_interval
        self.hostile = hostile
        self.log_chunk = max(1, log_chunk)
        self.snapshot_every = max(1, snapshot_every)
        self.receipt_timeout = receipt_timeout
        self.confirmations = max(0, confirmations)
        self.recoverer = Recoverer(workers) if workers > 0 else None
        """Recovers each batch's signatures on `workers` processes ahead of re-execution."""
        self._rng = random.Random(seed)
        self._events = {
            bytes(Web3.to_bytes(hexstr=getattr(self.rollup.events, name)().topic)): getattr(self.rollup.events, name)()
            for name in EVENTS
        }

        self._genesis = deployment.genesis()
        expected = bytes.fromhex(deployment.params["genesis_root"][2:])
        if self._genesis.root() != expected:
            raise ValueError("this STF's genesis state does not have the deployment's genesis root "
                             f"0x{expected.hex()}: the watcher cannot verify this rollup")
        if bytes(self.rollup.functions.genesis_root().call()) != expected:
            raise ValueError("the Rollup contract's genesis root differs from the deployment file's")

        self.store = Store(store_path)
        self.store.bind(self.rollup.address, deployment.chain_id, deployment.deploy_block)
        self.inbox = Inbox(self.chain.bridge, deployment.deploy_block, self.confirmations, self.chain.l1.rpc)
        self._live: dict[int, int] = {}
        """position -> batch id, the live chain as of the last processed block."""
        self._states: dict[int, State] = {}
        """position -> the state after its batch (valid batches, positions >= finalized - 1)."""
        self._finalized = 0
        """How many positions are final."""
        self._loaded = False
        self._rewards_held: dict[int, int] = {}
        """challenge id -> the L1 time its reward becomes payable (known to be held until then)."""

    # ------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event) -> None:
        """Step every `poll_interval` seconds until `stop` is set. A failing step (an L1
        outage, say) is logged and retried; nothing it meets ends the loop."""
        log.info("watching rollup %s on chain %d as %s%s", self.rollup.address, self.deployment.chain_id,
                 self.address, " (HOSTILE)" if self.hostile else "")
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failure
                log.exception("step failed; retrying in %.1f s", self.poll_interval)
            stop.wait(self.poll_interval)
        log.info("stopped at L1 block %d", self.store.last_block)

    def step(self) -> None:
        """Process everything new on L1, then challenge what needs it. Idempotent: a step
        with nothing new changes nothing and sends nothing."""
        self.sync()
        self.act()

    def close(self) -> None:
        if self.recoverer is not None:
            self.recoverer.close()
        self.store.close()

    # ------------------------------------------------------------------ reading L1

    def _head(self) -> int:
        """The newest block the watcher reads: `confirmations` behind the latest."""
        return int(self.w3.eth.block_number) - self.confirmations

    def _hash_of(self, number: int) -> str | None:
        try:
            return _hex(self.w3.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    def sync(self) -> None:
        """Apply the Rollup's events of every confirmed L1 block after the last processed
        one, in ranges of `log_chunk` blocks, each range atomically with its progress mark."""
        try:
            if not self._loaded:
                self._load()
            self._follow_reorg()
            head = self._head()
            start = self.store.last_block + 1
            while start <= head:
                end = min(head, start + self.log_chunk - 1)
                end_hash = self._hash_of(end)  # first: a reorganisation during the range is seen next time
                logs = self.w3.eth.get_logs({"address": self.rollup.address, "fromBlock": start, "toBlock": end})
                if end_hash is None:
                    break
                with self.store.transaction():
                    for entry in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
                        self._on_log(entry)
                        self.store.add_block(int(entry["blockNumber"]), _hex(entry["blockHash"]))
                    self.store.set_last_block(end, end_hash)
                self._prune()
                start = end + 1
            self._snapshot()
        except BaseException:
            self._loaded = False  # memory may be ahead of the store: rebuild it next time
            raise

    def _follow_reorg(self) -> None:
        """If the last processed block is no longer on the chain, roll back to the newest
        remembered block that is (rescanning from the deployment if none is)."""
        recorded = self.store.last_block_hash
        if not recorded or self._hash_of(self.store.last_block) == recorded:
            return
        ancestor, ancestor_hash = self.deployment.deploy_block - 1, ""
        for number, block_hash in self.store.blocks_newest_first():
            if self._hash_of(number) == block_hash:
                ancestor, ancestor_hash = number, block_hash
                break
        log.warning("L1 reorganised under block %d: rolling back to block %d and reading on from there",
                    self.store.last_block, ancestor)
        self.store.roll_back(ancestor, ancestor_hash)
        self.inbox.rewind(ancestor)
        self._load()

    def _on_log(self, entry: Any) -> None:
        event = self._events.get(bytes(entry["topics"][0])) if entry["topics"] else None
        if event is None:
            return
        data = event.process_log(entry)
        args, name, block = data["args"], data["event"], int(entry["blockNumber"])
        if name == "BatchSubmitted":
            self._on_submitted(args, entry)
        elif name == "BatchReverted":
            self._on_reverted(int(args["id"]), int(args["position"]), block)
        elif name == "BatchFinalized":
            self._on_finalized(int(args["id"]), int(args["position"]), block)
        elif name == "FraudProven":
            self._on_proven(args, block)
        elif name == "RewardReassigned":
            log.info("batch %d: the reward goes to %s (an older commitment)", int(args["id"]), args["challenger"])
        elif name == "Frozen":
            log.warning("the rollup is frozen; final root 0x%s", bytes(args["final_root"]).hex())
            self.store.put("frozen", 1)
            self.store.put("frozen_block", block)

    def _on_submitted(self, args: Any, entry: Any) -> None:
        row = BatchRow(
            id=int(args["id"]), position=int(args["position"]), block=int(entry["blockNumber"]),
            tx_hash=_hex(entry["transactionHash"]), proposer=str(args["proposer"]),
            state_root=_hex(args["state_root"]), step_root=_hex(args["step_root"]), steps=int(args["steps"]),
            timestamp=int(args["timestamp"]), deposit_count=int(args["deposit_count"]),
            forced_count=int(args["forced_count"]), deadline=int(args["deadline"]), status=PENDING,
        )
        self.store.add_batch(row)
        for position in [p for p in self._live if p >= row.position]:  # none: the contract reverted them
            self._live.pop(position)
            self._states.pop(position, None)
        self._live[row.position] = row.id
        verdict, state = self._judge(row)
        self._record_verdict(row, verdict)
        if state is not None:
            self._states[row.position] = state

    def _on_reverted(self, batch_id: int, position: int, block: int) -> None:
        self.store.set_status(batch_id, REVERTED, block)
        if self._live.get(position) == batch_id:
            del self._live[position]
            self._states.pop(position, None)
        log.info("batch %d (position %d) reverted", batch_id, position)

    def _on_finalized(self, batch_id: int, position: int, block: int) -> None:
        self.store.set_status(batch_id, FINAL, block)
        self._finalized = max(self._finalized, position + 1)
        row = self.store.batch(batch_id)
        if row is not None and row.verdict == INVALID:
            log.critical("batch %d (position %d) is FINAL although invalid at step %s: its challenge "
                         "window passed unproven; later batches cannot be verified", batch_id, position,
                         row.bad_step)
        else:
            log.debug("batch %d (position %d) final", batch_id, position)

    def _on_proven(self, args: Any, block: int) -> None:
        batch_id, step = int(args["id"]), int(args["step"])
        challenger = str(args["challenger"])
        self.store.set_proven(batch_id, challenger, step, block)
        row = self.store.batch(batch_id)
        if challenger.lower() == self.address.lower():
            log.info("batch %d: our fraud proof of step %d is on L1 (reward %d wei, held)", batch_id, step,
                     int(args["reward"]))
            return
        if row is not None and row.verdict == VALID:
            log.error("batch %d was proven wrong at step %d by %s although our STF finds it valid: "
                      "the STF and the L1 verifier disagree", batch_id, step, challenger)
        elif row is not None and row.verdict == INVALID:
            log.info("batch %d: already proven by someone else (%s, step %d)", batch_id, challenger, step)
        else:
            log.info("batch %d: proven wrong at step %d by %s", batch_id, step, challenger)

    def _record_verdict(self, row: BatchRow, verdict: Verdict, detail: str = "") -> None:
        self.store.set_verdict(
            row.id, verdict.kind, verdict.step if verdict.kind == INVALID else None,
            None if verdict.posted is None else _hex(verdict.posted),
            None if verdict.computed is None else _hex(verdict.computed), detail or None)
        level = {VALID: logging.INFO, INVALID: logging.WARNING}.get(verdict.kind, logging.INFO)
        log.log(level, "batch %d (position %d, %d steps): %s%s", row.id, row.position, row.steps,
                verdict.describe(), f" ({detail})" if detail else "")

    # ------------------------------------------------------------------ re-execution

    def _calldata(self, row: BatchRow) -> Calldata:
        return batch_calldata(self.w3, self.rollup, row.tx_hash, row.position, row.timestamp, row.steps,
                              bytes.fromhex(row.step_root[2:]))

    def _context(self, row: BatchRow) -> Context:
        """The batch's STF context: its timestamp and the L1 queues as they stood when it
        was posted (the counts the Rollup recorded)."""
        deposits, forced = self.inbox.heads(row.deposit_count, row.forced_count)
        return Context(self.config, row.timestamp, deposits, forced)

    def _parent(self, position: int) -> State | None:
        return self._genesis if position == 0 else self._states.get(position - 1)

    def _judge(self, row: BatchRow) -> tuple[Verdict, State | None]:
        """Re-execute a batch from its parent's state (the verdict, and the state after it
        when valid). A batch after an invalid one cannot be: it goes with its ancestor."""
        parent = self._parent(row.position)
        if parent is None:
            return Verdict(AFTER_INVALID), None
        return verify_batch(parent, self._calldata(row), self._context(row), self.recoverer)

    def _prune(self, below: int | None = None) -> None:
        """Drop the states no revert can return to (below the last final position), and
        below `below` if given (while replaying: the states already used as parents)."""
        limit = self._finalized - 1 if below is None else min(self._finalized - 1, below)
        for position in [p for p in self._states if p < limit]:
            del self._states[position]

    # ------------------------------------------------------------------ restart

    def _load(self) -> None:
        """Rebuild memory from the store and L1: the live chain as of the last processed
        block, re-executed from the snapshot (or genesis). Verdicts already recorded are
        kept: re-execution is deterministic, and should it differ all the same (a changed
        STF) the difference is logged as an error and the recorded verdict stays."""
        self._live.clear()
        self._states.clear()
        self._finalized = 0
        self.inbox.sync()
        rows = self.store.live_batches()
        if [r.position for r in rows] != list(range(len(rows))):
            log.error("the store's live chain has gaps: rescanning from the deployment")
            self.store.roll_back(self.deployment.deploy_block - 1, "")
            rows = []
        self._finalized = sum(1 for r in rows if r.status == FINAL)
        snapshot = self._load_snapshot(rows)
        replayed = 0
        with self.store.transaction():
            for row in rows:
                self._live[row.position] = row.id
                if snapshot is not None and row.position <= snapshot[0]:
                    if row.position == snapshot[0]:
                        self._states[row.position] = snapshot[1]
                    continue
                verdict, state = self._judge(row)
                replayed += 1
                step = verdict.step if verdict.kind == INVALID else None
                if row.verdict is None:
                    self._record_verdict(row, verdict)
                elif (row.verdict, row.bad_step) != (verdict.kind, step):
                    log.error("batch %d: recorded verdict %s (step %s) kept, but re-execution now gives %s",
                              row.id, row.verdict, row.bad_step, verdict.describe())
                if state is not None:
                    self._states[row.position] = state
                self._prune(below=row.position)
        self._loaded = True
        log.info("loaded: %d live batches (%d final), %d re-executed from %s; L1 block %d", len(rows),
                 self._finalized, replayed,
                 "genesis" if snapshot is None else f"the snapshot at position {snapshot[0]}",
                 self.store.last_block)

    def _load_snapshot(self, rows: list[BatchRow]) -> tuple[int, State] | None:
        """The stored snapshot if it is the state after a final live batch (checked
        against that batch's root), else None (and it is dropped)."""
        found = self.store.snapshot()
        if found is None:
            return None
        position, batch_id, root, blob = found
        try:
            usable = (position < len(rows) and rows[position].id == batch_id and rows[position].status == FINAL
                      and rows[position].state_root == root)
            state = pickle.loads(blob) if usable else None
            if state is not None and _hex(state.root()) == root:
                return position, state
        except Exception as exc:  # noqa: BLE001 - a stale or foreign pickle: replay from genesis
            log.warning("state snapshot unreadable (%r): replaying from genesis", exc)
        self.store.drop_snapshot()
        return None

    def _snapshot(self) -> None:
        """Store the state after the last final batch, every `snapshot_every` final batches
        (and forget the hashes of blocks before that batch: no reorganisation is that deep)."""
        anchor = self._finalized - 1
        state = self._states.get(anchor)
        if state is None:
            return
        found = self.store.snapshot()
        if found is not None and anchor - found[0] < self.snapshot_every:
            return
        row = self.store.batch(self._live[anchor])
        self.store.save_snapshot(anchor, self._live[anchor], _hex(state.root()),
                                 pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        if row is not None:
            with self.store.transaction():
                self.store.prune_blocks(row.block)
        log.debug("state snapshot at position %d", anchor)

    # ------------------------------------------------------------------ challenges

    def act(self) -> None:
        """Advance challenges in flight, start one for every pending invalid batch not yet
        dealt with (and, when hostile, a random step of every valid one), claim the rewards
        that are due. A failure with one batch is logged and retried at the next step; it
        does not stop the others."""
        for challenge in self.store.in_flight():
            try:
                self._advance(challenge)
            except Exception:  # noqa: BLE001
                log.exception("batch %d: could not follow challenge %d; retrying", challenge.batch_id, challenge.id)
        for row in self.store.pending_batches():
            if row.verdict == INVALID and not self.store.challenge_settled(row, HONEST):
                assert row.bad_step is not None
                kind, step = HONEST, row.bad_step
            elif self.hostile and row.verdict == VALID and not self.store.challenge_settled(row, HOSTILE):
                kind, step = HOSTILE, self._rng.randrange(row.steps)
            else:
                continue
            try:
                self._begin(row, step, kind)
            except Exception:  # noqa: BLE001
                log.exception("batch %d: challenge of step %d failed; retrying at the next step", row.id, step)
        try:
            self._claim_rewards()
        except Exception:  # noqa: BLE001
            log.exception("claiming rewards failed; retrying at the next step")

    def _reveal_call(self, row: BatchRow, step: int, salt: bytes) -> Any:
        parent = self._parent(row.position)
        if parent is None:
            raise RuntimeError(f"batch {row.id}: no state for its parent at position {row.position - 1}")
        data = self._calldata(row)
        pre_state = state_before(parent, data.txs, step, self._context(row))
        return self.chain.challenge_call(row.id, step, data.txs, data.roots, pre_state, salt)

    def _begin(self, row: BatchRow, step: int, kind: str) -> None:
        """Start a challenge of step `step` of `row`: check the reveal would pass all but the
        commitment, then sign, record and broadcast the commitment (honest), or send the
        reveal at once (hostile, for L1 to refuse)."""
        salt = os.urandom(32)
        call = self._reveal_call(row, step, salt)
        _, refusal = self._estimate(call)
        if kind == HOSTILE:
            challenge_id = self.store.add_challenge(row, step, kind, COMMITTED, salt=salt, reason=refusal)
            self._send_reveal(self.store.challenge(challenge_id), call, HOSTILE_GAS)
            return
        if refusal == NOT_COMMITTED and self.chain.batch(row.id).status != PENDING_ON_L1:
            refusal = NOT_PENDING  # proven already: a commitment made now is younger than the winner's
        if refusal != NOT_COMMITTED:
            self._refused(self.store.add_challenge(row, step, kind, REFUSED), row, step, refusal)
            return
        assert row.computed_root is not None
        claimed = bytes.fromhex(row.computed_root[2:])
        commit = self.rollup.functions.commit(commitment(self.address, row.id, step, claimed, salt))
        nonce, raw, tx_hash = self._sign(commit, COMMIT_GAS)
        challenge_id = self.store.add_challenge(row, step, kind, COMMITTING, salt=salt, claimed_root=row.computed_root,
                                                commit_tx=tx_hash, commit_nonce=nonce, commit_raw=raw)
        log.info("batch %d: commitment to a proof of step %d sent in %s", row.id, step, tx_hash)
        self._advance(self.store.challenge(challenge_id))

    def _estimate(self, call: Any) -> tuple[int | None, str | None]:
        """(gas with a margin, None), or (None, L1's refusal reason)."""
        try:
            gas = int(call.estimate_gas({"from": self.address}, block_identifier="pending"))
        except ContractLogicError as exc:
            return None, revert_reason(exc) or str(exc.message or exc)
        return gas * 6 // 5 + 10_000, None

    def _refused(self, challenge_id: int, row: BatchRow, step: int, refusal: str | None) -> None:
        """L1 refuses a proof before anything more is sent: record and say why."""
        outcome = ALREADY_PROVEN if refusal == NOT_PENDING else REFUSED
        self.store.update_challenge(challenge_id, outcome=outcome, reason=refusal)
        if refusal == NOT_PENDING:
            log.info("batch %d: already proven by someone else", row.id)
        elif refusal == WINDOW_CLOSED:
            log.error("batch %d: invalid at step %d, but its challenge window closed (deadline %d) "
                      "before this watcher could prove it", row.id, step, row.deadline)
        else:
            log.error("batch %d: L1 refuses the proof of step %d: %s", row.id, step, refusal)

    def _sign(self, call: Any, gas: int) -> tuple[int, bytes, str]:
        nonce = int(self.w3.eth.get_transaction_count(self._account.address, "pending"))
        tx = call.build_transaction({"from": self.address, "nonce": nonce, "gas": gas,
                                     "chainId": self.deployment.chain_id, **self.l1.fees()})
        signed = self._account.sign_transaction(tx)
        return nonce, bytes(signed.raw_transaction), _hex(signed.hash)

    def _advance(self, challenge: ChallengeRow) -> None:
        """Move a challenge in flight on: the commitment to its receipt, then the reveal
        (sent once the commitment is mined, it lands in a later block), then the reveal to
        its outcome."""
        row = self.store.batch(challenge.batch_id)
        if challenge.outcome == COMMITTING:
            assert challenge.commit_tx is not None and challenge.commit_raw is not None
            receipt = self._follow(challenge.commit_tx, challenge.commit_raw, challenge.commit_nonce)
            if receipt is None:
                return
            if receipt == LOST:
                self.store.update_challenge(challenge.id, outcome=LOST, reason="the commitment never landed")
                log.warning("batch %d: commitment %s never landed", challenge.batch_id, challenge.commit_tx)
                return
            if int(receipt["status"]) != 1:
                self.store.update_challenge(challenge.id, outcome=FAILED, reason="the commitment reverted")
                log.error("batch %d: commitment %s reverted", challenge.batch_id, challenge.commit_tx)
                return
            self.store.update_challenge(challenge.id, outcome=COMMITTED, commit_block=int(receipt["blockNumber"]))
            challenge = self.store.challenge(challenge.id)
        if challenge.outcome == COMMITTED:
            if row is None or row.tx_hash != challenge.batch_tx:
                self.store.update_challenge(challenge.id, outcome=LOST, reason="the batch left L1 (reorganisation)")
                return
            # the commitment is mined: the reveal, sent now, lands in a later block
            assert challenge.salt is not None
            call = self._reveal_call(row, challenge.step, challenge.salt)
            gas, refusal = self._estimate(call)
            if gas is None:
                self._refused(challenge.id, row, challenge.step, refusal)
                return
            self._send_reveal(challenge, call, gas)
            return
        if challenge.outcome == SENT:
            self._resolve(challenge)

    def _send_reveal(self, challenge: ChallengeRow, call: Any, gas: int) -> None:
        nonce, raw, tx_hash = self._sign(call, gas)
        self.store.update_challenge(challenge.id, outcome=SENT, tx_hash=tx_hash, nonce=nonce, raw_tx=raw)
        log.info("batch %d: %s proof of step %d revealed in %s", challenge.batch_id, challenge.kind, challenge.step,
                 tx_hash)
        self._resolve(self.store.challenge(challenge.id))

    def _follow(self, tx_hash: str, raw: bytes, nonce: int | None) -> Any:
        """A signed transaction's receipt; else broadcast it (again) and wait for it; LOST
        if its nonce went to another transaction or the node will not take it; None if
        no receipt came in time (followed at the next step)."""
        receipt = self._receipt(tx_hash)
        if receipt is not None:
            return receipt
        assert nonce is not None
        if int(self.w3.eth.get_transaction_count(self._account.address, "latest")) > nonce:
            return LOST
        try:
            self.w3.eth.send_raw_transaction(raw)
        except Exception:  # noqa: BLE001 - already known, or refused by the node
            if int(self.w3.eth.get_transaction_count(self._account.address, "pending")) <= nonce:
                return LOST
        try:
            return self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout, poll_latency=0.1)  # type: ignore[arg-type]
        except TimeExhausted:
            log.info("transaction %s not mined yet; following it at the next step", tx_hash)
            return None

    def _resolve(self, challenge: ChallengeRow) -> None:
        """Follow a revealed proof to its outcome. A reveal that never landed leaves the
        commitment standing: the proof is revealed again."""
        assert challenge.tx_hash is not None and challenge.raw_tx is not None
        receipt = self._follow(challenge.tx_hash, challenge.raw_tx, challenge.nonce)
        if receipt is None:
            return
        if receipt == LOST:
            log.warning("batch %d: reveal %s never landed", challenge.batch_id, challenge.tx_hash)
            if challenge.kind == HOSTILE or challenge.commit_block is None:
                self.store.update_challenge(challenge.id, outcome=LOST, reason="the reveal never landed")
            else:  # the commitment stands: reveal again
                self.store.update_challenge(challenge.id, outcome=COMMITTED, tx_hash=None, nonce=None, raw_tx=None)
                self._advance(self.store.challenge(challenge.id))
            return
        self._finish(challenge, receipt)

    def _receipt(self, tx_hash: str) -> Any:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def _finish(self, challenge: ChallengeRow, receipt: Any) -> None:
        """Record a mined reveal's outcome."""
        gas_used = int(receipt["gasUsed"])
        batch_id, step = challenge.batch_id, challenge.step
        if int(receipt["status"]) == 1:
            proven = self.rollup.events.FraudProven().process_receipt(receipt, errors=DISCARD)
            reward = int(proven[0]["args"]["reward"]) if proven else int(self.chain.deployment.params["bond"]) // 2
            self.store.update_challenge(challenge.id, outcome=PROVEN, reward=str(reward), gas_used=gas_used)
            if challenge.kind == HOSTILE:
                log.warning("batch %d: the hostile challenge of step %d PROVED it wrong", batch_id, step)
            log.info("batch %d: fraud proven at step %d (tx %s, %d gas%s)", batch_id, step, challenge.tx_hash,
                     gas_used, "" if proven else "; the reward taken over with an older commitment")
            return
        reason = self._reason_at(challenge, int(receipt["blockNumber"])) or challenge.reason
        if reason == NOT_PENDING:
            self.store.update_challenge(challenge.id, outcome=ALREADY_PROVEN, reason=reason, gas_used=gas_used)
            log.info("batch %d: already proven by someone else", batch_id)
        elif reason is not None:
            self.store.update_challenge(challenge.id, outcome=REFUSED, reason=reason, gas_used=gas_used)
            level = logging.INFO if challenge.kind == HOSTILE else logging.ERROR
            log.log(level, "batch %d: %s challenge of step %d refused by L1: %s", batch_id, challenge.kind,
                    step, reason)
        else:
            self.store.update_challenge(challenge.id, outcome=FAILED, gas_used=gas_used)
            log.error("batch %d: challenge %s reverted on L1 for no stated reason", batch_id, challenge.tx_hash)

    def _reason_at(self, challenge: ChallengeRow, block: int) -> str | None:
        """Why a mined reveal reverted: its call replayed on the state before its block."""
        tx = self.w3.eth.get_transaction(challenge.tx_hash)  # type: ignore[arg-type]
        try:
            self.w3.eth.call({"from": self.address, "to": tx["to"], "data": tx["input"], "gas": tx["gas"]},
                             block_identifier=block - 1)
        except ContractLogicError as exc:
            return revert_reason(exc) or str(exc.message or exc)
        return None

    def _claim_rewards(self) -> None:
        """Claim the reward of each of our proofs once its delay has passed (or note that
        an older commitment took it). A reward known to be held is looked at again only
        once L1's time reaches its payment time."""
        unclaimed = self.store.unclaimed_rewards()
        if not unclaimed:
            return
        now = int(self.w3.eth.get_block("latest")["timestamp"])
        for challenge in unclaimed:
            if now < self._rewards_held.get(challenge.id, 0):
                continue
            holder, _, amount, payable_at, paid = self.rollup.functions.rewards(challenge.batch_id).call()
            if str(holder).lower() != self.address.lower():
                self.store.update_challenge(challenge.id, reward_tx=f"taken by {holder}")
                log.info("batch %d: the reward went to %s (an older commitment)", challenge.batch_id, holder)
                continue
            if paid:
                self.store.update_challenge(challenge.id, reward_tx="paid")
                continue
            if now < int(payable_at):
                self._rewards_held[challenge.id] = int(payable_at)
                continue
            receipt = self.l1.send(self.rollup.functions.claim_reward(challenge.batch_id))
            self.store.update_challenge(challenge.id, reward_tx=_hex(receipt["transactionHash"]))
            log.info("batch %d: reward of %d wei claimed", challenge.batch_id, int(amount))

    # ------------------------------------------------------------------ reporting

    def tip_state(self) -> State | None:
        """The state after the latest live batch, as rebuilt from L1 (None before any)."""
        if not self._live:
            return None
        return self._states.get(max(self._live))

    def verdicts(self) -> dict[int, str]:
        """batch id -> verdict, for every batch seen."""
        return {row.id: row.verdict or "?" for row in self.store.batches()}


__all__ = ["ALREADY_PROVEN", "COMMITTED", "COMMITTING", "LOST", "NOT_PENDING", "STEP_IS_CORRECT",
           "WINDOW_CLOSED", "Watcher"]
