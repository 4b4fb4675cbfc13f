"""A watcher's durable record, in SQLite (WAL mode): how far it has read L1, what it
concluded about every batch, and every challenge it decided on or sent.

Tables:

- `meta`: the deployment the store belongs to (Rollup address, chain id), the last L1
  block whose Rollup events are fully processed and that block's hash, the schema version.
- `blocks`: the hash of every block the watcher read events from or ended a range at:
  after an L1 reorganisation the newest of them still on the chain is the common
  ancestor the watcher rolls back to.
- `batches`: one row per BatchSubmitted seen: the event's fields, the submitting L1
  transaction (where the calldata is), the status as of the last processed block
  (pending, final, reverted) with the block that set it, the watcher's verdict (valid;
  invalid with its first wrong step and both roots; or after-invalid: a descendant of an
  invalid batch, which goes when that one is proven wrong), and who proved it wrong on L1.
- `challenges`: one row per challenge decision of this watcher: the batch (its id and
  the L1 transaction that submitted it: ids are reused if L1 reorganises) and step, the
  kind (`honest`, or `hostile` for the misbehaving test mode), the salt and claimed root
  of its commitment, and each signed transaction (the commitment, then the reveal) with
  its hash, nonce and raw bytes, recorded and committed *before* it is broadcast, so a
  watcher killed at any point finds it again. Outcomes: `committing` (the commitment is
  signed, awaiting its receipt), `committed` (mined in `commit_block`: the reveal may go
  from the next block), `sent` (the reveal awaits its receipt), `proven`,
  `already-proven` (someone else was first), `refused` (L1 refused it with `reason`),
  `failed` (mined, reverted, no reason), `lost` (never landed: the batch may be
  challenged again). A proven challenge's reward is claimed once the reward delay has
  passed (`reward_tx`).
- `snapshot`: at most one pickled STF state, the state after a final batch (final batches
  are never reverted), so a restart replays only the batches after it.

Events of a block range are applied in one SQLite transaction together with the new
`last_block`: after a crash the store is as of the end of some range, never half-way.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rollup.l1.batches import INVALID, VALID

SCHEMA_VERSION = "2"

PENDING, FINAL, REVERTED = "pending", "final", "reverted"
"""A batch's status as of the last processed block."""

AFTER_INVALID = "after-invalid"
"""Verdicts: VALID, INVALID (rollup/l1/batches.py), or AFTER_INVALID for a batch whose
parent is invalid (its true pre-state is unknown; it goes with its ancestor)."""
__all__ = ["AFTER_INVALID", "INVALID", "VALID"]

COMMITTING, COMMITTED, SENT, PROVEN, ALREADY_PROVEN, REFUSED, FAILED, LOST = (
    "committing", "committed", "sent", "proven", "already-proven", "refused", "failed", "lost",
)
"""Challenge outcomes; COMMITTING, COMMITTED and SENT are in flight, the others settled,
and only LOST lets the batch be challenged again."""
IN_FLIGHT = (COMMITTING, COMMITTED, SENT)

HONEST, HOSTILE = "honest", "hostile"
"""Challenge kinds."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    position INTEGER NOT NULL,
    block INTEGER NOT NULL,
    tx_hash TEXT NOT NULL,
    proposer TEXT NOT NULL,
    state_root TEXT NOT NULL,
    step_root TEXT NOT NULL,
    steps INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    deposit_count INTEGER NOT NULL,
    forced_count INTEGER NOT NULL,
    deadline INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_block INTEGER,
    verdict TEXT,
    bad_step INTEGER,
    posted_root TEXT,
    computed_root TEXT,
    detail TEXT,
    proven_by TEXT,
    proven_step INTEGER,
    proven_block INTEGER
);
CREATE INDEX IF NOT EXISTS batches_live ON batches (status, position);
CREATE TABLE IF NOT EXISTS challenges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id INTEGER NOT NULL,
    batch_tx TEXT NOT NULL,
    step INTEGER NOT NULL,
    kind TEXT NOT NULL,
    salt BLOB,
    claimed_root TEXT,
    commit_tx TEXT,
    commit_nonce INTEGER,
    commit_raw BLOB,
    commit_block INTEGER,
    tx_hash TEXT,
    nonce INTEGER,
    raw_tx BLOB,
    outcome TEXT NOT NULL,
    reason TEXT,
    reward TEXT,
    reward_tx TEXT,
    gas_used INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS challenges_batch ON challenges (batch_id, kind);
CREATE TABLE IF NOT EXISTS snapshot (
    slot INTEGER PRIMARY KEY CHECK (slot = 0),
    position INTEGER NOT NULL,
    batch_id INTEGER NOT NULL,
    root TEXT NOT NULL,
    state BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class BatchRow:
    id: int
    position: int
    block: int
    tx_hash: str
    proposer: str
    state_root: str
    step_root: str
    steps: int
    timestamp: int
    deposit_count: int
    forced_count: int
    deadline: int
    status: str
    status_block: int | None = None
    verdict: str | None = None
    bad_step: int | None = None
    posted_root: str | None = None
    computed_root: str | None = None
    detail: str | None = None
    proven_by: str | None = None
    proven_step: int | None = None
    proven_block: int | None = None


@dataclass(frozen=True)
class ChallengeRow:
    id: int
    batch_id: int
    batch_tx: str
    step: int
    kind: str
    salt: bytes | None
    claimed_root: str | None
    commit_tx: str | None
    commit_nonce: int | None
    commit_raw: bytes | None
    commit_block: int | None
    tx_hash: str | None
    nonce: int | None
    raw_tx: bytes | None
    outcome: str
    reason: str | None
    reward: str | None
    reward_tx: str | None
    gas_used: int | None
    created: float
    updated: float


class StoreMismatch(Exception):
    """The store belongs to another deployment (or another schema)."""


class Store:
    """The SQLite file at `path` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self._depth = 0
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --- transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit (nested uses join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.db.execute("ROLLBACK")
            raise
        self._depth = 0
        self.db.execute("COMMIT")

    # --- meta

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def put(self, key: str, value: object) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))

    def bind(self, rollup: str, chain_id: int, first_block: int) -> None:
        """Claim a new store for a deployment, or check an existing one is for it."""
        with self.transaction():
            version = self.get("schema")
            if version is None:
                self.put("schema", SCHEMA_VERSION)
                self.put("rollup", rollup.lower())
                self.put("chain_id", chain_id)
                self.put("first_block", first_block)
                self.put("last_block", first_block - 1)
                self.put("last_block_hash", "")
                return
        if version != SCHEMA_VERSION:
            raise StoreMismatch(f"{self.path}: schema {version}, this watcher reads {SCHEMA_VERSION}")
        if self.get("rollup") != rollup.lower() or self.get("chain_id") != str(chain_id):
            raise StoreMismatch(
                f"{self.path} belongs to rollup {self.get('rollup')} on chain {self.get('chain_id')}, "
                f"not {rollup.lower()} on chain {chain_id}")

    @property
    def last_block(self) -> int:
        return int(self.get("last_block") or 0)

    @property
    def last_block_hash(self) -> str:
        return self.get("last_block_hash") or ""

    def set_last_block(self, number: int, block_hash: str) -> None:
        self.put("last_block", number)
        self.put("last_block_hash", block_hash)
        self.add_block(number, block_hash)

    # --- blocks read, and rolling back to one of them

    def add_block(self, number: int, block_hash: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO blocks (number, hash) VALUES (?, ?)", (number, block_hash))

    def blocks_newest_first(self) -> list[tuple[int, str]]:
        return [(int(r[0]), str(r[1])) for r in self.db.execute("SELECT number, hash FROM blocks ORDER BY number DESC")]

    def prune_blocks(self, below: int) -> None:
        """Forget the hashes of blocks below `below` (no reorganisation reaches them)."""
        self.db.execute("DELETE FROM blocks WHERE number < ?", (below,))

    def roll_back(self, block: int, block_hash: str) -> None:
        """Forget everything read from blocks after `block` (an L1 reorganisation dropped
        them): batches submitted after it go, statuses and proofs set after it are undone.
        Verdicts of the batches that stay are kept (their data and context are unchanged).
        Challenge records stay, as the history of what this key sent."""
        with self.transaction():
            self.db.execute("DELETE FROM batches WHERE block > ?", (block,))
            self.db.execute("UPDATE batches SET status = ?, status_block = NULL WHERE status_block > ?",
                            (PENDING, block))
            self.db.execute("UPDATE batches SET proven_by = NULL, proven_step = NULL, proven_block = NULL "
                            "WHERE proven_block > ?", (block,))
            self.db.execute("UPDATE batches SET verdict = NULL, bad_step = NULL, posted_root = NULL, "
                            "computed_root = NULL, detail = NULL WHERE verdict = ?", (AFTER_INVALID,))
            self.db.execute("DELETE FROM blocks WHERE number > ?", (block,))
            if int(self.get("frozen_block") or -1) > block:
                self.db.execute("DELETE FROM meta WHERE key IN ('frozen', 'frozen_block')")
            self.put("last_block", block)
            self.put("last_block_hash", block_hash)

    # --- batches

    def add_batch(self, row: BatchRow) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO batches (id, position, block, tx_hash, proposer, state_root, step_root, "
            "steps, timestamp, deposit_count, forced_count, deadline, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.id, row.position, row.block, row.tx_hash, row.proposer, row.state_root, row.step_root,
             row.steps, row.timestamp, row.deposit_count, row.forced_count, row.deadline, row.status),
        )

    def set_verdict(self, batch_id: int, verdict: str, bad_step: int | None = None,
                    posted_root: str | None = None, computed_root: str | None = None,
                    detail: str | None = None) -> None:
        self.db.execute(
            "UPDATE batches SET verdict = ?, bad_step = ?, posted_root = ?, computed_root = ?, detail = ? "
            "WHERE id = ?", (verdict, bad_step, posted_root, computed_root, detail, batch_id))

    def set_status(self, batch_id: int, status: str, block: int) -> None:
        self.db.execute("UPDATE batches SET status = ?, status_block = ? WHERE id = ?", (status, block, batch_id))

    def set_proven(self, batch_id: int, challenger: str, step: int, block: int) -> None:
        self.db.execute("UPDATE batches SET proven_by = ?, proven_step = ?, proven_block = ? WHERE id = ?",
                        (challenger, step, block, batch_id))

    def batch(self, batch_id: int) -> BatchRow | None:
        row = self.db.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return None if row is None else BatchRow(**dict(row))

    def batches(self) -> list[BatchRow]:
        return [BatchRow(**dict(r)) for r in self.db.execute("SELECT * FROM batches ORDER BY id")]

    def live_batches(self) -> list[BatchRow]:
        """The live chain as of the last processed block (not reverted), by position."""
        return [BatchRow(**dict(r)) for r in self.db.execute(
            "SELECT * FROM batches WHERE status != ? ORDER BY position", (REVERTED,))]

    def pending_batches(self) -> list[BatchRow]:
        return [BatchRow(**dict(r)) for r in self.db.execute(
            "SELECT * FROM batches WHERE status = ? ORDER BY position", (PENDING,))]

    # --- challenges

    def add_challenge(self, batch: BatchRow, step: int, kind: str, outcome: str, **fields: object) -> int:
        """A new challenge record; `fields` are any of its columns (salt, claimed_root,
        commit_tx, commit_nonce, commit_raw, tx_hash, nonce, raw_tx, reason)."""
        now = time.time()
        columns = ["batch_id", "batch_tx", "step", "kind", "outcome", "created", "updated", *fields]
        values = [batch.id, batch.tx_hash, step, kind, outcome, now, now, *fields.values()]
        with self.transaction():
            cursor = self.db.execute(
                f"INSERT INTO challenges ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values)
        return int(cursor.lastrowid or 0)

    def update_challenge(self, challenge_id: int, **fields: object) -> None:
        """Set some columns of a challenge record (outcome, reason, reward, ...)."""
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction():
            self.db.execute(f"UPDATE challenges SET {assignments}, updated = ? WHERE id = ?",
                            [*fields.values(), time.time(), challenge_id])

    def challenges(self, batch_id: int | None = None, kind: str | None = None,
                   outcome: str | None = None) -> list[ChallengeRow]:
        query, args = "SELECT * FROM challenges WHERE 1", []
        for column, value in (("batch_id", batch_id), ("kind", kind), ("outcome", outcome)):
            if value is not None:
                query += f" AND {column} = ?"
                args.append(value)
        return [ChallengeRow(**dict(r)) for r in self.db.execute(query + " ORDER BY id", args)]

    def in_flight(self) -> list[ChallengeRow]:
        marks = ", ".join("?" * len(IN_FLIGHT))
        return [ChallengeRow(**dict(r)) for r in self.db.execute(
            f"SELECT * FROM challenges WHERE outcome IN ({marks}) ORDER BY id", IN_FLIGHT)]

    def unclaimed_rewards(self) -> list[ChallengeRow]:
        """Honest challenges proven, whose reward is not yet claimed (nor known taken)."""
        return [ChallengeRow(**dict(r)) for r in self.db.execute(
            "SELECT * FROM challenges WHERE outcome = ? AND kind = ? AND reward_tx IS NULL ORDER BY id",
            (PROVEN, HONEST))]

    def challenge(self, challenge_id: int) -> ChallengeRow:
        row = self.db.execute("SELECT * FROM challenges WHERE id = ?", (challenge_id,)).fetchone()
        return ChallengeRow(**dict(row))

    def challenge_settled(self, batch: BatchRow, kind: str) -> bool:
        """Whether this watcher has already dealt with the batch (any attempt not `lost`)."""
        row = self.db.execute(
            "SELECT 1 FROM challenges WHERE batch_id = ? AND batch_tx = ? AND kind = ? AND outcome != ? LIMIT 1",
            (batch.id, batch.tx_hash, kind, LOST)).fetchone()
        return row is not None

    # --- snapshot

    def save_snapshot(self, position: int, batch_id: int, root: str, state: bytes) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO snapshot (slot, position, batch_id, root, state) "
                            "VALUES (0, ?, ?, ?, ?)", (position, batch_id, root, state))

    def snapshot(self) -> tuple[int, int, str, bytes] | None:
        row = self.db.execute("SELECT position, batch_id, root, state FROM snapshot WHERE slot = 0").fetchone()
        return None if row is None else (int(row[0]), int(row[1]), str(row[2]), bytes(row[3]))

    def drop_snapshot(self) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM snapshot")
