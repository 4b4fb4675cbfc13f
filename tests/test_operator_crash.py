"""kill -9 of the operator under a load of 1,200 orders, resting and crossing, at a moment
its batch submission is in L1's mempool (anvil mining a block a second), then a restart
from its store plus L1: every order it acknowledged is there with its fields (market,
side, price, size, and what remains of it after the fills it was told of), every fill it
acknowledged is a trade, its state root is the one a watcher rebuilds from L1 alone, and
its next batches are accepted."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from web3 import Web3

from challengers.watcher import Watcher
from rollup.api import order_json
from rollup.deploy import deploy
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.rollup_client import RollupL1
from rollup.oracle import Feeder, RandomWalk
from rollup.sdk import ApiError, Operator, Trader
from tests.conftest import Process, free_port, params_for, start_anvil, wait_for
from tests.conftest import start_operator as operator_process

KEYS = [bytes(a.key) for a in dev_accounts(10)]
DEPLOYER, PROPOSER, WATCHER, ALICE, BOB, CAROL = KEYS[0], KEYS[1], KEYS[2], KEYS[5], KEYS[6], KEYS[7]
ORDERS = 1_200
SLOTS = 256


def start_operator(l1_url: str, deployment_path: Path, port: int, tmp: Path, name: str) -> Process:
    return operator_process(l1_url, deployment_path, PROPOSER, port, tmp / "op.db", tmp / f"{name}.log")


def test_kill_9_while_a_batch_is_being_posted_then_restart(tmp_path: Path) -> None:
    l1_url, anvil = start_anvil(tmp_path, "--block-time", "1")
    proc: Process | None = None
    try:
        deployment = deploy(L1(l1_url, DEPLOYER), params=params_for(PROPOSER, challenge_window=600,
                                                                    inclusion_delay=1_200))
        path = tmp_path / "deployment.json"
        deployment.save(path)
        port = free_port()
        operator = Operator(f"http://127.0.0.1:{port}")
        proc = start_operator(l1_url, path, port, tmp_path, "operator-1")
        wait_for(lambda: operator.call("status"), 60, "the operator")
        for key in (ALICE, BOB, CAROL):
            user = RollupL1(L1(l1_url, key), deployment)
            user.deposit(user.l1.address, 500_000_000)
        alice, bob, carol = (Trader.from_deployment(operator, key, deployment) for key in (ALICE, BOB, CAROL))
        wait_for(lambda: alice.account and bob.account and carol.account, 60, "deposits")
        wait_for(lambda: operator.call("status")["time"], 60, "time")
        Feeder(operator, deployment, walk=RandomWalk({0: 300_000, 1: 1_000_000}, step_ppm=0)).round()

        # alice bids and bob asks (they never cross each other); carol's IOC orders cross
        # them, buying and selling in turn. Every acknowledged order is recorded with what
        # was sent, and every order sent with its (account, nonce).
        acked: dict[int, dict[str, Any]] = {}
        sent: list[dict[str, Any]] = []
        lock = threading.Lock()
        stop = threading.Event()
        errors: list[BaseException] = []

        def client(trader: Trader, role: str) -> None:
            try:
                for i in range(ORDERS // 3):
                    if stop.is_set():
                        return
                    if role == "cross":  # 1 or 2 lots, through the best bid or ask
                        side, price = ("buy", 301_500) if i % 2 == 0 else ("sell", 298_500)
                        kind, size = "ioc", 1 + i % 2
                    else:
                        side, kind, size = ("buy" if role == "bid" else "sell"), "limit", 1 + i % 5
                        price = 299_000 - (i % 100) * 10 if role == "bid" else 301_000 + (i % 100) * 10
                    order, signature = trader.sign_order(0, side, size, price)
                    record = {**order_json(order), "kind": kind}
                    with lock:
                        sent.append(record)
                    try:
                        result = operator.call("submit_order", order=order_json(order), signature=signature, kind=kind)
                    except (ApiError, OSError):
                        if stop.is_set():
                            return
                        raise
                    with lock:
                        acked[result["id"]] = {"sent": record, "reply": result}
            except BaseException as exc:  # noqa: BLE001 - re-raised by the test
                errors.append(exc)

        threads = [threading.Thread(target=client, args=args)
                   for args in ((alice, "bid"), (bob, "ask"), (carol, "cross"))]
        for t in threads:
            t.start()
        wait_for(lambda: errors or len(acked) >= ORDERS // 2, 180, "half the orders")
        assert not errors, errors
        # the kill: while the operator's submission waits in L1's mempool
        w3 = Web3(Web3.HTTPProvider(l1_url))
        proposer = L1(l1_url, PROPOSER).address
        deadline = time.monotonic() + 60
        while w3.eth.get_transaction_count(proposer, "pending") == w3.eth.get_transaction_count(proposer, "latest"):
            assert time.monotonic() < deadline, "no batch submission ever waited in the mempool"
            time.sleep(0.01)
        stop.set()  # (the clients send nothing more; what is in flight meets the kill)
        os.kill(proc.popen.pid, signal.SIGKILL)
        for t in threads:
            t.join(30)
        proc.popen.wait(10)
        proc.stop()
        assert not errors, errors
        assert len(acked) >= ORDERS // 2

        # restart from the store plus L1 (the submission in flight is mined meanwhile)
        proc = start_operator(l1_url, path, port, tmp_path, "operator-2")
        wait_for(lambda: operator.call("status"), 60, "the restarted operator")
        check_acknowledged(operator, acked, sent, (alice, bob, carol))

        # more load after the restart; the next batches are accepted and valid
        for i in range(100):
            alice.order(0, "buy", 1, 298_000 - i % 50)
            carol.order(0, "sell", 1, 298_000 - i % 50, "ioc")
        status = wait_for(lambda: (s := operator.call("status"))["open_batch_txs"] == 0
                          and s["batches"]["cut"] == 0 and s, 60, "everything posted")
        watcher = Watcher(l1_url, deployment, "0x" + WATCHER.hex(), tmp_path / "watcher.db")
        try:
            watcher.step()
            assert set(watcher.verdicts().values()) == {"valid"}
            tip = watcher.tip_state()
            assert tip is not None and "0x" + tip.root().hex() == status["state_root"]
        finally:
            watcher.close()
    finally:
        if proc is not None:
            proc.stop()
        anvil.stop()


def check_acknowledged(operator: Operator, acked: dict[int, dict[str, Any]], sent: list[dict[str, Any]],
                       traders: tuple[Trader, ...]) -> None:
    """Every acknowledged order and fill survived the kill, field by field. Only orders
    sent but not acknowledged (one per client at most) may have filled resting orders
    further than the replies said; their lots bound the difference."""
    acked_keys = {(r["sent"]["account"], r["sent"]["nonce"]) for r in acked.values()}
    unacked = [o for o in sent if (o["account"], o["nonce"]) not in acked_keys]
    in_flight_lots = sum(o["size"] for o in unacked)
    assert len(unacked) <= 3
    # what the replies said each resting order was filled by (its own entry, later takers)
    filled: dict[int, int] = {}
    for r in acked.values():
        for fill in r["reply"]["fills"]:
            filled[fill["maker_order"]] = filled.get(fill["maker_order"], 0) + fill["size"]
    # the newest nonce of each (account, slot): an order in a slot used again later is gone
    newest: dict[tuple[int, int], int] = {}
    for o in sent:
        key = (o["account"], o["nonce"] % SLOTS)
        newest[key] = max(newest.get(key, -1), o["nonce"])
    open_orders = {o["id"]: o for t in traders for o in t.info()["open_orders"]}
    unexplained = 0
    resting = 0
    for order_id, r in acked.items():
        s = r["sent"]
        if r["reply"]["status"] != "resting" or newest[(s["account"], s["nonce"] % SLOTS)] != s["nonce"]:
            assert order_id not in open_orders or r["reply"]["status"] == "resting"
            continue
        resting += 1
        left = s["size"] - filled.get(order_id, 0)
        if order_id in open_orders:
            o = open_orders[order_id]
            for field in ("account", "market", "side", "price", "size", "nonce", "expiry", "max_fee_ppm"):
                assert o[field] == s[field], (order_id, field, o[field], s[field])
            assert o["remaining"] <= left, (order_id, o["remaining"], left)
            unexplained += left - o["remaining"]
        else:
            unexplained += left  # gone: only a fill by an order in flight can explain it
    assert unexplained <= in_flight_lots, f"{unexplained} lots of acknowledged orders lost"
    assert resting >= 300
    # every acknowledged fill is a trade, at its price and size, between its two orders
    trades = operator.call("trades", market=0, limit=1000)
    by_taker: dict[int, list[tuple[int, int, int]]] = {}
    for t in trades:
        by_taker.setdefault(t["taker_order"], []).append((t["maker_order"], t["price"], t["size"]))
    checked = 0
    for order_id, r in acked.items():
        fills = sorted((f["maker_order"], f["price"], f["size"]) for f in r["reply"]["fills"])
        if fills:
            assert sorted(by_taker.get(order_id, [])) == fills, order_id
            assert sum(f[2] for f in fills) == r["reply"]["filled"]
            checked += 1
    assert checked >= 100
