"""The bridge's two L1 -> L2 queues (deposits, forced requests), read from its events.

The operator, the watchers and the proposer turn the queues into the STF's Deposit and
ForcedRequest transactions and into the hash-chain heads a batch's Context carries. The
heads are recomputed from the entries (the chain rule of fork.deposit_entry /
forced_entry) and checked against the bridge's stored head, so a wrong event decoding
cannot go unnoticed.

L1 can reorganise. The reader stays `confirmations` blocks behind the head, remembers
the hash of the last block of each range it read, and at every sync checks that the last
one is still on the chain; if not, it walks back to the newest remembered block that is
(the common ancestor), drops every entry read after it and reads on from there.
`generation` counts such rewinds, so that a reader of the entries notices them.
"""

from __future__ import annotations

import threading
from typing import Any

from web3.contract import Contract

from ..stf.fork import deposit_entry, forced_entry
from ..stf.hashing import ZERO_HASH, keccak
from ..stf.transactions import Deposit, ForcedRequest
from .wire import Events, Rpc


class InboxError(Exception):
    pass


class Inbox:
    """An incremental, reorganisation-aware reader of the bridge's queues (thread-safe)."""

    SCAN_BLOCKS = 5_000
    CHECKPOINTS = 128

    def __init__(self, bridge: Contract, deploy_block: int, confirmations: int = 0, rpc: Rpc | None = None) -> None:
        self.bridge = bridge
        self.rpc = rpc if rpc is not None else Rpc(str(bridge.w3.provider.endpoint_uri))  # type: ignore[attr-defined]
        """Block numbers, hashes and the queues' events are read through it (`wire`: lighter than web3)."""
        self.events = Events(self.rpc, bridge.address, bridge.abi)  # type: ignore[arg-type]
        self.deploy_block = deploy_block
        self.confirmations = max(0, confirmations)
        self.next_block = deploy_block
        self.deposits: list[Deposit] = []
        self.deposit_heads: list[bytes] = [ZERO_HASH]
        self.deposit_blocks: list[int] = []
        self.forced: list[ForcedRequest] = []
        self.forced_heads: list[bytes] = [ZERO_HASH]
        self.forced_blocks: list[int] = []
        self.checkpoints: list[tuple[int, bytes]] = []
        """(block number, block hash) of the end of each range read, oldest first."""
        self.generation = 0
        """How many times a reorganisation made the reader rewind."""
        self.lock = threading.RLock()
        """Guards the entries (held briefly: never across an L1 request)."""
        self._sync_lock = threading.Lock()

    # ------------------------------------------------------------------ reading

    def sync(self) -> None:
        """Read every queue entry up to the confirmed head (`confirmations` blocks behind
        the latest), rewinding first if L1 reorganised under what was read. The L1 reads
        hold no lock a reader of the entries waits on (`pending` and `heads` answer from
        what is read so far); one sync runs at a time."""
        with self._sync_lock:
            self._follow_reorg()
            head = self.rpc.block_number() - self.confirmations
            while self.next_block <= head:
                start = self.next_block
                end = min(head, start + self.SCAN_BLOCKS - 1)
                # the hash first: should L1 reorganise while the range is read, the next
                # sync finds the hash changed and reads the range again
                end_hash = bytes.fromhex(self.rpc.block(end)["hash"][2:])
                events = self.events.logs(["Deposited", "ForcedRequested"], start, end)
                with self.lock:
                    for event in events:  # in chain order; each queue's own order is checked
                        if event["event"] == "Deposited":
                            self._add_deposit(event["args"], event["blockNumber"])
                        else:
                            self._add_forced(event["args"], event["blockNumber"])
                    self.checkpoints.append((end, end_hash))
                    del self.checkpoints[:-self.CHECKPOINTS]
                    self.next_block = end + 1

    def _follow_reorg(self) -> None:
        if not self.checkpoints or self.rpc.block_hash(self.checkpoints[-1][0]) == self.checkpoints[-1][1]:
            return
        while self.checkpoints and self.rpc.block_hash(self.checkpoints[-1][0]) != self.checkpoints[-1][1]:
            self.checkpoints.pop()
        ancestor = self.checkpoints[-1][0] if self.checkpoints else self.deploy_block - 1
        self.rewind(ancestor)

    def rewind(self, block: int) -> None:
        """Forget every entry of a block after `block`, and read on from there."""
        with self.lock:
            keep = sum(1 for b in self.deposit_blocks if b <= block)
            del self.deposits[keep:], self.deposit_blocks[keep:], self.deposit_heads[keep + 1:]
            keep = sum(1 for b in self.forced_blocks if b <= block)
            del self.forced[keep:], self.forced_blocks[keep:], self.forced_heads[keep + 1:]
            self.checkpoints = [c for c in self.checkpoints if c[0] <= block]
            self.next_block = min(self.next_block, block + 1)
            self.generation += 1

    def _add_deposit(self, a: Any, block: int) -> None:
        if a["index"] != len(self.deposits):
            raise InboxError(f"deposit {a['index']} out of order (have {len(self.deposits)})")
        entry = Deposit(a["index"], a["account"], bytes.fromhex(a["owner"][2:]), a["amount"], a["timestamp"])
        head = keccak(self.deposit_heads[-1] + deposit_entry(entry.index, entry.account, entry.owner,
                                                              entry.amount, entry.l1_time))
        if head != bytes(a["head"]):
            raise InboxError(f"deposit {entry.index}: recomputed head differs from the bridge's")
        self.deposits.append(entry)
        self.deposit_heads.append(head)
        self.deposit_blocks.append(block)

    def _add_forced(self, a: Any, block: int) -> None:
        if a["index"] != len(self.forced):
            raise InboxError(f"forced request {a['index']} out of order (have {len(self.forced)})")
        entry = ForcedRequest(a["index"], a["kind"], a["account"], bytes.fromhex(a["requester"][2:]),
                              a["market"], a["amount"], a["timestamp"])
        head = keccak(self.forced_heads[-1] + forced_entry(entry))
        if head != bytes(a["head"]):
            raise InboxError(f"forced request {entry.index}: recomputed head differs from the bridge's")
        self.forced.append(entry)
        self.forced_heads.append(head)
        self.forced_blocks.append(block)

    # ------------------------------------------------------------------ what a batch sees

    def pending(self, deposits_taken: int, forced_taken: int) -> list[Deposit | ForcedRequest]:
        """The entries after the first `deposits_taken` deposits and `forced_taken` forced
        requests, oldest first across both queues (each queue keeps its own order)."""
        with self.lock:
            entries: list[Deposit | ForcedRequest] = [*self.deposits[deposits_taken:], *self.forced[forced_taken:]]
        return sorted(entries, key=lambda entry: (entry.l1_time, entry.index))

    def heads(self, deposit_count: int, forced_count: int) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """The queue heads a batch posted when the queues held these counts sees."""
        for attempt in range(2):
            with self.lock:
                if deposit_count < len(self.deposit_heads) and forced_count < len(self.forced_heads):
                    return tuple(self.deposit_heads[: deposit_count + 1]), tuple(self.forced_heads[: forced_count + 1])
            if attempt == 0:
                self.sync()
        raise InboxError("the bridge holds fewer confirmed entries than asked for")

