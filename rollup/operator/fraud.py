"""Fraud modes, for tests and demos: `rollup operator --fraud KIND` posts one fraudulent
batch of that kind, then carries on honestly (and resumes after the fraud is proven).

Each kind is a `Corrupt` for the sequencer: given an honest batch (its pre-state, its
transactions, its roots, its context) it returns the transactions and roots to post
instead, or None while the batch offers no occasion for that fraud (the mode stays armed
and tries the next batch). Roots after the fraudulent step are those of the state the
cheat believes in: it applies the rest of the batch on top of its lie.

Frauds that need user signatures (a forged order, an under-margined trade) sign with the
well-known dev keys of the devnet's accounts: only dev accounts can be used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any
from unittest import mock

from ..l1.chain import dev_accounts
from ..stf import apply, builders, fork, margin, products
from ..stf.fork import Context
from ..stf.reasons import Reason
from ..stf.signing import address_of
from ..stf.state import Market, State
from ..stf.transactions import (
    CANCEL,
    DEPOSIT,
    FORCED_REQUEST,
    TRADE,
    Deposit,
    Fill,
    FundingTick,
    Liquidate,
    Order,
    SettleSeries,
    Trade,
    decode,
)

Result = tuple[list[bytes], list[bytes]] | None
Kind = Callable[[State, list[bytes], list[bytes], Context], Result]

DEV_KEYS = {address_of(bytes(a.key)): bytes(a.key) for a in dev_accounts(10)}


def replay(pre: State, txs: list[bytes], context: Context, tamper: dict[int, Callable[[State], None]] | None = None,
           cheat: Callable[[int], Any] | None = None) -> list[bytes]:
    """The roots of `txs` applied to a copy of `pre`; after step i, `tamper[i](state)`
    edits the state directly; `cheat(i)` may return a context manager under which step i
    is applied (a patched rule)."""
    state = pre.copy()
    roots = []
    for i, tx in enumerate(txs):
        patch = cheat(i) if cheat else None
        if patch is None:
            apply(state, tx, context)
        else:
            with patch:
                apply(state, tx, context)
        if tamper and i in tamper:
            tamper[i](state)
        roots.append(state.root())
    return roots


def credit(state: State, account_id: int, amount: int) -> None:
    account = state.account(account_id)
    state.set_accounts({account_id: account._replace(collateral=account.collateral + amount)})


def dev_users(state: State) -> list[int]:
    """Accounts owned by a dev key, by id (the fund excluded)."""
    return sorted(i for i, a in state.accounts.items() if i != 0 and a.owner in DEV_KEYS)


def head_after(pre: State, txs: list[bytes], context: Context) -> State:
    state = pre.copy()
    for tx in txs:
        apply(state, tx, context)
    return state


def next_nonce(state: State, account: int) -> int:
    """A nonce far above anything a client uses, in a free slot."""
    return 2**31 + state.globals.time % 1_000 * 256 + account % 256


@contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
    with mock.patch.object(target, name, value):
        yield


# ---------------------------------------------------------------------- the catalog


def mint(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """Credit collateral from nowhere: 1,000,000 USD more for the first user, after step 0."""
    users = dev_users(head_after(pre, txs[:1], context)) or [0]
    return txs, replay(pre, txs, context, {0: lambda s: credit(s, users[0], 10**12)})


def wrong_pnl(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """A trade settled with the maker paid 10% of the notional too much."""
    for i, tx in enumerate(txs):
        trade = decode(tx)
        if isinstance(trade, (Trade, Fill)):
            maker = trade.maker.account if isinstance(trade, Trade) else trade.maker_account
            extra = max(1, trade.fill * trade.taker.limit_price // 10)
            return txs, replay(pre, txs, context, {i: partial(credit, account_id=maker, amount=extra)})
    return None


def skip_funding(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """A valid funding tick posted with the root of the state before it."""
    head = head_after(pre, txs, context)
    for market in head.markets:
        if market is None or market.oracle_price == 0:
            continue
        tick = FundingTick(market.id, 1).encode()
        trial = head.copy()
        if apply(trial, tick, context).ok:
            return txs + [tick], roots + [roots[-1] if roots else pre.root()]
    return None


def _forged_trade(head: State, context: Context, size: int, sign_taker: bool = True, market: Market | None = None,
                  maker_buys: bool = True) -> bytes | None:
    """A trade signed with dev keys: the first dev user (the maker: buying, or selling with
    `maker_buys` False) against the second, `size` lots of `market` (default: the first
    priced one) at its price; with `sign_taker` False the taker's signature is corrupt."""
    users = dev_users(head)
    market = market or next((m for m in head.markets if m is not None and m.oracle_price), None)
    if len(users) < 2 or market is None:
        return None
    maker_id, taker_id = users[0], users[1]
    price = market.oracle_price - market.oracle_price % market.tick_size or market.tick_size
    size -= size % market.step_size
    maker = Order(maker_id, market.id, maker_buys, size, price, 1_000_000, next_nonce(head, maker_id), 2**32 - 1)
    taker = Order(taker_id, market.id, not maker_buys, size, price, 1_000_000, next_nonce(head, taker_id) + 1,
                  2**32 - 1)
    maker_key, taker_key = DEV_KEYS[head.account(maker_id).owner], DEV_KEYS[head.account(taker_id).owner]
    trade = builders.trade(maker, maker_key, taker, taker_key, size, context)
    if not sign_taker:
        bad = bytearray(trade.taker_signature)
        bad[10] ^= 0xFF
        trade = trade._replace(taker_signature=bytes(bad))
    return trade.encode()


def bad_signature(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """A trade whose taker signature is corrupt, settled as if it were valid."""
    head = head_after(pre, txs, context)
    forged = _forged_trade(head, context, 10, sign_taker=False)
    if forged is None:
        return None
    owners = {i: a.owner for i, a in head.accounts.items()}
    trade = decode(forged)
    assert isinstance(trade, Trade)
    everyone_signs = lambda digest, sig: owners[trade.taker.account] if sig == trade.taker_signature else owners[trade.maker.account]  # noqa: E731
    all_txs = txs + [forged]
    return all_txs, replay(pre, all_txs, context, cheat=lambda i: patched(fork, "recover", everyone_signs) if i == len(txs) else None)


def overfill(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """A trade already filled, filled again."""
    for tx in txs:
        if tx and tx[0] == TRADE:
            all_txs = txs + [tx]
            return all_txs, replay(pre, all_txs, context,
                                   cheat=lambda i: patched(fork, "filled_so_far", lambda *a: 0) if i == len(txs) else None)
    return None


def under_margin(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """A trade far beyond the accounts' margin, accepted."""
    head = head_after(pre, txs, context)
    trade = _forged_trade(head, context, 10**9)
    if trade is None:
        return None
    all_txs = txs + [trade]
    return all_txs, replay(pre, all_txs, context,
                           cheat=lambda i: patched(margin, "margin_ok", lambda *a: True) if i == len(txs) else None)


def fake_withdrawal(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """A withdrawal record appended without taking the collateral."""
    head = head_after(pre, txs, context)
    users = [u for u in dev_users(head) if head.account(u).collateral > 1_000]
    if not users:
        return None
    account = head.account(users[0])
    tx = builders.withdraw(users[0], 1_000, next_nonce(head, users[0]) + 7, 2**40, DEV_KEYS[account.owner],
                           context).encode()
    all_txs = txs + [tx]
    return all_txs, replay(pre, all_txs, context, {len(txs): lambda s: credit(s, users[0], 1_000)})


def wrong_liquidation(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """A healthy account liquidated."""
    head = head_after(pre, txs, context)
    for account_id, account in sorted(head.accounts.items()):
        if account_id == 0:
            continue
        for p in account.positions:
            market = head.markets[p.market]
            if market is None or not market.oracle_price:
                continue
            tx = Liquidate(account_id, p.market, abs(p.size)).encode()
            all_txs = txs + [tx]
            return all_txs, replay(pre, all_txs, context, cheat=lambda i: patched(
                margin, "requirement", lambda *a, **k: 2**120) if i == len(txs) else None)
    return None


def _deposit_steps(txs: list[bytes]) -> list[int]:
    return [i for i, tx in enumerate(txs) if tx and tx[0] == DEPOSIT and len(tx) == 49]


def reorder_deposits(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """Two L1 deposits credited in the wrong order."""
    steps = _deposit_steps(txs)
    if len(steps) < 2:
        return None
    a, b = steps[0], steps[1]
    swapped = list(txs)
    swapped[a], swapped[b] = txs[b], txs[a]
    first = decode(swapped[a])
    assert isinstance(first, Deposit)
    # the cheat credits the later deposit where the earlier one belongs
    return swapped, replay(pre, swapped, context, {a: partial(credit, account_id=first.account, amount=first.amount)})


def skip_deposit(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """An L1 deposit left out, the next one credited in its place."""
    steps = _deposit_steps(txs)
    if len(steps) < 2:
        return None
    a = steps[0]
    rest = txs[:a] + txs[a + 1:]
    second = decode(rest[a])
    assert isinstance(second, Deposit)
    return rest, replay(pre, rest, context, {a: partial(credit, account_id=second.account, amount=second.amount)})


def ignore_forced(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """A forced request taken from the L1 queue but not carried out (nothing changes)."""
    for i, tx in enumerate(txs):
        if tx and tx[0] == FORCED_REQUEST:
            state_before = head_after(pre, txs[:i], context)
            return txs, replay(pre, txs, context, {i: partial(_restore, before=state_before)})
    return None


def _restore(state: State, before: State) -> None:
    """Make `state` the same as `before` (the cheat undoes a step)."""
    restored = before.copy()
    state.__dict__.update(restored.__dict__)


def malformed_as_valid(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """Bytes that are no transaction, treated as one that credits the insurance fund."""
    junk = bytes([CANCEL]) + b"\x00" * 7
    all_txs = txs + [junk]
    return all_txs, replay(pre, all_txs, context, {len(txs): lambda s: credit(s, 0, 5_000_000)})


def wrong_root(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """A valid transaction posted with a root that is no state's."""
    if not roots:
        return None
    return txs, roots[:-1] + [bytes(b ^ 0x5A for b in roots[-1])]


# ---------------------------------------------------------------------- option frauds


def _series(head: State, live: bool) -> Market | None:
    """The first marked option series that is still trading (`live`) or expired and not
    yet settled."""
    now = head.globals.time
    for market in head.markets:
        if market is None or market.product == products.PERPETUAL or not market.oracle_price:
            continue
        if (now < market.expiry) == live and not market.settlement_price:
            return market
    return None


def ignore_expiry(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """A trade on an option series past its expiry (not yet settled), settled as if the
    series still traded."""
    head = head_after(pre, txs, context)
    series = _series(head, live=False)
    if series is None:
        return None
    trade = _forged_trade(head, context, 5, market=series, maker_buys=False)  # calls written
    if trade is None:
        return None
    honest = fork.priced_market

    def open_forever(state: State, market_id: int) -> Market | Reason:
        found = honest(state, market_id)
        return found._replace(expiry=2**63) if isinstance(found, Market) and market_id == series.id else found

    def restore(state: State) -> None:  # the lie is the trade, not a new expiry
        state.set_market(state.markets[series.id]._replace(expiry=series.expiry))  # type: ignore[union-attr]

    all_txs = txs + [trade]
    return all_txs, replay(pre, all_txs, context, {len(txs): restore},
                           cheat=lambda i: patched(fork, "priced_market", open_forever) if i == len(txs) else None)


def wrong_settlement(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """A series settled 10% above the committee's price: every long is paid too much."""
    for i, tx in enumerate(txs):
        settle = decode(tx)
        if not isinstance(settle, SettleSeries):
            continue

        def lie(state: State, market_id: int = settle.market) -> None:
            market = state.markets[market_id]
            if market is None or not market.settlement_price:
                return
            price = market.settlement_price + market.settlement_price // 10
            state.set_market(market._replace(settlement_price=price, oracle_price=fork.payoff(market, price)))

        return txs, replay(pre, txs, context, {i: lie})
    return None


def linear_requirement(account: Any, markets: Any, initial: bool) -> int:
    """The requirement as if every position were a perpetual: a fraction of its notional
    at the mark (what a venue without the portfolio rule would ask of an option writer)."""
    return sum(products.requirement(products.PERPETUAL, p.size, markets[p.market].oracle_price,
                                    markets[p.market].initial_margin_ppm if initial
                                    else markets[p.market].maintenance_margin_ppm)
               for p in account.positions)


def wrong_portfolio_margin(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """An option writer's withdrawal the portfolio rule refuses, accepted by margining the
    account linearly (the short calls' notional at their mark, no scenarios, no floors)."""
    head = head_after(pre, txs, context)
    markets = head.markets
    for account_id in dev_users(head):
        account = head.account(account_id)
        if not any(markets[p.market].product != products.PERPETUAL for p in account.positions):  # type: ignore[union-attr]
            continue
        settled, _ = margin.settle_funding(account, markets)
        value = margin.value(settled, markets)
        amount = min(value - linear_requirement(settled, markets, True), settled.collateral) - 1
        if amount <= 0 or value - margin.requirement(settled, markets, True) >= amount:
            continue  # the true rule would allow it too: no lie
        tx = builders.withdraw(account_id, amount, next_nonce(head, account_id) + 9, 2**40,
                               DEV_KEYS[account.owner], context).encode()
        all_txs = txs + [tx]
        return all_txs, replay(pre, all_txs, context, cheat=lambda i: patched(
            margin, "portfolio_requirement", linear_requirement) if i == len(txs) else None)
    return None


def under_risk_margin(pre: State, txs: list[bytes], roots: list[bytes], context: Context) -> Result:
    """Calls written far beyond the risk feed's margin, accepted by margining them with
    the feed's Greeks ignored (no delta, gamma or vega, no floors)."""
    head = head_after(pre, txs, context)
    series = _series(head, live=True)
    if series is None:
        return None
    size = 1_000
    while size < 10**9:
        trade = _forged_trade(head, context, size, market=series, maker_buys=False)
        if trade is None:
            return None
        if apply(head.copy(), trade, context).reason == Reason.UNDER_MARGIN:
            break
        size *= 4
    else:
        return None
    honest = margin.exposure

    def blind(position: Any, market: Market) -> Any:
        found = honest(position, market)
        return found if market.product == products.PERPETUAL else found._replace(
            delta=0, gamma=0, vega=0, floor_maintenance_ppm=0, floor_initial_ppm=0)

    all_txs = txs + [trade]
    return all_txs, replay(pre, all_txs, context,
                           cheat=lambda i: patched(margin, "exposure", blind) if i == len(txs) else None)


CATALOG: dict[str, Kind] = {
    "mint": mint,
    "wrong-pnl": wrong_pnl,
    "skip-funding": skip_funding,
    "bad-signature": bad_signature,
    "overfill": overfill,
    "under-margin": under_margin,
    "fake-withdrawal": fake_withdrawal,
    "wrong-liquidation": wrong_liquidation,
    "reorder-deposits": reorder_deposits,
    "skip-deposit": skip_deposit,
    "ignore-forced": ignore_forced,
    "malformed-as-valid": malformed_as_valid,
    "wrong-root": wrong_root,
    "ignore-expiry": ignore_expiry,
    "wrong-settlement": wrong_settlement,
    "wrong-portfolio-margin": wrong_portfolio_margin,
    "under-risk-margin": under_risk_margin,
}
"""Every fraud mode, by the name `--fraud` takes."""
