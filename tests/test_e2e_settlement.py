"""End to end with real processes: deposit -> trade -> funding -> withdraw -> finalize ->
claim on L1, and every unit accounted for, on L2 and on L1."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.logs import DISCARD
from web3.types import RPCEndpoint

from rollup.deploy import deploy
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.rollup_client import RollupL1
from rollup.oracle import Feeder, RandomWalk
from rollup.sdk import NOT_FOUND, ApiError, Operator, Trader
from tests.conftest import free_port, params_for, start_operator, wait_for

KEYS = [bytes(a.key) for a in dev_accounts(10)]
DEPLOYER, PROPOSER, ALICE, BOB = KEYS[0], KEYS[1], KEYS[3], KEYS[4]
WINDOW = 20
DEPOSIT = 100_000_000


def claim(user: RollupL1, proof: dict) -> int:
    record = proof["record"]
    receipt = user.l1.send(user.bridge.functions.claim(
        proof["batch"], proof["index"],
        (record["account"], Web3.to_checksum_address(record["owner"]), record["amount"]),
        proof["proof"], proof["accounts_root"], proof["markets_root"], proof["globals_hash"]))
    event = user.bridge.events.WithdrawalClaimed().process_receipt(receipt, errors=DISCARD)[0]["args"]
    return int(event["paid"])


def test_deposit_trade_funding_withdraw_claim_conserve_every_unit(l1_url: str, tmp_path: Path) -> None:
    deployment = deploy(L1(l1_url, DEPLOYER), params=params_for(PROPOSER, challenge_window=WINDOW, inclusion_delay=600))
    path = tmp_path / "deployment.json"
    deployment.save(path)
    port = free_port()
    operator = Operator(f"http://127.0.0.1:{port}")
    proc = start_operator(l1_url, path, PROPOSER, port, tmp_path / "op.db", tmp_path / "operator.log",
                          "--heartbeat", "1", "--funding-interval", "1")
    w3 = Web3(Web3.HTTPProvider(l1_url))
    users = {key: RollupL1(L1(l1_url, key), deployment) for key in (ALICE, BOB)}
    token = users[ALICE].token.functions
    start = {key: token.balanceOf(u.l1.address).call() for key, u in users.items()}
    try:
        wait_for(lambda: operator.call("status"), 60, "the operator")
        for user in users.values():
            user.deposit(user.l1.address, DEPOSIT)
        alice, bob = (Trader.from_deployment(operator, key, deployment) for key in (ALICE, BOB))
        wait_for(lambda: alice.account and bob.account and operator.call("status")["time"], 30, "deposits")
        feeder = Feeder(operator, deployment, walk=RandomWalk({0: 300_000, 1: 1_000_000}, step_ppm=3_000, seed=5))
        feeder.round()

        # a trade, and a book whose mid sits over the oracle price: longs pay funding
        alice.order(0, "buy", 200, 301_000)
        bob.order(0, "sell", 120, 301_000, kind="ioc")
        bob.order(0, "sell", 50, 304_000)
        index = operator.call("markets")[0]["funding_index"]
        for _ in range(6):  # time passes; prices move; the keeper ticks funding
            w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [30])
            w3.provider.make_request(RPCEndpoint("evm_mine"), [])
            time.sleep(1.2)
            feeder.round()
        assert operator.call("markets")[0]["funding_index"] > index, "no funding was paid"

        # withdrawals, finality, claims
        amounts = {ALICE: 20_000_000, BOB: 30_000_000}
        indexes = {key: trader.withdraw(amounts[key])["index"] for key, trader in ((ALICE, alice), (BOB, bob))}
        proofs: dict[bytes, dict[str, Any]] = {}
        deadline = time.monotonic() + 90
        while len(proofs) < 2 and time.monotonic() < deadline:
            w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [WINDOW])
            w3.provider.make_request(RPCEndpoint("evm_mine"), [])
            time.sleep(0.5)
            for key, i in indexes.items():
                if key not in proofs:
                    try:
                        proofs[key] = operator.call("withdrawal_proof", index=i)
                    except ApiError as exc:  # not final yet; any other error is raised
                        if exc.code != NOT_FOUND:
                            raise
        assert len(proofs) == 2, "the withdrawals never became final"
        claimed = {key: claim(users[key], proofs[key]) for key in proofs}
        assert claimed == amounts

        # every unit: L2's books balance, and L1 agrees
        wait_for(lambda: operator.call("status")["open_batch_txs"] == 0, 30, "a quiet moment")
        status = operator.call("status")
        collateral = sum(operator.call("account", account=i)["collateral"] for i in range(status["accounts"]))
        assert collateral + status["fee_pool"] + status["funding_pool"] + status["total_withdrawn"] \
            == status["total_deposited"] == 2 * DEPOSIT
        assert status["fee_pool"] > 0 and status["total_withdrawn"] == sum(amounts.values())
        bridge_balance = token.balanceOf(users[ALICE].bridge.address).call()
        assert bridge_balance == 2 * DEPOSIT - sum(claimed.values())
        for key, user in users.items():
            assert token.balanceOf(user.l1.address).call() == start[key] - DEPOSIT + claimed[key]
    finally:
        proc.stop()
