"""Whole fraud proofs on the heaviest inputs, on L1: every proof must fit in 500,000 gas.

The pre-state is the heaviest the rules allow (16 markets; accounts, the insurance fund
among them, holding 16 positions each, funding owed in every market: tests'
`heavy_world`). A proposer posts a batch whose first step claims that state's root and
whose second step, the disputed transaction, a wrong one; a challenger commits and
reveals the proof of the second step, opening the heavy pre-state. The reveal's gas is
the whole proof's (the commitment is a separate ~46,000)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace

import pytest
from web3 import Web3
from web3.logs import DISCARD

from rollup.deploy import Deployment, deploy
from rollup.l1.client import L1
from rollup.l1.inbox import Inbox
from rollup.l1.rollup_client import RollupL1, config_of
from rollup.stf import apply, builders, margin, products
from rollup.stf.constants import INSURANCE_ACCOUNT, MAX_MARKETS, MAX_ORACLE_SIGNERS
from rollup.stf.reasons import Reason
from rollup.stf.signing import address_of
from rollup.stf.state import Account, Config, Market, Position
from rollup.stf.transactions import AdvanceTime, Deleverage, Liquidate, SettlePosition, SweepFees
from rollup.stf.witness import step_witness
from tests.conftest import DEV_KEYS, l1_snapshot, params_for
from tests.stf_world import ORACLE_KEYS, USER_KEYS, World
from tests.test_verifier_accounts import MARKETS, PRICE, heavy_world, with_options
from tests.test_verifier_trade import order

DEPLOYER, SEQUENCER, CHALLENGER = DEV_KEYS[0], DEV_KEYS[1], DEV_KEYS[2]
PROOF_GAS_LIMIT = 500_000
LIE = b"\x66" * 32
HEAVY_SECONDS = 3_604
"""How far heavy_world moves its clock after its start."""


@pytest.fixture(scope="module")
def deployment(l1_url: str) -> Iterator[Deployment]:
    with l1_snapshot(l1_url):
        yield deploy(L1(l1_url, DEPLOYER), params=params_for(SEQUENCER, challenge_window=3_600))


def heavy(deployment: Deployment, l1: L1, insurance: int, oracle_keys: tuple[bytes, ...] = ORACLE_KEYS) -> World:
    """heavy_world in this deployment's EIP-712 domain, its clock ending 10 s before the
    latest block (the batch runs at the state's time), the rest of the market table
    listed (48 more markets, held by no one: a witness gives their leaves), and the account tree dense around
    its accounts (ids 0-4): an account in every sibling subtree of their paths (ids 5-7
    and j * 4**level + 1), so that no sibling hash on a path is zero (calldata costs more
    per nonzero byte)."""
    ours = config_of(deployment)
    config = Config(ours.chain_id, ours.verifying_contract, tuple(address_of(k) for k in oracle_keys), 2)
    now = int(l1.w3.eth.get_block("latest")["timestamp"])
    world = heavy_world(config, insurance, start=now - HEAVY_SECONDS - 10)
    filler = Account(owner=b"\x99" * 20, collateral=1)
    ids = {5, 6, 7} | {j * 4**level + 1 for level in range(1, 10) for j in (1, 2, 3)}
    world.state.set_accounts({i: filler for i in ids})
    for i in range(MARKETS, MAX_MARKETS):  # every other id listed: a proof gives their leaves
        world.state.set_market(Market(id=i, oracle_price=PRICE + i, oracle_time=now, max_price_move_ppm=100_000,
                                      oracle_staleness=3_600))
    return world


@dataclass(kw_only=True)
class L1World(World):
    """A world whose deployment is on the L1 node at `l1_url` (where a forced request is queued)."""

    l1_url: str
    deployment: Deployment


def on_l1(world: World, l1_url: str, deployment: Deployment) -> L1World:
    return L1World(**{f.name: getattr(world, f.name) for f in fields(world)}, l1_url=l1_url, deployment=deployment)


def reveal_gas(deployment: Deployment, l1_url: str, world: World, tx: bytes) -> int:
    """Post [AdvanceTime, tx] claiming the world's state after step 0 and a wrong root after
    `tx`; prove step 1 on L1; the reveal's gas."""
    sequencer = RollupL1(L1(l1_url, SEQUENCER), deployment)
    challenger = RollupL1(L1(l1_url, CHALLENGER), deployment)
    if not sequencer.rollup.functions.bonds(sequencer.l1.address).call():
        sequencer.bond()
    state = world.state
    timestamp = state.globals.time
    txs = [AdvanceTime(timestamp).encode(), tx]
    roots = [state.root(), LIE]
    batch_id, _ = sequencer.submit(txs, roots, timestamp)
    salt = b"\x05" * 32
    claimed = challenger.computed_root(batch_id, 1, txs, roots, state)
    challenger.commit(challenger.commitment(batch_id, 1, claimed, salt))
    receipt = challenger.l1.send(challenger.challenge_call(batch_id, 1, txs, roots, state, salt))
    assert challenger.rollup.events.FraudProven().process_receipt(receipt, errors=DISCARD)
    return int(receipt["gasUsed"])


def _deleverage(w: World) -> bytes:
    return Deleverage(2, 3, 15, 50).encode()


def _liquidate(w: World) -> bytes:
    return Liquidate(2, 15, 50).encode()


def _trade(w: World) -> bytes:
    maker = order(w, 3, True, 10, market=15)
    taker = order(w, 4, False, 10, market=15)
    return builders.trade(maker, USER_KEYS[2], taker, USER_KEYS[3], 10, w.context, 200, 500).encode()


def _fill(w: World) -> bytes:
    maker = order(w, 3, True, 20, market=15)
    taker = order(w, 4, False, 10, market=15)
    assert w.apply(builders.trade(maker, USER_KEYS[2], taker, USER_KEYS[3], 10, w.context, 200, 500)).ok
    return builders.fill(maker, order(w, 1, False, 10, market=15), USER_KEYS[0], 10, w.context, 200, 500).encode()


def _withdraw(w: World) -> bytes:
    return builders.withdraw(4, 1_000_000, 77, 10**12, USER_KEYS[3], w.context).encode()


def _cancel(w: World) -> bytes:
    return builders.cancel(4, 78, USER_KEYS[3], w.context).encode()


def _sweep(w: World) -> bytes:
    g = w.state.globals
    w.state.set_globals(g.with_pools(1_000_000, g.funding_pool))
    return SweepFees(1_000_000).encode()


def _forced_close(w: L1World, market: int = 15) -> bytes:
    """Account 4 (16 positions) asks L1 to close its position in `market` against the
    fund (16 positions): the L1 queue's entry, which the witness's inbox reads."""
    owner = RollupL1(L1(w.l1_url, USER_KEYS[3]), w.deployment)
    owner.force_close(market)
    inbox = Inbox(owner.bridge, w.deployment.deploy_block)
    inbox.sync()
    _, forced_heads = inbox.heads(0, len(inbox.forced))
    w.context = replace(w.context, forced_heads=forced_heads)  # the queue as L1 holds it
    return inbox.forced[0].encode()


def _settle_position(w: World) -> bytes:
    """Market 15 made a call series settled in the money (in the option world it is one
    already; the perpetual world's becomes one): account 3 (16 positions) is paid."""
    series = w.state.market(15)
    assert series is not None
    price = series.oracle_price
    w.state.set_market(series._replace(
        product=products.CALL, underlying=7, strike=price // 2, expiry=1, settlement_price=price,
        oracle_price=price - price // 2, delta=0, gamma=0, vega=0, max_funding_rate_ppm=0, vol_shock_ppm=0,
    ))
    return SettlePosition(3, 15).encode()


CASES: dict[str, tuple[int, Callable[[L1World], bytes]]] = {
    "Deleverage": (1_000_000, _deleverage),  # the fund too poor to take the position
    "Liquidate": (10**12, _liquidate),
    "Trade": (10**12, _trade),
    "Fill": (10**12, _fill),
    "Withdraw": (10**12, _withdraw),
    "Cancel": (10**12, _cancel),
    "SweepFees": (10**12, _sweep),
    "ForcedRequest(close)": (10**12, _forced_close),
    "SettlePosition": (10**12, _settle_position),
}


def register_owners(l1_url: str, deployment: Deployment) -> None:
    """L1 accounts 1-4 for heavy_world's owners (deposits on their behalf), and gas money
    for the forced request of account 4's owner."""
    funder = RollupL1(L1(l1_url, DEPLOYER), deployment)
    for i, key in enumerate(USER_KEYS[:4]):
        owner = "0x" + address_of(key).hex()
        funder.deposit(L1(l1_url, key).address, 1)
        assert int(funder.bridge.functions.account_of(L1(l1_url, key).address).call()) == i + 1, owner
    funder.l1.transfer_eth(L1(l1_url, USER_KEYS[3]).address, 10**18)


def heavy_proof_gas(l1_url: str, deployment: Deployment, kind: str, options: bool) -> int:
    """The whole proof of CASES[kind] on the heavy pre-state (`with_options`: its markets
    8-15 option series), asserted to take the heavy path and to fit the limit."""
    insurance, build = CASES[kind]
    with l1_snapshot(l1_url):
        register_owners(l1_url, deployment)
        base = heavy(deployment, L1(l1_url), insurance)
        world = on_l1(with_options(base) if options else base, l1_url, deployment)
        tx = build(world)
        assert apply(world.state.copy(), tx, world.context).reason == Reason.OK, kind  # the heavy path
        gas = reveal_gas(deployment, l1_url, world, tx)
    if os.environ.get("ROLLUP_PRINT_GAS"):
        print(f"\n{kind}{' (option portfolios)' if options else ''}: whole proof on the heaviest inputs {gas:,} gas")
    assert gas <= PROOF_GAS_LIMIT, (kind, options, gas)
    return gas


@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_proof_on_the_heaviest_inputs_fits(l1_url: str, deployment: Deployment, kind: str) -> None:
    heavy_proof_gas(l1_url, deployment, kind, options=False)


OPTION_CASES = ("Trade", "Fill", "Liquidate", "Withdraw", "ForcedRequest(close)", "SettlePosition")
"""The rules that take an account's margin (the portfolio rule, on L1 the Portfolio contract),
and the settlement of a position."""


@pytest.mark.parametrize("kind", OPTION_CASES)
def test_a_proof_on_option_portfolios_fits(l1_url: str, deployment: Deployment, kind: str) -> None:
    """The heaviest inputs with option series: each opened account holds 8 perpetuals and
    8 series (its requirement by the portfolio rule: 8 underlyings, 21 scenarios each)."""
    heavy_proof_gas(l1_url, deployment, kind, options=True)


WIDEST = MAX_MARKETS - 1
"""The most market records a trade's witness can open: two accounts of 16 positions share
at least the traded market (neither may take a 17th), so they hold 31 series at most, and
the underlyings of those are 16 perpetuals at most (MAX_UNDERLYINGS): 47 records."""


SHARED = 2 * MARKETS - 1
"""The one series both accounts of a widest case hold."""


def widest_table(world: World, first: int, second: int, negative_funding: bool = False) -> None:
    """Markets 0-15 the perpetuals, 16-46 series, each on underlying (m - 16) % 16, and two
    accounts holding 16 of them each that share only series SHARED: `first` 16-31 (long,
    shorts among them), `second` 31-46 (the opposite), so that their witness opens WIDEST
    records and either portfolio nets 16 underlyings over 21 scenarios. With
    `negative_funding`, every market's funding index below zero (two's complement: more
    nonzero bytes in each record, which calldata charges)."""
    state = world.state
    template = state.market(MARKETS - 1)
    assert template is not None and template.product != products.PERPETUAL
    for m in range(MARKETS, WIDEST):
        u = (m - MARKETS) % MARKETS
        product = products.CALL if m % 2 == 0 else products.PUT
        state.set_market(template._replace(
            id=m, underlying=u, product=product, open_interest=10**6,
            delta=545_649 if product == products.CALL else -454_351,
        ))
    for m in range(MARKETS):  # the underlyings: each with a volatility shock
        perpetual = state.market(m)
        assert perpetual is not None
        if perpetual.product != products.PERPETUAL:
            perpetual = perpetual._replace(
                product=products.PERPETUAL, underlying=0, strike=0, expiry=0, delta=0, gamma=0, vega=0)
        state.set_market(perpetual._replace(vol_shock_ppm=100_000))
    for m in range(WIDEST if negative_funding else 0):
        market = state.market(m)
        assert market is not None
        state.set_market(market._replace(funding_index=-abs(market.funding_index) - 10**15))
    for account, start, sign in ((first, MARKETS, 1), (second, SHARED, -1)):
        held = tuple(Position(m, sign * (100 if m % 3 else -60), state.market(m).funding_index)  # type: ignore[union-attr]
                     for m in range(start, start + MARKETS))
        state.set_accounts({account: state.account(account)._replace(positions=held)})


def set_value(world: World, account: int, value: int) -> None:
    """Give `account` the collateral that makes its value, funding settled, `value`."""
    state = world.state
    raw = state.account(account)
    settled, _ = margin.settle_funding(raw, state.markets)
    worth = margin.value(settled._replace(collateral=0), state.markets)
    state.set_accounts({account: raw._replace(collateral=raw.collateral + value - worth - settled.collateral)})


def requirements(world: World, account: int) -> tuple[int, int]:
    """(maintenance, initial) requirement of `account`, funding settled."""
    settled, _ = margin.settle_funding(world.state.account(account), world.state.markets)
    return (margin.requirement(settled, world.state.markets, False),
            margin.requirement(settled, world.state.markets, True))


def widest(world: World, reduce_only: bool, negative_funding: bool = False) -> tuple[World, bytes]:
    """A trade between two option portfolios that opens WIDEST records (`widest_table`,
    accounts 3 and 4). Account 3 sells 10 lots of series SHARED to account 4; with
    `reduce_only` both are short of the initial margin before and after, and the trade
    passes by the reduce-only rule (margin.margin_ok's longest path: the maintenance
    requirement of the account before and after as well; `negative_funding`: widest_table's)."""
    widest_table(world, 3, 4, negative_funding)
    state = world.state
    assert {p.size for a in (3, 4) for p in state.account(a).positions if p.market == SHARED} == {100, -100}
    if reduce_only:
        for account in (3, 4):  # value halfway between the maintenance and the initial margin
            set_value(world, account, sum(requirements(world, account)) // 2)
    maker = order(world, 3, False, 10, market=SHARED)
    taker = order(world, 4, True, 10, market=SHARED)
    tx = builders.trade(maker, USER_KEYS[2], taker, USER_KEYS[3], 10, world.context, 200, 500).encode()
    after = state.copy()
    assert apply(after, tx, world.context).reason == Reason.OK
    for account in (3, 4):
        below = margin.value(after.account(account), after.markets) < margin.requirement(
            after.account(account), after.markets, True)
        assert below == reduce_only, account
    return world, tx


@pytest.mark.parametrize(("reduce_only", "negative_funding"), [(False, False), (True, False), (True, True)],
                         ids=["within-initial", "reduce-only", "reduce-only-negative-funding"])
def test_the_widest_trade(l1_url: str, deployment: Deployment, reduce_only: bool, negative_funding: bool) -> None:
    """The trade whose proof opens the most market records (WIDEST), between portfolios of
    16 series on 16 underlyings each, on either path of the margin rule, and with every
    funding index negative, fits the target."""
    with l1_snapshot(l1_url):
        register_owners(l1_url, deployment)
        world, tx = widest(with_options(heavy(deployment, L1(l1_url), 10**12)), reduce_only, negative_funding)
        assert len(step_witness(world.state, tx).opened_markets) == WIDEST
        gas = reveal_gas(deployment, l1_url, world, tx)
    if os.environ.get("ROLLUP_PRINT_GAS"):
        path = ("reduce-only" if reduce_only else "within initial") + (", negative funding" if negative_funding else "")
        print(f"\nTrade opening {WIDEST} markets ({path}): {gas:,} gas")
    assert gas <= PROOF_GAS_LIMIT, gas


def _widest_liquidation(w: World) -> bytes:
    """Account 2 (16 series) below half its maintenance margin, liquidated by 50 lots of
    series SHARED into the insurance fund (16 other series)."""
    widest_table(w, 2, INSURANCE_ACCOUNT)
    set_value(w, 2, requirements(w, 2)[0] // 2)
    return Liquidate(2, SHARED, 50).encode()


def _widest_forced_close(w: L1World) -> bytes:
    """Account 4 (16 series) asks L1 to close its position in series SHARED against the
    insurance fund (16 other series)."""
    widest_table(w, 4, INSURANCE_ACCOUNT)
    return _forced_close(w, SHARED)


def _widest_deleverage(w: World) -> bytes:
    """Account 2 (16 series) bankrupt, deleveraged by 50 lots of series SHARED against
    account 3 (16 other series) while the insurance fund, worth nothing, holds the 16
    perpetuals left (0-14 and 47): every one of the 48 markets opened, three accounts."""
    widest_table(w, 2, 3)
    state = w.state
    held = tuple(Position(m, 10, state.market(m).funding_index)  # type: ignore[union-attr]
                 for m in [*range(MARKETS - 1), MAX_MARKETS - 1])
    state.set_accounts({INSURANCE_ACCOUNT: state.account(INSURANCE_ACCOUNT)._replace(positions=held)})
    set_value(w, INSURANCE_ACCOUNT, 0)
    set_value(w, 2, -10**9)
    set_value(w, 3, 10**13)
    return Deleverage(2, 3, SHARED, 50).encode()


WIDEST_CASES: dict[str, tuple[Callable[[L1World], bytes], int]] = {
    "Liquidate": (_widest_liquidation, WIDEST),
    "ForcedRequest(close)": (_widest_forced_close, WIDEST),
    "Deleverage": (_widest_deleverage, MAX_MARKETS),
}
"""Each case's builder and the market records its witness opens."""


@pytest.mark.parametrize("kind", sorted(WIDEST_CASES))
def test_the_widest_transfer_to_the_fund(l1_url: str, deployment: Deployment, kind: str) -> None:
    """A liquidation and a forced close between an account and the insurance fund that
    hold 31 series on 16 underlyings between them (WIDEST records opened), and a
    deleverage whose three accounts hold every market (all 48 opened): within the
    500,000 target."""
    build, records = WIDEST_CASES[kind]
    with l1_snapshot(l1_url):
        register_owners(l1_url, deployment)
        world = on_l1(with_options(heavy(deployment, L1(l1_url), 10**12)), l1_url, deployment)
        tx = build(world)
        assert len(step_witness(world.state, tx).opened_markets) == records
        assert apply(world.state.copy(), tx, world.context).reason == Reason.OK, kind
        gas = reveal_gas(deployment, l1_url, world, tx)
    if os.environ.get("ROLLUP_PRINT_GAS"):
        print(f"\n{kind} opening {records} markets: {gas:,} gas")
    assert gas <= PROOF_GAS_LIMIT, (kind, gas)


COMMITTEE = ORACLE_KEYS + tuple(bytes([0xB0 + i]) * 32 for i in range(16 - len(ORACLE_KEYS)))
"""The largest oracle committee (MAX_ORACLE_SIGNERS = 16), heavy_world's signers first."""


@pytest.mark.parametrize("kind", ["OracleUpdate", "RiskUpdate", "SettleSeries"])
def test_a_feed_update_of_sixteen_reports_fits(l1_url: str, kind: str) -> None:
    """The heaviest OracleUpdate, RiskUpdate and SettleSeries: every one of 16 signers
    reports (16 signatures recovered on L1; a RiskUpdate also takes the median of each
    Greek, 16 values apiece, all different), on the heavy pre-state (market 15 a put
    series for the RiskUpdate, and one expired for the SettleSeries)."""
    assert len(COMMITTEE) == MAX_ORACLE_SIGNERS
    with l1_snapshot(l1_url):
        signers = tuple(Web3.to_checksum_address(address_of(k)) for k in COMMITTEE)
        deployment = deploy(L1(l1_url, DEPLOYER), params=params_for(SEQUENCER, challenge_window=3_600,
                                                                    oracle_signers=signers))
        world = heavy(deployment, L1(l1_url), 10**12, COMMITTEE)
        now = world.state.globals.time
        if kind == "RiskUpdate":
            world = with_options(world)
            series = world.state.market(15)
            assert series is not None and series.delta < 0
            marks = [(i, series.oracle_price + i, series.delta + 997 * i * (-1) ** i, series.gamma + 31 * i,
                      series.vega + (-1) ** i * i, key) for i, key in enumerate(COMMITTEE)]
            tx = builders.risk_update(15, now, marks, world.context).encode()
        elif kind == "SettleSeries":
            world = with_options(world)
            series = world.state.market(15)
            assert series is not None
            world.state.set_market(series._replace(expiry=now - 60))
            prices = [(i, series.strike + 1_000 * i, key) for i, key in enumerate(COMMITTEE)]
            tx = builders.settle_series(15, now - 60, prices, world.context).encode()
        else:
            market = world.state.market(15)
            assert market is not None
            reports = [(i, market.oracle_price + i, key) for i, key in enumerate(COMMITTEE)]
            tx = builders.oracle_update(15, now, reports, world.context).encode()
        assert apply(world.state.copy(), tx, world.context).reason == Reason.OK
        gas = reveal_gas(deployment, l1_url, world, tx)
    if os.environ.get("ROLLUP_PRINT_GAS"):
        print(f"\n{kind} (16 reports): whole proof on the heaviest inputs {gas:,} gas")
    assert gas <= PROOF_GAS_LIMIT, gas
