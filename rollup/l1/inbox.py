"""The bridge's two L1 -> L2 queues (deposits, forced requests), read from its events.

Both the operator and the watchers turn the queues into the STF's Deposit and
ForcedRequest transactions and into the hash-chain heads a batch's Context carries. The
heads are recomputed from the entries (the chain rule of fork.deposit_entry /
forced_entry) and checked against the bridge's stored head, so a wrong event decoding
cannot go unnoticed.
"""

from __future__ import annotations

import threading
from typing import Any

from web3.contract import Contract

from ..stf.fork import deposit_entry, forced_entry
from ..stf.hashing import ZERO_HASH, keccak
from ..stf.transactions import Deposit, ForcedRequest


class InboxError(Exception):
    pass


class Inbox:
    """An incremental reader of the bridge's queues (thread-safe)."""

    SCAN_BLOCKS = 5_000

    def __init__(self, bridge: Contract, deploy_block: int) -> None:
        self.bridge = bridge
        self.next_block = deploy_block
        self.deposits: list[Deposit] = []
        self.deposit_heads: list[bytes] = [ZERO_HASH]
        self.forced: list[ForcedRequest] = []
        self.forced_heads: list[bytes] = [ZERO_HASH]
        self.lock = threading.Lock()

    def sync(self) -> None:
        """Read every queue entry up to the latest block."""
        with self.lock:
            latest = int(self.bridge.w3.eth.block_number)
            while self.next_block <= latest:
                end = min(latest, self.next_block + self.SCAN_BLOCKS - 1)
                deposits = self.bridge.events.Deposited().get_logs(from_block=self.next_block, to_block=end)
                forced = self.bridge.events.ForcedRequested().get_logs(from_block=self.next_block, to_block=end)
                for event in sorted(deposits, key=_order):
                    self._add_deposit(event["args"])
                for event in sorted(forced, key=_order):
                    self._add_forced(event["args"])
                self.next_block = end + 1

    def _add_deposit(self, a: Any) -> None:
        if a["index"] != len(self.deposits):
            raise InboxError(f"deposit {a['index']} out of order (have {len(self.deposits)})")
        entry = Deposit(a["index"], a["account"], bytes.fromhex(a["owner"][2:]), a["amount"], a["timestamp"])
        head = keccak(self.deposit_heads[-1] + deposit_entry(entry.index, entry.account, entry.owner,
                                                              entry.amount, entry.l1_time))
        if head != bytes(a["head"]):
            raise InboxError(f"deposit {entry.index}: recomputed head differs from the bridge's")
        self.deposits.append(entry)
        self.deposit_heads.append(head)

    def _add_forced(self, a: Any) -> None:
        if a["index"] != len(self.forced):
            raise InboxError(f"forced request {a['index']} out of order (have {len(self.forced)})")
        entry = ForcedRequest(a["index"], a["kind"], a["account"], bytes.fromhex(a["requester"][2:]),
                              a["market"], a["amount"], a["timestamp"])
        head = keccak(self.forced_heads[-1] + forced_entry(entry))
        if head != bytes(a["head"]):
            raise InboxError(f"forced request {entry.index}: recomputed head differs from the bridge's")
        self.forced.append(entry)
        self.forced_heads.append(head)

    def heads(self, deposit_count: int, forced_count: int) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """The queue heads a batch posted when the queues held these counts sees."""
        if deposit_count >= len(self.deposit_heads) or forced_count >= len(self.forced_heads):
            self.sync()
        if deposit_count >= len(self.deposit_heads) or forced_count >= len(self.forced_heads):
            raise InboxError("the bridge holds fewer entries than asked for")
        return tuple(self.deposit_heads[: deposit_count + 1]), tuple(self.forced_heads[: forced_count + 1])


def _order(event: Any) -> tuple[int, int]:
    return int(event["blockNumber"]), int(event["logIndex"])
