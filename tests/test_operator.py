"""The operator as a real process over real JSON-RPC: deposits credited from L1, signed
orders matched in the book and settled by the STF, batches posted whose roots L1 holds,
refusals answered with errors that change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rollup.deploy import Deployment, deploy
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.rollup_client import RollupL1
from rollup.oracle import Feeder, RandomWalk
from rollup.sdk import ApiError, Operator, Trader
from tests.conftest import free_port, params_for, start_operator, wait_for

KEYS = [bytes(a.key) for a in dev_accounts(8)]
DEPLOYER, PROPOSER, ALICE, BOB = KEYS[0], KEYS[1], KEYS[5], KEYS[6]



@pytest.fixture(scope="module")
def setup(l1_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("operator")
    deployment = deploy(L1(l1_url, DEPLOYER), params=params_for(PROPOSER, challenge_window=30, inclusion_delay=300))
    path = tmp / "deployment.json"
    deployment.save(path)
    port = free_port()
    proc = start_operator(l1_url, path, PROPOSER, port, tmp / "op.db", tmp / "operator.log", "--heartbeat", "5")
    operator = Operator(f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: operator.call("status"), 60, "the operator")
        yield {"deployment": deployment, "operator": operator, "proc": proc, "l1": l1_url, "tmp": tmp}
    finally:
        proc.stop()
        print(proc.log()[-3000:])


def funded_traders(setup: dict[str, Any]) -> tuple[Trader, Trader]:
    """Alice and Bob with 50 tUSD each credited (deposited once per module) and first prices."""
    operator: Operator = setup["operator"]
    deployment = setup["deployment"]
    for key in (ALICE, BOB):
        user = RollupL1(L1(setup["l1"], key), deployment)
        if not user.bridge.functions.registered(user.l1.address).call():
            user.deposit(user.l1.address, 50_000_000)
    alice = Trader.from_deployment(operator, ALICE, deployment)
    bob = Trader.from_deployment(operator, BOB, deployment)
    wait_for(lambda: alice.account and bob.account and operator.call("status")["time"], 30, "accounts")
    if not operator.call("markets")[0]["price"]:
        Feeder(operator, deployment, walk=RandomWalk({0: 300_000, 1: 1_000_000}, step_ppm=0)).round()
    return alice, bob


def set_prices(setup: dict[str, Any]) -> None:
    """One round of the oracle feeder: the devnet committee signs first prices."""
    operator: Operator = setup["operator"]
    wait_for(lambda: operator.call("status")["time"], 30, "the first batch")
    feeder = Feeder(operator, setup["deployment"], walk=RandomWalk({0: 300_000, 1: 1_000_000}, step_ppm=0))
    assert feeder.round() == 2
    assert [m["price"] for m in operator.call("markets")] == [300_000, 1_000_000]


def test_deposit_trade_and_batches(setup: dict[str, Any]) -> None:
    operator: Operator = setup["operator"]
    deployment: Deployment = setup["deployment"]
    for key in (ALICE, BOB):
        RollupL1(L1(setup["l1"], key), deployment).deposit(L1(setup["l1"], key).address, 100_000_000)
    alice = Trader.from_deployment(operator, ALICE, deployment)
    bob = Trader.from_deployment(operator, BOB, deployment)
    wait_for(lambda: alice.account and bob.account, 30, "the deposits to be credited")
    set_prices(setup)

    resting = alice.order(0, "buy", 100, 299_900)
    assert resting["status"] == "resting"
    book = operator.call("book", market=0)
    assert book["bids"][0] == [299_900, 100, 1]
    taken = bob.order(0, "sell", 40, 299_000, kind="ioc")
    assert taken["filled"] == 40 and taken["fills"][0]["price"] == 299_900
    assert operator.call("book", market=0)["bids"][0] == [299_900, 60, 1]
    trades = operator.call("trades", market=0)
    assert trades[0]["size"] == 40 and trades[0]["maker"] == alice.account
    info = alice.info()
    assert info["positions"][0]["size"] == 40 and info["collateral"] < 100_000_000

    # batches reach L1 with the operator's roots
    chain = RollupL1(L1(setup["l1"]), deployment)
    status = wait_for(lambda: (s := operator.call("status"))["open_batch_txs"] == 0 and s["batches"]["cut"] == 0
                      and s["batches"]["posted"] + s["batches"]["final"] > 0 and s, 30, "a posted batch")
    length = chain.rollup.functions.length().call()
    tip = chain.batch(chain.rollup.functions.live(length - 1).call())
    assert "0x" + tip.state_root.hex() == status["state_root"]
    batches = operator.call("batches")
    assert batches[0]["status"] in ("posted", "final") and batches[0]["state_root"] == status["state_root"]


def test_refusals_change_nothing(setup: dict[str, Any]) -> None:
    operator: Operator = setup["operator"]
    deployment: Deployment = setup["deployment"]
    alice = Trader.from_deployment(operator, ALICE, deployment)
    bob = Trader.from_deployment(operator, BOB, deployment)
    wait_for(lambda: alice.account and bob.account, 30, "accounts")
    def snapshot() -> Any:  # what a refusal could touch (the time moves on by itself)
        return (alice.info(), bob.info(), operator.call("book", market=0), operator.call("trades", market=0),
                operator.call("status")["withdrawals"])

    before = snapshot()
    order, signature = alice.sign_order(0, "buy", 10, 299_000)
    from rollup.api import order_json

    cases: list[tuple[str, dict[str, Any], int]] = [
        ("submit_order", {"order": {**order_json(order), "size": -5}, "signature": signature}, -32602),
        ("submit_order", {"order": {**order_json(order), "market": 9}, "signature": signature}, 1004),
        ("submit_order", {"order": order_json(order), "signature": "0x" + "11" * 65}, 1003),
        ("submit_order", {"order": {**order_json(order), "size": 11}, "signature": signature}, 1003),
        ("submit_order", {"order": order_json(order), "signature": signature, "kind": "fok"}, -32602),
        ("submit_order", {"order": {**order_json(order), "account": 999}, "signature": signature}, 1002),
        ("submit_order", {"order": {**order_json(order), "price": 299_000 * 2**30}, "signature": signature}, -32602),
        ("cancel_order", {"account": alice.account, "nonce": 5, "signature": "0x" + "22" * 65}, 1001),
        ("withdraw", {"account": alice.account, "amount": 10**15, "nonce": 77, "expiry": 2**40,
                      "signature": "0x" + "33" * 65}, 1001),
        ("book", {"market": 7}, 1004),
        ("nope", {}, -32601),
    ]
    for method, params, code in cases:
        with pytest.raises(ApiError) as info:
            operator.call(method, **params)
        assert info.value.code == code, (method, params, info.value)
    assert snapshot() == before
