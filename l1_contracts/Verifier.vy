# pragma version ~=0.4.3
"""
@title One-step verifier (router): the state transition of one transaction, on L1
@notice `step` re-executes one transaction against a witness of its pre-state and
        returns what rollup/stf/fork.py `apply` returns (reason, applied) with the
        post-state root. The rules do not fit one contract's 24 KB: each rules contract
        verifies its own transaction types, from the first checks (the shape, the markets
        the step reads: witness.vy `open_markets`; the witness against the pre-state root,
        the clock: `begin`) to the post-state root (`finish`):
            VerifyMarket: OracleUpdate, RiskUpdate, SettleSeries, FundingTick, AdvanceTime, Deposit
            VerifyTrade: Trade, Fill
            VerifyAccount: Withdraw, Cancel, SweepFees, SettlePosition
            VerifyForced: ForcedRequest
            VerifyRisk: Liquidate, Deleverage
        and Portfolio, the margin of an account holding option series (margin.vy calls it:
        the contracts that check margin have no room left for it under 24 KB).
        This router holds the configuration, the STF's Config: the EIP-712 domain (name
        "DerivativesRollup", version "1", this chain, verifying contract = the inbox),
        the oracle committee and its quorum. `route` names a type's rules contract and
        the step's context; the Rollup calls that rules contract itself (through this
        router the witness was decoded and copied once more and the writes came back
        ABI-encoded: 15,000-31,000 gas a heavy proof).
"""
import signing
import transactions
import witness

interface Rules:
    def step(data: Bytes[transactions.MAX_TX], pre_root: bytes32, ctx: witness.Context, w: witness.Witness) -> (uint8, bool, bytes32): view

MAX_ORACLE_SIGNERS: constant(uint256) = 16

market_rules: public(immutable(Rules))
trade_rules: public(immutable(Rules))
account_rules: public(immutable(Rules))
forced_rules: public(immutable(Rules))
portfolio_rules: public(immutable(address))
risk_rules: public(immutable(Rules))
inbox: public(immutable(address))
domain: public(immutable(bytes32))
oracle_signers: public(immutable(address[MAX_ORACLE_SIGNERS]))
oracle_count: public(immutable(uint256))
oracle_quorum: public(immutable(uint256))


@deploy
def __init__(
    market_rules_: Rules, trade_rules_: Rules, account_rules_: Rules, forced_rules_: Rules, risk_rules_: Rules,
    portfolio_rules_: address,
    inbox_: address, signers: DynArray[address, MAX_ORACLE_SIGNERS], quorum: uint256,
):
    assert quorum >= 1 and quorum <= len(signers), "verifier: bad quorum"
    for i: uint256 in range(len(signers), bound=MAX_ORACLE_SIGNERS):
        assert signers[i] != empty(address), "verifier: zero signer"
        for j: uint256 in range(i, bound=MAX_ORACLE_SIGNERS):
            assert signers[j] != signers[i] or j == i, "verifier: duplicate signer"
    market_rules = market_rules_
    trade_rules = trade_rules_
    account_rules = account_rules_
    forced_rules = forced_rules_
    portfolio_rules = portfolio_rules_
    risk_rules = risk_rules_
    inbox = inbox_
    domain = signing.domain_separator(chain.id, inbox_)
    fixed: address[MAX_ORACLE_SIGNERS] = empty(address[MAX_ORACLE_SIGNERS])
    for i: uint256 in range(len(signers), bound=MAX_ORACLE_SIGNERS):
        fixed[i] = signers[i]
    oracle_signers = fixed
    oracle_count = len(signers)
    oracle_quorum = quorum


@external
@view
def route(tag: uint256, batch_time: uint256, deposit_count: uint256, forced_count: uint256) -> (Rules, witness.Context):
    """The rules contract of transaction type `tag` (an unknown type: any, whose `step`
    refuses it by its shape) and the context of a step in a batch of timestamp
    `batch_time` posted when the L1 queues held `deposit_count` deposits and
    `forced_count` forced requests."""
    return self._rules(tag), self._context(batch_time, deposit_count, forced_count)


@external
@view
def step(
    data: Bytes[transactions.MAX_TX], pre_root: bytes32, batch_time: uint256, deposit_count: uint256,
    forced_count: uint256, w: witness.Witness,
) -> (uint8, bool, bytes32):
    """
    @notice (reason, applied, post-state root) of applying `data` to the state with root
            `pre_root`, in a batch of timestamp `batch_time` posted when the L1 queues held
            `deposit_count` deposits and `forced_count` forced requests. Reverts if the
            witness does not open `pre_root` (a transaction that does not decode needs none).
            Every transaction but AdvanceTime runs at the batch's time: while the state's
            clock is behind it, they are refused (TIME_BEHIND_BATCH). What the Rollup
            computes in a challenge (through `route`), in one call.
    """
    tag: uint256 = 0
    if len(data) > 0:
        tag = transactions.u8(data, 0)
    return staticcall self._rules(tag).step(data, pre_root, self._context(batch_time, deposit_count, forced_count), w)


@internal
@view
def _rules(tag: uint256) -> Rules:
    if tag == transactions.TRADE or tag == transactions.FILL:
        return trade_rules
    if tag == transactions.WITHDRAW or tag == transactions.CANCEL or tag == transactions.SWEEP_FEES or tag == transactions.SETTLE_POSITION:
        return account_rules
    if tag == transactions.FORCED_REQUEST:
        return forced_rules
    if tag == transactions.LIQUIDATE or tag == transactions.DELEVERAGE:
        return risk_rules
    return market_rules


@internal
@view
def _context(batch_time: uint256, deposit_count: uint256, forced_count: uint256) -> witness.Context:
    return witness.Context(
        timestamp=batch_time, domain=domain, oracle_signers=oracle_signers,
        oracle_count=oracle_count, oracle_quorum=oracle_quorum,
        deposit_count=deposit_count, forced_count=forced_count, inbox=inbox, portfolio=portfolio_rules,
    )
