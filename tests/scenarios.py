"""Scenarios for STF tests (hypothesis): lists of actions turned into mostly-valid
transactions against a world's current state (trades near the oracle price, withdrawals,
funding, price moves, liquidations, deleveraging, cancels, L1 deposits and forced
requests, fee sweeps, a new batch whose clock lags its timestamp), on perpetuals and on
option series (trades, risk-feed updates, an underlying's crash, settlement at expiry),
mixed with random and mutated bytes. Shared by the property tests and the
differential tests of the L1 verifier."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import strategies as st

from rollup.stf import builders, products
from rollup.stf.fork import clamp
from rollup.stf.signing import address_of
from rollup.stf.state import Config
from rollup.stf.transactions import (
    FORCED_CLOSE,
    FORCED_WITHDRAW,
    AdvanceTime,
    Deleverage,
    FundingTick,
    Liquidate,
    SettlePosition,
    SweepFees,
)
from tests.stf_world import CONFIG, ORACLE_KEYS, USER_KEYS, World, make_world

USERS = 6


def world_factory(config: Config = CONFIG) -> Any:
    """A function returning fresh copies of one funded world (made once)."""
    base = make_world(USERS, deposit=20_000_000, config=config, options=True)

    def fresh() -> World:
        queues = builders.L1Queues(list(base.queues.deposits), list(base.queues.deposit_heads),
                                   list(base.queues.forced), list(base.queues.forced_heads))
        state = base.state.copy()
        state.orders = dict(base.state.orders)  # (copies share the preimages: keep worlds apart)
        return World(state, queues, base.context, base.time, dict(base.nonces))

    return fresh


account_ids = st.integers(1, USERS)
markets = st.sampled_from([0, 1, 0, 1, 2, 3, 4])
"""The perpetuals 0 and 1 and the series 2-4 of stf_world.OPTION_MARKETS (4 expires within
scenarios' reach)."""
trades = st.tuples(st.just("trade"), account_ids, st.integers(0, USERS - 1), markets, st.booleans(),
                   st.integers(1, 300), st.integers(-2_000, 2_000), st.integers(-5, 0))
series_trades = st.tuples(st.just("trade"), account_ids, st.integers(0, USERS - 1), st.sampled_from([2, 3, 4]),
                          st.booleans(), st.integers(1, 300), st.integers(-2_000, 2_000), st.integers(-5, 0))
fills = st.tuples(st.just("fill"), st.integers(0, 10**6), st.integers(0, USERS - 1), st.integers(1, 300),
                  st.integers(-3, 1), st.integers(0, 9))
actions = st.one_of(
    trades, trades, series_trades, fills, fills,
    st.tuples(st.just("withdraw"), account_ids, st.integers(1, 60_000_000)),
    st.tuples(st.just("funding"), markets, st.integers(-10**6, 10**6), st.integers(1, 7200)),
    st.tuples(st.just("price"), markets, st.integers(-150_000, 150_000)),
    st.tuples(st.just("risk"), markets, st.integers(-600_000, 600_000), st.integers(0, 6)),
    st.tuples(st.just("settle"), markets, st.integers(-300_000, 300_000), st.integers(0, 5)),
    st.tuples(st.just("liquidate"), st.integers(0, 50), markets, st.integers(0, 1_100_000)),
    st.tuples(st.just("deleverage"), st.integers(0, 50), st.integers(0, 50), markets,
              st.integers(0, 1_100_000)),
    st.tuples(st.just("cancel"), account_ids, st.integers(0, 3)),
    st.tuples(st.just("stress"), markets, st.booleans(), st.integers(1, 4), st.integers(1, 3)),
    st.tuples(st.just("deposit"), st.integers(0, USERS + 3), st.integers(0, 2**45), st.integers(0, 5)),
    st.tuples(st.just("forced"), st.sampled_from([FORCED_WITHDRAW, FORCED_CLOSE]), st.integers(0, USERS + 1),
              st.integers(0, 2), st.integers(0, 30_000_000), st.integers(0, 5)),
    st.tuples(st.just("sweep"), st.integers(0, 1_100_000)),
    st.tuples(st.just("behind"), st.integers(1, 600)),
    st.tuples(st.just("junk"), st.binary(max_size=300)),
    st.tuples(st.just("mutate"), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 255)),
)
scenarios = st.lists(actions, min_size=1, max_size=12)


def build(world: World, action: tuple[Any, ...], history: list[bytes]) -> bytes | list[bytes]:
    """Turn an action into transaction bytes against the world's current state."""
    kind = action[0]
    if kind == "trade":
        _, maker_id, shift, market, maker_buys, size, offset, short = action
        taker_id = (maker_id - 1 + shift) % USERS + 1  # shift 0 is a self-trade
        fill = max(1, size + short)  # mostly the whole order, sometimes more (overfill)
        if short == 0 and size > 1:
            fill = size + 1
        elif short == -5:
            fill = size
        oracle = world.state.markets[market].oracle_price
        price = max(1, oracle + offset)
        if abs(offset) == 2_000:  # the extremes: 60% away, beyond every market's band (PRICE_OUT_OF_BAND)
            price = max(1, oracle * (160 if offset > 0 else 40) // 100)
        maker = world.order(maker_id, market, maker_buys, size, price)
        taker = world.order(taker_id, market, not maker_buys, size, max(1, price + (50 if not maker_buys else -50)))
        return world.trade(maker, taker, fill)
    if kind == "fill":
        # a later fill of a posted order (mostly one that still has room), or of one never
        # posted (variant 0)
        _, pick, shift, size, short, variant = action
        posted = sorted(world.state.orders.values())
        first: list[bytes] = []
        if variant == 0:
            maker = world.order(1 + pick % USERS, pick % 5, pick % 3 == 0, 10, 300_000)
        elif not posted:  # post one first: a Trade of part of it
            market = pick % 5
            price = world.state.markets[market].oracle_price
            maker = world.order(1 + pick % USERS, market, pick % 3 == 0, 2 * size, price)
            other = (maker.account + shift) % USERS + 1
            first = [world.trade(maker, world.order(other, market, not maker.is_buy, size, price), size)]
        else:
            maker = posted[pick % len(posted)]
        taker_id = (maker.account - 1 + shift) % USERS + 1  # shift 0 is a self-trade
        slot = world.state.slot(maker.account, maker.nonce)
        room = max(1, maker.size - slot.filled) if slot.nonce == maker.nonce else size
        if first:
            room = size
        fill = max(1, min(size, room) + short)  # sometimes more than is left (overfill)
        price = maker.limit_price + (50 if not maker.is_buy else -50)
        taker = world.order(taker_id, maker.market, not maker.is_buy, max(fill, 1), max(1, price))
        return [*first, world.fill(maker, taker, fill)]
    if kind == "withdraw":
        _, account, amount = action
        return builders.withdraw(account, amount, world.next_nonce(account), 10**12,
                                 USER_KEYS[account - 1], world.context).encode()
    if kind == "funding":
        _, market, rate_ppm, seconds = action
        world.time += seconds
        price = world.state.markets[market].oracle_price
        delta = rate_ppm * price * seconds * 10**9 // (10**6 * 3_600 * 50)
        return [AdvanceTime(world.time).encode(), FundingTick(market, delta).encode()]
    if kind == "price":
        _, market, move_ppm = action
        old = world.state.markets[market].oracle_price
        world.time += 1
        new = max(1, old + old * move_ppm // 10**6)
        return [AdvanceTime(world.time).encode(), builders.oracle_update(
            market, world.time, [(0, new, ORACLE_KEYS[0]), (2, new, ORACLE_KEYS[2])], world.context
        ).encode()]
    if kind == "risk":
        return risk(world, *action[1:])
    if kind == "settle":
        return settle(world, *action[1:])
    if kind == "liquidate":
        _, pick, market, fraction_ppm = action
        holders = [i for i, a in sorted(world.state.accounts.items()) if a.size(market)] or [pick]
        account = holders[pick % len(holders)] if pick < 45 else pick - 45
        size = abs(world.state.account(account).size(market)) * fraction_ppm // 10**6
        return Liquidate(account, market, size).encode()
    if kind == "deleverage":
        _, pick_a, pick_b, market, fraction_ppm = action
        holders = [i for i, a in sorted(world.state.accounts.items()) if a.size(market)] or [1, 2]
        a = holders[pick_a % len(holders)]
        b = holders[pick_b % len(holders)]
        size = abs(world.state.account(a).size(market)) * fraction_ppm // 10**6
        return Deleverage(a, b, market, size).encode()
    if kind == "cancel":
        _, account, back = action
        nonce = max(0, world.nonces.get(account, 0) - back)
        return builders.cancel(account, nonce, USER_KEYS[account - 1], world.context).encode()
    if kind == "stress":
        return stress(world, *action[1:])
    if kind == "deposit":
        return deposit(world, *action[1:])
    if kind == "forced":
        return forced(world, *action[1:])
    if kind == "sweep":
        _, fraction_ppm = action
        return SweepFees(world.state.globals.fee_pool * fraction_ppm // 10**6).encode()
    if kind == "behind":
        # a new batch `seconds` later whose clock is not advanced: everything but an
        # AdvanceTime is refused until one catches the clock up
        _, seconds = action
        world.time += seconds
        world.context = dataclasses.replace(world.context, timestamp=world.time)
        return []
    if kind == "junk":
        return bytes(action[1])
    _, which, position, xor = action  # mutate an earlier transaction
    if not history:
        return b"\x03"
    original = bytearray(history[which % len(history)] or b"\x03")
    original[position % len(original)] ^= xor
    return bytes(original)


def sync_queues(world: World) -> None:
    """The world's context sees the L1 queues as they now stand."""
    world.context = dataclasses.replace(world.context, deposit_heads=tuple(world.queues.deposit_heads),
                                        forced_heads=tuple(world.queues.forced_heads))


def deposit(world: World, account: int, amount: int, variant: int) -> bytes:
    """An L1 deposit and its L2 transaction; variants: 0-2 honest (to an existing or a new
    account), 3 skips ahead (out of order), 4 claims another amount (not on L1),
    5 names the owner of another account (owner mismatch when the account exists)."""
    owner = address_of(USER_KEYS[(account - 1) % len(USER_KEYS)]) if account else b"\x01" * 20
    if variant == 5:
        owner = b"\x55" * 20
    entry = world.queues.deposit(account, owner, amount % 2**64, world.time)
    sync_queues(world)
    if variant == 3:
        return entry._replace(index=entry.index + 1).encode()
    if variant == 4:
        return entry._replace(amount=(entry.amount + 1) % 2**64).encode()
    return entry.encode()


def forced(world: World, kind: int, account: int, market: int, amount: int, variant: int) -> bytes:
    """An L1 forced request and its L2 transaction; variants: 0-2 honest, 3 from someone
    who does not own the account, 4 out of order, 5 not on L1."""
    requester = address_of(USER_KEYS[(account - 1) % len(USER_KEYS)]) if account else b"\x01" * 20
    if variant == 3:
        requester = b"\x66" * 20
    request = world.queues.force(kind, account, requester, market, amount, world.time)
    sync_queues(world)
    if variant == 4:
        return request._replace(index=request.index + 1).encode()
    if variant == 5:
        return request._replace(amount=request.amount + 1).encode()
    return request.encode()


def risk(world: World, market: int, move_ppm: int, variant: int) -> list[bytes]:
    """A risk-feed update one second later: three signers mark the series `move_ppm` away
    and disagree on the Greeks by `variant` steps (each Greek's median is taken apart from
    the mark's); variant 6 gives one report a delta of the wrong sign (BAD_FIELD). On a
    perpetual, WRONG_PRODUCT."""
    current = world.state.markets[market]
    assert current is not None
    world.time += 1
    mark = max(1, current.oracle_price + current.oracle_price * move_ppm // 10**6)
    delta, gamma, vega = current.delta, current.gamma, current.vega
    step = 997 * variant
    reports = [(0, mark, delta, gamma, vega, ORACLE_KEYS[0]),
               (1, mark + variant, delta - step, gamma + 31 * step, vega + step, ORACLE_KEYS[1]),
               (2, max(1, mark - 3 * variant), delta + 2 * step, max(0, gamma - 7 * step), vega, ORACLE_KEYS[2])]
    if variant == 6:
        wrong_sign = -max(delta, 1) if current.product == products.CALL else 1
        reports[1] = (1, mark, wrong_sign, gamma, vega, ORACLE_KEYS[1])
    return [AdvanceTime(world.time).encode(), builders.risk_update(market, world.time, reports, world.context).encode()]


def settle(world: World, market: int, move_ppm: int, variant: int) -> list[bytes]:
    """A series' settlement: variants 0-2 first move the clock to its expiry (plus 0-2 s)
    when it is at most two hours away (the short-dated series 4: the month-long 2 and 3 stay
    open for the rest of the scenario), 3 and 5 leave it where it is (NOT_EXPIRED before
    expiry), 4 signs a time other than the
    expiry (BAD_FIELD); three signers report the underlying `move_ppm` from its price,
    apart by `variant`; then every holder's position is settled (the first holder's by its
    own forced close through L1), and the first holder's a second time (NO_POSITION). On a
    perpetual, WRONG_PRODUCT throughout."""
    series = world.state.markets[market]
    assert series is not None
    txs = []
    if variant < 3 and series.product != products.PERPETUAL and world.time < series.expiry <= world.time + 7_200:
        world.time = series.expiry + variant
        txs.append(AdvanceTime(world.time).encode())
    underlying = world.state.markets[series.underlying]
    assert underlying is not None
    price = max(1, underlying.oracle_price + underlying.oracle_price * move_ppm // 10**6)
    reports = [(0, price, ORACLE_KEYS[0]), (1, price + 5 * variant, ORACLE_KEYS[1]),
               (2, max(1, price - variant), ORACLE_KEYS[2])]
    expiry = series.expiry + (1 if variant == 4 else 0)
    txs.append(builders.settle_series(market, expiry, reports, world.context).encode())
    holders = [i for i, a in sorted(world.state.accounts.items()) if a.size(market)]
    # the first holder asks L1 to close its position (a forced close of a settled series
    # settles it), the others are settled by anyone's SettlePosition
    txs.extend(forced(world, FORCED_CLOSE, i, market, 0, 0) if i == holders[0] and i else SettlePosition(i, market).encode()
               for i in holders)
    txs.append(SettlePosition(holders[0] if holders else 1, market).encode())
    return txs


def stress(world: World, market: int, down: bool, steps: int, divisor: int) -> list[bytes]:
    """A crash or squeeze of `steps` oracle updates, each signing a price 30% away (beyond
    every market's bound: the flash-crash clamp moves it by the bound), then a
    liquidation attempt on every holder (a 1/divisor slice) and a deleverage attempt
    between opposite holders. Built against the state as it will be: prices are
    predicted, sizes read now. On a series the crash is its underlying's."""
    txs = []
    held = market
    series = world.state.markets[market]
    assert series is not None
    if series.product != products.PERPETUAL:
        market = series.underlying
    current = world.state.markets[market]
    assert current is not None
    price = current.oracle_price
    for _ in range(steps):
        signed = max(1, price * (70 if down else 130) // 100)
        price = clamp(signed, price, current.max_price_move_ppm)
        world.time += 1
        txs.append(AdvanceTime(world.time).encode())
        txs.append(builders.oracle_update(
            market, world.time, [(0, signed, ORACLE_KEYS[0]), (1, signed, ORACLE_KEYS[1])], world.context
        ).encode())
    holders = [(i, a.size(held)) for i, a in sorted(world.state.accounts.items()) if a.size(held)]
    for account, size in holders:
        txs.append(Liquidate(account, held, max(1, abs(size) // divisor)).encode())
    longs = [i for i, size in holders if size > 0]
    shorts = [i for i, size in holders if size < 0]
    for a, b in zip(longs, shorts, strict=False):
        txs.append(Deleverage(a, b, held, 1).encode())
        txs.append(Deleverage(b, a, held, 1).encode())
    return txs


def run(world: World, scenario: list[tuple[Any, ...]], check: Any = None) -> list[tuple[bytes, Any, Any]]:
    """Apply a scenario; `check(before_state, tx, receipt)` after each transaction.
    Returns (tx, receipt, the context it was applied in) for each transaction.
    Every transaction that is not applied must leave the root unchanged."""
    log: list[tuple[bytes, Any, Any]] = []
    for action in scenario:
        built = build(world, action, [tx for tx, _, _ in log])
        for tx in built if isinstance(built, list) else [built]:
            before = world.state.copy() if check is not None else None
            root_before = world.state.root()
            receipt = world.apply(tx)
            if not receipt.applied:
                assert world.state.root() == root_before, (receipt, tx.hex())
            if check is not None:
                check(before, tx, receipt)
            log.append((tx, receipt, world.context))
    return log


def every_type(world: World, check: Any = None) -> list[bytes]:
    """A fixed scenario in which every transaction type succeeds at least once (applied to
    `world` as it is built; each step's receipt is checked): a 9x levered trade, a resting
    order's two fills (a Trade, then a Fill), a fee
    sweep, a withdrawal, a cancel, a deposit, both forced requests, price moves, a funding
    tick, a liquidation of the levered long, then a crash that leaves it bankrupt with the
    insurance fund too small, and its deleveraging against the short; an option series
    traded and marked by the risk feed; another settled at expiry, position by position. `check(world, tx)`
    runs before each step is applied (in its context)."""
    txs: list[bytes] = []

    def ok(tx: bytes) -> None:
        world.prepare(tx)
        if check is not None:
            check(world, tx)
        receipt = world.apply(tx)
        assert receipt.ok, (receipt, tx.hex())
        txs.append(tx)

    def move(market: int, price: int) -> None:
        world.time += 1
        ok(AdvanceTime(world.time).encode())
        ok(builders.oracle_update(market, world.time, [(0, price, ORACLE_KEYS[0]), (1, price, ORACLE_KEYS[1])],
                                  world.context).encode())

    price = world.state.markets[0].oracle_price  # type: ignore[union-attr]
    ok(world.trade(world.order(1, 0, True, 600, price), world.order(2, 0, False, 600, price), 600))
    resting = world.order(5, 1, True, 10, 1_000_000)
    ok(world.trade(resting, world.order(6, 1, False, 5, 1_000_000), 5))
    ok(world.fill(resting, world.order(3, 1, False, 5, 1_000_000), 5))  # its second fill names it
    ok(SweepFees(world.state.globals.fee_pool // 2).encode())
    ok(builders.withdraw(3, 1_000_000, world.next_nonce(3), 10**12, USER_KEYS[2], world.context).encode())
    ok(builders.cancel(3, world.next_nonce(3), USER_KEYS[2], world.context).encode())
    ok(deposit(world, 4, 2_000_000, 0))
    ok(forced(world, FORCED_WITHDRAW, 4, 0, 1_000_000, 0))
    ok(forced(world, FORCED_CLOSE, 6, 1, 0, 0))
    world.time += 60
    ok(AdvanceTime(world.time).encode())
    ok(FundingTick(0, 1_000).encode())
    move(0, price * 93 // 100)  # the long is under maintenance, still solvent
    ok(Liquidate(1, 0, 300).encode())
    move(0, price * 84 // 100)
    move(0, price * 76 // 100)  # bankrupt; the fund cannot carry its deficit
    ok(Deleverage(1, 2, 0, 100).encode())
    # an option series: sold against a long, then marked by the risk feed (three reports
    # whose Greeks differ: each Greek's median)
    series = world.state.markets[2]
    assert series is not None
    ok(world.trade(world.order(3, 2, False, 40, series.oracle_price), world.order(4, 2, True, 40, series.oracle_price), 40))
    world.time += 1
    ok(AdvanceTime(world.time).encode())
    ok(builders.risk_update(2, world.time, [
        (0, series.oracle_price + 300, series.delta + 9_000, series.gamma, series.vega + 50, ORACLE_KEYS[0]),
        (1, series.oracle_price + 200, series.delta, series.gamma + 5_000, series.vega - 70, ORACLE_KEYS[1]),
        (2, series.oracle_price + 100, series.delta - 4_000, series.gamma - 2_000, series.vega, ORACLE_KEYS[2]),
    ], world.context).encode())
    # a series at expiry: settled at the committee's price, then each holder paid or paying
    short = world.state.markets[4]
    assert short is not None
    ok(world.trade(world.order(5, 4, False, 30, short.oracle_price), world.order(6, 4, True, 30, short.oracle_price), 30))
    world.time = short.expiry
    ok(AdvanceTime(world.time).encode())
    strike = short.strike
    ok(builders.settle_series(4, short.expiry, [(0, strike + 20_000, ORACLE_KEYS[0]),
                                                (1, strike + 30_000, ORACLE_KEYS[1])], world.context).encode())
    ok(SettlePosition(5, 4).encode())
    ok(SettlePosition(6, 4).encode())
    return txs
