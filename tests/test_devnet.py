"""`rollup devnet`: one command starts a local L1, deploys, starts the operator, the oracle
feeder and two watchers, writes its deployment and endpoints files, prints `ready` (within
20 s) once every component serves, and stops everything cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from web3 import Web3

from rollup.cli import build_parser
from rollup.deploy import Deployment
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_devnet_starts_deploys_and_stops(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "devnet"
    started = time.monotonic()
    operator_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rollup", "devnet", "--state-dir", str(state), "--l1-port", str(port),
         "--operator-port", str(operator_port), "--challenge-window", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "ready" in line:
                break
        assert any("ready" in line for line in lines), "".join(lines)
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        assert w3.eth.chain_id == 31337
        assert time.monotonic() - started < 20, "devnet took over 20 s to serve"
        deployment = Deployment.load(state / "deployment.json")
        assert deployment.l1_rpc == f"http://127.0.0.1:{port}"
        for address in deployment.contracts.values():
            assert len(w3.eth.get_code(Web3.to_checksum_address(address))) > 0
        for name in ("l1", "operator", "oracle", "watcher-1", "watcher-2", "explorer"):
            assert (state / "logs" / f"{name}.log").exists(), name
        endpoints = json.loads((state / "endpoints.json").read_text())
        assert endpoints["operator_url"] == f"http://127.0.0.1:{operator_port}"
        from rollup.sdk import Operator

        status = Operator(endpoints["operator_url"]).call("status")
        assert status["chain_id"] == 31337 and status["contracts"] == deployment.contracts
        assert deployment.params["challenge_window"] == 10
        # the processes without the operator's deadlines yield the CPU to it (DEVNET_NICENESS)
        niceness = []
        for child in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split():
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            niceness.append((argv[argv.index(b"rollup") + 1].decode(), int(fields[16])))  # field 19: nice
        assert sorted(niceness) == [("explorer", 10), ("l1", 5), ("operator", 0), ("oracle", 0), ("watch", 10), ("watch", 10)], niceness
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "devnet stopped" in rest
    # the children are gone too
    from rollup.cli import wait_for_rpc

    assert not wait_for_rpc(f"http://127.0.0.1:{port}", timeout=1)
    assert not wait_for_rpc(f"http://127.0.0.1:{operator_port}", timeout=1, method="status")


def test_docker_compose_describes_the_services() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"l1", "deploy", "operator", "oracle", "watcher-1", "watcher-2"} <= set(services)
    assert "8550:8550" in [str(p) for p in services["operator"]["ports"]]
    assert services["operator"]["depends_on"]["deploy"]["condition"] == "service_completed_successfully"
    l1 = services["l1"]
    assert "8545:8545" in [str(p) for p in l1["ports"]]
    dockerfile = (ROOT / l1["build"]["dockerfile"]).read_text()
    assert 'ENTRYPOINT ["rollup"]' in dockerfile
    # every service's command is a valid `rollup` invocation, checked by our own parser
    parser = build_parser()
    l1_args = parser.parse_args(l1["command"])
    assert l1_args.command == "l1" and l1_args.host == "0.0.0.0" and l1_args.port == 8545
    for name, service in services.items():
        assert service["build"]["dockerfile"] == "Dockerfile"
        args = parser.parse_args(service["command"])
        if args.command in ("operator", "watch"):
            assert args.deployment == "/devnet/deployment.json" and "devnet:/devnet" in service["volumes"]
        depends = service.get("depends_on", {})
        for dependency in depends:
            assert dependency in services, f"{name} depends on unknown service {dependency}"
    json.dumps(compose)  # plain data only


def test_devnet_on_an_external_l1(l1_url: str, tmp_path: Path) -> None:
    """`--l1-rpc URL`: no L1 child; the rest of the devnet runs on the given node, which
    keeps running after the devnet stops."""
    state = tmp_path / "devnet"
    operator_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rollup", "devnet", "--state-dir", str(state), "--l1-rpc", l1_url,
         "--operator-port", str(operator_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "ready" in line:
                break
        assert any("ready" in line for line in lines), "".join(lines)
        assert not (state / "logs" / "l1.log").exists()
        assert Deployment.load(state / "deployment.json").l1_rpc == l1_url
        from rollup.sdk import Operator

        assert Operator(f"http://127.0.0.1:{operator_port}").call("status")["chain_id"] == 31337
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert Web3(Web3.HTTPProvider(l1_url)).eth.chain_id == 31337
