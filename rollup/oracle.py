"""The devnet's oracle feeder: k-of-n signing keys publish a bounded random walk (or
replay a price file) as signed OracleUpdate transactions, through the operator, and the
risk feed of the deployment's option series.

Each round, for every perpetual, every committee member signs the same (market, price,
timestamp); the timestamp is the rollup's current time (reports may not be newer than
it, nor older than the market's staleness window). The walk moves each price by at most
`step_ppm` per round and stays within `band_ppm` of where it started, well inside the
STF's per-update bound, so funding and liquidations happen on their own.

For every series before its expiry the committee signs a RiskUpdate: the mark and Greeks
of Black-Scholes (rollup/pricing.py) at the underlying's walk price, on the `Smile`'s
volatility for the series' strike, with the time left to expiry. Once a series has
expired, the committee signs its settlement (SettleSeries) at the underlying's price of
that round, once; the operator's keeper then settles every position in it.

    rollup oracle --operator-url URL --deployment FILE [--interval S] [--prices FILE]

A price file is JSON lines {"market": 0, "price": 300000}, replayed in order, one line
per market per round.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from .deploy import DEVNET_ORACLE_KEYS, Deployment
from .l1.rollup_client import config_of
from .pricing import SECONDS_PER_YEAR, Smile, quote
from .sdk import ApiError, Operator
from .stf import builders, products
from .stf.fork import Context
from .stf.state import Market

log = logging.getLogger("rollup.oracle")

START_PRICES = {0: 300_000, 1: 1_000_000}
"""ETH-USD 3,000 USD (lot 0.0001), BTC-USD 100,000 USD (lot 0.00001)."""


class RandomWalk:
    """Prices that move by at most `step_ppm` per step and stay within `band_ppm` of the start."""

    def __init__(self, start: dict[int, int], step_ppm: int = 2_000, band_ppm: int = 50_000, seed: int = 1) -> None:
        self.start = dict(start)
        self.prices = dict(start)
        self.step_ppm = step_ppm
        self.band_ppm = band_ppm
        self.rng = random.Random(seed)

    def next(self, market: int) -> int:
        price = self.prices[market]
        move = price * self.rng.randint(-self.step_ppm, self.step_ppm) // 1_000_000
        low = self.start[market] * (1_000_000 - self.band_ppm) // 1_000_000
        high = self.start[market] * (1_000_000 + self.band_ppm) // 1_000_000
        self.prices[market] = min(high, max(low, price + move, 1))
        return self.prices[market]


def replay(path: Path) -> Iterator[tuple[int, int]]:
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            yield int(row["market"]), int(row["price"])


class Feeder:
    def __init__(self, operator: Operator, deployment: Deployment, keys: Sequence[bytes] = DEVNET_ORACLE_KEYS,
                 walk: RandomWalk | None = None, prices: Path | None = None) -> None:
        self.operator = operator
        self.context = Context(config_of(deployment), 0)
        self.keys = list(keys)
        self.walk = walk or RandomWalk(START_PRICES)
        self.replayed = replay(prices) if prices else None
        self.last_time: dict[int, int] = {}
        self.series: list[Market] = [m for _, m in deployment.listing() if m.product != products.PERPETUAL]
        self.smile = Smile()
        self.settled: set[int] = set()

    def round(self) -> int:
        """Publish one price per market; return how many the rollup accepted."""
        now = int(self.operator.call("status")["time"])
        accepted = 0
        for market in sorted(self.walk.prices):
            if self.last_time.get(market) == now:
                continue  # the rollup's clock has not moved: a report would not be newer
            if self.replayed is not None:
                try:
                    market, price = next(self.replayed)
                except StopIteration:
                    return accepted
                self.walk.prices[market] = price  # (the spot the risk feed prices series on)
            else:
                price = self.walk.next(market)
            reports = [(i, price, key) for i, key in enumerate(self.keys)]
            tx = builders.oracle_update(market, now, reports, self.context).encode()
            try:
                self.operator.call("submit_oracle", tx="0x" + tx.hex())
                self.last_time[market] = now
                accepted += 1
            except ApiError as exc:
                log.info("price for market %d refused: %s", market, exc)
        return accepted + self.risk_round(now)

    def risk_round(self, now: int) -> int:
        """The risk feed of every series (a RiskUpdate before its expiry, its SettleSeries
        once after); return how many the rollup accepted."""
        accepted = 0
        for series in self.series:
            spot = self.walk.prices.get(series.underlying)
            if spot is None or series.id in self.settled or self.last_time.get(series.id) == now:
                continue
            if now < series.expiry:
                q = quote(spot, series.strike, (series.expiry - now) / SECONDS_PER_YEAR,
                          self.smile.vol(spot, series.strike), series.product == products.CALL)
                marks = [(i, q.mark, q.delta, q.gamma, q.vega, key) for i, key in enumerate(self.keys)]
                tx = builders.risk_update(series.id, now, marks, self.context).encode()
            else:
                prices = [(i, spot, key) for i, key in enumerate(self.keys)]
                tx = builders.settle_series(series.id, series.expiry, prices, self.context).encode()
            try:
                self.operator.call("submit_oracle", tx="0x" + tx.hex())
                self.last_time[series.id] = now
                accepted += 1
                if now >= series.expiry:
                    self.settled.add(series.id)
            except ApiError as exc:
                if exc.data == "ALREADY_SETTLED":
                    self.settled.add(series.id)  # (settled before this feeder started)
                log.info("risk feed for market %d refused: %s", series.id, exc)
        return accepted

    def run(self, interval: float, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.round()
            except (ApiError, OSError) as exc:
                log.warning("oracle round failed: %s", exc)
            stop.wait(interval)
