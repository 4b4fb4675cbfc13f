"""The rollup's L1 contracts as Python calls: bonds, batches, finalization, fraud proofs,
forced requests, freeze, withdrawal claims and escapes. Shared by the operator, the
watchers, the client and the tests; each call is one L1 transaction sent with `l1`'s key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from .. import batch as batch_format
from ..contracts import encode_call
from ..deploy import Deployment
from ..stf.hashing import ZERO_HASH, keccak
from ..stf.state import Config, State
from ..stf.witness import markets_read, step_witness
from . import records
from .client import L1, EncodedCall, L1Error, revert_reason

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
    parent_root: bytes

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, "unknown")


NOT_COMMITTED = "challenge: not committed"
"""The refusal of a reveal that passes every other check: the step is wrong."""


def commitment(challenger: str, batch_id: int, step: int, claimed_root: bytes, salt: bytes) -> bytes:
    """What a challenger commits to before revealing its proof (Rollup.commitment)."""
    return keccak(abi_encode(["address", "uint256", "uint256", "bytes32", "bytes32"],
                             [challenger, batch_id, step, claimed_root, salt]))


def submission_gas(data_bytes: int, steps: int) -> int:
    """An upper bound on the gas of `Rollup.submit` with `data_bytes` bytes of transactions
    and root prefixes in `steps` steps: calldata at 16 gas a byte (and the ABI's words), at
    most 6,000 a step for hashing it into the step tree, 500,000 for the batch's record
    (new storage), the checks and the event (measured: ~3,000 a step, ~315,000 fixed)."""
    return 21_000 + 16 * (data_bytes + 512) + 6_000 * steps + 500_000


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
        self.verifier: Contract = l1.contract("Verifier", deployment.contracts["Verifier"])
        self.views = l1.views("Rollup", deployment.contracts["Rollup"])
        """The Rollup's view functions, read lightly (`wire.Views`)."""

    # --- reads

    def batch(self, batch_id: int, block: Any = "latest") -> BatchInfo:
        return BatchInfo(batch_id, *self.views.call("batches", batch_id, block=block))

    def root_at(self, position: int) -> bytes:
        """The state root a batch at `position` starts from."""
        if position == 0:
            return bytes(self.views.call("genesis_root"))
        return self.batch(self.views.call("live", position - 1)).state_root

    def live_chain(self) -> list[BatchInfo]:
        """The live batches, by position."""
        length = int(self.views.call("length"))
        return [self.batch(int(self.views.call("live", p))) for p in range(length)]

    # --- proposer

    def bond(self) -> Any:
        return self.l1.send(self.rollup.functions.bond(), value=int(self.rollup.functions.bond_amount().call()))

    def submit(self, txs: Sequence[bytes], roots: Sequence[bytes], timestamp: int,
               position: int | None = None) -> tuple[int, Any]:
        """Post a batch; returns (batch id, receipt)."""
        if position is None:
            position = int(self.rollup.functions.length().call())
        prefixes, state_root = batch_format.encode_roots(roots)
        blob = batch_format.encode_txs(txs)
        call = self.rollup.functions.submit(position, timestamp, blob, prefixes, state_root)
        try:
            # sent with a bound on its gas instead of an estimate: the L1 executes a batch
            # once instead of three times (an estimate runs it at least twice)
            receipt = self.l1.send(call, gas=submission_gas(len(blob) + len(prefixes), len(txs)))
        except L1Error as exc:
            if exc.reason is not None:
                raise
            try:  # refused on chain: run it again to name L1 reason
                call.estimate_gas({"from": self.l1.address}, block_identifier="pending")
            except ContractLogicError as refusal:
                raise L1Error(f"reverted: {refusal.message}", reason=revert_reason(refusal)) from None
            raise
        event = self.rollup.events.BatchSubmitted().process_receipt(receipt, errors=DISCARD)[0]
        return int(event["args"]["id"]), receipt

    def finalize(self, limit: int = 64) -> Any:
        return self.l1.send(self.rollup.functions.finalize(limit))

    # --- challenger

    def challenge_call(self, batch_id: int, step: int, txs: Sequence[bytes], roots: Sequence[bytes],
                       pre_state: State, salt: bytes = ZERO_HASH) -> Any:
        """The contract call revealing the proof that step `step` of a batch is wrong,
        given the batch's transactions and roots (whole or as posted) and the true state
        before that step (`salt` is the one its commitment was made with). The previous
        step is opened with the whole pre-state root, which begins with its posted prefix."""
        tx = txs[step]
        path = batch_format.step_proof(txs, roots, step)
        posted = batch_format.posted_root(roots[step], step == len(roots) - 1)
        if step > 0:
            previous_root, previous_hash = pre_state.root(), keccak(txs[step - 1])
            previous_path = batch_format.step_proof(txs, roots, step - 1)
        else:
            previous_root, previous_hash, previous_path = ZERO_HASH, ZERO_HASH, []
        w = records.step_witness(step_witness(pre_state, tx))
        return EncodedCall(self.l1.w3, self.rollup.address, encode_call("Rollup", "challenge", [
            batch_id, step, tx, posted, path, previous_root, previous_hash, previous_path, w, salt]))

    def computed_root(self, batch_id: int, step: int, txs: Sequence[bytes], roots: Sequence[bytes],
                      pre_state: State) -> bytes:
        """The post-state root the L1 verifier computes for step `step` from `pre_state`
        (an eth_call of Verifier.step: exactly what the reveal will compare)."""
        batch = self.batch(batch_id)
        pre_root = pre_state.root() if step > 0 else batch.parent_root
        w = records.step_witness(step_witness(pre_state, txs[step]))
        try:
            _, _, computed = self.verifier.functions.step(
                txs[step], pre_root, batch.timestamp, batch.deposit_count, batch.forced_count, w).call()
        except ContractLogicError as exc:
            raise L1Error(f"reverted: {exc.message}", reason=revert_reason(exc)) from None
        return bytes(computed)

    def commitment(self, batch_id: int, step: int, claimed_root: bytes, salt: bytes) -> bytes:
        return commitment(self.l1.address, batch_id, step, claimed_root, salt)

    def commit(self, commitment_: bytes) -> Any:
        return self.l1.send(self.rollup.functions.commit(commitment_))

    def challenge(self, batch_id: int, step: int, txs: Sequence[bytes], roots: Sequence[bytes],
                  pre_state: State, salt: bytes | None = None) -> Any:
        """Prove step `step` wrong in two L1 transactions: the commitment, then the reveal
        in a later block. Raises L1Error with L1's reason, before committing anything,
        when the reveal would be refused for any other reason than the missing commitment
        (the step is correct, the window closed, a forged witness...)."""
        salt = os.urandom(32) if salt is None else salt
        call = self.challenge_call(batch_id, step, txs, roots, pre_state, salt)
        try:
            call.estimate_gas({"from": self.l1.address}, block_identifier="pending")
        except ContractLogicError as exc:
            reason = revert_reason(exc)
            if reason != NOT_COMMITTED:
                raise L1Error(f"reverted: {exc.message}", reason=reason) from None
        claimed = self.computed_root(batch_id, step, txs, roots, pre_state)
        self.commit(self.commitment(batch_id, step, claimed, salt))
        return self.l1.send(call)

    def claim_reward(self, batch_id: int) -> Any:
        return self.l1.send(self.rollup.functions.claim_reward(batch_id))

    # --- users

    def deposit(self, owner: str, amount: int) -> Any:
        self.l1.send(self.token.functions.approve(self.bridge.address, amount))
        return self.l1.send(self.bridge.functions.deposit(owner, amount))

    def force_withdraw(self, amount: int) -> Any:
        return self.l1.send(self.bridge.functions.force_withdraw(amount))

    def force_close(self, market: int) -> Any:
        return self.l1.send(self.bridge.functions.force_close(market))

    def freeze(self, forced_index: int, final_state: State) -> Any:
        """Freeze, with the globals of the state the freeze is decided on (`final_state`:
        after the last batch whose challenge window has passed)."""
        accounts, markets, _, withdrawals = final_state.root_parts()
        return self.l1.send(self.rollup.functions.freeze(
            forced_index, accounts, markets, records.globals_(final_state.globals), withdrawals))

    def freeze_on_deposit(self, deposit: Any, final_state: State) -> Any:
        """Freeze because L1 deposit `deposit` (a stf Deposit) is overdue in `final_state`
        (as for `freeze`)."""
        accounts, markets, _, withdrawals = final_state.root_parts()
        return self.l1.send(self.rollup.functions.freeze_on_deposit(
            deposit.index, deposit.account, records.address(deposit.owner), deposit.amount, deposit.l1_time,
            accounts, markets, records.globals_(final_state.globals), withdrawals))

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
        account = final_state.account(account_id)
        opened = markets_read(final_state, None, [account])
        encoded, listed, hashes = records.market_records(final_state.markets, opened)
        return self.l1.send(self.bridge.functions.escape(
            account_id, records.account(account), records.proof(final_state.account_proof(account_id)),
            encoded, listed, hashes, records.globals_(final_state.globals), withdrawals))
