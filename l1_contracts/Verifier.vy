# pragma version ~=0.4.3
"""
@title One-step verifier (router): the state transition of one transaction, on L1
@notice `step` re-executes one transaction against a witness of its pre-state and
        returns what rollup/stf/fork.py `apply` returns (reason, applied) with the
        post-state root. Decoding failures are named here; each rule lives in a rules
        contract (the rules do not fit one contract's 24 KB):
            VerifyMarket: OracleUpdate, FundingTick, AdvanceTime
            VerifyTrade: Trade, Fill
            VerifyAccount: Deposit, Withdraw, Cancel, ForcedRequest, SweepFees
            VerifyRisk: Liquidate, Deleverage
        The configuration is the STF's Config: the EIP-712 domain (name
        "DerivativesRollup", version "1", this chain, verifying contract = the inbox),
        the oracle committee and its quorum.
"""
import leaves
import sigs
import txs
import witness

interface Rules:
    def verify(data: Bytes[txs.MAX_TX], ctx: witness.Context, w: witness.Witness, markets: leaves.Market[16]) -> witness.Writes: view

MAX_ORACLES: constant(uint256) = 16

market_rules: public(immutable(Rules))
trade_rules: public(immutable(Rules))
account_rules: public(immutable(Rules))
risk_rules: public(immutable(Rules))
inbox: public(immutable(address))
domain: public(immutable(bytes32))
oracle_signers: public(immutable(address[MAX_ORACLES]))
oracle_count: public(immutable(uint256))
oracle_quorum: public(immutable(uint256))


@deploy
def __init__(
    market_rules_: Rules, trade_rules_: Rules, account_rules_: Rules, risk_rules_: Rules,
    inbox_: address, signers: DynArray[address, MAX_ORACLES], quorum: uint256,
):
    assert quorum >= 1 and quorum <= len(signers), "verifier: bad quorum"
    for i: uint256 in range(len(signers), bound=MAX_ORACLES):
        assert signers[i] != empty(address), "verifier: zero signer"
        for j: uint256 in range(i, bound=MAX_ORACLES):
            assert signers[j] != signers[i] or j == i, "verifier: duplicate signer"
    market_rules = market_rules_
    trade_rules = trade_rules_
    account_rules = account_rules_
    risk_rules = risk_rules_
    inbox = inbox_
    domain = sigs.domain_separator(chain.id, inbox_)
    fixed: address[MAX_ORACLES] = empty(address[MAX_ORACLES])
    for i: uint256 in range(len(signers), bound=MAX_ORACLES):
        fixed[i] = signers[i]
    oracle_signers = fixed
    oracle_count = len(signers)
    oracle_quorum = quorum


@external
@view
def step(
    data: Bytes[txs.MAX_TX], pre_root: bytes32, batch_time: uint256, deposit_count: uint256,
    forced_count: uint256, w: witness.Witness,
) -> (uint8, bool, bytes32):
    """
    @notice (reason, applied, post-state root) of applying `data` to the state with root
            `pre_root`, in a batch of timestamp `batch_time` posted when the L1 queues held
            `deposit_count` deposits and `forced_count` forced requests. Reverts if the
            witness does not open `pre_root` (a transaction that does not decode needs none).
            Every transaction but AdvanceTime runs at the batch's time: while the state's
            clock is behind it, they are refused (TIME_BEHIND_BATCH).
    """
    shape: uint8 = txs.shape(data)
    if shape != txs.OK:
        return shape, False, pre_root
    markets: leaves.Market[witness.MAX_MARKETS] = empty(leaves.Market[witness.MAX_MARKETS])
    market_leaves: bytes32[witness.MAX_MARKETS] = empty(bytes32[witness.MAX_MARKETS])
    markets, market_leaves = witness.open(w, pre_root)
    tag: uint256 = txs.u8(data, 0)
    if tag != txs.ADVANCE_TIME and w.globals.time < batch_time:
        return txs.TIME_BEHIND_BATCH, False, pre_root
    ctx: witness.Context = witness.Context(
        timestamp=batch_time, domain=domain, oracle_signers=oracle_signers,
        oracle_count=oracle_count, oracle_quorum=oracle_quorum,
        deposit_count=deposit_count, forced_count=forced_count, inbox=inbox,
    )
    rules: Rules = market_rules
    if tag == txs.TRADE or tag == txs.FILL:
        rules = trade_rules
    elif tag == txs.DEPOSIT or tag == txs.WITHDRAW or tag == txs.CANCEL or tag == txs.FORCED_REQUEST or tag == txs.SWEEP_FEES:
        rules = account_rules
    elif tag == txs.LIQUIDATE or tag == txs.DELEVERAGE:
        rules = risk_rules
    writes: witness.Writes = staticcall rules.verify(data, ctx, w, markets)
    if not writes.applied:
        return writes.reason, False, pre_root
    return writes.reason, True, witness.post_root(
        w.first, w.second, w.accounts_root, w.withdrawals_root, w.globals.withdrawal_count, w.withdrawal_proof,
        writes, market_leaves,
    )
