"""Signature recovery ahead of execution, on every core.

Recovering a secp256k1 signature is most of what a trade costs to execute. Before a
batch is applied, `signatures(tx, context)` lists the (digest, signature) pairs its
rules will ask `signing.recover` for (the same digests the rules compute), and a
`Recoverer` recovers them in worker processes and stores each result in recover's memo,
so that applying the batch finds every signer already known.

This changes no result: `recover` is a pure function and its memo holds only its own
values; a transaction whose pairs are not prefetched (it does not decode, or a rule
would not reach its signature) is recovered by the rules themselves, as always.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from . import signing
from .fork import Context, Receipt, apply, order_hash, report_hash
from .signing import CANCEL_TYPEHASH, WITHDRAWAL_TYPEHASH, struct_hash, typed_digest
from .state import State
from .transactions import (
    Cancel,
    Fill,
    OracleUpdate,
    RiskUpdate,
    SettleSeries,
    Trade,
    Withdraw,
    decode,
)

Pair = tuple[bytes, bytes]
"""(the typed-data digest that was signed, the 65-byte signature)."""

CHUNK = 32
"""Transactions per task sent to a worker."""


def signatures(tx_bytes: bytes, domain: bytes) -> list[Pair]:
    """Every (digest, signature) a transaction carries, as its rule computes the digests
    in the EIP-712 `domain` (a Context's `domain`)."""
    tx = decode(tx_bytes)
    if isinstance(tx, Trade):
        return [(typed_digest(domain, order_hash(tx.maker)), tx.maker_signature),
                (typed_digest(domain, order_hash(tx.taker)), tx.taker_signature)]
    if isinstance(tx, Fill):
        return [(typed_digest(domain, order_hash(tx.taker)), tx.taker_signature)]
    if isinstance(tx, Withdraw):
        digest = struct_hash(WITHDRAWAL_TYPEHASH, tx.account, tx.amount, tx.nonce, tx.expiry)
        return [(typed_digest(domain, digest), tx.signature)]
    if isinstance(tx, Cancel):
        return [(typed_digest(domain, struct_hash(CANCEL_TYPEHASH, tx.account, tx.nonce)), tx.signature)]
    if isinstance(tx, OracleUpdate | RiskUpdate | SettleSeries):
        return [(typed_digest(domain, report_hash(tx, r)), r.signature) for r in tx.reports]
    return []


def _recover_txs(domain: bytes, txs: Sequence[bytes]) -> list[tuple[bytes, bytes | None]]:
    """In a worker: the memo entries (digest ++ signature, signer) of every signature
    `txs` carry (each distinct one recovered once)."""
    out: dict[bytes, bytes | None] = {}
    for tx in txs:
        for digest, signature in signatures(tx, domain):
            key = digest + signature
            if key not in out:
                out[key] = signing._recover(digest, signature)
    return list(out.items())


def _follow_parent(parent: int) -> None:
    """In a worker: end when the process that started the pool is gone (killed, say),
    rather than live on as an orphan."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # (a pid reused by another user's process: gone too)
                os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


class Prefetch:
    """A chunk of a batch's transactions whose signatures a worker is recovering;
    `needed_by`: the index of its first transaction in the batch."""

    __slots__ = ("needed_by", "future")

    def __init__(self, needed_by: int, future: Future[list[tuple[bytes, bytes | None]]]) -> None:
        self.needed_by = needed_by
        self.future = future

    def store(self) -> None:
        """Wait for the chunk and put its signers in recover's memo."""
        signing.remember_all(self.future.result())


def apply_all(state: State, txs: Sequence[bytes], context: Context, prefetches: list[Prefetch],
              each: Callable[[int, Receipt], bool] | None = None) -> None:
    """Apply `txs` in order, storing each prefetched chunk before the first transaction
    that needs it; `each(i, receipt)` after each one (False stops)."""
    pending = iter(prefetches)
    upcoming = next(pending, None)
    for index, tx in enumerate(txs):
        while upcoming is not None and upcoming.needed_by <= index:
            upcoming.store()
            upcoming = next(pending, None)
        receipt = apply(state, tx, context)
        if each is not None and not each(index, receipt):
            break
    for rest in ([upcoming] if upcoming is not None else []) + list(pending):
        rest.future.cancel()


class Recoverer:
    """Recovers the signatures of batches on `processes` worker processes (default: one
    per core but the caller's own, at least one)."""

    def __init__(self, processes: int | None = None) -> None:
        self.processes = max(1, processes if processes is not None else (os.cpu_count() or 2) - 1)
        # forkserver: a clean process to fork workers from (the caller may run threads)
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("forkserver"), initializer=_follow_parent,
            initargs=(os.getpid(),))
        # every worker up now, each following this process, before anything else can happen
        # (a process killed while a worker starts would leave it behind)
        for future in [self._pool.submit(time.sleep, 0.05) for _ in range(self.processes)]:
            future.result()

    def start(self, txs: Sequence[bytes], context: Context) -> list[Prefetch]:
        """Send a batch's transactions to the workers in chunks (their signatures are
        recovered there, digests included), in order; nothing once closed."""
        if self._pool is None:
            return []
        domain = context.domain
        return [Prefetch(i, self._pool.submit(_recover_txs, domain, txs[i:i + CHUNK]))
                for i in range(0, len(txs), CHUNK)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
