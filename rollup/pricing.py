"""Option pricing for the risk feed (off-chain): Black-Scholes on a volatility smile, and
option series names.

The rules never price an option: the oracle committee signs, per series, a mark and the
Greeks as integers (rollup/stf/portfolio.py states their units), and this module is how
the devnet's feeder computes them. Rates are zero (the collateral earns nothing and a
perpetual tracks spot), so Black-Scholes is Black-76 with the forward at spot.

    quote(spot, strike, years, vol, call) -> Quote(mark, delta, gamma, vega)

- mark: the option's value, collateral units per lot (a lot of the option is one lot of
  the underlying, so spot and strike are collateral units per lot too);
- delta: parts per million (a call 0..10**6, a put -10**6..0);
- gamma: cash gamma d2V/dS2 * S**2, collateral units per lot;
- vega: collateral units per lot per 1.0 of volatility.

Series are named as the venues name them, `ETH-27DEC26-3000-C`: underlying, expiry day
(expiry at 08:00 UTC), strike in USD, C or P.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

SECONDS_PER_YEAR = 365 * 24 * 3600
EXPIRY_HOUR = 8
"""Series expire at 08:00 UTC of their expiry day."""

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _cdf(x: float) -> float:
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def _pdf(x: float) -> float:
    return math.exp(-x * x / 2.0) / math.sqrt(2.0 * math.pi)


def black_scholes(spot: float, strike: float, years: float, vol: float, call: bool) -> tuple[float, float, float, float]:
    """(value, delta, gamma, vega) of a European option, zero rates; at or after expiry
    (years <= 0) or with no volatility: intrinsic value, delta 0 or +-1, gamma and vega 0."""
    if spot <= 0 or strike <= 0:
        raise ValueError("spot and strike must be positive")
    if years <= 0 or vol <= 0:
        if call:
            return max(spot - strike, 0.0), (1.0 if spot > strike else 0.0), 0.0, 0.0
        return max(strike - spot, 0.0), (-1.0 if spot < strike else 0.0), 0.0, 0.0
    root = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + root * root / 2.0) / root
    d2 = d1 - root
    gamma = _pdf(d1) / (spot * root)
    vega = spot * _pdf(d1) * math.sqrt(years)
    if call:
        return spot * _cdf(d1) - strike * _cdf(d2), _cdf(d1), gamma, vega
    return strike * _cdf(-d2) - spot * _cdf(-d1), _cdf(d1) - 1.0, gamma, vega


class Quote(NamedTuple):
    """A series' mark and Greeks as the risk feed signs them (units in the module's doc)."""

    mark: int
    delta: int
    gamma: int
    vega: int


def quote(spot: int, strike: int, years: float, vol: float, call: bool) -> Quote:
    """The integers of a series at `spot` (collateral units per lot)."""
    value, delta, gamma, vega = black_scholes(float(spot), float(strike), years, vol, call)
    return Quote(
        mark=max(1, round(value)),  # a mark is a price: positive (RiskUpdate refuses 0)
        delta=max(-1_000_000, min(1_000_000, round(delta * 1_000_000))),
        gamma=round(gamma * spot * spot),
        vega=round(vega),
    )


@dataclass(frozen=True)
class Smile:
    """Implied volatility by log-moneyness k = ln(strike / spot), a parabola:
    atm + skew * k + curvature * k**2, kept within [floor, cap]. A negative skew prices
    puts (low strikes) above calls, as crypto and equity smiles usually do."""

    atm: float = 0.6
    skew: float = -0.15
    curvature: float = 0.5
    floor: float = 0.05
    cap: float = 3.0

    def vol(self, spot: float, strike: float) -> float:
        k = math.log(strike / spot)
        return min(self.cap, max(self.floor, self.atm + self.skew * k + self.curvature * k * k))


# ---------------------------------------------------------------------- series names


@dataclass(frozen=True)
class Series:
    """An option series by name: `underlying` (ETH), `expiry` (unix seconds, 08:00 UTC),
    `strike` in USD, call or put."""

    underlying: str
    expiry: int
    strike: Decimal
    call: bool

    @property
    def symbol(self) -> str:
        day = datetime.fromtimestamp(self.expiry, UTC)
        strike = format(self.strike.normalize(), "f")
        return f"{self.underlying}-{day.day}{MONTHS[day.month - 1]}{day.year % 100:02d}-{strike}-{'C' if self.call else 'P'}"

    def strike_units(self, lot: str) -> int:
        """The strike in collateral units (1e-6 USD) per lot of `lot` base units; it must
        be a whole number of units."""
        units = self.strike * Decimal(10**6) * Decimal(lot)
        if units != units.to_integral_value() or units <= 0:
            raise ValueError(f"{self.symbol}: strike is not a whole number of units per lot of {lot}")
        return int(units)

    def years_left(self, now: int) -> float:
        return max(0, self.expiry - now) / SECONDS_PER_YEAR


_SYMBOL = re.compile(r"^([A-Z0-9]{1,10})-(\d{1,2})([A-Z]{3})(\d{2})-([0-9]+(?:\.[0-9]+)?)-([CP])$")


def parse_series(symbol: str) -> Series:
    """`ETH-27DEC26-3000-C` as a Series; ValueError naming what is wrong."""
    match = _SYMBOL.match(symbol.strip().upper())
    if match is None:
        raise ValueError(f"{symbol!r} is not a series name like ETH-27DEC26-3000-C")
    underlying, day, month, year, strike, kind = match.groups()
    if month not in MONTHS:
        raise ValueError(f"{symbol!r}: unknown month {month}")
    try:
        date = datetime(2000 + int(year), MONTHS.index(month) + 1, int(day), EXPIRY_HOUR, tzinfo=UTC)
        value = Decimal(strike)
    except (ValueError, InvalidOperation) as e:
        raise ValueError(f"{symbol!r}: {e}") from None
    if value <= 0:
        raise ValueError(f"{symbol!r}: the strike must be positive")
    return Series(underlying, int(date.timestamp()), value, kind == "C")


def expiry_at(day: datetime) -> int:
    """Unix seconds of 08:00 UTC on `day`'s date."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return int((start + timedelta(hours=EXPIRY_HOUR)).timestamp())
