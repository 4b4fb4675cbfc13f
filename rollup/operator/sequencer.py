"""The operator's L2 chain: transactions applied in order, grouped into batches, posted
to L1, recovered after a crash, resumed after a fraud proof.

A batch opens with the time (AdvanceTime to the latest L1 block's timestamp, the batch's
timestamp) and every L1 deposit and forced request not yet consumed, as the queues stood
at opening (the batch's Context). Then each transaction the operator accepts is applied
to the head state at once and logged with the root after it (only transactions that
change the state are kept: a refused one is answered and dropped). A batch is cut when
it is full or old enough and posted with `Rollup.submit` at the live chain's next
position; a stale position makes the submission fail instead of conflicting.

Recovery (`recover`) replays the log over genesis, checking every logged root, then
reconciles with L1: a batch cut but not known to be posted is matched against the batch
L1 holds at its position (posted by the crashed process) or posted again. When L1
reverts the operator's batches (a proven fraud), their transactions are sequenced again,
honestly, from the last good state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..batch import MAX_BATCH_BYTES, MAX_STEPS, MAX_TX
from ..l1.client import L1Error
from ..l1.inbox import Inbox
from ..l1.rollup_client import FINAL, REVERTED, RollupL1, config_of
from ..stf import apply
from ..stf.fork import Context, Receipt
from ..stf.genesis import genesis_state
from ..stf.state import State
from ..stf.transactions import AdvanceTime
from .store import Store

log = logging.getLogger("rollup.operator")

Corrupt = Callable[[State, list[bytes], list[bytes], Context], tuple[list[bytes], list[bytes]] | None]
"""A fraud: given the batch's pre-state, transactions, honest roots and context, the
transactions and roots to post instead, or None if this batch offers no occasion
(rollup/operator/fraud.py)."""


@dataclass
class OpenBatch:
    local: int
    timestamp: int
    deposit_count: int
    forced_count: int
    context: Context
    pre_state: State
    txs: list[bytes] = field(default_factory=list)
    roots: list[bytes] = field(default_factory=list)
    size: int = 0
    user_txs: int = 0
    opened_at: float = field(default_factory=time.monotonic)


@dataclass
class CutBatch:
    """A closed batch waiting to be posted."""

    local: int
    timestamp: int
    deposit_count: int
    forced_count: int
    txs: list[bytes]
    roots: list[bytes]
    pre_state: State
    state: State


@dataclass
class PostedBatch:
    local: int
    l1_id: int
    position: int
    txs: list[bytes]
    roots: list[bytes]
    state: State
    """The state after the batch (for withdrawal proofs once it is final)."""
    status: str = "posted"
    posted_txs: list[bytes] | None = None
    posted_roots: list[bytes] | None = None
    """What went to L1 when it differs from the honest batch (a fraud mode)."""


class Sequencer:
    def __init__(self, store: Store, chain: RollupL1, *, max_txs: int = 256, max_age: float = 2.0,
                 heartbeat: float = 30.0, corrupt: Corrupt | None = None) -> None:
        self.store = store
        self.chain = chain
        self.deployment = chain.deployment
        self.config = config_of(chain.deployment)
        self.inbox = Inbox(chain.bridge, chain.deployment.deploy_block)
        self.max_txs = min(max_txs, MAX_STEPS)
        self.max_age = max_age
        self.heartbeat = heartbeat
        self.corrupt = corrupt
        owner = bytes.fromhex(self.deployment.params["insurance_owner"][2:])
        self.genesis = genesis_state(owner)
        if "0x" + self.genesis.root().hex() != self.deployment.params["genesis_root"]:
            raise RuntimeError("the deployment's genesis root is not this STF's genesis")
        self.state = self.genesis.copy()
        self.batch: OpenBatch | None = None
        self.cut_batches: list[CutBatch] = []
        self.posted: list[PostedBatch] = []
        """Live batches on L1 (pending or final), in position order."""
        self.last_cut = time.monotonic()

    # ------------------------------------------------------------------ context

    def context_for(self, timestamp: int, deposit_count: int, forced_count: int) -> Context:
        deposits, forced = self.inbox.heads(deposit_count, forced_count)
        return Context(self.config, timestamp, deposits, forced)

    def l1_time(self) -> int:
        return int(self.chain.l1.w3.eth.get_block("latest")["timestamp"])

    # ------------------------------------------------------------------ sequencing

    def open(self, db: Any) -> OpenBatch:
        """Open a batch: the time, then the L1 queues' new entries."""
        self.inbox.sync()
        timestamp = max(self.l1_time(), self.state.globals.time)  # never before the parent's
        local = self._next_local()
        deposit_count, forced_count = len(self.inbox.deposits), len(self.inbox.forced)
        context = self.context_for(timestamp, deposit_count, forced_count)
        db.execute(
            "INSERT INTO batches(local, timestamp, deposit_count, forced_count, status) VALUES (?, ?, ?, ?, 'open')",
            (local, timestamp, deposit_count, forced_count),
        )
        batch = OpenBatch(local, timestamp, deposit_count, forced_count, context, self.state.copy())
        self.batch = batch
        if timestamp > self.state.globals.time:
            self._append(db, AdvanceTime(timestamp).encode())
        g = self.state.globals
        for entry in self.inbox.deposits[g.deposit_count:deposit_count]:
            self._append(db, entry.encode())
        for entry in self.inbox.forced[g.forced_count:forced_count]:
            self._append(db, entry.encode())
        return batch

    def _next_local(self) -> int:
        rows = self.store.query("SELECT MAX(local) FROM batches")
        return int(rows[0][0] or 0) + 1

    def _append(self, db: Any, tx: bytes) -> Receipt:
        assert self.batch is not None
        receipt = apply(self.state, tx, self.batch.context)
        if receipt.applied:
            root = self.state.root()
            self.batch.txs.append(tx)
            self.batch.roots.append(root)
            self.batch.size += 2 + len(tx)
            db.execute("INSERT INTO txlog(local, tx, root) VALUES (?, ?, ?)", (self.batch.local, tx, root))
        return receipt

    def room(self, tx_len: int) -> bool:
        """Whether the open batch can take one more transaction of this length."""
        b = self.batch
        return b is None or (len(b.txs) < self.max_txs and b.size + 2 + tx_len <= MAX_BATCH_BYTES)

    def sequence(self, db: Any, tx: bytes) -> Receipt:
        """Apply a user's transaction to the head state in the open batch (opening one if
        needed; cutting the full one first). Call inside a store transaction."""
        if len(tx) > MAX_TX:
            raise ValueError("transaction too long")
        if self.batch is not None and not self.room(len(tx)):
            self.cut(db)
        if self.batch is None:
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
        return (b.user_txs > 0 or len(b.txs) > 1) and age >= self.max_age or age >= self.heartbeat

    def _queues_moved(self) -> bool:
        self.inbox.sync()
        g = self.state.globals
        return len(self.inbox.deposits) > g.deposit_count or len(self.inbox.forced) > g.forced_count

    def cut(self, db: Any) -> None:
        """Close the open batch (it is posted by `post_pending`)."""
        b = self.batch
        if b is None:
            return
        if not b.txs:
            db.execute("DELETE FROM batches WHERE local = ?", (b.local,))
        else:
            db.execute("UPDATE batches SET status = 'cut' WHERE local = ?", (b.local,))
            self.cut_batches.append(CutBatch(b.local, b.timestamp, b.deposit_count, b.forced_count,
                                             list(b.txs), list(b.roots), b.pre_state, self.state.copy()))
        self.batch = None
        self.last_cut = time.monotonic()

    def tick(self) -> None:
        """Periodic work: open or cut by time, post cut batches, follow L1's verdicts."""
        with self.store.transaction() as db:
            if self.batch is None and self.due():
                self.open(db)
            elif self.batch is not None and self.due():
                self.cut(db)
        self.post_pending()
        self.follow_l1()

    def post_pending(self) -> None:
        """Post every cut batch, in order (a failure leaves it for the next tick)."""
        while self.cut_batches:
            if not self._post(self.cut_batches[0]):
                return
            self.cut_batches.pop(0)

    def ensure_bonded(self) -> None:
        """Bond (again, after a slash) before posting."""
        chain = self.chain
        if int(chain.rollup.functions.bonds(chain.l1.address).call()) < int(chain.rollup.functions.bond_amount().call()):
            chain.bond()
            log.warning("posted the proposer bond")

    def _post(self, cut: CutBatch) -> bool:
        txs, roots = cut.txs, cut.roots
        try:
            self.ensure_bonded()
        except L1Error as exc:
            log.error("cannot bond: %s", exc)
            return False
        position = len(self.posted)
        if self.corrupt is not None:
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
            return False
        with self.store.transaction() as db:
            db.execute("UPDATE batches SET status = 'posted', l1_id = ?, position = ?, l1_tx = ? WHERE local = ?",
                       (batch_id, position, receipt["transactionHash"].hex(), cut.local))
        # what the operator keeps is the honest batch (a fraud's extra transactions are not
        # sequenced again after the revert)
        self.posted.append(PostedBatch(cut.local, batch_id, position, cut.txs, cut.roots, cut.state,
                                       posted_txs=txs, posted_roots=roots))
        log.info("posted batch %d (local %d) at position %d: %d transactions", batch_id, cut.local, position, len(txs))
        return True

    # ------------------------------------------------------------------ L1's verdicts

    def follow_l1(self) -> None:
        """Mark final batches; if L1 reverted ours, sequence their transactions again."""
        if not self.posted:
            return
        length = int(self.chain.rollup.functions.length().call())
        changed = False
        for batch in self.posted:
            if batch.status == "final":
                continue
            info = self.chain.batch(batch.l1_id)
            if info.status == FINAL:
                batch.status = "final"
                changed = True
            elif info.status == REVERTED:
                batch.status = "reverted"
                changed = True
        if changed:
            with self.store.transaction() as db:
                for batch in self.posted:
                    if batch.status in ("final", "reverted"):
                        db.execute("UPDATE batches SET status = ? WHERE local = ?", (batch.status, batch.local))
        reverted = [b for b in self.posted if b.status == "reverted"]
        if reverted or length < len(self.posted):
            self.resume_after_revert()

    def resume_after_revert(self) -> None:
        """L1 reverted some of our batches: go back to the last live one's state and
        sequence the reverted transactions (and the open batch's) again."""
        good = [b for b in self.posted if b.status != "reverted"]
        first_bad = len(good)
        redo: list[bytes] = []
        for b in self.posted[first_bad:]:
            redo += b.txs
        with self.store.transaction() as db:
            for b in self.posted[first_bad:]:
                db.execute("UPDATE batches SET status = 'reverted' WHERE local = ?", (b.local,))
            for cut in self.cut_batches:
                redo += cut.txs
                db.execute("UPDATE batches SET status = 'reverted' WHERE local = ?", (cut.local,))
            self.cut_batches = []
            if self.batch is not None:
                redo += self.batch.txs
                db.execute("UPDATE batches SET status = 'reverted' WHERE local = ?", (self.batch.local,))
                self.batch = None
        self.posted = good
        self.state = good[-1].state.copy() if good else self.genesis.copy()
        log.warning("L1 reverted our batches from position %d: sequencing %d transactions again", first_bad, len(redo))
        with self.store.transaction() as db:
            self.open(db)
            for tx in redo:
                if tx and tx[0] in (0x01, 0x09, 0x0A):
                    continue  # the time and the L1 queues are taken afresh at opening
                self.sequence(db, tx)

    # ------------------------------------------------------------------ recovery

    def recover(self) -> None:
        """Rebuild the head state from the store and reconcile with L1."""
        self.inbox.sync()
        rows = self.store.query(
            "SELECT local, timestamp, deposit_count, forced_count, status, l1_id, position FROM batches ORDER BY local")
        self.state = self.genesis.copy()
        self.posted = []
        self.cut_batches = []
        self.batch = None
        for local, timestamp, deposit_count, forced_count, status, l1_id, position in rows:
            if status == "reverted":
                continue
            context = self.context_for(int(timestamp), int(deposit_count), int(forced_count))
            log_rows = self.store.query("SELECT tx, root FROM txlog WHERE local = ? ORDER BY seq", (local,))
            pre = self.state.copy()
            txs, roots = [], []
            for tx, root in log_rows:
                receipt = apply(self.state, bytes(tx), context)
                if not receipt.applied or self.state.root() != bytes(root):
                    raise RuntimeError(f"store: batch {local} does not replay to its logged roots")
                txs.append(bytes(tx))
                roots.append(bytes(root))
            if status in ("posted", "final"):
                self.posted.append(PostedBatch(int(local), int(l1_id), int(position), txs, roots, self.state.copy(), status))
            elif status == "open":
                self.batch = OpenBatch(int(local), int(timestamp), int(deposit_count), int(forced_count), context, pre,
                                       txs, roots, sum(2 + len(t) for t in txs), len(txs))
            elif status == "cut":
                cut = CutBatch(int(local), int(timestamp), int(deposit_count), int(forced_count), txs, roots,
                               pre, self.state.copy())
                if not self._reconcile_cut(cut):
                    self.cut_batches.append(cut)
        self.follow_l1()
        log.info("recovered: %d batches live, head root %s", len(self.posted), self.state.root().hex())

    def _reconcile_cut(self, cut: CutBatch) -> bool:
        """A batch cut before the crash: if L1 holds it at its position, it was posted by
        the crashed process (True); else it is still to post."""
        position = len(self.posted)
        length = int(self.chain.rollup.functions.length().call())
        if position < length:
            batch_id = int(self.chain.rollup.functions.live(position).call())
            info = self.chain.batch(batch_id)
            if info.state_root == cut.roots[-1] and info.steps == len(cut.txs):
                with self.store.transaction() as db:
                    db.execute("UPDATE batches SET status = 'posted', l1_id = ?, position = ? WHERE local = ?",
                               (batch_id, position, cut.local))
                self.posted.append(PostedBatch(cut.local, batch_id, position, cut.txs, cut.roots, cut.state))
                return True
        return False
