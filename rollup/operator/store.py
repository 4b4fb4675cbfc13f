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


class Store:
    """One SQLite connection, used under a lock by the operator's threads."""

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

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside commit together, or not at all."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return list(self.db.execute(sql, args))

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self.lock:
            self.db.close()
