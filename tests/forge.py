"""Forgeries for hostile-challenger tests: one field of a value changed.

A value is an ABI argument as web3 takes it (nested tuples and lists of ints, 32-byte
strings and checksummed addresses). `leaves` lists every scalar in it with a readable
name; `forge` changes one of them so that the result still encodes (an unsigned field
stays unsigned, an address stays an address) but differs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from eth_utils import to_checksum_address

Schema = Any
"""A struct is a tuple of (field name, schema) pairs, an array is a list of one schema,
a scalar is None."""


def _struct(*names: str, **nested: Schema) -> Schema:
    return tuple((name, nested.get(name)) for name in names)


SLOT = _struct("nonce", "order_hash", "filled")
OPENED = _struct("account", "proof", "slot", "slot_proof", proof=[None], slot=SLOT, slot_proof=[None])
"""witness.vy's Opened (its account one byte string: the leaf encoding, a byte of it forged)."""
GLOBALS = _struct("time", "deposit_count", "deposit_head", "forced_count", "forced_head", "withdrawal_count",
                  "total_deposited", "total_withdrawn", "fee_pool", "funding_pool")
MARKET = _struct("id", "product", "oracle_price", "oracle_time", "funding_index", "funding_time",
                 "open_interest", "initial_margin_ppm", "maintenance_margin_ppm", "liquidation_penalty_ppm",
                 "max_funding_rate_ppm", "max_price_move_ppm", "oracle_staleness", "tick_size", "step_size",
                 "vol_shock_ppm", "terms", "risk")
ORDER = _struct("account", "market", "is_buy", "size", "limit_price", "max_fee_ppm", "nonce", "expiry")
WITNESS = _struct("accounts_root", "withdrawals_root", "globals", "markets", "listed", "hashes", "first", "second",
                  "fund", "withdrawal_proof", "order", globals=GLOBALS, first=OPENED, second=OPENED,
                  fund=[OPENED], withdrawal_proof=[None], order=ORDER)
"""witness.vy's Witness (its markets one byte string: the opened records, 94 or 139 bytes each;
`listed` the listed and opened markets' bits; `hashes` the other listed markets' leaves)."""
SIGNED = {"collateral", "size", "funding_index", "funding_pool"}
"""Fields of a signed type (int256): they may go negative."""


def name_of(path: Sequence[int], schema: Schema = WITNESS) -> str:
    """A readable name of the scalar at `path`, e.g. `first.account.positions[3].size`."""
    out = ""
    for index in path:
        if isinstance(schema, list):
            out += f"[{index}]"
            schema = schema[0]
        else:
            field, schema = schema[index]
            out += ("." if out else "") + field
    return out


def leaves(value: Any, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """The path of every scalar in a nested tuple/list value."""
    if isinstance(value, (tuple, list)):
        out: list[tuple[int, ...]] = []
        for i, item in enumerate(value):
            out += leaves(item, prefix + (i,))
        return out
    return [prefix]


def get(value: Any, path: Sequence[int]) -> Any:
    for i in path:
        value = value[i]
    return value


def put(value: Any, path: Sequence[int], new: Any) -> Any:
    """A copy of `value` with the scalar at `path` replaced (tuples stay tuples)."""
    if not path:
        return new
    items = list(value)
    items[path[0]] = put(items[path[0]], path[1:], new)
    return tuple(items) if isinstance(value, tuple) else items


def change(scalar: Any, rng: random.Random, signed: bool = False) -> Any:
    """Another value of the same ABI type."""
    if isinstance(scalar, bytes):
        raw = bytearray(scalar if scalar else b"\0" * 32)
        raw[rng.randrange(len(raw))] ^= rng.randrange(1, 256)
        return bytes(raw)
    if isinstance(scalar, str):  # an address
        raw = bytearray(bytes.fromhex(scalar[2:]))
        raw[rng.randrange(20)] ^= rng.randrange(1, 256)
        return to_checksum_address(bytes(raw))
    if isinstance(scalar, bool):
        return not scalar
    assert isinstance(scalar, int)
    choice = rng.randrange(4)
    if choice == 0:
        return scalar + 1
    if choice == 1 and (scalar > 0 or signed):
        return scalar - 1
    if choice == 2:
        return scalar ^ (1 << rng.randrange(64))
    return rng.randrange(2**64) if scalar >= 0 else -rng.randrange(1, 2**64)


def forge(value: Any, rng: random.Random, paths: list[tuple[int, ...]] | None = None,
          schema: Schema = None) -> tuple[Any, str]:
    """`value` with one scalar changed, and the name of the scalar (its path without a
    schema)."""
    paths = paths if paths is not None else leaves(value)
    path = rng.choice(paths)
    label = name_of(path, schema) if schema is not None else str(path)
    signed = label.rsplit(".", 1)[-1] in SIGNED and not label.startswith("order")  # an order's fields are unsigned
    old = get(value, path)
    new = change(old, rng, signed)
    while new == old:
        new = change(old, rng, signed)
    return put(value, path, new), label


def forge_witness(w: tuple[object, ...], rng: random.Random) -> tuple[tuple[object, ...], str]:
    """A step witness (records.step_witness) with one field changed. Fields are drawn by
    part first (so the small parts are tried as often as the 16 markets), among the parts
    that hold one (the fund is an empty list but for Deleverage)."""
    paths = leaves(w)
    part = rng.choice(sorted({p[0] for p in paths}))
    return forge(w, rng, [p for p in paths if p[0] == part], WITNESS)
