"""The watcher: a permissionless process that rebuilds the rollup's state from L1 data
alone, re-executes every batch with the STF, and proves the first wrong step of a bad
batch on L1 inside its challenge window.

What it reads (nothing from the operator):

- the Rollup's events, in L1 order: BatchSubmitted (a batch at a position of the live
  chain), BatchReverted, BatchFinalized, FraudProven, Frozen;
- each batch's transactions and posted roots, from the calldata of the L1 transaction
  that submitted it (checked against the event's step-tree root);
- the Bridge's deposit and forced-request hash-chain heads.

The live chain: the batch at position p starts from the state after the batch at p - 1
(genesis for p = 0). The watcher keeps the state after each live position whose batch it
found valid, from the last final position on (a revert never reaches below it); a
reverted position's state is dropped and the batch that later takes the position is
verified from its parent's. A batch whose parent is invalid (or unverifiable) cannot be
re-executed (its true pre-state is unknown): it is recorded unverifiable and goes when
its ancestor is proven wrong.

What it does (`step`, idempotent): read the new L1 blocks (`sync`), then act (`act`):
for every pending batch found invalid and not yet dealt with, build the fraud proof of
its first wrong step (the witness of the true pre-state) and send one `challenge`
transaction. The contract's refusal reasons are authoritative and each is final: "batch
not pending" means someone else proved it (or an ancestor) first; "window closed" means
it came too late. One challenge per bad batch; it is sent again only if the first never
landed on L1.

Everything is recorded in a SQLite store (`challengers.store`) as it happens; a challenge
transaction is recorded, signed, before it is broadcast. After a restart (even a kill -9
at any point) the watcher replays the live chain from its last state snapshot (or
genesis) out of L1, keeps every verdict, resolves any challenge left in flight (its
receipt, or a rebroadcast of the same signed transaction, or, if its nonce went to
another transaction, a new challenge), and carries on within the window.

`hostile=True` is a misbehaving watcher for tests: besides the honest challenges, it
challenges a random step of every batch it found valid and sends the transaction even
though L1 would refuse it, to show that a correct batch survives any challenge.

Limitations: a batch submitted through another contract (not a top-level `submit` to the
Rollup) is unverifiable, and so are its descendants until a revert removes them; L1
reorganisations are handled by rescanning from the deployment (no confirmation depth).
"""

from __future__ import annotations

import logging
import pickle
import random
import threading
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound
from web3.logs import DISCARD

from rollup.deploy import Deployment
from rollup.l1.client import L1
from rollup.l1.rollup_client import RollupL1, config_of
from rollup.stf.genesis import genesis_state
from rollup.stf.state import State

from .store import (
    ALREADY_PROVEN,
    FAILED,
    FINAL,
    HONEST,
    HOSTILE,
    INVALID,
    LOST,
    PENDING,
    PROVEN,
    REFUSED,
    REVERTED,
    SENT,
    UNVERIFIABLE,
    VALID,
    BatchRow,
    ChallengeRow,
    Store,
)
from .verify import (
    Calldata,
    QueueHeads,
    Unverifiable,
    Verdict,
    batch_calldata,
    state_before,
    verify_batch,
)

log = logging.getLogger(__name__)

NOT_PENDING = "challenge: batch not pending"
WINDOW_CLOSED = "challenge: window closed"
STEP_IS_CORRECT = "challenge: step is correct"

HOSTILE_GAS = 1_500_000
"""Gas of a hostile challenge, sent without an estimate (L1 would refuse to estimate it)."""

EVENTS = ("BatchSubmitted", "BatchFinalized", "BatchReverted", "FraudProven", "Frozen")


def _hex(value: Any) -> str:
    return Web3.to_hex(value)


def _revert_reason(exc: ContractLogicError) -> str:
    message = str(exc.message or exc)
    prefix = "execution reverted: "
    return message[len(prefix):] if message.startswith(prefix) else message


class Watcher:
    """A watcher of one deployment, sending its challenges with `key`.

    `deployment` is a Deployment or the path of a deployment file; `store_path` is the
    SQLite file of its record (created if missing; it must belong to this deployment).
    `poll_interval` is the pause of `run` between steps, `log_chunk` the most L1 blocks
    read per eth_getLogs, `snapshot_every` how many newly final batches trigger a new state
    snapshot, `receipt_timeout` how long a step waits for a challenge's receipt before
    leaving it in flight for the next step."""

    def __init__(self, l1_url: str, deployment: Deployment | str | Path, key: str | bytes,
                 store_path: str | Path, poll_interval: float = 1.0, *, hostile: bool = False,
                 log_chunk: int = 2_000, snapshot_every: int = 16, receipt_timeout: float = 60.0,
                 seed: int | None = None) -> None:
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
        self._rng = random.Random(seed)
        self._events = {
            bytes(Web3.to_bytes(hexstr=getattr(self.rollup.events, name)().topic)): getattr(self.rollup.events, name)()
            for name in EVENTS
        }

        owner = bytes.fromhex(deployment.params["insurance_owner"][2:])
        self._genesis = genesis_state(owner)
        expected = bytes.fromhex(deployment.params["genesis_root"][2:])
        if self._genesis.root() != expected:
            raise ValueError("this STF's genesis state does not have the deployment's genesis root "
                             f"0x{expected.hex()}: the watcher cannot verify this rollup")
        if bytes(self.rollup.functions.genesis_root().call()) != expected:
            raise ValueError("the Rollup contract's genesis root differs from the deployment file's")

        self.store = Store(store_path)
        self.store.bind(self.rollup.address, deployment.chain_id, deployment.deploy_block)
        self._heads = QueueHeads(self.chain.bridge)
        self._live: dict[int, int] = {}
        """position -> batch id, the live chain as of the last processed block."""
        self._states: dict[int, State] = {}
        """position -> the state after its batch (valid batches, positions >= finalized - 1)."""
        self._finalized = 0
        """How many positions are final."""
        self._loaded = False

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
        self.store.close()

    # ------------------------------------------------------------------ reading L1

    def sync(self) -> None:
        """Apply the Rollup's events of every L1 block after the last processed one, in
        ranges of `log_chunk` blocks, each range atomically with its progress mark."""
        try:
            if not self._loaded:
                self._load()
            if not self._continuous():
                self._load()
            head = int(self.w3.eth.block_number)
            start = self.store.last_block + 1
            while start <= head:
                end = min(head, start + self.log_chunk - 1)
                logs = self.w3.eth.get_logs({"address": self.rollup.address, "fromBlock": start, "toBlock": end})
                end_hash = _hex(self.w3.eth.get_block(end)["hash"])
                with self.store.transaction():
                    for entry in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
                        self._on_log(entry)
                    self.store.set_last_block(end, end_hash)
                self._prune()
                start = end + 1
            self._snapshot()
        except BaseException:
            self._loaded = False  # memory may be ahead of the store: rebuild it next time
            raise

    def _continuous(self) -> bool:
        """Whether the last processed block is still on the chain; if not (an L1
        reorganisation, or a dev node rewound), forget the progress and rescan."""
        recorded = self.store.last_block_hash
        if not recorded:
            return True
        try:
            current = _hex(self.w3.eth.get_block(self.store.last_block)["hash"])
        except Exception:  # noqa: BLE001 - BlockNotFound and friends: the block is gone
            current = None
        if current == recorded:
            return True
        log.error("L1 block %d changed (reorganisation or rewound node): rescanning from the deployment",
                  self.store.last_block)
        self.store.reset_progress(self.deployment.deploy_block)
        self._loaded = False
        return False

    def _on_log(self, entry: Any) -> None:
        event = self._events.get(bytes(entry["topics"][0])) if entry["topics"] else None
        if event is None:
            return
        data = event.process_log(entry)
        args, name = data["args"], data["event"]
        if name == "BatchSubmitted":
            self._on_submitted(args, entry)
        elif name == "BatchReverted":
            self._on_reverted(int(args["id"]), int(args["position"]))
        elif name == "BatchFinalized":
            self._on_finalized(int(args["id"]), int(args["position"]))
        elif name == "FraudProven":
            self._on_proven(args)
        elif name == "Frozen":
            log.warning("the rollup is frozen (forced request %d overdue); final root 0x%s",
                        int(args["forced_index"]), bytes(args["final_root"]).hex())
            self.store.put("frozen", int(args["forced_index"]))

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

    def _on_reverted(self, batch_id: int, position: int) -> None:
        self.store.set_status(batch_id, REVERTED)
        if self._live.get(position) == batch_id:
            del self._live[position]
            self._states.pop(position, None)
        log.info("batch %d (position %d) reverted", batch_id, position)

    def _on_finalized(self, batch_id: int, position: int) -> None:
        self.store.set_status(batch_id, FINAL)
        self._finalized = max(self._finalized, position + 1)
        row = self.store.batch(batch_id)
        if row is not None and row.verdict == INVALID:
            log.critical("batch %d (position %d) is FINAL although invalid at step %s: its challenge "
                         "window passed unproven; later batches cannot be verified", batch_id, position,
                         row.bad_step)
        else:
            log.debug("batch %d (position %d) final", batch_id, position)

    def _on_proven(self, args: Any) -> None:
        batch_id, step = int(args["id"]), int(args["step"])
        challenger = str(args["challenger"])
        self.store.set_proven(batch_id, challenger, step)
        row = self.store.batch(batch_id)
        if challenger.lower() == self.address.lower():
            log.info("batch %d: our fraud proof of step %d is on L1 (reward %d wei)", batch_id, step,
                     int(args["reward"]))
            return
        if row is not None and row.verdict == VALID:
            log.error("batch %d was proven wrong at step %d by %s although our STF finds it valid: "
                      "the STF and the L1 verifier disagree", batch_id, step, challenger)
        if row is not None and row.verdict == INVALID:
            if not self.store.challenge_settled(row, HONEST):
                self.store.add_challenge(row, step, HONEST, ALREADY_PROVEN, reason=f"proven by {challenger}")
            log.info("batch %d: already proven by someone else (%s, step %d)", batch_id, challenger, step)
        else:
            log.info("batch %d: proven wrong at step %d by %s", batch_id, step, challenger)

    def _record_verdict(self, row: BatchRow, verdict: Verdict) -> None:
        self.store.set_verdict(
            row.id, verdict.kind, verdict.step if verdict.kind == INVALID else None,
            None if verdict.posted is None else _hex(verdict.posted),
            None if verdict.computed is None else _hex(verdict.computed), verdict.detail or None)
        level = {VALID: logging.INFO, INVALID: logging.WARNING}.get(verdict.kind, logging.WARNING)
        log.log(level, "batch %d (position %d, %d steps): %s", row.id, row.position, row.steps, verdict.describe())

    # ------------------------------------------------------------------ re-execution

    def _calldata(self, row: BatchRow) -> Calldata:
        return batch_calldata(self.w3, self.rollup, row.tx_hash, row.position, row.timestamp, row.steps,
                              bytes.fromhex(row.step_root[2:]))

    def _parent(self, position: int) -> State | None:
        return self._genesis if position == 0 else self._states.get(position - 1)

    def _judge(self, row: BatchRow) -> tuple[Verdict, State | None]:
        """Re-execute a batch from its parent's state (the verdict, and the state after it
        when valid)."""
        parent = self._parent(row.position)
        if parent is None:
            parent_id = self._live.get(row.position - 1)
            return Verdict(UNVERIFIABLE, detail=f"its parent, batch {parent_id} at position "
                                                f"{row.position - 1}, is not valid"), None
        try:
            data = self._calldata(row)
        except Unverifiable as exc:
            return Verdict(UNVERIFIABLE, detail=str(exc)), None
        context = self._heads.context(self.config, row.timestamp, row.deposit_count, row.forced_count)
        return verify_batch(parent, data, context)

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
        kept: re-execution is deterministic, and should it differ all the same (an L1 node
        that no longer serves an old transaction, a changed STF) the difference is logged
        as an error and the recorded verdict stays."""
        self._live.clear()
        self._states.clear()
        self._finalized = 0
        rows = self.store.live_batches()
        if [r.position for r in rows] != list(range(len(rows))):
            log.error("the store's live chain has gaps: rescanning from the deployment")
            self.store.reset_progress(self.deployment.deploy_block)
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
        """Store the state after the last final batch, every `snapshot_every` final batches."""
        anchor = self._finalized - 1
        state = self._states.get(anchor)
        if state is None:
            return
        found = self.store.snapshot()
        if found is not None and anchor - found[0] < self.snapshot_every:
            return
        self.store.save_snapshot(anchor, self._live[anchor], _hex(state.root()),
                                 pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        log.debug("state snapshot at position %d", anchor)

    # ------------------------------------------------------------------ challenges

    def act(self) -> None:
        """Resolve challenges in flight, then challenge every pending invalid batch not
        yet dealt with (and, when hostile, a random step of every valid one). A failure
        with one batch is logged and retried at the next step; it does not stop the others."""
        for challenge in self.store.challenges(outcome=SENT):
            try:
                self._resolve(challenge)
            except Exception:  # noqa: BLE001
                log.exception("batch %d: could not resolve challenge %s; retrying", challenge.batch_id,
                              challenge.tx_hash)
        for row in self.store.pending_batches():
            if row.verdict == INVALID and not self.store.challenge_settled(row, HONEST):
                assert row.bad_step is not None
                kind, step = HONEST, row.bad_step
            elif self.hostile and row.verdict == VALID and not self.store.challenge_settled(row, HOSTILE):
                kind, step = HOSTILE, self._rng.randrange(row.steps)
            else:
                continue
            try:
                self._challenge(row, step, kind)
            except Exception:  # noqa: BLE001
                log.exception("batch %d: challenge of step %d failed; retrying at the next step", row.id, step)

    def _challenge(self, row: BatchRow, step: int, kind: str) -> None:
        """Build, record, broadcast and follow one challenge of step `step` of `row`."""
        parent = self._parent(row.position)
        if parent is None:
            log.error("batch %d: no state for its parent at position %d; cannot build a proof", row.id,
                      row.position - 1)
            return
        data = self._calldata(row)
        context = self._heads.context(self.config, row.timestamp, row.deposit_count, row.forced_count)
        pre_state = state_before(parent, data.txs, step, context)
        call = self.chain.challenge_call(row.id, step, data.txs, data.roots, pre_state)
        gas, refusal = self._estimate(call)
        if refusal is not None and kind == HONEST:
            if refusal == NOT_PENDING:
                self.store.add_challenge(row, step, kind, ALREADY_PROVEN, reason=refusal)
                log.info("batch %d: already proven by someone else", row.id)
            elif refusal == WINDOW_CLOSED:
                self.store.add_challenge(row, step, kind, REFUSED, reason=refusal)
                log.error("batch %d: invalid at step %d, but its challenge window closed (deadline %d) "
                          "before this watcher could prove it", row.id, step, row.deadline)
            else:
                self.store.add_challenge(row, step, kind, REFUSED, reason=refusal)
                log.error("batch %d: L1 refuses the proof of step %d: %s", row.id, step, refusal)
            return
        if gas is None:  # hostile: send it all the same, for L1 to refuse in a mined transaction
            gas = HOSTILE_GAS
        nonce = int(self.w3.eth.get_transaction_count(self._account.address, "pending"))
        tx = call.build_transaction({"from": self._account.address, "nonce": nonce, "gas": gas,
                                     "chainId": self.deployment.chain_id, **self.l1.fees()})
        signed = self._account.sign_transaction(tx)
        tx_hash = _hex(signed.hash)
        challenge_id = self.store.add_challenge(row, step, kind, SENT, tx_hash=tx_hash, nonce=nonce,
                                                raw_tx=bytes(signed.raw_transaction), reason=refusal)
        log.info("batch %d: %s challenge of step %d sent in %s", row.id, kind, step, tx_hash)
        self._resolve(self.store.challenge(challenge_id))

    def _estimate(self, call: Any) -> tuple[int | None, str | None]:
        """(gas with a margin, None), or (None, L1's refusal reason)."""
        try:
            gas = int(call.estimate_gas({"from": self._account.address}))
        except ContractLogicError as exc:
            return None, _revert_reason(exc)
        return gas * 6 // 5 + 10_000, None

    def _resolve(self, challenge: ChallengeRow) -> None:
        """Follow a challenge in flight to its outcome: its receipt if it landed; else
        broadcast (again) the same signed transaction and wait for it; if its nonce was
        taken by another transaction, or the node will not take it, it is lost (and the
        batch may be challenged anew). Leaves it in flight if no receipt comes in time."""
        assert challenge.tx_hash is not None and challenge.raw_tx is not None and challenge.nonce is not None
        receipt = self._receipt(challenge.tx_hash)
        if receipt is None:
            if int(self.w3.eth.get_transaction_count(self._account.address, "latest")) > challenge.nonce:
                self._lost(challenge, "its nonce was used by another transaction")
                return
            try:
                self.w3.eth.send_raw_transaction(challenge.raw_tx)
            except Exception as exc:  # noqa: BLE001 - already known, or refused by the node
                pending = int(self.w3.eth.get_transaction_count(self._account.address, "pending"))
                if pending <= challenge.nonce:
                    self._lost(challenge, f"the node refused it: {exc}")
                    return
            try:
                receipt = self.w3.eth.wait_for_transaction_receipt(
                    challenge.tx_hash, timeout=self.receipt_timeout, poll_latency=0.1)  # type: ignore[arg-type]
            except TimeExhausted:
                log.info("batch %d: challenge %s not mined yet; following it at the next step",
                         challenge.batch_id, challenge.tx_hash)
                return
        self._finish(challenge, receipt)

    def _receipt(self, tx_hash: str) -> Any:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def _lost(self, challenge: ChallengeRow, why: str) -> None:
        self.store.settle_challenge(challenge.id, LOST, reason=why)
        log.warning("batch %d: challenge %s never landed (%s)", challenge.batch_id, challenge.tx_hash, why)

    def _finish(self, challenge: ChallengeRow, receipt: Any) -> None:
        """Record a mined challenge's outcome."""
        gas_used = int(receipt["gasUsed"])
        batch_id, step = challenge.batch_id, challenge.step
        if int(receipt["status"]) == 1:
            proven = self.rollup.events.FraudProven().process_receipt(receipt, errors=DISCARD)
            reward = int(proven[0]["args"]["reward"]) if proven else 0
            self.store.settle_challenge(challenge.id, PROVEN, reward=reward, gas_used=gas_used)
            if challenge.kind == HOSTILE:
                log.warning("batch %d: the hostile challenge of step %d PROVED it wrong", batch_id, step)
            log.info("batch %d: fraud proven at step %d (tx %s, %d gas, reward %d wei)", batch_id, step,
                     challenge.tx_hash, gas_used, reward)
            return
        reason = self._reason_at(challenge, int(receipt["blockNumber"])) or challenge.reason
        if reason == NOT_PENDING:
            self.store.settle_challenge(challenge.id, ALREADY_PROVEN, reason=reason, gas_used=gas_used)
            log.info("batch %d: already proven by someone else", batch_id)
        elif reason is not None:
            self.store.settle_challenge(challenge.id, REFUSED, reason=reason, gas_used=gas_used)
            level = logging.INFO if challenge.kind == HOSTILE else logging.ERROR
            log.log(level, "batch %d: %s challenge of step %d refused by L1: %s", batch_id, challenge.kind,
                    step, reason)
        else:
            self.store.settle_challenge(challenge.id, FAILED, gas_used=gas_used)
            log.error("batch %d: challenge %s reverted on L1 for no stated reason", batch_id, challenge.tx_hash)

    def _reason_at(self, challenge: ChallengeRow, block: int) -> str | None:
        """Why a mined challenge reverted: its call replayed on the state after its block."""
        tx = self.w3.eth.get_transaction(challenge.tx_hash)  # type: ignore[arg-type]
        try:
            self.w3.eth.call({"from": self._account.address, "to": tx["to"], "data": tx["input"],
                              "gas": tx["gas"]}, block_identifier=block)
        except ContractLogicError as exc:
            return _revert_reason(exc)
        return None

    # ------------------------------------------------------------------ reporting

    def tip_state(self) -> State | None:
        """The state after the latest live batch, as rebuilt from L1 (None before any)."""
        if not self._live:
            return None
        return self._states.get(max(self._live))

    def verdicts(self) -> dict[int, str]:
        """batch id -> verdict, for every batch seen."""
        return {row.id: row.verdict or "?" for row in self.store.batches()}
