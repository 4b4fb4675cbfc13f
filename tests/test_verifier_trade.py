"""The L1 verifier's trade rules (VerifyTrade.vy) against the STF's `apply_trade` and
`apply_fill`: one
focused pre-state per check, so that every reason the rule can give (and the effects of
an applied trade: partial fills, funding settlement, closing, flipping and inserting
positions, accounts far apart or side by side in the tree) is compared at least once.
Also measures the gas of a disputed trade between accounts holding many positions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollup.l1 import records
from rollup.stf import builders
from rollup.stf.constants import CANCELLED_HASH, MAX_COLLATERAL, MAX_SIZE, PPM
from rollup.stf.fork import order_hash
from rollup.stf.reasons import Reason
from rollup.stf.signing import address_of
from rollup.stf.state import Globals, Market, OrderSlot, Position, State
from rollup.stf.transactions import FEE_BOUND, FILL, ORDER_NO_EXPIRY, AdvanceTime, Order, Trade
from rollup.stf.witness import step_witness
from tests.stf_world import USER_KEYS, World
from tests.verifier_harness import EvmVerifier

TRADE = 0x03
OUTSIDE = 4**10
"""The first account id outside the account tree."""



# ---------------------------------------------------------------------- building trades


def key_of(account: int) -> bytes:
    return USER_KEYS[(account - 1) % len(USER_KEYS)] if account >= 1 else b"\x77" * 32


def order(world: World, account: int, is_buy: bool, size: int = 10, price: int | None = None,
          market: int = 0, max_fee: int = 1_000, nonce: int | None = None, expiry: int = ORDER_NO_EXPIRY) -> Order:
    if price is None:
        price = world.state.markets[market].oracle_price  # type: ignore[union-attr]
    if nonce is None:
        nonce = world.next_nonce(account)
    return Order(account, market, is_buy, size, price, max_fee, nonce, expiry)


def signed(world: World, maker: Order, taker: Order, fill: int | None = None, maker_fee: int = 200,
           taker_fee: int = 500, maker_key: bytes | None = None, taker_key: bytes | None = None) -> Trade:
    return builders.trade(
        maker, maker_key or key_of(maker.account), taker, taker_key or key_of(taker.account),
        min(maker.size, taker.size) if fill is None else fill, world.context, maker_fee, taker_fee,
    )


def pair(world: World, maker_id: int = 1, taker_id: int = 2, maker_buys: bool = True, size: int = 10,
         fill: int | None = None, market: int = 0, maker_fee: int = 200, taker_fee: int = 500) -> bytes:
    """An honest trade at the oracle price."""
    maker = order(world, maker_id, maker_buys, size, market=market)
    taker = order(world, taker_id, not maker_buys, size, market=market)
    return signed(world, maker, taker, fill, maker_fee, taker_fee).encode()


def put_account(state: State, account_id: int, collateral: int | None = None,
                positions: tuple[Position, ...] | None = None, owner: bytes | None = None) -> None:
    """Replace parts of an account; the markets' open interest follows its positions."""
    a = state.account(account_id)
    if positions is not None:
        for m in {p.market for p in a.positions} | {p.market for p in positions}:
            change = max(0, dict((p.market, p.size) for p in positions).get(m, 0)) - max(0, a.size(m))
            market = state.markets[m]
            assert market is not None
            state.set_market(market.with_open_interest(market.open_interest + change))
    a = a._replace(
        owner=a.owner if owner is None else owner,
        collateral=a.collateral if collateral is None else collateral,
        positions=a.positions if positions is None else positions,
    )
    state.set_accounts({account_id: a})


def put_slot(state: State, account_id: int, nonce: int, slot: OrderSlot) -> None:
    root = state.set_slot(account_id, nonce, slot)
    state.set_accounts({account_id: state.account(account_id)._replace(orders_root=root)})


def put_market(state: State, market_id: int, **fields: int) -> None:
    base = state.markets[market_id] or Market(market_id)
    state.set_market(base._replace(**fields))


def add_markets(world: World, count: int) -> None:
    """Perpetual markets 2..count-1, priced, beside the world's two (in place of its series)."""
    for m in range(2, count):
        world.state.set_market(Market(m, oracle_price=10_000 * (m + 1), oracle_time=world.time,
                                      funding_time=world.time))


def with_byte(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + bytes((value,)) + data[at + 1:]


def with_signature(trade: Trade, maker: bytes | None = None, taker: bytes | None = None) -> bytes:
    return trade._replace(maker_signature=maker or trade.maker_signature,
                          taker_signature=taker or trade.taker_signature).encode()


HIGH_S = (2**256 - 1).to_bytes(32, "big")

# ---------------------------------------------------------------------- the cases

Case = Callable[[World], "bytes | list[bytes]"]
"""Builds the pre-state in `world` and returns the trade(s): every one but the last is
compared and applied; the last is compared and must give the expected reason."""

CASES: dict[str, tuple[Reason, Case]] = {}


def case(name: str, reason: Reason) -> Callable[[Case], Case]:
    def register(build: Case) -> Case:
        CASES[name] = (reason, build)
        return build
    return register


@case("ok: maker buys, whole order", Reason.OK)
def _ok_buy(w: World) -> bytes:
    return pair(w)


@case("ok: maker sells, partial fill, no fees", Reason.OK)
def _ok_sell(w: World) -> bytes:
    return pair(w, maker_id=4, taker_id=3, maker_buys=False, size=30, fill=7, maker_fee=0, taker_fee=0)


@case("ok: the widest fee rates a trade carries", Reason.OK)
def _ok_fees(w: World) -> bytes:
    maker = order(w, 1, True, 3, max_fee=PPM)
    taker = order(w, 2, False, 3, max_fee=PPM)
    return signed(w, maker, taker, 3, FEE_BOUND, FEE_BOUND).encode()


@case("ok: second fill of the same orders (filled so far)", Reason.OK)
def _ok_refill(w: World) -> list[bytes]:
    maker = order(w, 1, True, 20)
    taker = order(w, 2, False, 20)
    return [signed(w, maker, taker, 8).encode(), signed(w, maker, taker, 12).encode()]


@case("ok: the slot holds a lower nonce (fresh)", Reason.OK)
def _ok_lower_nonce(w: World) -> bytes:
    put_slot(w.state, 1, 3, OrderSlot(3, b"\x12" * 32, 5))
    maker = order(w, 1, True, 5, nonce=3 + 256)
    return signed(w, maker, order(w, 2, False, 5)).encode()


@case("ok: accounts far apart in the tree, maker id above taker id", Reason.OK)
def _ok_far(w: World) -> bytes:
    owner = address_of(key_of(OUTSIDE - 1))
    put_account(w.state, OUTSIDE - 1, collateral=10**9, owner=owner)
    maker = order(w, OUTSIDE - 1, False, 4)
    return signed(w, maker, order(w, 5, True, 4)).encode()


@case("ok: accounts side by side in the tree", Reason.OK)
def _ok_near(w: World) -> bytes:
    return pair(w, maker_id=3, taker_id=2, maker_buys=False)


@case("ok: close a position to zero and flip another", Reason.OK)
def _ok_close_flip(w: World) -> list[bytes]:
    return [pair(w, 1, 2, True, 10), pair(w, 2, 1, True, 10, fill=10), pair(w, 3, 1, False, 6),
            pair(w, 1, 3, False, 15, fill=15)]


@case("ok: insert a position between others, funding settled on both", Reason.OK)
def _ok_insert(w: World) -> bytes:
    add_markets(w, 6)
    s = w.state
    for m in range(6):
        put_market(s, m, funding_index=1_000_003 * (m + 1) * (-1) ** m)
    put_account(s, 1, positions=(Position(0, 5, 7), Position(1, -3, 0), Position(4, 2, -55), Position(5, 9, 1)))
    put_account(s, 2, positions=(Position(1, 4, 999), Position(2, -6, 123_456_789)))
    return pair(w, 1, 2, True, 10, market=3)


@case("ok: under initial margin, reducing keeps value/maintenance", Reason.OK)
def _ok_reduce_only(w: World) -> bytes:
    put_account(w.state, 1, collateral=-27_500_000, positions=(Position(0, 100, 0),))  # value 2.5M < IMR 3M
    return pair(w, 1, 2, False, 10, maker_fee=0)


@case("market mismatch", Reason.MARKET_MISMATCH)
def _mismatch(w: World) -> bytes:
    return signed(w, order(w, 1, True, market=0), order(w, 2, False, market=1)).encode()


@case("same side", Reason.SAME_SIDE)
def _same_side(w: World) -> bytes:
    return signed(w, order(w, 1, False), order(w, 2, False)).encode()


@case("self trade", Reason.SELF_TRADE)
def _self_trade(w: World) -> bytes:
    return pair(w, 3, 3)


@case("unknown market: unlisted id", Reason.UNKNOWN_MARKET)
def _unknown_market(w: World) -> bytes:
    maker = order(w, 1, True, price=5, market=9)
    return signed(w, maker, order(w, 2, False, price=5, market=9)).encode()


@case("unknown market: id past the table", Reason.UNKNOWN_MARKET)
def _unknown_market_far(w: World) -> bytes:
    maker = order(w, 1, True, price=5, market=127)
    return signed(w, maker, order(w, 2, False, price=5, market=127)).encode()


@case("no price", Reason.NO_PRICE)
def _no_price(w: World) -> bytes:
    put_market(w.state, 5)
    maker = order(w, 1, True, price=5, market=5)
    return signed(w, maker, order(w, 2, False, price=5, market=5)).encode()


def bad_field(**change: Any) -> Case:
    def build(w: World) -> bytes:
        maker = order(w, 1, True, 10)
        taker = order(w, 2, False, 10)
        maker = maker._replace(**{k[6:]: v for k, v in change.items() if k.startswith("maker_")})
        taker = taker._replace(**{k[6:]: v for k, v in change.items() if k.startswith("taker_")})
        fill = change.get("fill", 10)
        return signed(w, maker, taker, fill, change.get("fee_maker", 200), change.get("fee_taker", 500)).encode()
    return build


# (sizes, prices and fills above 2**40 - 1 and fee rates above PPM have no encoding)
for _name, _change in {
    "maker size 0": {"maker_size": 0}, "taker size 0": {"taker_size": 0},
    "fill 0": {"fill": 0}, "maker price 0": {"maker_limit_price": 0}, "taker price 0": {"taker_limit_price": 0},
}.items():
    case(f"bad field: {_name}", Reason.BAD_FIELD)(bad_field(**_change))


@case("not a step multiple", Reason.NOT_STEP_MULTIPLE)
def _step(w: World) -> bytes:
    put_market(w.state, 0, step_size=5)
    return pair(w, size=12)


@case("not a tick multiple", Reason.NOT_TICK_MULTIPLE)
def _tick(w: World) -> bytes:
    put_market(w.state, 1, tick_size=7)
    maker = order(w, 1, True, price=1_000_001, market=1)
    return signed(w, maker, order(w, 2, False, price=1_000_001, market=1)).encode()


@case("ok: tick and step multiples", Reason.OK)
def _tick_ok(w: World) -> bytes:
    put_market(w.state, 1, tick_size=7, step_size=3)
    maker = order(w, 1, True, 9, price=999_999, market=1)
    return signed(w, maker, order(w, 2, False, 9, price=999_990, market=1), 6).encode()


@case("price not fair: taker buys below the maker's price", Reason.PRICE_NOT_FAIR)
def _unfair_buy(w: World) -> bytes:
    return signed(w, order(w, 1, False, price=300_001), order(w, 2, True, price=300_000)).encode()


@case("price not fair: taker sells above the maker's price", Reason.PRICE_NOT_FAIR)
def _unfair_sell(w: World) -> bytes:
    return signed(w, order(w, 1, True, price=299_999), order(w, 2, False, price=300_000)).encode()


@case("fee too high: maker", Reason.FEE_TOO_HIGH)
def _fee_maker(w: World) -> bytes:
    return signed(w, order(w, 1, True, max_fee=199), order(w, 2, False)).encode()


@case("fee too high: taker", Reason.FEE_TOO_HIGH)
def _fee_taker(w: World) -> bytes:
    return signed(w, order(w, 1, True), order(w, 2, False, max_fee=0)).encode()


@case("expired: maker", Reason.EXPIRED)
def _expired_maker(w: World) -> bytes:
    return signed(w, order(w, 1, True, expiry=w.state.globals.time - 1), order(w, 2, False)).encode()


@case("expired: taker", Reason.EXPIRED)
def _expired_taker(w: World) -> bytes:
    return signed(w, order(w, 1, True), order(w, 2, False, expiry=0)).encode()


@case("ok: expiring now", Reason.OK)
def _expiring_now(w: World) -> bytes:
    now = w.state.globals.time
    return signed(w, order(w, 1, True, expiry=now), order(w, 2, False, expiry=now)).encode()


@case("unknown account: maker outside the tree", Reason.UNKNOWN_ACCOUNT)
def _unknown_maker_outside(w: World) -> bytes:
    return signed(w, order(w, OUTSIDE, True), order(w, 2, False)).encode()


@case("unknown account: maker id 2**32-1", Reason.UNKNOWN_ACCOUNT)
def _unknown_maker_max(w: World) -> bytes:
    return signed(w, order(w, 2**32 - 1, True), order(w, 2, False)).encode()


@case("unknown account: maker without owner", Reason.UNKNOWN_ACCOUNT)
def _unknown_maker_empty(w: World) -> bytes:
    return signed(w, order(w, 77, True), order(w, 2, False)).encode()


@case("unknown account: taker outside the tree", Reason.UNKNOWN_ACCOUNT)
def _unknown_taker_outside(w: World) -> bytes:
    return signed(w, order(w, 1, True), order(w, OUTSIDE + 3, False)).encode()


@case("unknown account: taker without owner", Reason.UNKNOWN_ACCOUNT)
def _unknown_taker_empty(w: World) -> bytes:
    return signed(w, order(w, 1, True), order(w, 1000, False)).encode()


@case("bad signature: maker s = 0", Reason.BAD_SIGNATURE)
def _bad_sig_maker_v(w: World) -> bytes:
    t = signed(w, order(w, 1, True), order(w, 2, False))
    return with_signature(t, maker=t.maker_signature[:32] + bytes(32) + t.maker_signature[64:])


@case("bad signature: maker high s", Reason.BAD_SIGNATURE)
def _bad_sig_maker_s(w: World) -> bytes:
    t = signed(w, order(w, 1, True), order(w, 2, False))
    return with_signature(t, maker=t.maker_signature[:32] + HIGH_S + t.maker_signature[64:])


@case("bad signature: taker r = 0", Reason.BAD_SIGNATURE)
def _bad_sig_taker(w: World) -> bytes:
    t = signed(w, order(w, 1, True), order(w, 2, False))
    return with_signature(t, taker=b"\0" * 32 + t.taker_signature[32:])


@case("wrong signer: maker", Reason.WRONG_SIGNER)
def _wrong_maker(w: World) -> bytes:
    return signed(w, order(w, 1, True), order(w, 2, False), maker_key=key_of(2)).encode()


@case("wrong signer: taker signs another order", Reason.WRONG_SIGNER)
def _wrong_taker(w: World) -> bytes:
    t = signed(w, order(w, 1, True), order(w, 2, False))
    other = signed(w, order(w, 1, True), order(w, 2, False, size=11))
    return with_signature(t, taker=other.taker_signature)


@case("nonce used: the maker's slot holds a higher nonce", Reason.NONCE_USED)
def _nonce_higher(w: World) -> bytes:
    put_slot(w.state, 1, 300, OrderSlot(300, b"\x34" * 32, 0))
    return signed(w, order(w, 1, True, nonce=300 - 256), order(w, 2, False)).encode()


@case("nonce used: same nonce, another order", Reason.NONCE_USED)
def _nonce_other(w: World) -> list[bytes]:
    first = pair(w, 1, 2, True, 10, fill=4)
    taker = order(w, 2, False, 10)
    maker = order(w, 1, True, 11, nonce=w.nonces[1])  # the first trade's maker nonce
    return [first, signed(w, maker, taker, 4).encode()]


@case("nonce used: taker order cancelled", Reason.NONCE_USED)
def _nonce_cancelled(w: World) -> list[bytes]:
    taker = order(w, 2, False, 10)
    cancel = builders.cancel(2, taker.nonce, key_of(2), w.context).encode()
    return [cancel, signed(w, order(w, 1, True), taker).encode()]


@case("nonce used: cancelled hash in the slot", Reason.NONCE_USED)
def _nonce_cancelled_direct(w: World) -> bytes:
    put_slot(w.state, 1, 9, OrderSlot(9, CANCELLED_HASH, 2))
    return signed(w, order(w, 1, True, nonce=9), order(w, 2, False)).encode()


@case("overfill: maker", Reason.OVERFILL)
def _overfill_maker(w: World) -> bytes:
    return pair(w, fill=11)


@case("overfill: taker, after a partial fill", Reason.OVERFILL)
def _overfill_taker(w: World) -> bytes:
    maker = order(w, 1, True, 100)
    taker = order(w, 2, False, 10)
    digest = order_hash(taker)
    put_slot(w.state, 2, taker.nonce, OrderSlot(taker.nonce, digest, 6))
    return signed(w, maker, taker, 5).encode()


@case("under margin: maker", Reason.UNDER_MARGIN)
def _margin_maker(w: World) -> bytes:
    return pair(w, 1, 2, True, 700, market=0)  # 700 * 300,000 = 210M notional on 20M


@case("under margin: taker", Reason.UNDER_MARGIN)
def _margin_taker(w: World) -> bytes:
    put_account(w.state, 1, collateral=10**12)
    return pair(w, 1, 2, False, 200, market=1)


@case("under margin: reducing but worse value/maintenance", Reason.UNDER_MARGIN)
def _margin_reduce(w: World) -> bytes:
    put_account(w.state, 1, collateral=-27_500_000, positions=(Position(0, 100, 0),))
    maker = order(w, 1, False, 10, price=270_000, max_fee=PPM)  # 10% under the index: the band's edge
    return signed(w, maker, order(w, 2, True, 10, price=270_000), 10, FEE_BOUND, 0).encode()


@case("price beyond the band above", Reason.PRICE_OUT_OF_BAND)
def _band_above(w: World) -> bytes:
    maker = order(w, 1, False, 10, price=330_001)  # one unit past index + 10%
    return signed(w, maker, order(w, 2, True, 10, price=330_001)).encode()


@case("price at the band's upper edge", Reason.OK)
def _band_edge(w: World) -> bytes:
    maker = order(w, 1, False, 10, price=330_000)
    return signed(w, maker, order(w, 2, True, 10, price=330_000)).encode()


@case("price beyond the band below", Reason.PRICE_OUT_OF_BAND)
def _band_below(w: World) -> bytes:
    maker = order(w, 1, True, 10, price=269_999)
    return signed(w, maker, order(w, 2, False, 10, price=269_999)).encode()


@case("under margin: flipping while under initial margin", Reason.UNDER_MARGIN)
def _margin_flip(w: World) -> bytes:
    put_account(w.state, 1, collateral=-27_500_000, positions=(Position(0, 100, 0),))
    return pair(w, 1, 2, False, 200)


@case("under margin: negative value, no position left", Reason.UNDER_MARGIN)
def _margin_negative(w: World) -> bytes:
    put_account(w.state, 1, collateral=-31_000_000, positions=(Position(0, 100, 0),))
    return pair(w, 1, 2, False, 100, maker_fee=0)


@case("overflow: maker collateral", Reason.OVERFLOW)
def _overflow_collateral(w: World) -> bytes:
    put_account(w.state, 1, collateral=MAX_COLLATERAL - 1_000)
    return pair(w, 1, 2, False, 10, maker_fee=0)


@case("overflow: taker size", Reason.OVERFLOW)
def _overflow_size(w: World) -> bytes:
    put_account(w.state, 2, collateral=10**20, positions=(Position(0, MAX_SIZE - 5, 0),))
    return pair(w, 1, 2, False, 10)


@case("overflow: taker negative collateral", Reason.OVERFLOW)
def _overflow_negative(w: World) -> bytes:
    put_account(w.state, 2, collateral=-MAX_COLLATERAL + 10, positions=(Position(1, 2**39, 0),))
    return pair(w, 1, 2, False, 10)


@case("overflow: fee pool", Reason.OVERFLOW)
def _overflow_fee_pool(w: World) -> bytes:
    w.state.set_globals(w.state.globals.with_pools(MAX_COLLATERAL - 100, w.state.globals.funding_pool))
    return pair(w)


@case("ok: fee pool at its bound", Reason.OK)
def _fee_pool_full(w: World) -> bytes:
    g: Globals = w.state.globals
    w.state.set_globals(g.with_pools(MAX_COLLATERAL - (10 * 300_000 * 700 // PPM), g.funding_pool))
    return pair(w)


@case("ok: short reduced by buying, under initial margin", Reason.OK)
def _ok_reduce_short(w: World) -> bytes:
    put_account(w.state, 1, collateral=32_500_000, positions=(Position(0, -100, 0),))  # value 2.5M
    return pair(w, 1, 2, True, 30, maker_fee=0)


@case("ok: no maintenance left, value >= 0, initial requirement unmet", Reason.OK)
def _ok_no_maintenance(w: World) -> bytes:
    put_market(w.state, 1, maintenance_margin_ppm=0)
    put_account(w.state, 1, collateral=-27_000_000,
                positions=(Position(0, 100, 0), Position(1, 1, 0)))  # value 4M; IMR 3.1M
    put_market(w.state, 0, oracle_price=272_000)  # value 1.2M < IMR 2.82M
    return pair(w, 1, 2, False, 100, maker_fee=0)


@case("under margin: reducing one of several positions, value/maintenance falls", Reason.UNDER_MARGIN)
def _margin_reduce_several(w: World) -> bytes:
    put_account(w.state, 1, collateral=-26_000_000,
                positions=(Position(0, 100, 0), Position(1, -2, 0)))  # value 2M, MMR 1.6M
    maker = order(w, 1, False, 50, price=270_000, max_fee=PPM)
    return signed(w, maker, order(w, 2, True, 50, price=270_000), 50, 10_000, 0).encode()


# ---------------------------------------------------------------------- Fill: a posted order named


def posted(w: World, maker_id: int = 1, size: int = 30, first_fill: int = 10, **fields: Any) -> tuple[Order, bytes]:
    """A maker order posted by a first Trade (of `first_fill` lots against account 2)."""
    maker = order(w, maker_id, True, size, **fields)
    return maker, signed(w, maker, order(w, 2, False, first_fill), first_fill).encode()


def named(w: World, maker: Order, taker: Order, fill: int, maker_fee: int = 200, taker_fee: int = 500,
          taker_key: bytes | None = None) -> bytes:
    return builders.fill(maker, taker, taker_key or key_of(taker.account), fill, w.context, maker_fee,
                         taker_fee).encode()


@case("fill ok: a posted order filled again", Reason.OK)
def _fill_ok(w: World) -> list[bytes]:
    maker, first = posted(w)
    return [first, named(w, maker, order(w, 3, False, 10), 10)]


@case("fill ok: filled to its size, by two fills", Reason.OK)
def _fill_ok_twice(w: World) -> list[bytes]:
    maker, first = posted(w)
    return [first, named(w, maker, order(w, 3, False, 5), 5), named(w, maker, order(w, 4, False, 15), 15)]


@case("fill: overfill", Reason.OVERFILL)
def _fill_overfill(w: World) -> list[bytes]:
    maker, first = posted(w)
    return [first, named(w, maker, order(w, 3, False, 21), 21)]


@case("fill: never posted", Reason.NO_ORDER)
def _fill_never(w: World) -> bytes:
    return named(w, order(w, 1, True, 10), order(w, 3, False, 10), 10)


@case("fill: cancelled after it was posted", Reason.NO_ORDER)
def _fill_cancelled(w: World) -> list[bytes]:
    maker, first = posted(w)
    cancel = builders.cancel(1, maker.nonce, key_of(1), w.context).encode()
    return [first, cancel, named(w, maker, order(w, 3, False, 5), 5)]


@case("fill: its slot taken by a later nonce", Reason.NO_ORDER)
def _fill_reused(w: World) -> list[bytes]:
    maker, first = posted(w)
    later = maker._replace(nonce=maker.nonce + 256, size=5)
    second = signed(w, later, order(w, 3, False, 5), 5).encode()
    return [first, second, named(w, maker, order(w, 4, False, 5), 5)]


@case("fill: maker outside the tree", Reason.UNKNOWN_ACCOUNT)
def _fill_outside(w: World) -> bytes:
    return named(w, order(w, OUTSIDE + 1, True, 10), order(w, 3, False, 10), 10)


@case("fill: maker without owner", Reason.UNKNOWN_ACCOUNT)
def _fill_no_owner(w: World) -> bytes:
    return named(w, order(w, 77, True, 10), order(w, 3, False, 10), 10)


@case("fill: market mismatch", Reason.MARKET_MISMATCH)
def _fill_mismatch(w: World) -> list[bytes]:
    maker, first = posted(w)
    return [first, named(w, maker, order(w, 3, False, 5, market=1), 5)]


@case("fill: self trade", Reason.SELF_TRADE)
def _fill_self(w: World) -> list[bytes]:
    maker, first = posted(w)
    return [first, named(w, maker, order(w, 1, False, 5), 5)]


@case("fill: the posted order expired since", Reason.EXPIRED)
def _fill_expired(w: World) -> list[bytes]:
    maker, first = posted(w, expiry=w.state.globals.time)
    return [first, AdvanceTime(w.state.globals.time + 1).encode(), named(w, maker, order(w, 3, False, 5), 5)]


@case("fill: the taker's signature by another key", Reason.WRONG_SIGNER)
def _fill_wrong_taker(w: World) -> list[bytes]:
    maker, first = posted(w)
    return [first, named(w, maker, order(w, 3, False, 5), 5, taker_key=key_of(4))]


@case("fill: the taker under margin", Reason.UNDER_MARGIN)
def _fill_margin(w: World) -> list[bytes]:
    put_account(w.state, 1, collateral=10**12)
    maker, first = posted(w, size=900)
    return [first, named(w, maker, order(w, 3, False, 800), 800)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_trade_case(verifier: EvmVerifier, fresh_world: Any, name: str) -> None:
    expected, build = CASES[name]
    world = fresh_world()
    built = build(world)
    txs = built if isinstance(built, list) else [built]
    for tx in txs[:-1]:
        verifier.compare(world.state, tx, world.context)
        assert world.apply(tx).ok
    kind, reason = verifier.compare(world.state, txs[-1], world.context)
    assert reason == expected, (name, Reason(reason))
    assert kind == txs[-1][0] and kind in (TRADE, FILL)


def test_every_trade_reason_compared() -> None:
    wanted = {
        Reason.OK, Reason.BAD_FIELD, Reason.MARKET_MISMATCH, Reason.SAME_SIDE, Reason.SELF_TRADE,
        Reason.UNKNOWN_MARKET, Reason.NO_PRICE, Reason.NOT_STEP_MULTIPLE, Reason.NOT_TICK_MULTIPLE,
        Reason.PRICE_NOT_FAIR, Reason.FEE_TOO_HIGH, Reason.EXPIRED, Reason.UNKNOWN_ACCOUNT,
        Reason.BAD_SIGNATURE, Reason.WRONG_SIGNER, Reason.NONCE_USED, Reason.OVERFILL,
        Reason.UNDER_MARGIN, Reason.OVERFLOW, Reason.NO_ORDER,
    }
    # each case's own test checks the verifier names its reason: together they cover these
    assert wanted <= {expected for expected, _ in CASES.values()}


# ---------------------------------------------------------------------- random accounts near the margin


positions_of = st.dictionaries(st.integers(0, 5), st.integers(-400, 400).filter(bool), max_size=6)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    fractions=st.lists(st.tuples(st.integers(0, 200_000), st.sampled_from([0, 25, 50, 100])),
                       min_size=6, max_size=6),
    maker_positions=positions_of, taker_positions=positions_of,
    margins=st.tuples(st.integers(-30_000, 160_000), st.integers(-30_000, 160_000)),
    extra=st.tuples(st.sampled_from([0, 10**3, 10**6, 10**8]), st.sampled_from([0, 10**3, 10**6, 10**8])),
    reduce=st.integers(0, 4),
    funding=st.lists(st.integers(-10**12, 10**12), min_size=6, max_size=6),
    market=st.integers(0, 5), maker_buys=st.booleans(), size=st.integers(1, 500),
    short=st.integers(0, 3), fees=st.tuples(st.integers(0, 3_000), st.integers(0, 3_000)),
    price_offset=st.integers(-3, 3),
)
def test_random_accounts_near_the_margin(
    verifier: EvmVerifier, fresh_world: Any, fractions: list[tuple[int, int]],
    maker_positions: dict[int, int], taker_positions: dict[int, int], margins: tuple[int, int],
    extra: tuple[int, int], reduce: int, funding: list[int], market: int, maker_buys: bool, size: int,
    short: int,
    fees: tuple[int, int], price_offset: int,
) -> None:
    """Accounts with several positions, stale funding and collateral near their margin
    requirements (value = margins[i] ppm of gross exposure + extra[i]), markets with
    random initial and maintenance fractions, trades that often reduce the maker's
    position (by reduce/4 of it): the margin rule's every branch."""
    w = fresh_world()
    add_markets(w, 6)
    s = w.state
    for m, (initial, percent) in enumerate(fractions):
        put_market(s, m, initial_margin_ppm=initial, maintenance_margin_ppm=initial * percent // 100,
                   funding_index=funding[m])
    for account_id, held, margin, plus in ((1, maker_positions, margins[0], extra[0]),
                                            (2, taker_positions, margins[1], extra[1])):
        positions = tuple(Position(m, held[m], funding[m] // 3) for m in sorted(held))
        prices = {m: s.markets[m].oracle_price for m in held}
        exposure = sum(held[m] * prices[m] for m in held)
        gross = sum(abs(held[m]) * prices[m] for m in held)
        put_account(s, account_id, collateral=-exposure + gross * margin // PPM + plus, positions=positions)
    held_size = maker_positions.get(market, 0)
    if reduce and held_size:
        maker_buys, size = held_size < 0, max(1, abs(held_size) * reduce // 4)
    price = s.markets[market].oracle_price + price_offset
    maker = order(w, 1, maker_buys, size, price=price, market=market, max_fee=PPM)
    taker = order(w, 2, not maker_buys, size, price=price, market=market, max_fee=PPM)
    tx = signed(w, maker, taker, max(1, size - short), *fees).encode()
    verifier.compare(s, tx, w.context)


# ---------------------------------------------------------------------- gas


def gas_of(verifier: EvmVerifier, world: World, tx: bytes) -> int:
    verifier.sync(world.context)
    w = records.step_witness(step_witness(world.state, tx))
    return int(verifier.verifier.functions.step(
        tx, world.state.root(), world.context.timestamp, len(world.context.deposit_heads) - 1,
        len(world.context.forced_heads) - 1, w,
    ).estimate_gas())


def many_positions(world: World, count: int) -> None:
    """Accounts 1 and 2 each hold `count` positions (markets 0..count-1), all owing
    funding; both well collateralized."""
    add_markets(world, max(count, 2))
    s = world.state
    for m in range(count):
        put_market(s, m, funding_index=10**9 * (m + 1))
    put_account(s, 1, collateral=10**12, positions=tuple(Position(m, 50 + m, 0) for m in range(count)))
    put_account(s, 2, collateral=10**12, positions=tuple(Position(m, -40 - m, 7) for m in range(count)))


@pytest.mark.parametrize("count", [8, 16])
def test_trade_gas(verifier: EvmVerifier, fresh_world: Any, count: int) -> None:
    """A trade between two accounts holding `count` positions each, funding settled on
    every position: the margin rule's common path (value >= initial requirement), and
    its longest path (under initial margin, reduce-only: maintenance requirements of
    before and after, and the reduce-only scan)."""
    world = fresh_world()
    many_positions(world, count)
    tx = pair(world, 1, 2, True, 10, market=3)
    assert verifier.compare(world.state, tx, world.context) == (TRADE, 0)
    common = gas_of(verifier, world, tx)

    world = fresh_world()
    many_positions(world, count)
    s = world.state
    # account 1 just above maintenance but below initial margin; it reduces
    held = s.account(1)
    notional = sum(p.size * s.markets[p.market].oracle_price for p in held.positions)
    put_account(s, 1, collateral=-notional + notional * 7 // 100)
    tx = pair(world, 1, 2, False, 10, market=3, maker_fee=0)
    assert verifier.compare(world.state, tx, world.context) == (TRADE, 0)
    reducing = gas_of(verifier, world, tx)
    print(f"\ntrade gas with {count} positions per account: common path {common:,}; reduce-only path {reducing:,}")
    assert max(common, reducing) < 1_000_000
