"""Bounds and sizes of the rules. Every stored number has a fixed width; every
transaction that would push a value outside its bound is rejected (Reason.OVERFLOW)."""

MAX_MARKETS = 48
"""Markets are data: up to this many, ids 0..47 (32 option series beside 16 perpetuals, or
any mix). The markets root is the hash of their 48 leaves (zero for an unlisted id), so a
step's witness opens only the markets it reads and gives the others' leaves."""

MAX_POSITIONS = 16
"""Open positions one account may hold at once (one per market)."""

ACCOUNT_TREE_DEPTH = 10
"""The account tree is 4-ary with 4**10 = 1,048,576 leaves; account ids are assigned on L1."""

ORDER_TREE_DEPTH = 4
"""Each account has 4**4 = 256 nonce slots; a nonce n lives in slot n mod 256, so an
account keeps fewer than 256 live orders at a time."""

ORDER_SLOTS = 4**ORDER_TREE_DEPTH

WITHDRAWAL_TREE_DEPTH = 10
"""Withdrawal records are appended to a 4-ary tree of 4**10 leaves."""

INSURANCE_ACCOUNT = 0
"""Account 0 is the insurance fund: it takes over liquidated and force-closed positions."""

PPM = 1_000_000
"""Fractions (margin, fees, penalties, rates) are integers in parts per million."""

FUNDING_SCALE = 10**9
"""Funding indices are collateral units per lot, times FUNDING_SCALE."""

SECONDS_PER_HOUR = 3_600

MAX_SIZE = 2**40 - 1
"""Largest order size and largest |position| in lots."""

MAX_PRICE = 2**40 - 1
"""Largest price in collateral units per lot (prices are positive)."""

MAX_COLLATERAL = 2**100 - 1
"""Largest |collateral| of an account and largest pool or total (stored as int128/uint128)."""

MAX_FUNDING_INDEX = 2**100 - 1
"""Largest |funding index| (stored as int128)."""

MAX_FUNDING_DELTA = 2**64 - 1
"""Largest |index change| one FundingTick may carry."""

MAX_U64 = 2**64 - 1
MAX_U32 = 2**32 - 1
MAX_ORACLE_SIGNERS = 16
"""Size bound of the oracle committee (reports are bit-indexed by signer)."""

CANCELLED_HASH = b"\xff" * 32
"""The order hash stored in a nonce slot by Cancel: no order can match it."""

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2
