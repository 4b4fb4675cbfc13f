"""Transactions and their canonical byte encodings.

A transaction is a one-byte type tag followed by fixed-width big-endian fields; its
length is fixed by its type (OracleUpdate, RiskUpdate and SettleSeries: by their report
count). `decode` turns any byte
string into a transaction or a Reason (EMPTY, UNKNOWN_TYPE, BAD_LENGTH, BAD_FIELD);
`encode(decode(b)) == b` for every b that decodes.

Signatures are 65 bytes r ++ s ++ v, except in trades, which carry the 64-byte EIP-2098
form r ++ (v - 27) << 255 | s (signing.compact; decoded back to 65 bytes). Orders are 26
bytes, narrowed to the rules' bounds:
    account u32 | market_side u8 (bit 7: buy; bits 0-6: market) | size u40 |
    limit_price u40 | max_fee_ppm u24 | nonce u32 | expiry u32
An order is posted once: its first fill (Trade) carries it with its signature; its nonce
slot then keeps its hash, and a later fill (Fill) names it by (account, nonce).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .constants import MAX_FUNDING_DELTA, MAX_ORACLE_SIGNERS
from .reasons import Reason
from .signing import compact, expand

DEPOSIT = 0x01
WITHDRAW = 0x02
TRADE = 0x03
CANCEL = 0x04
ORACLE_UPDATE = 0x05
FUNDING_TICK = 0x06
LIQUIDATE = 0x07
DELEVERAGE = 0x08
FORCED_REQUEST = 0x09
ADVANCE_TIME = 0x0A
SWEEP_FEES = 0x0B
FILL = 0x0C
RISK_UPDATE = 0x0D
SETTLE_SERIES = 0x0E
SETTLE_POSITION = 0x0F

FORCED_WITHDRAW = 0
"""ForcedRequest kind: withdraw `amount` of collateral."""
FORCED_CLOSE = 1
"""ForcedRequest kind: close the whole position in `market` against the insurance fund."""

SIGNATURE_LENGTH = 65
COMPACT_SIGNATURE_LENGTH = 64
ORDER_LENGTH = 26
REPORT_LENGTH = 1 + 8 + SIGNATURE_LENGTH
RISK_REPORT_LENGTH = REPORT_LENGTH + 4 + 8 + 8
"""A RiskUpdate's report is an OracleUpdate's (signer, mark, signature) followed by the
Greeks: delta int32 | gamma int64 | vega int64."""
MAX_TX = 11 + RISK_REPORT_LENGTH * MAX_ORACLE_SIGNERS
"""The longest transaction: a RiskUpdate with a report from every signer (1,515 bytes)."""
BUY_FLAG = 0x80


def _u(data: bytes, start: int, width: int) -> int:
    return int.from_bytes(data[start : start + width], "big")


_GREEKS = struct.Struct(">iqq")
"""delta int32 | gamma int64 | vega int64"""
TRADE_LAYOUT = struct.Struct(">26s64s26s64s5sHH")
"""maker order | maker signature | taker order | taker signature | fill u40 | maker fee u16 | taker fee u16"""
FILL_LAYOUT = struct.Struct(">II26s64s5sHH")
"""maker account u32 | maker nonce u32 | taker order | taker signature | fill u40 | maker fee u16 | taker fee u16"""

_U32, _MARKET, _U40, _U24 = 2**32 - 1, 2**7 - 1, 2**40 - 1, 2**24 - 1
"""The widest account, nonce and expiry (u32), market (7 bits), size and limit price (u40)
and max fee (u24) the 26-byte order encoding carries (an order beyond them cannot be
posted: the operator refuses it)."""
ORDER_NO_EXPIRY = _U32
"""The latest expiry an order can carry (2106): an order that does not expire."""
FEE_BOUND = 2**16 - 1
"""The widest fee rate (ppm) a Trade or Fill carries."""
FILL_BOUND = 2**40 - 1


class Order(NamedTuple):
    account: int
    market: int
    is_buy: bool
    size: int
    limit_price: int
    max_fee_ppm: int
    nonce: int
    expiry: int

    def fits(self) -> bool:
        """Whether every field fits the 26-byte encoding."""
        return (0 <= self.account <= _U32 and 0 <= self.market <= _MARKET and 0 <= self.size <= _U40
                and 0 <= self.limit_price <= _U40 and 0 <= self.max_fee_ppm <= _U24 and 0 <= self.nonce <= _U32
                and 0 <= self.expiry <= _U32)

    def encode(self) -> bytes:
        if not self.fits():
            raise ValueError("order field beyond its encoding's width")
        return (
            self.account.to_bytes(4, "big") + bytes((self.market | (BUY_FLAG if self.is_buy else 0),))
            + self.size.to_bytes(5, "big") + self.limit_price.to_bytes(5, "big")
            + self.max_fee_ppm.to_bytes(3, "big") + self.nonce.to_bytes(4, "big") + self.expiry.to_bytes(4, "big")
        )

    @staticmethod
    def decode(data: bytes) -> Order:
        """The order of a 26-byte encoding (every 26 bytes are one)."""
        side = data[4]
        return Order(_u(data, 0, 4), side & ~BUY_FLAG, side & BUY_FLAG != 0, _u(data, 5, 5), _u(data, 10, 5),
                     _u(data, 15, 3), _u(data, 18, 4), _u(data, 22, 4))


class Deposit(NamedTuple):
    """Credit the next deposit of the L1 queue (index must equal the consumed count)."""

    index: int  # type: ignore[assignment]  # the field shadows tuple.index (never called on it)
    account: int
    owner: bytes
    amount: int
    l1_time: int

    def encode(self) -> bytes:
        return (
            bytes((DEPOSIT,))
            + self.index.to_bytes(8, "big")
            + self.account.to_bytes(4, "big")
            + self.owner
            + self.amount.to_bytes(8, "big")
            + self.l1_time.to_bytes(8, "big")
        )


class Withdraw(NamedTuple):
    account: int
    amount: int
    nonce: int
    expiry: int
    signature: bytes

    def encode(self) -> bytes:
        return (
            bytes((WITHDRAW,))
            + self.account.to_bytes(4, "big")
            + self.amount.to_bytes(8, "big")
            + self.nonce.to_bytes(8, "big")
            + self.expiry.to_bytes(8, "big")
            + self.signature
        )


class Trade(NamedTuple):
    """Match a resting maker order with a taker order for `fill` lots at the maker's price:
    the maker order's first fill (it carries the order and its signature)."""

    maker: Order
    maker_signature: bytes
    taker: Order
    taker_signature: bytes
    fill: int
    maker_fee_ppm: int
    taker_fee_ppm: int

    def encode(self) -> bytes:
        _check_amounts(self.fill, self.maker_fee_ppm, self.taker_fee_ppm)
        return bytes((TRADE,)) + TRADE_LAYOUT.pack(
            self.maker.encode(), compact(self.maker_signature), self.taker.encode(), compact(self.taker_signature),
            self.fill.to_bytes(5, "big"), self.maker_fee_ppm, self.taker_fee_ppm,
        )


class Fill(NamedTuple):
    """Match the order in nonce slot `maker_nonce` of account `maker_account` (posted by an
    earlier Trade, which its slot's hash commits to) with a taker order: a later fill of
    a resting order, which names it instead of carrying it."""

    maker_account: int
    maker_nonce: int
    taker: Order
    taker_signature: bytes
    fill: int
    maker_fee_ppm: int
    taker_fee_ppm: int

    def encode(self) -> bytes:
        _check_amounts(self.fill, self.maker_fee_ppm, self.taker_fee_ppm)
        if not (0 <= self.maker_account <= _U32 and 0 <= self.maker_nonce <= _U32):
            raise ValueError("maker account or nonce beyond its encoding's width")
        return bytes((FILL,)) + FILL_LAYOUT.pack(
            self.maker_account, self.maker_nonce, self.taker.encode(), compact(self.taker_signature),
            self.fill.to_bytes(5, "big"), self.maker_fee_ppm, self.taker_fee_ppm,
        )


def _check_amounts(fill: int, maker_fee_ppm: int, taker_fee_ppm: int) -> None:
    if not (0 <= fill <= FILL_BOUND and 0 <= maker_fee_ppm <= FEE_BOUND and 0 <= taker_fee_ppm <= FEE_BOUND):
        raise ValueError("fill or fee rate beyond its encoding's width")


class Cancel(NamedTuple):
    account: int
    nonce: int
    signature: bytes

    def encode(self) -> bytes:
        return (
            bytes((CANCEL,))
            + self.account.to_bytes(4, "big")
            + self.nonce.to_bytes(8, "big")
            + self.signature
        )


def _feed(tag: int, market: int, timestamp: int, reports: tuple[OracleReport, ...] | tuple[RiskReport, ...]) -> bytes:
    """A feed transaction (OracleUpdate, RiskUpdate, SettleSeries): market u8 |
    timestamp u64 | count u8 | reports."""
    return bytes((tag, market)) + timestamp.to_bytes(8, "big") + bytes((len(reports),)) + b"".join(
        r.encode() for r in reports)


class OracleReport(NamedTuple):
    signer: int
    price: int
    signature: bytes

    def encode(self) -> bytes:
        return bytes((self.signer,)) + self.price.to_bytes(8, "big") + self.signature


class OracleUpdate(NamedTuple):
    market: int
    timestamp: int
    reports: tuple[OracleReport, ...]

    def encode(self) -> bytes:
        return _feed(ORACLE_UPDATE, self.market, self.timestamp, self.reports)


class RiskReport(NamedTuple):
    """One signer's view of an option series: its mark and Greeks (units in spec §10.2)."""

    signer: int
    mark: int
    signature: bytes
    delta: int
    gamma: int
    vega: int

    def encode(self) -> bytes:
        return (
            bytes((self.signer,)) + self.mark.to_bytes(8, "big") + self.signature
            + _GREEKS.pack(self.delta, self.gamma, self.vega)
        )


class RiskUpdate(NamedTuple):
    """Set an option series' mark and Greeks from k-of-n signed reports of one timestamp."""

    market: int
    timestamp: int
    reports: tuple[RiskReport, ...]

    def encode(self) -> bytes:
        return _feed(RISK_UPDATE, self.market, self.timestamp, self.reports)


class SettleSeries(NamedTuple):
    """Fix an expired series' settlement price: the median of k-of-n signed reports of the
    underlying's price at the series' expiry (`timestamp`), taken once."""

    market: int
    timestamp: int
    reports: tuple[OracleReport, ...]

    def encode(self) -> bytes:
        return _feed(SETTLE_SERIES, self.market, self.timestamp, self.reports)


class SettlePosition(NamedTuple):
    """Close an account's position in a settled series at its intrinsic value."""

    account: int
    market: int

    def encode(self) -> bytes:
        return bytes((SETTLE_POSITION,)) + self.account.to_bytes(4, "big") + bytes((self.market,))


class FundingTick(NamedTuple):
    market: int
    index_delta: int

    def encode(self) -> bytes:
        return bytes((FUNDING_TICK, self.market)) + self.index_delta.to_bytes(16, "big", signed=True)


class Liquidate(NamedTuple):
    account: int
    market: int
    size: int

    def encode(self) -> bytes:
        return (
            bytes((LIQUIDATE,))
            + self.account.to_bytes(4, "big")
            + bytes((self.market,))
            + self.size.to_bytes(8, "big")
        )


class Deleverage(NamedTuple):
    deleveragee: int
    deleverager: int
    market: int
    size: int

    def encode(self) -> bytes:
        return (
            bytes((DELEVERAGE,))
            + self.deleveragee.to_bytes(4, "big")
            + self.deleverager.to_bytes(4, "big")
            + bytes((self.market,))
            + self.size.to_bytes(8, "big")
        )


class ForcedRequest(NamedTuple):
    """Consume the next entry of the L1 forced-request queue and carry out its action."""

    index: int  # type: ignore[assignment]  # the field shadows tuple.index (never called on it)
    kind: int
    account: int
    requester: bytes
    market: int
    amount: int
    l1_time: int

    def encode(self) -> bytes:
        return (
            bytes((FORCED_REQUEST,))
            + self.index.to_bytes(8, "big")
            + bytes((self.kind,))
            + self.account.to_bytes(4, "big")
            + self.requester
            + bytes((self.market,))
            + self.amount.to_bytes(8, "big")
            + self.l1_time.to_bytes(8, "big")
        )


class AdvanceTime(NamedTuple):
    timestamp: int

    def encode(self) -> bytes:
        return bytes((ADVANCE_TIME,)) + self.timestamp.to_bytes(8, "big")


class SweepFees(NamedTuple):
    """Move `amount` of the fee pool into the insurance fund's collateral."""

    amount: int

    def encode(self) -> bytes:
        return bytes((SWEEP_FEES,)) + self.amount.to_bytes(8, "big")


Transaction = (
    Deposit | Withdraw | Trade | Fill | Cancel | OracleUpdate | RiskUpdate | SettleSeries | SettlePosition
    | FundingTick | Liquidate | Deleverage | ForcedRequest | AdvanceTime | SweepFees
)

LENGTHS = {
    DEPOSIT: 1 + 8 + 4 + 20 + 8 + 8,
    WITHDRAW: 1 + 4 + 8 + 8 + 8 + SIGNATURE_LENGTH,
    TRADE: 1 + 2 * (ORDER_LENGTH + COMPACT_SIGNATURE_LENGTH) + 5 + 2 + 2,
    FILL: 1 + 4 + 4 + ORDER_LENGTH + COMPACT_SIGNATURE_LENGTH + 5 + 2 + 2,
    CANCEL: 1 + 4 + 8 + SIGNATURE_LENGTH,
    FUNDING_TICK: 1 + 1 + 16,
    LIQUIDATE: 1 + 4 + 1 + 8,
    DELEVERAGE: 1 + 4 + 4 + 1 + 8,
    FORCED_REQUEST: 1 + 8 + 1 + 4 + 20 + 1 + 8 + 8,
    ADVANCE_TIME: 1 + 8,
    SWEEP_FEES: 1 + 8,
    SETTLE_POSITION: 1 + 4 + 1,
}
"""Exact encoded length of each fixed-length type (OracleUpdate and SettleSeries: 11 + 74
per report; RiskUpdate: 11 + 94 per report)."""


def decode(data: bytes) -> Transaction | Reason:
    """The transaction encoded by `data`, or the reason it is not one. Never raises."""
    if not data:
        return Reason.EMPTY
    tag = data[0]
    if tag in (ORACLE_UPDATE, RISK_UPDATE, SETTLE_SERIES):
        return _decode_reports(data)
    expected = LENGTHS.get(tag)
    if expected is None:
        return Reason.UNKNOWN_TYPE
    if len(data) != expected:
        return Reason.BAD_LENGTH
    if tag == DEPOSIT:
        return Deposit(_u(data, 1, 8), _u(data, 9, 4), data[13:33], _u(data, 33, 8), _u(data, 41, 8))
    if tag == WITHDRAW:
        return Withdraw(_u(data, 1, 4), _u(data, 5, 8), _u(data, 13, 8), _u(data, 21, 8), data[29:94])
    if tag == TRADE:
        maker_bytes, maker_sig, taker_bytes, taker_sig, fill, maker_fee, taker_fee = TRADE_LAYOUT.unpack_from(data, 1)
        return Trade(Order.decode(maker_bytes), expand(maker_sig), Order.decode(taker_bytes), expand(taker_sig),
                     int.from_bytes(fill, "big"), maker_fee, taker_fee)
    if tag == FILL:
        maker_account, maker_nonce, taker_bytes, taker_sig, fill, maker_fee, taker_fee = FILL_LAYOUT.unpack_from(data, 1)
        return Fill(maker_account, maker_nonce, Order.decode(taker_bytes), expand(taker_sig),
                    int.from_bytes(fill, "big"), maker_fee, taker_fee)
    if tag == CANCEL:
        return Cancel(_u(data, 1, 4), _u(data, 5, 8), data[13:78])
    if tag == FUNDING_TICK:
        delta = int.from_bytes(data[2:18], "big", signed=True)
        if abs(delta) > MAX_FUNDING_DELTA:
            return Reason.BAD_FIELD
        return FundingTick(data[1], delta)
    if tag == LIQUIDATE:
        return Liquidate(_u(data, 1, 4), data[5], _u(data, 6, 8))
    if tag == DELEVERAGE:
        return Deleverage(_u(data, 1, 4), _u(data, 5, 4), data[9], _u(data, 10, 8))
    if tag == FORCED_REQUEST:
        kind = data[9]
        if kind not in (FORCED_WITHDRAW, FORCED_CLOSE):
            return Reason.BAD_FIELD
        return ForcedRequest(_u(data, 1, 8), kind, _u(data, 10, 4), data[14:34], data[34],
                             _u(data, 35, 8), _u(data, 43, 8))
    if tag == SWEEP_FEES:
        return SweepFees(_u(data, 1, 8))
    if tag == SETTLE_POSITION:
        return SettlePosition(_u(data, 1, 4), data[5])
    return AdvanceTime(_u(data, 1, 8))


def _decode_reports(data: bytes) -> OracleUpdate | RiskUpdate | SettleSeries | Reason:
    """An OracleUpdate, RiskUpdate or SettleSeries: market u8 | timestamp u64 | count u8 |
    reports."""
    risk = data[0] == RISK_UPDATE
    stride = RISK_REPORT_LENGTH if risk else REPORT_LENGTH
    if len(data) < 11:
        return Reason.BAD_LENGTH
    count = data[10]
    if len(data) != 11 + stride * count:
        return Reason.BAD_LENGTH
    if not 1 <= count <= MAX_ORACLE_SIGNERS:
        return Reason.BAD_FIELD
    market, timestamp = data[1], _u(data, 2, 8)
    starts = range(11, 11 + stride * count, stride)
    if risk:
        return RiskUpdate(market, timestamp, tuple(
            RiskReport(data[at], _u(data, at + 1, 8), data[at + 9 : at + REPORT_LENGTH],
                       *_GREEKS.unpack_from(data, at + REPORT_LENGTH))
            for at in starts
        ))
    reports = tuple(OracleReport(data[at], _u(data, at + 1, 8), data[at + 9 : at + REPORT_LENGTH]) for at in starts)
    if data[0] == SETTLE_SERIES:
        return SettleSeries(market, timestamp, reports)
    return OracleUpdate(market, timestamp, reports)
