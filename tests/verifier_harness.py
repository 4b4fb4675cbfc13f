"""The L1 verifier beside the Python STF: deploy the verifier contracts on a real node and
compare one step at a time (reason, applied, post-state root), with the true witness of
the pre-state and with forged ones (tests/forge.py)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from web3.types import RPCEndpoint

from rollup.contracts import function_abi
from rollup.l1 import records
from rollup.l1.client import L1
from rollup.stf import apply
from rollup.stf.fork import Context
from rollup.stf.hashing import ZERO_HASH
from rollup.stf.signing import address_of
from rollup.stf.state import Config, State
from rollup.stf.witness import step_witness
from tests.forge import forge_witness
from tests.stf_world import ORACLE_KEYS

RULES = ("VerifyMarket", "VerifyTrade", "VerifyAccount", "VerifyForced", "VerifyRisk", "Portfolio")
TAGS = {
    "VerifyMarket": {0x01, 0x05, 0x06, 0x0A, 0x0D, 0x0E},
    "VerifyTrade": {0x03, 0x0C},
    "VerifyAccount": {0x02, 0x04, 0x0B, 0x0F},
    "VerifyForced": {0x09},
    "VerifyRisk": {0x07, 0x08},
}

ALL_TAGS = set().union(*TAGS.values())
"""Every transaction type: each must reach the verifier (a missing rules contract fails)."""


class Reverted(Exception):
    """An eth_call reverted; `reason` is its revert string ("" for none)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _first_change(pushed: list[bytes], heads: Sequence[bytes]) -> int:
    """The first index where `heads` differs from what the inbox holds (or extends it)."""
    for i, head in enumerate(heads):
        if i >= len(pushed) or pushed[i] != head:
            return i
    return len(heads)


@dataclass
class EvmVerifier:
    l1: L1

    def __post_init__(self) -> None:
        self.inbox = self.l1.deploy("InboxHarness")
        deployed = {name: self.l1.deploy(name).address for name in RULES}
        signers = [address_of(k) for k in ORACLE_KEYS]
        self.verifier = self.l1.deploy(
            "Verifier", *(deployed[name] for name in RULES),
            self.inbox.address, [records.address(s) for s in signers], 2,
        )
        self.config = Config(self.l1.chain_id, bytes.fromhex(self.inbox.address[2:]), tuple(signers), 2)
        self._pushed: tuple[list[bytes], list[bytes]] = ([ZERO_HASH], [ZERO_HASH])  # heads[0] = 0 needs no write
        self._selector, self._types = function_abi("Verifier", "step")

    def sync(self, context: Context) -> None:
        """Make the inbox hold every queue head `context` sees. Each scenario starts from a
        fresh world, so a head the inbox holds may belong to an earlier scenario's queue:
        every head from the first one that differs is written again."""
        d = _first_change(self._pushed[0], context.deposit_heads)
        f = _first_change(self._pushed[1], context.forced_heads)
        deposits, forced = list(context.deposit_heads[d:]), list(context.forced_heads[f:])
        while deposits or forced:
            self.l1.send(self.inbox.functions.set_heads(d, deposits[:256], f, forced[:256]))
            d, f, deposits, forced = d + len(deposits[:256]), f + len(forced[:256]), deposits[256:], forced[256:]
        for pushed, heads in zip(self._pushed, (context.deposit_heads, context.forced_heads), strict=True):
            pushed[:] = heads  # what the inbox holds past them is never read

    def step(self, state: State, tx: bytes, context: Context, w: tuple[object, ...] | None = None,
             ) -> tuple[int, bool, bytes]:
        """Verifier.step on `state`'s root with the true witness (or `w`)."""
        self.sync(context)
        if w is None:
            w = records.step_witness(step_witness(state, tx))
        data = self._selector + abi_encode(self._types, [
            tx, state.root(), context.timestamp, len(context.deposit_heads) - 1, len(context.forced_heads) - 1, w])
        answer = self.l1.w3.provider.make_request(
            RPCEndpoint("eth_call"), [{"to": self.verifier.address, "data": "0x" + data.hex()}, "latest"])
        if "error" in answer:
            raise Reverted(revert_string(answer["error"]))
        reason, applied, root = abi_decode(["uint8", "bool", "bytes32"], bytes.fromhex(answer["result"][2:]))
        return reason, applied, bytes(root)

    def compare(self, state: State, tx: bytes, context: Context) -> tuple[int, int]:
        """Apply `tx` to a copy of `state` in Python and on the EVM; assert they agree.
        Returns (type tag, reason)."""
        after = state.copy()
        receipt = apply(after, tx, context)
        reason, applied, root = self.step(state, tx, context)
        assert (reason, applied) == (int(receipt.reason), receipt.applied), (tx.hex(), receipt, reason, applied)
        assert root == after.root(), (tx.hex(), receipt)
        return receipt.kind, int(receipt.reason)

    def compare_forged(self, state: State, tx: bytes, context: Context, rng: random.Random) -> tuple[str, str]:
        """Verifier.step with one field of the true witness changed: it must refuse the
        witness (a revert naming a witness check) or, when the field is one the step does
        not read, give exactly the STF's result. Returns the field's name and the revert
        reason, or "same"."""
        after = state.copy()
        receipt = apply(after, tx, context)
        forged, field_name = forge_witness(records.step_witness(step_witness(state, tx)), rng)
        try:
            reason, applied, root = self.step(state, tx, context, forged)
        except Reverted as exc:
            assert exc.reason.startswith("witness: "), (field_name, exc.reason)
            return field_name, exc.reason
        assert (reason, applied, root) == (int(receipt.reason), receipt.applied, after.root()), (
            field_name, tx.hex(), receipt, reason, applied)
        return field_name, "same"


def revert_string(error: Mapping[str, object]) -> str:
    """The Error(string) of a JSON-RPC error's revert data ("" when there is none)."""
    data = error.get("data")
    if isinstance(data, dict):
        data = data.get("data")
    raw = bytes.fromhex(str(data)[2:]) if isinstance(data, str) and data.startswith("0x") else b""
    if raw[:4] != bytes.fromhex("08c379a0"):
        return ""
    return str(abi_decode(["string"], raw[4:])[0])
