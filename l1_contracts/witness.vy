# pragma version ~=0.4.3
"""
@title A disputed step's pre-state, opened by a witness, and its post-state root (a module)
@notice The verifier re-executes one transaction against the part of the state it touches.
        The challenger opens that part of the pre-state:
          - the four parts of the state root: accounts root, the markets (the records of
            those the step reads as their leaf encodings, 94 bytes or 139 for an option
            series: the product byte, the record's second, says which; the leaf hashes of
            the other listed markets; both in id order; the markets root is the hash of the
            48 leaves), the globals record, the withdrawals root;
          - up to two accounts ("first" and "second") with their account-tree paths, each
            with one nonce slot and its path under the account's orders_root;
          - for Deleverage, the insurance fund (account 0) with its path: its value is
            read, never written ("fund", a list of one; empty for every other type);
          - the path of the next (empty) withdrawal leaf;
          - for Fill, the order it names (the preimage of the first account's slot hash;
            zeros for every other type).
        The markets a step reads are opened: every market an opened account holds, the
        underlying of every opened series, and the market the transaction names (a rule
        reading any other reverts: the witness is the challenger's to complete).
        `open_markets` reads the markets (the one the step names, the marks, the leaves)
        and `begin` proves them and the other records against the pre-state root;
        `open_account` and `open_slot` prove an account or slot at the index the
        transaction names; `finish`
        applies a rule's writes and recomputes the root, as rollup/stf/fork.py `commit` does.
        Encodings are those of rollup/stf/state.py (packed big-endian, two's complement).
"""
import margin
import merkle
import signing
import state
import transactions

MAX_MARKETS: constant(uint256) = 48
OPENED: constant(uint256) = 1 << MAX_MARKETS  # Witness.listed: bit MAX_MARKETS + i says market i is opened
MAX_MARKET_BYTES: constant(uint256) = state.OPTION_RECORD * MAX_MARKETS
MAX_HASH_BYTES: constant(uint256) = 32 * MAX_MARKETS
ACCOUNT_TREE_DEPTH: constant(uint256) = 10
ORDER_TREE_DEPTH: constant(uint256) = 4
ORDER_SLOTS: constant(uint256) = 256
WITHDRAWAL_TREE_DEPTH: constant(uint256) = 10
ACCOUNT_CAPACITY: constant(uint256) = 4**10
WITHDRAWAL_CAPACITY: constant(uint256) = 4**10

# Which writes a rule asks for (bits of Writes.flags).
WRITE_FIRST: constant(uint256) = 1
WRITE_SECOND: constant(uint256) = 2
WRITE_FIRST_SLOT: constant(uint256) = 4
WRITE_SECOND_SLOT: constant(uint256) = 8
WRITE_MARKET: constant(uint256) = 16
WRITE_WITHDRAWAL: constant(uint256) = 32


struct Opened:
    account: Bytes[state.ACCOUNT_RECORD]  # its leaf encoding (state.account_of; empty: the default account)
    proof: bytes32[30]
    slot: state.Slot
    slot_proof: bytes32[12]


# The witness as a challenger sends it: the opened markets' records packed (94 or 139
# bytes each) since calldata is paid per byte; `listed`: bits 0-47 the listed markets,
# bits 48-95 the opened ones among them; `hashes`: the leaves of the listed markets not
# opened, in id order, 32 bytes each (one string: copied whole, not word by word).
struct Witness:
    accounts_root: bytes32
    withdrawals_root: bytes32
    globals: state.Globals
    markets: Bytes[MAX_MARKET_BYTES]
    listed: uint256
    hashes: Bytes[MAX_HASH_BYTES]
    first: Opened
    second: Opened
    fund: DynArray[Opened, 1]  # Deleverage only: empty for every other type (zero bytes cost calldata too)
    withdrawal_proof: DynArray[bytes32, 30]  # the next withdrawal leaf's path, for a step that may append one (else empty: zero bytes cost calldata too)
    order: signing.Order


struct Writes:
    reason: uint8
    applied: bool
    flags: uint256
    first_id: uint256
    second_id: uint256
    first_nonce: uint256
    second_nonce: uint256
    first: state.Account
    second: state.Account
    first_slot: state.Slot
    second_slot: state.Slot
    market: state.Market
    globals: state.Globals
    withdrawal: state.Withdrawal


# What a step may know besides the state (rollup/stf/fork.py Context): the batch's
# timestamp, the EIP-712 domain, the oracle committee, and the L1 queues' lengths as of
# the batch (their heads are read from `inbox`); and the Portfolio contract (an option
# holder's margin, margin.vy).
struct Context:
    timestamp: uint256
    domain: bytes32
    oracle_signers: address[16]
    oracle_count: uint256
    oracle_quorum: uint256
    deposit_count: uint256
    forced_count: uint256
    inbox: address
    portfolio: address


# ---------------------------------------------------------------------- opening the pre-state


@internal
@pure
def open_markets(
    records: Bytes[MAX_MARKET_BYTES], listed: uint256, hashes: Bytes[MAX_HASH_BYTES], named: uint256,
    portfolio_rules: address,
) -> (state.Market, margin.Marks, bytes32[MAX_MARKETS]):
    """The opened markets read: (the market `named` if it is opened, else empty; the
    money rules' marks of the opened markets (margin.vy Marks, entry by entry; the others
    zeros); the 48 market leaves: an opened market's the hash of its record, another
    listed market's from `hashes`, an unlisted market's zero). The opened markets are
    listed, and the underlying of an opened series is opened when it is listed (the
    portfolio rule reads it beside the series)."""
    ok: bool = listed < 1 << (2 * MAX_MARKETS) and (listed >> MAX_MARKETS) & ~listed == 0
    candidate: state.Market = empty(state.Market)
    k: margin.Marks = empty(margin.Marks)
    k.opened = listed >> MAX_MARKETS
    k.portfolio = portfolio_rules
    market_leaves: bytes32[MAX_MARKETS] = empty(bytes32[MAX_MARKETS])
    at: uint256 = 0
    h: uint256 = 0
    for i: uint256 in range(MAX_MARKETS):
        if (listed & (OPENED - 1)) >> i == 0:
            break  # no listed market from here on
        if listed & (OPENED << i) != 0:
            # the product byte gives the record's length; the marks straight from its bytes
            # (state.market_of's layout); the market the step names decoded whole
            if unsafe_add(at, state.PERPETUAL_RECORD) > len(records):  # unchecked: at <= len(records)
                ok = False
                break
            head: uint256 = extract32(records, at, output_type=uint256)  # id byte, product byte, ...
            record: Bytes[state.OPTION_RECORD] = b""
            if (head >> 240) & 255 == state.PERPETUAL:
                record = slice(records, at, state.PERPETUAL_RECORD)
            else:  # an option series
                if unsafe_add(at, state.OPTION_RECORD) > len(records):
                    ok = False
                    break
                record = slice(records, at, state.OPTION_RECORD)
            ok = ok and head >> 248 == i
            market_leaves[i] = keccak256(record)
            at = unsafe_add(at, len(record))
            # price | oracle time -> fractions | funding index (bytes 2-33, fractions at 50-57)
            k.market[i] = (
                (extract32(record, 2, output_type=uint256) & ~(margin.U64 << 128))
                | ((extract32(record, 26, output_type=uint256) & margin.U64) << 128)
            )
            if len(record) == state.PERPETUAL_RECORD:
                k.risk[i] = extract32(record, 62, output_type=uint256) & margin.U32  # vol shock, bytes 90-93
            else:  # its underlying (byte 94) opened if listed; delta | gamma | vega, bytes 119-138
                u: uint256 = extract32(record, 94, output_type=uint256) >> 248
                ok = ok and (u >= MAX_MARKETS or listed & (1 << u) == 0 or listed & (OPENED << u) != 0)
                k.risk[i] = margin.OPTION | (u << 160) | (extract32(record, 107, output_type=uint256) & (2**160 - 1))
            if i == named:
                candidate = state.market_of(record)
        elif listed & (1 << i) != 0:
            if h + 32 > len(hashes):
                ok = False
                break
            market_leaves[i] = extract32(hashes, h)
            ok = ok and market_leaves[i] != empty(bytes32)
            h += 32
    assert ok and at == len(records) and h == len(hashes), "witness: markets"
    return candidate, k, market_leaves


@internal
@pure
def open_account(accounts_root: bytes32, o: Opened, account_id: uint256) -> state.Account:
    """The account `account_id` of the pre-state (its record, whose hash is its leaf, and
    its path prove it), in canonical form (fields within their widths, zeros past its
    positions): the witness carries the packed record, calldata being paid per byte."""
    a: state.Account = state.account_of(o.account)
    assert merkle.root10(account_id, self._account_leaf(o), o.proof) == accounts_root, "witness: account path"
    return a


@internal
@pure
def _account_leaf(o: Opened) -> bytes32:
    """The opened account's leaf: its record's hash, zero for the default account."""
    if len(o.account) == 0:
        return empty(bytes32)
    return keccak256(o.account)


@internal
@pure
def open_slot(o: Opened, nonce: uint256) -> state.Slot:
    """The nonce slot `nonce mod 256` of an opened account (proved under its orders_root)."""
    assert state.slot_fits(o.slot), "witness: slot out of range"
    orders_root: bytes32 = empty(bytes32)  # the account's (bytes 36-67 of its record)
    if len(o.account) > 0:
        orders_root = extract32(o.account, 36, output_type=bytes32)
    assert merkle.root4(nonce % ORDER_SLOTS, state.slot_leaf(o.slot), o.slot_proof) == orders_root, "witness: slot path"
    return o.slot


@internal
@pure
def market(candidate: state.Market, listed: uint256, market_id: uint256) -> (state.Market, bool):
    """(the market, whether it exists). `candidate` is the market the step names, as `begin`
    opened it; it is not read when market_id is outside the table or not listed, and a
    listed market must be opened (and be the candidate)."""
    if market_id >= MAX_MARKETS or listed & (1 << market_id) == 0:
        return empty(state.Market), False
    assert listed & (OPENED << market_id) != 0 and candidate.id == market_id, "witness: market not opened"
    return candidate, True


@internal
@pure
def begin(
    data: Bytes[transactions.MAX_TX], pre_root: bytes32, batch_time: uint256, market_leaves: bytes32[MAX_MARKETS],
    g: state.Globals, accounts_root: bytes32, withdrawals_root: bytes32,
) -> uint8:
    """A step's checks after its shape (transactions.shape, which needs no witness) and its markets
    (`open_markets`), in rollup/stf/fork.py `apply`'s order: the witness's records
    against `pre_root` (reverts if they do not open it), then the clock: every
    transaction but AdvanceTime runs at the batch's time, and while the state's clock is
    behind it they are refused (TIME_BEHIND_BATCH). Returns OK or the refusal. The
    witness comes in parts: a struct argument is copied whole into each callee's frame."""
    assert state.globals_fit(g), "witness: globals out of range"
    root: bytes32 = state.state_root(
        accounts_root, state.markets_root(market_leaves), state.globals_hash(g), withdrawals_root
    )
    assert root == pre_root, "witness: pre-state root"
    if transactions.u8(data, 0) != transactions.ADVANCE_TIME and g.time < batch_time:
        return transactions.TIME_BEHIND_BATCH
    return transactions.OK


# ---------------------------------------------------------------------- the post-state


@internal
@pure
def refuse(reason: uint8) -> Writes:
    """A no-op with its reason: nothing is written."""
    out: Writes = empty(Writes)
    out.reason = reason
    return out


@internal
@pure
def nothing(g: state.Globals) -> Writes:
    """Reason OK, the globals `g` as they stand, no other writes yet (the rule adds them)."""
    out: Writes = empty(Writes)
    out.applied = True
    out.globals = g
    return out


@internal
@pure
def _path(index: uint256, leaf: bytes32, proof: bytes32[30]) -> bytes32[11]:
    """The nodes from `leaf` (level 0) up to the root (level 10) of an account-tree path."""
    nodes: bytes32[11] = empty(bytes32[11])
    nodes[0] = leaf
    position: uint256 = index
    for level: uint256 in range(ACCOUNT_TREE_DEPTH):
        at: uint256 = unsafe_mul(3, level)  # the level's siblings (unchecked: level < 10)
        nodes[unsafe_add(level, 1)] = merkle.climb(nodes[level], position % 4, proof[at], proof[unsafe_add(at, 1)], proof[unsafe_add(at, 2)])
        position //= 4
    return nodes


@internal
@pure
def accounts_root_after_two(
    a_id: uint256, a_leaf: bytes32, a_proof: bytes32[30],
    b_id: uint256, b_leaf: bytes32, b_proof: bytes32[30],
) -> bytes32:
    """The accounts root after writing two distinct leaves whose paths were both proved
    against the same root: b's path is rehashed with a's new node where the paths meet."""
    assert a_id != b_id
    a_nodes: bytes32[11] = self._path(a_id, a_leaf, a_proof)
    proof: bytes32[30] = b_proof
    # the highest level at which the two paths differ: there a's node is b's sibling
    meet: uint256 = 0
    for level: uint256 in range(ACCOUNT_TREE_DEPTH):
        if (a_id >> (2 * level)) != (b_id >> (2 * level)):
            meet = level
    pa: uint256 = (a_id >> (2 * meet)) % 4
    pb: uint256 = (b_id >> (2 * meet)) % 4
    k: uint256 = pa
    if pa > pb:
        k = pa - 1
    proof[3 * meet + k] = a_nodes[meet]
    return self._path(b_id, b_leaf, proof)[ACCOUNT_TREE_DEPTH]


@internal
@pure
def finish(
    first_opened: Opened, second_opened: Opened, pre_accounts_root: bytes32, pre_withdrawals_root: bytes32,
    withdrawal_count: uint256, withdrawal_proof: DynArray[bytes32, 30], writes: Writes, market_leaves: bytes32[MAX_MARKETS],
    pre_root: bytes32,
) -> (uint8, bool, bytes32):
    """What `step` returns: (reason, applied, post-state root). A refusal leaves
    `pre_root`; otherwise the root after a rule's writes, as `commit` computes it: a slot
    write sets its account's orders_root; accounts, the market, the globals and an
    appended withdrawal record are rehashed into their trees (`market_leaves`: the
    pre-state's, from `open`). One function: each call copies the openings and the writes
    into its frame."""
    if not writes.applied:
        return writes.reason, False, pre_root
    first: state.Account = writes.first
    second: state.Account = writes.second
    if writes.flags & WRITE_FIRST == 0 and writes.flags & WRITE_FIRST_SLOT != 0:
        first = state.account_of(first_opened.account)
    if writes.flags & WRITE_SECOND == 0 and writes.flags & WRITE_SECOND_SLOT != 0:
        second = state.account_of(second_opened.account)
    if writes.flags & WRITE_FIRST_SLOT != 0:
        first.orders_root = merkle.root4(writes.first_nonce % ORDER_SLOTS, state.slot_leaf(writes.first_slot), first_opened.slot_proof)
    if writes.flags & WRITE_SECOND_SLOT != 0:
        second.orders_root = merkle.root4(writes.second_nonce % ORDER_SLOTS, state.slot_leaf(writes.second_slot), second_opened.slot_proof)
    write_first: bool = writes.flags & (WRITE_FIRST | WRITE_FIRST_SLOT) != 0
    write_second: bool = writes.flags & (WRITE_SECOND | WRITE_SECOND_SLOT) != 0

    accounts_root: bytes32 = pre_accounts_root
    if write_first and write_second:
        accounts_root = self.accounts_root_after_two(
            writes.first_id, state.account_leaf(first), first_opened.proof,
            writes.second_id, state.account_leaf(second), second_opened.proof,
        )
    elif write_first:
        accounts_root = merkle.root10(writes.first_id, state.account_leaf(first), first_opened.proof)
    elif write_second:
        accounts_root = merkle.root10(writes.second_id, state.account_leaf(second), second_opened.proof)

    after: bytes32[MAX_MARKETS] = market_leaves
    if writes.flags & WRITE_MARKET != 0:
        after[writes.market.id] = state.market_leaf(writes.market)

    withdrawals_root: bytes32 = pre_withdrawals_root
    if writes.flags & WRITE_WITHDRAWAL != 0:
        index: uint256 = withdrawal_count
        assert merkle.compute_root(index, empty(bytes32), withdrawal_proof, WITHDRAWAL_TREE_DEPTH) == pre_withdrawals_root, "witness: withdrawal path"
        withdrawals_root = merkle.compute_root(index, state.withdrawal_leaf(writes.withdrawal), withdrawal_proof, WITHDRAWAL_TREE_DEPTH)

    return writes.reason, True, state.state_root(
        accounts_root, state.markets_root(after), state.globals_hash(writes.globals), withdrawals_root
    )
