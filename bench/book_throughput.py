"""Orders per second through the operator's order book (`rollup.operator.book`): match then
apply, every fill committed, no STF. A random stream around a drifting mid price: 70%
limit, 15% IOC, 10% post-only, 5% cancels of a resting order; 500 accounts, tick 5,
step 10, expiries mostly far ahead (some short, so expired orders are met while matching).

    python bench/book_throughput.py [--orders N] [--seed S]

The last line of output is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from rollup.operator.book import Kind, OrderBook
from rollup.stf.transactions import Order

TICK, STEP = 5, 10
SIGNATURE = b"\x00" * 65


def stream(n: int, seed: int) -> list[tuple[int, Order | tuple[int, int], Kind]]:
    """(time, order or (account, nonce) to cancel, kind) for n operations."""
    rng = random.Random(seed)
    nonces = [0] * 500
    mid = 20_000
    ops: list[tuple[int, Order | tuple[int, int], Kind]] = []
    live: list[tuple[int, int]] = []
    for t in range(n):
        mid = max(1_000, mid + rng.choice((-TICK, 0, TICK)))
        if live and rng.random() < 0.05:
            ops.append((t, live.pop(rng.randrange(len(live))), Kind.LIMIT))
            continue
        account = rng.randrange(500)
        nonce = nonces[account] = nonces[account] + 1
        is_buy = rng.random() < 0.5
        r = rng.random()
        kind = Kind.LIMIT if r < 0.75 else Kind.IOC if r < 0.9 else Kind.POST_ONLY
        away = -1 if is_buy else 1  # direction away from the other side
        if kind is Kind.IOC:
            price = mid - away * rng.randrange(0, 10) * TICK
        else:
            price = mid + away * rng.randrange(-3, 25) * TICK
        price -= price % TICK
        expiry = t + (rng.randrange(50, 500) if rng.random() < 0.1 else 10**9)
        size = rng.randrange(1, 50) * STEP + (rng.randrange(STEP) if rng.random() < 0.1 else 0)
        ops.append((t, Order(account, 0, is_buy, size, price, 1_000, nonce, expiry), kind))
        live.append((account, nonce))
    return ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    ops = stream(args.orders, args.seed)
    book = OrderBook(0, TICK, STEP)
    fills = orders = cancels = rejected = 0
    start = time.perf_counter()
    for now, op, kind in ops:
        if isinstance(op, Order):
            result = book.match(op, SIGNATURE, kind, now=now)
            book.apply(result)
            orders += 1
            fills += len(result.fills)
            rejected += result.rejected is not None
        else:
            book.cancel(*op)
            cancels += 1
    elapsed = time.perf_counter() - start
    depth = book.depth(5)
    print(f"{orders} orders, {cancels} cancels, {fills} fills, {rejected} refused in {elapsed:.2f} s; "
          f"{len(book)} resting; best {depth.bids[:1]} / {depth.asks[:1]}")
    print(json.dumps({
        "orders": orders,
        "cancels": cancels,
        "fills": fills,
        "rejected": rejected,
        "resting": len(book),
        "seconds": round(elapsed, 3),
        "orders_per_s": round(orders / elapsed),
        "ops_per_s": round((orders + cancels) / elapsed),
        "fills_per_s": round(fills / elapsed),
    }))


if __name__ == "__main__":
    main()
