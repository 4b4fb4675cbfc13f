"""Reentrancy through the collateral token: a hostile ERC-20 calls back into the bridge
(a second deposit, a second claim of the same withdrawal) in the middle of every
transfer. Every inner call is refused; each payment happens once."""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.types import RPCEndpoint

from rollup.deploy import deploy
from rollup.l1 import records
from rollup.l1.client import L1
from rollup.l1.rollup_client import RollupL1
from rollup.stf import builders
from rollup.stf.transactions import AdvanceTime
from tests.conftest import params_for
from tests.test_rollup_l1 import ALICE, DEPLOYER, OPERATOR, WINDOW, Operator, deposits_since, travel


def test_hostile_token_cannot_reenter_deposit_or_claim(l1_url: str) -> None:
    w3 = Web3(Web3.HTTPProvider(l1_url))
    snapshot = w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    try:
        deployer = L1(l1_url, DEPLOYER)
        hostile = deployer.deploy("HostileToken")
        deployment = deploy(deployer, token=hostile.address, params=params_for(OPERATOR, challenge_window=WINDOW))
        alice = RollupL1(L1(l1_url, ALICE), deployment)
        token = alice.l1.contract("HostileToken", hostile.address)
        bridge = alice.bridge
        deployer.send(token.functions.mint(alice.l1.address, 10_000_000))
        alice.l1.send(token.functions.approve(bridge.address, 10_000_000))

        # deposit: the token tries a second deposit from inside transferFrom
        inner: Any = bridge.functions.deposit(alice.l1.address, 1)
        deployer.send(token.functions.arm(bridge.address, inner._encode_transaction_data()))
        alice.l1.send(bridge.functions.deposit(alice.l1.address, 4_000_000))
        assert token.functions.attempts().call() == 1 and token.functions.reentered().call() == 0
        assert bridge.functions.deposit_count().call() == 1
        deployer.send(token.functions.arm("0x" + "00" * 20, b""))

        # a withdrawal, final; its claim is replayed from inside transfer
        op = Operator(RollupL1(L1(l1_url, OPERATOR), deployment), deployment.genesis(), w3)
        op.chain.bond()
        op.post([AdvanceTime(op.now()).encode(), *deposits_since(op.chain, 0)])
        account = bridge.functions.account_of(alice.l1.address).call()
        withdraw = builders.withdraw(account, 1_500_000, 1, 2**40, ALICE, op.context(op.now())).encode()
        travel(w3, 1)
        batch_id, _, _ = op.post([withdraw])
        travel(w3, WINDOW + 1)
        op.chain.finalize()
        state = op.states[-1]
        accounts, markets, globals_hash, _ = state.root_parts()
        claim: Any = bridge.functions.claim(
            batch_id, 0, records.withdrawal(state.withdrawals[0]), records.proof(state.withdrawal_proof(0)),
            accounts, markets, globals_hash)
        deployer.send(token.functions.arm(bridge.address, claim._encode_transaction_data()))
        before = token.functions.balanceOf(alice.l1.address).call()
        alice.claim(batch_id, 0, state)
        assert token.functions.balanceOf(alice.l1.address).call() == before + 1_500_000
        assert token.functions.attempts().call() == 2 and token.functions.reentered().call() == 0
        assert bridge.functions.claimed(0).call()
    finally:
        w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])
