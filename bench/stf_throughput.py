"""Trades per second through `apply`, with every signature checked and the state root
recomputed after every transaction, on a realistic mix: a few market makers quoting
resting orders that many takers fill in pieces, on several markets.

    python bench/stf_throughput.py [--trades N] [--no-signature-memo]

The last line of output is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from typing import Any

from rollup.stf import apply, builders, signing
from rollup.stf.constants import ORDER_SLOTS
from rollup.stf.fork import Context
from rollup.stf.genesis import genesis_state
from rollup.stf.signing import address_of
from rollup.stf.state import Config
from rollup.stf.transactions import AdvanceTime, Order

PROFILE = os.environ.get("STF_PROFILE")


def build(args: argparse.Namespace) -> tuple[Any, Context, list[bytes]]:
    """A state with funded makers and takers, and `args.trades` encoded trades."""
    rng = random.Random(7)

    oracle_keys = [bytes([0xA0 + i]) * 32 for i in range(3)]
    config = Config(31337, b"\x42" * 20, tuple(address_of(k) for k in oracle_keys), 2)
    keys = [rng.randbytes(32) for _ in range(args.makers + args.takers)]
    owners = [address_of(k) for k in keys]
    state = genesis_state(address_of(b"\x99" * 32))
    queues = builders.L1Queues()
    for i, owner in enumerate(owners):
        queues.deposit(i + 1, owner, 10**12)
    context = Context(config, 1_000, queues.deposit_heads, queues.forced_heads)
    setup = [AdvanceTime(1_000).encode()] + [d.encode() for d in queues.deposits]
    prices = {0: 300_000, 1: 1_000_000, 2: 50_000}
    from rollup.stf.state import Market
    state.set_market(Market(id=2, step_size=1, tick_size=1))
    for market, price in prices.items():
        setup.append(builders.oracle_update(
            market, 1_000, [(0, price, oracle_keys[0]), (1, price, oracle_keys[1])], context).encode())
    for tx in setup:
        assert apply(state, tx, context).ok

    # Pre-build the trades (signing is the clients' cost, not the STF's).
    txs = []
    maker_nonce = [0] * args.makers
    resting: list[tuple[Order, int, int]] = []  # (order, maker index, remaining)
    taker_nonce = [0] * args.takers
    for _ in range(args.trades):
        if not resting or rng.random() < 0.2:
            m = rng.randrange(args.makers)
            market = rng.choice(list(prices))
            maker_nonce[m] += 1
            is_buy = rng.random() < 0.5
            price = prices[market] + (-1 if is_buy else 1) * rng.randrange(1, 50)
            order = Order(m + 1, market, is_buy, rng.randrange(50, 500), price, 500, maker_nonce[m], 10**9)
            # the new order takes its nonce slot: an older order there is dead (spec 7, Trade)
            resting = [r for r in resting if not (r[1] == m and r[0].nonce % ORDER_SLOTS == order.nonce % ORDER_SLOTS)]
            resting.append((order, m, order.size))
        index = rng.randrange(len(resting))
        order, m, remaining = resting[index]
        t = rng.randrange(args.takers)
        taker_nonce[t] += 1
        fill = min(remaining, rng.randrange(1, 40))
        taker = Order(args.makers + t + 1, order.market, not order.is_buy, fill,
                      order.limit_price, 1_000, taker_nonce[t], 10**9)
        if remaining == order.size:  # its first fill posts the maker order; later ones name it
            txs.append(builders.trade(order, keys[m], taker, keys[args.makers + t], fill, context,
                                      200, 500).encode())
        else:
            txs.append(builders.fill(order, taker, keys[args.makers + t], fill, context, 200, 500).encode())
        if remaining - fill == 0:
            resting.pop(index)
        else:
            resting[index] = (order, m, remaining - fill)
    return state, context, txs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=20_000)
    parser.add_argument("--makers", type=int, default=4)
    parser.add_argument("--takers", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs on fresh copies; the best is reported")
    parser.add_argument("--no-signature-memo", action="store_true",
                        help="recover every signature from scratch, even a maker order's seen before")
    args = parser.parse_args()
    state, context, txs = build(args)
    prices = (0, 1, 2)

    if args.no_signature_memo:
        signing._CACHE_LIMIT = 0
    runs = []
    for _ in range(args.repeat):
        runs.append(run(state.copy(), context, txs))
    best = min(runs, key=lambda r: r[0])
    hashes, hash_us = hashing_cost(state.copy(), context, txs[:2_000])
    elapsed, ok = best
    figures = {
        "trades": len(txs),
        "accepted": ok,
        "seconds": round(elapsed, 3),
        "trades_per_s": round(len(txs) / elapsed),
        "us_per_trade": round(elapsed / len(txs) * 1e6, 1),
        "runs_trades_per_s": [round(len(txs) / r[0]) for r in runs],
        "keccak_per_trade": round(hashes, 1),
        "hashing_us_per_trade": round(hashes * hash_us, 1),
        "signature_memo": not args.no_signature_memo,
        "makers": args.makers,
        "takers": args.takers,
        "markets": len(prices),
    }
    print(f"{ok}/{len(txs)} trades accepted; best of {args.repeat} runs: {elapsed:.2f}s, "
          f"{figures['trades_per_s']} trades/s ({figures['us_per_trade']} us per trade, "
          f"every signature checked, root after each); all runs: {figures['runs_trades_per_s']}")
    print(f"hashing: {figures['keccak_per_trade']} keccak calls per trade, about "
          f"{figures['hashing_us_per_trade']} us of hashing per trade")
    print(json.dumps(figures))


def hashing_cost(state: Any, context: Context, txs: list[bytes]) -> tuple[float, float]:
    """(keccak calls per trade, microseconds per keccak of a 128-byte tree node)."""
    from rollup.stf import hashing, merkle

    real = hashing.keccak_256
    calls = 0

    def counting(data: bytes) -> Any:
        nonlocal calls
        calls += 1
        return real(data)

    hashing.keccak_256 = merkle.keccak_256 = counting
    try:
        for tx in txs:
            apply(state, tx, context)
            state.root()
    finally:
        hashing.keccak_256 = merkle.keccak_256 = real
    node = b"\x5a" * 128
    start = time.perf_counter()
    for _ in range(100_000):
        real(node).digest()
    per_hash_us = (time.perf_counter() - start) / 100_000 * 1e6
    return calls / len(txs), per_hash_us


def run(state: Any, context: Context, txs: list[bytes]) -> tuple[float, int]:
    """Apply every trade, computing the root after each; (seconds, accepted)."""
    signing._recovered.clear()  # each run recovers every signature at least once
    context.order_digests.clear()  # ... and hashes every order at least once
    if PROFILE:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = time.perf_counter()
    ok = 0
    for tx in txs:
        ok += apply(state, tx, context).ok
        state.root()
    elapsed = time.perf_counter() - start
    if PROFILE:
        profiler.disable()
        profiler.dump_stats(PROFILE)
    return elapsed, ok


if __name__ == "__main__":
    main()
