"""The operator's housekeeping transactions: funding ticks, liquidations, fee sweeps and
the settlement of option positions.

Funding: every `interval` seconds of rollup time, each priced market's funding index moves
by the premium of its order book over the oracle price, clamped to the market's rate cap:
    rate_ppm  = clamp((mid - oracle) * PPM / oracle, -max_rate, max_rate)   (per hour)
    delta     = rate_ppm * oracle * elapsed * FUNDING_SCALE / (PPM * 3600), rounded toward 0
(no book mid: rate 0, the index stays but the tick records the time). Positive: longs pay.

Liquidations: an account whose value (after funding) is below its maintenance requirement
has its largest position closed against the insurance fund; when the fund cannot carry a
bankrupt account's deficit, the position is deleveraged against the largest opposite one.
Fees: once the fee pool holds at least a minimum, it is swept into the insurance fund
(SweepFees), whose owner withdraws from it like any account: the way fees leave the rollup.
Settlement: once a series has its settlement price (the feeder's SettleSeries), every
position in it is closed at its payoff (SettlePosition), holder by holder.

The STF judges each of these like any other transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from ..stf import margin, products
from ..stf.constants import FUNDING_SCALE, INSURANCE_ACCOUNT, PPM, SECONDS_PER_HOUR
from ..stf.fork import Receipt
from ..stf.reasons import Reason
from ..stf.state import State
from ..stf.transactions import Deleverage, FundingTick, Liquidate, SettlePosition, SweepFees

Sequence = Callable[[bytes], Receipt]


def funding_delta(state: State, market_id: int, mid: int | None) -> int | None:
    """The funding tick for a market now, or None if none is due (no price, no time)."""
    market = state.markets[market_id]
    if market is None or market.oracle_price == 0:
        return None
    elapsed = state.globals.time - market.funding_time
    if elapsed <= 0:
        return None
    price = market.oracle_price
    rate = 0 if mid is None else (mid - price) * PPM // price
    rate = max(-market.max_funding_rate_ppm, min(market.max_funding_rate_ppm, rate))
    magnitude = abs(rate) * price * elapsed * FUNDING_SCALE // (PPM * SECONDS_PER_HOUR)
    return magnitude if rate >= 0 else -magnitude


def fund_ticks(state: State, mids: dict[int, int | None], interval: int, sequence: Sequence) -> int:
    """Post the due funding ticks; return how many applied."""
    done = 0
    for market in state.markets:
        if market is None or market.product != products.PERPETUAL or state.globals.time - market.funding_time < interval:
            continue  # (an option series pays no funding)
        delta = funding_delta(state, market.id, mids.get(market.id))
        if delta is not None and sequence(FundingTick(market.id, delta).encode()).ok:
            done += 1
    return done


def liquidate(state: State, sequence: Sequence, limit: int = 16) -> int:
    """Liquidate (or deleverage) accounts below maintenance; return how many steps applied."""
    markets = state.markets
    done = 0
    for account_id in sorted(state.accounts):
        if done >= limit:
            break
        account = state.accounts.get(account_id)
        if account_id == INSURANCE_ACCOUNT or account is None or not account.positions:
            continue
        settled, _ = margin.settle_funding(account, markets)
        if margin.value(settled, markets) >= margin.requirement(settled, markets, initial=False):
            continue
        position = max(settled.positions, key=lambda p: abs(p.size) * markets[p.market].oracle_price)  # type: ignore[union-attr]
        receipt = sequence(Liquidate(account_id, position.market, abs(position.size)).encode())
        if receipt.ok:
            done += 1
            continue
        if receipt.reason != Reason.INSURANCE_INSUFFICIENT:
            continue
        opposite = [
            (abs(a.size(position.market)), i) for i, a in state.accounts.items()
            if i not in (account_id, INSURANCE_ACCOUNT) and a.size(position.market) * position.size < 0
        ]
        if not opposite:
            continue
        size, counterparty = max(opposite)
        step = min(size, abs(position.size))
        if sequence(Deleverage(account_id, counterparty, position.market, step).encode()).ok:
            done += 1
    return done


FEE_SWEEP_MINIMUM = 1_000_000
"""Collateral units (1 USD) the fee pool must hold before it is swept."""


def sweep_fees(state: State, sequence: Sequence, minimum: int = FEE_SWEEP_MINIMUM) -> bool:
    """Sweep the whole fee pool into the insurance fund once it holds `minimum`; whether
    a sweep applied."""
    pool = state.globals.fee_pool
    return pool >= minimum and sequence(SweepFees(pool).encode()).ok


def settle_positions(state: State, sequence: Sequence, limit: int = 64) -> int:
    """Close the positions in settled series (SettlePosition), at most `limit` a round;
    return how many applied. One pass over the accounts' positions (a settled series takes
    no new ones, and shorts outlive the open interest, which counts longs)."""
    settled = {m.id for m in state.markets if m is not None and m.settlement_price}
    done = 0
    if not settled:
        return done
    for account_id in sorted(state.accounts):
        for market in [p.market for p in state.account(account_id).positions if p.market in settled]:
            if done >= limit:
                return done
            if sequence(SettlePosition(account_id, market).encode()).ok:
                done += 1
    return done
