"""The devnet's markets: the ETH and BTC perpetuals and European option series on them.

A deployment fixes its markets at genesis (`deploy(..., listing=...)`, recorded in the
deployment file), so series' expiries are absolute times: `devnet_listing(now)` lists a
daily expiry (08:00 UTC, at least an hour after `now`) and a weekly one (the Friday at
08:00 UTC at least seven days after `now`), each with calls and puts around the
perpetuals' starting prices:

    ETH (lot 0.0001): calls and puts at 2,800, 3,000, 3,200 and 3,400, each expiry
    BTC (lot 0.00001): calls and puts at 90,000, 95,000, 100,000 and 105,000, each expiry

32 series beside the 2 perpetuals (the market table holds 48): ids 2-9 the ETH series and
10-17 the BTC series of the daily expiry, 18-33 those of the weekly. A series' record carries
its terms; its first mark and Greeks come from the risk feed (rollup/oracle.py). Margin
floors for short options: 1% of the underlying's notional (maintenance), 1.5% (initial).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from .pricing import EXPIRY_HOUR, Series, expiry_at
from .stf import products
from .stf.genesis import DEVNET_MARKETS, Listing, MarketInfo
from .stf.state import Market

VOL_SHOCK_PPM = 100_000
"""The volatility move W of the perpetuals' margin grids: 10 volatility points."""

SERIES_TERMS = dict(
    initial_margin_ppm=15_000, maintenance_margin_ppm=10_000, liquidation_penalty_ppm=10_000,
    max_funding_rate_ppm=0, max_price_move_ppm=500_000, oracle_staleness=300, tick_size=1, step_size=1,
)
"""A series' parameters: its margin fractions are the short floors (spec §10.2); its mark
may move by half per update (an option's price moves much more than its underlying's)."""

STRIKES = {
    0: tuple((Decimal(k), call) for call in (True, False) for k in (3000, 3200, 2800, 3400)),
    1: tuple((Decimal(k), call) for call in (True, False) for k in (100000, 105000, 95000, 90000)),
}
"""Per perpetual: (strike in USD, call?) of each expiry's series: the calls, then the puts,
the at-the-money strike first (so that market 2 is the daily ETH call at 3,000)."""


def expiries(now: int) -> tuple[int, int]:
    """(daily, weekly): 08:00 UTC at least an hour after `now`; the Friday 08:00 UTC at
    least seven days after it."""
    day = datetime.fromtimestamp(now + 3_600, UTC)
    daily = expiry_at(day)
    if daily < now + 3_600:
        daily = expiry_at(day + timedelta(days=1))
    week = datetime.fromtimestamp(now + 7 * 86_400, UTC)
    friday = week + timedelta(days=(4 - week.weekday()) % 7)
    weekly = expiry_at(friday)
    if weekly < now + 7 * 86_400:
        weekly = expiry_at(friday + timedelta(days=7))
    assert datetime.fromtimestamp(weekly, UTC).hour == EXPIRY_HOUR
    return daily, weekly


def devnet_listing(now: int) -> Listing:
    """The perpetuals (with their volatility shock) and the series expiring after `now`."""
    perpetuals = tuple((info, market._replace(vol_shock_ppm=VOL_SHOCK_PPM)) for info, market in DEVNET_MARKETS)
    out = list(perpetuals)
    for expiry in expiries(now):
        for info, _ in perpetuals:
            base = info.symbol.split("-")[0]
            for strike, call in STRIKES[info.id]:
                series = Series(base, expiry, strike, call)
                market_id = len(out)
                out.append((MarketInfo(market_id, series.symbol, info.lot), Market(
                    id=market_id, product=products.CALL if call else products.PUT, underlying=info.id,
                    strike=series.strike_units(info.lot), expiry=expiry, **SERIES_TERMS,
                )))
    return tuple(out)
