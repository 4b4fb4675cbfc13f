"""The rollup's L1 contracts as Python calls: bonds, batches, finalization, fraud proofs,
forced requests, freeze, withdrawal claims and escapes. Shared by the operator, the
watchers, the client and the tests; each call is one L1 transaction sent with `l1`'s key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from web3.contract import Contract
from web3.logs import DISCARD

from .. import batch as batch_format
from ..deploy import Deployment
from ..stf.hashing import ZERO_HASH, keccak
from ..stf.state import Config, State
from ..stf.witness import step_witness
from . import records
from .client import L1

PENDING, FINAL, REVERTED = 1, 2, 3
STATUS_NAMES = {0: "unknown", PENDING: "pending", FINAL: "final", REVERTED: "reverted"}


@dataclass(frozen=True)
class BatchInfo:
    id: int
    position: int
    state_root: bytes
    step_root: bytes
    steps: int
    timestamp: int
    deposit_count: int
    forced_count: int
    proposer: str
    deadline: int
    status: int

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, "unknown")


def config_of(deployment: Deployment) -> Config:
    """The STF configuration of a deployment: chain id, the bridge as EIP-712 verifying
    contract, the oracle committee."""
    params = deployment.params
    return Config(
        deployment.chain_id,
        bytes.fromhex(deployment.contracts["Bridge"][2:]),
        tuple(bytes.fromhex(a[2:]) for a in params["oracle_signers"]),
        int(params["oracle_quorum"]),
    )


class RollupL1:
    """The Rollup and Bridge contracts of one deployment, used with one key."""

    def __init__(self, l1: L1, deployment: Deployment) -> None:
        self.l1 = l1
        self.deployment = deployment
        self.rollup: Contract = l1.contract("Rollup", deployment.contracts["Rollup"])
        self.bridge: Contract = l1.contract("Bridge", deployment.contracts["Bridge"])
        self.token: Contract = l1.contract("CollateralToken", deployment.contracts["CollateralToken"])

    # --- reads

    def batch(self, batch_id: int) -> BatchInfo:
        return BatchInfo(batch_id, *self.rollup.functions.batches(batch_id).call())

    def root_at(self, position: int) -> bytes:
        """The state root a batch at `position` starts from."""
        if position == 0:
            return bytes(self.rollup.functions.genesis_root().call())
        return self.batch(self.rollup.functions.live(position - 1).call()).state_root

    def deposit_heads(self, count: int) -> list[bytes]:
        return [ZERO_HASH] + [bytes(self.bridge.functions.deposit_head(i).call()) for i in range(1, count + 1)]

    def forced_heads(self, count: int) -> list[bytes]:
        return [ZERO_HASH] + [bytes(self.bridge.functions.forced_head(i).call()) for i in range(1, count + 1)]

    # --- proposer

    def bond(self) -> Any:
        return self.l1.send(self.rollup.functions.bond(), value=int(self.rollup.functions.bond_amount().call()))

    def submit(self, txs: Sequence[bytes], roots: Sequence[bytes], timestamp: int,
               position: int | None = None) -> tuple[int, Any]:
        """Post a batch; returns (batch id, receipt)."""
        if position is None:
            position = int(self.rollup.functions.length().call())
        receipt = self.l1.send(self.rollup.functions.submit(
            position, timestamp, batch_format.encode_txs(txs), list(roots)))
        event = self.rollup.events.BatchSubmitted().process_receipt(receipt, errors=DISCARD)[0]
        return int(event["args"]["id"]), receipt

    def finalize(self, limit: int = 64) -> Any:
        return self.l1.send(self.rollup.functions.finalize(limit))

    # --- challenger

    def challenge_call(self, batch_id: int, step: int, txs: Sequence[bytes], roots: Sequence[bytes],
                       pre_state: State) -> Any:
        """The contract call proving step `step` of a batch wrong, given the batch's
        transactions and posted roots and the true state before that step."""
        tx = txs[step]
        path = batch_format.step_proof(txs, roots, step)
        if step > 0:
            previous_root, previous_hash = roots[step - 1], keccak(txs[step - 1])
            previous_path = batch_format.step_proof(txs, roots, step - 1)
        else:
            previous_root, previous_hash, previous_path = ZERO_HASH, ZERO_HASH, []
        w = records.step_witness(step_witness(pre_state, tx))
        return self.rollup.functions.challenge(
            batch_id, step, tx, roots[step], path, previous_root, previous_hash, previous_path, w)

    def challenge(self, batch_id: int, step: int, txs: Sequence[bytes], roots: Sequence[bytes],
                  pre_state: State) -> Any:
        return self.l1.send(self.challenge_call(batch_id, step, txs, roots, pre_state))

    # --- users

    def deposit(self, owner: str, amount: int) -> Any:
        self.l1.send(self.token.functions.approve(self.bridge.address, amount))
        return self.l1.send(self.bridge.functions.deposit(owner, amount))

    def force_withdraw(self, amount: int) -> Any:
        return self.l1.send(self.bridge.functions.force_withdraw(amount))

    def force_close(self, market: int) -> Any:
        return self.l1.send(self.bridge.functions.force_close(market))

    def freeze(self, forced_index: int, tip_state: State) -> Any:
        """Freeze, with the globals of the latest batch's state (`tip_state`)."""
        accounts, markets, _, withdrawals = tip_state.root_parts()
        return self.l1.send(self.rollup.functions.freeze(
            forced_index, accounts, markets, records.globals_(tip_state.globals), withdrawals))

    def freeze_on_deposit(self, deposit: Any, tip_state: State) -> Any:
        """Freeze because L1 deposit `deposit` (a stf Deposit) is overdue in `tip_state`."""
        accounts, markets, _, withdrawals = tip_state.root_parts()
        return self.l1.send(self.rollup.functions.freeze_on_deposit(
            deposit.index, deposit.account, records.address(deposit.owner), deposit.amount, deposit.l1_time,
            accounts, markets, records.globals_(tip_state.globals), withdrawals))

    def claim(self, batch_id: int, index: int, final_state: State) -> Any:
        """Claim withdrawal record `index` of the final batch `batch_id` (whose state is `final_state`)."""
        accounts, markets, globals_hash, _ = final_state.root_parts()
        return self.l1.send(self.bridge.functions.claim(
            batch_id, index, records.withdrawal(final_state.withdrawals[index]),
            records.proof(final_state.withdrawal_proof(index)), accounts, markets, globals_hash))

    def reclaim_deposit(self, deposit: Any, final_state: State) -> Any:
        """Pay back an L1 deposit (a stf Deposit) that the last final state had not credited."""
        accounts, markets, _, withdrawals = final_state.root_parts()
        return self.l1.send(self.bridge.functions.reclaim_deposit(
            deposit.index, deposit.account, records.address(deposit.owner), deposit.amount, deposit.l1_time,
            accounts, markets, records.globals_(final_state.globals), withdrawals))

    def escape(self, account_id: int, final_state: State) -> Any:
        """Exit account `account_id` with its equity at the last final root (`final_state`)."""
        _, _, _, withdrawals = final_state.root_parts()
        market_tuples, listed = records.markets(final_state.markets)
        return self.l1.send(self.bridge.functions.escape(
            account_id, records.account(final_state.account(account_id)),
            records.proof(final_state.account_proof(account_id)), market_tuples, listed,
            records.globals_(final_state.globals), withdrawals))
