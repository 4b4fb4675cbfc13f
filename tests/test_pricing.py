"""The risk feed's pricing (rollup/pricing.py): Black-Scholes against parity and finite
differences, the integers a feed signs, the smile, and series names."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from rollup import pricing
from rollup.pricing import Series, Smile, black_scholes, parse_series, quote


def test_put_call_parity_and_the_greeks_are_derivatives() -> None:
    rng = random.Random(3)
    for _ in range(500):
        spot, strike = rng.uniform(50, 5_000), rng.uniform(50, 5_000)
        years, vol = rng.uniform(1 / 365, 2), rng.uniform(0.1, 1.5)
        call = black_scholes(spot, strike, years, vol, True)
        put = black_scholes(spot, strike, years, vol, False)
        assert call[0] - put[0] == pytest.approx(spot - strike, abs=1e-7 * spot)
        assert call[1] - put[1] == pytest.approx(1.0)  # deltas differ by one
        assert call[2:] == put[2:]  # same gamma and vega
        h = spot * 1e-4
        for side, greeks in ((True, call), (False, put)):
            up, down = (black_scholes(spot + h, strike, years, vol, side)[0],
                        black_scholes(spot - h, strike, years, vol, side)[0])
            assert greeks[1] == pytest.approx((up - down) / (2 * h), abs=1e-6)
            assert greeks[2] == pytest.approx((up - 2 * greeks[0] + down) / (h * h), rel=1e-3, abs=1e-6)
            dv = 1e-5
            v_up = black_scholes(spot, strike, years, vol + dv, side)[0]
            v_down = black_scholes(spot, strike, years, vol - dv, side)[0]
            assert greeks[3] == pytest.approx((v_up - v_down) / (2 * dv), rel=1e-5, abs=1e-6)


def test_at_expiry_an_option_is_its_intrinsic_value() -> None:
    assert black_scholes(3_100, 3_000, 0, 0.8, True) == (100, 1.0, 0.0, 0.0)
    assert black_scholes(3_100, 3_000, 0, 0.8, False) == (0, 0.0, 0.0, 0.0)
    assert black_scholes(2_900, 3_000, -5, 0.8, False) == (100, -1.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        black_scholes(0, 3_000, 1, 0.8, True)


def test_the_feed_integers() -> None:
    """An at-the-money 30-day ETH call (lot 0.0001 ETH: 3,000 USD is 300,000 units):
    mark about 0.4 * sigma * sqrt(T) * S, delta a little over one half, cash gamma and
    vega as the portfolio rule reads them."""
    q = quote(300_000, 300_000, 30 / 365, 0.8, True)
    assert q.mark == pytest.approx(0.4 * 0.8 * (30 / 365) ** 0.5 * 300_000, rel=0.01)
    assert 500_000 < q.delta < 600_000
    # a 1% move changes the value by about delta * 1% * S + gamma * 0.01**2 / 2
    moved = quote(303_000, 300_000, 30 / 365, 0.8, True).mark - q.mark
    assert moved == pytest.approx(q.delta / 1e6 * 3_000 + q.gamma * 1e-4 / 2, abs=2)
    # a volatility point (0.01) changes it by about vega / 100
    assert quote(300_000, 300_000, 30 / 365, 0.81, True).mark - q.mark == pytest.approx(q.vega / 100, abs=2)
    put = quote(300_000, 300_000, 30 / 365, 0.8, False)
    assert -500_000 < put.delta < -400_000 and (put.gamma, put.vega) == (q.gamma, q.vega)
    deep = quote(300_000, 3_000, 1, 0.8, True)
    assert deep.delta == 1_000_000 and deep.mark == 297_000


def test_the_smile_prices_low_strikes_higher_and_stays_in_bounds() -> None:
    smile = Smile()
    assert smile.vol(3_000, 3_000) == pytest.approx(0.6)
    assert smile.vol(3_000, 2_400) > 0.6 and smile.vol(3_000, 2_400) > smile.vol(3_000, 3_600)
    assert Smile(atm=0.5, skew=-5, curvature=0).vol(1, 1e9) == 0.05
    assert Smile(atm=0.5, curvature=100).vol(1, 1e9) == 3.0


def test_series_names_round_trip() -> None:
    s = parse_series("ETH-27DEC26-3000-C")
    assert s == Series("ETH", int(datetime(2026, 12, 27, 8, tzinfo=UTC).timestamp()), Decimal(3000), True)
    assert s.symbol == "ETH-27DEC26-3000-C"
    assert s.strike_units("0.0001") == 300_000
    assert parse_series("btc-3jan27-95000.5-p").symbol == "BTC-3JAN27-95000.5-P"
    assert s.years_left(s.expiry - 365 * 86_400) == 1.0 and s.years_left(s.expiry + 1) == 0.0
    assert pricing.expiry_at(datetime(2026, 12, 27, 23, 59, tzinfo=UTC)) == s.expiry
    with pytest.raises(ValueError, match="whole number"):
        parse_series("ETH-27DEC26-3000.000001-C").strike_units("0.0001")


@pytest.mark.parametrize("bad", ["ETH-27DEC26-3000", "ETH-27XYZ26-3000-C", "ETH-31FEB26-3000-C",
                                 "ETH-27DEC26-0-C", "ETH-27DEC26--5-C", "", "ETH_27DEC26_3000_C"])
def test_malformed_series_names_are_refused_by_name(bad: str) -> None:
    with pytest.raises(ValueError, match="series name|month|day|strike"):
        parse_series(bad)
