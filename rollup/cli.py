"""`rollup`: the command line of the derivatives rollup.

    rollup l1       serve a py-evm L1 over JSON-RPC (the devnet's chain)
    rollup deploy   deploy the L1 contracts and write a deployment file
    rollup devnet   start a whole local devnet with one command
    rollup explorer serve the explorer web page of a deployment
    rollup propose  move the chain forward from L1 data alone when the sequencer is silent
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

DEFAULT_L1_PORT = 8545
DEFAULT_OPERATOR_PORT = 8550
DEFAULT_EXPLORER_PORT = 8560


def _stop_on_signals(callback: Any) -> None:
    def handler(signum: int, frame: Any) -> None:
        callback()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


# ---------------------------------------------------------------------- rollup l1


def cmd_l1(args: argparse.Namespace) -> int:
    from .l1.chain import DevChain
    from .l1.rpc import IntervalMiner, Node, serve

    chain = DevChain(chain_id=args.chain_id, auto_mine=not args.block_time)
    node = Node(chain)
    try:
        server = serve(node, args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    host, port = str(args.host), int(server.server_address[1])
    if args.block_time:
        IntervalMiner(node, args.block_time).start()
    print(f"rollup l1: py-evm chain {args.chain_id} (Prague rules)")
    print("Available accounts (10,000 ETH each); mnemonic: test test ... junk")
    for i, account in enumerate(chain.accounts):
        print(f"  ({i}) {account.address}  key 0x{bytes(account.key).hex()}")
    mining = f"every {args.block_time}s" if args.block_time else "on every transaction"
    print(f"Mining {mining}")
    print(f"Listening on http://{host}:{port}", flush=True)
    _stop_on_signals(lambda: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    print("rollup l1: stopped", flush=True)
    return 0


# ---------------------------------------------------------------------- rollup deploy


def cmd_deploy(args: argparse.Namespace) -> int:
    from .deploy import Params, deploy
    from .l1.client import L1, L1Error, default_dev_key

    l1 = L1(args.l1_rpc, args.key or default_dev_key())
    params = Params(challenge_window=args.challenge_window, inclusion_delay=args.inclusion_delay, bond=args.bond,
                    sequencer=args.sequencer, silence_period=args.silence_period, max_time_lag=args.max_time_lag,
                    reward_delay=args.reward_delay)
    if args.oracle_signers:
        params = replace(params, oracle_signers=tuple(args.oracle_signers.split(",")), oracle_quorum=args.oracle_quorum)
    try:
        deployment = deploy(l1, token=args.token, fund_dev_accounts=not args.no_dev_funds, params=params)
    except (L1Error, OSError, ValueError) as exc:
        print(f"error: deploy failed: {exc}", file=sys.stderr)
        return 1
    deployment.save(args.out)
    for name, address in deployment.contracts.items():
        print(f"{name}: {address}")
    print(f"deployment written to {args.out}")
    return 0


# ---------------------------------------------------------------------- rollup devnet


def wait_for_rpc(url: str, timeout: float, process: subprocess.Popen[Any] | None = None,
                 method: str = "eth_chainId") -> bool:
    """Poll `url` with `method` until it answers (False on timeout or if `process` died)."""
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=2) as response:
                if "result" in json.loads(response.read()):
                    return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return False


def wait_for_http(url: str, timeout: float, process: subprocess.Popen[Any] | None = None) -> bool:
    """Poll `url` with GET until it answers 200 (False on timeout or if `process` died)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return False


DEVNET_KEYS = {"deployer": 0, "operator": 9, "watcher-1": 8, "watcher-2": 7}
"""Which dev accounts (of the well-known mnemonic) play which part on the devnet; accounts
1 to 6 are left to users."""
DEVNET_NICENESS = {"l1": 5, "watcher": 10, "explorer": 10}
"""Scheduling priority (nice) of the devnet's processes that share the machine with the
operator but not its deadlines: the L1 node stands in for a chain elsewhere (a batch may
post a little later), a watcher has the whole challenge window. The operator answers
orders in milliseconds: on a small machine it is served first."""


def cmd_devnet(args: argparse.Namespace) -> int:
    from .deploy import Params, deploy
    from .l1.chain import dev_accounts
    from .l1.client import L1, L1Error
    from .listing import devnet_listing

    state_dir = Path(args.state_dir)
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for stale in list(state_dir.glob("*.db")) + list(state_dir.glob("*.db-*")):
        stale.unlink()  # a new devnet deploys new contracts: old stores belong to the old one
    keys = {role: "0x" + bytes(dev_accounts(10)[i].key).hex() for role, i in DEVNET_KEYS.items()}
    children: dict[str, subprocess.Popen[Any]] = {}
    stopping = threading.Event()
    _stop_on_signals(stopping.set)

    def start(name: str, argv: list[str], niceness: int = 0) -> subprocess.Popen[Any]:
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - lives as long as the child
        child = subprocess.Popen([sys.executable, "-m", "rollup", *argv], stdout=log, stderr=subprocess.STDOUT,
                                 preexec_fn=(lambda: os.nice(niceness)) if niceness else None)
        children[name] = child
        return child

    try:
        if args.l1_rpc:
            l1_url = args.l1_rpc
        else:
            l1_url = f"http://127.0.0.1:{args.l1_port}"
            start("l1", ["l1", "--port", str(args.l1_port), "--chain-id", str(args.chain_id)], DEVNET_NICENESS["l1"])
        if not wait_for_rpc(l1_url, 30, children.get("l1")):
            print(f"error: L1 at {l1_url} did not answer (see {logs}/l1.log)", file=sys.stderr)
            return 1
        print(f"L1 JSON-RPC:       {l1_url}", flush=True)
        try:
            deployer = L1(l1_url, args.key or keys["deployer"])
            now = int(deployer.w3.eth.get_block("latest")["timestamp"])
            deployment = deploy(deployer,
                                params=Params(challenge_window=args.challenge_window,
                                              inclusion_delay=args.inclusion_delay,
                                              sequencer=L1(l1_url, keys["operator"]).address,
                                              silence_period=args.silence_period),
                                listing=devnet_listing(now))
        except L1Error as exc:
            print(f"error: deploy failed: {exc}", file=sys.stderr)
            return 1
        deployment_file = state_dir / "deployment.json"
        deployment.save(deployment_file)
        operator_url = f"http://127.0.0.1:{args.operator_port}"
        explorer_url = f"http://127.0.0.1:{args.explorer_port}"
        (state_dir / "endpoints.json").write_text(json.dumps({"l1_rpc": l1_url, "operator_url": operator_url,
                                                              "explorer_url": explorer_url}) + "\n")
        operator = ["operator", "--l1-rpc", l1_url, "--deployment", str(deployment_file), "--key", keys["operator"],
                    "--port", str(args.operator_port), "--store", str(state_dir / "operator.db")]
        if args.fraud:
            operator += ["--fraud", args.fraud]
        start("operator", operator)
        # the explorer needs only L1 and the deployment file: it starts beside the operator
        start("explorer", ["explorer", "--deployment", str(deployment_file), "--operator-url", operator_url,
                           "--port", str(args.explorer_port)], DEVNET_NICENESS["explorer"])
        if not wait_for_rpc(operator_url, 60, children["operator"], method="status"):
            print(f"error: the operator did not start (see {logs}/operator.log)", file=sys.stderr)
            return 1
        start("oracle", ["oracle", "--operator-url", operator_url, "--deployment", str(deployment_file)])
        watchers = [name for name in ("watcher-1", "watcher-2")]
        if _watch_available():
            for name in watchers:
                start(name, ["watch", "--l1-rpc", l1_url, "--deployment", str(deployment_file), "--key", keys[name],
                             "--store", str(state_dir / f"{name}.db")], DEVNET_NICENESS["watcher"])
        else:
            watchers = []
        time.sleep(0.5)
        for name, child in children.items():
            if child.poll() is not None:
                print(f"error: {name} exited at start (see {logs}/{name}.log)", file=sys.stderr)
                return 1
        if not wait_for_http(explorer_url + "/api/deployment", 30, children["explorer"]):
            print(f"error: the explorer did not start (see {logs}/explorer.log)", file=sys.stderr)
            return 1
        print(f"Operator JSON-RPC: {operator_url}" + (f"  (FRAUD MODE: {args.fraud})" if args.fraud else ""))
        print(f"Explorer:          {explorer_url}  (open it in a browser)")
        for name, address in deployment.contracts.items():
            print(f"  {name + ':':<16} {address}")
        print(f"Challenge window:  {args.challenge_window} s; forced-inclusion delay {args.inclusion_delay} s; "
              f"others may propose after {args.silence_period} s of the operator's silence")
        print(f"Watchers:          {', '.join(watchers) or 'none'}; oracle feeder: {len(deployment.params['oracle_signers'])} signers")
        listed = deployment.listing()
        series = [info.symbol for info, m in listed if m.expiry]
        expiries = sorted({symbol.split("-")[1] for symbol in series})
        print(f"Markets:           {len(listed) - len(series)} perpetuals, {len(series)} option series "
              f"(expiring {', '.join(expiries)} 08:00 UTC; e.g. {series[0] if series else '-'})")
        print(f"Deployment file:   {deployment_file}; logs in {logs}/")
        print("Dev accounts for users (ETH and 1,000,000 tUSD each; well-known keys, devnet only):")
        for account in dev_accounts(7)[1:7]:
            print(f"  {account.address}  key 0x{bytes(account.key).hex()}")
        print("devnet ready", flush=True)
        while not stopping.wait(0.5):
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"error: {name} exited with {child.returncode} (see {logs}/{name}.log)", file=sys.stderr)
                    return 1
        return 0
    finally:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        print("devnet stopped", flush=True)


def _watch_available() -> bool:
    try:
        from challengers import cli as _  # noqa: F401
    except ImportError:
        return False
    return True


def cmd_explorer(args: argparse.Namespace) -> int:
    from .deploy import Deployment
    from .explorer.server import Explorer, serve

    try:
        deployment = Deployment.load(args.deployment)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot read the deployment file {args.deployment}: {exc}", file=sys.stderr)
        return 1
    explorer = Explorer(deployment, args.operator_url, args.l1_rpc)
    print(f"explorer: http://{args.host}:{args.port} (L1 {args.l1_rpc or deployment.l1_rpc}, "
          f"operator {args.operator_url})", flush=True)
    try:
        serve(explorer, args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_operator(args: argparse.Namespace) -> int:
    from .deploy import Deployment
    from .l1.client import L1, L1Error
    from .l1.rollup_client import RollupL1
    from .operator.edge import EdgeServer
    from .operator.fraud import CATALOG
    from .operator.sequencer import Sequencer
    from .operator.service import Collector, OperatorService
    from .operator.store import Store

    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        logging.getLogger("rollup.operator").setLevel(logging.INFO)  # batches posted, L1 followed
    deployment = Deployment.load(args.deployment)
    l1 = L1(args.l1_rpc or deployment.l1_rpc, args.key)
    chain = RollupL1(l1, deployment)
    if not chain.rollup.functions.bonds(l1.address).call():
        try:
            chain.bond()
        except L1Error as exc:
            print(f"error: cannot post the bond: {exc}", file=sys.stderr)
            return 1
    corrupt = None
    if args.fraud:
        corrupt = CATALOG[args.fraud]
    store = Store(args.store)
    sequencer = Sequencer(store, chain, max_txs=args.max_txs, max_age=args.max_age, heartbeat=args.heartbeat,
                          corrupt=corrupt, confirmations=args.confirmations)
    sequencer.recover()
    service = OperatorService(sequencer, funding_interval=args.funding_interval)
    service.collector = Collector()
    service.collector.start()  # the recovered state is frozen; full collections only when idle
    server = EdgeServer(service, args.host, args.port).start()
    print(f"operator: JSON-RPC on http://{args.host}:{args.port} (WebSocket at /ws), proposer {l1.address}, "
          f"head root 0x{sequencer.state.root().hex()}"
          + (f", FRAUD MODE {args.fraud}" if args.fraud else ""), flush=True)
    _stop_on_signals(lambda: service.stopping.set())
    try:
        service.run()
    finally:
        server.shutdown()
        store.close()
    return 0


def cmd_propose(args: argparse.Namespace) -> int:
    from .deploy import Deployment
    from .proposer import CannotPropose, Proposer

    deployment = Deployment.load(args.deployment)
    proposer = Proposer(args.l1_rpc or deployment.l1_rpc, deployment, args.key, confirmations=args.confirmations)
    if args.loop:
        stop = threading.Event()
        _stop_on_signals(stop.set)
        print(f"rollup propose: proposing as {proposer.chain.l1.address} every {args.interval}s when allowed",
              flush=True)
        proposer.run(args.interval, stop)
        return 0
    try:
        proposal = proposer.propose()
    except CannotPropose as exc:
        print(f"not proposed: {exc}", file=sys.stderr)
        return 1
    print(f"proposed batch {proposal.batch_id} at position {proposal.position}: {proposal.steps} steps, "
          f"{proposal.deposits} deposits, {proposal.forced} forced requests")
    return 0


def cmd_oracle(args: argparse.Namespace) -> int:
    from .deploy import Deployment
    from .oracle import Feeder
    from .sdk import Operator

    deployment = Deployment.load(args.deployment)
    feeder = Feeder(Operator(args.operator_url), deployment, prices=Path(args.prices) if args.prices else None)
    stop = threading.Event()
    _stop_on_signals(stop.set)
    print(f"oracle feeder: {len(feeder.keys)} signers, every {args.interval}s, to {args.operator_url}", flush=True)
    feeder.run(args.interval, stop)
    return 0


# ---------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from .deploy import Params

    parser = argparse.ArgumentParser(prog="rollup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("l1", help="serve a py-evm L1 chain over JSON-RPC")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_L1_PORT)
    p.add_argument("--chain-id", type=int, default=31337)
    p.add_argument("--block-time", type=float, default=0.0,
                   help="seconds between blocks (default: mine on every transaction)")
    p.set_defaults(func=cmd_l1)

    p = sub.add_parser("deploy", help="deploy the L1 contracts and write a deployment file")
    p.add_argument("--l1-rpc", required=True, help="L1 JSON-RPC URL")
    p.add_argument("--key", help="deployer private key (default: dev account 0)")
    p.add_argument("--out", default="deployment.json", help="deployment file to write")
    p.add_argument("--token", help="use this existing ERC-20 as collateral instead of deploying one")
    p.add_argument("--no-dev-funds", action="store_true",
                   help="do not mint test collateral to the node's dev accounts")
    p.add_argument("--challenge-window", type=int, default=60, help="seconds (use days on a real chain)")
    p.add_argument("--inclusion-delay", type=int, default=120, help="seconds to include a forced request or deposit")
    p.add_argument("--bond", type=int, default=10**18, help="proposer bond in wei")
    p.add_argument("--sequencer", help="the address that may always propose (default: the deployer)")
    p.add_argument("--silence-period", type=int, default=Params.silence_period,
                   help="seconds without a sequencer batch after which anyone bonded may propose (days on a real chain)")
    p.add_argument("--max-time-lag", type=int, default=Params.max_time_lag,
                   help="seconds a batch's timestamp may lag its L1 block")
    p.add_argument("--reward-delay", type=int, default=Params.reward_delay,
                   help="seconds a fraud proof's reward is held (an older commitment may take it meanwhile)")
    p.add_argument("--oracle-signers", help="comma-separated oracle committee (default: the devnet's keys)")
    p.add_argument("--oracle-quorum", type=int, default=2)
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("devnet", help="start a local devnet: L1, contracts, operator, oracle feeder, two watchers")
    p.add_argument("--state-dir", default=".devnet", help="deployment file, stores and logs")
    p.add_argument("--l1-port", type=int, default=DEFAULT_L1_PORT)
    p.add_argument("--l1-rpc", help="use this external L1 instead of starting one")
    p.add_argument("--operator-port", type=int, default=DEFAULT_OPERATOR_PORT)
    p.add_argument("--explorer-port", type=int, default=DEFAULT_EXPLORER_PORT)
    p.add_argument("--chain-id", type=int, default=31337)
    p.add_argument("--challenge-window", type=int, default=30, help="seconds (days on a real chain)")
    p.add_argument("--inclusion-delay", type=int, default=120, help="seconds to include a forced request")
    p.add_argument("--silence-period", type=int, default=120,
                   help="seconds of the operator's silence after which anyone bonded may propose (rollup propose)")
    p.add_argument("--fraud", help="start with a fraudulent operator (a kind of `rollup operator --fraud`)")
    p.add_argument("--key", help="deployer key (default: dev account 0)")
    p.set_defaults(func=cmd_devnet)

    from .operator.fraud import CATALOG

    p = sub.add_parser("operator", help="run the operator: order books, sequencer, batches, JSON-RPC API")
    p.add_argument("--l1-rpc", help="L1 JSON-RPC URL (default: the deployment file's)")
    p.add_argument("--deployment", default=".devnet/deployment.json", help="deployment file")
    p.add_argument("--key", required=True, help="proposer private key (bonded on first start)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_OPERATOR_PORT)
    p.add_argument("--store", default=".devnet/operator.db", help="SQLite store")
    p.add_argument("--max-txs", type=int, default=256, help="transactions per batch at most")
    p.add_argument("--max-age", type=float, default=2.0, help="seconds before a batch with user transactions is cut")
    p.add_argument("--heartbeat", type=float, default=30.0,
                   help="seconds between batches when idle (at most a third of the silence period)")
    p.add_argument("--confirmations", type=int, default=0,
                   help="take L1 deposits, forced requests and other proposers' batches only this many blocks deep")
    p.add_argument("--fraud", choices=sorted(CATALOG), help="post one fraudulent batch of this kind (tests, demos)")
    p.add_argument("--funding-interval", type=int, default=60, help="seconds of rollup time between funding ticks")
    p.set_defaults(func=cmd_operator)

    p = sub.add_parser("propose", help="move the chain forward from L1 data alone (after the sequencer's silence)")
    p.add_argument("--l1-rpc", help="L1 JSON-RPC URL (default: the deployment file's)")
    p.add_argument("--deployment", default=".devnet/deployment.json", help="deployment file")
    p.add_argument("--key", required=True, help="private key of a funded L1 account (bonded on first use)")
    p.add_argument("--confirmations", type=int, default=0, help="take L1 queue entries this many blocks deep")
    p.add_argument("--loop", action="store_true", help="keep proposing whenever allowed")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between attempts with --loop")
    p.set_defaults(func=cmd_propose)

    p = sub.add_parser("oracle", help="devnet oracle feeder: signed prices (a random walk or a file)")
    p.add_argument("--operator-url", default=f"http://127.0.0.1:{DEFAULT_OPERATOR_PORT}")
    p.add_argument("--deployment", default=".devnet/deployment.json")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between rounds")
    p.add_argument("--prices", help="JSON-lines price file to replay instead of the random walk")
    p.set_defaults(func=cmd_oracle)

    p = sub.add_parser("explorer", help="serve the explorer web page: batches, fraud proofs, markets, accounts")
    p.add_argument("--deployment", default=".devnet/deployment.json", help="deployment file")
    p.add_argument("--l1-rpc", help="L1 JSON-RPC URL (default: the deployment file's)")
    p.add_argument("--operator-url", default=f"http://127.0.0.1:{DEFAULT_OPERATOR_PORT}",
                   help="the operator's API (books, accounts, prices); the L1 pages work without it")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_EXPLORER_PORT)
    p.set_defaults(func=cmd_explorer)

    from .client import register as register_client

    register_client(sub)
    if _watch_available():
        from challengers.cli import register as register_watch

        register_watch(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
