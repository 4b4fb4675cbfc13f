"""Group commit in the operator's store (rollup/operator/store.py): the grouping thread's
transactions are durable only once `commit()` runs (a second connection, as after a
kill -9, sees nothing before); a failed transaction inside a group undoes its own writes
only; any other thread's transaction commits the group with its own writes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from rollup.operator.store import OrderStatus, Store


def committed_orders(path: Path) -> list[int]:
    """The order ids another connection sees (what a restart would find)."""
    with sqlite3.connect(str(path)) as db:
        return [int(r[0]) for r in db.execute("SELECT id FROM orders ORDER BY id")]


def add(store: Store, order_id: int, fail: bool = False) -> None:
    with store.transaction() as db:
        db.add_order(order_id, 1, order_id, 0, b"body", "limit", OrderStatus.OPEN, 10, order_id)
        if fail:
            raise RuntimeError("refused after writing")


def test_group_commit(tmp_path: Path) -> None:
    path = tmp_path / "op.db"
    store = Store(path)
    add(store, 1)
    assert committed_orders(path) == [1]  # no grouping thread: each transaction commits

    store.group_commits(threading.get_ident())
    add(store, 2)
    add(store, 3)
    with pytest.raises(RuntimeError):
        add(store, 4, fail=True)
    assert store.uncommitted
    assert committed_orders(path) == [1]  # not durable yet: no answer may be sent
    assert [r.id for r in store.open_orders()] == [1, 2, 3]  # the store's own reads see the group
    store.commit()
    assert not store.uncommitted
    assert committed_orders(path) == [1, 2, 3]  # the failed one undone, alone

    add(store, 5)
    background = threading.Thread(target=add, args=(store, 6))  # the background loop's write
    background.start()
    background.join()
    assert not store.uncommitted
    assert committed_orders(path) == [1, 2, 3, 5, 6]  # it committed the group with its own

    add(store, 7)
    store.group_commits(None)  # (the edge's shutdown) commits what is open
    assert committed_orders(path) == [1, 2, 3, 5, 6, 7]
    add(store, 8)
    assert committed_orders(path)[-1] == 8


def test_the_operator_collects_cycles_only_when_idle() -> None:
    """Collector (rollup/operator/service.py): after `start` no full collection runs on its
    own (one took 150-220 ms with the operator's heap); `tick` runs one once the API has
    been quiet `idle` seconds, at most every `every` seconds."""
    import gc

    from rollup.operator.service import Collector

    thresholds = gc.get_threshold()
    try:
        collector = Collector(idle=2.0, every=60.0)
        collector.start()
        assert gc.get_threshold()[2] == 2**31 - 1 and gc.get_freeze_count() > 0
        now = collector.last_full + 61
        assert not collector.tick(last_request=now - 1.0, now=now)  # requests arriving: never
        full = gc.get_stats()[2]["collections"]
        assert collector.tick(last_request=now - 2.5, now=now)  # quiet: one full collection
        assert gc.get_stats()[2]["collections"] == full + 1
        assert not collector.tick(last_request=now - 10, now=now + 30)  # not again before `every`
        assert collector.tick(last_request=now - 10, now=now + 61)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
