"""The light L1 reader (rollup/l1/wire.py) reads what web3 reads: the Rollup's views (a
struct included, at a block given by number or by hash) and the Bridge's queue events, on
our node and on anvil; errors are named; a connection the node closed is opened again."""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Any

import pytest
from web3 import Web3

from rollup.l1.client import L1
from rollup.l1.rollup_client import RollupL1
from rollup.l1.wire import NoSuchBlock, Rpc, RpcCallError
from rollup.l1.world import make_world
from tests.conftest import DEV_KEYS, deploy_rollup, l1_snapshot


def test_views_and_events_read_as_web3_reads_them(any_l1: str) -> None:
    with l1_snapshot(any_l1):
        deployment = deploy_rollup(any_l1)
        world = make_world(any_l1, deployment, DEV_KEYS[1], DEV_KEYS[3:5])  # deposits and four batches
        user = RollupL1(L1(any_l1, DEV_KEYS[3]), deployment)
        user.force_withdraw(1_000)  # a forced request: events of both queues
        chain = RollupL1(L1(any_l1), deployment)
        functions = chain.rollup.functions
        head = bytes(chain.l1.w3.eth.get_block("latest")["hash"])
        number = chain.l1.w3.eth.block_number

        length = int(functions.length().call())
        assert length == 4 and chain.views.call("length") == length  # the time, deposits, prices, the series' marks
        assert world.series()
        assert chain.views.calls([("batch_count", ()), ("finalized", ()), ("length", ())], block=head) == [
            functions.batch_count().call(), functions.finalized().call(), length]
        for position in range(length):
            batch_id = functions.live(position).call()
            assert chain.views.call("live", position, block=number) == batch_id
            assert chain.views.call("batches", batch_id, block=head) == tuple(functions.batches(batch_id).call())
        bonded = chain.l1.w3.eth.accounts[1]  # type: ignore[misc]  # web3 types eth.accounts as a 1-tuple
        assert chain.views.call("bonds", bonded) == functions.bonds(bonded).call() > 0

        events = world.inbox.events.logs(["Deposited", "ForcedRequested"], deployment.deploy_block, number)
        deposited = chain.bridge.events.Deposited().get_logs(from_block=deployment.deploy_block)
        forced = chain.bridge.events.ForcedRequested().get_logs(from_block=deployment.deploy_block)
        assert [e["event"] for e in events] == ["Deposited"] * len(deposited) + ["ForcedRequested"] * len(forced)
        assert len(deposited) == 2 and len(forced) == 1
        for mine, theirs in zip(events, [*deposited, *forced], strict=True):
            assert mine["args"] == dict(theirs["args"])
            assert (mine["blockNumber"], mine["logIndex"]) == (theirs["blockNumber"], theirs["logIndex"])

        # an inbox reading through it holds the same queue as the bridge's own head says
        world.inbox.sync()
        assert len(world.inbox.forced) == 1
        assert world.inbox.forced_heads[-1] == bytes(chain.bridge.functions.forced_head(1).call())


def test_errors_are_named(l1_url: str) -> None:
    rpc = Rpc(l1_url)
    with pytest.raises(NoSuchBlock):
        rpc.block(rpc.block_number() + 1_000)
    with pytest.raises(RpcCallError) as refused:
        rpc.request("no_such_method", [])
    assert refused.value.code == -32601
    with pytest.raises(RpcCallError):  # one bad request in a batch names the batch's failure
        rpc.batch([("eth_blockNumber", []), ("eth_getBalance", ["0x12"])])
    assert rpc.batch([("eth_chainId", []), ("eth_blockNumber", [])])[0] == hex(Web3(Web3.HTTPProvider(l1_url)).eth.chain_id)
    with pytest.raises(ValueError):
        Rpc("ws://127.0.0.1:1")


class _Closing(http.server.BaseHTTPRequestHandler):
    """Answers eth_blockNumber, then closes the connection (as a node may, at any time)."""

    protocol_version = "HTTP/1.1"
    served: list[int] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.served.append(request["id"])
        body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": hex(len(self.served))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


def test_a_closed_connection_is_opened_again() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Closing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        rpc = Rpc(f"http://127.0.0.1:{server.server_address[1]}")
        assert [rpc.block_number() for _ in range(3)] == [1, 2, 3]  # each on a new connection
    finally:
        server.shutdown()


class _Slow(_Closing):
    """Answers after a pause the first time (longer than the client waits), then at once."""

    def do_POST(self) -> None:  # noqa: N802
        if not self.served:
            self.served.append(0)
            time.sleep(0.5)
            return
        super().do_POST()


def test_a_timed_out_connection_is_not_used_again() -> None:
    _Slow.served = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rpc = Rpc(f"http://127.0.0.1:{server.server_address[1]}", timeout=0.2)
        with pytest.raises(TimeoutError):
            rpc.block_number()
        assert rpc.block_number() == 2  # a fresh connection, a whole answer
    finally:
        server.shutdown()
