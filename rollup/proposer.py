"""A proposer of last resort: moves the chain forward from L1 data alone.

When the sequencer has been silent for the deployment's silence period, any bonded
address may propose (docs/l1-contracts.md). `Proposer` lets a user do it without the
operator: it rebuilds the live chain's state from L1 (every live batch re-executed from
its calldata, as a watcher does), then posts a batch that advances the clock and
consumes the oldest pending deposits and forced requests (as many as fit), so that a
forced withdrawal is carried out and, a challenge window later, claimable on L1.

    rollup propose --l1-rpc URL --deployment FILE --key HEX [--loop] [--interval S]

It refuses to build on an invalid batch (a watcher must prove it wrong first) and says
why it cannot post (the sequencer is active until a given time, not bonded, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from web3 import Web3

from .batch import MAX_BATCH_BYTES, MAX_STEPS, prefix_length
from .deploy import Deployment
from .l1.batches import VALID, batch_calldata, verify_batch
from .l1.client import L1, L1Error
from .l1.inbox import Inbox
from .l1.rollup_client import RollupL1, config_of
from .stf import apply
from .stf.fork import Context
from .stf.state import State
from .stf.transactions import AdvanceTime

log = logging.getLogger("rollup.proposer")

QUEUE_ENTRIES = 512
"""Queue entries one proposed batch takes at most (the rest go in the next ones)."""


class CannotPropose(Exception):
    """Why a batch cannot be proposed now."""


@dataclass(frozen=True)
class Proposal:
    batch_id: int
    position: int
    steps: int
    deposits: int
    forced: int


class Proposer:
    """Rebuilds the rollup's state from L1 and proposes batches with `key`."""

    def __init__(self, l1_url: str, deployment: Deployment, key: str | bytes, confirmations: int = 0) -> None:
        self.deployment = deployment
        self.chain = RollupL1(L1(l1_url, key), deployment)
        self.w3 = self.chain.l1.w3
        self.config = config_of(deployment)
        self.inbox = Inbox(self.chain.bridge, deployment.deploy_block, confirmations, self.chain.l1.rpc)
        self.genesis = deployment.genesis()

    def tip(self) -> tuple[int, State]:
        """(the live chain's length, the state after its last batch), re-executed from L1.
        Raises CannotPropose if a live batch is invalid (it must be proven wrong first)."""
        self.inbox.sync()
        submitted = {int(e["args"]["id"]): Web3.to_hex(e["transactionHash"])
                     for e in self.chain.rollup.events.BatchSubmitted().get_logs(from_block=self.deployment.deploy_block)}
        state = self.genesis
        chain = self.chain.live_chain()
        for position, info in enumerate(chain):
            data = batch_calldata(self.w3, self.chain.rollup, submitted[info.id], position, info.timestamp, info.steps,
                                  info.step_root)
            deposits, forced = self.inbox.heads(info.deposit_count, info.forced_count)
            verdict, after = verify_batch(state, data, Context(self.config, info.timestamp, deposits, forced))
            if verdict.kind != VALID or after is None:
                raise CannotPropose(f"the live batch {info.id} at position {position} is {verdict.describe()}: "
                                    "a watcher must prove it wrong before the chain can move on")
            state = after
        return len(chain), state

    def batch(self, state: State, extra: Sequence[bytes] = ()) -> tuple[list[bytes], list[bytes], int, int, int]:
        """The next batch on `state`: the clock to the latest L1 block's time, the oldest
        pending queue entries that fit, then `extra`. (txs, roots, timestamp, deposits, forced)."""
        timestamp = max(int(self.w3.eth.get_block("latest")["timestamp"]), state.globals.time)
        deposits, forced = self.inbox.heads(len(self.inbox.deposits), len(self.inbox.forced))
        context = Context(self.config, timestamp, deposits, forced)
        state = state.copy()
        txs: list[bytes] = []
        roots: list[bytes] = []
        size = 0

        def add(tx: bytes) -> bool:
            nonlocal size
            if len(txs) >= MAX_STEPS or size + prefix_length(len(tx)) + len(tx) > MAX_BATCH_BYTES:
                return False
            if apply(state, tx, context).applied:
                txs.append(tx)
                roots.append(state.root())
                size += prefix_length(len(tx)) + len(tx)
            return True

        if timestamp > state.globals.time:
            add(AdvanceTime(timestamp).encode())
        g = state.globals
        taken_deposits = taken_forced = 0
        for entry in self.inbox.pending(g.deposit_count, g.forced_count)[:QUEUE_ENTRIES]:
            before = (state.globals.deposit_count, state.globals.forced_count)
            if not add(entry.encode()):
                break
            taken_deposits += state.globals.deposit_count - before[0]
            taken_forced += state.globals.forced_count - before[1]
        for tx in extra:
            add(tx)
        return txs, roots, timestamp, taken_deposits, taken_forced

    def propose(self, extra: Sequence[bytes] = ()) -> Proposal:
        """Post the next batch (bonding first if needed). Raises CannotPropose with the reason."""
        rollup = self.chain.rollup.functions
        address = self.chain.l1.address
        if rollup.frozen().call():
            raise CannotPropose("the rollup is frozen: accounts exit through the bridge's escape hatch")
        if not rollup.may_propose(address).call():
            until = int(rollup.sequencer_seen().call()) + int(rollup.silence_period().call())
            raise CannotPropose(f"the sequencer is active: others may propose from L1 time {until} on")
        if int(rollup.bonds(address).call()) < int(rollup.bond_amount().call()):
            try:
                self.chain.bond()
            except L1Error as exc:
                raise CannotPropose(f"cannot post the bond: {exc}") from None
        position, state = self.tip()
        txs, roots, timestamp, deposits, forced = self.batch(state, extra)
        if not txs:
            raise CannotPropose("nothing to propose: the clock is current and no queue entry is pending")
        try:
            batch_id, _ = self.chain.submit(txs, roots, timestamp, position=position)
        except L1Error as exc:
            raise CannotPropose(f"L1 refused the batch: {exc.reason or exc}") from None
        log.info("proposed batch %d at position %d: %d steps, %d deposits, %d forced requests",
                 batch_id, position, len(txs), deposits, forced)
        return Proposal(batch_id, position, len(txs), deposits, forced)

    def run(self, interval: float, stop: object) -> None:
        """Propose whenever allowed and there is something to propose, until `stop` (an
        Event) is set."""
        while not stop.is_set():  # type: ignore[attr-defined]
            try:
                print(f"proposed {self.propose()}", flush=True)
            except CannotPropose as exc:
                log.info("not proposing: %s", exc)
            stop.wait(interval)  # type: ignore[attr-defined]

