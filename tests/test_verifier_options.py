"""The L1 verifier against the STF, step by step, on accounts holding option series: every
rule that takes an account's margin (the portfolio rule: in the STF margin.py, on L1 the
Portfolio contract) or moves positions at the mark, a series' expiry, and a series'
settlement with each holder's position closed, on heavy_world with markets 8-15 made
calls and puts on the perpetuals 0-7 (`with_options`: 16 positions per account, 8 of them
series). Each step is compared with `EvmVerifier.compare` (reason, applied, post-state
root) and the world moves on with the STF's result."""

from __future__ import annotations

from collections import Counter

from rollup.l1 import records
from rollup.stf import Reason, apply, builders, margin, products
from rollup.stf.constants import INSURANCE_ACCOUNT, MAX_MARKETS, MAX_POSITIONS
from rollup.stf.signing import address_of
from rollup.stf.state import Account, Market, Position
from rollup.stf.transactions import Deleverage, Liquidate, SettlePosition
from rollup.stf.witness import step_witness
from tests.stf_world import ORACLE_KEYS, USER_KEYS, World
from tests.test_verifier_accounts import (
    FORCED_CLOSE,
    MARKETS,
    PRICE,
    force,
    heavy_world,
    value,
    with_options,
)
from tests.test_verifier_trade import key_of, order
from tests.verifier_harness import EvmVerifier, Reverted


def agree(verifier: EvmVerifier, world: World, tx: bytes, seen: Counter[Reason]) -> Reason:
    """The EVM and the STF agree on `tx`; the world applies it; its reason."""
    world.prepare(tx)
    reason = Reason(verifier.compare(world.state, tx, world.context)[1])
    world.apply(tx)
    seen[reason] += 1
    return reason


def trade(world: World, seller: int, buyer: int, market: int, size: int, price: int | None = None) -> bytes:
    maker = order(world, seller, False, size, price, market=market)
    taker = order(world, buyer, True, size, price, market=market)
    return builders.trade(maker, key_of(seller), taker, key_of(buyer), size, world.context, 200, 500).encode()


def test_rules_on_option_portfolios_agree(verifier: EvmVerifier) -> None:
    world = with_options(heavy_world(verifier.config, 10**12))
    seen: Counter[Reason] = Counter()
    # trades between two solvent option holders, on a series and on a perpetual: the margin
    # rule of both sides is the portfolio rule
    assert agree(verifier, world, trade(world, 3, 4, 15, 10), seen) == Reason.OK
    assert agree(verifier, world, trade(world, 4, 3, 0, 10), seen) == Reason.OK
    assert agree(verifier, world, trade(world, 3, 4, 8, 30), seen) == Reason.OK
    # a series at its expiry takes no trades, a Trade or a Fill of an order posted before
    series = world.state.market(9)
    assert series is not None
    posted = order(world, 3, False, 20, market=9)
    assert agree(verifier, world, builders.trade(posted, key_of(3), order(world, 4, True, 10, market=9), key_of(4), 10,
                                                 world.context, 200, 500).encode(), seen) == Reason.OK
    world.state.set_market(series._replace(expiry=world.state.globals.time))
    assert agree(verifier, world, trade(world, 3, 4, 9, 10), seen) == Reason.SERIES_EXPIRED
    assert agree(verifier, world, builders.fill(posted, order(world, 4, True, 10, market=9), key_of(4), 10,
                                                world.context, 200, 500).encode(), seen) == Reason.SERIES_EXPIRED
    world.state.set_market(series._replace(expiry=world.state.globals.time + 1))  # one second before: open
    assert agree(verifier, world, trade(world, 3, 4, 9, 10), seen) == Reason.OK
    # the bankrupt account 2 (long 99 of every market): growing a position is refused, a
    # reduce-only sale is judged by the maintenance comparison
    assert agree(verifier, world, trade(world, 3, 2, 15, 1), seen) == Reason.UNDER_MARGIN
    agree(verifier, world, trade(world, 2, 3, 15, 1), seen)
    # withdrawals: a small one passes, one past the portfolio's free collateral does not
    assert agree(verifier, world, builders.withdraw(4, 1_000_000, 90, 10**12, key_of(4), world.context).encode(),
                 seen) == Reason.OK
    # account 3 withdraws to its portfolio's initial requirement exactly, not one unit past
    settled, _ = margin.settle_funding(world.state.account(3), world.state.markets)
    free = margin.value(settled, world.state.markets) - margin.requirement(settled, world.state.markets, True)
    assert 0 < free < settled.collateral
    linear = 0
    for p in settled.positions:
        market = world.state.market(p.market)
        assert market is not None
        linear += products.requirement(products.PERPETUAL, p.size, market.oracle_price, market.initial_margin_ppm)
    assert margin.requirement(settled, world.state.markets, True) != linear  # not the linear sum
    assert agree(verifier, world, builders.withdraw(3, free + 1, 92, 10**12, key_of(3), world.context).encode(),
                 seen) == Reason.UNDER_MARGIN
    assert agree(verifier, world, builders.withdraw(3, free, 93, 10**12, key_of(3), world.context).encode(),
                 seen) == Reason.OK
    short_value = value(world, 3)  # account 3 is short: its value is below its collateral
    assert 0 < short_value < world.state.account(3).collateral
    assert agree(verifier, world, builders.withdraw(3, short_value - 1, 91, 10**12, key_of(3), world.context).encode(),
                 seen) == Reason.UNDER_MARGIN
    # a forced close of a series into the fund, then the bankrupt account liquidated on one
    request = force(world, FORCED_CLOSE, 4, bytes(world.state.account(4).owner), market=15)
    assert agree(verifier, world, request.encode(), seen) == Reason.OK
    assert agree(verifier, world, Liquidate(2, 15, 50).encode(), seen) == Reason.OK
    assert agree(verifier, world, Liquidate(3, 9, 1).encode(), seen) == Reason.NOT_LIQUIDATABLE
    # deleveraging a series against its opposite holder, with the fund too poor to carry it
    poor = with_options(heavy_world(verifier.config, 1_000_000))
    assert agree(verifier, poor, Deleverage(2, 3, 15, 50).encode(), seen) == Reason.OK
    # settlement: series 11 expires, the committee's price is signed once, and every
    # holder's position (16 positions an account) is paid or pays its payoff
    series = world.state.market(11)
    assert series is not None
    now = world.state.globals.time
    world.state.set_market(series._replace(expiry=now))
    keys = ORACLE_KEYS
    settle = builders.settle_series(11, now, [(0, series.strike - 9_000, keys[0]), (1, series.strike - 7_000, keys[1])],
                                    world.context).encode()
    assert agree(verifier, world, settle, seen) == Reason.OK
    assert agree(verifier, world, settle, seen) == Reason.ALREADY_SETTLED
    holders = [i for i, a in sorted(world.state.accounts.items()) if a.size(11)]
    assert len(holders) >= 3 and holders[0] == 0  # the fund holds one too
    # account 4 closes its own through L1 (a forced close of a settled series settles it)
    request = force(world, FORCED_CLOSE, 4, bytes(world.state.account(4).owner), market=11)
    assert agree(verifier, world, request.encode(), seen) == Reason.OK
    assert world.state.account(4).position(11) is None
    for account in holders:
        if account != 4:
            assert agree(verifier, world, SettlePosition(account, 11).encode(), seen) == Reason.OK
    assert agree(verifier, world, SettlePosition(holders[0], 11).encode(), seen) == Reason.NO_POSITION
    assert world.state.market(11).open_interest == 0  # type: ignore[union-attr]
    assert {Reason.OK, Reason.UNDER_MARGIN, Reason.NOT_LIQUIDATABLE, Reason.SERIES_EXPIRED,
            Reason.ALREADY_SETTLED, Reason.NO_POSITION} <= set(seen)
    assert sum(seen.values()) == 20 + len(holders)


def extra_market(world: World, price: int = PRICE) -> int:
    """List market 16 (beside heavy_world's 16, held by no one yet), priced: its id."""
    world.state.set_market(Market(id=MARKETS, oracle_price=price, oracle_time=world.state.globals.time,
                                  max_price_move_ppm=100_000, oracle_staleness=3_600))
    return MARKETS


def test_no_account_holds_a_seventeenth_position(verifier: EvmVerifier) -> None:
    """More markets are listed than an account may hold positions (MAX_MARKETS 48 >
    MAX_POSITIONS 16): a trade that would open a 17th position, and a liquidation that
    would hand the insurance fund (16 positions in heavy_world) a 17th, are OVERFLOW in
    both executions; with a position to spare the same liquidation passes."""
    assert MAX_MARKETS > MAX_POSITIONS == MARKETS
    world = heavy_world(verifier.config, 10**12)
    seen: Counter[Reason] = Counter()
    market = extra_market(world)
    assert len(world.state.account(3).positions) == MAX_POSITIONS
    assert agree(verifier, world, trade(world, 3, 4, market, 10), seen) == Reason.OVERFLOW
    assert agree(verifier, world, trade(world, 3, 4, 0, 10), seen) == Reason.OK  # a held market
    # accounts 5 (long 100 of market 16 on 10% margin) and 6 (short); a 7% fall makes 5
    # liquidatable (still solvent)
    m = world.state.market(market)
    assert m is not None
    world.state.set_accounts({
        5: Account(owner=address_of(USER_KEYS[4]), collateral=-PRICE * 100 + PRICE * 100 // 10,
                   positions=(Position(market, 100, m.funding_index),)),
        6: Account(owner=address_of(USER_KEYS[5]), collateral=10**12 + PRICE * 100,
                   positions=(Position(market, -100, m.funding_index),)),
    })
    world.state.set_market(m._replace(open_interest=100, oracle_price=PRICE * 93 // 100))
    fund = world.state.account(INSURANCE_ACCOUNT)
    assert len(fund.positions) == MAX_POSITIONS and fund.position(market) is None
    spare = world.state.copy()
    spare.set_accounts({INSURANCE_ACCOUNT: fund._replace(positions=fund.positions[1:])})
    liquidate = Liquidate(5, market, 10).encode()
    assert agree(verifier, world, liquidate, seen) == Reason.OVERFLOW
    assert Reason(verifier.compare(spare, liquidate, world.context)[1]) == Reason.OK
    assert seen == Counter({Reason.OVERFLOW: 2, Reason.OK: 1})


def test_a_witness_opens_every_market_its_step_reads(verifier: EvmVerifier) -> None:
    """The markets root binds the listed set and every market's record; a witness that does
    not open a market the step reads is refused whatever else it holds: the market the
    transaction names, a market an opened account holds, the listed underlying of an
    opened series. Opening more than the step reads changes nothing."""
    world = with_options(heavy_world(verifier.config, 10**12))
    extra_market(world)  # a listed market no one holds: a proof gives its leaf
    tx = trade(world, 3, 4, 15, 10)  # series 15 (on perpetual 7) between two 16-position accounts
    honest = step_witness(world.state, tx)
    assert honest.opened_markets == frozenset(range(MARKETS))
    expected = verifier.compare(world.state, tx, world.context)

    def run(opened: frozenset[int], hide: int | None = None) -> str:
        """The step with the witness opening `opened`; `hide`: a listed market not opened
        passed off as unlisted (its bit cleared, its leaf left out)."""
        w = list(records.step_witness(honest._replace(opened_markets=opened)))
        if hide is not None:
            markets = list(world.state.markets)
            markets[hide] = None
            _, w[4], w[5] = records.market_records(markets, opened)
        try:
            reason, applied, root = verifier.step(world.state, tx, world.context, tuple(w))
        except Reverted as exc:
            return exc.reason
        after = world.state.copy()
        receipt = apply(after, tx, world.context)
        assert (reason, applied, root) == (int(receipt.reason), receipt.applied, after.root())
        return "same"

    assert run(honest.opened_markets | {MARKETS}) == "same"  # one more: harmless
    assert run(honest.opened_markets - {15}) == "witness: market not opened"  # the named series
    assert run(honest.opened_markets - {9}) == "witness: market not opened"  # a series both hold
    assert run(honest.opened_markets - {7}) == "witness: markets"  # series 15's underlying
    assert run(honest.opened_markets, hide=MARKETS) == "witness: pre-state root"
    assert expected[1] == Reason.OK
