"""Building signed transactions: what clients, the operator, oracles and tests use.

Nothing here is a rule; every function produces bytes that `apply` judges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .fork import Context, deposit_entry, forced_entry, order_hash, report_hash
from .hashing import ZERO_HASH, keccak
from .signing import (
    CANCEL_TYPEHASH,
    WITHDRAWAL_TYPEHASH,
    sign,
    struct_hash,
    typed_digest,
)
from .transactions import (
    Cancel,
    Deposit,
    Fill,
    ForcedRequest,
    OracleReport,
    OracleUpdate,
    Order,
    RiskReport,
    RiskUpdate,
    SettleSeries,
    Trade,
    Withdraw,
)


def sign_order(order: Order, key: bytes, context: Context) -> bytes:
    return sign(typed_digest(context.domain, order_hash(order)), key)


def trade(maker: Order, maker_key: bytes, taker: Order, taker_key: bytes, fill: int,
          context: Context, maker_fee_ppm: int = 0, taker_fee_ppm: int = 0) -> Trade:
    return Trade(maker, sign_order(maker, maker_key, context), taker,
                 sign_order(taker, taker_key, context), fill, maker_fee_ppm, taker_fee_ppm)


def fill(maker: Order, taker: Order, taker_key: bytes, fill: int, context: Context,
         maker_fee_ppm: int = 0, taker_fee_ppm: int = 0) -> Fill:
    """A later fill of `maker` (posted earlier by a Trade), named by its account and nonce."""
    return Fill(maker.account, maker.nonce, taker, sign_order(taker, taker_key, context), fill,
                maker_fee_ppm, taker_fee_ppm)


def withdraw(account: int, amount: int, nonce: int, expiry: int, key: bytes, context: Context) -> Withdraw:
    digest = struct_hash(WITHDRAWAL_TYPEHASH, account, amount, nonce, expiry)
    return Withdraw(account, amount, nonce, expiry, sign(typed_digest(context.domain, digest), key))


def cancel(account: int, nonce: int, key: bytes, context: Context) -> Cancel:
    digest = struct_hash(CANCEL_TYPEHASH, account, nonce)
    return Cancel(account, nonce, sign(typed_digest(context.domain, digest), key))


def oracle_update(market: int, timestamp: int, prices: Sequence[tuple[int, int, bytes]],
                  context: Context) -> OracleUpdate:
    """`prices`: (signer index, price, signer key) per report; sorted here by price."""
    reports = []
    for signer, price, key in sorted(prices, key=lambda r: (r[1], r[0])):
        digest = report_hash(OracleUpdate(market, timestamp, ()), OracleReport(signer, price, b""))
        reports.append(OracleReport(signer, price, sign(typed_digest(context.domain, digest), key)))
    return OracleUpdate(market, timestamp, tuple(reports))


def risk_update(market: int, timestamp: int, marks: Sequence[tuple[int, int, int, int, int, bytes]],
                context: Context) -> RiskUpdate:
    """`marks`: (signer index, mark, delta, gamma, vega, signer key) per report; sorted
    here by mark."""
    reports = []
    for signer, mark, delta, gamma, vega, key in sorted(marks, key=lambda r: (r[1], r[0])):
        unsigned = RiskReport(signer, mark, b"", delta, gamma, vega)
        signature = sign(typed_digest(context.domain, report_hash(RiskUpdate(market, timestamp, ()), unsigned)), key)
        reports.append(unsigned._replace(signature=signature))
    return RiskUpdate(market, timestamp, tuple(reports))


def settle_series(market: int, expiry: int, prices: Sequence[tuple[int, int, bytes]], context: Context) -> SettleSeries:
    """`prices`: (signer index, the underlying's price at `expiry`, signer key) per report;
    sorted here by price."""
    reports = []
    for signer, price, key in sorted(prices, key=lambda r: (r[1], r[0])):
        unsigned = OracleReport(signer, price, b"")
        digest = report_hash(SettleSeries(market, expiry, ()), unsigned)
        reports.append(unsigned._replace(signature=sign(typed_digest(context.domain, digest), key)))
    return SettleSeries(market, expiry, tuple(reports))


@dataclass
class L1Queues:
    """A Python mirror of the L1 deposit and forced-request queues (their hash chains)."""

    deposits: list[Deposit] = field(default_factory=list)
    deposit_heads: list[bytes] = field(default_factory=lambda: [ZERO_HASH])
    forced: list[ForcedRequest] = field(default_factory=list)
    forced_heads: list[bytes] = field(default_factory=lambda: [ZERO_HASH])

    def deposit(self, account: int, owner: bytes, amount: int, l1_time: int = 0) -> Deposit:
        index = len(self.deposits)
        entry = Deposit(index, account, owner, amount, l1_time)
        self.deposits.append(entry)
        self.deposit_heads.append(
            keccak(self.deposit_heads[-1] + deposit_entry(index, account, owner, amount, l1_time))
        )
        return entry

    def force(self, kind: int, account: int, requester: bytes, market: int = 0, amount: int = 0,
              l1_time: int = 0) -> ForcedRequest:
        request = ForcedRequest(len(self.forced), kind, account, requester, market, amount, l1_time)
        self.forced.append(request)
        self.forced_heads.append(keccak(self.forced_heads[-1] + forced_entry(request)))
        return request
