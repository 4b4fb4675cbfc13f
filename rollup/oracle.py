"""The devnet's oracle feeder: k-of-n signing keys publish a bounded random walk (or
replay a price file) as signed OracleUpdate transactions, through the operator.

Each round, for every market, every committee member signs the same (market, price,
timestamp); the timestamp is the rollup's current time (reports may not be newer than
it, nor older than the market's staleness window). The walk moves each price by at most
`step_ppm` per round and stays within `band_ppm` of where it started, well inside the
STF's per-update bound, so funding and liquidations happen on their own.

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
from .sdk import ApiError, Operator
from .stf import builders
from .stf.fork import Context

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
        return accepted

    def run(self, interval: float, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.round()
            except (ApiError, OSError) as exc:
                log.warning("oracle round failed: %s", exc)
            stop.wait(interval)
