"""The operator's keeper: funding ticks follow the book's premium within the rate cap,
accounts below maintenance are liquidated (or deleveraged when the fund cannot carry them),
and the fee pool is swept into the insurance fund once it holds enough."""

from __future__ import annotations

from rollup.operator import keeper
from rollup.stf import margin
from tests.stf_world import make_world
from tests.test_stf_rules import written_and_settled


def test_funding_follows_the_premium_within_the_cap() -> None:
    world = make_world(users=2)
    world.advance(600)
    market = world.state.markets[0]
    assert market is not None
    price = market.oracle_price
    up = keeper.funding_delta(world.state, 0, price * 1005 // 1000)  # book 0.5% over the oracle
    assert up is not None and up > 0
    capped = keeper.funding_delta(world.state, 0, price * 2)  # far over: the cap
    down = keeper.funding_delta(world.state, 0, price // 2)
    assert capped is not None and down == -capped and abs(up) < capped
    assert keeper.funding_delta(world.state, 0, None) == 0
    applied = keeper.fund_ticks(world.state, {0: price * 2, 1: None}, 60, lambda tx: world.apply(tx))
    assert applied == 2
    assert world.state.markets[0].funding_index == capped  # type: ignore[union-attr]
    assert keeper.funding_delta(world.state, 0, price * 2) is None  # no time since the tick


def test_liquidates_accounts_below_maintenance() -> None:
    world = make_world(users=2, deposit=10_000_000, insurance=50_000_000)
    maker = world.order(1, 0, True, 300, 300_000)
    taker = world.order(2, 0, False, 300, 300_000)
    assert world.apply(world.trade(maker, taker, 300)).ok  # account 1: 90 USD long on 10 USD
    assert keeper.liquidate(world.state, world.apply) == 0  # healthy: nothing to do
    assert world.set_price(0, 276_000).ok  # -8%: account 1 under maintenance, still solvent
    account = world.state.account(1)
    settled, _ = margin.settle_funding(account, world.state.markets)
    assert margin.value(settled, world.state.markets) < margin.requirement(settled, world.state.markets, False)
    assert keeper.liquidate(world.state, world.apply) == 1
    assert world.state.account(1).positions == () and world.state.account(0).size(0) == 300
    assert world.conserved()


def test_deleverages_when_the_fund_cannot_cover() -> None:
    world = make_world(users=2, deposit=10_000_000, insurance=0)
    maker = world.order(1, 0, True, 300, 300_000)
    taker = world.order(2, 0, False, 300, 300_000)
    assert world.apply(world.trade(maker, taker, 300)).ok
    assert world.set_price(0, 270_000).ok
    assert world.set_price(0, 260_000).ok  # account 1 bankrupt, the fund empty
    assert keeper.liquidate(world.state, world.apply) == 1
    assert world.state.account(1).size(0) == 0 and world.state.account(2).size(0) == 0
    assert world.conserved()


def test_fees_are_swept_into_the_insurance_fund() -> None:
    world = make_world(users=2, deposit=50_000_000)
    sequence = lambda tx: world.apply(tx)  # noqa: E731
    fund = world.state.account(0).collateral
    assert not keeper.sweep_fees(world.state, sequence)  # nothing to sweep
    maker = world.order(1, 0, False, 100, 300_000)
    taker = world.order(2, 0, True, 100, 300_000)
    assert world.apply(world.trade(maker, taker, 100)).ok  # fees of 21,000 units
    pool = world.state.globals.fee_pool
    assert 0 < pool < keeper.FEE_SWEEP_MINIMUM and not keeper.sweep_fees(world.state, sequence)
    assert keeper.sweep_fees(world.state, sequence, minimum=pool)
    assert world.state.globals.fee_pool == 0 and world.state.account(0).collateral == fund + pool
    assert world.conserved()


def test_settles_every_position_in_a_settled_series_within_the_limit() -> None:
    """The keeper closes the positions in settled series only (one pass over the accounts'
    positions), at most `limit` a round, until none is left; an open series is left alone."""
    world = make_world(users=3, options=True)
    series = written_and_settled(world, 4, 30, world.state.markets[4].strike + 7_000)  # type: ignore[union-attr]
    open_series = world.state.markets[2]
    assert open_series is not None and open_series.settlement_price == 0
    assert world.apply(world.trade(world.order(3, 2, False, 10, open_series.oracle_price),
                                   world.order(1, 2, True, 10, open_series.oracle_price), 10)).ok
    holders = {a for a, account in world.state.accounts.items() if account.size(4)}
    assert holders == {1, 2}
    assert keeper.settle_positions(world.state, world.apply, limit=1) == 1
    assert keeper.settle_positions(world.state, world.apply) == 1
    assert keeper.settle_positions(world.state, world.apply) == 0
    assert not any(account.size(4) for account in world.state.accounts.values())
    assert world.state.account(1).size(2) == 10 and world.state.account(3).size(2) == -10  # untouched
    assert series.expiry <= world.state.globals.time and world.conserved()
