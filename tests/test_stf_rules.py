"""The rules one by one: each transaction type's success path and its named refusals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from rollup.stf import Reason, apply, builders, margin, products
from rollup.stf.constants import CANCELLED_HASH, INSURANCE_ACCOUNT, MAX_MARKETS
from rollup.stf.fork import Context, Receipt
from rollup.stf.genesis import genesis_state
from rollup.stf.signing import address_of, sign
from rollup.stf.state import Market
from rollup.stf.transactions import (
    FORCED_CLOSE,
    FORCED_WITHDRAW,
    SWEEP_FEES,
    AdvanceTime,
    Deleverage,
    FundingTick,
    Liquidate,
    Order,
    SettlePosition,
    SweepFees,
    Trade,
    decode,
)
from tests.stf_world import CONFIG, ORACLE_KEYS, USER_KEYS, World, make_world


def test_trade_moves_cash_fees_and_positions() -> None:
    world = make_world(deposit=50_000_000)
    maker = world.order(1, 0, False, 100, 300_000)
    taker = world.order(2, 0, True, 60, 300_100)
    assert world.apply(world.trade(maker, taker, 60, 200, 500)).ok
    a, b = world.state.account(1), world.state.account(2)
    notional = 60 * 300_000
    assert a.size(0) == -60 and b.size(0) == 60
    assert a.collateral == 50_000_000 + notional - (notional * 200 + 999_999) // 10**6
    assert b.collateral == 50_000_000 - notional - (notional * 500 + 999_999) // 10**6
    market = world.state.markets[0]
    assert market is not None and market.open_interest == 60
    assert world.state.slot(1, maker.nonce).filled == 60
    # the rest of the maker order can fill, but not more
    taker2 = world.order(3, 0, True, 50, 300_000)
    assert world.apply(world.trade(maker, taker2, 41)).reason == Reason.OVERFILL
    assert world.apply(world.trade(maker, taker2, 40)).ok
    assert world.state.slot(1, maker.nonce).filled == 100
    # replaying a filled trade is refused
    assert world.apply(world.trade(maker, taker2, 1)).reason in (Reason.OVERFILL, Reason.NONCE_USED)
    assert world.conserved()


TRADE_REFUSALS: dict[Reason, Callable[[World, Order], bytes]] = {
    Reason.SAME_SIDE: lambda world, m: world.trade(m, world.order(2, 0, False, 10, 300_000), 5),
    Reason.SELF_TRADE: lambda world, m: world.trade(m, world.order(1, 0, True, 10, 300_000), 5),
    Reason.MARKET_MISMATCH: lambda world, m: world.trade(m, world.order(2, 1, True, 10, 300_000), 5),
    Reason.PRICE_NOT_FAIR: lambda world, m: world.trade(m, world.order(2, 0, True, 10, 299_999), 5),
    Reason.FEE_TOO_HIGH: lambda world, m: world.trade(
        m, world.order(2, 0, True, 10, 300_000, max_fee_ppm=100), 5, 200, 101),
    Reason.EXPIRED: lambda world, m: world.trade(m, world.order(2, 0, True, 10, 300_000, expiry=999), 5),
    Reason.UNDER_MARGIN: lambda world, m: world.trade(
        world.order(1, 0, False, 1_000, 300_000), world.order(2, 0, True, 1_000, 300_000), 1_000),
    Reason.UNKNOWN_MARKET: lambda world, m: world.trade(
        world.order(1, 9, False, 10, 300_000), world.order(2, 9, True, 10, 300_000), 5),
    Reason.BAD_FIELD: lambda world, m: world.trade(m, world.order(2, 0, True, 10, 300_000), 0),
}
"""A trade refused for each reason: `m`, account 1's sell of 10 lots at 300,000, against
an order that breaks one rule (or a pair that does)."""


@pytest.mark.parametrize("reason", list(TRADE_REFUSALS), ids=lambda reason: reason.name)
def test_trade_refusals_are_named(reason: Reason) -> None:
    world = make_world(deposit=5_000_000)
    root = world.state.root()
    tx = TRADE_REFUSALS[reason](world, world.order(1, 0, False, 10, 300_000))
    assert world.apply(tx).reason == reason
    assert world.state.root() == root


def test_trade_signatures_are_checked() -> None:
    """A signature by another key, and a high-s signature, are refused."""
    world = make_world(deposit=5_000_000)
    m = world.order(1, 0, False, 10, 300_000)
    good = world.trade(m, world.order(2, 0, True, 10, 300_000), 5)
    trade = decode(good)
    assert isinstance(trade, Trade)
    forged = builders.trade(trade.maker, USER_KEYS[4], trade.taker, USER_KEYS[1], 5, world.context)
    assert world.apply(forged.encode()).reason == Reason.WRONG_SIGNER
    # (the malleated twin (n - s, v flipped) has no 64-byte form: n - s > 2**255 but for a
    # negligible share of signatures; what a trade can carry with s > n/2 is refused)
    half_n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2
    sig = trade.maker_signature
    high_s = sig[:32] + (((sig[64] - 27) << 255) | (half_n + 1)).to_bytes(32, "big")
    malleated = bytearray(good)
    malleated[27:91] = high_s
    assert world.apply(bytes(malleated)).reason == Reason.BAD_SIGNATURE
    assert world.apply(good).ok


def test_fill_names_a_posted_order() -> None:
    """A Fill names an order a Trade posted (by its account and nonce): it fills it
    without its signature, up to its size; an order never posted, cancelled, or whose slot
    a later nonce took, cannot be named."""
    world = make_world(deposit=5_000_000)
    maker = world.order(1, 0, False, 30, 300_000)
    assert world.apply(world.trade(maker, world.order(2, 0, True, 10, 300_000), 10)).ok
    fill = world.fill(maker, world.order(3, 0, True, 10, 300_000), 10)
    assert len(fill) == 108 and world.apply(fill).ok
    assert world.state.slot(1, maker.nonce).filled == 20
    assert world.apply(world.fill(maker, world.order(4, 0, True, 11, 300_000), 11)).reason == Reason.OVERFILL
    # the taker's signature is still checked; the taker's own rules too
    forged = builders.fill(maker, world.order(2, 0, True, 5, 300_000), USER_KEYS[4], 5, world.context)
    assert world.apply(forged.encode()).reason == Reason.WRONG_SIGNER
    assert world.apply(world.fill(maker, world.order(2, 0, True, 5, 299_000), 5)).reason == Reason.PRICE_NOT_FAIR
    assert world.apply(world.fill(maker, world.order(1, 0, True, 5, 300_000), 5)).reason == Reason.SELF_TRADE
    root = world.state.root()
    never = world.order(1, 0, False, 10, 300_000)  # signed, never posted
    assert world.apply(world.fill(never, world.order(2, 0, True, 5, 300_000), 5)).reason == Reason.NO_ORDER
    outside = maker._replace(account=4**10)  # an account outside the tree
    assert world.apply(world.fill(outside, world.order(2, 0, True, 5, 300_000), 5)).reason == Reason.UNKNOWN_ACCOUNT
    # a cancelled order can no longer be named
    assert world.apply(builders.cancel(1, maker.nonce, USER_KEYS[0], world.context)).ok
    assert world.state.root() != root
    assert world.apply(world.fill(maker, world.order(2, 0, True, 5, 300_000), 5)).reason == Reason.NO_ORDER
    # nor one whose slot a later nonce took
    first = world.order(2, 0, True, 20, 300_000)
    assert world.apply(world.trade(first, world.order(3, 0, False, 5, 300_000), 5)).ok
    later = first._replace(nonce=first.nonce + 256, size=5)
    assert world.apply(world.trade(later, world.order(3, 0, False, 5, 300_000), 5)).ok
    assert world.apply(world.fill(first, world.order(4, 0, False, 5, 300_000), 5)).reason == Reason.NO_ORDER
    assert world.conserved()


def test_signatures_are_bound_to_the_deployment() -> None:
    world = make_world()
    other = Context(CONFIG.__class__(CONFIG.chain_id + 1, CONFIG.verifying_contract,
                                     CONFIG.oracle_signers, CONFIG.oracle_quorum), world.context.timestamp,
                    world.context.deposit_heads, world.context.forced_heads)
    maker = world.order(1, 0, False, 10, 300_000)
    taker = world.order(2, 0, True, 10, 300_000)
    foreign = builders.trade(maker, USER_KEYS[0], taker, USER_KEYS[1], 5, other)
    assert world.apply(foreign.encode()).reason == Reason.WRONG_SIGNER


def test_withdraw_and_cancel() -> None:
    world = make_world(deposit=5_000_000)
    w = builders.withdraw(1, 2_000_000, 7, 10**12, USER_KEYS[0], world.context)
    assert world.apply(w).ok
    assert world.state.account(1).collateral == 3_000_000
    assert world.state.withdrawals[-1].amount == 2_000_000
    assert world.apply(w).reason == Reason.NONCE_USED  # no replay
    too_much = builders.withdraw(1, 3_000_001, 8, 10**12, USER_KEYS[0], world.context)
    assert world.apply(too_much).reason == Reason.INSUFFICIENT_COLLATERAL
    stranger = builders.withdraw(1, 1, 9, 10**12, USER_KEYS[1], world.context)
    assert world.apply(stranger).reason == Reason.WRONG_SIGNER
    # a cancelled order can no longer fill
    maker = world.order(1, 0, False, 10, 300_000)
    assert world.apply(builders.cancel(1, maker.nonce, USER_KEYS[0], world.context)).ok
    assert world.state.slot(1, maker.nonce).order_hash == CANCELLED_HASH
    taker = world.order(2, 0, True, 10, 300_000)
    assert world.apply(world.trade(maker, taker, 5)).reason == Reason.NONCE_USED
    assert world.apply(builders.cancel(1, maker.nonce, USER_KEYS[0], world.context)).reason == Reason.ALREADY_CANCELLED
    assert world.conserved()


def test_oracle_update_rules() -> None:
    world = make_world()
    world.advance(1)
    t = world.time

    def update(prices: list[tuple[int, int, bytes]], timestamp: int = t, market: int = 0) -> Reason:
        return world.apply(builders.oracle_update(market, timestamp, prices, world.context)).reason

    k0, k1, k2 = ORACLE_KEYS
    assert update([(0, 310_000, k0)]) == Reason.ORACLE_QUORUM
    assert update([(0, 310_000, k0), (0, 310_000, k0)]) == Reason.ORACLE_QUORUM
    assert update([(0, 310_000, k0), (1, 310_000, k1)], timestamp=t + 1) == Reason.ORACLE_STALE
    assert update([(0, 310_000, k0), (1, 310_000, USER_KEYS[0])]) == Reason.WRONG_SIGNER
    assert update([(0, 305_000, k0), (1, 320_000, k1), (2, 310_000, k2)]) == Reason.OK
    market = world.state.markets[0]
    assert market is not None and market.oracle_price == 310_000  # the median
    assert update([(0, 311_000, k0), (1, 311_000, k1)]) == Reason.ORACLE_NOT_NEWER


def test_risk_update_rules() -> None:
    """The risk feed of a series (RiskUpdate): the price checks of an OracleUpdate, the
    Greeks' signs, the series' expiry, the product; the mark is the median report's
    (clamped as a price), each Greek the median of its own column."""
    world = make_world(options=True)
    world.advance(1)
    t = world.time
    k0, k1, k2 = ORACLE_KEYS
    put = world.state.markets[3]
    assert put is not None and put.product == products.PUT

    def update(reports: list[tuple[int, int, int, int, int, bytes]], market: int = 3, timestamp: int = t) -> Reason:
        return world.apply(builders.risk_update(market, timestamp, reports, world.context)).reason

    good = [(0, 6_100, -260_000, 430_000, 29_000, k0), (1, 6_200, -255_000, 440_000, 28_500, k1)]
    assert update(good, market=0) == Reason.WRONG_PRODUCT  # a perpetual has no Greeks
    assert update(good, market=9) == Reason.UNKNOWN_MARKET
    assert update(good[:1]) == Reason.ORACLE_QUORUM
    assert update(good, timestamp=t + 1) == Reason.ORACLE_STALE
    assert update([(0, 6_100, 1, 430_000, 29_000, k0), good[1]]) == Reason.BAD_FIELD  # a put's delta > 0
    assert update([(0, 6_100, -1_000_001, 430_000, 29_000, k0), good[1]]) == Reason.BAD_FIELD
    assert update([(0, 6_100, -260_000, -1, 29_000, k0), good[1]]) == Reason.BAD_FIELD
    assert update([(0, 6_100, -260_000, 430_000, -1, k0), good[1]]) == Reason.BAD_FIELD
    assert update([(0, 0, -260_000, 430_000, 29_000, k0), good[1]]) == Reason.BAD_FIELD
    assert update([good[0], (1, 6_200, -255_000, 440_000, 28_500, USER_KEYS[0])]) == Reason.WRONG_SIGNER
    assert world.state.markets[3] == put  # nothing refused changed the series
    # three reports: the mark is the middle one's, each Greek the middle of its own column
    assert update([*good, (2, 6_150, -300_000, 420_000, 30_000, k2)]) == Reason.OK
    marked = world.state.markets[3]
    assert marked is not None
    assert (marked.oracle_price, marked.oracle_time) == (6_150, t)
    assert (marked.delta, marked.gamma, marked.vega) == (-260_000, 430_000, 29_000)
    assert update(good) == Reason.ORACLE_NOT_NEWER
    # a call's delta is in [0, PPM]; its mark more than doubled moves by the bound (50%)
    world.advance(1)
    call = world.state.markets[2]
    assert call is not None
    reports = [(0, call.oracle_price * 3, 1_000_000, 0, 0, k0), (1, call.oracle_price * 3, 1_000_000, 0, 0, k1)]
    assert update([(0, 1, -1, 0, 0, k0), reports[1]], market=2, timestamp=world.time) == Reason.BAD_FIELD
    assert update(reports, market=2, timestamp=world.time) == Reason.OK
    assert world.state.markets[2].oracle_price == call.oracle_price * 3 // 2  # type: ignore[union-attr]
    # the BTC call expires an hour after START_TIME: marked before, not at or after
    expiry = world.state.markets[4].expiry  # type: ignore[union-attr]
    world.advance(expiry - 1 - world.time)
    late = [(0, 9_000, 500_000, 9_000_000, 4_000, k0), (1, 9_000, 500_000, 9_000_000, 4_000, k1)]
    assert update(late, market=4, timestamp=expiry - 1) == Reason.OK
    world.advance(1)
    assert update(late, market=4, timestamp=expiry) == Reason.SERIES_EXPIRED


def test_settlement_pays_each_position_its_payoff() -> None:
    """SettleSeries fixes an expired series' price once (its refusals in order); each
    SettlePosition then pays a long size * payoff and takes it from a short, through the
    funding pool, conserving collateral at every step; the pool nets to zero once both
    sides are settled, and the series' open interest to zero."""
    world = make_world(options=True)
    k0, k1, k2 = ORACLE_KEYS
    call = world.state.markets[4]
    assert call is not None and call.product == products.CALL
    sold = world.trade(world.order(1, 4, False, 30, call.oracle_price), world.order(2, 4, True, 30, call.oracle_price), 30)
    assert world.apply(sold).ok
    pool = world.state.globals.funding_pool

    def settle(prices: list[tuple[int, int, bytes]], market: int = 4, expiry: int = call.expiry) -> Reason:
        return world.apply(builders.settle_series(market, expiry, prices, world.context)).reason

    reports = [(0, 1_060_000, k0), (1, 1_050_000, k1), (2, 1_040_000, k2)]
    assert settle(reports, market=0) == Reason.WRONG_PRODUCT
    assert settle(reports[:1]) == Reason.ORACLE_QUORUM
    assert settle(reports) == Reason.NOT_EXPIRED
    assert world.apply(SettlePosition(1, 4)).reason == Reason.NOT_SETTLED
    world.advance(call.expiry - world.time)
    assert settle(reports, expiry=call.expiry + 1) == Reason.BAD_FIELD
    assert settle([(0, 1_060_000, k0), (1, 1_050_000, USER_KEYS[0])]) == Reason.WRONG_SIGNER
    assert world.apply(world.trade(world.order(1, 4, False, 1, 100), world.order(2, 4, True, 1, 100), 1)).reason \
        == Reason.SERIES_EXPIRED
    assert settle(reports) == Reason.OK
    settled = world.state.markets[4]
    assert settled is not None
    assert (settled.settlement_price, settled.oracle_price) == (1_050_000, 50_000)  # the median; S - K
    assert (settled.delta, settled.gamma, settled.vega, settled.open_interest) == (0, 0, 0, 30)
    assert settle(reports) == Reason.ALREADY_SETTLED
    short, long_ = world.state.account(1).collateral, world.state.account(2).collateral
    assert world.apply(SettlePosition(2, 4)).ok  # the long first: the pool pays before the short pays in
    assert world.state.account(2).collateral == long_ + 30 * 50_000
    assert world.state.globals.funding_pool == pool - 30 * 50_000 and world.conserved()
    assert world.apply(SettlePosition(2, 4)).reason == Reason.NO_POSITION
    assert world.apply(SettlePosition(1, 0)).reason == Reason.WRONG_PRODUCT
    assert world.apply(SettlePosition(9, 4)).reason == Reason.UNKNOWN_ACCOUNT
    assert world.apply(SettlePosition(1, 4)).ok
    assert world.state.account(1).collateral == short - 30 * 50_000
    assert world.state.globals.funding_pool == pool and world.conserved()
    assert world.state.account(1).position(4) is None and world.state.markets[4].open_interest == 0  # type: ignore[union-attr]


def written_and_settled(world: World, market: int, size: int, price: int) -> Market:
    """Account 1 writes `size` of series `market` to account 2 at its mark; the clock then
    reaches its expiry and signers 0 and 1 settle it at `price`. The series before settling."""
    series = world.state.markets[market]
    assert series is not None
    assert world.apply(world.trade(world.order(1, market, False, size, series.oracle_price),
                                   world.order(2, market, True, size, series.oracle_price), size)).ok
    world.advance(series.expiry - world.time)
    k0, k1, _ = ORACLE_KEYS
    assert world.apply(builders.settle_series(market, series.expiry, [(0, price, k0), (1, price, k1)],
                                              world.context)).ok
    return series


def test_a_forced_close_of_a_settled_series_settles_it() -> None:
    """The holder of a settled series need not wait for anyone's SettlePosition: its forced
    close through L1 closes the position at the payoff (not into the fund at a mark)."""
    world = make_world(options=True)
    written_and_settled(world, 4, 30, world.state.markets[4].strike + 7_000)  # type: ignore[union-attr]
    request = world.queues.force(FORCED_CLOSE, 2, address_of(USER_KEYS[1]), 4)
    world.context = replace(world.context, forced_heads=tuple(world.queues.forced_heads))
    long_before, fund_before = world.state.account(2).collateral, world.state.account(INSURANCE_ACCOUNT)
    receipt = world.apply(request)
    assert receipt.ok and receipt.applied
    assert world.state.account(2).position(4) is None
    assert world.state.account(2).collateral == long_before + 30 * 7_000
    assert world.state.account(INSURANCE_ACCOUNT) == fund_before  # not moved into the fund
    assert world.state.globals.forced_count == 1 and world.conserved()


def test_an_out_of_the_money_series_settles_at_zero() -> None:
    """A put settled above its strike pays nothing: its mark becomes 0 and each position is
    closed with no payment."""
    world = make_world(options=True)
    written_and_settled(world, 3, 5, 290_000)  # (strike 280,000)
    assert world.state.markets[3].oracle_price == 0  # type: ignore[union-attr]
    before = (world.state.account(1).collateral, world.state.account(2).collateral)
    assert world.apply(SettlePosition(1, 3)).ok and world.apply(SettlePosition(2, 3)).ok
    assert (world.state.account(1).collateral, world.state.account(2).collateral) == before


def test_a_series_takes_no_index_price_and_no_funding() -> None:
    """An OracleUpdate or a FundingTick on a series is WRONG_PRODUCT: its mark comes with
    its Greeks, and an option pays no funding (a tick would charge its holders)."""
    world = make_world(options=True)
    k0, k1, _ = ORACLE_KEYS
    world.advance(60)
    update = builders.oracle_update(2, world.time, [(0, 15_000, k0), (1, 15_000, k1)], world.context)
    assert world.apply(update).reason == Reason.WRONG_PRODUCT
    assert world.apply(FundingTick(2, 1)).reason == Reason.WRONG_PRODUCT
    assert world.apply(FundingTick(0, 1)).ok  # its underlying's funding is its own


def test_a_move_beyond_the_bound_is_clamped_not_refused() -> None:
    """The flash-crash clamp: a median beyond max_price_move_ppm (10%) of the price moves
    it by the bound exactly, up or down, so that a real crash is followed update by update
    (version 1 refused it, freezing the price while the crash lasted); within the bound
    the median is taken as it is."""
    world = make_world()
    k0, k1, _ = ORACLE_KEYS
    market = world.state.markets[0]
    assert market is not None and market.max_price_move_ppm == 100_000
    prices = [market.oracle_price]

    def update(price: int) -> int:
        world.advance(1)
        assert world.apply(builders.oracle_update(0, world.time, [(0, price, k0), (1, price, k1)], world.context)).ok
        market = world.state.markets[0]
        assert market is not None and market.oracle_time == world.time
        prices.append(market.oracle_price)
        return market.oracle_price

    old = prices[0]
    assert update(old * 2) == old + old // 10  # up by the bound (floor(old * 10%))
    for _ in range(30):  # a crash to a tenth of the price, followed in bounded steps
        previous = prices[-1]
        assert update(old // 10) == max(old // 10, previous - previous // 10)
    assert prices[-1] == old // 10  # reached: the crash is priced, not frozen
    assert update(prices[-1] + prices[-1] // 20) == prices[-2] + prices[-2] // 20  # within: as signed


def test_funding_is_bounded_and_settles_against_accounts() -> None:
    world = make_world(deposit=50_000_000)
    maker = world.order(1, 0, False, 100, 300_000)
    taker = world.order(2, 0, True, 100, 300_000)
    assert world.apply(world.trade(maker, taker, 100, 0, 0)).ok
    world.advance(3_600)
    market = world.state.markets[0]
    assert market is not None
    elapsed = world.time - market.funding_time
    # cap: 1% per hour of the price, in index units (collateral per lot * 1e9)
    cap = 10_000 * 300_000 * elapsed * 10**9 // (10**6 * 3_600)
    assert world.apply(FundingTick(0, cap + 1)).reason == Reason.FUNDING_TOO_LARGE
    assert world.apply(FundingTick(0, 1_234_567_891)).ok
    assert world.apply(FundingTick(0, 1)).reason == Reason.FUNDING_NO_TIME
    long, short = world.state.account(2), world.state.account(1)
    _, paid = margin.settle_funding(long, world.state.markets)
    _, received = margin.settle_funding(short, world.state.markets)
    assert paid == -(-1_234_567_891 * 100 // 10**9) and received == -(1_234_567_891 * 100 // 10**9)
    assert paid + received >= 0  # funding never creates money
    # settlement happens on the next touch: a withdrawal settles the long's funding
    assert world.apply(builders.withdraw(2, 1, 50, 10**12, USER_KEYS[1], world.context)).ok
    assert world.state.globals.funding_pool == paid
    assert world.conserved()


def leveraged_pair(world: World, size: int = 150) -> None:
    maker = world.order(1, 0, False, size, 300_000)
    taker = world.order(2, 0, True, size, 300_000)
    assert world.apply(world.trade(maker, taker, size, 0, 0)).ok


def test_liquidation_with_penalty_then_with_deficit() -> None:
    world = make_world(deposit=5_000_000, insurance=20_000_000)
    leveraged_pair(world)  # 45 USD notional on 5 USD: ~9x
    assert world.apply(Liquidate(2, 0, 10)).reason == Reason.NOT_LIQUIDATABLE
    for price in (280_000, 270_000):
        assert world.set_price(0, price).ok
    long = world.state.account(2)
    value = margin.value(long, world.state.markets)
    assert 0 <= value < margin.requirement(long, world.state.markets, False)
    fund_before = world.state.account(INSURANCE_ACCOUNT).collateral
    assert world.apply(Liquidate(2, 0, 200)).reason == Reason.NOT_REDUCE_ONLY
    assert world.apply(Liquidate(2, 0, 50)).ok
    assert world.state.account(2).size(0) == 100
    assert world.state.account(INSURANCE_ACCOUNT).size(0) == 50
    penalty = min((50 * 270_000 * 10_000 + 999_999) // 10**6, value)
    assert world.state.account(INSURANCE_ACCOUNT).collateral == fund_before - 50 * 270_000 + penalty
    # a crash makes the long bankrupt: the fund pays the slice's share of the deficit
    for price in (245_000, 225_000):
        assert world.set_price(0, price).ok
    long = world.state.account(2)
    assert margin.value(long, world.state.markets) < 0
    assert world.apply(Liquidate(2, 0, 100)).ok
    assert world.state.account(2).positions == ()
    assert world.state.account(2).collateral <= 0  # rounded against the bankrupt account
    assert world.conserved()


def test_deleverage_only_when_the_fund_cannot_cover() -> None:
    world = make_world(deposit=5_000_000, insurance=1)
    leveraged_pair(world)
    assert world.apply(Deleverage(2, 1, 0, 10)).reason == Reason.NOT_DELEVERAGEABLE  # not bankrupt
    for price in (270_000, 245_000, 225_000):
        assert world.set_price(0, price).ok
    bankrupt = world.state.account(2)
    assert margin.value(bankrupt, world.state.markets) < 0
    assert world.apply(Liquidate(2, 0, 150)).reason == Reason.INSURANCE_INSUFFICIENT
    assert world.apply(Deleverage(2, 3, 0, 10)).reason == Reason.BAD_COUNTERPARTY
    assert world.apply(Deleverage(2, 1, 0, 150)).ok
    assert world.state.account(2).positions == () and world.state.account(1).positions == ()
    assert -1 <= world.state.account(2).collateral <= 0
    assert world.conserved()


def test_forced_requests_are_consumed_in_order_even_when_they_fail() -> None:
    world = make_world(deposit=5_000_000)
    owner = address_of(USER_KEYS[0])
    first = world.queues.force(FORCED_WITHDRAW, 1, owner, amount=1_000_000)
    second = world.queues.force(FORCED_WITHDRAW, 1, owner, amount=10**12)  # more than it has
    third = world.queues.force(FORCED_CLOSE, 1, owner, market=0)  # no position
    world.context = Context(world.context.config, world.context.timestamp,
                            tuple(world.queues.deposit_heads), tuple(world.queues.forced_heads))
    assert world.apply(second).reason == Reason.FORCED_OUT_OF_ORDER
    assert world.apply(first).ok
    assert world.state.account(1).collateral == 4_000_000
    receipt = world.apply(second)
    assert receipt.applied and receipt.reason == Reason.INSUFFICIENT_COLLATERAL
    receipt = world.apply(third)
    assert receipt.applied and receipt.reason == Reason.NO_POSITION
    assert world.state.globals.forced_count == 3
    # a request that is not on L1 is refused outright
    fake = world.queues.force(FORCED_WITHDRAW, 1, owner, amount=1)
    assert world.apply(fake).reason == Reason.FORCED_NOT_ON_L1
    assert world.conserved()


def test_forced_close_moves_the_position_to_the_fund() -> None:
    world = make_world(deposit=50_000_000)
    leveraged_pair(world, 100)
    request = world.queues.force(FORCED_CLOSE, 2, address_of(USER_KEYS[1]), market=0)
    world.context = Context(world.context.config, world.context.timestamp,
                            tuple(world.queues.deposit_heads), tuple(world.queues.forced_heads))
    assert world.apply(request).ok
    assert world.state.account(2).positions == ()
    assert world.state.account(INSURANCE_ACCOUNT).size(0) == 100
    assert world.conserved()


def test_deposits_in_order_and_only_from_l1() -> None:
    world = make_world()
    extra = world.queues.deposit(9, address_of(USER_KEYS[5]), 123)
    assert world.apply(extra).reason == Reason.DEPOSIT_NOT_ON_L1  # not in the batch's view
    world.context = Context(world.context.config, world.context.timestamp,
                            tuple(world.queues.deposit_heads), tuple(world.queues.forced_heads))
    forged = extra.__class__(extra.index, extra.account, extra.owner, extra.amount + 1, extra.l1_time)
    assert world.apply(forged).reason == Reason.DEPOSIT_NOT_ON_L1
    replay = world.queues.deposits[0]
    assert world.apply(replay).reason == Reason.DEPOSIT_OUT_OF_ORDER
    assert world.apply(extra).ok
    assert world.state.account(9).collateral == 123
    wrong_owner = world.queues.deposit(9, address_of(USER_KEYS[0]), 5)
    world.context = Context(world.context.config, world.context.timestamp,
                            tuple(world.queues.deposit_heads), tuple(world.queues.forced_heads))
    assert world.apply(wrong_owner).reason == Reason.OWNER_MISMATCH


def test_the_clock_runs_at_the_batch_time() -> None:
    """AdvanceTime moves the clock forward, to at most the batch's timestamp; every other
    transaction is refused while the clock is behind it (TIME_BEHIND_BATCH) and changes
    nothing; decoding refusals are named first."""
    world = make_world()
    state, now = world.state, world.time
    batch = replace(world.context, timestamp=now + 10)
    root = state.root()
    assert apply(state, AdvanceTime(now).encode(), batch).reason == Reason.TIME_NOT_LATER
    assert apply(state, AdvanceTime(now + 11).encode(), batch).reason == Reason.TIME_AFTER_BATCH
    assert apply(state, SweepFees(1).encode(), batch) == Receipt(SWEEP_FEES, Reason.TIME_BEHIND_BATCH, False)
    assert apply(state, b"\x0b", batch).reason == Reason.BAD_LENGTH
    assert state.root() == root
    assert apply(state, AdvanceTime(now + 4).encode(), batch).ok
    assert apply(state, world.trade(world.order(1, 0, False, 10, 300_000), world.order(2, 0, True, 10, 300_000), 10),
                 batch).reason == Reason.TIME_BEHIND_BATCH
    assert apply(state, AdvanceTime(now + 10).encode(), batch).ok and state.globals.time == now + 10
    assert apply(state, SweepFees(1).encode(), batch).reason == Reason.INSUFFICIENT_COLLATERAL


def test_fees_leave_through_the_insurance_fund() -> None:
    """SweepFees moves trading fees from the fee pool to the fund's collateral, whose owner
    withdraws them like any account; refusals are named and change nothing."""
    world = make_world(deposit=50_000_000)
    assert world.apply(world.trade(world.order(1, 0, False, 100, 300_000), world.order(2, 0, True, 100, 300_000),
                                   100)).ok
    pool = world.state.globals.fee_pool
    fund = world.state.account(INSURANCE_ACCOUNT).collateral
    assert pool == (30_000_000 * 200 + 999_999) // 10**6 + (30_000_000 * 500 + 999_999) // 10**6
    root = world.state.root()
    assert world.apply(SweepFees(0)).reason == Reason.BAD_FIELD
    assert world.apply(SweepFees(pool + 1)).reason == Reason.INSUFFICIENT_COLLATERAL
    assert world.state.root() == root
    assert world.apply(SweepFees(pool - 1)).ok
    assert world.state.globals.fee_pool == 1
    assert world.state.account(INSURANCE_ACCOUNT).collateral == fund + pool - 1
    assert world.conserved()
    # the fund's owner withdraws the fees
    from tests.stf_world import INSURANCE_KEY

    before = world.state.globals.total_withdrawn
    withdraw = builders.withdraw(INSURANCE_ACCOUNT, pool - 1, 1, 10**12, INSURANCE_KEY, world.context).encode()
    assert world.apply(withdraw).ok
    assert world.state.globals.total_withdrawn == before + pool - 1 and world.conserved()


def test_eip712_digest_matches_eth_account() -> None:
    """A wallet's sign_typed_data produces signatures the STF accepts."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    from rollup.stf.signing import DOMAIN_NAME, DOMAIN_VERSION, EIP712_TYPES

    world = make_world()
    order = world.order(1, 0, False, 10, 300_000)
    message = {"account": order.account, "market": order.market, "isBuy": order.is_buy,
               "size": order.size, "limitPrice": order.limit_price, "maxFeePpm": order.max_fee_ppm,
               "nonce": order.nonce, "expiry": order.expiry}
    domain = {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": CONFIG.chain_id,
              "verifyingContract": "0x" + CONFIG.verifying_contract.hex()}
    signable = encode_typed_data(domain, {"Order": EIP712_TYPES["Order"]}, message)
    signed = Account.sign_message(signable, USER_KEYS[0])
    ours = builders.sign_order(order, USER_KEYS[0], world.context)
    assert bytes(signed.signature) == ours
    digest = bytes(signed.message_hash)
    assert sign(digest, USER_KEYS[0]) == ours
    # a risk report: its Greeks signed integers (a put's delta is negative)
    report = {"market": 3, "mark": 6_100, "delta": -260_000, "gamma": 430_000, "vega": 29_000, "timestamp": 77}
    signable = encode_typed_data(domain, {"RiskReport": EIP712_TYPES["RiskReport"]}, report)
    signed = Account.sign_message(signable, ORACLE_KEYS[0])
    ours = builders.risk_update(3, 77, [(0, 6_100, -260_000, 430_000, 29_000, ORACLE_KEYS[0])],
                                world.context).reports[0].signature
    assert bytes(signed.signature) == ours


def test_spec_lists_every_reason_code() -> None:
    """docs/spec.md's table of reasons is the Reason enum, code for code."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "spec.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| ([A-Z0-9_]+) \|", text, flags=re.M))
    assert {int(code): name for code, name in table.items()} == {r.value: r.name for r in Reason}
    for reason in Reason:
        if reason is not Reason.OK:
            assert text.count(f"`{reason.name}`") + text.count(f"| {reason.name} |") >= 1, reason


def test_genesis_refuses_markets_the_rules_cannot_run() -> None:
    """A zero tick or step, inverted margins, an unknown product: refused at genesis."""
    good = Market(id=3)
    genesis_state(b"\x01" * 20, (good,))
    for bad in (good._replace(step_size=0), good._replace(tick_size=0), good._replace(product=7),
                good._replace(maintenance_margin_ppm=0), good._replace(maintenance_margin_ppm=200_000),
                good._replace(id=MAX_MARKETS), good._replace(liquidation_penalty_ppm=2_000_000),
                good._replace(vol_shock_ppm=1_000_001), good._replace(oracle_price=1),
                good._replace(strike=1), good._replace(expiry=1), good._replace(delta=1),
                good._replace(tick_size=2**64), good._replace(oracle_staleness=-1)):
        with pytest.raises(ValueError):
            genesis_state(b"\x01" * 20, (bad,))


def test_genesis_lists_series_on_its_perpetuals() -> None:
    """A series is listed at genesis written on a perpetual of the same listing, with a
    strike and an expiry, no funding and no volatility shock of its own."""
    perp = Market(id=0)
    call = Market(id=1, product=products.CALL, underlying=0, strike=300_000, expiry=10**9, max_funding_rate_ppm=0)
    state = genesis_state(b"\x01" * 20, (perp, call))
    assert state.markets[1] == call
    for bad in ((call,), (perp, call._replace(underlying=2)), (perp, call, call._replace(id=2, underlying=1)),
                (perp, call._replace(strike=0)), (perp, call._replace(expiry=0)),
                (perp, call._replace(max_funding_rate_ppm=1)), (perp, call._replace(vol_shock_ppm=1)),
                (perp, call._replace(settlement_price=1)), (perp, call._replace(id=0))):
        with pytest.raises(ValueError):
            genesis_state(b"\x01" * 20, bad)


def test_a_context_made_from_another_does_not_reuse_its_digests() -> None:
    """The order-digest memo belongs to one context: another domain signs other digests."""
    import dataclasses

    world = make_world(users=2)
    order = world.order(1, 0, True, 5, 300_000)
    first = world.context.order_digests_of(order)
    other = dataclasses.replace(world.context, config=CONFIG._replace(chain_id=1))
    assert other.order_digests_of(order)[0] == first[0]  # the struct hash is the same
    assert other.order_digests_of(order)[1] != first[1]  # the digest to sign is not
