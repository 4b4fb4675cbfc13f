"""A small world for STF tests: funded accounts, oracle committee, prices, and helpers
that build signed transactions. Every test gets a fresh copy of the state."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rollup.stf import apply, builders, products
from rollup.stf.fork import Context, Receipt
from rollup.stf.genesis import DEVNET_MARKETS, genesis_state
from rollup.stf.signing import address_of
from rollup.stf.state import Config, Market, State
from rollup.stf.transactions import ADVANCE_TIME, ORDER_NO_EXPIRY, AdvanceTime, Order

ORACLE_KEYS = tuple(bytes([0xA0 + i]) * 32 for i in range(3))
USER_KEYS = tuple(bytes([0x10 + i]) * 32 for i in range(6))
INSURANCE_KEY = b"\x77" * 32
CONFIG = Config(31337, b"\x42" * 20, tuple(address_of(k) for k in ORACLE_KEYS), 2)
START_TIME = 1_000
PRICES = {0: 300_000, 1: 1_000_000}
FUNDED = 50_000_000  # 50 USD of collateral per user

DAY = 86_400
_SERIES = dict(initial_margin_ppm=15_000, maintenance_margin_ppm=10_000, liquidation_penalty_ppm=10_000,
               max_funding_rate_ppm=0, max_price_move_ppm=500_000, oracle_staleness=3_600)
OPTION_MARKETS = (
    *(m._replace(vol_shock_ppm=100_000) for _, m in DEVNET_MARKETS),
    Market(id=2, product=products.CALL, underlying=0, strike=300_000, expiry=START_TIME + 30 * DAY, **_SERIES),
    Market(id=3, product=products.PUT, underlying=0, strike=280_000, expiry=START_TIME + 30 * DAY, **_SERIES),
    Market(id=4, product=products.CALL, underlying=1, strike=1_000_000, expiry=START_TIME + 3_600, **_SERIES),
)
"""The perpetuals ETH (0) and BTC (1) with a 10-point volatility shock, and three series
written on them: a 30-day at-the-money ETH call, a 30-day ETH put 7% out of the money,
and a BTC call that expires an hour after START_TIME (scenarios reach its expiry)."""
RISK = {2: (14_500, 545_649, 518_408, 34_087), 3: (6_000, -250_000, 420_000, 28_000),
        4: (9_000, 520_000, 9_000_000, 4_000)}
"""Each series' first (mark, delta, gamma, vega), signed by the committee in `make_world`."""


@dataclass
class World:
    state: State
    queues: builders.L1Queues
    context: Context
    time: int = START_TIME
    nonces: dict[int, int] = field(default_factory=dict)

    def prepare(self, tx: bytes) -> Context:
        """The context `tx` is applied in: an AdvanceTime to a later time starts a new batch
        at that time (every other transaction runs at its batch's time)."""
        if len(tx) == 9 and tx[0] == ADVANCE_TIME:
            timestamp = int.from_bytes(tx[1:], "big")
            if timestamp > self.context.timestamp:
                self.context = replace(self.context, timestamp=timestamp)
        return self.context

    def apply(self, tx: bytes | object) -> Receipt:
        """Apply one transaction (in the context `prepare` gives it)."""
        data = tx if isinstance(tx, bytes) else tx.encode()  # type: ignore[attr-defined]
        return apply(self.state, data, self.prepare(data))

    def next_nonce(self, account: int) -> int:
        self.nonces[account] = self.nonces.get(account, 0) + 1
        return self.nonces[account]

    def order(self, account: int, market: int, is_buy: bool, size: int, price: int,
              max_fee_ppm: int = 1_000, expiry: int = ORDER_NO_EXPIRY) -> Order:
        return Order(account, market, is_buy, size, price, max_fee_ppm, self.next_nonce(account), expiry)

    def trade(self, maker: Order, taker: Order, fill: int, maker_fee: int = 200,
              taker_fee: int = 500) -> bytes:
        return builders.trade(maker, USER_KEYS[maker.account - 1], taker, USER_KEYS[taker.account - 1],
                              fill, self.context, maker_fee, taker_fee).encode()

    def fill(self, maker: Order, taker: Order, fill: int, maker_fee: int = 200, taker_fee: int = 500) -> bytes:
        """A later fill of `maker` (posted by an earlier trade), naming it."""
        return builders.fill(maker, taker, USER_KEYS[taker.account - 1], fill, self.context,
                             maker_fee, taker_fee).encode()

    def set_price(self, market: int, price: int) -> Receipt:
        self.advance(1)
        update = builders.oracle_update(
            market, self.time, [(0, price, ORACLE_KEYS[0]), (1, price, ORACLE_KEYS[1])], self.context
        )
        return self.apply(update)

    def set_risk(self, market: int, mark: int, delta: int, gamma: int, vega: int) -> Receipt:
        """A RiskUpdate of `market` by signers 0 and 1, one second later."""
        self.advance(1)
        keys = ORACLE_KEYS
        update = builders.risk_update(market, self.time, [(0, mark, delta, gamma, vega, keys[0]),
                                                          (1, mark, delta, gamma, vega, keys[1])], self.context)
        return self.apply(update)

    def advance(self, seconds: int) -> Receipt:
        self.time += seconds
        return self.apply(AdvanceTime(self.time))

    def conserved(self) -> bool:
        g = self.state.globals
        collateral = sum(a.collateral for a in self.state.accounts.values())
        return collateral + g.fee_pool + g.funding_pool + g.total_withdrawn == g.total_deposited


def make_world(users: int = 6, deposit: int = FUNDED, insurance: int = 1_000_000,
               config: Config = CONFIG, options: bool = False) -> World:
    """Genesis, `users` accounts (ids 1..users) funded through the deposit queue, prices set;
    with `options`, OPTION_MARKETS listed and each series marked (RISK)."""
    state = genesis_state(address_of(INSURANCE_KEY), OPTION_MARKETS if options else None)
    queues = builders.L1Queues()
    queues.deposit(0, address_of(INSURANCE_KEY), insurance)
    for i in range(users):
        queues.deposit(i + 1, address_of(USER_KEYS[i]), deposit)
    context = Context(config, 0, tuple(queues.deposit_heads), tuple(queues.forced_heads))
    world = World(state, queues, context)
    assert world.apply(AdvanceTime(START_TIME)).ok
    for entry in queues.deposits:
        assert world.apply(entry).ok
    for market, price in PRICES.items():
        assert world.set_price(market, price).ok
    if options:
        for market, risk in RISK.items():
            assert world.set_risk(market, *risk).ok
    return world
