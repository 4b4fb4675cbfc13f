"""Portfolio margin from the Greeks (rollup/stf/portfolio.py): its properties, its
identity with the perpetual rule on accounts of perpetuals only, and its EVM twin
(l1_contracts/portfolio.vy) on random and extreme portfolios."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web3.contract import Contract

from rollup.l1.client import L1, default_dev_key
from rollup.pricing import quote
from rollup.stf import margin, portfolio
from rollup.stf.portfolio import DELTA_ONE, Exposure, Underlying
from rollup.stf.state import Account, Market, Position

CASES = 1_000 if os.environ.get("ROLLUP_LONG") else 80
MAX_SIZE = 2**40 - 1
MAX_GREEK = 2**63 - 1
MAX_PRICE = 2**40 - 1


def option(underlying: int, size: int, spot: int, strike: int, call: bool, floor_m: int = 10_000,
           floor_i: int = 15_000) -> Exposure:
    """An exposure with the risk feed's integers of a 30-day option at 80% volatility."""
    q = quote(spot, strike, 30 / 365, 0.8, call)
    return Exposure(underlying, size, q.delta, q.gamma, q.vega, floor_m, floor_i)


ETH = Underlying(price=300_000, maintenance_ppm=50_000, initial_ppm=100_000, vol_shock_ppm=100_000)
UNDERLYINGS = [ETH] * 16


# ---------------------------------------------------------------------- properties


def test_the_grid_is_symmetric_and_reaches_the_fraction() -> None:
    assert portfolio.price_moves(50_000) == (-50_000, -33_333, -16_666, 0, 16_666, 33_333, 50_000)
    assert len(portfolio.scenarios(ETH)) == 21


@settings(deadline=None, max_examples=5_000 if os.environ.get("ROLLUP_LONG") else 500)
@given(st.builds(portfolio.Net, st.integers(-2**64, 2**64), st.integers(-2**107, 2**107), st.integers(-2**107, 2**107)),
       st.builds(Underlying, st.integers(1, 2**40), st.integers(1, 2**32), st.integers(1, 2**32), st.integers(0, 2**32)))
def test_the_worst_loss_is_the_worst_of_the_21_scenarios(net: portfolio.Net, u: Underlying) -> None:
    """worst_loss's price part plus volatility part is the grid's worst, scenario by scenario."""
    brute = max([0] + [-portfolio.scenario_pnl(net, u.price, s, w) for s, w in portfolio.scenarios(u)])
    assert portfolio.worst_loss(net, u) == brute


def test_perpetuals_only_is_the_perpetual_rule() -> None:
    """On accounts of perpetuals only, both requirements equal margin.requirement's."""
    rng = random.Random(11)
    for _ in range(2_000):
        markets: list[Market | None] = []
        for i in range(16):
            maintenance = rng.randrange(1, 500_000)
            markets.append(Market(id=i, oracle_price=rng.randrange(1, MAX_PRICE),
                                  maintenance_margin_ppm=maintenance,
                                  initial_margin_ppm=rng.randrange(maintenance, 1_000_000)))
        chosen = sorted(rng.sample(range(16), rng.randrange(17)))
        account = Account(b"\1" * 20, 0, tuple(Position(m, rng.choice([-1, 1]) * rng.randrange(1, MAX_SIZE), 0)
                                                for m in chosen))
        underlyings = [Underlying(m.oracle_price, m.maintenance_margin_ppm, m.initial_margin_ppm,  # type: ignore[union-attr]
                                  rng.randrange(0, 10**6)) for m in markets]
        exposures = [Exposure(p.market, p.size) for p in account.positions]
        for initial in (False, True):
            assert portfolio.requirement(exposures, underlyings, initial) == margin.requirement(account, markets, initial)


def test_a_delta_hedged_book_needs_far_less_than_its_parts() -> None:
    """100 short at-the-money calls (delta about 0.55) hedged by as many long perpetual
    lots as their delta: the book's maintenance is under half the calls' and the
    perpetuals' apart; so is its initial."""
    calls = option(0, -100, 300_000, 300_000, call=True)
    perps = Exposure(0, round(-calls.size * calls.delta / DELTA_ONE))
    assert abs(calls.size * calls.delta + perps.size * DELTA_ONE) < DELTA_ONE  # delta-neutral within a lot
    for initial in (False, True):
        apart = (portfolio.requirement([calls], UNDERLYINGS, initial)
                 + portfolio.requirement([perps], UNDERLYINGS, initial))
        together = portfolio.requirement([calls, perps], UNDERLYINGS, initial)
        assert 0 < together < apart / 2, (initial, together, apart)


def test_floors_hold_a_far_short_option_above_its_expansion() -> None:
    """A far out-of-the-money short call has almost no Greeks: its floor is its requirement."""
    far = option(0, -10, 300_000, 900_000, call=True)
    assert far.delta < 10 and portfolio.worst_loss(portfolio.net_exposures([far])[0], ETH) < portfolio.SCENARIO_SCALE * 100
    assert portfolio.requirement([far], UNDERLYINGS, False) >= 10 * 300_000 * far.floor_maintenance_ppm // 10**6
    assert portfolio.requirement([far._replace(size=10)], UNDERLYINGS, False) < 100  # long: no floor


def test_losses_on_one_underlying_are_not_offset_by_another() -> None:
    long_eth, short_btc = Exposure(0, 10), Exposure(1, -10)
    both = portfolio.requirement([long_eth, short_btc], UNDERLYINGS, False)
    assert both == 2 * portfolio.requirement([long_eth], UNDERLYINGS, False) > 0


exposure = st.builds(  # a series' initial floor is at least its maintenance one, as markets' fractions are
    lambda u, size, delta, gamma, vega, floor, extra: Exposure(u, size, delta, gamma, vega, floor, floor + extra),
    st.integers(0, 3), st.integers(-10**6, 10**6).filter(bool), st.integers(-DELTA_ONE, DELTA_ONE),
    st.integers(-10**9, 10**9), st.integers(-10**9, 10**9), st.integers(0, 100_000), st.integers(0, 100_000),
)
underlying = st.builds(
    lambda price, m, extra, w: Underlying(price, m, m + extra, w),
    st.integers(1, 10**9), st.integers(1, 300_000), st.integers(0, 300_000), st.integers(0, 500_000),
)
portfolios = st.lists(exposure, max_size=16)
property_settings = settings(deadline=None, max_examples=5_000 if os.environ.get("ROLLUP_LONG") else 300)


@property_settings
@given(portfolios, st.lists(underlying, min_size=4, max_size=4))
def test_never_negative_and_initial_at_least_maintenance(exposures: list[Exposure], unds: list[Underlying]) -> None:
    maintenance = portfolio.requirement(exposures, unds, False)
    assert 0 <= maintenance <= portfolio.requirement(exposures, unds, True)


@property_settings
@given(portfolios, st.lists(underlying, min_size=4, max_size=4), st.integers(2, 1_000))
def test_scaling_every_position_scales_the_loss(exposures: list[Exposure], unds: list[Underlying], k: int) -> None:
    """Profit is linear in size: k times every position is k times the worst loss and
    the floors, so the requirement grows (within k units of rounding of k times it)."""
    scaled = [e._replace(size=e.size * k) for e in exposures]
    for u, net in portfolio.net_exposures(exposures).items():
        scaled_net = portfolio.net_exposures(scaled)[u]
        assert portfolio.worst_loss(scaled_net, unds[u]) == k * portfolio.worst_loss(net, unds[u])
    for initial in (False, True):
        before = portfolio.requirement(exposures, unds, initial)
        after = portfolio.requirement(scaled, unds, initial)
        assert before <= after and k * before - after < k * 4 + 1


@property_settings
@given(portfolios, st.lists(underlying, min_size=4, max_size=4), st.integers(0, 3), st.fractions(0, 2))
def test_hedging_never_increases_the_requirement(exposures: list[Exposure], unds: list[Underlying], u: int,
                                                 share: Fraction) -> None:
    """A perpetual of size h on underlying u that leaves its net delta D + h * 10**6 no
    farther from zero than D was (h between 0 and -2D / 10**6) never raises either
    requirement."""
    net = portfolio.net_exposures(exposures).get(u, portfolio.Net())
    h = int(-net.delta * share / DELTA_ONE)  # (truncated toward zero: still in range)
    assert abs(net.delta + h * DELTA_ONE) <= abs(net.delta)
    for initial in (False, True):
        before = portfolio.requirement(exposures, unds, initial)
        hedged = exposures + ([Exposure(u, h)] if h else [])
        assert portfolio.requirement(hedged, unds, initial) <= before


# ---------------------------------------------------------------------- the EVM twin


@pytest.fixture(scope="module")
def harness(l1_url: str) -> Iterator[Contract]:
    yield L1(l1_url, default_dev_key()).deploy("PortfolioHarness")


def random_exposure(rng: random.Random, underlyings: int) -> Exposure:
    wide = rng.random() < 0.3  # the widths' extremes
    return Exposure(
        rng.randrange(underlyings),
        rng.choice([1, -1]) * (MAX_SIZE if wide else rng.randrange(1, 10**4)),
        rng.choice([DELTA_ONE, -DELTA_ONE, 0]) if wide else rng.randrange(-DELTA_ONE, DELTA_ONE + 1),
        rng.choice([MAX_GREEK, -MAX_GREEK]) if wide else rng.randrange(-10**8, 10**8),
        rng.choice([MAX_GREEK, -MAX_GREEK]) if wide else rng.randrange(-10**8, 10**8),
        rng.randrange(2**32) if wide else rng.randrange(0, 100_000),
        rng.randrange(2**32) if wide else rng.randrange(0, 150_000),
    )


def random_underlying(rng: random.Random) -> Underlying:
    m = rng.choice([1, 2, 3, rng.randrange(1, 1_000_000), 999_999])
    return Underlying(rng.choice([1, MAX_PRICE, rng.randrange(1, MAX_PRICE)]), m, rng.randrange(m, 2**32),
                      rng.choice([0, 2**32 - 1, rng.randrange(0, 1_000_000)]))


def test_the_evm_computes_the_same_requirements(harness: Contract) -> None:
    rng = random.Random(12)
    cases = [([], [ETH] * 16), ([option(0, -100, 300_000, 300_000, True), Exposure(0, 50)], [ETH] * 16)]
    for _ in range(CASES):
        underlyings = [random_underlying(rng) for _ in range(16)]
        spread = rng.choice([1, 4, 16])
        cases.append(([random_exposure(rng, spread) for _ in range(rng.randrange(17))], underlyings))
    signs = set()
    for exposures, underlyings in cases:
        expected = (portfolio.requirement(exposures, underlyings, False),
                    portfolio.requirement(exposures, underlyings, True))
        got = harness.functions.requirements([tuple(e) for e in exposures], [tuple(u) for u in underlyings]).call()
        assert tuple(got) == expected, (exposures, underlyings)
        signs.add(expected[0] > 0)
    assert signs == {True, False} and len(cases) == CASES + 2


def test_the_heaviest_portfolio_fits_a_proof(harness: Contract) -> None:
    """16 positions on 16 underlyings, every one at its widths: both requirements take a
    small share of a proof's 500,000 gas (measured: 79,600 of execution for the two,
    decoding the 16 positions and 16 underlyings included)."""
    exposures = [(u, -MAX_SIZE, -DELTA_ONE, -MAX_GREEK, -MAX_GREEK, 2**32 - 1, 2**32 - 1) for u in range(16)]
    underlyings = [(MAX_PRICE, 999_999, 2**32 - 1, 2**32 - 1)] * 16
    call = harness.functions.requirements(exposures, underlyings)
    data = bytes.fromhex(call._encode_transaction_data()[2:])
    intrinsic = 21_000 + sum(16 if b else 4 for b in data)  # what the calldata alone costs (EIP-2028)
    execution = call.estimate_gas() - intrinsic
    assert 0 < execution < 100_000, execution
