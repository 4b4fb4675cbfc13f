"""L1 gas of the rollup, measured on a real EVM: batch submission per trade and L1 bytes
per trade, the gas of a fraud proof for each transaction type (its commitment and its
reveal, and the reward's claim), and the user operations (deposit, withdrawal claim,
forced request, freeze, escape), on the devnet's markets (two perpetuals and 32 option
series, rollup/listing.py).

    python bench/gas.py [--l1-rpc URL] [--trades 200] [--fills-per-maker 4]

Two submissions are measured, each a batch as the operator posts it (the time, a price
for each market, then the trades): the realistic mix, where every maker order is filled
`--fills-per-maker` times (its first fill a Trade that posts it, the others Fills that
name it) and every taker order once; and the worst case, every maker order filled once
(every trade a Trade). Bytes per trade are the submitting transaction's whole input
(selector, ABI, transactions, roots) over the trades.

Without --l1-rpc it starts our py-evm node on a free port. The last line of output is one
JSON object: l1_bytes_per_trade and submit_gas_per_trade (the mix), worst_l1_bytes_per_trade
and worst_submit_gas_per_trade, max_proof_gas (the heaviest reveal), proof_gas ({type:
reveal gas}), commit_gas, claim_reward and the rest of the table.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.logs import DISCARD
from web3.types import RPCEndpoint

from rollup.cli import wait_for_rpc
from rollup.deploy import Params, deploy
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.rollup_client import RollupL1
from rollup.l1.world import SCENARIOS, World, make_world
from rollup.listing import devnet_listing
from rollup.stf import builders

KEYS = [bytes(a.key) for a in dev_accounts(8)]
DEPLOYER, PROPOSER, CHALLENGER = KEYS[0], KEYS[1], KEYS[2]
USERS = KEYS[3:7]
WINDOW = 3_600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snapshot(w3: Web3) -> Any:
    return w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]


def revert(w3: Web3, snap: Any) -> None:
    w3.provider.make_request(RPCEndpoint("evm_revert"), [snap])


def fresh_world(url: str, deployment: Any) -> World:
    return make_world(url, deployment, PROPOSER, USERS, deposit=500_000_000)


PRICES = {0: 300_000, 1: 1_000_000}


def submission(world: World, trades: int, fills_per_maker: int) -> dict[str, float]:
    """Gas and calldata of one batch of `trades` trades (two markets, makers among two
    users, takers among two others): each maker order of `fills_per_maker` lots filled one
    lot at a time, first by a Trade, then by Fills; each taker order filled once. The
    batch opens as the operator's do: the time, then a price for each market."""
    world.travel(1)
    txs = [world.advance()] + [world.oracle_update(m, p, timestamp=world.now()) for m, p in PRICES.items()]
    users = world.users
    maker_order = None
    for i in range(trades):
        market = (i // fills_per_maker) % 2
        taker = users[2 + i % 2]
        if i % fills_per_maker == 0:
            maker = users[(i // fills_per_maker) % 2]
            maker_order = world.order(maker, market, (i // fills_per_maker) % 3 == 0, fills_per_maker, PRICES[market])
            t = world.order(taker, market, not maker_order.is_buy, 1, PRICES[market])
            txs.append(builders.trade(maker_order, maker.key, t, taker.key, 1, world.context(), 200, 500).encode())
        else:
            assert maker_order is not None
            txs.append(world.fill(maker_order, taker, 1))
    posted = world.post(txs)
    assert all(r.ok for r in posted.receipts), [r for r in posted.receipts if not r.ok][:3]
    trade_txs = txs[1 + len(PRICES):]
    return {
        "batch_gas": posted.gas_used,
        "submit_gas_per_trade": round(posted.gas_used / trades, 1),
        "l1_bytes_per_trade": round(posted.calldata_bytes / trades, 1),
        "batch_bytes": posted.calldata_bytes,
        "trade_tx_bytes": len(trade_txs[0]),
        "fill_tx_bytes": len(trade_txs[1]) if fills_per_maker > 1 else 0,
    }


def proofs(url: str, deployment: Any, w3: Web3) -> tuple[dict[str, int], dict[str, int]]:
    """The reveal's gas per transaction type; the commitment's and the reward claim's."""
    challenger = RollupL1(L1(url, CHALLENGER), deployment)
    gas, other = {}, {}
    for kind, scenario in SCENARIOS.items():
        snap = snapshot(w3)
        world = fresh_world(url, deployment)
        txs = scenario(world)
        step = len(txs) - 1
        lying = world.post(txs, lie_at=step)
        claimed = challenger.computed_root(lying.id, step, lying.txs, lying.roots, lying.pre_states[step])
        salt = b"\x01" * 32
        other["commit"] = int(challenger.commit(challenger.commitment(lying.id, step, claimed, salt))["gasUsed"])
        receipt = challenger.l1.send(challenger.challenge_call(lying.id, step, lying.txs, lying.roots,
                                                               lying.pre_states[step], salt))
        assert challenger.rollup.events.FraudProven().process_receipt(receipt, errors=DISCARD), kind
        gas[kind] = int(receipt["gasUsed"])
        world.travel(int(deployment.params["reward_delay"]))
        other["claim_reward"] = int(challenger.claim_reward(lying.id)["gasUsed"])
        revert(w3, snap)
    return gas, other


def user_operations(url: str, deployment: Any, w3: Web3) -> dict[str, int]:
    snap = snapshot(w3)
    world = fresh_world(url, deployment)
    user = world.users[0]
    out = {}
    user.chain.l1.send(user.chain.token.functions.approve(user.chain.bridge.address, 10**6))
    out["deposit"] = int(user.chain.l1.send(user.chain.bridge.functions.deposit(user.address, 10**6))["gasUsed"])
    world.travel(1)
    posted = world.post([world.withdraw(user, 1_000_000)])
    world.travel(WINDOW + 1)
    world.proposer.finalize()
    out["withdrawal_claim"] = int(user.chain.claim(posted.id, 0, world.state)["gasUsed"])
    out["forced_request"] = int(user.chain.force_withdraw(1_000_000)["gasUsed"])
    world.travel(int(deployment.params["inclusion_delay"]) + WINDOW + 1)
    out["freeze"] = int(user.chain.freeze(0, world.state)["gasUsed"])
    out["escape"] = int(user.chain.escape(user.account, world.state)["gasUsed"])
    revert(w3, snap)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--l1-rpc", help="an L1 node with the evm_snapshot/evm_revert dev methods")
    parser.add_argument("--trades", type=int, default=200, help="trades in each submission batch")
    parser.add_argument("--fills-per-maker", type=int, default=4, help="fills of each maker order in the mix")
    args = parser.parse_args()
    node = None
    url = args.l1_rpc
    if url is None:
        port = free_port()
        log = open(Path(tempfile.gettempdir()) / f"bench-gas-l1-{port}.log", "w")  # noqa: SIM115
        node = subprocess.Popen([sys.executable, "-m", "rollup", "l1", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        if not wait_for_rpc(url, 60, node):
            raise SystemExit("the L1 node did not start")
    try:
        w3 = Web3(Web3.HTTPProvider(url))
        deployer = L1(url, DEPLOYER)
        now = int(deployer.w3.eth.get_block("latest")["timestamp"])
        deployment = deploy(deployer, params=Params(challenge_window=WINDOW, inclusion_delay=2 * WINDOW,
                                                    sequencer=L1(url, PROPOSER).address),
                            listing=devnet_listing(now))  # the devnet's markets: 2 perpetuals, 32 series
        snap = snapshot(w3)
        figures: dict[str, Any] = submission(fresh_world(url, deployment), args.trades, args.fills_per_maker)
        revert(w3, snap)
        snap = snapshot(w3)  # (a snapshot is reverted to once)
        worst = submission(fresh_world(url, deployment), args.trades, 1)
        revert(w3, snap)
        figures["worst_l1_bytes_per_trade"] = worst["l1_bytes_per_trade"]
        figures["worst_submit_gas_per_trade"] = worst["submit_gas_per_trade"]
        proof_gas, other = proofs(url, deployment, w3)
        figures["max_proof_gas"] = max(proof_gas.values())
        figures["proof_gas"] = proof_gas
        figures["commit_gas"] = other["commit"]
        figures["claim_reward"] = other["claim_reward"]
        figures.update(user_operations(url, deployment, w3))
    finally:
        if node is not None:
            node.terminate()
            node.wait(10)

    print(f"batch of {args.trades} trades, each maker order filled {args.fills_per_maker} times: "
          f"{figures['batch_gas']:,} gas; per trade {figures['submit_gas_per_trade']:,} gas and "
          f"{figures['l1_bytes_per_trade']} L1 bytes (a Trade {figures['trade_tx_bytes']} bytes, a Fill "
          f"{figures['fill_tx_bytes']})")
    print(f"worst case, every maker order filled once: per trade {figures['worst_submit_gas_per_trade']:,} gas "
          f"and {figures['worst_l1_bytes_per_trade']} L1 bytes")
    print(f"fraud proof: a commitment ({figures['commit_gas']:,} gas), then the reveal, by transaction type "
          f"(and the reward's claim, {figures['claim_reward']:,} gas):")
    for kind, gas in proof_gas.items():
        print(f"  {kind:<26}{gas:>10,}")
    for name in ("deposit", "withdrawal_claim", "forced_request", "freeze", "escape"):
        print(f"{name:<28}{figures[name]:>10,}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
