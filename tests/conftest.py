"""Shared fixtures: real L1 nodes over real JSON-RPC (our py-evm node and anvil)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from hypothesis import settings
from web3 import Web3

from rollup import contracts
from rollup.cli import wait_for_rpc
from rollup.deploy import Deployment, Params, deploy
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.world import World, make_world
from rollup.listing import devnet_listing

ROOT = Path(__file__).resolve().parent.parent
ANVIL_PACKAGE = "@foundry-rs/anvil-linux-amd64@1.7.1"
TOOLS = ROOT / ".tools"
TEST_CONTRACTS = ROOT / "tests" / "contracts"
"""The test-only contracts (harnesses exposing a module, a hostile token): `l1_contracts/`
holds only what deploys."""

contracts.add_source_dir(TEST_CONTRACTS)

# Hypothesis: CI runs the short mode; `ROLLUP_LONG=1` runs the long one.
settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True)
settings.register_profile("long", max_examples=10_000, deadline=None, print_blob=True)
settings.load_profile("long" if os.environ.get("ROLLUP_LONG") else "ci")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A child process with its log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self, timeout: float = 10) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_rollup_l1(tmp: Path, *extra: str) -> tuple[str, Process]:
    port = free_port()
    proc = Process(
        [sys.executable, "-m", "rollup", "l1", "--port", str(port), *extra], tmp / f"l1-{port}.log"
    )
    url = f"http://127.0.0.1:{port}"
    if not wait_for_rpc(url, 30, proc.popen):
        proc.stop()
        raise RuntimeError(f"rollup l1 did not start:\n{proc.log()}")
    return url, proc


def anvil_binary() -> Path | None:
    """The anvil binary from npm, installed under .tools/ on first use (None without npm)."""
    found = shutil.which("anvil")
    if found:
        return Path(found)
    binary = TOOLS / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        return None
    TOOLS.mkdir(exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(TOOLS), "--no-audit", "--no-fund", ANVIL_PACKAGE],
        check=True, capture_output=True, timeout=600,
    )
    return binary if binary.exists() else None


def start_anvil(tmp: Path, *extra: str) -> tuple[str, Process]:
    binary = anvil_binary()
    if binary is None:
        pytest.skip("anvil unavailable: npm is not installed, so @foundry-rs/anvil-linux-amd64 cannot be fetched")
    port = free_port()
    proc = Process([str(binary), "--host", "127.0.0.1", "--port", str(port), *extra], tmp / f"anvil-{port}.log")
    url = f"http://127.0.0.1:{port}"
    if not wait_for_rpc(url, 30, proc.popen):
        proc.stop()
        raise RuntimeError(f"anvil did not start:\n{proc.log()}")
    return url, proc


@pytest.fixture(scope="session")
def l1_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `rollup l1` node shared by the session (tests isolate themselves with snapshots)."""
    url, proc = start_rollup_l1(tmp_path_factory.mktemp("l1"))
    yield url
    proc.stop()


@pytest.fixture(scope="session")
def anvil_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, proc = start_anvil(tmp_path_factory.mktemp("anvil"))
    yield url
    proc.stop()


@pytest.fixture(params=["rollup-l1", "anvil"])
def any_l1(request: pytest.FixtureRequest) -> str:
    """Each L1 backend in turn: the same test runs against our node and against anvil."""
    if request.param == "anvil":
        return str(request.getfixturevalue("anvil_url"))
    return str(request.getfixturevalue("l1_url"))


# ---------------------------------------------------------------------- the rollup on a real L1

DEV_KEYS = tuple(bytes(a.key) for a in dev_accounts(10))
"""The dev accounts' keys: 0 deploys (and owns the insurance fund), the rest are at hand."""


def params_for(sequencer_key: bytes, **overrides: Any) -> Params:
    """Deployment parameters of a test: `sequencer_key`'s address is the sequencer; the
    rest are Params' defaults unless given."""
    return Params(sequencer=Account.from_key(sequencer_key).address, **overrides)


def deploy_rollup(l1_url: str, challenge_window: int = 3_600, inclusion_delay: int = 7_200) -> Deployment:
    """A fresh deployment of the rollup's contracts by dev account 0, sequenced by dev
    account 1 (the world's proposer), listing the devnet's markets: the perpetuals and
    their option series (rollup/listing.py), expiring a day and a week from the L1's time."""
    l1 = L1(l1_url, DEV_KEYS[0])
    now = int(l1.w3.eth.get_block("latest")["timestamp"])
    return deploy(l1, params=params_for(DEV_KEYS[1], challenge_window=challenge_window,
                                        inclusion_delay=inclusion_delay), listing=devnet_listing(now))


@contextmanager
def l1_snapshot(l1_url: str) -> Iterator[Web3]:
    """Everything done on the L1 inside is undone after."""
    w3 = Web3(Web3.HTTPProvider(l1_url))
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    try:
        yield w3
    finally:
        w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def deployment(l1_url: str) -> Deployment:
    """The rollup deployed once per test module (long window and delay)."""
    return deploy_rollup(l1_url)


@pytest.fixture
def world(l1_url: str, deployment: Deployment) -> Iterator[World]:
    """A rollup world (rollup/l1/world.py) for one test, undone after it: proposer dev 1,
    users dev 3-6."""
    with l1_snapshot(l1_url):
        yield make_world(l1_url, deployment, DEV_KEYS[1], DEV_KEYS[3:7])


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something true; fail after `timeout` seconds.
    Only "not yet" counts as not yet: a refused connection (the process is starting) and
    the operator's "not found" (an account before its deposit is credited). Any other
    error is re-raised at once."""
    from rollup.sdk import NOT_FOUND, ApiError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except ApiError as exc:
            if exc.code != NOT_FOUND:
                raise
            value = None
        except OSError as exc:  # urllib wraps a refused connection in URLError
            if not isinstance(exc, ConnectionError) and not isinstance(getattr(exc, "reason", None), ConnectionError):
                raise
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_operator(l1_url: str, deployment_file: Path, key: bytes, port: int, store: Path, log: Path,
                   *extra: str) -> Process:
    """`rollup operator` as a real process (fast batches: cut 0.3 s after a user transaction)."""
    return Process([sys.executable, "-m", "rollup", "operator", "--l1-rpc", l1_url, "--deployment",
                    str(deployment_file), "--key", "0x" + key.hex(), "--port", str(port), "--store", str(store),
                    "--max-age", "0.3", "--heartbeat", "3", *extra], log)


@contextmanager
def devnet_operator(l1_url: str, tmp: Path, challenge_window: int = 30) -> Iterator[dict[str, Any]]:
    """Inside an L1 snapshot: the rollup deployed on the devnet's listing (its perpetuals and
    option series) by dev account 0, its file and endpoints.json written to `tmp` as the
    devnet writes them, and `rollup operator` (dev account 1) running on it. Yields
    {deployment, path, operator, url, w3}; the operator's log tail is printed after."""
    from rollup.sdk import Operator

    with l1_snapshot(l1_url) as w3:
        now = int(w3.eth.get_block("latest")["timestamp"])
        deployment = deploy(L1(l1_url, DEV_KEYS[0]), params=params_for(DEV_KEYS[1], challenge_window=challenge_window),
                            listing=devnet_listing(now))
        path = tmp / "deployment.json"
        deployment.save(path)
        url = f"http://127.0.0.1:{free_port()}"
        (tmp / "endpoints.json").write_text(json.dumps({"l1_rpc": l1_url, "operator_url": url}))
        proc = start_operator(l1_url, path, DEV_KEYS[1], int(url.rsplit(":", 1)[1]), tmp / "op.db",
                              tmp / "operator.log")
        operator = Operator(url)
        try:
            wait_for(lambda: operator.call("status")["time"], 60, "the operator")
            yield {"deployment": deployment, "path": path, "operator": operator, "url": url, "w3": w3}
        finally:
            proc.stop()
            print(proc.log()[-3000:])


# ---------------------------------------------------------------------- the L1 verifier beside the STF


@pytest.fixture(scope="session")
def verifier(anvil_url: str) -> Iterator[Any]:
    """The verifier contracts deployed on the session's anvil (tests/verifier_harness.py):
    the long differential runs need an EVM faster than py-evm's (about 150 ms per step)."""
    from tests.verifier_harness import EvmVerifier

    yield EvmVerifier(L1(anvil_url, DEV_KEYS[0]))


@pytest.fixture(scope="session")
def py_evm_verifier(l1_url: str) -> Iterator[Any]:
    """The verifier contracts on the session's `rollup l1` node (py-evm)."""
    from tests.verifier_harness import EvmVerifier

    yield EvmVerifier(L1(l1_url, DEV_KEYS[0]))


@pytest.fixture(scope="session")
def fresh_world(verifier: Any) -> Any:
    """Fresh copies of one funded STF world signed for the verifier's domain."""
    from tests.scenarios import world_factory

    return world_factory(verifier.config)
