"""Every refusal reason, one case each, in both executions. A case builds a world (the
funded world of tests/scenarios.py: six users with 20 USD each, the ETH and BTC
perpetuals and three option series, priced and marked) and returns the one transaction
the rules refuse with its reason, and the context it runs in. The STF gives that reason;
the L1 verifier gives the same outcome (reason, applied, post-state root:
`EvmVerifier.compare`). A failure names the reason (the test ids are Reason names), and
`test_every_reason_has_a_case` keeps the table complete: every Reason but OK and the
retired ORACLE_MOVE_TOO_LARGE."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from rollup.stf import Reason, apply, builders
from rollup.stf.constants import FUNDING_SCALE, PPM
from rollup.stf.signing import address_of
from rollup.stf.state import Market
from rollup.stf.transactions import (
    FORCED_WITHDRAW,
    AdvanceTime,
    Deleverage,
    FundingTick,
    Liquidate,
    SettlePosition,
    SweepFees,
)
from tests.scenarios import sync_queues, world_factory
from tests.stf_world import ORACLE_KEYS, USER_KEYS, World
from tests.verifier_harness import EvmVerifier

FAR = 10**12  # an expiry that never passes
K0, K1, K2 = ORACLE_KEYS

Case = Callable[[World], bytes]
REFUSALS: dict[Reason, Case] = {}
"""reason -> a case: it readies the world (and its context) and returns the transaction."""

NO_CASE = {
    Reason.OK: "not a refusal",
    Reason.ORACLE_MOVE_TOO_LARGE: "retired in version 2: a move beyond the bound is clamped (fork.clamp)",
}
"""Reasons without a refusal case, and why."""


def refusal(reason: Reason) -> Callable[[Case], Case]:
    def register(case: Case) -> Case:
        assert reason not in REFUSALS, reason
        REFUSALS[reason] = case
        return case
    return register


def ok(world: World, tx: bytes | object) -> None:
    """A step of a case's setup, applied by the STF (it must succeed)."""
    receipt = world.apply(tx)
    assert receipt.ok, receipt


def trade(world: World, seller: int, buyer: int, market: int, size: int, price: int) -> None:
    ok(world, world.trade(world.order(seller, market, False, size, price), world.order(buyer, market, True, size, price),
                          size, 0, 0))


def withdraw(world: World, account: int = 1, amount: int = 1, expiry: int = FAR, key: bytes = USER_KEYS[0]) -> bytes:
    return builders.withdraw(account, amount, world.next_nonce(account), expiry, key, world.context).encode()


def prices(world: World, market: int, reports: list[tuple[int, int, bytes]], timestamp: int | None = None) -> bytes:
    """An OracleUpdate of `market` at the world's time (or `timestamp`), one second on."""
    world.advance(1)
    return builders.oracle_update(market, world.time if timestamp is None else timestamp, reports,
                                  world.context).encode()


# ---------------------------------------------------------------------- decoding


@refusal(Reason.EMPTY)
def _empty(world: World) -> bytes:
    return b""


@refusal(Reason.UNKNOWN_TYPE)
def _unknown_type(world: World) -> bytes:
    return b"\x3f" + bytes(20)


@refusal(Reason.BAD_LENGTH)
def _bad_length(world: World) -> bytes:
    return SweepFees(1).encode()[:-1]


@refusal(Reason.BAD_FIELD)
def _bad_field(world: World) -> bytes:
    return withdraw(world, amount=0)


# ---------------------------------------------------------------------- signatures and authority


@refusal(Reason.BAD_SIGNATURE)
def _bad_signature(world: World) -> bytes:
    signed = builders.withdraw(1, 1, world.next_nonce(1), FAR, USER_KEYS[0], world.context)
    return signed._replace(signature=signed.signature[:64] + b"\x00").encode()  # v = 0


@refusal(Reason.WRONG_SIGNER)
def _wrong_signer(world: World) -> bytes:
    return withdraw(world, key=USER_KEYS[1])


@refusal(Reason.UNKNOWN_ACCOUNT)
def _unknown_account(world: World) -> bytes:
    return withdraw(world, account=40)


# ---------------------------------------------------------------------- orders


def order_pair(world: World, maker: dict[str, object] | None = None, taker: dict[str, object] | None = None,
               fill: int = 5, fees: tuple[int, int] = (200, 500)) -> bytes:
    """Account 1 sells 10 lots of ETH at 300,000 to account 2, with the changes given."""
    m = dict(account=1, market=0, is_buy=False, size=10, price=300_000) | (maker or {})
    t = dict(account=2, market=0, is_buy=True, size=10, price=300_000) | (taker or {})
    return world.trade(world.order(**m), world.order(**t), fill, *fees)  # type: ignore[arg-type]


@refusal(Reason.EXPIRED)
def _expired(world: World) -> bytes:
    return order_pair(world, taker={"expiry": world.time - 1})


@refusal(Reason.NONCE_USED)
def _nonce_used(world: World) -> bytes:
    tx = withdraw(world)
    ok(world, tx)
    return tx  # replayed


@refusal(Reason.OVERFILL)
def _overfill(world: World) -> bytes:
    return order_pair(world, taker={"size": 20}, fill=15)


@refusal(Reason.PRICE_NOT_FAIR)
def _price_not_fair(world: World) -> bytes:
    return order_pair(world, taker={"price": 299_999})


@refusal(Reason.FEE_TOO_HIGH)
def _fee_too_high(world: World) -> bytes:
    return order_pair(world, taker={"max_fee_ppm": 100}, fees=(200, 101))


@refusal(Reason.SAME_SIDE)
def _same_side(world: World) -> bytes:
    return order_pair(world, taker={"is_buy": False})


@refusal(Reason.MARKET_MISMATCH)
def _market_mismatch(world: World) -> bytes:
    return order_pair(world, taker={"market": 1})


@refusal(Reason.SELF_TRADE)
def _self_trade(world: World) -> bytes:
    return order_pair(world, taker={"account": 1})


@refusal(Reason.NOT_STEP_MULTIPLE)
def _not_step_multiple(world: World) -> bytes:
    world.state.set_market(world.state.markets[0]._replace(step_size=10))  # type: ignore[union-attr]
    return order_pair(world, fill=5)


@refusal(Reason.NOT_TICK_MULTIPLE)
def _not_tick_multiple(world: World) -> bytes:
    world.state.set_market(world.state.markets[0]._replace(tick_size=7))  # type: ignore[union-attr]
    return order_pair(world)


@refusal(Reason.ALREADY_CANCELLED)
def _already_cancelled(world: World) -> bytes:
    cancel = builders.cancel(1, 5, USER_KEYS[0], world.context).encode()
    ok(world, cancel)
    return cancel


@refusal(Reason.NO_ORDER)
def _no_order(world: World) -> bytes:
    never = world.order(1, 0, False, 10, 300_000)  # signed, never posted
    return world.fill(never, world.order(2, 0, True, 5, 300_000), 5)


@refusal(Reason.PRICE_OUT_OF_BAND)
def _price_out_of_band(world: World) -> bytes:
    return order_pair(world, maker={"price": 340_000}, taker={"price": 340_000})  # 13% above the index


# ---------------------------------------------------------------------- money


@refusal(Reason.UNDER_MARGIN)
def _under_margin(world: World) -> bytes:
    return order_pair(world, maker={"size": 1_000}, taker={"size": 1_000}, fill=1_000)  # 300 USD on 20


@refusal(Reason.OVERFLOW)
def _overflow(world: World) -> bytes:
    world.state.set_globals(world.state.globals._replace(withdrawal_count=4**10))  # the tree is full
    return withdraw(world)


@refusal(Reason.INSUFFICIENT_COLLATERAL)
def _insufficient_collateral(world: World) -> bytes:
    return withdraw(world, amount=10**12)


# ---------------------------------------------------------------------- markets and oracle


@refusal(Reason.UNKNOWN_MARKET)
def _unknown_market(world: World) -> bytes:
    return FundingTick(9, 1).encode()


@refusal(Reason.NO_PRICE)
def _no_price(world: World) -> bytes:
    world.state.set_market(Market(id=5))  # listed, never priced
    return Liquidate(1, 5, 1).encode()


@refusal(Reason.ORACLE_QUORUM)
def _oracle_quorum(world: World) -> bytes:
    return prices(world, 0, [(0, 310_000, K0)])


@refusal(Reason.ORACLE_UNSORTED)
def _oracle_unsorted(world: World) -> bytes:
    world.advance(1)
    update = builders.oracle_update(0, world.time, [(0, 305_000, K0), (1, 310_000, K1)], world.context)
    return update._replace(reports=update.reports[::-1]).encode()  # (the builder sorts them)


@refusal(Reason.ORACLE_STALE)
def _oracle_stale(world: World) -> bytes:
    return prices(world, 0, [(0, 310_000, K0), (1, 310_000, K1)], timestamp=world.time + 2)  # in the future


@refusal(Reason.ORACLE_NOT_NEWER)
def _oracle_not_newer(world: World) -> bytes:
    return prices(world, 0, [(0, 310_000, K0), (1, 310_000, K1)], timestamp=world.state.markets[0].oracle_time)  # type: ignore[union-attr]


@refusal(Reason.FUNDING_TOO_LARGE)
def _funding_too_large(world: World) -> bytes:
    world.advance(3_600)
    eth = world.state.markets[0]
    assert eth is not None
    elapsed = world.time - eth.funding_time
    cap = eth.max_funding_rate_ppm * eth.oracle_price * elapsed * FUNDING_SCALE // (PPM * 3_600)
    return FundingTick(0, cap + 1).encode()


@refusal(Reason.FUNDING_NO_TIME)
def _funding_no_time(world: World) -> bytes:
    world.advance(60)
    ok(world, FundingTick(0, 1))
    return FundingTick(0, 1).encode()


@refusal(Reason.SERIES_EXPIRED)
def _series_expired(world: World) -> bytes:
    expiry = world.state.markets[4].expiry  # type: ignore[union-attr]
    world.advance(expiry - world.time)
    mark = world.state.markets[4].oracle_price  # type: ignore[union-attr]
    return order_pair(world, maker={"market": 4, "price": mark}, taker={"market": 4, "price": mark})


# ---------------------------------------------------------------------- L1 messages


@refusal(Reason.DEPOSIT_OUT_OF_ORDER)
def _deposit_out_of_order(world: World) -> bytes:
    return world.queues.deposits[0].encode()  # consumed at genesis


@refusal(Reason.DEPOSIT_NOT_ON_L1)
def _deposit_not_on_l1(world: World) -> bytes:
    return world.queues.deposit(9, address_of(USER_KEYS[5]), 123, world.time).encode()  # the batch's L1 view lacks it


@refusal(Reason.OWNER_MISMATCH)
def _owner_mismatch(world: World) -> bytes:
    entry = world.queues.deposit(1, address_of(USER_KEYS[1]), 5, world.time)
    sync_queues(world)
    return entry.encode()


@refusal(Reason.FORCED_OUT_OF_ORDER)
def _forced_out_of_order(world: World) -> bytes:
    world.queues.force(FORCED_WITHDRAW, 1, address_of(USER_KEYS[0]), amount=1, l1_time=world.time)
    second = world.queues.force(FORCED_WITHDRAW, 1, address_of(USER_KEYS[0]), amount=2, l1_time=world.time)
    sync_queues(world)
    return second.encode()


@refusal(Reason.FORCED_NOT_ON_L1)
def _forced_not_on_l1(world: World) -> bytes:
    return world.queues.force(FORCED_WITHDRAW, 1, address_of(USER_KEYS[0]), amount=1, l1_time=world.time).encode()


# ---------------------------------------------------------------------- time


@refusal(Reason.TIME_NOT_LATER)
def _time_not_later(world: World) -> bytes:
    return AdvanceTime(world.time).encode()


@refusal(Reason.TIME_AFTER_BATCH)
def _time_after_batch(world: World) -> bytes:
    assert world.context.timestamp == world.time
    return AdvanceTime(world.time + 11).encode()  # past the batch's timestamp


@refusal(Reason.TIME_BEHIND_BATCH)
def _time_behind_batch(world: World) -> bytes:
    world.context = replace(world.context, timestamp=world.time + 10)  # a new batch; the clock not moved
    return SweepFees(1).encode()


# ---------------------------------------------------------------------- liquidation and deleveraging


def bankrupt_long(world: World) -> None:
    """Account 2 buys 600 lots of ETH at 300,000 (180 USD on its 20) from account 1; the
    price falls to 255,000 in two clamped steps: account 2 owes 7 USD more than it has."""
    trade(world, 1, 2, 0, 600, 300_000)
    for price in (270_000, 255_000):
        ok(world, prices(world, 0, [(0, price, K0), (1, price, K1)]))


@refusal(Reason.NOT_LIQUIDATABLE)
def _not_liquidatable(world: World) -> bytes:
    trade(world, 1, 2, 0, 600, 300_000)
    return Liquidate(2, 0, 10).encode()


@refusal(Reason.NOT_REDUCE_ONLY)
def _not_reduce_only(world: World) -> bytes:
    trade(world, 1, 2, 0, 600, 300_000)
    return Liquidate(2, 0, 601).encode()


@refusal(Reason.INSURANCE_INSUFFICIENT)
def _insurance_insufficient(world: World) -> bytes:
    bankrupt_long(world)  # the fund holds 1 USD
    return Liquidate(2, 0, 600).encode()


@refusal(Reason.NOT_DELEVERAGEABLE)
def _not_deleverageable(world: World) -> bytes:
    trade(world, 1, 2, 0, 600, 300_000)
    return Deleverage(2, 1, 0, 10).encode()  # not bankrupt


@refusal(Reason.NO_POSITION)
def _no_position(world: World) -> bytes:
    return Liquidate(3, 0, 1).encode()


@refusal(Reason.BAD_COUNTERPARTY)
def _bad_counterparty(world: World) -> bytes:
    trade(world, 1, 2, 0, 600, 300_000)
    return Deleverage(2, 3, 0, 10).encode()  # account 3 holds no short to take the long


# ---------------------------------------------------------------------- options


@refusal(Reason.WRONG_PRODUCT)
def _wrong_product(world: World) -> bytes:
    return FundingTick(2, 1).encode()  # a series pays no funding


def settle_call(world: World, expiry: int | None = None) -> bytes:
    """SettleSeries of the BTC call (market 4) at 1,050,000, signed by signers 0 and 1."""
    call = world.state.markets[4]
    assert call is not None
    reports = [(0, 1_050_000, K0), (1, 1_050_000, K1)]
    return builders.settle_series(4, call.expiry if expiry is None else expiry, reports, world.context).encode()


@refusal(Reason.NOT_EXPIRED)
def _not_expired(world: World) -> bytes:
    return settle_call(world)


@refusal(Reason.ALREADY_SETTLED)
def _already_settled(world: World) -> bytes:
    world.advance(world.state.markets[4].expiry - world.time)  # type: ignore[union-attr]
    ok(world, settle_call(world))
    return settle_call(world)


@refusal(Reason.NOT_SETTLED)
def _not_settled(world: World) -> bytes:
    return SettlePosition(1, 4).encode()


# ---------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def stf_world() -> Callable[[], World]:
    return world_factory()


def test_every_reason_has_a_case() -> None:
    """The table names every Reason but those NO_CASE explains."""
    assert set(REFUSALS) | set(NO_CASE) == set(Reason)
    assert not set(REFUSALS) & set(NO_CASE)


@pytest.mark.parametrize("reason", list(REFUSALS), ids=lambda r: r.name)
def test_the_stf_refuses(reason: Reason, stf_world: Callable[[], World]) -> None:
    world = stf_world()
    tx = REFUSALS[reason](world)
    before = world.state.root()
    receipt = apply(world.state, tx, world.context)  # in the context the case left (a batch's)
    assert receipt.reason == reason
    assert not receipt.applied and world.state.root() == before  # a refusal changes nothing


@pytest.mark.parametrize("reason", list(REFUSALS), ids=lambda r: r.name)
def test_the_verifier_refuses_alike(reason: Reason, verifier: EvmVerifier, fresh_world: Callable[[], World]) -> None:
    world = fresh_world()
    tx = REFUSALS[reason](world)
    _, given = verifier.compare(world.state, tx, world.context)  # reason, applied and root agree
    assert Reason(given) == reason
