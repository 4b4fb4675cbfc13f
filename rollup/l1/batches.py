"""Batches as they stand on L1, re-executed from L1 data alone.

Both the watchers and the operator (when it adopts a batch it did not post) read a batch's
transactions and posted roots out of the calldata of the L1 transaction that submitted
it, and re-execute it with the STF from its parent's state. Nothing here trusts the
proposer: the calldata is checked against the step-tree commitment of the
BatchSubmitted event. The Rollup accepts a batch only as the top-level call of a
transaction from an account without code, so that calldata is always the submitting
transaction's input: every accepted batch can be read and re-executed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from web3 import Web3
from web3.contract import Contract

from .. import batch as batch_format
from ..stf import apply
from ..stf.fork import Context, Receipt
from ..stf.prefetch import Prefetch, Recoverer, apply_all
from ..stf.state import State

log = logging.getLogger(__name__)

VALID, INVALID = "valid", "invalid"


class BatchDataError(Exception):
    """A batch's submitting transaction does not hold the batch its event announced (a node
    that lost the transaction, or a rollup contract other than ours)."""


@dataclass(frozen=True)
class Calldata:
    """A batch's transactions and roots (as posted: every one but the last a prefix
    padded with zeros; or whole)."""

    txs: list[bytes]
    roots: list[bytes]


@dataclass(frozen=True)
class Verdict:
    """What re-execution concluded about one batch: VALID, every posted root is the STF's;
    INVALID, `step` is the first whose posted root (`posted`) differs from the STF's
    (`computed`)."""

    kind: str
    step: int | None = None
    posted: bytes | None = None
    computed: bytes | None = None

    def describe(self) -> str:
        if self.kind == INVALID:
            assert self.posted is not None and self.computed is not None
            return (f"invalid at step {self.step}: posted 0x{self.posted.hex()}, "
                    f"the STF gives 0x{self.computed.hex()}")
        return self.kind


def batch_calldata(w3: Web3, rollup: Contract, tx_hash: str, position: int, timestamp: int,
                   steps: int, step_root: bytes) -> Calldata:
    """The transactions and roots of the batch submitted by L1 transaction `tx_hash`,
    checked against the event's fields (`position`, `timestamp`, `steps`, `step_root`)."""
    tx = w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    if tx is None:
        raise BatchDataError(f"submitting transaction {tx_hash} not found")
    if str(tx.get("to") or "").lower() != rollup.address.lower():
        raise BatchDataError(f"transaction {tx_hash} is not a call of the rollup contract")
    try:
        function, args = rollup.decode_function_input(bytes(tx["input"]))
    except Exception as exc:  # noqa: BLE001 - any undecodable input is the same error
        raise BatchDataError(f"calldata of {tx_hash} does not decode: {exc}") from None
    if function.fn_name != "submit":
        raise BatchDataError(f"transaction {tx_hash} calls {function.fn_name}, not submit")
    roots = batch_format.decode_roots(bytes(args["roots"]), bytes(args["state_root"]))
    txs = None if roots is None else batch_format.decode_txs(bytes(args["txs"]), len(roots))
    if (txs is None or roots is None or int(args["position"]) != position or int(args["timestamp"]) != timestamp
            or len(roots) != steps or batch_format.step_root(txs, roots) != step_root):
        raise BatchDataError(f"calldata of {tx_hash} does not match its BatchSubmitted event")
    return Calldata(txs, roots)


def verify_batch(parent: State, data: Calldata, context: Context, recoverer: Recoverer | None = None,
                 prefetches: list[Prefetch] | None = None) -> tuple[Verdict, State | None]:
    """Re-execute a batch on a copy of `parent`: its verdict and, when valid, the state
    after it (`parent` itself is not modified). The STF is total: it never raises. With a
    `recoverer`, the batch's signatures are recovered on its workers ahead of execution
    (or `prefetches`: their recovery already started)."""
    state = parent.copy()
    if prefetches is None:
        prefetches = recoverer.start(data.txs, context) if recoverer is not None else []
    wrong: list[Verdict] = []

    last = len(data.txs) - 1

    def check(step: int, receipt: Receipt) -> bool:
        computed = state.root()
        if batch_format.posted_root(computed, step == last) != batch_format.posted_root(data.roots[step], step == last):
            wrong.append(Verdict(INVALID, step=step, posted=data.roots[step], computed=computed))
            return False
        return True

    apply_all(state, data.txs, context, prefetches, check)
    if wrong:
        return wrong[0], None
    return Verdict(VALID), state


def state_before(parent: State, txs: Sequence[bytes], step: int, context: Context) -> State:
    """The true state before step `step` of a batch starting from `parent` (a copy)."""
    state = parent.copy()
    for tx in txs[:step]:
        apply(state, tx, context)
    return state
