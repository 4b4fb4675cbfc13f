"""Reason codes: every receipt carries one. 0 is success; any other code means the
transaction was a no-op (except ForcedRequest, whose queue entry is consumed even when
its action fails; see `Receipt.applied`). The numbers are part of the protocol: the
L1 verifier returns the same ones."""

from enum import IntEnum


class Reason(IntEnum):
    OK = 0
    # decoding
    EMPTY = 1
    UNKNOWN_TYPE = 2
    BAD_LENGTH = 3
    BAD_FIELD = 4
    # signatures and authority
    BAD_SIGNATURE = 10
    WRONG_SIGNER = 11
    UNKNOWN_ACCOUNT = 12
    # orders
    EXPIRED = 20
    NONCE_USED = 21
    OVERFILL = 22
    PRICE_NOT_FAIR = 23
    FEE_TOO_HIGH = 24
    SAME_SIDE = 25
    MARKET_MISMATCH = 26
    SELF_TRADE = 27
    NOT_STEP_MULTIPLE = 28
    NOT_TICK_MULTIPLE = 29
    ALREADY_CANCELLED = 30
    NO_ORDER = 31
    """A Fill names a nonce slot that holds no live order of that nonce."""
    PRICE_OUT_OF_BAND = 32
    """A Trade or Fill priced more than the market's max_price_move_ppm away from its
    oracle price (a series: its mark): the flash-crash band."""
    # money
    UNDER_MARGIN = 40
    OVERFLOW = 42
    INSUFFICIENT_COLLATERAL = 43
    # markets and oracle
    UNKNOWN_MARKET = 50
    NO_PRICE = 51
    ORACLE_QUORUM = 52
    ORACLE_UNSORTED = 53
    ORACLE_STALE = 54
    ORACLE_NOT_NEWER = 55
    ORACLE_MOVE_TOO_LARGE = 56  # retired in version 2: a move beyond the bound is clamped (fork.clamp)
    FUNDING_TOO_LARGE = 57
    FUNDING_NO_TIME = 58
    SERIES_EXPIRED = 59
    # L1 messages
    DEPOSIT_OUT_OF_ORDER = 60
    DEPOSIT_NOT_ON_L1 = 61
    OWNER_MISMATCH = 62
    FORCED_OUT_OF_ORDER = 63
    FORCED_NOT_ON_L1 = 64
    # time
    TIME_NOT_LATER = 70
    TIME_AFTER_BATCH = 71
    TIME_BEHIND_BATCH = 72
    # liquidation and deleveraging
    NOT_LIQUIDATABLE = 80
    NOT_REDUCE_ONLY = 81
    INSURANCE_INSUFFICIENT = 82
    NOT_DELEVERAGEABLE = 83
    NO_POSITION = 84
    BAD_COUNTERPARTY = 85
    # options
    WRONG_PRODUCT = 90
    """A rule for one product named a market of another: an OracleUpdate or FundingTick on
    an option series; a RiskUpdate, SettleSeries or SettlePosition on a perpetual."""
    NOT_EXPIRED = 91
    """A SettleSeries before the series' expiry."""
    ALREADY_SETTLED = 92
    """A SettleSeries of a series that has its settlement price."""
    NOT_SETTLED = 93
    """A SettlePosition in a series without a settlement price."""
