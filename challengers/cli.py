"""`rollup watch`: run a watcher from the command line.

    rollup watch --l1-rpc URL --deployment FILE --key HEX [--store PATH] [--poll SECONDS]
                 [--confirmations N] [--hostile]

`register(subparsers)` adds the subcommand to an argparse parser (rollup/cli.py's);
`python -m challengers watch ...` runs it without the rest of the `rollup` command.
SIGTERM and SIGINT stop the watcher after its current step; a SIGKILL at any moment is
safe too (the store records everything before it is acted upon).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def default_store(deployment_file: str, address: str) -> Path:
    """The default store: next to the deployment file, one per watcher key."""
    return Path(deployment_file).resolve().parent / f"watcher-{address[2:10].lower()}.sqlite3"


def cmd_watch(args: argparse.Namespace) -> int:
    from eth_account import Account

    from rollup.deploy import Deployment

    from .store import StoreMismatch
    from .watcher import Watcher

    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        logging.getLogger("challengers").setLevel(logging.INFO)  # progress is visible by default
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        deployment = Deployment.load(args.deployment)
        address = Account.from_key(args.key).address
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    store = Path(args.store) if args.store else default_store(args.deployment, address)
    try:
        watcher = Watcher(args.l1_rpc, deployment, args.key, store, poll_interval=args.poll,
                          hostile=args.hostile, confirmations=args.confirmations, workers=args.workers)
    except (StoreMismatch, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    print(f"rollup watch: {address} watching {deployment.contracts['Rollup']} via {args.l1_rpc}; "
          f"store {store}{' (HOSTILE)' if args.hostile else ''}", flush=True)
    try:
        watcher.run(stop)
    finally:
        watcher.close()
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `watch` subcommand to `subparsers` (from ArgumentParser.add_subparsers);
    it dispatches through `set_defaults(func=cmd_watch)`."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "watch", help="watch the rollup from L1 and prove fraud",
        description="Rebuild the rollup's state from L1 alone, re-execute every batch and "
                    "submit a fraud proof for the first wrong step of a bad batch.")
    p.add_argument("--l1-rpc", required=True, help="L1 JSON-RPC URL")
    p.add_argument("--deployment", required=True, help="the deployment file (rollup deploy --out)")
    p.add_argument("--key", required=True, help="private key of a funded L1 account (pays for proofs)")
    p.add_argument("--store", help="SQLite file of the watcher's record "
                                   "(default: watcher-<address>.sqlite3 next to the deployment file)")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between polls of L1 (default 1)")
    p.add_argument("--confirmations", type=int, default=0,
                   help="read L1 this many blocks behind its head (reorganisations deeper than it are "
                        "still followed; default 0, use a few on a real chain)")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                   help="processes recovering signatures ahead of re-execution (default: one per core "
                        "but the watcher's own; 0: none)")
    p.add_argument("--hostile", action="store_true",
                   help="misbehave (tests): also challenge a random step of every correct batch")
    p.set_defaults(func=cmd_watch)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m challengers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return int(args.func(args) or 0)
