# pragma version ~=0.4.3
"""
@title Transaction encodings and reason codes (a module)
@notice The EVM side of rollup/stf/transactions.py (whose name it takes: its decoding
        rules are most of this module) and of the codes of rollup/stf/reasons.py (Reason,
        one constant each). A transaction is a one-byte type tag, then fixed-width
        big-endian fields; each type's length is fixed (OracleUpdate and SettleSeries:
        11 + 74 per report; RiskUpdate: 11 + 94 per report).
        Orders are 26 bytes: account u32 | market_side u8 (bit 7 buy) | size u40 |
        limit_price u40 | max_fee_ppm u24 | nonce u32 | expiry u32.
        `shape` names the decoding failures that do not depend on a field's value (EMPTY,
        UNKNOWN_TYPE, BAD_LENGTH, and a feed transaction's report count); the readers below
        assume `shape` passed. Field checks (an order's side byte, a funding delta's bound,
        a forced request's kind) come first in each rule, as in `decode`.
"""
import signing

MAX_REPORTS: constant(uint256) = 16
REPORT_LENGTH: constant(uint256) = 74
# a RiskUpdate's report: an OracleUpdate's, then delta int32 | gamma int64 | vega int64
RISK_REPORT_LENGTH: constant(uint256) = 94
MAX_TX: constant(uint256) = 11 + RISK_REPORT_LENGTH * MAX_REPORTS  # 1,515: a RiskUpdate of 16 reports

DEPOSIT: constant(uint256) = 1
WITHDRAW: constant(uint256) = 2
TRADE: constant(uint256) = 3
CANCEL: constant(uint256) = 4
ORACLE_UPDATE: constant(uint256) = 5
FUNDING_TICK: constant(uint256) = 6
LIQUIDATE: constant(uint256) = 7
DELEVERAGE: constant(uint256) = 8
FORCED_REQUEST: constant(uint256) = 9
ADVANCE_TIME: constant(uint256) = 10
SWEEP_FEES: constant(uint256) = 11
FILL: constant(uint256) = 12
RISK_UPDATE: constant(uint256) = 13
SETTLE_SERIES: constant(uint256) = 14
SETTLE_POSITION: constant(uint256) = 15

# reason codes (rollup/stf/reasons.py)
OK: constant(uint8) = 0
EMPTY: constant(uint8) = 1
UNKNOWN_TYPE: constant(uint8) = 2
BAD_LENGTH: constant(uint8) = 3
BAD_FIELD: constant(uint8) = 4
BAD_SIGNATURE: constant(uint8) = 10
WRONG_SIGNER: constant(uint8) = 11
UNKNOWN_ACCOUNT: constant(uint8) = 12
EXPIRED: constant(uint8) = 20
NONCE_USED: constant(uint8) = 21
OVERFILL: constant(uint8) = 22
PRICE_NOT_FAIR: constant(uint8) = 23
FEE_TOO_HIGH: constant(uint8) = 24
SAME_SIDE: constant(uint8) = 25
MARKET_MISMATCH: constant(uint8) = 26
SELF_TRADE: constant(uint8) = 27
NOT_STEP_MULTIPLE: constant(uint8) = 28
NOT_TICK_MULTIPLE: constant(uint8) = 29
ALREADY_CANCELLED: constant(uint8) = 30
NO_ORDER: constant(uint8) = 31
PRICE_OUT_OF_BAND: constant(uint8) = 32
UNDER_MARGIN: constant(uint8) = 40
OVERFLOW: constant(uint8) = 42
INSUFFICIENT_COLLATERAL: constant(uint8) = 43
UNKNOWN_MARKET: constant(uint8) = 50
NO_PRICE: constant(uint8) = 51
ORACLE_QUORUM: constant(uint8) = 52
ORACLE_UNSORTED: constant(uint8) = 53
ORACLE_STALE: constant(uint8) = 54
ORACLE_NOT_NEWER: constant(uint8) = 55
ORACLE_MOVE_TOO_LARGE: constant(uint8) = 56  # retired: a move beyond the bound is clamped (VerifyMarket)
FUNDING_TOO_LARGE: constant(uint8) = 57
FUNDING_NO_TIME: constant(uint8) = 58
SERIES_EXPIRED: constant(uint8) = 59
DEPOSIT_OUT_OF_ORDER: constant(uint8) = 60
DEPOSIT_NOT_ON_L1: constant(uint8) = 61
OWNER_MISMATCH: constant(uint8) = 62
FORCED_OUT_OF_ORDER: constant(uint8) = 63
FORCED_NOT_ON_L1: constant(uint8) = 64
TIME_NOT_LATER: constant(uint8) = 70
TIME_AFTER_BATCH: constant(uint8) = 71
TIME_BEHIND_BATCH: constant(uint8) = 72
NOT_LIQUIDATABLE: constant(uint8) = 80
NOT_REDUCE_ONLY: constant(uint8) = 81
INSURANCE_INSUFFICIENT: constant(uint8) = 82
NOT_DELEVERAGEABLE: constant(uint8) = 83
NO_POSITION: constant(uint8) = 84
BAD_COUNTERPARTY: constant(uint8) = 85
WRONG_PRODUCT: constant(uint8) = 90
NOT_EXPIRED: constant(uint8) = 91
ALREADY_SETTLED: constant(uint8) = 92
NOT_SETTLED: constant(uint8) = 93


@internal
@pure
def length_of(tag: uint256) -> uint256:
    """The encoded length of a fixed-length type (0 for OracleUpdate, RiskUpdate,
    SettleSeries and unknown tags)."""
    if tag == DEPOSIT:
        return 49
    if tag == WITHDRAW:
        return 94
    if tag == TRADE:
        return 190
    if tag == FILL:
        return 108
    if tag == CANCEL:
        return 78
    if tag == FUNDING_TICK:
        return 18
    if tag == LIQUIDATE:
        return 14
    if tag == DELEVERAGE:
        return 18
    if tag == FORCED_REQUEST:
        return 51
    if tag == ADVANCE_TIME:
        return 9
    if tag == SWEEP_FEES:
        return 9
    if tag == SETTLE_POSITION:
        return 6
    return 0


@internal
@pure
def shape(data: Bytes[MAX_TX]) -> uint8:
    """OK, or the decoding failure of `data` that its tag and length alone decide."""
    if len(data) == 0:
        return EMPTY
    tag: uint256 = self.u8(data, 0)
    if tag == ORACLE_UPDATE or tag == RISK_UPDATE or tag == SETTLE_SERIES:
        if len(data) < 11:
            return BAD_LENGTH
        count: uint256 = self.u8(data, 10)
        stride: uint256 = REPORT_LENGTH
        if tag == RISK_UPDATE:
            stride = RISK_REPORT_LENGTH
        if len(data) != 11 + stride * count:
            return BAD_LENGTH
        if count < 1 or count > MAX_REPORTS:
            return BAD_FIELD
        return OK
    expected: uint256 = self.length_of(tag)
    if expected == 0:
        return UNKNOWN_TYPE
    if len(data) != expected:
        return BAD_LENGTH
    return OK


@internal
@pure
def u8(data: Bytes[MAX_TX], at: uint256) -> uint256:
    return convert(slice(data, at, 1), uint256)


@internal
@pure
def u32(data: Bytes[MAX_TX], at: uint256) -> uint256:
    return convert(slice(data, at, 4), uint256)


@internal
@pure
def u16(data: Bytes[MAX_TX], at: uint256) -> uint256:
    return convert(slice(data, at, 2), uint256)


@internal
@pure
def u24(data: Bytes[MAX_TX], at: uint256) -> uint256:
    return convert(slice(data, at, 3), uint256)


@internal
@pure
def u40(data: Bytes[MAX_TX], at: uint256) -> uint256:
    return convert(slice(data, at, 5), uint256)


@internal
@pure
def u64(data: Bytes[MAX_TX], at: uint256) -> uint256:
    return convert(slice(data, at, 8), uint256)


@internal
@pure
def i32(data: Bytes[MAX_TX], at: uint256) -> int256:
    return convert(convert(convert(slice(data, at, 4), bytes4), int32), int256)


@internal
@pure
def i128(data: Bytes[MAX_TX], at: uint256) -> int256:
    return convert(convert(convert(slice(data, at, 16), bytes16), int128), int256)


@internal
@pure
def addr(data: Bytes[MAX_TX], at: uint256) -> address:
    return convert(convert(slice(data, at, 20), bytes20), address)


@internal
@pure
def signature(data: Bytes[MAX_TX], at: uint256) -> Bytes[65]:
    return slice(data, at, 65)


@internal
@pure
def compact_signature(data: Bytes[MAX_TX], at: uint256) -> Bytes[64]:
    return slice(data, at, 64)


@internal
@pure
def order(data: Bytes[MAX_TX], at: uint256) -> signing.Order:
    """The 26-byte order at `at` (every 26 bytes are one)."""
    side: uint256 = self.u8(data, at + 4)
    return signing.Order(
        account=self.u32(data, at), market=side & 127, is_buy=side >= 128,
        size=self.u40(data, at + 5), limit_price=self.u40(data, at + 10),
        max_fee_ppm=self.u24(data, at + 15), nonce=self.u32(data, at + 18),
        expiry=self.u32(data, at + 22),
    )
