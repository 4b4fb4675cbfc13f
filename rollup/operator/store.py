"""The operator's durable store: SQLite in WAL mode.

Everything the operator acknowledges is written here, in one SQLite transaction, before
the reply leaves: the L2 transactions it sequenced (with the state root after each), the
batches they form, the orders it accepted (and how much of each is left), the trades.
After a crash the operator rebuilds its state by replaying this log over what L1 holds
(rollup/operator/service.py `recover`).

Tables:
    batches(local, timestamp, deposit_count, forced_count, status, l1_id, position, l1_tx, foreign_)
        one row per batch the operator opened, or adopted from another proposer (foreign_ = 1,
        its transactions as L1 holds them); status open | cut | posted | final | reverted
    txlog(seq, local, tx, root)   every sequenced L2 transaction, in order
    orders(id, account, nonce, market, body, kind, status, remaining, created_seq)
    trades(seq, market, price, size, maker, taker, maker_order, taker_order, time)
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    local INTEGER PRIMARY KEY,
    timestamp INTEGER NOT NULL,
    deposit_count INTEGER NOT NULL,
    forced_count INTEGER NOT NULL,
    status TEXT NOT NULL,
    l1_id INTEGER,
    position INTEGER,
    l1_tx TEXT,
    foreign_ INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS txlog (
    seq INTEGER PRIMARY KEY,
    local INTEGER NOT NULL,
    tx BLOB NOT NULL,
    root BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS txlog_local ON txlog(local);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    account INTEGER NOT NULL,
    nonce INTEGER NOT NULL,
    market INTEGER NOT NULL,
    body BLOB NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    remaining INTEGER NOT NULL,
    created_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_open ON orders(status);
CREATE INDEX IF NOT EXISTS orders_account ON orders(account, nonce);
CREATE TABLE IF NOT EXISTS trades (
    seq INTEGER PRIMARY KEY,
    market INTEGER NOT NULL,
    price INTEGER NOT NULL,
    size INTEGER NOT NULL,
    maker INTEGER NOT NULL,
    taker INTEGER NOT NULL,
    maker_order INTEGER NOT NULL,
    taker_order INTEGER NOT NULL,
    time INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS trades_market ON trades(market, seq);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class OrderStatus(StrEnum):
    """An accepted order's life in the store."""

    OPEN = "open"
    """In the book, waiting to be filled."""
    DONE = "done"
    """Filled, or an IOC that took what it could."""
    CANCELLED = "cancelled"
    """Cancelled by its owner, dropped by the book (its maker side refused), or its slot reused."""
    EXPIRED = "expired"


class BatchStatus(StrEnum):
    """A batch's life in the store (the L1 statuses from `posted` on)."""

    OPEN = "open"
    CUT = "cut"
    POSTED = "posted"
    FINAL = "final"
    REVERTED = "reverted"


@dataclass(frozen=True)
class OrderRow:
    id: int
    body: bytes
    """The encoded order (42 bytes) and its signature."""
    kind: str
    remaining: int
    created_seq: int


@dataclass(frozen=True)
class BatchRow:
    local: int
    timestamp: int
    deposit_count: int
    forced_count: int
    status: str
    l1_id: int | None
    position: int | None
    l1_tx: str | None
    foreign: bool


class Writes:
    """The writes of one store transaction (`Store.transaction`), each by its name."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    # --- batches and the transaction log

    def open_batch(self, local: int, timestamp: int, deposit_count: int, forced_count: int) -> None:
        self.db.execute("INSERT INTO batches(local, timestamp, deposit_count, forced_count, status) "
                        "VALUES (?, ?, ?, ?, ?)", (local, timestamp, deposit_count, forced_count, BatchStatus.OPEN))

    def adopted_batch(self, local: int, timestamp: int, deposit_count: int, forced_count: int,
                      txs: list[bytes], roots: list[bytes]) -> None:
        """A batch another proposer posted, with its transactions as L1 holds them."""
        self.db.execute("INSERT INTO batches(local, timestamp, deposit_count, forced_count, status, foreign_) "
                        "VALUES (?, ?, ?, ?, ?, 1)", (local, timestamp, deposit_count, forced_count, BatchStatus.POSTED))
        self.db.executemany("INSERT INTO txlog(local, tx, root) VALUES (?, ?, ?)",
                            [(local, tx, root) for tx, root in zip(txs, roots, strict=True)])

    def drop_batch(self, local: int) -> None:
        self.db.execute("DELETE FROM batches WHERE local = ?", (local,))

    def batch_status(self, local: int, status: BatchStatus) -> None:
        self.db.execute("UPDATE batches SET status = ? WHERE local = ?", (status, local))

    def batch_posted(self, local: int, l1_id: int, position: int, l1_tx: str | None = None) -> None:
        self.db.execute("UPDATE batches SET status = ?, l1_id = ?, position = ?, l1_tx = COALESCE(?, l1_tx) "
                        "WHERE local = ?", (BatchStatus.POSTED, l1_id, position, l1_tx, local))

    def log_tx(self, local: int, tx: bytes, root: bytes) -> None:
        self.db.execute("INSERT INTO txlog(local, tx, root) VALUES (?, ?, ?)", (local, tx, root))

    # --- orders and trades

    def add_order(self, order_id: int, account: int, nonce: int, market: int, body: bytes, kind: str,
                  status: OrderStatus, remaining: int, created_seq: int) -> None:
        self.db.execute("INSERT INTO orders(id, account, nonce, market, body, kind, status, remaining, created_seq) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (order_id, account, nonce, market, body, kind, status, remaining, created_seq))

    def order_filled(self, order_id: int, size: int, step_size: int) -> None:
        """A resting order filled by `size`: done once less than a step remains."""
        self.db.execute("UPDATE orders SET remaining = remaining - ?, status = CASE WHEN remaining - ? < ? "
                        "THEN ? ELSE status END WHERE id = ?", (size, size, step_size, OrderStatus.DONE, order_id))

    def order_status(self, order_id: int, status: OrderStatus) -> None:
        self.db.execute("UPDATE orders SET status = ? WHERE id = ?", (status, order_id))

    def order_remaining(self, order_id: int, remaining: int, status: OrderStatus) -> None:
        self.db.execute("UPDATE orders SET remaining = ?, status = ? WHERE id = ?", (remaining, status, order_id))

    def add_trade(self, market: int, price: int, size: int, maker: int, taker: int, maker_order: int,
                  taker_order: int, time: int) -> None:
        self.db.execute("INSERT INTO trades(market, price, size, maker, taker, maker_order, taker_order, time) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (market, price, size, maker, taker, maker_order,
                                                            taker_order, time))

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))


class Store:
    """One SQLite connection, used under a lock by the operator's threads. Reads are
    methods; writes happen in `transaction()`, through its `Writes`.

    Group commit. One thread may be named the grouping thread (`group_commits`: the API's
    event loop). Its transactions do not commit one by one: each is a savepoint inside a
    group transaction that stays open, and `commit()` commits the whole group at once (the
    event loop calls it once per turn, after the requests of that turn, and sends their
    replies only then: an answer is never sent for a write that is not durable). A
    transaction of any other thread joins an open group and commits it with its own
    writes, so a background write (a cut batch, before it is posted) is durable when its
    transaction ends, as before."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives the process being killed (it is in the WAL, which the
        # OS holds); only a power loss can take the last commits.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(batches)")}
        if "foreign_" not in columns:  # a store written before adopted batches existed
            self.db.execute("ALTER TABLE batches ADD COLUMN foreign_ INTEGER NOT NULL DEFAULT 0")
        self.lock = threading.RLock()
        self._grouping_thread: int | None = None
        self._group_open = False

    def group_commits(self, thread: int | None) -> None:
        """Make `thread` (a `threading.get_ident()`; None: no thread) the grouping thread."""
        with self.lock:
            self.commit()
            self._grouping_thread = thread

    @property
    def uncommitted(self) -> bool:
        """Whether a group holds writes not yet committed."""
        return self._group_open

    @contextmanager
    def transaction(self) -> Iterator[Writes]:
        """All writes inside commit together, or not at all (in the grouping thread: they
        are kept together or undone together, and commit with their group)."""
        with self.lock:
            if not self._group_open:
                self.db.execute("BEGIN IMMEDIATE")
                self._group_open = True
            self.db.execute("SAVEPOINT writes")
            try:
                yield Writes(self.db)
            except BaseException:
                self.db.execute("ROLLBACK TO writes")
                raise
            finally:
                self.db.execute("RELEASE writes")
                if threading.get_ident() != self._grouping_thread:
                    self.commit()  # outside the grouping thread (or with none), at once

    def commit(self) -> None:
        """Commit the open group, if any: every write so far is durable when this returns."""
        with self.lock:
            if self._group_open:
                self._group_open = False
                self.db.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return list(self.db.execute(sql, args))

    # --- batches and the transaction log

    def next_local(self) -> int:
        """The local number of the next batch (one above every one recorded)."""
        return int(self.query("SELECT MAX(local) FROM batches")[0][0] or 0) + 1

    def batches_in_order(self) -> list[BatchRow]:
        return [BatchRow(int(r[0]), int(r[1]), int(r[2]), int(r[3]), str(r[4]), r[5], r[6], r[7], bool(r[8]))
                for r in self.query("SELECT local, timestamp, deposit_count, forced_count, status, l1_id, position, "
                                    "l1_tx, foreign_ FROM batches ORDER BY local")]

    def newest_batches(self, limit: int) -> list[tuple[BatchRow, int, bytes | None]]:
        """The newest `limit` batches, each with its number of transactions and last root."""
        rows = self.query("SELECT b.local, b.timestamp, b.deposit_count, b.forced_count, b.status, b.l1_id, "
                          "b.position, b.l1_tx, b.foreign_, (SELECT COUNT(*) FROM txlog t WHERE t.local = b.local), "
                          "(SELECT root FROM txlog t WHERE t.local = b.local ORDER BY seq DESC LIMIT 1) "
                          "FROM batches b ORDER BY b.local DESC LIMIT ?", (limit,))
        return [(BatchRow(int(r[0]), int(r[1]), int(r[2]), int(r[3]), str(r[4]), r[5], r[6], r[7], bool(r[8])),
                 int(r[9]), None if r[10] is None else bytes(r[10])) for r in rows]

    def batch_counts(self) -> dict[str, int]:
        """How many batches have each status."""
        counts = dict(self.query("SELECT status, COUNT(*) FROM batches GROUP BY status"))
        return {status.value: int(counts.get(status.value, 0)) for status in BatchStatus}

    def logged_count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM txlog")[0][0])

    def logged(self, local: int) -> tuple[list[bytes], list[bytes]]:
        """A batch's logged transactions and the root after each."""
        rows = self.query("SELECT tx, root FROM txlog WHERE local = ? ORDER BY seq", (local,))
        return [bytes(r[0]) for r in rows], [bytes(r[1]) for r in rows]

    # --- orders and trades

    def open_orders(self) -> list[OrderRow]:
        return [OrderRow(int(r[0]), bytes(r[1]), str(r[2]), int(r[3]), int(r[4]))
                for r in self.query("SELECT id, body, kind, remaining, created_seq FROM orders WHERE status = ? "
                                    "ORDER BY id", (OrderStatus.OPEN,))]

    def highest_order_id(self, market: int) -> int | None:
        top = self.query("SELECT MAX(id) FROM orders WHERE market = ?", (market,))[0][0]
        return None if top is None else int(top)

    def order_by_body(self, account: int, nonce: int, body: bytes) -> OrderRow | None:
        rows = self.query("SELECT id, body, kind, remaining, created_seq FROM orders "
                          "WHERE account = ? AND nonce = ? AND body = ?", (account, nonce, body))
        return OrderRow(int(rows[0][0]), bytes(rows[0][1]), str(rows[0][2]), int(rows[0][3]), int(rows[0][4])) \
            if rows else None

    def orders_by_nonce(self, account: int, nonce: int) -> list[OrderRow]:
        rows = self.query("SELECT id, body, kind, remaining, created_seq FROM orders "
                          "WHERE account = ? AND nonce = ?", (account, nonce))
        return [OrderRow(int(r[0]), bytes(r[1]), str(r[2]), int(r[3]), int(r[4])) for r in rows]

    def trades(self, market: int, limit: int) -> list[dict[str, int]]:
        """A market's newest trades, newest first."""
        rows = self.query("SELECT seq, price, size, maker, taker, maker_order, taker_order, time FROM trades "
                          "WHERE market = ? ORDER BY seq DESC LIMIT ?", (market, limit))
        return [{"seq": r[0], "price": r[1], "size": r[2], "maker": r[3], "taker": r[4], "maker_order": r[5],
                 "taker_order": r[6], "time": r[7]} for r in rows]

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def close(self) -> None:
        with self.lock:
            self.db.close()
