"""A dishonest proposer that accepts what the rules refuse is proven wrong on L1: a
forged order signature, a valid signature in its high-s form, a replayed (already
filled) order, a skipped deposit, deposits taken out of order. In each case the posted
root is the one the transaction would give if it were valid; the verifier names the
refusal, keeps the pre-state root, and the batch is reverted."""

from __future__ import annotations

from web3.logs import DISCARD

from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.l1.rollup_client import REVERTED, RollupL1
from rollup.l1.world import World
from rollup.stf import Reason, apply
from rollup.stf.constants import SECP256K1_N
from rollup.stf.transactions import Trade, decode

KEYS = [bytes(a.key) for a in dev_accounts(8)]
DEPLOYER, PROPOSER, CHALLENGER = KEYS[0], KEYS[1], KEYS[2]
USERS = KEYS[3:7]


def post_accepting(world: World, bad: bytes, twin: bytes) -> tuple[int, Reason]:
    """Post `bad` with the root `twin` (a valid transaction of the same effect) would give;
    prove it wrong; return (batch id, the reason the verifier named)."""
    pre = world.state.copy()
    timestamp = world.state.globals.time  # the batch runs at the clock's time
    accepted = pre.copy()
    assert apply(accepted, twin, world.context(timestamp)).ok
    refused = apply(world.state, bad, world.context(timestamp))
    assert not refused.applied
    batch_id, _ = world.proposer.submit([bad], [accepted.root()], timestamp)
    challenger = RollupL1(L1(world.url, CHALLENGER), world.deployment)
    receipt = challenger.challenge(batch_id, 0, [bad], [accepted.root()], pre)
    proven = challenger.rollup.events.FraudProven().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert proven["computed_root"] == pre.root()
    assert world.proposer.batch(batch_id).status == REVERTED
    assert proven["reason"] == refused.reason
    return batch_id, Reason(proven["reason"])


def test_forged_signature(world: World) -> None:
    valid = world.trade(world.users[0], world.users[1], 0, True, 10, 300_000)
    trade = decode(valid)
    assert isinstance(trade, Trade)
    forged_sig = bytes(trade.taker_signature[:5]) + bytes([trade.taker_signature[5] ^ 1]) + trade.taker_signature[6:]
    forged = trade._replace(taker_signature=forged_sig).encode()
    _, reason = post_accepting(world, forged, valid)
    assert reason in (Reason.BAD_SIGNATURE, Reason.WRONG_SIGNER)


def test_high_s_signature(world: World) -> None:
    valid = world.trade(world.users[0], world.users[1], 0, True, 10, 300_000)
    trade = decode(valid)
    assert isinstance(trade, Trade)
    # the same signer's high-s twin (n - s, v flipped) has no 64-byte form (n - s > 2**255
    # but for a negligible share); what a trade can carry with s > n/2 is refused alike
    sig = trade.maker_signature
    high = sig[:32] + (SECP256K1_N // 2 + 1).to_bytes(32, "big") + sig[64:]
    _, reason = post_accepting(world, trade._replace(maker_signature=high).encode(), valid)
    assert reason == Reason.BAD_SIGNATURE


def test_replayed_order(world: World) -> None:
    valid = world.trade(world.users[0], world.users[1], 0, True, 10, 300_000)
    world.post([valid])
    # the same trade again: both orders are filled; the twin is a fresh pair of orders
    twin = world.trade(world.users[0], world.users[1], 0, True, 10, 300_000)
    _, reason = post_accepting(world, valid, twin)
    assert reason == Reason.OVERFILL


def test_skipped_and_reordered_deposits(world: World) -> None:
    user = world.users[0]
    user.chain.deposit(user.address, 1_000_000)
    user.chain.deposit(user.address, 2_000_000)
    first, second = world.new_deposits()
    _, reason = post_accepting(world, second, first)  # skip the first: credit the second
    assert reason == Reason.DEPOSIT_OUT_OF_ORDER
    world.proposer.bond()
    world.post([first, second])  # in order, honestly: accepted
    assert world.state.globals.deposit_count == len(world.users) + 2
