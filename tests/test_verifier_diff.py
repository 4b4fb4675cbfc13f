"""Differential equivalence of the L1 verifier and the Python STF: the same
(pre-state, transaction) gives the same reason, the same `applied` and the same post-state
root, on valid, invalid and malformed transactions of every type (hypothesis scenarios,
plus random and mutated bytes). CI's short mode runs at least 1,000 steps; ROLLUP_LONG=1
runs at least 10,000."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scenarios import build, scenarios
from tests.verifier_harness import EvmVerifier

LONG = bool(os.environ.get("ROLLUP_LONG"))
STEPS = 10_000 if LONG else 1_000
SCENARIOS = 2_000 if LONG else 200

seen: Counter[tuple[int, int]] = Counter()


@settings(max_examples=SCENARIOS, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(scenario=scenarios, junk=st.binary(max_size=40))
def test_verifier_agrees_with_the_stf(verifier: EvmVerifier, fresh_world: Any,
                                      scenario: list[tuple[Any, ...]], junk: bytes) -> None:
    if sum(seen.values()) >= STEPS:
        return
    world = fresh_world()
    history: list[bytes] = []
    for action in scenario:
        built = build(world, action, history)
        for tx in built if isinstance(built, list) else [built]:
            outcome = verifier.compare(world.state, tx, world.context)
            if outcome is not None:
                seen[outcome] += 1
            world.apply(tx)
            history.append(tx)
    outcome = verifier.compare(world.state, junk, world.context)
    if outcome is not None:
        seen[outcome] += 1


def test_coverage_of_the_differential_run(verifier: EvmVerifier) -> None:
    """Enough steps, every deployed type, both valid and invalid outcomes."""
    total = sum(seen.values())
    kinds = {kind for kind, _ in seen}
    print(f"\ndifferential steps: {total}; by (type, reason): {sorted(seen.items())}; skipped: {dict(verifier.skipped)}")
    assert total >= STEPS
    for tag in verifier.present:
        assert tag in kinds, f"type {tag:#x} never reached the verifier"
    assert any(reason == 0 for _, reason in seen) and any(reason != 0 for _, reason in seen)
