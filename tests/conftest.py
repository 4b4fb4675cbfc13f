"""Shared fixtures: real L1 nodes over real JSON-RPC (our py-evm node and anvil)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from rollup.cli import wait_for_rpc

ROOT = Path(__file__).resolve().parent.parent
ANVIL_PACKAGE = "@foundry-rs/anvil-linux-amd64@1.7.1"
TOOLS = ROOT / ".tools"

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

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
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


def start_anvil(tmp: Path) -> tuple[str, Process]:
    binary = anvil_binary()
    if binary is None:
        pytest.skip("anvil unavailable: npm is not installed, so @foundry-rs/anvil-linux-amd64 cannot be fetched")
    port = free_port()
    proc = Process([str(binary), "--host", "127.0.0.1", "--port", str(port)], tmp / f"anvil-{port}.log")
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
