"""Every fraud mode of the operator (rollup/operator/fraud.py) produces a batch that a
watcher's replay finds wrong and that is proven wrong on L1 in one transaction."""

from __future__ import annotations

import pytest
from web3.logs import DISCARD

from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.rollup_client import REVERTED, RollupL1
from rollup.l1.world import World
from rollup.operator.fraud import CATALOG
from rollup.stf import apply
from rollup.stf.transactions import SettlePosition

KEYS = [bytes(a.key) for a in dev_accounts(8)]
DEPLOYER, PROPOSER, CHALLENGER = KEYS[0], KEYS[1], KEYS[2]
USERS = KEYS[3:7]


def test_the_catalog_has_the_required_kinds() -> None:
    assert len(CATALOG) >= 14
    assert {"mint", "wrong-pnl", "skip-funding", "bad-signature", "overfill", "under-margin",
            "fake-withdrawal", "wrong-liquidation", "skip-deposit", "ignore-forced",
            "malformed-as-valid", "wrong-root"} <= set(CATALOG)
    # options: a wrong settlement, a wrong portfolio margin, a trade under the risk feed's
    # margin, an ignored expiry
    assert {"wrong-settlement", "wrong-portfolio-margin", "under-risk-margin", "ignore-expiry"} <= set(CATALOG)


@pytest.mark.parametrize("kind", sorted(CATALOG))
def test_each_fraud_is_found_and_proven(world: World, kind: str) -> None:
    # an honest batch with an occasion for every kind: two deposits, a forced request,
    # trades (one leaving positions open), time; options: calls written on a daily and a
    # weekly series, the daily one expired, settled and its positions closed, the weekly
    # one marked again (the world's deployment lists the devnet's series)
    users = world.users
    daily, weekly = world.series()[0], next(m for m in world.series() if m.expiry > world.series()[0].expiry)
    world.post([world.trade(users[0], users[1], 0, True, 50, 300_000),
                world.trade(users[1], users[0], daily.id, True, 10, daily.oracle_price),
                world.trade(users[3], users[2], weekly.id, True, 10, weekly.oracle_price)])
    users[2].chain.deposit(users[2].address, 1_000_000)
    users[3].chain.deposit(users[3].address, 2_000_000)
    users[1].chain.force_withdraw(1_000_000)
    world.travel(daily.expiry - world.now() + 5)  # past the daily expiry
    spot = world.state.markets[daily.underlying].oracle_price  # type: ignore[union-attr]
    txs = [world.advance(), *world.new_deposits(), *world.new_forced(),
           world.trade(users[2], users[3], 1, False, 5, 1_000_000),
           world.settle_series(daily.id, spot + spot // 20), SettlePosition(users[1].account, daily.id).encode(),
           SettlePosition(users[0].account, daily.id).encode(), world.risk_update(weekly.id, timestamp=world.now())]
    timestamp = world.now()
    context = world.context(timestamp)
    pre = world.state.copy()
    honest = pre.copy()
    roots = []
    for tx in txs:
        assert apply(honest, tx, context).applied
        roots.append(honest.root())

    fraud = CATALOG[kind](pre.copy(), list(txs), list(roots), context)
    assert fraud is not None, f"{kind} found no occasion"
    posted_txs, posted_roots = fraud
    batch_id, _ = world.proposer.submit(posted_txs, posted_roots, timestamp)

    # a watcher's replay: the first step whose posted root is not the true one
    state = pre.copy()
    for step, tx in enumerate(posted_txs):
        before = state.copy()
        apply(state, tx, context)
        if state.root() != posted_roots[step]:
            break
    else:
        pytest.fail(f"{kind}: every posted root is true")
    challenger = RollupL1(L1(world.url, CHALLENGER), world.deployment)
    receipt = challenger.challenge(batch_id, step, posted_txs, posted_roots, before)
    assert challenger.rollup.events.FraudProven().process_receipt(receipt, errors=DISCARD)
    assert challenger.batch(batch_id).status == REVERTED
