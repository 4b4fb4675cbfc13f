"""Re-execution of a batch from L1 data alone: its transactions and posted roots out of
the submitting transaction's calldata, the L1 queues' heads out of the Bridge, and the
STF (`rollup.stf.apply`) step by step from the parent's state.

Nothing here trusts the operator: the calldata is checked against the batch's step-tree
commitment from the BatchSubmitted event, and the queue heads are read from the Bridge.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from web3 import Web3
from web3.contract import Contract

from rollup import batch as batch_format
from rollup.stf import apply
from rollup.stf.fork import Context
from rollup.stf.hashing import ZERO_HASH
from rollup.stf.state import Config, State

from .store import INVALID, UNVERIFIABLE, VALID

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """What re-execution concluded about one batch.

    VALID: every posted root equals the STF's. INVALID: `step` is the first whose posted
    root (`posted`) differs from the STF's (`computed`). UNVERIFIABLE: the batch could not
    be re-executed (`detail` says why: its calldata is not a direct `submit` call, or its
    parent's true state is unknown because the parent is itself invalid or unverifiable).
    """

    kind: str
    step: int | None = None
    posted: bytes | None = None
    computed: bytes | None = None
    detail: str = ""

    def describe(self) -> str:
        if self.kind == INVALID:
            assert self.posted is not None and self.computed is not None
            return (f"invalid at step {self.step}: posted 0x{self.posted.hex()}, "
                    f"the STF gives 0x{self.computed.hex()}")
        return self.kind + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Calldata:
    """A batch's transactions and posted roots."""

    txs: list[bytes]
    roots: list[bytes]


class Unverifiable(Exception):
    """The batch's data cannot be recovered from L1 by this watcher."""


def batch_calldata(w3: Web3, rollup: Contract, tx_hash: str, position: int, timestamp: int,
                   steps: int, step_root: bytes) -> Calldata:
    """The transactions and roots of the batch submitted by L1 transaction `tx_hash`,
    checked against the event's fields (`position`, `timestamp`, `steps`, `step_root`).

    Only a top-level call of `Rollup.submit` is understood: a batch submitted through
    another contract (its calldata nested in some other call) raises Unverifiable, as
    does calldata that does not match the event (which a direct call cannot produce)."""
    tx = w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    if tx is None:
        raise Unverifiable(f"submitting transaction {tx_hash} not found")
    to = str(tx.get("to") or "")
    if to.lower() != rollup.address.lower():
        raise Unverifiable(f"submitted through another contract ({to or 'a creation'}), not a direct submit call")
    try:
        function, args = rollup.decode_function_input(bytes(tx["input"]))
    except Exception as exc:  # noqa: BLE001 - any undecodable input is the same verdict
        raise Unverifiable(f"calldata does not decode: {exc}") from None
    if function.fn_name != "submit":
        raise Unverifiable(f"top-level call is {function.fn_name}, not submit")
    roots = [bytes(r) for r in args["roots"]]
    txs = batch_format.decode_txs(bytes(args["txs"]), len(roots))
    if txs is None:
        raise Unverifiable("transaction list does not decode")
    if (int(args["position"]) != position or int(args["timestamp"]) != timestamp or len(roots) != steps
            or batch_format.step_root(txs, roots) != step_root):
        raise Unverifiable("calldata does not match the BatchSubmitted event")
    return Calldata(txs, roots)


class QueueHeads:
    """The Bridge's deposit and forced-request hash-chain heads, read once each (they are
    append-only: head i never changes once written)."""

    def __init__(self, bridge: Contract) -> None:
        self.bridge = bridge
        self._deposit: list[bytes] = [ZERO_HASH]
        self._forced: list[bytes] = [ZERO_HASH]

    def deposits(self, count: int) -> list[bytes]:
        """deposit_head(0..count), deposit_head(0) being zero."""
        while len(self._deposit) <= count:
            self._deposit.append(bytes(self.bridge.functions.deposit_head(len(self._deposit)).call()))
        return self._deposit[: count + 1]

    def forced(self, count: int) -> list[bytes]:
        """forced_head(0..count), forced_head(0) being zero."""
        while len(self._forced) <= count:
            self._forced.append(bytes(self.bridge.functions.forced_head(len(self._forced)).call()))
        return self._forced[: count + 1]

    def context(self, config: Config, timestamp: int, deposit_count: int, forced_count: int) -> Context:
        """The STF context of a batch: its timestamp and the queues as they stood when it
        was posted (the counts the Rollup recorded)."""
        return Context(config, timestamp, self.deposits(deposit_count), self.forced(forced_count))


def verify_batch(parent: State, data: Calldata, context: Context) -> tuple[Verdict, State | None]:
    """Re-execute a batch on a copy of `parent`. Returns its verdict and, when valid, the
    state after it (`parent` itself is not modified). The STF is total, so any byte
    string is a transaction; should it raise all the same (a bug), the batch is reported
    unverifiable rather than judged."""
    state = parent.copy()
    for i, (tx, posted) in enumerate(zip(data.txs, data.roots, strict=True)):
        try:
            apply(state, tx, context)
            computed = state.root()
        except Exception as exc:  # noqa: BLE001 - reported, never judged
            log.error("the STF raised at step %d (tx 0x%s): %r", i, tx[:64].hex(), exc)
            return Verdict(UNVERIFIABLE, step=i, detail=f"the STF raised at step {i}: {exc!r}"), None
        if computed != posted:
            return Verdict(INVALID, step=i, posted=posted, computed=computed), None
    return Verdict(VALID), state


def state_before(parent: State, txs: Sequence[bytes], step: int, context: Context) -> State:
    """The true state before step `step` of a batch starting from `parent` (a copy)."""
    state = parent.copy()
    for tx in txs[:step]:
        apply(state, tx, context)
    return state
