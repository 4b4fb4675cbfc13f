"""The L1 verifier's account and risk rules (l1_contracts/VerifyAccount.vy, VerifyRisk.vy)
equal the STF's on the outcomes the random scenarios rarely reach: every named refusal of
Deposit, Withdraw, Cancel, ForcedRequest, Liquidate and Deleverage, a liquidation of a
bankrupt account, a deleverage, a forced close; and the gas of a step on accounts that
hold a position in each of 16 markets. Each step is compared with `EvmVerifier.compare`
(reason, applied and post-state root)."""

from __future__ import annotations

from typing import Any

import pytest

from rollup.l1 import records
from rollup.stf import Reason, builders, margin, products
from rollup.stf.constants import INSURANCE_ACCOUNT
from rollup.stf.fork import Context
from rollup.stf.genesis import genesis_state
from rollup.stf.signing import address_of
from rollup.stf.state import Market, State
from rollup.stf.transactions import (
    FORCED_CLOSE,
    FORCED_WITHDRAW,
    AdvanceTime,
    Deleverage,
    FundingTick,
    Liquidate,
    SweepFees,
)
from rollup.stf.witness import step_witness
from tests.scenarios import sync_queues
from tests.stf_world import INSURANCE_KEY, ORACLE_KEYS, USER_KEYS, World
from tests.verifier_harness import EvmVerifier

FAR = 10**12  # an expiry that never passes
GAS_CEILING = 1_000_000


def expect(verifier: EvmVerifier, world: World, tx: Any, reason: Reason, commit: bool = True) -> None:
    """Python and the EVM agree on `tx` in the world's state, and the reason is `reason`;
    then the world moves on (unless `commit` is false)."""
    data = tx if isinstance(tx, bytes) else tx.encode()
    world.prepare(data)
    outcome = verifier.compare(world.state, data, world.context)
    assert Reason(outcome[1]) == reason
    if commit:
        world.apply(data)


def value(world: World, account: int) -> int:
    settled, _ = margin.settle_funding(world.state.account(account), world.state.markets)
    return margin.value(settled, world.state.markets)


def trade(world: World, seller: int, buyer: int, market: int, size: int, price: int) -> None:
    """A fill between two accounts at `price`, applied by the STF only (it sets up a case)."""
    maker = world.order(seller, market, False, size, price)
    taker = world.order(buyer, market, True, size, price)
    assert world.apply(world.trade(maker, taker, size, 0, 0)).ok


# ---------------------------------------------------------------------- Deposit


def test_deposit_refusals_and_credits(verifier: EvmVerifier, fresh_world: Any) -> None:
    world = fresh_world()
    q = world.queues
    extra = q.deposit(9, address_of(USER_KEYS[5]), 123, world.time)
    expect(verifier, world, extra, Reason.DEPOSIT_NOT_ON_L1)  # not in the batch's view of L1
    sync_queues(world)
    expect(verifier, world, extra._replace(amount=124), Reason.DEPOSIT_NOT_ON_L1)  # another entry
    expect(verifier, world, q.deposits[0], Reason.DEPOSIT_OUT_OF_ORDER)  # replay
    expect(verifier, world, extra._replace(index=extra.index + 1), Reason.DEPOSIT_OUT_OF_ORDER)
    expect(verifier, world, extra, Reason.OK)  # a new account
    assert world.state.account(9).collateral == 123
    top_up = q.deposit(1, address_of(USER_KEYS[0]), 2**64 - 1, world.time)
    sync_queues(world)
    expect(verifier, world, top_up, Reason.OK)  # an existing account
    stolen = q.deposit(9, address_of(USER_KEYS[0]), 5, world.time)
    sync_queues(world)
    expect(verifier, world, stolen, Reason.OWNER_MISMATCH)  # (the L1 queue never makes one)

    for account, owner in ((7, b"\0" * 20), (4**10, address_of(USER_KEYS[0])), (2**32 - 1, b"\1" * 20)):
        world = fresh_world()
        sync_queues(world)
        entry = world.queues.deposit(account, owner, 5, world.time)
        sync_queues(world)
        expect(verifier, world, entry, Reason.BAD_FIELD)

    # bounds: the account's collateral, then the total deposited
    world = fresh_world()
    world.state.set_accounts({2: world.state.account(2)._replace(collateral=2**100 - 10)})
    entry = world.queues.deposit(2, address_of(USER_KEYS[1]), 10, world.time)
    sync_queues(world)
    expect(verifier, world, entry, Reason.OVERFLOW)
    world = fresh_world()
    world.state.set_globals(world.state.globals._replace(total_deposited=2**100 - 10))
    entry = world.queues.deposit(3, address_of(USER_KEYS[2]), 10, world.time)
    sync_queues(world)
    expect(verifier, world, entry, Reason.OVERFLOW)
    expect(verifier, world, entry._replace(amount=9), Reason.DEPOSIT_NOT_ON_L1)


# ---------------------------------------------------------------------- Withdraw and Cancel


def test_withdraw_refusals_and_withdrawals(verifier: EvmVerifier, fresh_world: Any) -> None:
    world = fresh_world()
    ctx = world.context
    key = USER_KEYS[0]
    ok = builders.withdraw(1, 2_000_000, 7, FAR, key, ctx)
    expect(verifier, world, builders.withdraw(40, 1, 1, FAR, key, ctx), Reason.UNKNOWN_ACCOUNT)
    expect(verifier, world, builders.withdraw(2**32 - 1, 1, 1, FAR, key, ctx), Reason.UNKNOWN_ACCOUNT)
    expect(verifier, world, builders.withdraw(1, 0, 7, FAR, key, ctx), Reason.BAD_FIELD)
    expect(verifier, world, builders.withdraw(1, 1, 7, world.time - 1, key, ctx), Reason.EXPIRED)
    expect(verifier, world, ok._replace(signature=ok.signature[:64] + b"\x00"), Reason.BAD_SIGNATURE)
    expect(verifier, world, ok._replace(amount=2_000_001), Reason.WRONG_SIGNER)  # signed another amount
    expect(verifier, world, builders.withdraw(1, 1, 7, FAR, USER_KEYS[1], ctx), Reason.WRONG_SIGNER)
    expect(verifier, world, ok, Reason.OK)
    expect(verifier, world, ok, Reason.NONCE_USED)  # no replay
    expect(verifier, world, builders.withdraw(1, 1, 7, FAR, key, ctx), Reason.NONCE_USED)
    expect(verifier, world, builders.withdraw(1, 1, 7 + 256, FAR, key, ctx), Reason.OK)  # the slot's next nonce
    expect(verifier, world, builders.withdraw(1, 10**12, 8, FAR, key, ctx), Reason.INSUFFICIENT_COLLATERAL)
    # with positions and funding: the margin rule, then a withdrawal that settles funding
    trade(world, 1, 2, 0, 500, 300_000)  # 150 USD of notional on 20 USD each
    world.advance(600)
    assert world.apply(FundingTick(0, 10**11)).ok
    room = value(world, 1) - margin.requirement(world.state.account(1), world.state.markets, True)
    expect(verifier, world, builders.withdraw(1, room + 1, 9, FAR, key, ctx), Reason.UNDER_MARGIN)
    expect(verifier, world, builders.withdraw(1, room, 9, FAR, key, ctx), Reason.OK)  # settles its funding
    assert world.state.globals.funding_pool == -500 * 100
    expect(verifier, world, builders.withdraw(2, 1, 9, FAR, USER_KEYS[1], ctx), Reason.INSUFFICIENT_COLLATERAL)
    # the withdrawal tree is full
    world.state.set_globals(world.state.globals._replace(withdrawal_count=4**10))
    expect(verifier, world, builders.withdraw(3, 1, 10, FAR, USER_KEYS[2], ctx), Reason.OVERFLOW)


def test_cancel_refusals_and_cancels(verifier: EvmVerifier, fresh_world: Any) -> None:
    world = fresh_world()
    ctx = world.context
    key = USER_KEYS[0]
    expect(verifier, world, builders.cancel(40, 1, key, ctx), Reason.UNKNOWN_ACCOUNT)
    expect(verifier, world, builders.cancel(4**10, 1, key, ctx), Reason.UNKNOWN_ACCOUNT)
    good = builders.cancel(1, 5, key, ctx)
    expect(verifier, world, good._replace(signature=good.signature[:32] + b"\0" * 32 + good.signature[64:]),
           Reason.BAD_SIGNATURE)
    expect(verifier, world, builders.cancel(1, 5, USER_KEYS[1], ctx), Reason.WRONG_SIGNER)
    expect(verifier, world, good, Reason.OK)  # an unused nonce
    expect(verifier, world, good, Reason.ALREADY_CANCELLED)
    # a partly filled order: the cancel keeps its filled amount
    maker = world.order(1, 0, False, 10, 300_000)
    taker = world.order(2, 0, True, 4, 300_000)
    assert world.apply(world.trade(maker, taker, 4)).ok
    expect(verifier, world, builders.cancel(1, maker.nonce, key, ctx), Reason.OK)
    assert world.state.slot(1, maker.nonce).filled == 4
    # a higher nonce holds the slot
    expect(verifier, world, builders.withdraw(1, 1, 300, FAR, key, ctx), Reason.OK)
    expect(verifier, world, builders.cancel(1, 44, key, ctx), Reason.NONCE_USED)
    expect(verifier, world, builders.cancel(1, 300, key, ctx), Reason.OK)  # the withdrawal's own nonce
    expect(verifier, world, builders.cancel(1, 556, key, ctx), Reason.OK)  # a later nonce of the slot


# ---------------------------------------------------------------------- ForcedRequest


def force(world: World, kind: int, account: int, requester: bytes, market: int = 0, amount: int = 0,
          sync: bool = True) -> Any:
    request = world.queues.force(kind, account, requester, market, amount, world.time)
    if sync:
        sync_queues(world)
    return request


def test_forced_requests_are_consumed_whatever_their_fate(verifier: EvmVerifier, fresh_world: Any) -> None:
    world = fresh_world()
    owner = address_of(USER_KEYS[0])
    first = force(world, FORCED_WITHDRAW, 1, owner, amount=1_000_000, sync=False)
    expect(verifier, world, first, Reason.FORCED_NOT_ON_L1)  # not in the batch's view of L1
    sync_queues(world)
    bad_kind = bytearray(first.encode())
    bad_kind[9] = 2
    expect(verifier, world, bytes(bad_kind), Reason.BAD_FIELD)  # a decoding check
    second = force(world, FORCED_WITHDRAW, 1, owner, amount=10**12)
    expect(verifier, world, second, Reason.FORCED_OUT_OF_ORDER)
    expect(verifier, world, first._replace(amount=1), Reason.FORCED_NOT_ON_L1)
    expect(verifier, world, first, Reason.OK)
    assert world.state.withdrawals[-1].amount == 1_000_000
    expect(verifier, world, second, Reason.INSUFFICIENT_COLLATERAL)  # consumed
    assert world.state.globals.forced_count == 2

    # with positions: the margin rule on a forced withdrawal, a close at or above
    # maintenance, a close below it (liquidation is that path)
    trade(world, 3, 2, 0, 500, 300_000)
    trade(world, 4, 5, 1, 100, 1_000_000)
    world.advance(600)
    assert world.apply(FundingTick(0, -10**11)).ok
    expect(verifier, world, force(world, FORCED_WITHDRAW, 3, address_of(USER_KEYS[2]), amount=10**7),
           Reason.UNDER_MARGIN)
    expect(verifier, world, force(world, FORCED_CLOSE, 5, address_of(USER_KEYS[4]), market=1), Reason.OK)
    assert world.state.account(INSURANCE_ACCOUNT).size(1) == 100
    assert world.set_price(0, 273_000).ok
    expect(verifier, world, force(world, FORCED_CLOSE, 2, address_of(USER_KEYS[1]), market=0),
           Reason.UNDER_MARGIN)
    expect(verifier, world, force(world, FORCED_CLOSE, 3, address_of(USER_KEYS[2]), market=0), Reason.OK)
    assert world.state.account(INSURANCE_ACCOUNT).size(0) == -500
    assert world.conserved()


OWNER = address_of(USER_KEYS[0])
FORCED_ACTIONS = {
    "UNKNOWN_ACCOUNT-withdraw": (FORCED_WITHDRAW, 40, OWNER, 0, 1, Reason.UNKNOWN_ACCOUNT),
    "UNKNOWN_ACCOUNT-close": (FORCED_CLOSE, 2**32 - 1, OWNER, 0, 0, Reason.UNKNOWN_ACCOUNT),
    "WRONG_SIGNER": (FORCED_WITHDRAW, 1, address_of(USER_KEYS[1]), 0, 1, Reason.WRONG_SIGNER),
    "BAD_FIELD": (FORCED_WITHDRAW, 1, OWNER, 0, 0, Reason.BAD_FIELD),
    "UNKNOWN_ACCOUNT-close-the-fund": (FORCED_CLOSE, INSURANCE_ACCOUNT, address_of(INSURANCE_KEY), 0, 0,
                                       Reason.UNKNOWN_ACCOUNT),
    "OK-the-fund-withdraws": (FORCED_WITHDRAW, INSURANCE_ACCOUNT, address_of(INSURANCE_KEY), 0, 1, Reason.OK),
    "UNKNOWN_MARKET": (FORCED_CLOSE, 1, OWNER, 9, 0, Reason.UNKNOWN_MARKET),
    "NO_PRICE": (FORCED_CLOSE, 1, OWNER, 5, 0, Reason.NO_PRICE),
    "NO_POSITION": (FORCED_CLOSE, 1, OWNER, 0, 0, Reason.NO_POSITION),
}
"""Forced actions by their outcome (kind, account, requester, market, amount, reason)."""


@pytest.mark.parametrize("case", list(FORCED_ACTIONS))
def test_a_forced_action_is_consumed_whatever_its_fate(verifier: EvmVerifier, fresh_world: Any, case: str) -> None:
    """Each forced action's refusal (and the fund's own withdrawal), in both executions: the
    request is consumed all the same."""
    kind, account, requester, market, amount, reason = FORCED_ACTIONS[case]
    world = fresh_world()
    world.state.set_market(Market(id=5))  # listed, never priced
    expect(verifier, world, force(world, kind, account, requester, market, amount), reason)
    assert world.state.globals.forced_count == 1


# ---------------------------------------------------------------------- Liquidate and Deleverage


def test_liquidations_and_deleverages(verifier: EvmVerifier, fresh_world: Any) -> None:
    world = fresh_world()
    trade(world, 1, 2, 0, 600, 300_000)  # 180 USD of notional on 20 USD
    trade(world, 5, 6, 1, 10, 1_000_000)
    world.advance(600)
    assert world.apply(FundingTick(0, 3 * 10**10)).ok  # longs pay
    expect(verifier, world, Liquidate(40, 0, 1), Reason.UNKNOWN_ACCOUNT)
    expect(verifier, world, Liquidate(4**10, 0, 1), Reason.UNKNOWN_ACCOUNT)
    expect(verifier, world, Liquidate(INSURANCE_ACCOUNT, 0, 1), Reason.BAD_COUNTERPARTY)
    expect(verifier, world, Liquidate(2, 9, 1), Reason.UNKNOWN_MARKET)
    world.state.set_market(Market(id=5))
    expect(verifier, world, Liquidate(2, 5, 1), Reason.NO_PRICE)
    expect(verifier, world, Liquidate(2, 1, 1), Reason.NO_POSITION)
    expect(verifier, world, Liquidate(2, 0, 0), Reason.BAD_FIELD)
    expect(verifier, world, Liquidate(2, 0, 601), Reason.NOT_REDUCE_ONLY)
    expect(verifier, world, Liquidate(2, 0, 10), Reason.NOT_LIQUIDATABLE)
    assert world.set_price(0, 273_000).ok
    assert 0 <= value(world, 2)
    expect(verifier, world, Liquidate(2, 0, 10), Reason.OK)  # with penalty
    for price in (248_430, 226_071):
        assert world.set_price(0, price).ok
    assert value(world, 2) < 0
    # a deleverager with almost no margin, short at the crash price
    trade(world, 3, 4, 0, 20, 226_071)
    assert world.apply(builders.withdraw(3, 19_500_000, world.next_nonce(3), FAR, USER_KEYS[2], world.context)).ok
    expect(verifier, world, Liquidate(2, 0, 1), Reason.OK)  # the fund pays the slice's deficit share
    expect(verifier, world, Liquidate(2, 0, 300), Reason.INSURANCE_INSUFFICIENT)

    expect(verifier, world, Deleverage(40, 1, 0, 1), Reason.UNKNOWN_ACCOUNT)
    expect(verifier, world, Deleverage(2, 2**32 - 1, 0, 1), Reason.UNKNOWN_ACCOUNT)
    expect(verifier, world, Deleverage(2, 2, 0, 1), Reason.BAD_COUNTERPARTY)
    expect(verifier, world, Deleverage(2, 1, 9, 1), Reason.UNKNOWN_MARKET)
    expect(verifier, world, Deleverage(2, 1, 5, 1), Reason.NO_PRICE)
    expect(verifier, world, Deleverage(2, 1, 1, 1), Reason.NO_POSITION)
    expect(verifier, world, Deleverage(2, 4, 0, 1), Reason.BAD_COUNTERPARTY)  # same side
    expect(verifier, world, Deleverage(2, 5, 0, 1), Reason.BAD_COUNTERPARTY)  # no position there
    expect(verifier, world, Deleverage(2, 1, 0, 0), Reason.BAD_FIELD)
    expect(verifier, world, Deleverage(2, 3, 0, 21), Reason.NOT_REDUCE_ONLY)
    expect(verifier, world, Deleverage(1, 2, 0, 1), Reason.NOT_DELEVERAGEABLE)  # not bankrupt
    expect(verifier, world, Deleverage(2, 1, 0, 1), Reason.NOT_DELEVERAGEABLE)  # the fund can carry it
    expect(verifier, world, Deleverage(2, 3, 0, 20), Reason.BAD_COUNTERPARTY)  # the deleverager would sink
    expect(verifier, world, Deleverage(2, 1, 0, 300), Reason.OK)
    assert world.conserved()


def test_the_fund_itself_is_deleveraged(verifier: EvmVerifier, fresh_world: Any) -> None:
    """A forced close loads the fund; a crash makes it bankrupt; its position is then
    deleveraged against an opposite holder (the fund is "first" and read as the fund)."""
    world = fresh_world()
    trade(world, 1, 2, 0, 300, 300_000)
    close = force(world, FORCED_CLOSE, 2, address_of(USER_KEYS[1]), market=0)
    expect(verifier, world, close, Reason.OK)
    for price in (273_000, 248_430, 226_071):
        assert world.set_price(0, price).ok
    assert value(world, INSURANCE_ACCOUNT) < 0
    expect(verifier, world, Deleverage(1, INSURANCE_ACCOUNT, 0, 10), Reason.NOT_DELEVERAGEABLE)
    expect(verifier, world, Deleverage(INSURANCE_ACCOUNT, 1, 0, 100), Reason.OK)
    expect(verifier, world, Liquidate(1, 0, 1), Reason.NOT_LIQUIDATABLE)


# ---------------------------------------------------------------------- gas on heavy accounts

MARKETS = 16
PRICE = 1_000_000


def heavy_world(config: Any, insurance: int, start: int = 1_000) -> World:
    """16 priced markets; account 2 long 100 lots in each against account 1 on 200 USD
    (8x), accounts 3 (short) and 4 (long) 100 lots in each on 1,000,000 USD; account 2
    liquidated by 1 lot in each market (the fund holds 16 positions), then a 27% crash
    leaves it bankrupt; funding has moved in every market since anyone settled."""
    markets = tuple(Market(id=i, max_price_move_ppm=100_000, oracle_staleness=3_600) for i in range(MARKETS))
    state: State = genesis_state(address_of(INSURANCE_KEY), markets)
    queues = builders.L1Queues()
    queues.deposit(0, address_of(INSURANCE_KEY), insurance)
    for user, amount in ((1, 10**12), (2, 200_000_000), (3, 10**12), (4, 10**12)):
        queues.deposit(user, address_of(USER_KEYS[user - 1]), amount)
    context = Context(config, 0, tuple(queues.deposit_heads), tuple(queues.forced_heads))
    world = World(state, queues, context, time=start)
    assert world.apply(AdvanceTime(start)).ok
    for entry in queues.deposits:
        assert world.apply(entry).ok

    def prices(price: int) -> None:
        world.advance(1)
        for m in range(MARKETS):
            update = builders.oracle_update(
                m, world.time, [(0, price, ORACLE_KEYS[0]), (1, price, ORACLE_KEYS[1])], world.context)
            assert world.apply(update).ok

    prices(PRICE)
    for m in range(MARKETS):
        trade(world, 1, 2, m, 100, PRICE)
        trade(world, 3, 4, m, 100, PRICE)
    prices(PRICE * 91 // 100)
    for m in range(MARKETS):
        assert world.apply(Liquidate(2, m, 1)).ok
    prices(PRICE * 91 * 91 // 100**2)
    prices(PRICE * 91**3 // 100**3)
    world.advance(3_600)
    for m in range(MARKETS):
        assert world.apply(FundingTick(m, (-1) ** m * 10**12)).ok
    return world


def with_options(world: World) -> World:
    """heavy_world's markets 8-15 turned into option series (calls and puts, Greeks of an
    at-the-money month on a volatile underlying, every Greek nonzero) written on the
    perpetuals 0-7, each with a volatility shock: the accounts' 16 positions are then 8
    perpetuals and 8 series on 8 underlyings, every one of them netting perpetual and
    option exposure, shorts among them (floors). The records are set as the state's (the
    pre-state of a proof is any state the witness opens)."""
    for i in range(8):
        perpetual = world.state.market(i)
        assert perpetual is not None
        world.state.set_market(perpetual._replace(vol_shock_ppm=100_000))
    for i in range(8, 16):
        series = world.state.market(i)
        assert series is not None
        world.state.set_market(series._replace(
            product=products.CALL if i % 2 == 0 else products.PUT, underlying=i - 8, strike=PRICE,
            expiry=2**40, delta=545_649 if i % 2 == 0 else -454_351, gamma=518_408 * PRICE // 300_000,
            vega=34_087 * PRICE // 300_000,
        ))
    return world



def test_gas_of_a_step_on_accounts_with_sixteen_positions(verifier: EvmVerifier) -> None:
    rich, poor = heavy_world(verifier.config, 10**12), heavy_world(verifier.config, 1_000_000)
    assert value(rich, 2) < 0 and len(rich.state.account(INSURANCE_ACCOUNT).positions) == MARKETS
    ctx = rich.context
    g = rich.state.globals
    rich.state.set_globals(g.with_pools(1_000_000, g.funding_pool))  # fees to sweep (the trades paid none)
    deposit = rich.queues.deposit(2, address_of(USER_KEYS[1]), 5, rich.time)
    sync_queues(rich)
    cases: list[tuple[str, World, bytes]] = [
        ("Deposit", rich, deposit.encode()),
        ("Withdraw", rich, builders.withdraw(4, 1_000_000, 77, FAR, USER_KEYS[3], ctx).encode()),
        ("Cancel", rich, builders.cancel(4, 78, USER_KEYS[3], ctx).encode()),
        ("ForcedRequest withdraw", rich, b""),
        ("ForcedRequest close", rich, b""),
        ("Liquidate (bankrupt)", rich, Liquidate(2, 15, 50).encode()),
        ("Deleverage", poor, Deleverage(2, 3, 15, 50).encode()),
        ("SweepFees", rich, SweepFees(1_000_000).encode()),
        # last: it starts a new batch (the others run at this batch's time)
        ("AdvanceTime (router and witness only)", rich, AdvanceTime(rich.time + 1).encode()),
    ]
    gas: dict[str, int] = {}
    for name, world, tx in cases:
        if name.startswith("ForcedRequest"):
            kind = FORCED_WITHDRAW if "withdraw" in name else FORCED_CLOSE
            tx = force(world, kind, 4, address_of(USER_KEYS[3]), market=15, amount=1_000_000).encode()
        expect(verifier, world, tx, Reason.OK, commit=False)
        verifier.sync(world.context)
        w = records.step_witness(step_witness(world.state, tx))
        gas[name] = verifier.verifier.functions.step(
            tx, world.state.root(), world.context.timestamp, len(world.context.deposit_heads) - 1,
            len(world.context.forced_heads) - 1, w,
        ).estimate_gas()
        if name.startswith("ForcedRequest"):
            world.apply(tx)  # consume it: the next request is the next index
    print("\nstep gas, 16 positions per account:", gas)
    for name, used in gas.items():
        assert used < GAS_CEILING, (name, used)
