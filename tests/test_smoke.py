"""Deploy plus a smoke flow, the same on our py-evm node and on anvil: only standard
JSON-RPC is used, so the system runs on any Ethereum node."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_abi import encode
from eth_utils import keccak
from web3 import Web3

from rollup.deploy import DEV_COLLATERAL, Deployment
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1, L1Error

ALICE, BOB = (bytes(a.key) for a in dev_accounts(2))


@pytest.fixture
def clean_l1(any_l1: str) -> Iterator[str]:
    w3 = Web3(Web3.HTTPProvider(any_l1))
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    yield any_l1
    w3.provider.make_request("evm_revert", [snapshot])


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
    assert set(deployment.contracts) == {"CollateralToken", "DepositQueue"}

    alice = L1(clean_l1, ALICE)
    token = alice.contract("CollateralToken", deployment.contracts["CollateralToken"])
    queue = alice.contract("DepositQueue", deployment.contracts["DepositQueue"])
    assert token.functions.balanceOf(alice.address).call() == DEV_COLLATERAL
    assert queue.functions.token().call() == token.address

    bob_address = L1(clean_l1, BOB).address
    alice.send(token.functions.approve(queue.address, 3_000_000))
    heads = [b"\0" * 32]
    for amount in (1_000_000, 2_000_000):
        receipt = alice.send(queue.functions.deposit(bob_address, amount))
        block = alice.w3.eth.get_block(receipt["blockNumber"])
        index = len(heads) - 1
        heads.append(keccak(heads[-1] + encode(
            ["uint256", "address", "address", "uint256", "uint256"],
            [index, alice.address, bob_address, amount, block["timestamp"]],
        )))
    # the hash chain recomputed from events alone equals the contract's
    events = queue.events.Deposited().get_logs(from_block=deployment.deploy_block)
    assert [e["args"]["amount"] for e in events] == [1_000_000, 2_000_000]
    assert [e["args"]["head"] for e in events] == heads[1:]
    assert queue.functions.head(2).call() == heads[2]
    assert queue.functions.count().call() == 2
    assert token.functions.balanceOf(queue.address).call() == 3_000_000
    assert token.functions.balanceOf(alice.address).call() == DEV_COLLATERAL - 3_000_000

    # refusals carry their reason, and move nothing
    with pytest.raises(L1Error) as refused:
        alice.send(queue.functions.deposit(bob_address, 1))  # allowance used up
    assert refused.value.reason == "token: allowance too low"
    with pytest.raises(L1Error) as refused:
        alice.send(queue.functions.deposit(bob_address, 0))
    assert refused.value.reason == "deposit: zero amount"
    assert queue.functions.count().call() == 2
