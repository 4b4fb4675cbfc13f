"""Genesis: the markets, the insurance fund and the configuration a deployment starts with.

Markets are data. Units: collateral is a 6-decimal stablecoin (1 unit = 1e-6 USD);
sizes are integer lots of `lot` base units; prices are collateral units per lot.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import INSURANCE_ACCOUNT
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


def genesis_state(insurance_owner: bytes, markets: tuple[Market, ...] | None = None) -> State:
    """The state at genesis: the markets (no price yet) and the insurance fund's account."""
    state = State()
    for market in markets if markets is not None else tuple(m for _, m in DEVNET_MARKETS):
        state.set_market(market)
    state.set_accounts({INSURANCE_ACCOUNT: Account(owner=insurance_owner)})
    return state
