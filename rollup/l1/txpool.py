"""The queue of future-nonce transactions of the dev L1 node.

A signed transaction whose nonce is ahead of its sender's next nonce cannot be mined yet;
like anvil and geth, the node keeps it here ("queued") until the gap is filled, then
`DevChain` moves it into the pending block. The queue is bounded, per sender and in all,
so that one sender cannot grow the node's memory without limit (geth's `AccountQueue` and
`GlobalQueue` defaults).
"""

from __future__ import annotations

from collections.abc import Iterator

from eth.abc import SignedTransactionAPI

MAX_QUEUED_PER_SENDER = 64
"""Most transactions one sender may have queued (geth's default `AccountQueue`)."""

MAX_QUEUED = 1024
"""Most transactions queued in all (geth's default `GlobalQueue`)."""

POOL_ERROR = -32003
"""JSON-RPC code of the pool's own refusals, as anvil answers them (EIP-1474's
"transaction rejected")."""


class PoolRefusal(Exception):
    """A transaction the queue refuses; `code` is the JSON-RPC error code to answer."""

    def __init__(self, message: str, code: int = POOL_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def pool_price(tx: SignedTransactionAPI) -> int:
    """The price the pool compares replacements by (anvil's rule): the fee cap of an
    EIP-1559 transaction, the gas price of any other."""
    return int(tx.max_fee_per_gas)


class TxQueue:
    """Queued transactions by sender, then nonce: at most one per (sender, nonce).

    Rules, checked by `add` in this order (`PoolRefusal`, nothing changes, when it refuses):
    - the same transaction again: "transaction already imported";
    - another one for a queued (sender, nonce): it replaces the queued one when its
      `pool_price` is strictly higher, else "replacement transaction underpriced";
    - a new (sender, nonce): "account limit exceeded" when the sender already has
      `per_sender` queued, "txpool is full" when the queue holds `total`.
    """

    def __init__(self, per_sender: int = MAX_QUEUED_PER_SENDER, total: int = MAX_QUEUED) -> None:
        self.per_sender = per_sender
        self.total = total
        self._by_sender: dict[bytes, dict[int, SignedTransactionAPI]] = {}
        self._by_hash: dict[bytes, tuple[bytes, int]] = {}

    def __len__(self) -> int:
        return len(self._by_hash)

    def add(self, tx: SignedTransactionAPI) -> SignedTransactionAPI | None:
        """Queue `tx`; return the transaction it replaced, if any (see the class's rules)."""
        tx_hash, sender, nonce = bytes(tx.hash), bytes(tx.sender), int(tx.nonce)
        if tx_hash in self._by_hash:
            raise PoolRefusal("transaction already imported")
        queued = self._by_sender.get(sender, {})
        replaced = queued.get(nonce)
        if replaced is not None:
            if pool_price(tx) <= pool_price(replaced):
                raise PoolRefusal("replacement transaction underpriced")
            del self._by_hash[bytes(replaced.hash)]
        elif len(queued) >= self.per_sender:
            raise PoolRefusal(
                f"account limit exceeded: 0x{sender.hex()} has {len(queued)} transactions queued"
            )
        elif len(self._by_hash) >= self.total:
            raise PoolRefusal(f"txpool is full: {len(self._by_hash)} transactions queued")
        self._by_sender.setdefault(sender, {})[nonce] = tx
        self._by_hash[tx_hash] = (sender, nonce)
        return replaced

    def get(self, tx_hash: bytes) -> SignedTransactionAPI | None:
        """The queued transaction with this hash, or None."""
        found = self._by_hash.get(tx_hash)
        return None if found is None else self._by_sender[found[0]][found[1]]

    def at(self, sender: bytes, nonce: int) -> SignedTransactionAPI | None:
        """The transaction queued for (sender, nonce), or None."""
        return self._by_sender.get(sender, {}).get(nonce)

    def remove(self, tx_hash: bytes) -> SignedTransactionAPI | None:
        """Take the transaction with this hash out of the queue; None when none is queued."""
        found = self._by_hash.pop(tx_hash, None)
        if found is None:
            return None
        sender, nonce = found
        queued = self._by_sender[sender]
        tx = queued.pop(nonce)
        if not queued:
            del self._by_sender[sender]
        return tx

    def remove_below(self, sender: bytes, nonce: int) -> list[SignedTransactionAPI]:
        """Take out the sender's transactions with a nonce below `nonce` (used already)."""
        stale = [tx for n, tx in self._by_sender.get(sender, {}).items() if n < nonce]
        for tx in stale:
            self.remove(bytes(tx.hash))
        return stale

    def remove_sender(self, sender: bytes) -> list[SignedTransactionAPI]:
        """Take out every transaction the sender has queued."""
        txs = list(self._by_sender.get(sender, {}).values())
        for tx in txs:
            self.remove(bytes(tx.hash))
        return txs

    def clear(self) -> int:
        """Empty the queue; return how many transactions it held."""
        count = len(self._by_hash)
        self._by_sender.clear()
        self._by_hash.clear()
        return count

    def senders(self) -> list[bytes]:
        """The senders with queued transactions, in the order they first queued one."""
        return list(self._by_sender)

    def __iter__(self) -> Iterator[tuple[bytes, list[SignedTransactionAPI]]]:
        """(sender, its queued transactions in nonce order) for each sender."""
        for sender, queued in self._by_sender.items():
            yield sender, [queued[nonce] for nonce in sorted(queued)]
