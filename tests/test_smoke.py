"""Deploy plus a smoke flow, the same on our py-evm node and on anvil: only standard
JSON-RPC is used, so the system runs on any Ethereum node."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3
from web3.types import RPCEndpoint

from rollup.deploy import DEV_COLLATERAL, Deployment
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1, L1Error
from rollup.stf import apply, builders
from rollup.stf.fork import Context
from rollup.stf.state import Config
from rollup.stf.transactions import Deposit

ALICE, BOB, CAROL = (bytes(a.key) for a in dev_accounts(3))


@pytest.fixture
def clean_l1(any_l1: str) -> Iterator[str]:
    w3 = Web3(Web3.HTTPProvider(any_l1))
    snapshot = w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    yield any_l1
    w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])


def test_deploy_and_deposit_flow(clean_l1: str, tmp_path: Path) -> None:
    out = tmp_path / "deployment.json"
    result = subprocess.run(
        [sys.executable, "-m", "rollup", "deploy", "--l1-rpc", clean_l1, "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    deployment = Deployment.load(out)
    assert deployment.chain_id == 31337
    assert deployment.l1_rpc == clean_l1
    assert set(deployment.contracts) == {
        "CollateralToken", "Bridge", "Verifier", "VerifyMarket", "VerifyTrade", "VerifyAccount", "VerifyForced", "VerifyRisk", "Portfolio", "Rollup",
    }
    assert deployment.params["challenge_window"] > 0 and len(deployment.params["oracle_signers"]) >= 2

    alice = L1(clean_l1, ALICE)
    token = alice.contract("CollateralToken", deployment.contracts["CollateralToken"])
    queue = alice.contract("Bridge", deployment.contracts["Bridge"])
    assert token.functions.balanceOf(alice.address).call() == DEV_COLLATERAL
    assert queue.functions.token().call() == token.address

    bob_address = L1(clean_l1, BOB).address
    alice.send(token.functions.approve(queue.address, 3_000_000))
    # the deployer's address is the insurance fund's account 0; new owners get 1, 2, ...
    assert queue.functions.account_of(deployment.deployer).call() == 0
    mirror = builders.L1Queues()
    carol_address = L1(clean_l1, CAROL).address
    for owner, amount in ((bob_address, 1_000_000), (carol_address, 1_500_000), (bob_address, 500_000)):
        receipt = alice.send(queue.functions.deposit(owner, amount))
        block = alice.w3.eth.get_block(receipt["blockNumber"])
        account = queue.functions.account_of(owner).call()
        mirror.deposit(account, bytes.fromhex(owner[2:]), amount, block["timestamp"])
    assert [d.account for d in mirror.deposits] == [1, 2, 1]
    # the contract's hash chain is the one the STF checks deposits against (docs/spec.md)
    events = queue.events.Deposited().get_logs(from_block=deployment.deploy_block)
    assert [e["args"]["amount"] for e in events] == [1_000_000, 1_500_000, 500_000]
    assert [e["args"]["head"] for e in events] == mirror.deposit_heads[1:]
    assert queue.functions.deposit_head(3).call() == mirror.deposit_heads[3]
    assert queue.functions.deposit_count().call() == 3
    assert token.functions.balanceOf(queue.address).call() == 3_000_000

    # the STF credits these deposits from L1 data alone: events + the queue's heads
    heads = tuple(queue.functions.deposit_head(i).call() for i in range(4))
    state = deployment.genesis()  # (its insurance fund owned by the deployer)
    config = Config(31337, bytes.fromhex(queue.address[2:]), (), 1)
    context = Context(config, 0, heads)  # a batch at the clock's time (genesis: 0)
    for event in events:
        args = event["args"]
        deposit = Deposit(args["index"], args["account"], bytes.fromhex(args["owner"][2:]),
                          args["amount"], args["timestamp"])
        assert apply(state, deposit.encode(), context).ok
    assert state.account(1).collateral == 1_500_000 and state.account(2).collateral == 1_500_000
    assert state.globals.deposit_head == heads[3]
    assert token.functions.balanceOf(alice.address).call() == DEV_COLLATERAL - 3_000_000

    # refusals carry their reason, and move nothing
    with pytest.raises(L1Error) as refused:
        alice.send(queue.functions.deposit(bob_address, 1))  # allowance used up
    assert refused.value.reason == "token: allowance too low"
    with pytest.raises(L1Error) as refused:
        alice.send(queue.functions.deposit(bob_address, 0))
    assert refused.value.reason == "deposit: zero amount"
    assert queue.functions.deposit_count().call() == 3
