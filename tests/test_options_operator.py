"""Option series on a running operator: a deployment listing the devnet's series (the
perpetuals and 12 calls and puts, rollup/listing.py), the feeder's risk feed marking every
series, a call sold and bought through the API, the series' expiry reached on L1, its
settlement signed by the committee and each position settled by the operator's keeper.
Every unit of collateral is accounted for."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from web3.types import RPCEndpoint

from rollup.deploy import Deployment
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.rollup_client import RollupL1
from rollup.oracle import Feeder, RandomWalk
from rollup.sdk import ApiError, Operator, Trader
from tests.conftest import devnet_operator, wait_for

KEYS = [bytes(a.key) for a in dev_accounts(8)]
ALICE, BOB = KEYS[5], KEYS[6]


@pytest.fixture(scope="module")
def setup(l1_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with devnet_operator(l1_url, tmp_path_factory.mktemp("options")) as running:
        yield {**running, "l1": l1_url}


def test_series_are_marked_traded_expired_and_settled(setup: dict[str, Any]) -> None:
    operator: Operator = setup["operator"]
    deployment: Deployment = setup["deployment"]
    for key in (ALICE, BOB):
        user = RollupL1(L1(setup["l1"], key), deployment)
        user.deposit(user.l1.address, 50_000_000)
    alice = Trader.from_deployment(operator, ALICE, deployment)
    bob = Trader.from_deployment(operator, BOB, deployment)
    wait_for(lambda: alice.account and bob.account and operator.call("status")["time"], 30, "accounts")

    # the feeder's first round: two index prices and the risk feed of all 32 series (the
    # issue's floor: 32 series open at once beside the perpetuals)
    feeder = Feeder(operator, deployment, walk=RandomWalk({0: 300_000, 1: 1_000_000}, step_ppm=0))
    assert feeder.round() == 34
    markets = {m["id"]: m for m in operator.call("markets")}
    series = [m for m in markets.values() if m["product"] != "perpetual"]
    # every series marked, its Greeks a long option's signs (a day-long series 13% out of
    # the money has a vega below one unit: 0); most of them with every Greek nonzero
    assert len(series) == 32 and all(m["price"] > 0 and m["gamma"] >= 0 and m["vega"] >= 0 for m in series)
    assert sum(1 for m in series if m["gamma"] > 0 and m["vega"] > 0) >= 24
    assert {m["product"] for m in series} == {"call", "put"}
    call = markets[2]
    assert call["symbol"].startswith("ETH-") and call["symbol"].endswith("-3000-C") and call["strike"] == 300_000
    put = markets[6]
    assert put["symbol"] == call["symbol"][:-1] + "P"
    assert 0 < call["delta"] < 1_000_000 and put["delta"] < 0  # a call's delta, a put's
    listed = subprocess.run([sys.executable, "-m", "rollup.client", "--deployment", str(setup["path"]),
                             "--operator-url", operator.url, "markets"], capture_output=True, text=True, check=True)
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert sum(1 for row in rows if row and row[0].count("-") == 3) == 32  # a row per series
    row = next(r for r in rows if r and r[0] == call["symbol"])
    assert row[1:5] == ["2", "call", "ETH-USD", "300000"] and int(row[7]) == call["price"]

    # Alice writes 10 calls, Bob buys them at the mark
    price = call["price"]
    resting = alice.order(2, "sell", 10, price)
    assert resting["status"] == "resting"
    taken = bob.order(2, "buy", 10, price, kind="ioc")
    assert taken["filled"] == 10
    assert {p["market"]: p["size"] for p in bob.info()["positions"]} == {2: 10}
    before = {who.account: who.info()["collateral"] for who in (alice, bob)}
    # Alice's portfolio: short 10 calls on ETH, the worst scenario the full move up
    book = alice.info()
    (eth,) = book["portfolio"]
    assert eth["underlying"] == 0 and eth["delta"] == -10 * call["delta"] and eth["gamma"] == -10 * call["gamma"]
    assert eth["worst_price_move_ppm"] == 50_000 and eth["worst_loss"] > 0
    assert eth["floors"] == 10 * 300_000 * 10_000 // 1_000_000  # 1% of the underlying's notional
    assert eth["maintenance_requirement"] == book["maintenance_requirement"]
    shown = subprocess.run([sys.executable, "-m", "rollup.client", "--deployment", str(setup["path"]),
                            "--operator-url", operator.url, "--key", "0x" + ALICE.hex(), "account"],
                           capture_output=True, text=True, check=True).stdout
    assert "portfolio margin by underlying" in shown and "+5.00%" in shown and call["symbol"] in shown

    # L1 passes the daily expiry (once the trades are on L1: a batch cannot outlive the
    # jump): the book closes, the committee settles at 3,150 USD
    wait_for(lambda: (s := operator.call("status"))["open_batch_txs"] == 0 and s["batches"]["cut"] == 0
             and s["batches"]["posted"] + s["batches"]["final"] >= 3, 30, "the trades posted")
    w3 = setup["w3"]
    latest = int(w3.eth.get_block("latest")["timestamp"])
    w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [call["expiry"] + 5])
    w3.provider.make_request(RPCEndpoint("evm_mine"), [])
    assert call["expiry"] > latest
    wait_for(lambda: operator.call("status")["time"] >= call["expiry"], 30, "the rollup's clock past expiry")
    with pytest.raises(ApiError, match="expired|SERIES_EXPIRED"):
        bob.order(2, "buy", 1, price)
    settle = Feeder(operator, deployment, walk=RandomWalk({0: 315_000, 1: 1_000_000}, step_ppm=0))
    settle.round()
    settled = {m["id"]: m for m in operator.call("markets")}
    assert settled[2]["settlement_price"] == 315_000 and settled[2]["price"] == 15_000  # S - K per lot
    daily = [m for m in settled.values() if m["product"] != "perpetual" and m["expiry"] == call["expiry"]]
    assert len(daily) == 16 and all(m["settlement_price"] for m in daily)
    weekly = [m for m in settled.values() if m["product"] != "perpetual" and m["expiry"] > call["expiry"]]
    assert len(weekly) == 16 and not any(m["settlement_price"] for m in weekly)

    # the keeper settles both positions: Bob is paid 10 x 15,000, Alice pays it
    wait_for(lambda: not alice.info()["positions"] and not bob.info()["positions"], 30, "the settlements")
    after = {who.account: who.info()["collateral"] for who in (alice, bob)}
    assert after[bob.account] - before[bob.account] == 150_000
    assert after[alice.account] - before[alice.account] == -150_000
    status = operator.call("status")
    total = sum(operator.call("account", account=i)["collateral"] for i in range(status["accounts"]))
    assert total + status["fee_pool"] + status["funding_pool"] + status["total_withdrawn"] == status["total_deposited"]
    assert operator.call("markets")[2]["open_interest"] == 0
