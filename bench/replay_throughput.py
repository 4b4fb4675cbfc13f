"""Replay throughput: a watcher's re-execution of a batch history read from L1, on one core
and with signatures recovered on every core (rollup.stf.prefetch).

Starts our py-evm node (or takes `--l1-rpc`), deploys, funds four traders and posts
`--batches` batches of `--trades` trades each on a realistic mix (each maker order filled
by four takers, sides alternating). Then reads the whole history back from L1 (events
and calldata, as a watcher does) and re-executes it from genesis with `verify_batch`:
with no worker process, and with `--workers` processes recovering signatures beside it
(`--repeat` times each, alternating; the medians count); every batch must come out valid
with the same final root.

    python bench/replay_throughput.py [--batches 40] [--trades 200] [--workers N]

The last line is one JSON object: trades_per_s (all cores), trades_per_s_one_core,
speedup, cores, trades, fetch_s.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from web3 import Web3

from rollup.cli import wait_for_rpc
from rollup.deploy import Params, deploy
from rollup.l1.batches import VALID, Calldata, batch_calldata, verify_batch
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.inbox import Inbox
from rollup.l1.rollup_client import config_of
from rollup.l1.world import World, make_world
from rollup.stf import apply, builders, signing
from rollup.stf.fork import Context
from rollup.stf.genesis import genesis_state
from rollup.stf.prefetch import Recoverer
from rollup.stf.state import State
from rollup.stf.transactions import ORDER_NO_EXPIRY, AdvanceTime, Order

KEYS = [bytes(a.key) for a in dev_accounts(8)]
DEPLOYER, PROPOSER, USERS = KEYS[0], KEYS[1], KEYS[3:7]
PRICE = 300_000
FILLS_PER_MAKER = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post_history(world: World, batches: int, trades: int) -> int:
    """Post `batches` batches of `trades` trades; the number of trades posted."""
    sign_context = Context(config_of(world.deployment), 0)
    users = world.users
    posted = 0
    round_ = 0
    for _ in range(batches):
        txs = [AdvanceTime(max(world.now(), world.state.globals.time + 1)).encode()]
        while len(txs) - 1 < trades:
            maker = users[round_ % len(users)]
            maker_buys = round_ % 2 == 0
            round_ += 1
            order = Order(maker.account, 0, maker_buys, FILLS_PER_MAKER, PRICE, 1_000, maker.next_nonce(), ORDER_NO_EXPIRY)
            maker_signature = builders.sign_order(order, maker.key, sign_context)
            for k in range(FILLS_PER_MAKER):
                taker = users[(round_ + k) % len(users)]
                if taker is maker:
                    taker = users[(round_ + k + 1) % len(users)]
                taken = Order(taker.account, 0, not maker_buys, 1, PRICE, 1_000, taker.next_nonce(), ORDER_NO_EXPIRY)
                if k == 0:  # the first fill posts the maker order; the later ones name it
                    trade = builders.trade(order, maker.key, taken, taker.key, 1, sign_context, 200, 500)
                    assert trade.maker_signature == maker_signature
                    txs.append(trade.encode())
                else:
                    txs.append(builders.fill(order, taken, taker.key, 1, sign_context, 200, 500).encode())
        txs = txs[:trades + 1]
        timestamp = int.from_bytes(txs[0][1:], "big")
        context = world.context(timestamp)
        roots = []
        for tx in txs:
            receipt = apply(world.state, tx, context)
            assert receipt.ok, receipt
            roots.append(world.state.root())
        world.proposer.submit(txs, roots, timestamp)
        posted += len(txs) - 1
    return posted


def fetch_history(url: str, world: World) -> list[tuple[Calldata, int, int, int]]:
    """Every batch as a watcher reads it: (calldata, timestamp, deposit count, forced count)."""
    w3 = Web3(Web3.HTTPProvider(url))
    rollup = world.proposer.rollup
    out = []
    for event in rollup.events.BatchSubmitted().get_logs(from_block=world.deployment.deploy_block):
        a = event["args"]
        data = batch_calldata(w3, rollup, Web3.to_hex(event["transactionHash"]), int(a["position"]),
                              int(a["timestamp"]), int(a["steps"]), bytes(a["step_root"]))
        out.append((data, int(a["timestamp"]), int(a["deposit_count"]), int(a["forced_count"])))
    return out


def replay(history: list[tuple[Calldata, int, int, int]], genesis: State, inbox: Inbox, config: Any,
           workers: int) -> tuple[float, bytes]:
    """Seconds to re-execute the history from genesis (signature memo emptied first), and
    the final root."""
    signing._recovered.clear()
    recoverer = Recoverer(workers) if workers > 0 else None
    if recoverer is not None:
        assert recoverer._pool is not None
        list(recoverer._pool.map(abs, range(workers * 4)))  # the workers are up
    contexts = [Context(config, ts, *inbox.heads(d, f)) for _, ts, d, f in history]
    state = genesis.copy()
    start = time.perf_counter()
    # as a watcher catching up does: the next batch's signatures go to the workers
    # before this one is re-executed
    ahead = recoverer.start(history[0][0].txs, contexts[0]) if recoverer is not None else []
    for k, ((data, _, _, _), context) in enumerate(zip(history, contexts, strict=True)):
        prefetches = ahead
        if recoverer is not None and k + 1 < len(history):
            ahead = recoverer.start(history[k + 1][0].txs, contexts[k + 1])
        verdict, after = verify_batch(state, data, context, prefetches=prefetches)
        assert verdict.kind == VALID and after is not None, verdict.describe()
        state = after
    elapsed = time.perf_counter() - start
    if recoverer is not None:
        recoverer.close()
    return elapsed, state.root()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--l1-rpc", help="an L1 node (default: start ours)")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--trades", type=int, default=200, help="per batch (at most 210: 49,152 bytes)")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="recovering processes beside the replaying one (default: cores - 1)")
    parser.add_argument("--repeat", type=int, default=3, help="replays of each kind (the median counts)")
    args = parser.parse_args()
    node = None
    try:
        if args.l1_rpc:
            url = args.l1_rpc
        else:
            port = free_port()
            log = open(Path(tempfile.mkdtemp(prefix="bench-replay-")) / "l1.log", "w")  # noqa: SIM115
            node = subprocess.Popen([sys.executable, "-m", "rollup", "l1", "--port", str(port)], stdout=log,
                                    stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            if not wait_for_rpc(url, 30, node):
                raise SystemExit("the L1 node did not start")
        deployment = deploy(L1(url, DEPLOYER), params=Params(challenge_window=86_400, inclusion_delay=86_400,
                                                             max_time_lag=86_400, silence_period=86_400,
                                                             sequencer=L1(url, PROPOSER).address))
        world = make_world(url, deployment, PROPOSER, USERS, deposit=10**11)
        t0 = time.perf_counter()
        trades = post_history(world, args.batches, args.trades)
        print(f"posted {args.batches} batches, {trades} trades, in {time.perf_counter() - t0:.1f} s", flush=True)
        t0 = time.perf_counter()
        history = fetch_history(url, world)
        fetch_s = time.perf_counter() - t0
        inbox = Inbox(world.proposer.bridge, deployment.deploy_block)
        inbox.sync()
        owner = bytes.fromhex(deployment.params["insurance_owner"][2:])
        genesis = genesis_state(owner)
        config = config_of(deployment)
        ones, manys = [], []
        for _ in range(args.repeat):  # alternating, the median of each
            one, root_one = replay(history, genesis, inbox, config, 0)
            many, root_many = replay(history, genesis, inbox, config, args.workers)
            ones.append(one)
            manys.append(many)
        one, many = sorted(ones)[len(ones) // 2], sorted(manys)[len(manys) // 2]
        assert root_one == root_many == world.state.root()
        figures = {"bench": "replay_throughput", "batches": len(history), "trades": trades,
                   "cores": args.workers + 1, "fetch_s": round(fetch_s, 2),
                   "trades_per_s_one_core": round(trades / one, 1), "trades_per_s": round(trades / many, 1),
                   "speedup": round(one / many, 2)}
        print(f"read from L1 in {fetch_s:.1f} s; replay: {figures['trades_per_s_one_core']} trades/s on one core, "
              f"{figures['trades_per_s']} with {args.workers} recovering beside ({figures['speedup']}x)")
        print(json.dumps(figures))
    finally:
        if node is not None:
            node.terminate()
            node.wait(10)


if __name__ == "__main__":
    main()
