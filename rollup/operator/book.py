"""The operator's central limit order book for one market: pure and deterministic.

The book holds the STF's signed orders (`rollup.stf.transactions.Order` and its 65-byte
signature) and proposes fills; it never checks signatures, accounts, margin or nonce
slots of the state: the STF does, when the operator submits each fill as a Trade.

Rules
-----
Entry. A new order is refused (`Rejection`), in this order, when:
  1. its market is not the book's (WRONG_MARKET);
  2. size not in (0, MAX_SIZE], limit price not in (0, MAX_PRICE], max_fee_ppm > PPM,
     account, market, nonce, expiry or max fee beyond the width an order is posted
     in (`Order.fits`: nonce and expiry u32), or a signature not 65 bytes (BAD_FIELD);
  3. its limit price is not a multiple of the market's tick (NOT_TICK_MULTIPLE);
  4. its size is below one step, so it could never trade (BELOW_STEP);
  5. it has expired: expiry < now (EXPIRED; the STF trades while time <= expiry), or its
     market is an option series at or past its expiry (EXPIRED too: the STF refuses
     SERIES_EXPIRED); an order's deadline is the earlier of the two (`deadline`);
  6. the book already holds (account, nonce) (DUPLICATE);
  7. the book holds an order of the account in the same nonce slot (nonce mod 256) with a
     higher nonce (NONCE_SUPERSEDED).
  A book holds one order per (account, nonce slot): an order whose nonce is higher than
  that of the account's resting order in its slot REPLACES it (the STF lets an order die
  once its slot holds a higher nonce; spec section 7, Trade).

Kinds. LIMIT takes what crosses and rests the rest; IOC (immediate-or-cancel) takes what
crosses and never rests; POST_ONLY never takes: it is refused (WOULD_CROSS) when any
live resting order, of any account, crosses its price at entry (except the order it replaces); otherwise it rests.

Matching. A taker crosses resting makers of the other side while the price crosses
(buy taker: ask <= limit; sell taker: bid >= limit), best price first and, within a
price, earliest first (price-time priority, `Entry.seq`). Every fill trades at the
MAKER's limit price (the STF's Trade rule), so it is never worse than the taker's limit.

Steps. Fills are positive multiples of the market's step (the STF refuses others with
NOT_STEP_MULTIPLE): an order trades `remaining - remaining % step` lots at most, and a
resting order whose remainder falls below one step leaves the book (FILLED). Sizes are
conserved: `order.size == filled + remaining` for every entry.

Self-trade prevention (the STF refuses SELF_TRADE): a taker never matches an order of its
own account. Policy: CANCEL RESTING. A resting order of the taker's account that the taker
reaches while matching (it crosses, and the taker still has size) leaves the book
(SELF_TRADE) and matching continues behind it. So the newer intent wins, and the book is
never crossed after a match: a LIMIT taker rests only once every crossing resting order is
gone. A resting own order that the taker does not reach stays.

Expiry. A resting order whose deadline < now met while matching leaves the book (EXPIRED)
and is not matched; `expire(now)` removes all of them at once (a heap by deadline): on a
series' expiry its whole book empties.

Two phases. `match` and `resume` are pure: they return a `MatchResult` (the fills the
book proposes, whether the taker would rest, the orders that would leave) and change
nothing. `apply(result, fills=k)` commits the walk up to its first k fills: the removals
met before fill k, the makers' fills, and (when every fill is committed) the taker's
resting remainder. The operator runs each proposed fill through the STF; when the STF
refuses fill k because of its maker (UNDER_MARGIN, NONCE_USED, EXPIRED, ...), it commits
the k accepted fills, `remove`s that maker and `resume`s the taker; when it refuses
because of the taker, it commits the k fills and stops. `submit` runs that loop with a
callback. A result is bound to the book's version: applying a result after any other
change to the book raises `StaleMatch`.

Structures. Per side, a sorted list of price keys (bisect; the best price last, so the
walk reads from the end) and per price a level with a FIFO deque of order ids, the count
and the total tradeable size kept up to date. Cancels are O(1) on the level plus lazy
deletion from the deque (dead ids are skipped and trimmed at the front; a deque holding
more dead than live ids is compacted). A match touches only the crossing levels: never
the whole book.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import NamedTuple

from rollup.stf.constants import MAX_PRICE, MAX_SIZE, ORDER_SLOTS, PPM
from rollup.stf.state import Market
from rollup.stf.transactions import SIGNATURE_LENGTH, Order, Trade
from rollup.stf.transactions import Fill as FillTx


class Kind(IntEnum):
    """How an order treats the part that does not fill at once."""

    LIMIT = 0
    """Takes what crosses, rests the remainder."""
    IOC = 1
    """Immediate-or-cancel: takes what crosses, never rests."""
    POST_ONLY = 2
    """Never takes: refused (WOULD_CROSS) if it would cross at entry, else rests."""


class Rejection(Enum):
    """Why the book refuses an order at entry (nothing changes); see the module rules."""

    WRONG_MARKET = "WRONG_MARKET"
    BAD_FIELD = "BAD_FIELD"
    NOT_TICK_MULTIPLE = "NOT_TICK_MULTIPLE"
    BELOW_STEP = "BELOW_STEP"
    EXPIRED = "EXPIRED"
    DUPLICATE = "DUPLICATE"
    NONCE_SUPERSEDED = "NONCE_SUPERSEDED"
    WOULD_CROSS = "WOULD_CROSS"


class ExitReason(Enum):
    """Why a resting order left the book."""

    FILLED = "FILLED"
    """Filled, or its remainder fell below one step."""
    EXPIRED = "EXPIRED"
    """deadline < now when a taker reached it, or at `expire(now)`."""
    SELF_TRADE = "SELF_TRADE"
    """A taker of the same account reached it (self-trade prevention: cancel resting)."""
    REPLACED = "REPLACED"
    """A later order of the account took its nonce slot."""
    REMOVED = "REMOVED"
    """`remove`, `cancel` or `cancel_id`."""


class Entry(NamedTuple):
    """An order in (or entering) the book. Immutable: the book replaces it on a fill."""

    id: int
    """Assigned by the book, increasing from 1 in order of admission."""
    order: Order
    signature: bytes
    kind: Kind
    remaining: int
    """order.size minus what has filled."""
    seq: int
    """Time priority: assigned, increasing, when the entry joins the book (0 before)."""

    @property
    def filled(self) -> int:
        """Lots filled so far (what the STF's nonce slot records for this order)."""
        return self.order.size - self.remaining


class Fill(NamedTuple):
    """One proposed trade: `size` lots at `price`, the maker's limit price. The entries are
    as they stand before this fill (so `entry.filled` is the slot's filled count)."""

    maker_entry: Entry
    taker_entry: Entry
    size: int
    price: int

    def trade(self, maker_fee_ppm: int = 0, taker_fee_ppm: int = 0, *, posted: bool = False) -> Trade | FillTx:
        """The STF transaction of this fill: a Trade carrying the maker order, or, when the
        maker order is `posted` already (its nonce slot holds it), a Fill naming it."""
        maker, taker = self.maker_entry, self.taker_entry
        if posted:
            return FillTx(maker.order.account, maker.order.nonce, taker.order, taker.signature, self.size,
                          maker_fee_ppm, taker_fee_ppm)
        return Trade(maker.order, maker.signature, taker.order, taker.signature, self.size,
                     maker_fee_ppm, taker_fee_ppm)


class Removal(NamedTuple):
    """A resting order a match would take out of the book, met after `after_fills` fills."""

    entry: Entry
    reason: ExitReason
    after_fills: int


class Exit(NamedTuple):
    """A resting order that left the book (the entry as it stood when it left)."""

    entry: Entry
    reason: ExitReason


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What a match proposes; nothing has changed until `OrderBook.apply`."""

    taker: Entry
    """The taker before any fill (a new order's id is provisional until applied)."""
    fills: tuple[Fill, ...]
    """In walk order: best price first, then earliest."""
    rests: bool
    """Whether the taker's remainder joins the book when every fill is committed."""
    rejected: Rejection | None
    """Set when the order is refused: then there are no fills and it does not rest."""
    removals: tuple[Removal, ...]
    """Resting orders that leave: the replaced slot holder, expired and self-trade ones."""
    new: bool
    """A new order (from `match`) rather than a resumed taker (from `resume`)."""
    version: int
    """The book version the result was computed on."""

    @property
    def filled(self) -> int:
        """Lots the fills trade in total."""
        return sum(f.size for f in self.fills)

    @property
    def remaining(self) -> int:
        """The taker's remaining size once every fill is committed."""
        return self.taker.remaining - self.filled


class Applied(NamedTuple):
    """What `apply` did: the taker after the committed fills, whether it rested, and the
    resting orders that left the book."""

    taker: Entry
    rested: bool
    exits: tuple[Exit, ...]


class PriceLevel(NamedTuple):
    """One price of a depth snapshot: total tradeable size and number of orders."""

    price: int
    size: int
    orders: int


class Depth(NamedTuple):
    """Best levels per side, best first."""

    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]


class Verdict(Enum):
    """The operator's answer to one proposed fill (see `OrderBook.submit`)."""

    ACCEPT = "ACCEPT"
    """The STF applied it: commit it."""
    DROP_MAKER = "DROP_MAKER"
    """Refused because of the maker: remove the maker and continue matching."""
    STOP = "STOP"
    """Refused because of the taker: keep the accepted fills, discard the taker's rest."""


@dataclass(frozen=True, slots=True)
class Submission:
    """The outcome of `OrderBook.submit`."""

    taker: Entry
    """The taker after its accepted fills (remaining = what did not fill)."""
    fills: tuple[Fill, ...]
    """The accepted fills, in order."""
    rested: bool
    rejected: Rejection | None
    dropped: tuple[Entry, ...]
    """Makers removed because the operator refused their fill (DROP_MAKER)."""
    stopped: bool
    """The operator answered STOP."""
    exits: tuple[Exit, ...]
    """Resting orders that left the book (fills, expiry, self-trade, replacement, drops)."""


def _with_remaining(entry: Entry, remaining: int) -> Entry:
    """The entry with another remaining size (`_replace`, faster)."""
    return Entry(entry.id, entry.order, entry.signature, entry.kind, remaining, entry.seq)


class StaleMatch(ValueError):
    """A MatchResult applied after the book changed since it was computed."""


class _Level:
    """One price of one side: FIFO of order ids (with lazily deleted dead ids), live count
    and total tradeable size."""

    __slots__ = ("price", "queue", "count", "total")

    def __init__(self, price: int) -> None:
        self.price = price
        self.queue: deque[int] = deque()
        self.count = 0
        self.total = 0


class _Side:
    """Price levels of one side. Keys sort ascending with the best price last:
    key = price for bids, -price for asks."""

    __slots__ = ("is_buy", "keys", "levels")

    def __init__(self, is_buy: bool) -> None:
        self.is_buy = is_buy
        self.keys: list[int] = []
        self.levels: dict[int, _Level] = {}

    def key(self, price: int) -> int:
        return price if self.is_buy else -price


class OrderBook:
    """The central limit order book of one market (see the module docstring for rules)."""

    def __init__(self, market: int, tick_size: int = 1, step_size: int = 1, closes_at: int | None = None) -> None:
        if tick_size < 1 or step_size < 1:
            raise ValueError("tick and step must be >= 1")
        self.market = market
        self.closes_at = closes_at
        """An option series' expiry: it takes no trade at or after it (None: a perpetual)."""
        self.tick_size = tick_size
        self.step_size = step_size
        self._entries: dict[int, Entry] = {}
        self._by_nonce: dict[tuple[int, int], int] = {}
        self._by_slot: dict[tuple[int, int], int] = {}
        self._sides = (_Side(False), _Side(True))  # indexed by is_buy
        self._expiries: list[tuple[int, int]] = []  # heap of (expiry, id); lazy deletion
        self._next_id = 1
        self._next_seq = 1
        self._version = 0

    @classmethod
    def for_market(cls, market: Market) -> OrderBook:
        """A book with the market's id, tick and step (and a series' expiry)."""
        return cls(market.id, market.tick_size, market.step_size, market.expiry if market.expiry else None)

    def deadline(self, order: Order) -> int:
        """The last time `order` may trade: its expiry, or a second before its series'."""
        if self.closes_at is None:
            return order.expiry
        return min(order.expiry, self.closes_at - 1)

    # ----------------------------------------------------------------- lookups

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def version(self) -> int:
        """Changes with every mutation; a MatchResult is valid for one version."""
        return self._version

    def get(self, id: int) -> Entry | None:
        """The resting entry with this id, or None."""
        return self._entries.get(id)

    def find(self, account: int, nonce: int) -> Entry | None:
        """The resting entry of (account, nonce), or None."""
        id = self._by_nonce.get((account, nonce))
        return None if id is None else self._entries[id]

    def best_bid(self) -> int | None:
        keys = self._sides[True].keys
        return keys[-1] if keys else None

    def best_ask(self) -> int | None:
        keys = self._sides[False].keys
        return -keys[-1] if keys else None

    def depth(self, levels: int = 10) -> Depth:
        """The best `levels` prices per side: (price, total tradeable size, order count).
        Orders that expired but were not yet met count until `expire(now)`."""

        def side(s: _Side) -> tuple[PriceLevel, ...]:
            best = reversed(s.keys[-levels:]) if levels > 0 else ()
            return tuple(PriceLevel(lv.price, lv.total, lv.count) for lv in map(s.levels.__getitem__, best))

        return Depth(side(self._sides[True]), side(self._sides[False]))

    def orders(self, is_buy: bool) -> Iterator[Entry]:
        """The resting entries of one side in priority order (best price, then earliest)."""
        s = self._sides[is_buy]
        entries = self._entries
        for i in range(len(s.keys) - 1, -1, -1):
            for id in s.levels[s.keys[i]].queue:
                e = entries.get(id)
                if e is not None:
                    yield e

    # ---------------------------------------------------------------- matching

    def admit(self, order: Order, signature: bytes, now: int) -> Rejection | None:
        """The entry checks 1-7 of the module rules (WOULD_CROSS is decided by matching)."""
        if order.market != self.market:
            return Rejection.WRONG_MARKET
        if not (
            0 < order.size <= MAX_SIZE and 0 < order.limit_price <= MAX_PRICE
            and 0 <= order.max_fee_ppm <= PPM and order.fits() and len(signature) == SIGNATURE_LENGTH
        ):
            return Rejection.BAD_FIELD
        if order.limit_price % self.tick_size:
            return Rejection.NOT_TICK_MULTIPLE
        if order.size < self.step_size:
            return Rejection.BELOW_STEP
        if self.deadline(order) < now:
            return Rejection.EXPIRED
        if (order.account, order.nonce) in self._by_nonce:
            return Rejection.DUPLICATE
        holder = self._by_slot.get((order.account, order.nonce % ORDER_SLOTS))
        if holder is not None and self._entries[holder].order.nonce > order.nonce:
            return Rejection.NONCE_SUPERSEDED
        return None

    def match(self, order: Order, signature: bytes, kind: Kind = Kind.LIMIT, *, now: int) -> MatchResult:
        """Propose how a new order trades against the book at time `now`. Pure."""
        kind = Kind(kind)
        taker = Entry(self._next_id, order, signature, kind, order.size, 0)
        rejected = self.admit(order, signature, now)
        if rejected is not None:
            return MatchResult(taker, (), False, rejected, (), True, self._version)
        holder = self._by_slot.get((order.account, order.nonce % ORDER_SLOTS))
        replaced = None if holder is None else self._entries[holder]
        return self._walk(taker, now, True, replaced)

    def resume(self, taker: Entry, *, now: int) -> MatchResult:
        """Propose how an admitted taker that is not resting (returned by a partial
        `apply`) continues to match. Pure. Refused with EXPIRED once its deadline < now, and
        with DUPLICATE / NONCE_SUPERSEDED if its nonce slot was taken in the meantime."""
        if taker.id >= self._next_id or taker.id in self._entries:
            raise ValueError("resume takes an applied taker that is not resting")
        order = taker.order
        rejected = None
        if self.deadline(order) < now:
            rejected = Rejection.EXPIRED
        elif (order.account, order.nonce) in self._by_nonce:
            rejected = Rejection.DUPLICATE
        holder = self._by_slot.get((order.account, order.nonce % ORDER_SLOTS))
        replaced = None if holder is None else self._entries[holder]
        if rejected is None and replaced is not None and replaced.order.nonce > order.nonce:
            rejected = Rejection.NONCE_SUPERSEDED
        if rejected is not None:
            return MatchResult(taker, (), False, rejected, (), False, self._version)
        return self._walk(taker, now, False, replaced)

    def _walk(self, taker: Entry, now: int, new: bool, replaced: Entry | None) -> MatchResult:
        order = taker.order
        side = self._sides[not order.is_buy]
        keys, levels, entries = side.keys, side.levels, self._entries
        threshold = -order.limit_price if order.is_buy else order.limit_price
        step = self.step_size
        account = order.account
        post_only = taker.kind is Kind.POST_ONLY
        skip = -1 if replaced is None else replaced.id
        want = taker.remaining - taker.remaining % step
        current = taker
        fills: list[Fill] = []
        removals: list[Removal] = [] if replaced is None else [Removal(replaced, ExitReason.REPLACED, 0)]
        rejected = None
        i = len(keys) - 1
        while want and i >= 0 and keys[i] >= threshold:
            level = levels[keys[i]]
            for id in level.queue:
                maker = entries.get(id)
                if maker is None or id == skip:
                    continue
                if self.deadline(maker.order) < now:
                    removals.append(Removal(maker, ExitReason.EXPIRED, len(fills)))
                    continue
                if post_only:
                    rejected = Rejection.WOULD_CROSS
                    break
                if maker.order.account == account:
                    removals.append(Removal(maker, ExitReason.SELF_TRADE, len(fills)))
                    continue
                left = maker.remaining
                size = min(want, left - left % step)
                fills.append(Fill(maker, current, size, level.price))
                current = Entry(current.id, order, current.signature, current.kind,
                                current.remaining - size, current.seq)
                want -= size
                if not want:
                    break
            if rejected is not None:
                expired = tuple(r for r in removals if r.reason is ExitReason.EXPIRED)
                return MatchResult(taker, (), False, rejected, expired, new, self._version)
            i -= 1
        rests = want > 0 and taker.kind is not Kind.IOC
        return MatchResult(taker, tuple(fills), rests, None, tuple(removals), new, self._version)

    def apply(self, result: MatchResult, fills: int | None = None) -> Applied:
        """Commit `result` up to its first `fills` fills (all by default): the removals met
        before fill `fills`, those fills (makers reduced, and removed below one step), and,
        when every fill is committed and `result.rests`, the taker's remainder joins the
        book. A refused result commits only its expired removals. A new taker's id is
        consumed unless refused; a taker not resting can be `resume`d."""
        if result.version != self._version:
            raise StaleMatch("the book changed since this match")
        k = len(result.fills) if fills is None else fills
        if not 0 <= k <= len(result.fills):
            raise ValueError("fills out of range")
        exits: list[Exit] = []
        entries = self._entries
        taker = result.taker
        self._version += 1
        if result.rejected is None and result.new:
            self._next_id = taker.id + 1
        for removal in result.removals:
            if removal.after_fills <= k and removal.entry.id in entries:
                gone = entries[removal.entry.id]
                self._remove(gone)
                exits.append(Exit(gone, removal.reason))
        if result.rejected is not None:
            return Applied(taker, False, tuple(exits))
        filled = 0
        for fill in result.fills[:k]:
            maker = entries[fill.maker_entry.id]
            size = fill.size
            filled += size
            if self._reduce(maker, size) is None:
                exits.append(Exit(_with_remaining(maker, maker.remaining - size), ExitReason.FILLED))
        rested = k == len(result.fills) and result.rests
        if filled or rested:
            seq = self._next_seq if rested else taker.seq
            taker = Entry(taker.id, taker.order, taker.signature, taker.kind, taker.remaining - filled, seq)
        if rested:
            self._next_seq += 1
            self._insert(taker)
        return Applied(taker, rested, tuple(exits))

    def submit(self, order: Order, signature: bytes, kind: Kind = Kind.LIMIT, *, now: int,
               execute: Callable[[Fill], Verdict]) -> Submission:
        """Match a new order and commit it fill by fill: `execute` runs each proposed fill
        (through the STF) and answers ACCEPT, DROP_MAKER (the maker leaves the book and
        matching continues) or STOP (the taker's rest is discarded)."""
        result = self.match(order, signature, kind, now=now)
        accepted: list[Fill] = []
        dropped: list[Entry] = []
        exits: list[Exit] = []
        while True:
            if result.rejected is not None:
                applied = self.apply(result)
                exits += applied.exits
                return Submission(applied.taker, tuple(accepted), False, result.rejected,
                                  tuple(dropped), False, tuple(exits))
            for k, fill in enumerate(result.fills):
                verdict = execute(fill)
                if verdict is Verdict.ACCEPT:
                    accepted.append(fill)
                    continue
                applied = self.apply(result, k)
                exits += applied.exits
                if verdict is Verdict.STOP:
                    return Submission(applied.taker, tuple(accepted), False, None,
                                      tuple(dropped), True, tuple(exits))
                maker = self._entries[fill.maker_entry.id]
                self.remove(maker.id)
                dropped.append(maker)
                exits.append(Exit(maker, ExitReason.REMOVED))
                result = self.resume(applied.taker, now=now)
                break
            else:
                applied = self.apply(result)
                exits += applied.exits
                return Submission(applied.taker, tuple(accepted), applied.rested, None,
                                  tuple(dropped), False, tuple(exits))

    # --------------------------------------------------------------- mutations

    def restore(self, entries: list[Entry]) -> None:
        """Put back resting entries saved earlier (the operator's store), with their ids
        and sequence numbers: time priority survives a restart."""
        for entry in sorted(entries, key=lambda e: e.seq):
            self._insert(entry)
            self._next_id = max(self._next_id, entry.id + 1)
            self._next_seq = max(self._next_seq, entry.seq + 1)
        self._version += 1

    def remove(self, id: int) -> Entry | None:
        """Take a resting order out of the book; the entry, or None if not resting."""
        entry = self._entries.get(id)
        if entry is not None:
            self._version += 1
            self._remove(entry)
        return entry

    def cancel_id(self, id: int) -> Entry | None:
        """A client's cancel by id: `remove`."""
        return self.remove(id)

    def cancel(self, account: int, nonce: int) -> Entry | None:
        """A client's cancel by (account, nonce) (what the STF's Cancel names)."""
        id = self._by_nonce.get((account, nonce))
        return None if id is None else self.remove(id)

    def reduce(self, id: int, size: int) -> Entry | None:
        """Reduce a resting order's remaining size by `size` (0 < size <= remaining), e.g.
        to follow a fill the STF recorded elsewhere. The new entry, or None if it left the
        book (remainder below one step). KeyError if not resting."""
        entry = self._entries[id]
        if not 0 < size <= entry.remaining:
            raise ValueError("size must be in (0, remaining]")
        self._version += 1
        return self._reduce(entry, size)

    def expire(self, now: int) -> tuple[Entry, ...]:
        """Remove every resting order whose deadline < now; the removed entries."""
        heap, entries = self._expiries, self._entries
        out = []
        while heap and heap[0][0] < now:
            _, id = heapq.heappop(heap)
            entry = entries.get(id)
            if entry is not None:
                self._remove(entry)
                out.append(entry)
        if out:
            self._version += 1
        return tuple(out)

    # ---------------------------------------------------------------- internal

    def _insert(self, entry: Entry) -> None:
        order = entry.order
        side = self._sides[order.is_buy]
        key = side.key(order.limit_price)
        level = side.levels.get(key)
        if level is None:
            level = side.levels[key] = _Level(order.limit_price)
            insort(side.keys, key)
        level.queue.append(entry.id)
        level.count += 1
        level.total += entry.remaining - entry.remaining % self.step_size
        self._entries[entry.id] = entry
        self._by_nonce[(order.account, order.nonce)] = entry.id
        self._by_slot[(order.account, order.nonce % ORDER_SLOTS)] = entry.id
        heapq.heappush(self._expiries, (self.deadline(order), entry.id))

    def _remove(self, entry: Entry) -> None:
        order = entry.order
        entries = self._entries
        del entries[entry.id]
        del self._by_nonce[(order.account, order.nonce)]
        del self._by_slot[(order.account, order.nonce % ORDER_SLOTS)]
        side = self._sides[order.is_buy]
        key = side.key(order.limit_price)
        level = side.levels[key]
        level.count -= 1
        level.total -= entry.remaining - entry.remaining % self.step_size
        if level.count == 0:
            del side.levels[key]
            keys = side.keys
            del keys[bisect_left(keys, key)]
        else:
            queue = level.queue
            while queue[0] not in entries:
                queue.popleft()
            if len(queue) > 2 * level.count + 16:
                level.queue = deque(id for id in queue if id in entries)
        if len(self._expiries) > 2 * len(entries) + 64:
            self._expiries = [(self.deadline(e.order), e.id) for e in entries.values()]
            heapq.heapify(self._expiries)

    def _reduce(self, entry: Entry, size: int) -> Entry | None:
        step = self.step_size
        left = entry.remaining - size
        if left < step:
            self._remove(entry)
            return None
        order = entry.order
        side = self._sides[order.is_buy]
        side.levels[side.key(order.limit_price)].total -= (
            (entry.remaining - entry.remaining % step) - (left - left % step)
        )
        after = _with_remaining(entry, left)
        self._entries[entry.id] = after
        return after
