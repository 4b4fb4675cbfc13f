"""Every fraud mode end to end, with real processes: an operator started with `--fraud
KIND` and a watcher, on the devnet's markets (option series among them: calls are written
before the fraud, and for the expiry and settlement frauds the daily series expires, and is
settled, first). The watcher proves the fraudulent batch within the window (its
commitment, then the reveal); the batch and its descendants are reverted; the bond is
slashed and, after the reward delay, the watcher paid; the operator resumes; an honest
user's withdrawal then finalizes and is claimed on L1."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, cast

import pytest
from eth_account.types import TransactionDictType
from web3 import Web3
from web3.types import RPCEndpoint, Wei

from rollup.deploy import deploy
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.rollup_client import REVERTED, RollupL1
from rollup.listing import devnet_listing
from rollup.operator.fraud import CATALOG
from rollup.oracle import Feeder, RandomWalk
from rollup.sdk import NOT_FOUND, ApiError, Operator, Trader
from tests.conftest import Process, free_port, params_for, start_operator, wait_for

KEYS = [bytes(a.key) for a in dev_accounts(10)]
DEPLOYER, PROPOSER, WATCHER = KEYS[0], KEYS[1], KEYS[2]
USERS = KEYS[3:7]
WINDOW = 40


def deposit_together(l1_url: str, deployment: Any, keys: list[bytes], amount: int) -> None:
    """Deposits of several users in one L1 block (so one batch takes them all)."""
    w3 = Web3(Web3.HTTPProvider(l1_url))
    users = [RollupL1(L1(l1_url, key), deployment) for key in keys]
    for user in users:
        user.l1.send(user.token.functions.approve(user.bridge.address, amount))
    w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [False])
    try:
        for user in users:
            account = user.l1.account
            assert account is not None
            call = user.bridge.functions.deposit(user.l1.address, amount)
            fees = user.l1.fees()
            tx = call.build_transaction({"from": user.l1.address, "gas": 300_000, "chainId": user.l1.chain_id,
                                         "nonce": w3.eth.get_transaction_count(user.l1.address, "pending"),
                                         "maxFeePerGas": Wei(fees["maxFeePerGas"]),
                                         "maxPriorityFeePerGas": Wei(fees["maxPriorityFeePerGas"])})
            # web3's TxParams is what eth-account signs (web3's own signing middleware casts alike)
            signed = account.sign_transaction(cast(TransactionDictType, tx))
            w3.eth.send_raw_transaction(signed.raw_transaction)
        w3.provider.make_request(RPCEndpoint("evm_mine"), [])
    finally:
        w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [True])


LONG = bool(os.environ.get("ROLLUP_LONG"))
SHORT_KINDS = ("mint", "bad-signature", "skip-deposit", "ignore-forced", "malformed-as-valid",
               "ignore-expiry", "wrong-settlement", "wrong-portfolio-margin", "under-risk-margin")
"""CI's short mode runs these end to end (every kind is proven on L1 in test_fraud_catalog.py
either way): a fraud of each family (state, signature, L1 queues, decoding) and every
option fraud; ROLLUP_LONG=1 runs the whole catalog (about 12 s a kind)."""
KINDS = sorted(CATALOG) if LONG else sorted(SHORT_KINDS)


def test_the_short_mode_runs_catalog_kinds() -> None:
    assert set(SHORT_KINDS) <= set(CATALOG) and len(KINDS) >= len(SHORT_KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_fraud_is_proven_and_the_rollup_recovers(l1_url: str, tmp_path: Path, kind: str) -> None:
    deployer = L1(l1_url, DEPLOYER)
    now = int(deployer.w3.eth.get_block("latest")["timestamp"])
    deployment = deploy(deployer, params=params_for(PROPOSER, challenge_window=WINDOW, inclusion_delay=600),
                        listing=devnet_listing(now))
    path = tmp_path / "deployment.json"
    deployment.save(path)
    port = free_port()
    operator = Operator(f"http://127.0.0.1:{port}")
    procs = [
        start_operator(l1_url, path, PROPOSER, port, tmp_path / "op.db", tmp_path / "operator.log", "--fraud", kind),
        Process([sys.executable, "-m", "rollup", "watch", "--l1-rpc", l1_url, "--deployment", str(path),
                 "--key", "0x" + WATCHER.hex(), "--store", str(tmp_path / "watcher.db"), "--poll", "0.3"],
                tmp_path / "watcher.log"),
    ]
    chain = RollupL1(L1(l1_url), deployment)
    w3 = chain.l1.w3
    watcher_balance = w3.eth.get_balance(L1(l1_url, WATCHER).address)
    try:
        wait_for(lambda: operator.call("status"), 60, "the operator")
        deposit_together(l1_url, deployment, USERS[:2], 200_000_000)  # two deposits, one batch
        traders = [Trader.from_deployment(operator, key, deployment) for key in USERS[:2]]
        wait_for(lambda: all(t.account for t in traders), 30, "deposits credited")
        wait_for(lambda: operator.call("status")["time"], 30, "time")
        feeder = Feeder(operator, deployment, walk=RandomWalk({0: 300_000, 1: 1_000_000}, step_ppm=0))
        feeder.round()  # the perpetuals' prices and every series' mark and Greeks
        a, b = traders
        a.order(0, "buy", 50, 300_000)
        b.order(0, "sell", 50, 300_000, kind="ioc")  # a trade: positions open
        call = operator.call("markets")[2]  # the daily ETH call
        b.order(2, "sell", 10, call["price"])  # calls written by the short: its risk grows
        a.order(2, "buy", 10, call["price"], kind="ioc")
        if kind in ("ignore-expiry", "wrong-settlement"):
            # the daily series expires (L1 travels past it, once the trades are posted);
            # the committee settles it (a settlement for the fraud to lie about)
            wait_for(lambda: (s := operator.call("status"))["open_batch_txs"] == 0 and s["batches"]["cut"] == 0,
                     30, "the trades posted")
            w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [call["expiry"] + 5])
            w3.provider.make_request(RPCEndpoint("evm_mine"), [])
            wait_for(lambda: operator.call("status")["time"] > call["expiry"], 30, "the clock past the expiry")
            if kind == "wrong-settlement":
                feeder.round()
        RollupL1(L1(l1_url, USERS[1]), deployment).force_withdraw(1_000_000)  # a forced request
        deposit_together(l1_url, deployment, USERS[2:4], 50_000_000)  # two more deposits together

        proven = wait_for(lambda: chain.rollup.events.FraudProven().get_logs(from_block=deployment.deploy_block),
                          WINDOW, f"the watcher to prove the {kind} fraud")
        event = proven[0]["args"]
        assert len(proven) == 1 and event["challenger"] == L1(l1_url, WATCHER).address
        assert chain.batch(event["id"]).status == REVERTED
        # its descendants (posted on top of it before the proof) went with it
        submitted = chain.rollup.events.BatchSubmitted().get_logs(from_block=deployment.deploy_block,
                                                                  to_block=proven[0]["blockNumber"])
        for later in (e["args"]["id"] for e in submitted if e["args"]["id"] > event["id"]):
            assert chain.batch(later).status == REVERTED
        assert event["reward"] == deployment.params["bond"] // 2
        assert event["proposer"] == L1(l1_url, PROPOSER).address

        # the operator resumes (it posts again on top of the last good batch); an honest
        # withdrawal then finalizes and is paid on L1
        wait_for(lambda: chain.rollup.events.BatchSubmitted().get_logs(from_block=proven[0]["blockNumber"]),
                 60, "the operator to post again after the proof")
        withdrawal = a.withdraw(5_000_000)
        deadline = time.monotonic() + 60
        proof = None
        while proof is None and time.monotonic() < deadline:
            w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [WINDOW])
            w3.provider.make_request(RPCEndpoint("evm_mine"), [])
            time.sleep(0.5)
            try:
                proof = operator.call("withdrawal_proof", index=withdrawal["index"])
            except ApiError as exc:  # not final yet; any other error is raised
                if exc.code != NOT_FOUND:
                    raise
        assert proof is not None, "the withdrawal never became final"
        user = RollupL1(L1(l1_url, USERS[0]), deployment)
        before = user.token.functions.balanceOf(user.l1.address).call()
        record = proof["record"]
        user.l1.send(user.bridge.functions.claim(
            proof["batch"], proof["index"], (record["account"], Web3.to_checksum_address(record["owner"]),
                                             record["amount"]),
            proof["proof"], proof["accounts_root"], proof["markets_root"], proof["globals_hash"]))
        assert user.token.functions.balanceOf(user.l1.address).call() == before + 5_000_000
        live = chain.rollup.functions.length().call()
        tip = chain.batch(chain.rollup.functions.live(live - 1).call())
        assert tip.status != REVERTED
        # the reward delay has passed (the loop above moved L1 time): the watcher claims it
        paid = wait_for(lambda: chain.rollup.events.RewardPaid().get_logs(from_block=deployment.deploy_block),
                        30, "the watcher to claim its reward")
        assert paid[0]["args"]["challenger"] == event["challenger"] and paid[0]["args"]["amount"] == event["reward"]
        assert w3.eth.get_balance(event["challenger"]) > watcher_balance  # paid more than the gas
    finally:
        for proc in procs:
            proc.stop()
        print(procs[0].log()[-2000:], procs[1].log()[-2000:])
