"""The operator's L2 chain: transactions applied in order, grouped into batches, posted
to L1; the L1 chain followed; recovered after a crash.

A batch opens with the time (AdvanceTime to the latest L1 block's timestamp: the batch's
timestamp, at which all its transactions run) and the L1 deposits and forced requests
not yet consumed, oldest first, as many as leave a quarter of the batch to users (a
backlog of any length is consumed over as many batches as it takes, each within the
contract's limits). Then each transaction the operator accepts is applied to the head
state at once and logged with the root after it (only transactions that change the
state are kept: a refused one is answered and dropped). A batch is cut when it is full
or old enough and posted with `Rollup.submit` at the live chain's next position.

L1 is the authority (`follow_l1`). The live chain it holds is compared with the
operator's: batches of the operator that L1 no longer holds (reverted by a fraud proof,
or dropped by a reorganisation) and batches another proposer posted (after the
sequencer's silence) are told apart. Another proposer's batch is re-executed from L1
data alone and adopted if valid; the operator never builds on an invalid one (it waits
for a watcher to prove it). Then the operator's own work that did not make it (its
reverted batches, and the batches not yet posted) is sequenced again on top: every user
transaction once more (a refused one is reported to the order books through
`on_resequenced`), the time and the L1 queues afresh. The same happens when L1 refuses a
batch whose timestamp has grown too old, and when the deposit queue reorganised under
transactions not yet posted.

Recovery (`recover`) replays the log over genesis, checking every logged root, then
follows L1 (a batch posted just before a crash is recognised on L1 by its step root).

Two kinds of caller share a sequencer, under its `lock`: the request path (`sequence`,
and `cut`/`open` when a batch is full), which never waits for L1 and never copies the
state; and the background loop (`tick`), which reads L1 (the clock, the queues, the live
chain) and posts batches without holding the lock, taking it only to change what the
request path reads. The head state keeps a journal instead of a copy per batch: each
batch records the journal's mark at its start and end; a rebase rolls back to a mark.
The journal is forgotten as batches become final; the final batch's withdrawal tree (for
`Bridge.claim` proofs) is kept beside it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3

from ..batch import MAX_BATCH_BYTES, MAX_STEPS, MAX_TX, posted_root, prefix_length, step_root
from ..l1.batches import batch_calldata
from ..l1.client import L1Error
from ..l1.inbox import Inbox
from ..l1.rollup_client import FINAL, REVERTED, RollupL1, config_of
from ..stf import apply
from ..stf.constants import WITHDRAWAL_TREE_DEPTH
from ..stf.fork import Context, Receipt
from ..stf.merkle import QuadTree
from ..stf.prefetch import Recoverer, apply_all
from ..stf.state import State
from ..stf.transactions import ADVANCE_TIME, DEPOSIT, FORCED_REQUEST, AdvanceTime
from .store import BatchRow, BatchStatus, Store, Writes

log = logging.getLogger("rollup.operator")

Corrupt = Callable[[State, list[bytes], list[bytes], Context], tuple[list[bytes], list[bytes]] | None]
"""A fraud: given the batch's pre-state, transactions, honest roots and context, the
transactions and roots to post instead, or None if this batch offers no occasion
(rollup/operator/fraud.py)."""

RETAKEN = (ADVANCE_TIME, DEPOSIT, FORCED_REQUEST)
"""Transaction types a batch takes afresh when it opens (never sequenced again as such)."""

RECOVER_IN_PARALLEL = 4_000
"""From this many logged transactions on, recovery replays with a `Recoverer`."""

USER_SHARE = 4
"""A batch leaves at least 1/USER_SHARE of its room to user transactions."""


@dataclass
class OpenBatch:
    local: int
    timestamp: int
    deposit_count: int
    forced_count: int
    context: Context
    start: int
    """The head state's journal mark when the batch opened."""
    txs: list[bytes] = field(default_factory=list)
    roots: list[bytes] = field(default_factory=list)
    size: int = 0
    user_txs: int = 0
    opened_at: float = field(default_factory=time.monotonic)
    pre_state: State | None = None
    """A copy of the state it opened on, kept only for a fraud mode (`corrupt`)."""


@dataclass
class BatchEnd:
    """What a closed batch leaves behind of the state after it: the journal mark, the four
    parts of its root, and how many withdrawals it holds (for claims once it is final)."""

    mark: int
    root_parts: tuple[bytes, bytes, bytes, bytes]
    withdrawal_count: int

    @classmethod
    def of(cls, state: State) -> BatchEnd:
        return cls(state.mark(), state.root_parts(), len(state.withdrawals))


@dataclass
class CutBatch:
    """A closed batch waiting to be posted."""

    local: int
    timestamp: int
    deposit_count: int
    forced_count: int
    txs: list[bytes]
    roots: list[bytes]
    end: BatchEnd
    pre_state: State | None = None


@dataclass
class PostedBatch:
    local: int
    l1_id: int
    position: int
    txs: list[bytes]
    roots: list[bytes]
    end: BatchEnd
    """The state after the batch (its mark, root parts and withdrawal count)."""
    timestamp: int
    deposit_count: int
    forced_count: int
    status: str = BatchStatus.POSTED
    posted_txs: list[bytes] | None = None
    posted_roots: list[bytes] | None = None
    """What went to L1 when it differs from the honest batch (a fraud mode)."""
    foreign: bool = False
    """Posted by another proposer, adopted from L1."""
    step_root: bytes | None = None
    """The step tree's root of what went to L1 (computed once, by `Sequencer._holds`)."""


class Sequencer:
    def __init__(self, store: Store, chain: RollupL1, *, max_txs: int = 256, max_age: float = 2.0,
                 heartbeat: float = 30.0, corrupt: Corrupt | None = None, confirmations: int = 0) -> None:
        self.store = store
        self.chain = chain
        self.deployment = chain.deployment
        self.config = config_of(chain.deployment)
        self.inbox = Inbox(chain.bridge, chain.deployment.deploy_block, confirmations, chain.l1.rpc)
        self.confirmations = confirmations
        self.max_txs = max(2, min(max_txs, MAX_STEPS))
        self.max_age = max_age
        params = self.deployment.params
        # post at least three times per silence period (else outsiders may propose), and
        # cut a batch well before its timestamp grows too old for L1
        self.heartbeat = min(heartbeat, int(params.get("silence_period", 10**9)) / 3 or heartbeat)
        self.max_open = int(params.get("max_time_lag", 10**9)) / 2
        self.corrupt = corrupt
        self.genesis = self.deployment.genesis()
        if "0x" + self.genesis.root().hex() != params["genesis_root"]:
            raise RuntimeError("the deployment's genesis root is not this STF's genesis")
        self.lock = threading.RLock()
        """Held by whoever reads or changes the head state, the batches or the books."""
        self.state = self._fresh_state()
        self.batch: OpenBatch | None = None
        self.cut_batches: list[CutBatch] = []
        self.posted: list[PostedBatch] = []
        """The live chain as the operator holds it (its batches and adopted ones), by position."""
        self.final_count = 0
        """How many of `posted` (a prefix) are final."""
        self.final_withdrawals = QuadTree(WITHDRAWAL_TREE_DEPTH)
        """The withdrawal tree of the newest final batch."""
        self.last_cut = time.monotonic()
        self.l1_now = 0
        """The latest L1 block's timestamp, as last read by `refresh`."""
        self.blocked: str | None = None
        """Why posting waits (an invalid batch of another proposer at the tip), or None."""
        self.on_resequenced: Callable[[list[tuple[bytes, Receipt]], bool], None] | None = None
        """Told, after a rebase, of each user transaction sequenced again with its new
        receipt, and whether batches of another proposer were adopted."""
        self._seen: tuple[Any, ...] | None = None
        self._fingerprint_at: tuple[bytes, tuple[Any, ...]] | None = None
        self._inbox_generation = 0

    def _fresh_state(self) -> State:
        state = self.genesis.copy()
        state.start_journal()  # mark 0 is genesis
        return state

    # ------------------------------------------------------------------ context

    def context_for(self, timestamp: int, deposit_count: int, forced_count: int) -> Context:
        deposits, forced = self.inbox.heads(deposit_count, forced_count)
        return Context(self.config, timestamp, deposits, forced)

    def l1_time(self) -> int:
        return int(self.chain.l1.rpc.block("latest")["timestamp"], 16)

    def refresh(self) -> None:
        """Read what batches open with (the L1 clock and the queues) from L1; the request
        path only ever uses what was read last. Holds no lock while reading."""
        self.inbox.sync()
        self.l1_now = self.l1_time()

    # ------------------------------------------------------------------ sequencing

    def open(self, db: Writes) -> OpenBatch:
        """Open a batch: the time, then the oldest L1 queue entries not yet consumed (as
        many as leave a quarter of the batch's room to users), both as last read from L1
        (`refresh`): opening never waits for L1."""
        timestamp = max(self.l1_now, self.state.globals.time)  # never before the parent's
        local = self._next_local()
        deposit_count, forced_count = len(self.inbox.deposits), len(self.inbox.forced)
        context = self.context_for(timestamp, deposit_count, forced_count)
        db.open_batch(local, timestamp, deposit_count, forced_count)
        batch = OpenBatch(local, timestamp, deposit_count, forced_count, context, self.state.mark(),
                          pre_state=self.state.copy() if self.corrupt is not None else None)
        self.batch = batch
        if timestamp > self.state.globals.time:
            self._append(db, AdvanceTime(timestamp).encode())
        g = self.state.globals
        budget_txs = self.max_txs - self.max_txs // USER_SHARE - len(batch.txs)
        budget_bytes = MAX_BATCH_BYTES - MAX_BATCH_BYTES // USER_SHARE
        for entry in self.inbox.pending(g.deposit_count, g.forced_count)[:max(0, budget_txs)]:
            tx = entry.encode()
            if batch.size + prefix_length(len(tx)) + len(tx) > budget_bytes:
                break
            self._append(db, tx)
        return batch

    def _next_local(self) -> int:
        return self.store.next_local()

    def _append(self, db: Writes, tx: bytes) -> Receipt:
        assert self.batch is not None
        receipt = apply(self.state, tx, self.batch.context)
        if receipt.applied:
            root = self.state.root()
            self.batch.txs.append(tx)
            self.batch.roots.append(root)
            self.batch.size += prefix_length(len(tx)) + len(tx)
            db.log_tx(self.batch.local, tx, root)
        return receipt

    def room(self, tx_len: int) -> bool:
        """Whether the open batch can take one more transaction of this length."""
        b = self.batch
        return b is None or (len(b.txs) < self.max_txs and b.size + prefix_length(tx_len) + tx_len <= MAX_BATCH_BYTES)

    def sequence(self, db: Writes, tx: bytes) -> Receipt:
        """Apply a user's transaction to the head state in the open batch (opening one if
        needed; cutting the full one first). Call inside a store transaction, holding
        the lock."""
        if len(tx) > MAX_TX:
            raise ValueError("transaction too long")
        if self.batch is not None and not self.room(len(tx)):
            self.cut(db)
        if self.batch is None:
            self.open(db)
        if not self.room(len(tx)):  # a new batch full of queue entries already
            self.cut(db)
            self.open(db)
        receipt = self._append(db, tx)
        if receipt.applied:
            assert self.batch is not None
            self.batch.user_txs += 1
        return receipt

    # ------------------------------------------------------------------ batches

    def due(self) -> bool:
        """Whether the open batch should be cut now (or, with none open, one opened)."""
        b = self.batch
        if b is None:
            return time.monotonic() - self.last_cut >= self.heartbeat or self._queues_moved()
        age = time.monotonic() - b.opened_at
        return ((b.user_txs > 0 or len(b.txs) > 1) and age >= self.max_age or age >= self.heartbeat
                or not self.room(MAX_TX) or age >= self.max_open)

    def _queues_moved(self) -> bool:
        g = self.state.globals
        return len(self.inbox.deposits) > g.deposit_count or len(self.inbox.forced) > g.forced_count

    def cut(self, db: Writes) -> None:
        """Close the open batch (it is posted by `post_pending`)."""
        b = self.batch
        if b is None:
            return
        if not b.txs:
            db.drop_batch(b.local)
        else:
            db.batch_status(b.local, BatchStatus.CUT)
            self.cut_batches.append(CutBatch(b.local, b.timestamp, b.deposit_count, b.forced_count,
                                             list(b.txs), list(b.roots), BatchEnd.of(self.state), b.pre_state))
        self.batch = None
        self.last_cut = time.monotonic()

    def tick(self) -> None:
        """Background work: read L1, follow its chain, open or cut by time, post cut
        batches. L1 is read and written without the lock."""
        self.refresh()
        self.follow_l1()
        with self.lock:
            self._follow_inbox()
            with self.store.transaction() as db:
                if self.batch is None and self.due():
                    self.open(db)
                elif self.batch is not None and self.due():
                    self.cut(db)
        self.post_pending()

    def post_pending(self) -> None:
        """Post every cut batch, in order (a failure leaves it for the next tick)."""
        while self.cut_batches and self.blocked is None:
            cut = self.cut_batches[0]
            if not self._post(cut):
                return

    def ensure_bonded(self) -> None:
        """Bond (again, after a slash) before posting."""
        chain = self.chain
        bond, amount = chain.views.calls([("bonds", (chain.l1.address,)), ("bond_amount", ())])
        if int(bond) < int(amount):
            chain.bond()
            log.warning("posted the proposer bond")

    def _post(self, cut: CutBatch) -> bool:
        txs, roots = cut.txs, cut.roots
        self.store.commit()  # a batch cut by a request is durable before L1 sees it
        try:
            self.ensure_bonded()
        except L1Error as exc:
            log.error("cannot bond: %s", exc)
            return False
        position = len(self.posted)
        if self.corrupt is not None and cut.pre_state is not None:
            context = self.context_for(cut.timestamp, cut.deposit_count, cut.forced_count)
            fraud = self.corrupt(cut.pre_state.copy(), list(txs), list(roots), context)
            if fraud is not None:
                txs, roots = fraud
                self.corrupt = None  # a fraud is posted once
                log.warning("posting a FRAUDULENT batch (local %d) for the fraud mode", cut.local)
        try:
            batch_id, receipt = self.chain.submit(txs, roots, cut.timestamp, position=position)
        except L1Error as exc:
            log.error("posting batch local %d at position %d failed: %s", cut.local, position, exc)
            if exc.reason in ("batch: wrong position", "batch: timestamp too old", "batch: timestamp before parent"):
                self._seen = None  # L1 moved on without us, or the batch is stale: follow it
                self.follow_l1(restale=exc.reason != "batch: wrong position")
            return False
        with self.lock:
            with self.store.transaction() as db:
                db.batch_posted(cut.local, batch_id, position, receipt["transactionHash"].hex())
            # what the operator keeps is the honest batch (a fraud's extra transactions are
            # not sequenced again after the revert)
            self.posted.append(PostedBatch(cut.local, batch_id, position, cut.txs, cut.roots, cut.end, cut.timestamp,
                                           cut.deposit_count, cut.forced_count, posted_txs=txs, posted_roots=roots))
            self.cut_batches.remove(cut)
        self._seen = None
        self.l1_now = max(self.l1_now, self.l1_time())  # the next batch opens at the clock after this one
        log.info("posted batch %d (local %d) at position %d: %d transactions", batch_id, cut.local, position, len(txs))
        return True

    # ------------------------------------------------------------------ following L1

    def _fingerprint(self) -> tuple[Any, ...]:
        """What changes whenever L1's live chain does: the batch count, the length, the
        finalized count, and the tip (its id and step root: after a reorganisation another
        batch can hold the same id at the same position)."""
        head = bytes.fromhex(self.chain.l1.rpc.block("latest")["hash"][2:])
        if self._fingerprint_at is not None and self._fingerprint_at[0] == head:
            return self._fingerprint_at[1]  # L1's state changes only with its blocks
        views = self.chain.views
        count, length, finalized = views.calls([("batch_count", ()), ("length", ()), ("finalized", ())], block=head)
        tip = int(views.call("live", length - 1, block=head)) if length else -1
        tip_root = self.chain.batch(tip, head).step_root if length else b""
        fingerprint = (int(count), int(length), int(finalized), tip, tip_root)
        self._fingerprint_at = (head, fingerprint)
        return fingerprint

    def _holds(self, batch: PostedBatch) -> bool:
        """Whether L1's live batch at `batch`'s position is that batch (its id and step root)."""
        l1_id = int(self.chain.views.call("live", batch.position))
        if l1_id != batch.l1_id:
            return False
        if batch.step_root is None:
            batch.step_root = step_root(batch.posted_txs or batch.txs, batch.posted_roots or batch.roots)
        return self.chain.batch(l1_id).step_root == batch.step_root

    def follow_l1(self, restale: bool = False) -> None:
        """Hold the live chain L1 holds: mark final batches; drop the operator's batches L1
        no longer has and adopt valid ones of other proposers; then sequence the dropped
        work again (also when `restale`: the unposted batches' timestamps are too old).
        Called by the background loop only (the one writer of `posted`); L1 is read
        without the lock, which is taken to change the head."""
        fingerprint = self._fingerprint()
        if fingerprint == self._seen and not restale:
            return
        _, length, finalized, _, _ = fingerprint
        # the first position where L1 and the operator part: they agree on a prefix (a
        # revert or another proposer changes every position from one on), found by halving
        low, high = 0, min(len(self.posted), length)
        if self.posted and length >= len(self.posted) and self._holds(self.posted[-1]):
            low = high  # the operator's newest batch is live: so is every one before it
        while low < high:
            middle = (low + high) // 2
            if self._holds(self.posted[middle]):
                low = middle + 1
            else:
                high = middle
        d = low
        self._mark_final(min(d, finalized))
        if d == len(self.posted) == length and not restale:
            self.blocked = None
            self._seen = fingerprint
            return
        live = self.chain.views.calls([("live", (p,)) for p in range(d, length)])
        positions = {p: int(id_) for p, id_ in zip(range(d, length), live, strict=True)}
        with self.lock:
            self._rebase(d, length, positions)
        self._seen = self._fingerprint()

    def _mark_final(self, count: int) -> None:
        """The first `count` live batches are final: record it, extend the final withdrawal
        tree, and forget the journal before the newest final batch's end."""
        if count <= self.final_count:
            return
        with self.lock:
            with self.store.transaction() as db:
                for batch in self.posted[self.final_count:count]:
                    if batch.status != BatchStatus.FINAL:
                        batch.status = BatchStatus.FINAL
                        db.batch_status(batch.local, BatchStatus.FINAL)
            self._final_upto(count)

    def _final_upto(self, count: int) -> None:
        withdrawals = self.state.withdrawals
        done = self.posted[self.final_count - 1].end.withdrawal_count if self.final_count else 0
        newest = self.posted[count - 1]
        for index in range(done, newest.end.withdrawal_count):
            self.final_withdrawals.set(index, withdrawals[index].leaf())
        self.final_count = count
        self.state.forget(newest.end.mark)

    def final_batch(self) -> PostedBatch | None:
        """The newest final batch (its withdrawals are claimable on L1)."""
        return self.posted[self.final_count - 1] if self.final_count else None

    def _state_at(self, d: int) -> None:
        """Make the head state the state after the first `d` live batches: a rollback to
        the mark of that batch's end, or, should the journal not reach back so far, a
        replay of the batches from genesis."""
        mark = self.posted[d - 1].end.mark if d else 0
        journal = self.state.journal
        if journal is not None and self.state.journal_base <= mark <= self.state.mark():
            self.state.rollback(mark)
            return
        log.warning("rebuilding the state of position %d from genesis", d)
        self.state = self._fresh_state()
        for batch in self.posted[:d]:
            context = self.context_for(batch.timestamp, batch.deposit_count, batch.forced_count)
            for tx in batch.txs:
                apply(self.state, tx, context)
            batch.end = BatchEnd.of(self.state)

    def _rebase(self, d: int, length: int, live: dict[int, int]) -> None:
        """Positions from `d` on differ: drop the operator's batches there, adopt L1's,
        and sequence the operator's dropped and unposted work again on top."""
        dropped = self.posted[d:]
        redo: list[bytes] = []
        with self.store.transaction() as db:
            for b in dropped:
                db.batch_status(b.local, BatchStatus.REVERTED)
                if not b.foreign:
                    redo += b.txs
            for cut in self.cut_batches:
                redo += cut.txs
                db.batch_status(cut.local, BatchStatus.REVERTED)
            pending_cuts, self.cut_batches = self.cut_batches, []
            if self.batch is not None:
                redo += self.batch.txs
                db.batch_status(self.batch.local, BatchStatus.REVERTED)
                self.batch = None
        self.posted = self.posted[:d]
        self.final_count = min(self.final_count, d)
        self._state_at(d)
        if dropped:
            log.warning("L1 no longer holds our batches from position %d (%d of them)", d, len(dropped))
        self.blocked = None
        adopted = False
        for position in range(d, length):
            if not self._adopt(position, live[position], pending_cuts, redo):
                break
            adopted = adopted or self.posted[-1].foreign
        user_txs = [tx for tx in redo if tx and tx[0] not in RETAKEN]
        results = []
        if user_txs:
            log.warning("sequencing %d user transactions again on top of position %d", len(user_txs),
                        len(self.posted))
            with self.store.transaction() as db:
                for tx in user_txs:
                    results.append((tx, self.sequence(db, tx)))
            refused = [r for _, r in results if not r.applied]
            if refused:
                log.warning("%d of them are refused now: %s", len(refused), sorted({r.reason.name for r in refused}))
        if self.on_resequenced is not None and (results or adopted):
            self.on_resequenced(results, adopted)

    def _replays(self, txs: list[bytes], roots: list[bytes], context: Context) -> list[bytes] | None:
        """Apply a batch to the head state, checking each root after each step (`roots`
        whole or as posted); if one differs, roll back to before the batch and say no
        (None; the STF never raises). Else the whole roots."""
        mark = self.state.mark()
        whole = []
        for i, (tx, root) in enumerate(zip(txs, roots, strict=True)):
            apply(self.state, tx, context)
            computed = self.state.root()
            last = i == len(txs) - 1
            if posted_root(computed, last) != posted_root(root, last):
                self.state.rollback(mark)
                return None
            whole.append(computed)
        return whole

    def _adopt(self, position: int, batch_id: int, pending_cuts: list[CutBatch], redo: list[bytes]) -> bool:
        """Take L1's batch at `position` into the operator's chain: one of its own cut
        batches posted before a crash, or another proposer's, re-executed from L1 data and
        adopted if valid. False (and posting waits) if it is invalid or not yet confirmed."""
        info = self.chain.batch(batch_id)
        for cut in pending_cuts:
            if info.steps == len(cut.txs) and info.step_root == step_root(cut.txs, cut.roots) \
                    and info.parent_root == self.state.root():
                context = self.context_for(cut.timestamp, cut.deposit_count, cut.forced_count)
                if self._replays(cut.txs, cut.roots, context) is None:
                    raise RuntimeError(f"batch local {cut.local} does not replay to its own roots")
                self._record_adopted(cut.local, batch_id, position, cut.txs, cut.roots, info, foreign=False)
                for tx in cut.txs:  # posted after all: not to be sequenced again
                    redo.remove(tx)
                log.info("batch %d at position %d is ours, posted before a restart", batch_id, position)
                return True
        event = self.chain.rollup.events.BatchSubmitted().get_logs(
            argument_filters={"id": batch_id}, from_block=self.deployment.deploy_block)
        if not event:
            self.blocked = f"batch {batch_id} at position {position}: its submission is not found"
            return False
        entry = event[-1]
        if int(self.chain.l1.w3.eth.block_number) - int(entry["blockNumber"]) < self.confirmations:
            self.blocked = f"batch {batch_id} at position {position}: not yet confirmed"
            return False
        data = batch_calldata(self.chain.l1.w3, self.chain.rollup, Web3.to_hex(entry["transactionHash"]), position,
                              info.timestamp, info.steps, info.step_root)
        self.inbox.sync()
        context = self.context_for(info.timestamp, info.deposit_count, info.forced_count)
        roots = self._replays(data.txs, data.roots, context)
        if roots is None:
            self.blocked = f"batch {batch_id} at position {position} of {info.proposer} is invalid"
            log.error("%s: waiting for a watcher to prove it wrong", self.blocked)
            return False
        with self.store.transaction() as db:
            local = self._next_local()
            db.adopted_batch(local, info.timestamp, info.deposit_count, info.forced_count, data.txs, roots)
        self._record_adopted(local, batch_id, position, data.txs, roots, info, foreign=True)
        log.warning("adopted batch %d at position %d, posted by %s", batch_id, position, info.proposer)
        return True

    def _record_adopted(self, local: int, batch_id: int, position: int, txs: list[bytes], roots: list[bytes],
                        info: Any, foreign: bool) -> None:
        with self.store.transaction() as db:
            db.batch_posted(local, batch_id, position)
        self.posted.append(PostedBatch(local, batch_id, position, txs, roots, BatchEnd.of(self.state),
                                       info.timestamp, info.deposit_count, info.forced_count, foreign=foreign))

    def _follow_inbox(self) -> None:
        """After the deposit or forced queue reorganised under transactions not yet posted,
        sequence them again (the queues are retaken afresh)."""
        if self.inbox.generation == self._inbox_generation:
            return
        self._inbox_generation = self.inbox.generation
        g = self.state.globals
        if g.deposit_count > len(self.inbox.deposits) or g.forced_count > len(self.inbox.forced) \
                or self.cut_batches or (self.batch is not None and self.batch.txs):
            log.warning("the L1 queues reorganised: sequencing the unposted batches again")
            self._rebase(len(self.posted), len(self.posted), {})

    # ------------------------------------------------------------------ recovery

    def recover(self) -> None:
        """Rebuild the head state from the store and follow L1."""
        self.refresh()
        rows = self.store.batches_in_order()
        logged = self.store.logged_count()
        # a long log replays faster with its signatures recovered on every core
        recoverer = Recoverer() if logged >= RECOVER_IN_PARALLEL else None
        try:
            self._replay_store(rows, recoverer)
        finally:
            if recoverer is not None:
                recoverer.close()
        self._inbox_generation = self.inbox.generation
        self._seen = None
        self.follow_l1()
        log.info("recovered: %d batches live, head root %s", len(self.posted), self.state.root().hex())

    def _replay_store(self, rows: list[BatchRow], recoverer: Recoverer | None) -> None:
        """Replay every batch the store holds (but reverted ones) over genesis, checking
        each logged root."""
        with self.lock:
            self.state = self._fresh_state()
            self.posted = []
            self.cut_batches = []
            self.batch = None
            self.final_count = 0
            self.final_withdrawals = QuadTree(WITHDRAWAL_TREE_DEPTH)
            for row in rows:
                if row.status == BatchStatus.REVERTED:
                    continue
                context = self.context_for(row.timestamp, row.deposit_count, row.forced_count)
                txs, roots = self.store.logged(row.local)
                start = self.state.mark()
                pre = self.state.copy() if self.corrupt is not None and row.status in (BatchStatus.OPEN,
                                                                                      BatchStatus.CUT) else None

                def check(step: int, receipt: Receipt, row: BatchRow = row, roots: list[bytes] = roots) -> bool:
                    if not (receipt.applied or row.foreign) or self.state.root() != roots[step]:
                        raise RuntimeError(f"store: batch {row.local} does not replay to its logged roots")
                    return True

                apply_all(self.state, txs, context, recoverer.start(txs, context) if recoverer else [], check)
                if row.status in (BatchStatus.POSTED, BatchStatus.FINAL):
                    assert row.l1_id is not None and row.position is not None
                    self.posted.append(PostedBatch(row.local, int(row.l1_id), int(row.position), txs, roots,
                                                   BatchEnd.of(self.state), row.timestamp, row.deposit_count,
                                                   row.forced_count, row.status, foreign=row.foreign))
                elif row.status == BatchStatus.OPEN:
                    self.batch = OpenBatch(row.local, row.timestamp, row.deposit_count, row.forced_count, context,
                                           start, txs, roots, sum(prefix_length(len(t)) + len(t) for t in txs), len(txs), pre_state=pre)
                elif row.status == BatchStatus.CUT:
                    self.cut_batches.append(CutBatch(row.local, row.timestamp, row.deposit_count, row.forced_count,
                                                     txs, roots, BatchEnd.of(self.state), pre))
            final = 0
            while final < len(self.posted) and self.posted[final].status == BatchStatus.FINAL:
                final += 1
            if final:
                self._final_upto(final)


__all__ = ["FINAL", "REVERTED", "BatchEnd", "CutBatch", "OpenBatch", "PostedBatch", "Sequencer"]
