"""Order acknowledgement latency and throughput through the operator's API, on a devnet.

Starts a devnet (L1 node, operator, oracle feeder, two watchers) in a temporary directory,
or takes a running one (`--state-dir` of `rollup devnet`); funds `--accounts` fresh
accounts through the bridge; pre-signs crossing orders on market 0 (a limit order at the
price, then the opposite IOC at the same price, sides alternating so positions stay
small); then offers them at each fixed rate (open loop: order i is due at t0 + i/rate, and
its latency is counted from that moment, so a stalled server is not hidden by a client
that waits for it) and flat out (`--connections` requests always in flight). After each
phase it waits until every acknowledged order's effect is in a posted batch.

    python bench/api_latency.py [--rates 200,1000,3000] [--seconds 10] [--transport http|ws]

Prints p50, p99 and max latency (ms) and the sustained rate per phase; the last line is
one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from web3 import Web3

from rollup.api import order_json
from rollup.deploy import Deployment
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.rollup_client import RollupL1, config_of
from rollup.sdk import ApiError, Operator
from rollup.stf import builders
from rollup.stf.fork import Context
from rollup.stf.signing import address_of
from rollup.stf.transactions import ORDER_NO_EXPIRY, Order

MARKET = 0
FUNDING = 20_000 * 10**6
"""Collateral units deposited per bench account."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Devnet:
    state_dir: Path
    l1_rpc: str
    operator_url: str
    process: subprocess.Popen[Any] | None = None

    @classmethod
    def start(cls) -> Devnet:
        state_dir = Path(tempfile.mkdtemp(prefix="bench-api-"))
        l1_port, operator_port = free_port(), free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "rollup", "devnet", "--state-dir", str(state_dir), "--l1-port", str(l1_port),
             "--operator-port", str(operator_port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            if "devnet ready" in line:
                break
            if line.startswith("error"):
                raise RuntimeError(line)
        else:
            raise RuntimeError(f"the devnet did not start (see {state_dir}/logs)")
        endpoints = json.loads((state_dir / "endpoints.json").read_text())
        return cls(state_dir, endpoints["l1_rpc"], endpoints["operator_url"], process)

    @classmethod
    def existing(cls, state_dir: str) -> Devnet:
        endpoints = json.loads((Path(state_dir) / "endpoints.json").read_text())
        return cls(Path(state_dir), endpoints["l1_rpc"], endpoints["operator_url"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


def fund(devnet: Devnet, count: int) -> list[tuple[bytes, int]]:
    """Fresh keys with FUNDING deposited for each (by dev account 1); their account ids."""
    deployment = Deployment.load(devnet.state_dir / "deployment.json")
    chain = RollupL1(L1(devnet.l1_rpc, "0x" + bytes(dev_accounts(2)[1].key).hex()), deployment)
    keys = [os.urandom(32) for _ in range(count)]
    chain.l1.send(chain.token.functions.approve(chain.bridge.address, FUNDING * count))
    for key in keys:
        chain.l1.send(chain.bridge.functions.deposit(Web3.to_checksum_address(address_of(key)), FUNDING))
    operator = Operator(devnet.operator_url)
    accounts: list[tuple[bytes, int]] = []
    deadline = time.monotonic() + 120
    for key in keys:
        while True:
            try:
                accounts.append((key, int(operator.call("account_of", owner="0x" + address_of(key).hex())["account"])))
                break
            except ApiError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    return accounts


def market_price(operator: Operator) -> tuple[int, int, int]:
    """Market 0's oracle price (rounded to its tick), tick size and step size, once priced."""
    deadline = time.monotonic() + 60
    while True:
        market = next(m for m in operator.call("markets") if m["id"] == MARKET)
        if market["price"]:
            tick = int(market["tick_size"])
            return int(market["price"]) // tick * tick, tick, int(market["step_size"])
        if time.monotonic() > deadline:
            raise TimeoutError("market 0 has no price")
        time.sleep(0.2)


class Orders:
    """Pre-signed crossing orders, handed out in order; each a JSON-RPC request body."""

    def __init__(self, accounts: list[tuple[bytes, int]], deployment: Deployment, price: int, step: int,
                 nonces: dict[int, int]) -> None:
        self.accounts = accounts
        self.context = Context(config_of(deployment), 0)
        self.price = price
        self.step = step
        self.nonces = nonces
        self.round = 0

    def make(self, count: int) -> list[bytes]:
        bodies: list[bytes] = []
        while len(bodies) < count:
            k = self.round
            self.round += 1
            maker_key, maker = self.accounts[k % len(self.accounts)]
            taker_key, taker = self.accounts[(k + 1) % len(self.accounts)]
            maker_sells = k % 2 == 0
            for key, account, is_buy, kind in ((maker_key, maker, not maker_sells, "limit"),
                                               (taker_key, taker, maker_sells, "ioc")):
                nonce = self.nonces[account]
                self.nonces[account] = nonce + 1
                order = Order(account, MARKET, is_buy, self.step, self.price, 1_000, nonce, ORDER_NO_EXPIRY)
                signature = builders.sign_order(order, key, self.context)
                bodies.append(json.dumps({
                    "jsonrpc": "2.0", "id": len(bodies), "method": "submit_order",
                    "params": {"order": order_json(order), "signature": "0x" + signature.hex(), "kind": kind},
                }).encode())
        return bodies


@dataclass
class Phase:
    name: str
    offered: float | None
    latencies: list[float]
    errors: dict[str, int]
    elapsed: float
    posted_after: float

    def figures(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2) if ordered else 0.0

        return {"phase": self.name, "offered_per_s": self.offered, "orders": len(ordered),
                "sustained_per_s": round(len(ordered) / self.elapsed, 1) if self.elapsed else 0.0,
                "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": round(ordered[-1] * 1000, 2) if ordered else 0.0,
                "errors": self.errors, "posted_after_s": round(self.posted_after, 2)}


class Client:
    """Sends request bodies over one transport: keep-alive HTTP connections or WebSockets."""

    def __init__(self, url: str, transport: str, connections: int) -> None:
        self.url = url
        self.transport = transport
        self.connections = connections
        self.session: aiohttp.ClientSession | None = None
        self.sockets: asyncio.Queue[Any] | None = None

    async def __aenter__(self) -> Client:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.connections),
                                             timeout=aiohttp.ClientTimeout(total=30))
        if self.transport == "ws":
            self.sockets = asyncio.Queue()
            for _ in range(self.connections):
                self.sockets.put_nowait(await self.session.ws_connect(self.url.rstrip("/") + "/ws"))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.session is not None
        if self.sockets is not None:
            while not self.sockets.empty():
                await self.sockets.get_nowait().close()
        await self.session.close()

    async def send(self, body: bytes) -> dict[str, Any]:
        """The reply, or an error object of our own when none came within the timeout."""
        try:
            return await self._send(body)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return {"error": {"code": 0, "message": f"client: {type(exc).__name__}"}}

    async def _send(self, body: bytes) -> dict[str, Any]:
        assert self.session is not None
        if self.sockets is not None:
            ws = await self.sockets.get()
            try:
                await ws.send_bytes(body)
                return json.loads((await ws.receive()).data)
            finally:
                self.sockets.put_nowait(ws)
        async with self.session.post(self.url, data=body, headers={"Content-Type": "application/json"}) as response:
            return json.loads(await response.read())


def error_name(reply: dict[str, Any]) -> str | None:
    if "error" not in reply:
        return None
    return str(reply["error"].get("data") or reply["error"].get("message"))[:60]


async def fixed_rate(client: Client, bodies: list[bytes], rate: float) -> tuple[list[float], dict[str, int], float]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    t0 = time.perf_counter() + 0.05

    async def one(i: int, body: bytes) -> None:
        reply = await client.send(body)
        latencies.append(time.perf_counter() - (t0 + i / rate))
        name = error_name(reply)
        if name is not None:
            errors[name] = errors.get(name, 0) + 1

    tasks = []
    for i, body in enumerate(bodies):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, body)))
    await asyncio.gather(*tasks)
    return latencies, errors, time.perf_counter() - t0


async def flat_out(client: Client, bodies: list[bytes], connections: int) -> tuple[list[float], dict[str, int], float]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    queue = iter(bodies)
    t0 = time.perf_counter()

    async def worker() -> None:
        for body in queue:
            start = time.perf_counter()
            reply = await client.send(body)
            latencies.append(time.perf_counter() - start)
            name = error_name(reply)
            if name is not None:
                errors[name] = errors.get(name, 0) + 1

    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, errors, time.perf_counter() - t0


def wait_posted(operator: Operator, timeout: float = 120.0) -> float:
    """Seconds until the operator has nothing unposted (no open transactions, no cut batch)."""
    start = time.monotonic()
    while True:
        status = operator.call("status")
        if status["open_batch_txs"] == 0 and status["batches"]["cut"] == 0:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"orders not all posted after {timeout:g} s: {status['batches']}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", help="a running devnet's state directory (default: start one)")
    parser.add_argument("--rates", default="200,1000,3000", help="orders per second offered, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each fixed-rate phase")
    parser.add_argument("--flat-orders", type=int, default=20_000, help="orders sent flat out (0: skip)")
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--transport", choices=("http", "ws"), default="http")
    args = parser.parse_args()

    devnet = Devnet.existing(args.state_dir) if args.state_dir else Devnet.start()
    try:
        deployment = Deployment.load(devnet.state_dir / "deployment.json")
        operator = Operator(devnet.operator_url)
        accounts = fund(devnet, args.accounts)
        price, _, step = market_price(operator)
        nonces = {account: int(operator.call("next_nonce", account=account)["nonce"]) for _, account in accounts}
        orders = Orders(accounts, deployment, price, step, nonces)
        rates = [float(r) for r in args.rates.split(",") if r]
        plan: list[tuple[str, float | None, list[bytes]]] = [
            (f"{r:g}/s", r, orders.make(int(r * args.seconds))) for r in rates]
        if args.flat_orders:
            plan.append(("flat out", None, orders.make(args.flat_orders)))
        print(f"devnet {devnet.state_dir}; {len(accounts)} accounts funded; price {price}; "
              f"{sum(len(p[2]) for p in plan)} orders signed; transport {args.transport}", flush=True)

        async def run() -> list[Phase]:
            phases = []
            async with Client(devnet.operator_url, args.transport, args.connections) as client:
                for name, rate, bodies in plan:
                    if rate is None:
                        latencies, errors, elapsed = await flat_out(client, bodies, args.connections)
                    else:
                        latencies, errors, elapsed = await fixed_rate(client, bodies, rate)
                    posted_after = await asyncio.to_thread(wait_posted, operator)
                    phase = Phase(name, rate, latencies, errors, elapsed, posted_after)
                    f = phase.figures()
                    print(f"{name:>10}: {f['orders']} orders, {f['sustained_per_s']}/s sustained, p50 "
                          f"{f['p50_ms']} ms, p99 {f['p99_ms']} ms, max {f['max_ms']} ms, errors {f['errors']}, "
                          f"posted {f['posted_after_s']} s later", flush=True)
                    phases.append(phase)
            return phases

        phases = asyncio.run(run())
        print(json.dumps({"bench": "api_latency", "transport": args.transport, "cores": os.cpu_count(),
                          "phases": [p.figures() for p in phases]}))
    finally:
        devnet.stop()


if __name__ == "__main__":
    main()
