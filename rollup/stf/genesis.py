"""Genesis: the markets, the insurance fund and the configuration a deployment starts with.

Markets are data. Units: collateral is a 6-decimal stablecoin (1 unit = 1e-6 USD);
sizes are integer lots of `lot` base units; prices are collateral units per lot.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from . import products
from .constants import INSURANCE_ACCOUNT, MAX_MARKETS, MAX_PRICE, PPM
from .state import Account, Market, State


@dataclass(frozen=True)
class MarketInfo:
    """Off-chain metadata for display: not part of the state."""

    id: int
    symbol: str
    lot: str
    """Base-asset quantity of one lot, as a decimal string."""


DEVNET_MARKETS: tuple[tuple[MarketInfo, Market], ...] = (
    (
        MarketInfo(0, "ETH-USD", "0.0001"),
        Market(id=0, initial_margin_ppm=100_000, maintenance_margin_ppm=50_000,
               liquidation_penalty_ppm=10_000, max_funding_rate_ppm=10_000,
               max_price_move_ppm=100_000, oracle_staleness=300, tick_size=1, step_size=1),
    ),
    (
        MarketInfo(1, "BTC-USD", "0.00001"),
        Market(id=1, initial_margin_ppm=100_000, maintenance_margin_ppm=50_000,
               liquidation_penalty_ppm=10_000, max_funding_rate_ppm=10_000,
               max_price_move_ppm=100_000, oracle_staleness=300, tick_size=1, step_size=1),
    ),
)
"""ETH-USD (lot 0.0001 ETH: $3,000/ETH is a price of 300,000) and BTC-USD (lot
0.00001 BTC: $100,000/BTC is a price of 1,000,000); 10% initial, 5% maintenance margin."""


def check_market(market: Market) -> None:
    """Markets are fixed at genesis; the rules assume these of every market (a step or tick
    of zero would make a trade's divisibility check divide by zero). Raises ValueError."""
    if not 0 <= market.id < MAX_MARKETS:
        raise ValueError(f"market {market.id}: id outside 0..{MAX_MARKETS - 1}")
    if market.product not in products.PRODUCTS:
        raise ValueError(f"market {market.id}: unknown product {market.product}")
    if market.tick_size < 1 or market.step_size < 1:
        raise ValueError(f"market {market.id}: tick and step sizes must be at least 1")
    if not 0 < market.maintenance_margin_ppm <= market.initial_margin_ppm <= PPM:
        raise ValueError(f"market {market.id}: need 0 < maintenance <= initial margin <= 1")
    if market.liquidation_penalty_ppm > PPM or market.max_price_move_ppm > PPM:
        raise ValueError(f"market {market.id}: penalty and price move are fractions of at most 1")
    if market.oracle_staleness < 1:
        raise ValueError(f"market {market.id}: the oracle staleness window must be at least 1 s")
    if market.vol_shock_ppm > PPM:
        raise ValueError(f"market {market.id}: the volatility shock is a fraction of at most 1")
    try:
        market.encode()
    except (struct.error, OverflowError):
        raise ValueError(f"market {market.id}: a field beyond its width in the record (state.Market)") from None
    if market.oracle_price or market.oracle_time or market.funding_index or market.funding_time \
            or market.open_interest or market.settlement_price or market.delta or market.gamma or market.vega:
        raise ValueError(f"market {market.id}: starts unpriced, unsettled and with no open interest")
    terms = (market.underlying, market.strike, market.expiry)
    if market.product == products.PERPETUAL:
        if any(terms):
            raise ValueError(f"market {market.id}: a perpetual has no underlying, strike or expiry")
        return
    if market.vol_shock_ppm or market.max_funding_rate_ppm:
        raise ValueError(f"market {market.id}: a series has no volatility shock (its underlying's) and no funding")
    if not 0 < market.strike <= MAX_PRICE or not 0 < market.expiry < 2**64:
        raise ValueError(f"market {market.id}: a series needs a strike in (0, MAX_PRICE] and an expiry")


def check_listing(markets: tuple[Market, ...]) -> None:
    """Each market checked (`check_market`), ids distinct, and each series written on a
    perpetual of the same listing. Raises ValueError."""
    by_id: dict[int, Market] = {}
    for market in markets:
        check_market(market)
        if market.id in by_id:
            raise ValueError(f"market {market.id}: listed twice")
        by_id[market.id] = market
    for market in markets:
        if market.product == products.PERPETUAL:
            continue
        underlying = by_id.get(market.underlying)
        if underlying is None or underlying.product != products.PERPETUAL:
            raise ValueError(f"market {market.id}: its underlying {market.underlying} is not a listed perpetual")


Listing = tuple[tuple[MarketInfo, Market], ...]
"""A deployment's markets at genesis: each with its display metadata."""


def listing_to_json(listing: Listing) -> list[dict[str, Any]]:
    """The listing as a deployment file keeps it: per market its symbol, lot and the
    record's fields by name (integers)."""
    return [{"symbol": info.symbol, "lot": info.lot, **market._asdict()} for info, market in listing]


def listing_from_json(data: list[dict[str, Any]]) -> Listing:
    """The listing a deployment file holds (`listing_to_json`), checked (`check_listing`).
    Raises ValueError on an unknown or missing field or a listing the rules cannot run."""
    out = []
    fields = set(Market._fields)
    for entry in data:
        entry = dict(entry)
        info = MarketInfo(int(entry["id"]), str(entry.pop("symbol")), str(entry.pop("lot")))
        unknown = set(entry) - fields
        if unknown:
            raise ValueError(f"market {info.id}: unknown fields {sorted(unknown)}")
        out.append((info, Market(**{name: int(value) for name, value in entry.items()})))
    listing = tuple(out)
    check_listing(tuple(m for _, m in listing))
    return listing


def genesis_state(insurance_owner: bytes, markets: tuple[Market, ...] | None = None) -> State:
    """The state at genesis: the markets (no price yet; checked by `check_listing`) and
    the insurance fund's account."""
    state = State()
    listing = markets if markets is not None else tuple(m for _, m in DEVNET_MARKETS)
    check_listing(listing)
    for market in listing:
        state.set_market(market)
    state.set_accounts({INSURANCE_ACCOUNT: Account(owner=insurance_owner)})
    return state
