"""Attacks on the L1 contracts, each written as the attacker would mount it, through real
L1 transactions on our py-evm node (and, where the EVM's rules matter, anvil too), and
each now ending safe (docs/security.md lists them with their defences):

- a batch whose data is not the input of a top-level transaction: through a forwarder
  contract, or from an EIP-7702-delegated account (refused on L1);
- an outsider posting while the sequencer is active, or filling the pending capacity;
- a freeze decided on a made-up tip, for a forced request consumed long ago;
- a copier taking the challenge reward by sending the same reveal, or by committing
  after seeing it and revealing first;
- L2 time lagging L1: a stale batch timestamp, an expired order filled, a stale oracle
  report, under a clock left behind;
- bad deployment parameters; payments the bridge could make only in part; trading fees
  with no way out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import vyper
from eth_account import Account
from web3 import Web3
from web3.logs import DISCARD

from challengers import store as st
from challengers.watcher import Watcher
from rollup import batch as batch_format
from rollup.deploy import Deployment, Params, deploy
from rollup.l1 import records
from rollup.l1.client import L1, L1Error
from rollup.l1.rollup_client import FINAL, REVERTED, RollupL1, commitment
from rollup.l1.world import SCENARIOS, User, World, levered_pair, make_world, price_move
from rollup.stf import apply, builders
from rollup.stf.constants import INSURANCE_ACCOUNT
from rollup.stf.reasons import Reason
from rollup.stf.state import Globals, state_root
from rollup.stf.transactions import AdvanceTime, SweepFees
from tests.conftest import DEV_KEYS, l1_snapshot, params_for

DEPLOYER, SEQUENCER, WATCHER, OUTSIDER, COPIER = DEV_KEYS[0], DEV_KEYS[1], DEV_KEYS[2], DEV_KEYS[8], DEV_KEYS[9]
USERS = DEV_KEYS[3:7]
WINDOW, DELAY, SILENCE = 300, 600, 900
NOT_TOP_LEVEL = "batch: not a top-level call from an account without code"


@pytest.fixture(scope="module")
def deployment(l1_url: str) -> Deployment:
    return deploy(L1(l1_url, DEPLOYER), params=params_for(
        SEQUENCER, challenge_window=WINDOW, inclusion_delay=DELAY, silence_period=SILENCE))


@pytest.fixture
def world(l1_url: str, deployment: Deployment) -> Iterator[World]:
    with l1_snapshot(l1_url):
        yield make_world(l1_url, deployment, SEQUENCER, USERS)


def refused(reason: str, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(L1Error) as info:
        call(*args, **kwargs)
    assert info.value.reason == reason, info.value


def chain_of(world: World, key: bytes) -> RollupL1:
    return RollupL1(L1(world.url, key), world.deployment)


def compiled(source: str) -> tuple[Any, str]:
    out = vyper.compile_code(source, output_formats=["abi", "bytecode"])
    return out["abi"], out["bytecode"]


def made_up_batch(world: World) -> tuple[list[bytes], list[bytes], int]:
    """A batch that advances the clock, posted with a root of the proposer's choosing: its
    globals zeroed (forced and deposit counts 0: nothing ever consumed)."""
    now = world.now()
    accounts, markets, _, withdrawals = world.state.root_parts()
    fake = state_root(accounts, markets, Globals(time=now).leaf(), withdrawals)
    return [AdvanceTime(now).encode()], [fake], now


# ---------------------------------------------------------------------- data availability

FORWARDER = """
# pragma version ~=0.4.3
interface Rollup:
    def bond(): payable
    def submit(position: uint256, timestamp: uint256, txs: Bytes[49152], roots: Bytes[16368], state_root: bytes32) -> uint256: nonpayable

@external
@payable
def bond(rollup: Rollup):
    extcall rollup.bond(value=msg.value)

@external
def submit(rollup: Rollup, position: uint256, timestamp: uint256, txs: Bytes[49152], roots: Bytes[16368], state_root: bytes32):
    extcall rollup.submit(position, timestamp, txs, roots, state_root)
"""


def test_a_batch_through_a_forwarder_contract_is_refused(world: World) -> None:
    """The attacker bonds a two-line forwarder and submits through it: the batch would be
    the input of an inner call no node serves. L1 refuses it, whoever sends it."""
    abi, bytecode = compiled(FORWARDER)
    for key in (SEQUENCER, OUTSIDER):
        l1 = L1(world.url, key)
        factory = l1.w3.eth.contract(abi=abi, bytecode=bytecode)
        forwarder = l1.w3.eth.contract(address=l1.send(factory.constructor())["contractAddress"], abi=abi)
        rollup = world.proposer.rollup
        l1.send(forwarder.functions.bond(rollup.address), value=int(world.deployment.params["bond"]))
        txs, roots, timestamp = made_up_batch(world)
        length = int(rollup.functions.length().call())
        refused(NOT_TOP_LEVEL, l1.send, forwarder.functions.submit(
            rollup.address, length, timestamp, batch_format.encode_txs(txs), *batch_format.encode_roots(roots)))
        assert int(rollup.functions.length().call()) == length


DELEGATE = """
# pragma version ~=0.4.3
interface Rollup:
    def submit(position: uint256, timestamp: uint256, txs: Bytes[49152], roots: Bytes[16368], state_root: bytes32) -> uint256: nonpayable

@external
def submit(rollup: Rollup, position: uint256, timestamp: uint256, txs: Bytes[49152], roots: Bytes[16368], state_root: bytes32):
    extcall rollup.submit(position, timestamp, txs, roots, state_root)
"""


def test_a_batch_from_an_eip7702_delegated_account_is_refused(any_l1: str) -> None:
    """The bonded sequencer delegates its own account to a contract (EIP-7702, a type-4
    transaction) and submits by calling itself: msg.sender is tx.origin, but the batch is
    an inner call's input again. The account has code now, and L1 refuses it."""
    with l1_snapshot(any_l1):
        deployment = deploy(L1(any_l1, DEPLOYER), params=params_for(SEQUENCER, challenge_window=WINDOW))
        sequencer = RollupL1(L1(any_l1, SEQUENCER), deployment)
        sequencer.bond()
        w3 = sequencer.l1.w3
        abi, bytecode = compiled(DELEGATE)
        factory = w3.eth.contract(abi=abi, bytecode=bytecode)
        delegate = sequencer.l1.send(factory.constructor())["contractAddress"]
        account = Account.from_key(SEQUENCER)
        nonce = w3.eth.get_transaction_count(account.address)
        authorization = account.sign_authorization({"chainId": sequencer.l1.chain_id, "address": delegate,
                                                    "nonce": nonce + 1})
        tx = {"type": 4, "chainId": sequencer.l1.chain_id, "nonce": nonce, "to": account.address, "value": 0,
              "data": b"", "gas": 200_000, "accessList": [], "authorizationList": [authorization],
              **sequencer.l1.fees()}
        w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))
        assert bytes(w3.eth.get_code(account.address))[:3] == bytes.fromhex("ef0100")  # delegated
        itself = w3.eth.contract(address=account.address, abi=abi)
        now = int(w3.eth.get_block("latest")["timestamp"])
        refused(NOT_TOP_LEVEL, sequencer.l1.send, itself.functions.submit(
            sequencer.rollup.address, 0, now, batch_format.encode_txs([AdvanceTime(now).encode()]), b"", b"\1" * 32))
        assert int(sequencer.rollup.functions.length().call()) == 0


# ---------------------------------------------------------------------- who proposes


def test_an_outsider_waits_for_the_sequencers_silence(world: World) -> None:
    """A bonded outsider's valid batch is refused while the sequencer posts; after the
    silence period it is accepted (the escape route), and once the sequencer posts again
    the outsider waits again."""
    outsider = chain_of(world, OUTSIDER)
    outsider.bond()
    state = world.state.copy()
    txs = [AdvanceTime(world.now()).encode()]
    apply(state, txs[0], world.context(world.now()))
    refused("batch: sequencer active", outsider.submit, txs, [state.root()], world.now())
    assert not outsider.rollup.functions.may_propose(outsider.l1.address).call()
    world.travel(SILENCE)
    assert outsider.rollup.functions.may_propose(outsider.l1.address).call()
    state = world.state.copy()
    txs = [AdvanceTime(world.now()).encode()]
    apply(state, txs[0], world.context(world.now()))
    batch_id, _ = outsider.submit(txs, [state.root()], world.now())
    assert outsider.batch(batch_id).proposer == outsider.l1.address
    world.state = state  # the sequencer follows L1: it builds on the outsider's batch
    world.travel(1)
    world.post([world.advance()])
    state = world.state.copy()
    txs = [AdvanceTime(world.now() + 1).encode()]
    world.travel(1)
    apply(state, txs[0], world.context(world.now()))
    refused("batch: sequencer active", outsider.submit, txs, [state.root()], world.now())


def test_an_outsider_cannot_take_the_sequencers_room(anvil_url: str) -> None:
    """After the silence period an outsider may post, but only up to half of the pending
    capacity: the sequencer, back, still has room for its batches (on anvil: 128 batches)."""
    with l1_snapshot(anvil_url):
        deployment = deploy(L1(anvil_url, DEPLOYER), params=params_for(
            SEQUENCER, challenge_window=WINDOW, silence_period=60))
        world = make_world(anvil_url, deployment, SEQUENCER, USERS[:1])
        outsider = chain_of(world, OUTSIDER)
        outsider.bond()
        world.travel(61)
        finalized = int(outsider.rollup.functions.finalized().call())
        for _ in range(128 - (int(outsider.rollup.functions.length().call()) - finalized)):
            world.travel(1)
            txs = [world.advance()]
            apply(world.state, txs[0], world.context(world.now()))
            outsider.submit(txs, [world.state.root()], world.now())
        world.travel(1)
        txs = [world.advance()]
        refused("batch: too many pending", outsider.submit, txs, [b"\1" * 32], world.now())
        world.post(txs)  # the sequencer is not crowded out
        assert int(outsider.rollup.functions.length().call()) - finalized == 129


# ---------------------------------------------------------------------- freeze


def test_a_made_up_tip_cannot_freeze_the_rollup(world: World, tmp_path: Any) -> None:
    """A forced request is consumed by an honest batch long ago. After the sequencer's
    silence an outsider posts a batch whose root opens to zeroed globals (nothing
    consumed) and tries to freeze the rollup on it at once, then again after its window:
    refused both times (a freeze is decided on the final state only; a watcher proves
    the made-up batch wrong in the meantime)."""
    user = world.users[1]
    user.chain.force_withdraw(1_000_000)
    world.travel(1)
    world.post([world.advance(), *world.new_forced()])
    assert world.state.globals.forced_count == 1
    world.travel(WINDOW + 1)
    world.proposer.finalize()
    honest_final = world.state.copy()
    world.travel(SILENCE)
    attacker = chain_of(world, OUTSIDER)
    attacker.bond()
    txs, roots, timestamp = made_up_batch(world)
    fake_id, _ = attacker.submit(txs, roots, timestamp)
    accounts, markets, _, withdrawals = world.state.root_parts()
    fake = (accounts, markets, records.globals_(Globals(time=timestamp)), withdrawals)
    # the request is long overdue, the made-up batch just posted: the attacker tries at once
    refused("freeze: globals not of the final state", attacker.l1.send, attacker.rollup.functions.freeze(0, *fake))
    watcher = Watcher(world.url, world.deployment, WATCHER, tmp_path / "watcher.sqlite3")
    watcher.step()
    assert attacker.batch(fake_id).status == REVERTED and watcher.store.batch(fake_id).verdict == st.INVALID  # type: ignore[union-attr]
    world.travel(WINDOW + 1)  # the made-up batch's window would be over
    refused("freeze: globals not of the final state", attacker.l1.send, attacker.rollup.functions.freeze(0, *fake))
    refused("freeze: request was included", attacker.freeze, 0, honest_final)
    assert not attacker.rollup.functions.frozen().call()
    world.post([world.advance()])  # the sequencer carries on
    watcher.close()


# ---------------------------------------------------------------------- challenge rewards


def test_a_copied_challenge_earns_nothing(world: World) -> None:
    """A watcher proves a fraud. A copier (and the cheat itself) sending the watcher's
    reveal from its own address is refused: no commitment of theirs. A copier who commits
    after seeing the reveal and gets its own reveal in first (the watcher's held back a
    block) proves the batch, but the watcher's older commitment takes the reward back
    while it is held, and is paid. The batch is reverted within two blocks of the
    watcher's commitment."""
    bad = world.post(SCENARIOS["Withdraw"](world), lie_at=0)
    honest, copier, cheat = chain_of(world, WATCHER), chain_of(world, COPIER), world.proposer
    claimed = honest.computed_root(bad.id, 0, bad.txs, bad.roots, bad.pre_states[0])
    salt = b"\x11" * 32
    committed = honest.commit(honest.commitment(bad.id, 0, claimed, salt))
    reveal = honest.challenge_call(bad.id, 0, bad.txs, bad.roots, bad.pre_states[0], salt)
    for thief in (copier, cheat):  # the same calldata, from another address
        refused("challenge: not committed", thief.l1.send, reveal)
    # the copier commits to the same claim after seeing it, and reveals first
    copier_salt = b"\x22" * 32
    copier.commit(commitment(copier.l1.address, bad.id, 0, claimed, copier_salt))
    stolen = copier.l1.send(copier.challenge_call(bad.id, 0, bad.txs, bad.roots, bad.pre_states[0], copier_salt))
    assert world.proposer.batch(bad.id).status == REVERTED
    assert stolen["blockNumber"] - committed["blockNumber"] <= 2
    assert copier.rollup.functions.rewards(bad.id).call()[0] == copier.l1.address
    back = honest.l1.send(reveal)  # the older commitment takes the reward
    [moved] = honest.rollup.events.RewardReassigned().process_receipt(back, errors=DISCARD)
    assert (moved["args"]["challenger"], moved["args"]["previous"]) == (honest.l1.address, copier.l1.address)
    refused("challenge: batch not pending", copier.l1.send,
            copier.challenge_call(bad.id, 0, bad.txs, bad.roots, bad.pre_states[0], copier_salt))
    refused("reward: still held", copier.claim_reward, bad.id)
    world.travel(int(world.deployment.params["reward_delay"]))
    before = world.w3.eth.get_balance(honest.l1.address)
    copier.claim_reward(bad.id)  # anyone may trigger the payment: it goes to the winner
    assert world.w3.eth.get_balance(honest.l1.address) == before + int(world.deployment.params["bond"]) // 2


# ---------------------------------------------------------------------- time


def test_l2_time_cannot_lag_l1(world: World, tmp_path: Any) -> None:
    """L1 refuses a batch timestamp older than max_time_lag; and a batch that leaves the
    clock behind its timestamp cannot run anything but AdvanceTime: an order that expired
    by the batch's time, filled under the old clock (with no or a partial AdvanceTime), and
    an oracle report too old for the batch's time, are each proven wrong."""
    sequencer = world.proposer
    lag = int(sequencer.rollup.functions.max_time_lag().call())
    world.travel(lag + 10)  # the parent batch is older than the lag allows
    refused("batch: timestamp too old", sequencer.submit, [world.advance()], [b"\1" * 32], world.now() - lag - 1)
    watcher = Watcher(world.url, world.deployment, WATCHER, tmp_path / "watcher.sqlite3")
    maker, taker = world.users[0], world.users[1]
    world.post([world.advance()])
    old_time = world.state.globals.time  # where the cheat leaves the clock
    expiry = old_time + 5
    orders = (world.order(maker, 0, True, 10, 300_000)._replace(expiry=expiry),
              world.order(taker, 0, False, 10, 300_000)._replace(expiry=expiry))
    trade = builders.trade(orders[0], maker.key, orders[1], taker.key, 10, world.context(), 200, 500).encode()
    stale_report = world.oracle_update(0, 301_000, timestamp=old_time)  # fresh then, stale by the batch's time
    world.travel(400)
    cases = {
        "expired order, clock left behind": [trade],
        "expired order, clock advanced short": [AdvanceTime(expiry - 1).encode(), trade],
        "stale oracle report, clock left behind": [stale_report],
    }
    for name, txs in cases.items():
        timestamp = world.now()
        lying = world.state.copy()
        roots = []
        for tx in txs:  # what the cheat posts: each applied as if the batch ran at the old time
            receipt = apply(lying, tx, world.context(old_time if tx[0] != 0x0A else timestamp))
            assert receipt.ok, (name, receipt)
            roots.append(lying.root())
        truth = world.state.copy()
        context = world.context(timestamp)
        assert [apply(truth.copy(), tx, context).reason for tx in txs[-1:]] == [Reason.TIME_BEHIND_BATCH], name
        batch_id, _ = sequencer.submit(txs, roots, timestamp)
        watcher.step()
        row = watcher.store.batch(batch_id)
        assert row is not None and row.verdict == st.INVALID, name
        assert sequencer.batch(batch_id).status == REVERTED, name
        sequencer.bond()
        world.travel(1)
    world.post([world.advance(), trade])  # run at the batch's time: the expired order is refused
    assert world.history[-1].receipts[1].reason == Reason.EXPIRED
    watcher.close()


# ---------------------------------------------------------------------- deployment and the bridge


def test_deployment_refuses_bad_parameters(l1_url: str) -> None:
    """A zero challenge window, a zero or duplicate oracle signer: refused by `rollup
    deploy` before anything is sent, and by the contracts themselves."""
    signer = Web3.to_checksum_address("0x" + "11" * 20)
    for bad in (Params(challenge_window=0), Params(oracle_signers=(signer, signer)),
                Params(oracle_signers=("0x" + "00" * 20, signer), oracle_quorum=1), Params(max_time_lag=0)):
        with pytest.raises(ValueError):
            bad.check()
    with l1_snapshot(l1_url):
        l1 = L1(l1_url, DEPLOYER)
        rules = [l1.deploy(name).address for name in ("VerifyMarket", "VerifyTrade", "VerifyAccount", "VerifyForced", "VerifyRisk", "Portfolio")]
        refused("verifier: duplicate signer", l1.deploy, "Verifier", *rules, signer, [signer, signer], 1)
        refused("verifier: zero signer", l1.deploy, "Verifier", *rules, signer, ["0x" + "00" * 20], 1)
        verifier = l1.deploy("Verifier", *rules, signer, [signer], 1).address
        good = [verifier, signer, b"\1" * 32, 60, 120, 10**18, signer, 600, 300, 10]
        for index, reason in ((3, "rollup: zero challenge window"), (4, "rollup: zero inclusion delay"),
                              (5, "rollup: zero bond"), (8, "rollup: zero time lag")):
            refused(reason, l1.deploy, "Rollup", *(0 if i == index else v for i, v in enumerate(good)))


def test_a_deployment_carries_its_listing(l1_url: str, tmp_path: Any) -> None:
    """The genesis listing (option series among it) is recorded in the deployment file,
    and the genesis every component builds from the file has the root the Rollup was
    deployed with; a listing the rules cannot run is refused before anything is sent."""
    from rollup.stf.genesis import MarketInfo
    from tests.stf_world import OPTION_MARKETS

    listing = tuple((MarketInfo(m.id, f"M{m.id}", "0.001"), m) for m in OPTION_MARKETS)
    with l1_snapshot(l1_url):
        l1 = L1(l1_url, DEPLOYER)
        deployment = deploy(l1, listing=listing)
        deployment.save(tmp_path / "deployment.json")
        loaded = Deployment.load(tmp_path / "deployment.json")
        assert loaded.listing() == listing
        chain = RollupL1(L1(l1_url, DEPLOYER), loaded)
        assert loaded.genesis().root() == bytes(chain.rollup.functions.genesis_root().call())
        assert [m.product for m in loaded.genesis().markets if m is not None] == [0, 0, 1, 2, 1]
        nonce = l1.w3.eth.get_transaction_count(l1.address)
        orphan = listing[2][1]._replace(underlying=9)  # a call on no listed perpetual
        with pytest.raises(ValueError, match="not a listed perpetual"):
            deploy(l1, listing=(*listing[:2], (listing[2][0], orphan)))
        assert l1.w3.eth.get_transaction_count(l1.address) == nonce  # nothing sent


def test_payments_the_bridge_cannot_make_in_full_stay_owed(world: World) -> None:
    """A crash leaves an account bankrupt beyond the insurance fund; the operator then
    ignores a forced withdrawal and anyone freezes the rollup. The winners' escapes, the
    withdrawal claims and a deposit's reclaim together exceed what the bridge holds: each
    call pays what it can and records it; the rest stays owed and is paid, by the same
    call, once the bridge holds it again."""
    from rollup.stf import margin

    u0, u1, loser, winner = world.users
    world.post([world.withdraw(u0, 10_000_000), world.withdraw(u1, 10_000_000)])
    levered_pair(world)  # loser long, winner short, about 9.6x
    for price in (282_000, 265_080, 238_572):  # -20.5%: the loser far below zero
        price_move(world, 0, price)
    u1.chain.force_withdraw(1_000)  # ignored by the operator
    u0.chain.deposit(u0.address, 1_000_000)  # never credited
    world.inbox.sync()
    late = world.inbox.deposits[-1]
    world.travel(DELAY + WINDOW + 1)
    anyone = chain_of(world, OUTSIDER)
    anyone.freeze(0, world.state)
    final, last = world.state, world.history[-1].id
    bridge = anyone.bridge.address

    def balance() -> int:
        return int(anyone.token.functions.balanceOf(bridge).call())

    def paid(receipt: Any, event: str) -> int:
        return int(getattr(anyone.bridge.events, event)().process_receipt(receipt, errors=DISCARD)[0]["args"]["paid"])

    def donate(amount: int) -> None:  # tokens reach the bridge again
        world.proposer.l1.send(world.proposer.token.functions.transfer(bridge, amount))

    def equity(account: int) -> int:
        settled, _ = margin.settle_funding(final.account(account), final.markets)
        return margin.value(settled, final.markets)

    assert equity(loser.account) < 0 < equity(winner.account)
    for user in (u0, u1):
        assert paid(anyone.escape(user.account, final), "Escaped") == equity(user.account)
    owed = equity(winner.account)
    first = paid(anyone.escape(winner.account, final), "Escaped")
    assert 0 < first < owed and balance() == 0  # paid in part: the rest stays owed
    refused("bridge: nothing to pay now", anyone.claim, last, 0, final)
    refused("bridge: nothing to pay now", anyone.reclaim_deposit, late, final)
    donate(3_000_000)
    assert paid(anyone.escape(winner.account, final), "Escaped") == 3_000_000
    donate(4_000_000)
    assert paid(anyone.claim(last, 0, final), "WithdrawalClaimed") == 4_000_000
    donate(500_000)
    assert paid(anyone.reclaim_deposit(late, final), "DepositReclaimed") == 500_000
    donate(10**9)
    assert paid(anyone.escape(winner.account, final), "Escaped") == owed - first - 3_000_000
    assert paid(anyone.claim(last, 0, final), "WithdrawalClaimed") == 6_000_000
    assert paid(anyone.claim(last, 1, final), "WithdrawalClaimed") == 10_000_000
    assert paid(anyone.reclaim_deposit(late, final), "DepositReclaimed") == 500_000
    refused("escape: already escaped", anyone.escape, winner.account, final)
    refused("claim: already claimed", anyone.claim, last, 0, final)
    refused("reclaim: already reclaimed", anyone.reclaim_deposit, late, final)
    refused("escape: no equity", anyone.escape, loser.account, final)


def test_trading_fees_leave_the_bridge(world: World) -> None:
    """Fees collected in the fee pool are swept into the insurance fund (SweepFees), whose
    owner withdraws them with a signed Withdraw and claims them on L1 once final."""
    world.post([world.trade(world.users[0], world.users[1], 0, True, 100, 300_000)])
    fees = world.state.globals.fee_pool
    assert fees > 0
    world.post([SweepFees(fees).encode()])
    assert world.state.globals.fee_pool == 0 and world.state.account(INSURANCE_ACCOUNT).collateral == fees
    owner = User(DEPLOYER, chain_of(world, DEPLOYER), account=INSURANCE_ACCOUNT)
    index = world.state.globals.withdrawal_count
    claim = world.post([world.withdraw(owner, fees)])
    assert claim.receipts[0].ok and world.state.withdrawals[index].amount == fees
    world.travel(WINDOW + 1)
    world.proposer.finalize()
    token = owner.chain.token.functions
    before = int(token.balanceOf(owner.address).call())
    owner.chain.claim(claim.id, index, world.state)
    assert int(token.balanceOf(owner.address).call()) == before + fees
    assert world.proposer.batch(claim.id).status == FINAL
