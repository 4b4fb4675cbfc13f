"""Every keccak of our processes goes through the C backend (safe-pysha3), not eth-hash's
default pick (pycryptodome): py-evm, web3, eth-account and eth-utils share one hasher."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import {module}
import eth_utils
from eth_hash.auto import keccak
from rollup.stf.hashing import keccak_backend
assert eth_utils.keccak(b"") == bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
print(keccak_backend())
"""


@pytest.mark.parametrize("module", ["rollup.cli", "challengers.cli", "rollup.l1.rpc", "rollup.sdk"])
def test_entry_points_hash_with_the_c_backend(module: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ETH_HASH_BACKEND"}
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-1] == "eth_hash.backends.pysha3"


def test_a_chosen_backend_is_respected() -> None:
    env = {**os.environ, "ETH_HASH_BACKEND": "pycryptodome"}
    out = subprocess.run([sys.executable, "-c", PROBE.format(module="rollup.cli")], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-1] == "eth_hash.backends.pycryptodome"
