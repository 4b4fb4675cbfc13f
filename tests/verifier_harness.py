"""The L1 verifier beside the Python STF: deploy the verifier contracts on a real node and
compare one step at a time (reason, applied, post-state root)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from rollup import contracts
from rollup.l1 import records
from rollup.l1.client import L1
from rollup.stf import apply
from rollup.stf.fork import Context
from rollup.stf.hashing import ZERO_HASH
from rollup.stf.signing import address_of
from rollup.stf.state import Config, State
from rollup.stf.witness import step_witness
from tests.stf_world import ORACLE_KEYS

RULES = ("VerifyMarket", "VerifyTrade", "VerifyAccount", "VerifyRisk")
TAGS = {
    "VerifyMarket": {0x05, 0x06, 0x0A},
    "VerifyTrade": {0x03},
    "VerifyAccount": {0x01, 0x02, 0x04, 0x09},
    "VerifyRisk": {0x07, 0x08},
}

ALL_TAGS = set().union(*TAGS.values())


def _first_change(pushed: list[bytes], heads: Sequence[bytes]) -> int:
    """The first index where `heads` differs from what the inbox holds (or extends it)."""
    for i, head in enumerate(heads):
        if i >= len(pushed) or pushed[i] != head:
            return i
    return len(heads)


@dataclass
class EvmVerifier:
    l1: L1
    present: set[int] = field(default_factory=set)
    """Type tags whose rules contract exists (the others are skipped, and counted)."""

    def __post_init__(self) -> None:
        self.inbox = self.l1.deploy("InboxHarness")
        names = set(contracts.contract_names())
        deployed = {}
        for name in RULES:
            if name in names:
                deployed[name] = self.l1.deploy(name).address
                self.present |= TAGS[name]
        fallback = deployed["VerifyMarket"]
        signers = [address_of(k) for k in ORACLE_KEYS]
        self.verifier = self.l1.deploy(
            "Verifier", *(deployed.get(name, fallback) for name in RULES),
            self.inbox.address, [records.address(s) for s in signers], 2,
        )
        self.config = Config(self.l1.chain_id, bytes.fromhex(self.inbox.address[2:]), tuple(signers), 2)
        self._pushed: tuple[list[bytes], list[bytes]] = ([ZERO_HASH], [ZERO_HASH])  # heads[0] = 0 needs no write
        self.skipped: Counter[int] = Counter()

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

    def step(self, state: State, tx: bytes, context: Context) -> tuple[int, bool, bytes]:
        self.sync(context)
        w = records.step_witness(step_witness(state, tx))
        reason, applied, root = self.verifier.functions.step(
            tx, state.root(), context.timestamp, len(context.deposit_heads) - 1,
            len(context.forced_heads) - 1, w,
        ).call()
        return reason, applied, bytes(root)

    def compare(self, state: State, tx: bytes, context: Context) -> tuple[int, int] | None:
        """Apply `tx` to a copy of `state` in Python and on the EVM; assert they agree.
        Returns (type tag, reason) or None if the type's rules are not deployed."""
        tag = tx[0] if tx else 0
        after = state.copy()
        receipt = apply(after, tx, context)
        if tag in ALL_TAGS and tag not in self.present:
            self.skipped[tag] += 1
            return None
        reason, applied, root = self.step(state, tx, context)
        assert (reason, applied) == (int(receipt.reason), receipt.applied), (tx.hex(), receipt, reason, applied)
        assert root == after.root(), (tx.hex(), receipt)
        return receipt.kind, int(receipt.reason)
