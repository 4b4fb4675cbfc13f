"""Writing calls and hedging them with the perpetual, on a running devnet, through the SDK.

    python examples/hedged_options.py [--deployment .devnet/deployment.json] [--calls 20]

Carol (dev account 7) writes calls on ETH to Dave (dev account 8), at the risk feed's
mark, on the nearest series at the money; her margin (the portfolio rule: the worst of 21
price and volatility scenarios, plus a floor for the short calls) is printed. She then
delta-hedges, buying the calls' delta in ETH perpetuals from Dave, and the script shows the
margin relief: the hedged book needs far less than the naked calls and the perpetuals
apart. Then it rolls to expiry: the L1 clock is moved past the series' expiry (a dev node's
`evm_setNextBlockTimestamp`), the committee's feeder signs the settlement price, and the
operator's keeper settles both positions at the payoff; each side's collateral moves by
exactly calls x payoff. The winner then withdraws its gain and claims it on L1 once final
(the dev node's clock moved past the challenge window): Dave the payoff, or Carol the
premium she kept when the call expires worthless; and the rollup's books balance to the
unit. Any failure exits non-zero. The dev keys are well known: for the devnet only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from web3 import Web3

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


def wait(what: str, predicate: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.3)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployment", default=".devnet/deployment.json")
    parser.add_argument("--operator-url", help="default: endpoints.json beside the deployment file, else :8550")
    parser.add_argument("--l1-rpc", help="default: the deployment file's")
    parser.add_argument("--calls", type=int, default=20_000, help="calls Carol writes, in lots (20,000 lots: 2 ETH)")
    parser.add_argument("--deposit", type=int, default=10_000, help="USD each trader deposits")
    args = parser.parse_args(argv)

    path = Path(args.deployment)
    deployment = Deployment.load(path)
    endpoints_file = path.parent / "endpoints.json"
    endpoints = json.loads(endpoints_file.read_text()) if endpoints_file.exists() else {}
    operator = Operator(args.operator_url or endpoints.get("operator_url") or "http://127.0.0.1:8550")
    l1_url = args.l1_rpc or deployment.l1_rpc
    operator.call("status")

    carol_account, dave_account = dev_accounts(9)[7:9]
    keys = {"carol": "0x" + bytes(carol_account.key).hex(), "dave": "0x" + bytes(dave_account.key).hex()}
    chains = {name: RollupL1(L1(l1_url, key), deployment) for name, key in keys.items()}
    traders = {name: Trader.from_deployment(operator, key, deployment) for name, key in keys.items()}
    carol, dave = traders["carol"], traders["dave"]

    # 1. deposits
    for name, chain in chains.items():
        done = deposit(chain, args.deposit * UNIT)
        wait_credited(operator, done["index"], timeout=60)
        print(f"1. {name} deposited {usd(done['amount'])} (account {traders[name].account})")

    # 2. the nearest ETH call at the money, marked by the risk feed
    def markets() -> dict[int, Any]:
        return {m["id"]: m for m in operator.call("markets")}

    now = int(operator.call("status")["time"])
    listed = wait("the risk feed's marks", lambda: [
        m for m in markets().values() if m["product"] == "call" and m["underlying"] == 0 and m["price"]
        and m["expiry"] > now + 60 and not m["settlement_price"]])
    perp = markets()[0]
    series = min(listed, key=lambda m: (m["expiry"], abs(m["strike"] - perp["price"])))
    print(f"2. {series['symbol']}: mark {series['price']} per lot, delta {series['delta'] / 1e6:.3f}, "
          f"cash gamma {series['gamma']}, vega {series['vega']}; ETH index {perp['price']}")

    # 3. Carol writes the calls; her naked requirement
    calls = args.calls
    resting = carol.order(series["id"], "sell", calls, series["price"])
    taken = dave.order(series["id"], "buy", calls, series["price"], kind="ioc")
    if resting["status"] != "resting" or taken["filled"] != calls:
        raise RuntimeError(f"the calls did not trade: {resting}, {taken}")
    naked = carol.info()["maintenance_requirement"]
    print(f"3. carol wrote {calls} calls to dave: her maintenance requirement {usd(naked)} (naked)")

    # 4. the delta hedge: the calls' delta in perpetuals, bought from Dave at the index
    hedge = round(calls * series["delta"] / 1_000_000)
    price = perp["price"]
    if hedge:
        dave.order(0, "sell", hedge, price)
        bought = carol.order(0, "buy", hedge, price, kind="ioc")
        if bought["filled"] != hedge:
            raise RuntimeError(f"the hedge did not trade: {bought}")
    info = carol.info()
    hedged = info["maintenance_requirement"]
    perp_alone = -(-hedge * price * perp["maintenance_margin_ppm"] // 1_000_000)
    (eth,) = info["portfolio"]
    print(f"4. carol bought {hedge} ETH perpetuals: net delta {eth['delta'] / 1e6:+.2f} lots; requirement "
          f"{usd(hedged)} against {usd(naked)} (calls) + {usd(perp_alone)} (perpetuals) apart: "
          f"relief {usd(naked + perp_alone - hedged)}")
    if hedged >= naked + perp_alone:
        raise RuntimeError("the hedge brought no margin relief")

    # 5. to expiry: once the trades are on L1, the L1 clock moves past the series' expiry
    wait("the trades on L1", lambda: (s := operator.call("status"))["open_batch_txs"] == 0
         and s["batches"]["cut"] == 0)
    before = {name: t.info()["collateral"] for name, t in traders.items()}
    w3 = Web3(Web3.HTTPProvider(l1_url))
    w3.provider.make_request("evm_setNextBlockTimestamp", [series["expiry"] + 5])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    print(f"5. L1 moved to {series['expiry'] + 5}, past the expiry; waiting for the settlement...")
    settled = wait("the committee's settlement", lambda: (m := markets()[series["id"]])["settlement_price"] and m)
    wait("the keeper's settlements", lambda: not any(p["market"] == series["id"]
                                                     for t in traders.values() for p in t.info()["positions"]))
    payoff = settled["price"]
    after = {name: t.info()["collateral"] for name, t in traders.items()}
    print(f"   settled at {settled['settlement_price']}: payoff {payoff} per lot (strike {series['strike']})")
    for name, sign in (("carol", -1), ("dave", 1)):
        print(f"   {name}: collateral {usd(before[name])} -> {usd(after[name])}")
        if after[name] - before[name] != sign * calls * payoff:
            raise RuntimeError(f"{name}'s collateral moved by {after[name] - before[name]}, not {sign * calls * payoff}")

    # 6. the winner takes its gain home (Dave the payoff; Carol, when the call expires
    # worthless, the premium she kept): a withdrawal on L2, final once the challenge window
    # has passed (the dev node's clock is moved past it), claimed on L1
    winner, amount = ("dave", calls * payoff) if payoff else ("carol", calls * series["price"])
    withdrawal = traders[winner].withdraw(amount)
    wait("the withdrawal on L1", lambda: (s := operator.call("status"))["open_batch_txs"] == 0
         and s["batches"]["cut"] == 0)
    window = int(deployment.params.get("challenge_window", 60))
    latest = int(w3.eth.get_block("latest")["timestamp"])
    w3.provider.make_request("evm_setNextBlockTimestamp", [latest + window + 1])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    proof = wait_withdrawal_proof(operator, int(withdrawal["index"]), timeout=120)
    chain = chains[winner]
    wallet_before = int(chain.token.functions.balanceOf(chain.l1.address).call())
    paid = claim(chain, proof)
    wallet_after = int(chain.token.functions.balanceOf(chain.l1.address).call())
    print(f"6. {winner} withdrew {usd(amount)} and claimed it on L1 from final batch {proof['batch']}: "
          f"the wallet {usd(wallet_before)} -> {usd(wallet_after)}")
    if paid["paid"] != amount or wallet_after - wallet_before != amount:
        raise RuntimeError(f"the claim paid {paid['paid']}, the wallet grew by {wallet_after - wallet_before}")

    # 7. every unit accounted for
    status = operator.call("status")
    total = sum(operator.call("account", account=i)["collateral"] for i in range(status["accounts"]))
    books = total + status["fee_pool"] + status["funding_pool"] + status["total_withdrawn"]
    print(f"7. collateral {usd(total)} + fee pool {usd(status['fee_pool'])} + funding pool "
          f"{usd(status['funding_pool'])} + withdrawn {usd(status['total_withdrawn'])} = {usd(books)}; "
          f"deposited {usd(status['total_deposited'])}")
    if books != status["total_deposited"]:
        raise RuntimeError("the rollup's books do not balance")
    print("done")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 - any failure: one line, exit 1
        kind = {ApiError: "operator refused", L1Error: "L1 refused"}.get(type(exc), type(exc).__name__)
        print(f"error: {kind}: {exc}", file=sys.stderr)
        sys.exit(1)
