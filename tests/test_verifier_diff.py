"""Differential equivalence of the L1 verifier and the Python STF: the same
(pre-state, transaction) gives the same reason, the same `applied` and the same post-state
root, on valid, invalid and malformed transactions of every type (hypothesis scenarios,
plus random and mutated bytes), on perpetuals and option series (the world lists three:
stf_world.OPTION_MARKETS). CI's short mode runs at least 1,000 steps; ROLLUP_LONG=1
runs at least 10,000.

The verifier is also fed forged witnesses (one field of the true witness changed, every
part of it in turn): each must be refused by a named witness check, or, when the step
does not read that field, give exactly the STF's result; never another result.

The run happens once, in a session fixture; the tests read what it counted, in any order.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollup.stf import products
from rollup.stf.transactions import decode
from tests.forge import WITNESS
from tests.scenarios import build, every_type, scenarios
from tests.verifier_harness import ALL_TAGS, EvmVerifier

LONG = bool(os.environ.get("ROLLUP_LONG"))
STEPS = 10_000 if LONG else 1_000
FORGED = 10_000 if LONG else 1_000
PY_EVM_STEPS = 1_000 if LONG else 150


@dataclass
class Run:
    seen: Counter[tuple[int, int]] = field(default_factory=Counter)
    """(type tag, reason) of every step compared with its true witness."""
    forged: Counter[tuple[int, str, str]] = field(default_factory=Counter)
    """(type tag, the witness part changed, the verifier's refusal or "same") of every
    step with a forged witness."""
    series: Counter[tuple[int, int]] = field(default_factory=Counter)
    """(type tag, reason) of the steps that name an option series."""


def names_a_series(state: Any, tx: bytes) -> bool:
    """Whether `tx` decodes to a transaction naming a market that is an option series."""
    decoded = decode(tx)
    market = getattr(decoded, "market", None)
    if market is None:
        order = getattr(decoded, "taker", None)
        market = order.market if order is not None else None
    listed = state.market(market) if isinstance(market, int) else None
    return listed is not None and listed.product != products.PERPETUAL


def differential_run(verifier: EvmVerifier, fresh_world: Any, steps: int, forgeries: int) -> Run:
    """Scenarios until `steps` steps and `forgeries` forged witnesses are compared."""
    out = Run()
    rng = random.Random(7)

    def compare(world: Any, tx: bytes) -> None:
        result = verifier.compare(world.state, tx, world.context)
        out.seen[result] += 1
        if names_a_series(world.state, tx):
            out.series[result] += 1
        if tx and tx[0] in ALL_TAGS and sum(out.forged.values()) < forgeries:
            name, outcome = verifier.compare_forged(world.state, tx, world.context, rng)
            out.forged[(tx[0], name.split(".")[0].split("[")[0], outcome)] += 1

    every_type(fresh_world(), compare)  # every type's success path, first

    @settings(max_examples=max(steps // 5, 50) * 5, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(scenario=scenarios, junk=st.binary(max_size=40))
    def scenario_run(scenario: list[tuple[Any, ...]], junk: bytes) -> None:
        if sum(out.seen.values()) >= steps and sum(out.forged.values()) >= forgeries:
            return
        world = fresh_world()
        history: list[bytes] = []
        for action in scenario:
            built = build(world, action, history)
            for tx in built if isinstance(built, list) else [built]:
                world.prepare(tx)
                compare(world, tx)
                world.apply(tx)
                history.append(tx)
        out.seen[verifier.compare(world.state, junk, world.context)] += 1

    scenario_run()
    return out


@pytest.fixture(scope="session")
def run(verifier: EvmVerifier, fresh_world: Any) -> Run:
    """The differential run on anvil: STEPS steps, FORGED forgeries."""
    return differential_run(verifier, fresh_world, STEPS, FORGED)


@pytest.fixture(scope="session")
def py_evm_run(py_evm_verifier: EvmVerifier) -> Run:
    """A shorter run of the same scenarios on our own node's EVM (py-evm)."""
    from tests.scenarios import world_factory

    return differential_run(py_evm_verifier, world_factory(py_evm_verifier.config), PY_EVM_STEPS, PY_EVM_STEPS)


@pytest.mark.slow
def test_verifier_agrees_with_the_stf(run: Run) -> None:
    """Every step agreed (a disagreement fails inside the run); enough of them, of every
    type, valid and refused."""
    total = sum(run.seen.values())
    kinds = {kind for kind, _ in run.seen}
    print(f"\ndifferential steps: {total}; by (type, reason): {sorted(run.seen.items())}")
    assert total >= STEPS
    for tag in ALL_TAGS:
        assert tag in kinds, f"type {tag:#x} never reached the verifier"
        assert (tag, 0) in run.seen, f"type {tag:#x} never succeeded"
    assert any(reason != 0 for _, reason in run.seen)
    # options in the mix: a tenth of the steps name a series; trades and fills on series,
    # the risk feed and settlement succeed
    print(f"steps on series: {sum(run.series.values())}; by (type, reason): {sorted(run.series.items())}")
    assert sum(run.series.values()) >= total // 10
    for tag in (0x03, 0x0C, 0x0D, 0x0E, 0x0F):  # Trade, Fill, RiskUpdate, SettleSeries, SettlePosition
        assert (tag, 0) in run.series, f"type {tag:#x} never succeeded on a series"


@pytest.mark.slow
def test_forged_witnesses_are_refused_or_harmless(run: Run) -> None:
    """FORGED steps with one witness field changed: each refused by a named witness check
    or, for a field the step does not read, the STF's own result; every type was tried
    and most forgeries were refused."""
    total = sum(run.forged.values())
    refused = sum(n for (_, _, outcome), n in run.forged.items() if outcome != "same")
    print(f"\nforged witnesses: {total}, refused {refused}; by outcome: "
          f"{sorted(Counter(o for (_, _, o) in run.forged.elements()).items())}")
    assert total >= FORGED
    assert {tag for tag, _, _ in run.forged} == ALL_TAGS
    assert {part for _, part, _ in run.forged} == {name for name, _ in WITNESS}
    assert refused >= total // 2


@pytest.mark.slow
def test_py_evm_agrees_too(py_evm_run: Run) -> None:
    """The same comparisons on our node's py-evm: it executes the verifier as anvil does."""
    assert sum(py_evm_run.seen.values()) >= PY_EVM_STEPS and sum(py_evm_run.forged.values()) >= PY_EVM_STEPS
    assert any(reason == 0 for _, reason in py_evm_run.seen)
