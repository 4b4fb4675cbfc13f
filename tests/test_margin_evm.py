"""The money rules on the EVM (l1_contracts/margin.vy, with Portfolio.vy for accounts that
hold option series) equal the STF's (rollup/stf/margin.py): floor/ceil division on
negative numbers, funding settlement, value, requirements and the margin rule, on random
accounts and markets, perpetuals only and with option series among them."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
from web3.contract import Contract

from rollup.l1 import records
from rollup.l1.client import L1, default_dev_key
from rollup.stf import margin, products
from rollup.stf.state import Account, Market, Position

CASES = 1_000 if os.environ.get("ROLLUP_LONG") else 60


@pytest.fixture(scope="module")
def harness(l1_url: str) -> Iterator[Contract]:
    l1 = L1(l1_url, default_dev_key())
    yield l1.deploy("MarginHarness", l1.deploy("Portfolio").address)


def random_markets(rng: random.Random, options: bool = False) -> list[Market]:
    """16 perpetuals; with `options`, some of them option series (calls and puts with
    Greeks at their widths' extremes now and then) written on the perpetuals among them,
    and rarely on another series (a state no listing makes, but both sides must agree)."""
    markets = []
    for i in range(16):
        maintenance = rng.randrange(1, 10**6)
        base = Market(
            id=i, oracle_price=rng.choice([1, rng.randrange(1, 2**40)]),
            funding_index=rng.randrange(-2**70, 2**70),
            initial_margin_ppm=rng.randrange(maintenance, 10**6 + 1), maintenance_margin_ppm=maintenance,
            vol_shock_ppm=rng.choice([0, rng.randrange(0, 2**32)]),
        )
        if options and i >= 4 and rng.random() < 0.7:
            base = Market(
                id=i, product=rng.choice([products.CALL, products.PUT]), oracle_price=base.oracle_price,
                funding_index=base.funding_index, initial_margin_ppm=base.initial_margin_ppm,
                maintenance_margin_ppm=maintenance, underlying=rng.randrange(4 if rng.random() < 0.95 else 16),
                strike=rng.randrange(1, 2**40), expiry=rng.randrange(2**40),
                delta=rng.choice([rng.randrange(-10**6, 10**6 + 1), -2**31, 2**31 - 1]),
                gamma=rng.choice([rng.randrange(-10**12, 10**12), -2**63, 2**63 - 1]),
                vega=rng.choice([rng.randrange(-10**12, 10**12), -2**63, 2**63 - 1]),
            )
        markets.append(base)
    return markets


def random_account(rng: random.Random, markets: list[Market], like: Account | None = None) -> Account:
    if like is not None:  # a nearby account: some positions shrink, grow, flip or close
        positions = []
        for p in like.positions:
            choice = rng.randrange(5)
            size = {0: p.size, 1: p.size // 2, 2: p.size * 2, 3: -p.size, 4: 0}[choice]
            if size:
                positions.append(Position(p.market, size, p.funding_index))
        return Account(like.owner, like.collateral + rng.randrange(-10**12, 10**12), tuple(positions))
    chosen = sorted(rng.sample(range(16), rng.choice([0, 1, 2, 4, 16])))
    drawn = tuple(
        Position(m, rng.choice([1, -1]) * rng.randrange(1, 2**40),
                 markets[m].funding_index + rng.randrange(-2**40, 2**40))
        for m in chosen
    )
    return Account(b"\1" * 20, rng.randrange(-2**80, 2**80), drawn)


def struct(a: Account) -> tuple[object, ...]:
    return records.account(a)


def views(markets: list[Market]) -> tuple[bytes, int]:
    """The markets as a step witness carries them, every one opened."""
    encoded, listed, hashes = records.market_records(markets, range(len(markets)))
    assert not hashes
    return encoded, listed


def test_floor_and_ceil(harness: Contract) -> None:
    rng = random.Random(1)
    for a in [0, 1, -1, 7, -7, 10**9, -(10**9) - 1] + [rng.randrange(-2**200, 2**200) for _ in range(20)]:
        for b in (1, 3, 10**6, 10**9):
            assert tuple(harness.functions.floor_ceil(a, b).call()) == (margin.floor_div(a, b), margin.ceil_div(a, b))


@pytest.mark.parametrize("options", [False, True], ids=["perpetuals", "options"])
def test_money_rules_agree(harness: Contract, options: bool) -> None:
    rng = random.Random(2 + options)
    outcomes = set()
    trades = set()
    portfolio_accounts = 0
    for _ in range(CASES):
        markets = random_markets(rng, options)
        account = random_account(rng, markets)
        settled, payment = margin.settle_funding(account, markets)
        evm_settled, evm_payment = harness.functions.settle_funding(struct(account), *views(markets)).call()
        assert evm_payment == payment
        assert records.account_from(evm_settled) == settled
        expected = (margin.value(settled, markets), margin.requirement(settled, markets, True),
                    margin.requirement(settled, markets, False))
        assert tuple(harness.functions.value_and_requirements(struct(settled), *views(markets)).call()) == expected
        after = random_account(rng, markets, like=settled)
        ok = margin.margin_ok(settled, after, markets)
        assert harness.functions.margin_ok(struct(settled), struct(after), *views(markets)).call() == ok
        outcomes.add((ok, margin.is_reduce_only(settled, after)))
        # the Portfolio contract's margin_ok (VerifyTrade's for an option holder), on a trade's
        # change (one market's position and the collateral): the portfolio rule for every
        # requirement, equal to the linear one on perpetuals, so the same verdict
        market = rng.choice([p.market for p in settled.positions] + [rng.randrange(16)])
        old = settled.size(market)
        size = rng.choice([old, old // 2, old - (old > 0) + (old < 0), 0, -old, 2 * old, rng.randrange(-2**40, 2**40)])
        traded = margin.with_collateral(
            margin.with_position(settled, market, size, markets[market].funding_index),
            settled.collateral + rng.randrange(-10**12, 10**12),
        )
        # the portfolio rule's requirements of `traded`, and `settled`'s maintenance from them
        # (only the traded market's underlying's term computed again)
        expected = (margin.portfolio_requirement(traded, markets, True),
                    margin.portfolio_requirement(traded, markets, False),
                    margin.portfolio_requirement(settled, markets, False))
        assert tuple(harness.functions.portfolio_requirements(
            struct(traded), *views(markets), market, old).call()) == expected
        ok = margin.margin_ok(settled, traded, markets)
        assert harness.functions.portfolio_margin_ok(struct(settled), struct(traded), *views(markets), market).call() == ok
        by_ratio = (  # decided by value' * maintenance >= value * maintenance'
            margin.value(traded, markets) < margin.requirement(traded, markets, True)
            and margin.is_reduce_only(settled, traded) and margin.requirement(traded, markets, False) > 0
        )
        trades.add((ok, margin.is_reduce_only(settled, traded), by_ratio))
        portfolio_accounts += any(markets[p.market].product != products.PERPETUAL for p in settled.positions)
    # both verdicts, on both sides of the reduce-only branch
    assert {(True, False), (False, False), (False, True)} <= outcomes
    assert {(True, False, False), (False, False, False), (True, True, True), (False, True, True)} <= trades
    # with options, most accounts took the portfolio path
    assert portfolio_accounts > (CASES // 2 if options else -1) and (options or portfolio_accounts == 0)


def test_with_position_agrees(harness: Contract) -> None:
    """Set, grow, flip, insert (before, between, after) and remove positions."""
    rng = random.Random(5)
    for _ in range(CASES):
        markets = random_markets(rng)
        account = random_account(rng, markets)
        market = rng.choice([p.market for p in account.positions] + [rng.randrange(16)])
        size = rng.choice([0, 1, -1, rng.randrange(-2**40, 2**40)])
        index = rng.randrange(-2**90, 2**90)
        expected = margin.with_position(account, market, size, index)
        got = harness.functions.with_position(struct(account), market, size, index).call()
        assert records.account_from(got) == expected
