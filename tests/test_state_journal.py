"""The state's journal: a rollback to a mark gives back exactly the state of that moment
(every record, every tree, the root), whatever ran in between; forgetting the journal's
start changes nothing else. Property-tested over the STF scenarios (every transaction
type), `EXAMPLES` examples: 300 in CI's short mode, 3,000 with ROLLUP_LONG=1."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollup.stf import apply
from rollup.stf.state import State
from tests.scenarios import every_type, run, scenarios, world_factory

EXAMPLES = 3_000 if os.environ.get("ROLLUP_LONG") else 300
fresh_world = world_factory()


def same(a: State, b: State) -> None:
    """Every record and every tree node of two states agree."""
    assert a.root() == b.root()
    assert a.accounts == b.accounts
    assert {k: v for k, v in a.slots.items() if v} == {k: v for k, v in b.slots.items() if v}
    assert a.markets == b.markets and a.market_leaves == b.market_leaves
    assert a.globals == b.globals and a.withdrawals == b.withdrawals
    assert a.account_tree.groups == b.account_tree.groups
    assert a.withdrawal_tree.groups == b.withdrawal_tree.groups
    for account in set(a.order_trees) | set(b.order_trees):
        ta, tb = a.order_trees.get(account), b.order_trees.get(account)
        assert (ta.root() if ta else b"\0" * 32) == (tb.root() if tb else b"\0" * 32)
        if ta and tb:
            assert ta.groups == tb.groups


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scenarios, min_size=1, max_size=4), st.data())
def test_rollback_to_any_mark_restores_that_state(parts: list[list[tuple[Any, ...]]], data: Any) -> None:
    world = fresh_world()
    world.state.start_journal()
    marks: list[tuple[int, State]] = []
    for part in parts:
        marks.append((world.state.mark(), world.state.copy()))
        run(world, part)
    # roll back to a few of the marks, newest first, sometimes after forgetting older ones
    chosen = sorted(data.draw(st.sets(st.integers(0, len(marks) - 1), min_size=1)), reverse=True)
    forget = data.draw(st.integers(0, chosen[-1]))
    world.state.forget(marks[forget][0])
    for i in chosen:
        mark, snapshot = marks[i]
        world.state.rollback(mark)
        same(world.state, snapshot)
        assert world.state.mark() == mark


def test_every_type_rolled_back_then_replayed() -> None:
    """Every transaction type applied, undone, and applied again: the same roots."""
    world = fresh_world()
    world.state.start_journal()
    start, before = world.state.mark(), world.state.copy()
    contexts = []
    txs = every_type(world, lambda w, tx: contexts.append(w.context))
    after = world.state.copy()
    assert world.state.mark() > start
    world.state.rollback(start)
    same(world.state, before)
    for tx, context in zip(txs, contexts, strict=True):
        assert apply(world.state, tx, context).ok
    same(world.state, after)


def test_marks_outside_the_journal_are_refused() -> None:
    world = fresh_world()
    world.state.start_journal()
    run(world, [("sweep", 1)])
    world.state.forget(world.state.mark())
    with pytest.raises(AssertionError):
        world.state.rollback(world.state.mark() - 1)
