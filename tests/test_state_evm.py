"""Leaf encodings on the EVM (l1_contracts/state.vy) equal the STF's (rollup/stf/state.py),
on random records including the extremes of every field's width."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from rollup.l1 import records
from rollup.l1.client import L1, default_dev_key
from rollup.stf.constants import MAX_FUNDING_INDEX, MAX_SIZE
from rollup.stf.state import Account, Globals, Market, OrderSlot, Position, Withdrawal, state_root

CASES = 1_000 if os.environ.get("ROLLUP_LONG") else 60


@pytest.fixture(scope="module")
def harness(l1_url: str) -> Iterator[Contract]:
    yield L1(l1_url, default_dev_key()).deploy("StateHarness")


def random_account(rng: random.Random) -> Account:
    markets = sorted(rng.sample(range(16), rng.choice([0, 1, 2, 3, 16])))
    positions = tuple(
        Position(m, rng.choice([1, -1]) * rng.choice([1, rng.randrange(MAX_SIZE), MAX_SIZE]),
                 rng.choice([0, -MAX_FUNDING_INDEX, MAX_FUNDING_INDEX, rng.randrange(-2**90, 2**90)]))
        for m in markets
    )
    collateral = rng.choice([0, 1, -1, 2**100 - 1, -(2**100 - 1), rng.randrange(-2**64, 2**64)])
    owner = rng.choice([b"\0" * 20, rng.randbytes(20)])
    return Account(owner, collateral, positions, rng.choice([b"\0" * 32, rng.randbytes(32)]))


def as_struct(a: Account) -> tuple[object, ...]:
    return records.account(a)


def test_account_leaves_agree(harness: Contract) -> None:
    rng = random.Random(3)
    accounts = [Account(), Account(owner=b"\1" * 20)] + [random_account(rng) for _ in range(CASES)]
    for account in accounts:
        assert harness.functions.account_leaf(as_struct(account)).call() == account.leaf(), account


def test_account_records_decode(harness: Contract) -> None:
    """A step witness carries an account as its leaf encoding (records.account_record);
    state.vy `account_of` gives back the account, the default one for no bytes, and
    refuses every other string: a length off 69 + 25 * count, a count byte the length
    does not match, the default account's 69 bytes (its leaf is zero, not their hash)."""
    rng = random.Random(6)
    widest = Account(
        owner=b"\xff" * 20, collateral=-(2**127),
        positions=tuple(Position(m, size, index) for m, size, index in zip(
            range(16), [-(2**63), 2**63 - 1] * 8, [-(2**127), 2**127 - 1] * 8, strict=True)),
        orders_root=b"\xff" * 32,
    )
    accounts = [Account(owner=b"\1" * 20), widest] + [random_account(rng) for _ in range(CASES)]
    assert records.account_record(Account()) == b""
    assert records.account_from(harness.functions.account_of(b"").call()) == Account()
    for account in accounts:
        record = records.account_record(account)
        assert len(record) == (0 if account.leaf() == bytes(32) else 69 + 25 * len(account.positions))
        assert records.account_from(harness.functions.account_of(record).call()) == account
    record = records.account_record(widest)
    refused = [
        b"\0" * 69, b"\0" * 68, record[:-1], record[:69 + 25 * 15], record[:69 + 25 * 15] + b"\0",
        record[:68] + bytes([15]) + record[69:],
    ]
    for bad in refused:
        with pytest.raises(ContractLogicError, match="witness: (account record length|default account record)"):
            harness.functions.account_of(bad).call()


def test_slot_leaves_and_state_root_agree(harness: Contract) -> None:
    rng = random.Random(4)
    for _ in range(CASES // 3):
        slot = OrderSlot(rng.choice([0, 2**64 - 1, rng.randrange(2**64)]),
                         rng.choice([b"\0" * 32, b"\xff" * 32, rng.randbytes(32)]),
                         rng.choice([0, 2**64 - 1, rng.randrange(2**64)]))
        assert harness.functions.slot_leaf(records.slot(slot)).call() == slot.leaf()
        parts = [rng.randbytes(32) for _ in range(4)]
        assert harness.functions.state_root(*parts).call() == state_root(*parts)
    assert harness.functions.slot_leaf((0, b"\0" * 32, 0)).call() == b"\0" * 32


def test_market_globals_and_withdrawal_leaves_agree(harness: Contract) -> None:
    rng = random.Random(6)

    def pick(bits: int, signed: bool = False) -> int:
        top = 2 ** (bits - 1) if signed else 2**bits
        low = -top if signed else 0
        return rng.choice([low, top - 1, 0, rng.randrange(low, top)])

    products = set()
    for _ in range(CASES // 3):
        market = Market(
            id=pick(8), product=rng.choice([0, 0, 1, 2, pick(8)]), oracle_price=pick(64), oracle_time=pick(64),
            funding_index=pick(128, True), funding_time=pick(64), open_interest=pick(64),
            initial_margin_ppm=pick(32), maintenance_margin_ppm=pick(32), liquidation_penalty_ppm=pick(32),
            max_funding_rate_ppm=pick(32), max_price_move_ppm=pick(32), oracle_staleness=pick(32),
            tick_size=pick(64), step_size=pick(64), vol_shock_ppm=pick(32), underlying=pick(8), strike=pick(64),
            expiry=pick(64), settlement_price=pick(64), delta=pick(32, True), gamma=pick(64, True),
            vega=pick(64, True),
        )
        assert harness.functions.market_leaf(records.market(market)).call() == market.leaf()
        # decoding: a perpetual's record carries no option terms, an option series' all of them
        encoded = market.encode()
        assert len(encoded) == (94 if market.product == 0 else 139)
        kept = market if market.product else market._replace(underlying=0, strike=0, expiry=0, settlement_price=0,
                                                               delta=0, gamma=0, vega=0)
        assert tuple(harness.functions.market_of(encoded).call()) == records.market(kept)
        assert tuple(harness.functions.option_fields(records.market(kept)).call()) == (
            kept.underlying, kept.strike, kept.expiry, kept.settlement_price, kept.delta, kept.gamma, kept.vega)
        products.add(market.product == 0)
        g = Globals(pick(64), pick(64), rng.randbytes(32), pick(64), rng.randbytes(32), pick(64),
                    pick(128), pick(128), pick(128), pick(128, True))
        assert harness.functions.globals_hash(records.globals_(g)).call() == g.leaf()
        record = Withdrawal(pick(32), rng.randbytes(20), pick(64))
        assert harness.functions.withdrawal_leaf(records.withdrawal(record)).call() == record.leaf()
    assert products == {True, False}
