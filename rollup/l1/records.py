"""STF records as the L1 contracts' ABI tuples (l1_contracts/state.vy, witness.vy).

Every field is a full word (uint256 / int256 / bytes32 / address); an account's positions
are a fixed array of 16 with a count, zero past it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from eth_utils import to_checksum_address

from rollup.stf import witness
from rollup.stf.constants import MAX_MARKETS, MAX_POSITIONS
from rollup.stf.hashing import ZERO_HASH
from rollup.stf.products import PERPETUAL
from rollup.stf.state import Account, Globals, Market, OrderSlot, Withdrawal

ZERO_POSITION = (0, 0, 0)


def address(raw: bytes) -> str:
    return to_checksum_address(raw)


def account(a: Account) -> tuple[object, ...]:
    positions = [(p.market, p.size, p.funding_index) for p in a.positions]
    positions += [ZERO_POSITION] * (MAX_POSITIONS - len(positions))
    return (address(a.owner), a.collateral, a.orders_root, len(a.positions), positions)


def account_from(t: Sequence[object]) -> Account:
    """The STF record of an account tuple returned by a contract."""
    from rollup.stf.state import Position

    owner, collateral, orders_root, count, positions = t
    return Account(
        owner=bytes.fromhex(str(owner)[2:]),
        collateral=int(collateral),  # type: ignore[call-overload]
        positions=tuple(Position(*p) for p in list(positions)[: int(count)]),  # type: ignore[call-overload]
        orders_root=bytes(orders_root),  # type: ignore[call-overload]
    )


ZERO_MARKET = (0,) * 18


def market(m: Market | None) -> tuple[int, ...]:
    if m is None:
        return ZERO_MARKET
    return (
        m.id, m.product, m.oracle_price, m.oracle_time, m.funding_index, m.funding_time,
        m.open_interest, m.initial_margin_ppm, m.maintenance_margin_ppm, m.liquidation_penalty_ppm,
        m.max_funding_rate_ppm, m.max_price_move_ppm, m.oracle_staleness, m.tick_size, m.step_size,
        m.vol_shock_ppm, *option_words(m),
    )


def option_words(m: Market) -> tuple[int, int]:
    """state.vy's (terms, risk) of a market: an option series' record bytes 94-118 and
    119-138 read as big-endian numbers (0, 0 for a perpetual)."""
    if m.product == PERPETUAL:
        return 0, 0
    tail = m.encode()[94:]
    return int.from_bytes(tail[:25], "big"), int.from_bytes(tail[25:], "big")


def globals_(g: Globals) -> tuple[object, ...]:
    return (
        g.time, g.deposit_count, g.deposit_head, g.forced_count, g.forced_head, g.withdrawal_count,
        g.total_deposited, g.total_withdrawn, g.fee_pool, g.funding_pool,
    )


def slot(s: OrderSlot) -> tuple[object, ...]:
    return (s.nonce, s.order_hash, s.filled)


def withdrawal(w: Withdrawal) -> tuple[object, ...]:
    return (w.account, address(w.owner), w.amount)


def proof(p: Sequence[Sequence[bytes]]) -> list[bytes]:
    """A path as the contracts take it: the siblings of every level, flattened."""
    return [sibling for level in p for sibling in level]


def account_record(a: Account) -> bytes:
    """How a step witness carries an account (witness.vy `open_account`): its leaf
    encoding, empty for the default account (whose leaf is zero)."""
    return b"" if a.leaf() == ZERO_HASH else a.encode()


def opened(o: witness.Opened) -> tuple[object, ...]:
    return (account_record(o.account), proof(o.proof), slot(o.slot), proof(o.slot_proof))


def market_records(ms: Sequence[Market | None], opened: Collection[int]) -> tuple[bytes, int, bytes]:
    """How a step witness carries the markets (witness.vy `open_markets`): (the leaf
    encodings of the listed markets in `opened`, 94 or 139 bytes, in id order; the
    listed markets' bit set with the opened ones' at bit MAX_MARKETS + id; the leaves of
    the other listed markets, in id order, concatenated)."""
    listed = sum(1 << i for i, m in enumerate(ms) if m is not None)
    shown = [i for i, m in enumerate(ms) if m is not None and i in opened]
    records = b"".join(ms[i].encode() for i in shown)  # type: ignore[union-attr]
    hashes = b"".join(m.leaf() for i, m in enumerate(ms) if m is not None and i not in opened)
    return records, listed | sum(1 << (MAX_MARKETS + i) for i in shown), hashes


def step_witness(w: witness.StepWitness) -> tuple[object, ...]:
    """witness.vy's Witness."""
    records, listed, hashes = market_records(w.state.markets, w.opened_markets)
    return (
        w.accounts_root, w.withdrawals_root, globals_(w.state.globals), records, listed, hashes,
        opened(w.first), opened(w.second), [] if w.fund is None else [opened(w.fund)], proof(w.withdrawal_proof),
        tuple(w.order),
    )
