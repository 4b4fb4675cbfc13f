"""Signature prefetch: `signatures` lists exactly what the rules recover, and a batch
re-executed with its signatures recovered on worker processes has the same verdict and
state, valid or not."""

from __future__ import annotations

from typing import Any

import pytest

from rollup.l1.batches import INVALID, VALID, Calldata, verify_batch
from rollup.stf import apply, signing
from rollup.stf.prefetch import Recoverer, signatures
from tests.scenarios import every_type, world_factory

fresh_world = world_factory()


def test_the_rules_recover_nothing_prefetch_did_not_list(monkeypatch: pytest.MonkeyPatch) -> None:
    world = fresh_world()
    seen: list[tuple[Any, bytes]] = []
    txs = every_type(world, lambda w, tx: seen.append((w.context, tx)))
    assert len(txs) == len(seen)
    replay = fresh_world()
    calls: list[tuple[bytes, bytes]] = []
    real = signing._recover

    def counting(digest: bytes, signature: bytes) -> bytes | None:
        calls.append((digest, signature))
        return real(digest, signature)

    monkeypatch.setattr(signing, "_recover", counting)
    listed = 0
    for context, tx in seen:
        signing._recovered.clear()
        pairs = signatures(tx, context.domain)
        signing.remember_all([(digest + signature, real(digest, signature)) for digest, signature in pairs])
        listed += len(pairs)
        calls.clear()
        assert apply(replay.state, tx, context).ok
        assert calls == [], tx[0]  # every signature it checked was listed
    assert listed >= 6  # trades (two each), a withdrawal, a cancel, oracle reports
    assert replay.state.root() == world.state.root()


@pytest.mark.parametrize("forge", [None, 3])
def test_a_batch_judged_with_workers_is_judged_alike(forge: int | None) -> None:
    world = fresh_world()
    parent = world.state.copy()
    contexts: list[Any] = []
    txs = every_type(world, lambda w, tx: contexts.append(w.context))
    # a batch: the first transactions, which share one context (two trades, a fee sweep,
    # a withdrawal, a cancel: six signatures)
    txs = txs[:5]
    context = contexts[0]
    assert all(c == context for c in contexts[:5])
    replay = parent.copy()
    roots = []
    for tx in txs:
        assert apply(replay, tx, context).ok
        roots.append(replay.root())
    if forge is not None:  # a signature flipped: that step's root is the old one
        flipped = bytearray(txs[forge])
        flipped[-5] ^= 1
        txs[forge] = bytes(flipped)
    data = Calldata(list(txs), roots)
    signing._recovered.clear()
    alone = verify_batch(parent, data, context)
    signing._recovered.clear()
    recoverer = Recoverer(2)  # two processes, whatever the machine
    try:
        together = verify_batch(parent, data, context, recoverer)
        assert len(signing._recovered) > 0
    finally:
        recoverer.close()
    assert alone[0] == together[0]
    assert alone[0].kind == (VALID if forge is None else INVALID)
    assert forge is None or alone[0].step == forge
    if forge is None:
        assert alone[1] is not None and together[1] is not None and alone[1].root() == together[1].root()


ORPHAN = """
import os, signal
from multiprocessing import forkserver
from rollup.stf.prefetch import Recoverer
if __name__ == "__main__":
    recoverer = Recoverer(2)
    list(recoverer._pool.map(abs, range(8)))  # the workers are up
    pids = [*recoverer._pool._processes, forkserver._forkserver._forkserver_pid]
    print(" ".join(map(str, pids)), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_process_leaves_no_worker_behind(tmp_path: Any) -> None:
    """kill -9 of a process using a Recoverer (a watcher, say): its worker processes and
    their fork server end too, instead of living on as orphans."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import rollup

    script, out = tmp_path / "orphan.py", tmp_path / "orphan.out"
    script.write_text(ORPHAN)
    env = {**os.environ, "PYTHONPATH": str(Path(rollup.__file__).parent.parent)}  # this checkout's rollup
    with open(out, "w") as stdout:  # a file, not a pipe: its readers would wait for the orphans
        done = subprocess.run([sys.executable, str(script)], stdout=stdout, stderr=subprocess.STDOUT, env=env,
                              timeout=120)
    assert done.returncode == -9, out.read_text()
    pids = [int(p) for p in out.read_text().split()[:3]]
    assert len(pids) == 3

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # a zombie (exited, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1].split()[0] != "Z"

    deadline = time.monotonic() + 15
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if alive(p)]
        time.sleep(0.2)
