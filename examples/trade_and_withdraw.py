"""Two traders on a running devnet, through the SDK: deposit, trade, withdraw, claim on L1.

    python examples/trade_and_withdraw.py [--deployment .devnet/deployment.json]

Alice (dev account 2) and Bob (dev account 3) deposit collateral on L1; Alice rests a limit
buy at the top of the ETH-USD book and Bob sells into it with an IOC order; Alice withdraws
part of her collateral, the script waits until the batch holding the withdrawal is final
(the challenge window passes), and claims it on L1. Every step and balance is printed; any
failure exits non-zero. The dev keys are well known: for the devnet only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rollup.deploy import Deployment
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1, L1Error
from rollup.l1.rollup_client import RollupL1
from rollup.sdk import (
    ApiError,
    Operator,
    Trader,
    claim,
    deposit,
    wait_credited,
    wait_withdrawal_proof,
)

UNIT = 10**6  # collateral units per USD


def usd(units: int) -> str:
    return f"{units / UNIT:,.6f} USD"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployment", default=".devnet/deployment.json")
    parser.add_argument("--operator-url", help="default: endpoints.json beside the deployment file, else :8550")
    parser.add_argument("--l1-rpc", help="default: the deployment file's")
    parser.add_argument("--market", type=int, default=0, help="market id (default 0, ETH-USD)")
    parser.add_argument("--deposit", type=int, default=10_000, help="USD each trader deposits")
    parser.add_argument("--withdraw", type=int, default=1_000, help="USD Alice withdraws")
    args = parser.parse_args(argv)

    deployment_path = Path(args.deployment)
    deployment = Deployment.load(deployment_path)
    endpoints_file = deployment_path.parent / "endpoints.json"
    endpoints = json.loads(endpoints_file.read_text()) if endpoints_file.exists() else {}
    operator_url = args.operator_url or endpoints.get("operator_url") or "http://127.0.0.1:8550"
    l1_url = args.l1_rpc or deployment.l1_rpc
    operator = Operator(operator_url)
    window = int(deployment.params.get("challenge_window", 60))
    status = operator.call("status")  # is the operator there before money moves?
    print(f"operator {operator_url} (rollup time {status['time']}), L1 {l1_url}, challenge window {window} s")

    alice_account, bob_account = dev_accounts(4)[2:4]
    keys = {"alice": "0x" + bytes(alice_account.key).hex(), "bob": "0x" + bytes(bob_account.key).hex()}
    chains = {name: RollupL1(L1(l1_url, key), deployment) for name, key in keys.items()}
    traders = {name: Trader.from_deployment(operator, key, deployment) for name, key in keys.items()}

    def wallet(name: str) -> int:
        chain = chains[name]
        return int(chain.token.functions.balanceOf(chain.l1.address).call())

    def balances(title: str) -> None:
        print(f"-- {title}")
        for name, trader in traders.items():
            info = trader.info()
            positions = ", ".join(f"market {p['market']}: {p['size']:+d} lots" for p in info["positions"]) or "none"
            print(f"   {name:5} account {info['account']}: collateral {usd(info['collateral'])}, "
                  f"value {usd(info['value'])}, positions {positions}; L1 wallet {usd(wallet(name))}")

    # 1. deposits on L1, credited by the operator
    for step, name in zip(("1.", "  "), traders, strict=True):
        done = deposit(chains[name], args.deposit * UNIT)
        print(f"{step} {name} deposited {usd(done['amount'])} on L1 (deposit #{done['index']}, account {done['account']})")
        wait_credited(operator, done["index"], timeout=60)
    alice, bob = traders["alice"], traders["bob"]
    print(f"   credited: alice is account {alice.account}, bob is account {bob.account}")
    balances("after the deposits")

    # 2. a maker limit order at the top of the book, and a taker IOC into it
    deadline = time.monotonic() + 60
    while not (market := next(m for m in operator.call("markets") if m["id"] == args.market))["price"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"market {args.market} has no oracle price (is the oracle feeder running?)")
        time.sleep(0.5)
    price = market["price"] if market["best_bid"] is None else market["best_bid"] + market["tick_size"]
    if market["best_ask"] is not None and price >= market["best_ask"]:
        raise RuntimeError(f"no room between the best bid and the best ask of {market['symbol']}")
    size = 100 * market["step_size"]
    maker = alice.order(args.market, "buy", size, price, kind="limit")
    print(f"2. alice: limit buy {size} {market['symbol']} @ {price} -> {maker['status']} (order {maker['id']}, "
          f"nonce {maker['nonce']})")
    if maker["status"] != "resting":
        raise RuntimeError(f"alice's order did not rest: {maker}")
    taker = bob.order(args.market, "sell", size // 2, price, kind="ioc")
    print(f"   bob: IOC sell {size // 2} @ {price} -> filled {taker['filled']} ("
          + ", ".join(f"{f['size']} @ {f['price']} against order {f['maker_order']}" for f in taker["fills"]) + ")")
    if taker["filled"] != size // 2 or any(f["maker_order"] != maker["id"] for f in taker["fills"]):
        raise RuntimeError(f"bob's order did not fill against alice's: {taker}")
    balances("after the trade")

    # 3. alice withdraws part of her collateral
    amount = args.withdraw * UNIT
    withdrawal = alice.withdraw(amount)
    index = int(withdrawal["index"])
    print(f"3. alice withdrew {usd(amount)} on L2: withdrawal #{index}")

    # 4. wait until a final batch holds it, then claim on L1
    print(f"4. waiting for the batch holding withdrawal #{index} to be final (challenge window {window} s)...")
    started = time.monotonic()
    proof = wait_withdrawal_proof(operator, index, timeout=window + 120)
    print(f"   final batch {proof['batch']} holds it (after {time.monotonic() - started:.1f} s)")
    before = wallet("alice")
    paid = claim(chains["alice"], proof)
    after = wallet("alice")
    print(f"5. claimed on L1: paid {usd(paid['paid'])} to {paid['owner']} (tx {paid['tx']})")
    print(f"   alice's L1 wallet: {usd(before)} -> {usd(after)}")
    if after - before != amount or paid["paid"] != amount:
        raise RuntimeError(f"alice's wallet grew by {after - before} units, expected {amount}")
    balances("at the end")
    print("done")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 - any failure: one line, exit 1
        kind = {ApiError: "operator refused", L1Error: "L1 refused"}.get(type(exc), type(exc).__name__)
        print(f"error: {kind}: {exc}", file=sys.stderr)
        sys.exit(1)
