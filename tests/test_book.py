"""The operator's order book (rollup.operator.book): a unit test per rule, the two-phase
protocol against the real STF, and hypothesis properties over random order streams
(never crossed, price-time priority, sizes conserved, IOC never rests, post-only never
takes, fills at the maker's price within the taker's limit, step multiples, and the
level aggregates agree with the orders)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollup.operator.book import (
    Entry,
    ExitReason,
    Fill,
    Kind,
    MatchResult,
    OrderBook,
    PriceLevel,
    Rejection,
    StaleMatch,
    Verdict,
)
from rollup.stf import Reason, builders
from rollup.stf.constants import MAX_PRICE, MAX_SIZE, ORDER_SLOTS, PPM
from rollup.stf.transactions import Order
from tests.stf_world import USER_KEYS, make_world

SIG = b"\x01" * 65
TICK, STEP = 5, 10
FAR = 10**9


def order(account: int, is_buy: bool, size: int, price: int, nonce: int, expiry: int = FAR,
          market: int = 0) -> Order:
    return Order(account, market, is_buy, size, price, 1_000, nonce, expiry)


class Client:
    """Orders with fresh nonces per account, placed with every fill accepted."""

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.nonces: dict[int, int] = defaultdict(int)

    def order(self, account: int, is_buy: bool, size: int, price: int, expiry: int = FAR) -> Order:
        self.nonces[account] += 1
        return order(account, is_buy, size, price, self.nonces[account], expiry)

    def place(self, account: int, is_buy: bool, size: int, price: int, kind: Kind = Kind.LIMIT,
              now: int = 0, expiry: int = FAR) -> tuple[MatchResult, Any]:
        result = self.book.match(self.order(account, is_buy, size, price, expiry), SIG, kind, now=now)
        return result, self.book.apply(result)


def snapshot(book: OrderBook) -> tuple[Any, ...]:
    return (book.version, len(book), book.depth(1000), list(book.orders(True)), list(book.orders(False)))


@pytest.fixture
def book() -> OrderBook:
    return OrderBook(0, TICK, STEP)


@pytest.fixture
def client(book: OrderBook) -> Client:
    return Client(book)


# ---------------------------------------------------------------------------- entry


@pytest.mark.parametrize(
    "bad, signature, reason",
    [
        (order(1, True, 10, 100, 1, market=1), SIG, Rejection.WRONG_MARKET),
        (order(1, True, 0, 100, 1), SIG, Rejection.BAD_FIELD),
        (order(1, True, MAX_SIZE + 1, 100, 1), SIG, Rejection.BAD_FIELD),
        (order(1, True, 10, 0, 1), SIG, Rejection.BAD_FIELD),
        (order(1, True, 10, MAX_PRICE + 1, 1), SIG, Rejection.BAD_FIELD),
        (order(1, True, 10, 100, 1)._replace(max_fee_ppm=PPM + 1), SIG, Rejection.BAD_FIELD),
        (order(1, True, 10, 100, 1), SIG[:64], Rejection.BAD_FIELD),
        (order(1, True, 10, 102, 1), SIG, Rejection.NOT_TICK_MULTIPLE),
        (order(1, True, STEP - 1, 100, 1), SIG, Rejection.BELOW_STEP),
        (order(1, True, 10, 100, 1, expiry=49), SIG, Rejection.EXPIRED),
    ],
)
def test_entry_refusals(book: OrderBook, bad: Order, signature: bytes, reason: Rejection) -> None:
    before = snapshot(book)
    result = book.match(bad, signature, Kind.LIMIT, now=50)
    assert result.rejected is reason and not result.fills and not result.rests
    applied = book.apply(result)
    assert not applied.rested and len(book) == 0
    assert snapshot(book)[1:] == before[1:]
    # a refused order consumes no id
    ok = book.apply(book.match(order(1, True, 10, 100, 1, expiry=50), SIG, now=50))
    assert ok.rested and ok.taker.id == 1


def test_duplicate_and_nonce_slots(book: OrderBook) -> None:
    nonce = 7 + ORDER_SLOTS
    first = book.apply(book.match(order(1, True, 10, 100, nonce), SIG, now=0)).taker
    assert book.match(order(1, True, 20, 95, nonce), SIG, now=0).rejected is Rejection.DUPLICATE
    # a lower nonce in the same slot is dead in the STF once the higher one trades
    assert book.match(order(1, True, 10, 100, 7), SIG, now=0).rejected is Rejection.NONCE_SUPERSEDED
    # another account's slot is independent
    assert book.apply(book.match(order(2, True, 10, 100, 7), SIG, now=0)).rested
    # a higher nonce in the same slot replaces the resting order
    result = book.match(order(1, False, 10, 200, nonce + ORDER_SLOTS), SIG, now=0)
    assert [(r.entry.id, r.reason) for r in result.removals] == [(first.id, ExitReason.REPLACED)]
    applied = book.apply(result)
    assert applied.rested and [(x.entry.id, x.reason) for x in applied.exits] == [(first.id, ExitReason.REPLACED)]
    assert book.find(1, nonce) is None and book.find(1, nonce + ORDER_SLOTS) == applied.taker


def test_replacement_is_not_a_self_trade(book: OrderBook) -> None:
    """A replacing order may cross the order it replaces: that one just leaves."""
    old = book.apply(book.match(order(1, False, 10, 100, 3), SIG, now=0)).taker
    result = book.match(order(1, True, 10, 100, 3 + ORDER_SLOTS), SIG, Kind.POST_ONLY, now=0)
    assert result.rejected is None and result.rests and not result.fills
    assert [r.reason for r in result.removals] == [ExitReason.REPLACED]
    book.apply(result)
    assert book.get(old.id) is None and book.best_bid() == 100 and book.best_ask() is None


# ------------------------------------------------------------------------- matching


def test_resting_orders_and_depth(book: OrderBook, client: Client) -> None:
    client.place(1, True, 10, 100)
    client.place(2, True, 25, 100)  # 20 tradeable lots: 5 are below one step
    client.place(3, True, 10, 95)
    client.place(4, False, 30, 110)
    assert book.best_bid() == 100 and book.best_ask() == 110
    depth = book.depth(5)
    assert depth.bids == (PriceLevel(100, 30, 2), PriceLevel(95, 10, 1))
    assert depth.asks == (PriceLevel(110, 30, 1),)
    assert book.depth(1).bids == (PriceLevel(100, 30, 2),)
    assert book.depth(0) == ((), ())
    assert [e.order.account for e in book.orders(True)] == [1, 2, 3]


def test_price_then_time_priority_at_the_makers_price(book: OrderBook, client: Client) -> None:
    client.place(1, False, 10, 110)
    client.place(2, False, 10, 105)
    client.place(3, False, 10, 105)
    client.place(4, False, 10, 100)
    result, applied = client.place(5, True, 40, 110)
    assert [(f.maker_entry.order.account, f.size, f.price) for f in result.fills] == [
        (4, 10, 100), (2, 10, 105), (3, 10, 105), (1, 10, 110)
    ]
    assert not applied.rested and len(book) == 0
    assert [x.reason for x in applied.exits] == [ExitReason.FILLED] * 4


def test_sell_taker_walks_bids_down_and_stops_at_its_limit(book: OrderBook, client: Client) -> None:
    client.place(1, True, 10, 100)
    client.place(2, True, 10, 95)
    client.place(3, True, 10, 90)
    result, applied = client.place(4, False, 50, 95)
    assert [(f.maker_entry.order.account, f.price) for f in result.fills] == [(1, 100), (2, 95)]
    assert applied.rested and applied.taker.remaining == 30 and applied.taker.filled == 20
    assert book.best_bid() == 90 and book.best_ask() == 95


def test_partial_maker_fill_keeps_priority(book: OrderBook, client: Client) -> None:
    a, _ = client.place(1, False, 50, 100)
    client.place(2, False, 50, 100)
    result, _ = client.place(3, True, 20, 100)
    assert [(f.maker_entry.id, f.size) for f in result.fills] == [(a.taker.id, 20)]
    maker = book.get(a.taker.id)
    assert maker is not None and maker.remaining == 30 and maker.filled == 20
    assert result.fills[0].maker_entry.remaining == 50  # fills show entries before the fill
    result, _ = client.place(4, True, 40, 100)
    assert [(f.maker_entry.order.account, f.size) for f in result.fills] == [(1, 30), (2, 10)]
    assert book.depth().asks == (PriceLevel(100, 40, 1),)


def test_steps_and_dust(book: OrderBook, client: Client) -> None:
    maker, _ = client.place(1, False, 35, 100)  # 30 tradeable
    result, applied = client.place(2, True, 27, 100)  # 20 tradeable
    assert [f.size for f in result.fills] == [20]
    assert not applied.rested and applied.taker.remaining == 7  # the 7 below a step never rests
    assert book.get(maker.taker.id).remaining == 15  # type: ignore[union-attr]
    result, applied = client.place(3, True, 30, 100)
    assert [f.size for f in result.fills] == [10]
    assert [(x.reason, x.entry.remaining) for x in applied.exits] == [(ExitReason.FILLED, 5)]
    assert applied.rested and applied.taker.remaining == 20
    assert book.best_ask() is None and book.depth().bids == (PriceLevel(100, 20, 1),)


def test_ioc_never_rests(book: OrderBook, client: Client) -> None:
    client.place(1, False, 10, 100)
    result, applied = client.place(2, True, 30, 105, Kind.IOC)
    assert result.filled == 10 and not result.rests and not applied.rested
    result, applied = client.place(2, True, 30, 105, Kind.IOC)
    assert not result.fills and result.rejected is None and not applied.rested
    assert len(book) == 0


def test_post_only(book: OrderBook, client: Client) -> None:
    client.place(1, False, 10, 100)
    before = snapshot(book)
    result, applied = client.place(2, True, 10, 100, Kind.POST_ONLY)
    assert result.rejected is Rejection.WOULD_CROSS and not result.fills and not applied.rested
    assert snapshot(book)[1:] == before[1:]
    # its own crossing order makes it cross too (no self-trade cancel for post-only)
    result, _ = client.place(1, True, 10, 100, Kind.POST_ONLY)
    assert result.rejected is Rejection.WOULD_CROSS
    result, applied = client.place(2, True, 10, 95, Kind.POST_ONLY)
    assert result.rejected is None and applied.rested and book.best_bid() == 95


def test_post_only_rests_over_expired_orders_only(book: OrderBook, client: Client) -> None:
    stale, _ = client.place(1, False, 10, 100, expiry=5)
    result, applied = client.place(2, True, 10, 100, Kind.POST_ONLY, now=6)
    assert result.rejected is None and applied.rested
    assert [(x.entry.id, x.reason) for x in applied.exits] == [(stale.taker.id, ExitReason.EXPIRED)]
    assert book.best_ask() is None and book.best_bid() == 100


def test_self_trade_prevention_cancels_resting(book: OrderBook, client: Client) -> None:
    mine, _ = client.place(1, False, 10, 100)
    theirs, _ = client.place(2, False, 10, 100)
    far, _ = client.place(1, False, 10, 120)  # not reached: stays
    result, applied = client.place(1, True, 30, 105)
    assert [f.maker_entry.id for f in result.fills] == [theirs.taker.id]
    assert [(r.entry.id, r.reason) for r in result.removals] == [(mine.taker.id, ExitReason.SELF_TRADE)]
    assert applied.rested and applied.taker.remaining == 20
    assert book.get(mine.taker.id) is None and book.get(far.taker.id) is not None
    assert book.best_bid() == 105 and book.best_ask() == 120


def test_expired_makers_are_skipped_and_removed(book: OrderBook, client: Client) -> None:
    old, _ = client.place(1, False, 10, 100, expiry=10)
    live, _ = client.place(2, False, 10, 100)
    result = book.match(client.order(3, True, 10, 100), SIG, now=10)  # expiry == now: alive
    assert [f.maker_entry.id for f in result.fills] == [old.taker.id]
    result = book.match(client.order(3, True, 10, 100), SIG, now=11)
    assert [f.maker_entry.id for f in result.fills] == [live.taker.id]
    assert [(r.entry.id, r.reason) for r in result.removals] == [(old.taker.id, ExitReason.EXPIRED)]
    applied = book.apply(result)
    assert {x.entry.id for x in applied.exits} == {old.taker.id, live.taker.id} and len(book) == 0


def test_expire_removes_all_expired(book: OrderBook, client: Client) -> None:
    for i in range(10):
        client.place(1 + i % 3, i % 2 == 0, 10, 100 + 10 * (i % 2), expiry=i)
    book.cancel(1, 1)
    gone = book.expire(6)
    assert sorted(e.order.expiry for e in gone) == [1, 2, 3, 4, 5]
    assert sorted(e.order.expiry for e in [*book.orders(True), *book.orders(False)]) == [6, 7, 8, 9]
    assert book.expire(6) == ()


def test_a_series_book_closes_at_its_expiry() -> None:
    """An option series' book takes orders while the STF would trade them (time before
    the series' expiry): an order's deadline is a second before the series expires, its
    resting orders leave at that time, and none is admitted after."""
    from rollup.stf import products
    from rollup.stf.state import Market

    book = OrderBook.for_market(Market(id=0, product=products.CALL, underlying=1, strike=5, expiry=50))
    assert book.closes_at == 50
    client = Client(book)
    resting, _ = client.place(1, False, 10, 100)  # no expiry of its own
    assert book.deadline(resting.taker.order) == 49
    result = book.match(client.order(2, True, 5, 100), SIG, now=49)  # the last second: trades
    assert [f.maker_entry.id for f in result.fills] == [resting.taker.id]
    late = book.match(client.order(3, False, 10, 90), SIG, now=50)
    assert late.rejected == Rejection.EXPIRED
    assert [e.id for e in book.expire(50)] == [resting.taker.id] and len(book) == 0


def test_cancel_lookups_and_reduce(book: OrderBook, client: Client) -> None:
    a, b, c = (client.place(account, True, 30, 100)[1].taker for account in (1, 2, 3))
    assert a.seq < b.seq < c.seq and a.id < b.id < c.id
    assert book.find(1, 1) == a == book.get(a.id)
    assert book.cancel(1, 1) == a and book.cancel(1, 1) is None and book.get(a.id) is None
    assert book.cancel_id(c.id) == c and book.cancel_id(c.id) is None
    assert book.remove(999) is None
    assert book.depth().bids == (PriceLevel(100, 30, 1),)
    reduced = book.reduce(b.id, 12)
    assert reduced is not None and reduced.remaining == 18 and book.depth().bids == (PriceLevel(100, 10, 1),)
    with pytest.raises(ValueError):
        book.reduce(b.id, 19)
    assert book.reduce(b.id, 9) is None  # 9 left: below one step
    assert len(book) == 0 and book.best_bid() is None
    with pytest.raises(KeyError):
        book.reduce(b.id, 1)


def test_lazy_deletion_keeps_priority_and_compacts(book: OrderBook, client: Client) -> None:
    placed = [client.place(1 + i % 50, False, 10, 100)[0].taker for i in range(200)]
    for e in placed[1:150]:
        book.remove(e.id)
    assert [e.id for e in book.orders(False)] == [placed[0].id] + [e.id for e in placed[150:]]
    assert book.depth().asks == (PriceLevel(100, 510, 51),)
    result, _ = client.place(99, True, 30, 100)
    assert [f.maker_entry.id for f in result.fills] == [placed[0].id, placed[150].id, placed[151].id]


# ------------------------------------------------------------------------ two phases


def test_match_is_pure_and_results_go_stale(book: OrderBook, client: Client) -> None:
    client.place(1, False, 10, 100, expiry=3)
    client.place(2, False, 10, 100)
    client.place(3, False, 10, 105)
    before = snapshot(book)
    result = book.match(client.order(4, True, 35, 105), SIG, now=5)
    assert len(result.fills) == 2 and result.removals and result.rests
    assert snapshot(book) == before
    other = book.match(client.order(5, True, 10, 100), SIG, now=5)
    book.apply(other)
    with pytest.raises(StaleMatch):
        book.apply(result)


def test_partial_apply_drop_maker_and_resume(book: OrderBook, client: Client) -> None:
    a, _ = client.place(1, False, 10, 100)
    b, _ = client.place(2, False, 10, 100)
    mine, _ = client.place(4, False, 10, 101 + 4)
    c, _ = client.place(3, False, 10, 105)
    result = book.match(client.order(4, True, 30, 110), SIG, now=0)
    assert [f.maker_entry.id for f in result.fills] == [a.taker.id, b.taker.id, c.taker.id]
    # the STF took fill 0 and refused fill 1 because of its maker
    applied = book.apply(result, fills=1)
    assert not applied.rested and applied.taker.remaining == 20 and applied.taker.id == result.taker.id
    assert book.get(mine.taker.id) is not None  # met after fill 1: not committed
    assert book.remove(b.taker.id) is not None
    resumed = book.resume(applied.taker, now=0)
    assert [(f.maker_entry.id, f.taker_entry.remaining) for f in resumed.fills] == [(c.taker.id, 20)]
    assert [r.reason for r in resumed.removals] == [ExitReason.SELF_TRADE]
    final = book.apply(resumed)
    assert final.rested and final.taker.remaining == 10 and book.get(final.taker.id) == final.taker
    assert book.best_bid() == 110 and book.best_ask() is None
    with pytest.raises(ValueError):
        book.resume(final.taker, now=0)  # resting already
    # the next order gets the next id
    assert client.place(9, True, 10, 50)[1].taker.id == final.taker.id + 1


def test_resume_refuses_an_expired_taker(book: OrderBook, client: Client) -> None:
    client.place(1, False, 10, 100)
    client.place(2, False, 10, 100)
    result = book.match(client.order(3, True, 20, 100, expiry=5), SIG, now=0)
    applied = book.apply(result, fills=0)
    assert book.resume(applied.taker, now=6).rejected is Rejection.EXPIRED


def test_submit_with_refusals(book: OrderBook, client: Client) -> None:
    for account in (1, 2, 3):
        client.place(account, False, 10, 100)
    verdicts = {2: Verdict.DROP_MAKER}
    seen: list[int] = []

    def execute(fill: Fill) -> Verdict:
        seen.append(fill.maker_entry.order.account)
        return verdicts.get(fill.maker_entry.order.account, Verdict.ACCEPT)

    out = book.submit(client.order(4, True, 30, 100), SIG, now=0, execute=execute)
    assert seen == [1, 2, 3] and [f.maker_entry.order.account for f in out.fills] == [1, 3]
    assert [e.order.account for e in out.dropped] == [2] and out.rested and out.taker.remaining == 10
    assert not out.stopped and book.best_bid() == 100 and book.best_ask() is None
    assert sorted((x.entry.order.account, x.reason.value) for x in out.exits) == [
        (1, "FILLED"), (2, "REMOVED"), (3, "FILLED")
    ]
    # STOP: the taker is refused; its maker stays, its rest is discarded
    assert book.cancel(4, out.taker.order.nonce) is not None
    client.place(5, False, 10, 100)
    client.place(6, False, 10, 100)
    client.place(7, False, 10, 200)
    out = book.submit(client.order(8, True, 30, 100), SIG, now=0,
                      execute=lambda f: Verdict.STOP if f.maker_entry.order.account == 6 else Verdict.ACCEPT)
    assert out.stopped and [f.maker_entry.order.account for f in out.fills] == [5]
    assert not out.rested and out.taker.remaining == 20 and book.find(8, out.taker.order.nonce) is None
    assert [e.order.account for e in book.orders(False)] == [6, 7]
    out = book.submit(client.order(1, True, 10, 50), SIG, Kind.LIMIT, now=0, execute=execute)
    assert out.rested and not out.fills
    refused = book.submit(order(1, True, 10, 3, 99), SIG, now=0, execute=execute)
    assert refused.rejected is Rejection.NOT_TICK_MULTIPLE and not refused.rested


def test_fills_pass_the_stf_and_a_refused_maker_is_dropped() -> None:
    """Orders signed for the STF; each proposed fill runs as a Trade; a maker whose nonce
    the STF already cancelled is refused (NONCE_USED) and matching continues past it."""
    world = make_world()
    market = world.state.markets[0]
    assert market is not None
    book = OrderBook.for_market(market)
    price = 300_000 - 300_000 % market.tick_size

    def signed(account: int, is_buy: bool, size: int, px: int) -> tuple[Order, bytes]:
        o = world.order(account, 0, is_buy, size, px)
        return o, builders.sign_order(o, USER_KEYS[account - 1], world.context)

    makers = [signed(1, False, 4, price), signed(2, False, 4, price), signed(3, False, 4, price + 10)]
    for o, s in makers:
        assert book.apply(book.match(o, s, now=world.time)).rested
    cancelled = makers[1][0]
    assert world.apply(builders.cancel(2, cancelled.nonce, USER_KEYS[1], world.context)).ok
    reasons: list[Reason] = []

    def execute(fill: Fill) -> Verdict:
        receipt = world.apply(fill.trade(maker_fee_ppm=100, taker_fee_ppm=500))
        reasons.append(receipt.reason)
        return Verdict.ACCEPT if receipt.ok else Verdict.DROP_MAKER

    taker, sig = signed(4, True, 10, price + 10)
    out = book.submit(taker, sig, now=world.time, execute=execute)
    assert reasons == [Reason.OK, Reason.NONCE_USED, Reason.OK]
    assert [(f.maker_entry.order.account, f.size, f.price) for f in out.fills] == [(1, 4, price), (3, 4, price + 10)]
    assert out.rested and out.taker.remaining == 2 and book.best_bid() == price + 10
    assert world.state.accounts[4].size(0) == 8 and world.conserved()


# ------------------------------------------------------------------------ properties

ACCOUNTS = 4
PRICES = st.integers(18, 22).map(lambda t: t * TICK)


@st.composite
def operations(draw: Any) -> list[tuple[Any, ...]]:
    """A stream of operations: orders (any kind, fresh, slot-reusing or repeated nonces,
    short or long expiries, sizes with dust), cancels, time steps; each order carries the
    verdicts the 'STF' gives its fills (mostly ACCEPT)."""
    ops: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 40))):
        what = draw(st.sampled_from(["order"] * 8 + ["cancel", "time"]))
        if what == "order":
            ops.append((
                "order",
                draw(st.integers(1, ACCOUNTS)),
                draw(st.booleans()),
                draw(st.integers(1, 6)) * STEP + draw(st.sampled_from([0, 0, 0, 3, STEP - 1])),
                draw(PRICES),
                draw(st.sampled_from([Kind.LIMIT, Kind.LIMIT, Kind.IOC, Kind.POST_ONLY])),
                draw(st.sampled_from(["fresh"] * 6 + ["slot", "repeat"])),
                draw(st.sampled_from([FAR, FAR, 0, 1, 3])),
                draw(st.lists(st.sampled_from([Verdict.ACCEPT] * 6 + [Verdict.DROP_MAKER, Verdict.STOP]),
                              max_size=4)),
            ))
        elif what == "cancel":
            ops.append(("cancel", draw(st.integers(1, ACCOUNTS)), draw(st.integers(0, 10))))
        else:
            ops.append(("time", draw(st.integers(1, 3))))
    return ops


def crosses(taker: Order, price: int) -> bool:
    return price <= taker.limit_price if taker.is_buy else price >= taker.limit_price


def priority(e: Entry) -> tuple[int, int]:
    return (-e.order.limit_price if e.order.is_buy else e.order.limit_price, e.seq)


def check_book(book: OrderBook, filled: dict[int, int]) -> None:
    """Not crossed; sides in price-time order; level aggregates agree with the orders;
    sizes conserved for every resting order."""
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is None or ask is None or bid < ask
    resting = []
    for is_buy in (True, False):
        side = list(book.orders(is_buy))
        assert side == sorted(side, key=priority)
        assert all(e.order.is_buy == is_buy for e in side)
        levels: dict[int, list[Entry]] = defaultdict(list)
        for e in side:
            levels[e.order.limit_price].append(e)
        expected = tuple(
            PriceLevel(p, sum(e.remaining - e.remaining % STEP for e in es), len(es))
            for p, es in sorted(levels.items(), reverse=is_buy)
        )
        depth = book.depth(100)
        assert (depth.bids if is_buy else depth.asks) == expected
        resting += side
    assert len(resting) == len(book)
    for e in resting:
        assert e.remaining >= STEP and e.order.size == filled[e.id] + e.remaining
        assert book.get(e.id) == e == book.find(e.order.account, e.order.nonce)


def check_match(book: OrderBook, result: MatchResult, kind: Kind, now: int) -> None:
    """A proposed match against the book it was computed on: price-time priority with
    the skips the rules allow, maker prices within the taker's limit, step multiples,
    and completeness (a taker left wanting has met every crossing order)."""
    taker = result.taker.order
    if result.rejected is not None:
        assert not result.fills and not result.rests
        return
    if kind is Kind.POST_ONLY:
        assert not result.fills
    if kind is Kind.IOC:
        assert not result.rests
    queue = sorted((e for e in book.orders(not taker.is_buy)), key=priority)
    crossing = [e for e in queue if crosses(taker, e.order.limit_price)]
    removed = {r.entry.id: r.reason for r in result.removals}
    makers = [f.maker_entry for f in result.fills]
    want = result.taker.remaining - result.taker.remaining % STEP
    remaining = result.taker.remaining
    # every crossing order before the last maker is a maker, or one the rules skip
    last = crossing.index(makers[-1]) if makers else -1
    walked = [e for e in crossing[: last + 1] if removed.get(e.id) is not ExitReason.REPLACED]
    assert [e for e in walked if e.id not in removed] == makers
    for e in walked:
        if e.id in removed:
            reason = removed[e.id]
            assert (reason is ExitReason.EXPIRED and e.order.expiry < now) or (
                reason is ExitReason.SELF_TRADE and e.order.account == taker.account
                and e.order.expiry >= now
            )
    for i, f in enumerate(result.fills):
        m = f.maker_entry
        assert f.price == m.order.limit_price and crosses(taker, f.price)
        assert m.order.account != taker.account and m.order.expiry >= now
        assert f.size > 0 and f.size % STEP == 0
        assert f.size <= m.remaining - m.remaining % STEP and f.size <= want
        assert f.taker_entry.remaining == remaining and f.taker_entry.id == result.taker.id
        full = f.size == m.remaining - m.remaining % STEP
        assert full or i == len(result.fills) - 1
        want -= f.size
        remaining -= f.size
    assert result.remaining == remaining
    if want:
        # left wanting: every crossing order was a maker (consumed) or skipped
        assert all(e.id in removed or e in makers for e in crossing)
    assert result.rests == (want > 0 and kind is not Kind.IOC)


def run_stream(ops: list[tuple[Any, ...]], use_submit: bool) -> None:
    book = OrderBook(0, TICK, STEP)
    now = 10
    nonces: dict[int, int] = defaultdict(int)
    placed: dict[int, list[int]] = defaultdict(list)
    filled: dict[int, int] = defaultdict(int)
    for op in ops:
        if op[0] == "time":
            now += op[1]
            continue
        if op[0] == "cancel":
            account, pick = op[1], op[2]
            if placed[account]:
                nonce = placed[account][pick % len(placed[account])]
                entry = book.find(account, nonce)
                assert book.cancel(account, nonce) == entry
                assert book.find(account, nonce) is None
            check_book(book, filled)
            continue
        _, account, is_buy, size, price, kind, mode, expiry, verdicts = op
        if mode == "repeat" and placed[account]:
            nonce = placed[account][-1]
        elif mode == "slot":
            nonce = nonces[account] = nonces[account] + ORDER_SLOTS
        else:
            nonce = nonces[account] = nonces[account] + 1
        placed[account].append(nonce)
        o = order(account, is_buy, size, price, nonce, now + expiry if expiry < FAR else FAR)
        before = snapshot(book)
        result = book.match(o, SIG, kind, now=now)
        assert snapshot(book) == before  # pure
        check_match(book, result, kind, now)
        if not use_submit:
            applied = book.apply(result)
            accepted = list(result.fills)
            taker, rested = applied.taker, applied.rested
        else:
            pending = list(verdicts)

            def execute(fill: Fill, pending: list[Verdict] = pending) -> Verdict:
                return pending.pop(0) if pending else Verdict.ACCEPT

            out = book.submit(o, SIG, kind, now=now, execute=execute)
            assert out.rejected is result.rejected
            accepted = list(out.fills)
            taker, rested = out.taker, out.rested
            if out.stopped or out.dropped:
                assert not (out.stopped and rested)
        for f in accepted:
            filled[f.maker_entry.id] += f.size
            filled[f.taker_entry.id] += f.size
            assert filled[f.maker_entry.id] <= f.maker_entry.order.size
        if result.rejected is None:
            assert taker.order.size == filled[taker.id] + taker.remaining  # conserved
            assert (book.get(taker.id) is not None) == rested
            if kind is Kind.IOC:
                assert not rested and book.get(taker.id) is None
            if kind is Kind.POST_ONLY:
                assert not accepted
        else:
            assert book.get(taker.id) is None and not accepted
        check_book(book, filled)


@settings(derandomize=True, deadline=None)
@given(operations())
def test_property_match_then_apply(ops: list[tuple[Any, ...]]) -> None:
    run_stream(ops, use_submit=False)


@settings(derandomize=True, deadline=None)
@given(operations())
def test_property_submit_with_refusals(ops: list[tuple[Any, ...]]) -> None:
    run_stream(ops, use_submit=True)


def test_seeded_long_stream() -> None:
    """One long random stream (fixed seed): the same checks over thousands of orders with a
    deep book, many levels and lazily deleted orders."""
    import random

    rng = random.Random(5)
    ops: list[tuple[Any, ...]] = []
    for _ in range(3_000):
        r = rng.random()
        if r < 0.1:
            ops.append(("cancel", rng.randint(1, 12), rng.randrange(50)))
        elif r < 0.15:
            ops.append(("time", 1))
        else:
            ops.append(("order", rng.randint(1, 12), rng.random() < 0.5,
                        rng.randint(1, 8) * STEP + rng.choice([0, 0, 4]), rng.randint(10, 30) * TICK,
                        rng.choice([Kind.LIMIT, Kind.LIMIT, Kind.IOC, Kind.POST_ONLY]),
                        rng.choice(["fresh"] * 8 + ["slot", "repeat"]), rng.choice([FAR, FAR, FAR, 2, 20]),
                        [rng.choice([Verdict.ACCEPT] * 8 + [Verdict.DROP_MAKER, Verdict.STOP])]))
    run_stream(ops, use_submit=True)
