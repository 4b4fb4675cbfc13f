# pragma version ~=0.4.3
"""
@title Rollup chain: bonded batches, a challenge window, one-step fraud proofs, freeze
@notice Bonded proposers post batches: the transactions (calldata: a watcher needs nothing
        but L1), the batch's timestamp and the state root after every transaction. At
        submission the contract commits to the steps in a binary Merkle tree
        (leaf_i = keccak(post_root_i ++ keccak(tx_i)), rollup/batch.py), so any one step
        can be opened and re-executed by the verifier without the proposer's help.

        Who proposes. The deployment names a sequencer. Any other bonded address may
        propose only once the sequencer has been silent (no batch) for `silence_period`
        seconds, and may then fill at most half of the pending capacity. A batch is
        accepted only as the input of a top-level transaction of an account without code
        (msg.sender == tx.origin, no code: an EIP-7702-delegated account has code), so its
        data is always the calldata of a transaction any node serves. Its timestamp must
        lie within `max_time_lag` seconds before the L1 block's.

        Finality. A batch is final once its challenge window has passed and every earlier
        batch is final (`finalize`, callable by anyone).

        Fraud proofs, in two moves. A challenger first commits to
        keccak(abi_encode(challenger, batch id, step, the post-state root it claims, salt))
        (`commit`), then, at least one block later, reveals the proof (`challenge`): if the
        verifier's post-state root differs from the posted one (and is the one committed),
        the batch and every later batch are reverted and the proposer's bond is slashed:
        half burned at once (it stays here, out of every function's reach), half held as
        the reward for `reward_delay` seconds. While it
        is held, a challenger whose commitment is older may prove the same batch again and
        take the reward: the first commitment wins, so copying a revealed proof pays
        nothing. `claim_reward` pays the winner once the delay has passed.

        Censorship resistance: a forced request or a deposit left unconsumed for longer
        than `inclusion_delay` plus the challenge window, by the last final state once
        every batch past its window is finalized, lets anyone freeze the rollup; then
        nothing is posted or finalized, and accounts exit through the bridge's escape
        hatch against the last final root. No pending root, which anyone bonded could
        make up, decides a freeze.
"""
import state
import transactions
import witness

interface Verifier:
    def route(tag: uint256, batch_time: uint256, deposit_count: uint256, forced_count: uint256) -> (Rules, witness.Context): view

# a rules contract (Verifier.vy `route` names the one of each transaction type)
interface Rules:
    def step(data: Bytes[transactions.MAX_TX], pre_root: bytes32, ctx: witness.Context, w: witness.Witness) -> (uint8, bool, bytes32): view

interface Inbox:
    def deposit_count() -> uint256: view
    def deposit_head(index: uint256) -> bytes32: view
    def forced_count() -> uint256: view
    def forced_time(index: uint256) -> uint256: view

MAX_TX: constant(uint256) = transactions.MAX_TX
MAX_BATCH_BYTES: constant(uint256) = 49152
MAX_STEPS: constant(uint256) = 1024
ROOT_PREFIX: constant(uint256) = 16
MAX_PREFIX_BYTES: constant(uint256) = ROOT_PREFIX * (MAX_STEPS - 1)
STEP_TREE_DEPTH: constant(uint256) = 10
# the high 16 bytes of a word: a root prefix, the rest zero (a step leaf's first word)
PREFIX_MASK: constant(uint256) = ((1 << 128) - 1) << 128
MAX_PENDING: constant(uint256) = 256
# Pending batches beyond which only the sequencer may post: an outsider can never take
# the sequencer's room.
OUTSIDER_PENDING: constant(uint256) = 128

PENDING: constant(uint8) = 1
FINAL: constant(uint8) = 2
REVERTED: constant(uint8) = 3


struct Batch:
    position: uint256
    state_root: bytes32
    step_root: bytes32
    steps: uint256
    timestamp: uint256
    deposit_count: uint256
    forced_count: uint256
    proposer: address
    deadline: uint256
    status: uint8
    parent_root: bytes32


struct Reward:
    challenger: address
    commit_block: uint256
    amount: uint256
    payable_at: uint256
    paid: bool


# A reward is kept in one storage word: challenger (bits 0-159) | commit block (160-207) |
# payable at (208-247) | paid (248) | funded (249: the amount is half the bond; a proposer
# already slashed to zero funds nothing).
REWARD_BLOCK_SHIFT: constant(uint256) = 160
REWARD_TIME_SHIFT: constant(uint256) = 208
REWARD_PAID: constant(uint256) = 1 << 248
REWARD_FUNDED: constant(uint256) = 1 << 249


event BatchSubmitted:
    id: indexed(uint256)
    position: indexed(uint256)
    proposer: indexed(address)
    state_root: bytes32
    step_root: bytes32
    steps: uint256
    timestamp: uint256
    deposit_count: uint256
    forced_count: uint256
    deadline: uint256

event BatchFinalized:
    id: indexed(uint256)
    position: indexed(uint256)
    state_root: bytes32

event BatchReverted:
    id: indexed(uint256)
    position: indexed(uint256)

event ChallengeCommitted:
    commitment: indexed(bytes32)
    block_number: uint256

event FraudProven:
    id: indexed(uint256)
    step: uint256
    challenger: indexed(address)
    proposer: indexed(address)
    reason: uint8
    computed_root: bytes32
    posted_root: bytes32
    reward: uint256
    burned: uint256
    commit_block: uint256

event RewardReassigned:
    id: indexed(uint256)
    challenger: indexed(address)
    previous: indexed(address)
    commit_block: uint256

event RewardPaid:
    id: indexed(uint256)
    challenger: indexed(address)
    amount: uint256

event Bonded:
    proposer: indexed(address)
    amount: uint256

event Unbonded:
    proposer: indexed(address)
    amount: uint256

event Frozen:
    forced_index: uint256
    deposit_index: uint256
    final_root: bytes32


verifier: public(immutable(Verifier))
inbox: public(immutable(Inbox))
genesis_root: public(immutable(bytes32))
challenge_window: public(immutable(uint256))
inclusion_delay: public(immutable(uint256))
bond_amount: public(immutable(uint256))
sequencer: public(immutable(address))
silence_period: public(immutable(uint256))
max_time_lag: public(immutable(uint256))
reward_delay: public(immutable(uint256))

# Batches as stored: five words instead of a word per field (a proof reads them all, a
# submission writes them all). `batches(id)` returns the Batch.
# A proven batch's state root is void: its word holds the proof's reward instead (the
# PROVEN bit of its head says so), which saves the proof a fresh storage slot.
struct StoredBatch:
    head: uint256  # proven u1 | position u48 | steps u16 | status u8 | timestamp u48 | deadline u48 (high to low)
    origin: uint256  # proposer u160 | deposit_count u48 | forced_count u48
    state_root: bytes32  # (proven: the reward)
    step_root: bytes32
    parent_root: bytes32


_batches: HashMap[uint256, StoredBatch]
# Batches ever submitted; ids are 0, 1, 2, ... (a reverted batch keeps its id).
batch_count: public(uint256)
# The live chain: position -> batch id, for positions [0, length); [0, finalized) are final.
live: public(HashMap[uint256, uint256])
length: public(uint256)
finalized: public(uint256)
bonds: public(HashMap[address, uint256])
pending_of: public(HashMap[address, uint256])
frozen: public(bool)
# The L1 time of the sequencer's latest batch (of the deployment, before any).
sequencer_seen: public(uint256)
# commitment -> the L1 block it was made in (0: none)
commitments: public(HashMap[bytes32, uint256])


@deploy
def __init__(
    verifier_: Verifier, inbox_: Inbox, genesis_root_: bytes32, challenge_window_: uint256,
    inclusion_delay_: uint256, bond_amount_: uint256, sequencer_: address, silence_period_: uint256,
    max_time_lag_: uint256, reward_delay_: uint256,
):
    assert bond_amount_ > 0, "rollup: zero bond"
    assert challenge_window_ > 0, "rollup: zero challenge window"
    assert inclusion_delay_ > 0, "rollup: zero inclusion delay"
    assert max_time_lag_ > 0, "rollup: zero time lag"
    assert sequencer_ != empty(address), "rollup: no sequencer"
    verifier = verifier_
    inbox = inbox_
    genesis_root = genesis_root_
    challenge_window = challenge_window_
    inclusion_delay = inclusion_delay_
    bond_amount = bond_amount_
    sequencer = sequencer_
    silence_period = silence_period_
    max_time_lag = max_time_lag_
    reward_delay = reward_delay_
    self.sequencer_seen = block.timestamp


# ---------------------------------------------------------------------- bonds


@external
@payable
@nonreentrant
def bond():
    """Post the proposer bond (exactly `bond_amount` wei)."""
    assert msg.value == bond_amount, "bond: wrong amount"
    assert self.bonds[msg.sender] == 0, "bond: already bonded"
    self.bonds[msg.sender] = msg.value
    log Bonded(proposer=msg.sender, amount=msg.value)


@external
@nonreentrant
def unbond():
    """Take the bond back once none of the proposer's batches is pending."""
    amount: uint256 = self.bonds[msg.sender]
    assert amount > 0, "unbond: not bonded"
    assert self.pending_of[msg.sender] == 0, "unbond: batches pending"
    self.bonds[msg.sender] = 0
    send(msg.sender, amount)
    log Unbonded(proposer=msg.sender, amount=amount)


# ---------------------------------------------------------------------- batches


U48: constant(uint256) = 2**48 - 1
STATUS_SHIFT: constant(uint256) = 96
PROVEN: constant(uint256) = 1 << 168


@view
@internal
def _header(batch_id: uint256) -> Batch:
    """The batch without its state and parent roots (zeros): what a challenge reads. It
    reads the parent root only for step 0, and overwrites the state root's slot without
    reading it (a cold storage read fewer than `_batch` for every step past the first)."""
    head: uint256 = self._batches[batch_id].head
    origin: uint256 = self._batches[batch_id].origin
    return Batch(
        position=(head >> 120) & U48, state_root=empty(bytes32), step_root=self._batches[batch_id].step_root,
        steps=(head >> 104) & 65535, timestamp=(head >> 48) & U48,
        deposit_count=(origin >> 48) & U48, forced_count=origin & U48,
        proposer=convert(convert(origin >> 96, uint160), address), deadline=head & U48,
        status=convert((head >> STATUS_SHIFT) & 255, uint8), parent_root=empty(bytes32),
    )


@view
@internal
def _batch(batch_id: uint256) -> Batch:
    b: Batch = self._header(batch_id)
    if self._batches[batch_id].head & PROVEN == 0:
        b.state_root = self._batches[batch_id].state_root  # (proven: the reward's slot)
    b.parent_root = self._batches[batch_id].parent_root
    return b


@internal
def _store(batch_id: uint256, b: Batch):
    assert (b.position | b.timestamp | b.deadline | b.deposit_count | b.forced_count) <= U48 and b.steps < 65536
    self._batches[batch_id] = StoredBatch(
        head=(b.position << 120) | (b.steps << 104) | (convert(b.status, uint256) << STATUS_SHIFT) | (b.timestamp << 48) | b.deadline,
        origin=(convert(b.proposer, uint256) << 96) | (b.deposit_count << 48) | b.forced_count,
        state_root=b.state_root, step_root=b.step_root, parent_root=b.parent_root,
    )


@view
@internal
def _status(batch_id: uint256) -> uint8:
    return convert((self._batches[batch_id].head >> STATUS_SHIFT) & 255, uint8)


@internal
def _set_status(batch_id: uint256, status: uint8):
    head: uint256 = self._batches[batch_id].head
    self._batches[batch_id].head = (head & ~(255 << STATUS_SHIFT)) | (convert(status, uint256) << STATUS_SHIFT)


@view
@external
def batches(batch_id: uint256) -> Batch:
    """Batch `batch_id` (zeros: no such batch)."""
    return self._batch(batch_id)


@view
@internal
def _root_at(position: uint256) -> bytes32:
    """The state root after the batch at `position - 1` of the live chain (genesis for 0)."""
    if position == 0:
        return genesis_root
    return self._batches[self.live[position - 1]].state_root


@view
@external
def tip_root() -> bytes32:
    """The state root of the latest live batch (pending or final)."""
    return self._root_at(self.length)


@view
@external
def final_root() -> bytes32:
    """The state root of the latest final batch (genesis before any)."""
    return self._root_at(self.finalized)


@view
@external
def is_final(batch_id: uint256) -> bool:
    return self._status(batch_id) == FINAL


@view
@internal
def _may_propose(proposer: address) -> bool:
    if proposer == sequencer:
        return True
    return block.timestamp >= self.sequencer_seen + silence_period


@view
@external
def may_propose(proposer: address) -> bool:
    """Whether `proposer` may submit now, as far as the sequencer's priority goes (it
    must be bonded as well, and outsiders find at most OUTSIDER_PENDING pending)."""
    return self._may_propose(proposer)


@pure
@internal
def _step_root(txs: Bytes[MAX_BATCH_BYTES], prefixes: Bytes[MAX_PREFIX_BYTES], state_root: bytes32) -> bytes32:
    """The step tree's root over (tx_i, posted root_i): every root but the last is its
    16-byte prefix in `prefixes` (padded with zeros in the leaf), the last is
    `state_root`. Reverts unless `txs` is exactly one transaction per root, each of at
    most MAX_TX bytes behind its canonical length prefix (one byte below 0x80, else two:
    0x8000 | length), rollup/batch.py."""
    assert len(prefixes) % ROOT_PREFIX == 0, "batch: bad encoding"
    steps: uint256 = len(prefixes) // ROOT_PREFIX + 1
    size: uint256 = len(txs)
    # copies with 32 zero bytes behind, so that extract32 reads a length prefix or a root
    # prefix anywhere (its word may run past the data)
    data: Bytes[MAX_BATCH_BYTES + 32] = concat(txs, empty(bytes32))
    tops: Bytes[MAX_PREFIX_BYTES + 32] = concat(prefixes, empty(bytes32))
    nodes: bytes32[MAX_STEPS] = empty(bytes32[MAX_STEPS])
    offset: uint256 = 0
    for i: uint256 in range(steps, bound=MAX_STEPS):
        assert offset < size, "batch: bad encoding"
        word: uint256 = convert(extract32(data, offset), uint256)
        n: uint256 = word >> 248
        head: uint256 = 1
        if n >= 128:
            n = (word >> 240) & 32767
            head = 2
            assert n >= 128, "batch: bad encoding"
        # (unchecked sums: offset < 49,152, head <= 2, n < 32,768, i < 1,024)
        start: uint256 = unsafe_add(offset, head)
        end: uint256 = unsafe_add(start, n)
        assert n <= MAX_TX and end <= size, "batch: bad encoding"
        tx_hash: bytes32 = keccak256(slice(data, start, n))
        if unsafe_add(i, 1) < steps:
            top: bytes32 = convert(convert(extract32(tops, unsafe_mul(i, ROOT_PREFIX)), uint256) & PREFIX_MASK, bytes32)
            nodes[i] = keccak256(concat(top, tx_hash))
        else:
            nodes[i] = keccak256(concat(state_root, tx_hash))
        offset = end
    assert offset == size, "batch: bad encoding"
    width: uint256 = 1
    for _: uint256 in range(STEP_TREE_DEPTH):
        if width >= steps:
            break
        width *= 2
    for _: uint256 in range(STEP_TREE_DEPTH):
        if width == 1:
            break
        width //= 2
        for j: uint256 in range(width, bound=MAX_STEPS // 2):
            left: uint256 = unsafe_mul(j, 2)  # (j < 512)
            nodes[j] = keccak256(concat(nodes[left], nodes[unsafe_add(left, 1)]))
    return nodes[0]


@external
@nonreentrant
def submit(
    position: uint256, timestamp: uint256, txs: Bytes[MAX_BATCH_BYTES], roots: Bytes[MAX_PREFIX_BYTES], state_root: bytes32,
) -> uint256:
    """
    @notice Post a batch at `position` of the live chain (its length, which makes a
            conflicting or stale submission fail), with its timestamp, its transactions
            (length-prefixed, rollup/batch.py) and the state root after each: `roots` the
            16-byte prefixes of all but the last, `state_root` the last. Only as the
            top-level call of a transaction from an account without code: the batch's data
            is then that transaction's input, which any node serves.
    @return The batch's id.
    """
    assert not self.frozen, "rollup: frozen"
    assert msg.sender == tx.origin and not msg.sender.is_contract, "batch: not a top-level call from an account without code"
    assert self.bonds[msg.sender] >= bond_amount, "batch: proposer not bonded"
    assert self._may_propose(msg.sender), "batch: sequencer active"
    assert position == self.length, "batch: wrong position"
    assert position - self.finalized < MAX_PENDING, "batch: too many pending"
    assert msg.sender == sequencer or position - self.finalized < OUTSIDER_PENDING, "batch: too many pending"
    parent_time: uint256 = 0
    if position > 0:
        parent_time = (self._batches[self.live[position - 1]].head >> 48) & U48
    assert timestamp >= parent_time, "batch: timestamp before parent"
    assert timestamp <= block.timestamp, "batch: timestamp in the future"
    assert timestamp + max_time_lag >= block.timestamp, "batch: timestamp too old"
    if msg.sender == sequencer:
        self.sequencer_seen = block.timestamp
    step_root: bytes32 = self._step_root(txs, roots, state_root)
    batch_id: uint256 = self.batch_count
    deadline: uint256 = block.timestamp + challenge_window
    batch: Batch = Batch(
        position=position, state_root=state_root, step_root=step_root, steps=len(roots) // ROOT_PREFIX + 1,
        timestamp=timestamp, deposit_count=staticcall inbox.deposit_count(),
        forced_count=staticcall inbox.forced_count(), proposer=msg.sender, deadline=deadline, status=PENDING,
        parent_root=self._root_at(position),
    )
    self._store(batch_id, batch)
    self.batch_count = batch_id + 1
    self.live[position] = batch_id
    self.length = position + 1
    self.pending_of[msg.sender] += 1
    log BatchSubmitted(
        id=batch_id, position=position, proposer=msg.sender, state_root=batch.state_root,
        step_root=step_root, steps=batch.steps, timestamp=timestamp,
        deposit_count=batch.deposit_count, forced_count=batch.forced_count, deadline=deadline,
    )
    return batch_id


@internal
def _finalize(limit: uint256) -> uint256:
    """Finalize, in order, up to `limit` batches whose challenge window has passed."""
    done: uint256 = 0
    for _: uint256 in range(MAX_PENDING):
        if done >= limit or self.finalized >= self.length:
            break
        batch_id: uint256 = self.live[self.finalized]
        batch: Batch = self._batch(batch_id)
        if block.timestamp < batch.deadline:
            break
        self._set_status(batch_id, FINAL)
        self.pending_of[batch.proposer] -= 1
        log BatchFinalized(id=batch_id, position=self.finalized, state_root=batch.state_root)
        self.finalized += 1
        done += 1
    return done


@external
@nonreentrant
def finalize(limit: uint256) -> uint256:
    """
    @notice Finalize, in order, up to `limit` (at most 64) batches whose challenge window
            has passed.
    @return How many were finalized.
    """
    assert not self.frozen, "rollup: frozen"
    return self._finalize(min(limit, 64))


# ---------------------------------------------------------------------- fraud proofs


@pure
@internal
def _posted(root: bytes32, last: bool) -> bytes32:
    """A root as a batch posts it: whole if it is the batch's last, else its 16-byte
    prefix padded with zeros (rollup/batch.py posted_root)."""
    if last:
        return root
    return convert(convert(root, uint256) >> 128 << 128, bytes32)


@pure
@internal
def _open_step(step_root: bytes32, index: uint256, post_root: bytes32, tx_hash: bytes32, path: DynArray[bytes32, STEP_TREE_DEPTH], steps: uint256) -> bool:
    """Whether (post_root, tx_hash) is leaf `index` of the step tree of `steps` leaves."""
    depth: uint256 = 0
    for _: uint256 in range(STEP_TREE_DEPTH):
        if (1 << depth) >= steps:
            break
        depth += 1
    if len(path) != depth:
        return False
    node: bytes32 = keccak256(concat(post_root, tx_hash))
    position: uint256 = index
    for level: uint256 in range(depth, bound=STEP_TREE_DEPTH):
        if position % 2 == 0:
            node = keccak256(concat(node, path[level]))
        else:
            node = keccak256(concat(path[level], node))
        position //= 2
    return node == step_root


@view
@internal
def _reward(batch_id: uint256) -> Reward:
    word: uint256 = 0
    if self._batches[batch_id].head & PROVEN != 0:
        word = convert(self._batches[batch_id].state_root, uint256)
    amount: uint256 = 0
    if word & REWARD_FUNDED != 0:
        amount = bond_amount // 2
    return Reward(
        challenger=convert(convert(word & (1 << 160) - 1, uint160), address),
        commit_block=(word >> REWARD_BLOCK_SHIFT) & (1 << 48) - 1,
        amount=amount,
        payable_at=(word >> REWARD_TIME_SHIFT) & (1 << 40) - 1,
        paid=word & REWARD_PAID != 0,
    )


@pure
@internal
def _pack(challenger: address, commit_block: uint256, payable_at: uint256, funded: bool) -> uint256:
    word: uint256 = convert(challenger, uint256) | commit_block << REWARD_BLOCK_SHIFT | payable_at << REWARD_TIME_SHIFT
    if funded:
        word |= REWARD_FUNDED
    return word


@view
@external
def rewards(batch_id: uint256) -> Reward:
    """The reward of batch `batch_id`'s fraud proof (a zero challenger: none)."""
    return self._reward(batch_id)


@pure
@external
def commitment(challenger: address, batch_id: uint256, step: uint256, claimed_root: bytes32, salt: bytes32) -> bytes32:
    """The commitment a challenger makes before proving step `step` of batch `batch_id`
    wrong: `claimed_root` is the post-state root the verifier will compute."""
    return keccak256(abi_encode(challenger, batch_id, step, claimed_root, salt))


@external
@nonreentrant
def commit(commitment: bytes32):
    """
    @notice The first move of a challenge: record `commitment` (see `commitment`) with
            this block's number. It reveals nothing of the batch or the step.
    """
    assert commitment != empty(bytes32), "commit: empty"
    assert self.commitments[commitment] == 0, "commit: already committed"
    self.commitments[commitment] = block.number
    log ChallengeCommitted(commitment=commitment, block_number=block.number)


@external
@nonreentrant
def challenge(
    batch_id: uint256, step: uint256, data: Bytes[MAX_TX], posted_root: bytes32,
    path: DynArray[bytes32, STEP_TREE_DEPTH], previous_root: bytes32, previous_tx_hash: bytes32,
    previous_path: DynArray[bytes32, STEP_TREE_DEPTH], w: witness.Witness, salt: bytes32,
):
    """
    @notice Prove step `step` of a pending batch wrong: open it (its transaction `data`,
            its posted post-state root, its path) and its pre-state root (step - 1's
            whole root, which must begin with the prefix step - 1 posted, its transaction
            hash and path; for step 0 the parent batch's root, and the previous_*
            arguments are ignored), and the witness of the pre-state. The verifier
            re-executes the step; if its post-state root, as the step posts it (the
            prefix; the last step: whole), differs from the posted one, and the caller committed to exactly that root (with `salt`) in an earlier
            block, the batch and all later ones are reverted and the proposer is slashed.
            While a proven batch's reward is held, an older commitment may prove it again
            and take the reward.
    """
    batch: Batch = self._header(batch_id)  # its parent root read below when step 0 needs it
    takeover: bool = False
    if batch.status == PENDING:
        assert block.timestamp < batch.deadline, "challenge: window closed"
    else:
        held: Reward = self._reward(batch_id)
        assert held.challenger != empty(address) and block.timestamp < held.payable_at, "challenge: batch not pending"
        takeover = True
    assert step < batch.steps, "challenge: no such step"
    last: bool = step + 1 == batch.steps
    assert self._open_step(batch.step_root, step, posted_root, keccak256(data), path, batch.steps), "challenge: step not in batch"
    pre_root: bytes32 = empty(bytes32)
    if step == 0:
        pre_root = self._batches[batch_id].parent_root
    else:
        # the whole pre-state root, which must begin with step - 1's posted prefix
        assert self._open_step(batch.step_root, step - 1, self._posted(previous_root, False), previous_tx_hash, previous_path, batch.steps), "challenge: previous step not in batch"
        pre_root = previous_root
    reason: uint8 = 0
    applied: bool = False
    computed: bytes32 = empty(bytes32)
    tag: uint256 = 0
    if len(data) > 0:
        tag = convert(slice(data, 0, 1), uint256)
    rules: Rules = empty(Rules)
    ctx: witness.Context = empty(witness.Context)
    rules, ctx = staticcall verifier.route(tag, batch.timestamp, batch.deposit_count, batch.forced_count)
    reason, applied, computed = staticcall rules.step(data, pre_root, ctx, w)
    assert self._posted(computed, last) != posted_root, "challenge: step is correct"
    committed: uint256 = self.commitments[keccak256(abi_encode(msg.sender, batch_id, step, computed, salt))]
    assert committed != 0, "challenge: not committed"
    assert committed < block.number, "challenge: committed in this block"

    if takeover:
        # the batch is already reverted and slashed: only the reward changes hands
        held: Reward = self._reward(batch_id)
        assert committed < held.commit_block, "challenge: batch not pending"
        self._batches[batch_id].state_root = convert(self._pack(msg.sender, committed, held.payable_at, held.amount > 0), bytes32)
        log RewardReassigned(id=batch_id, challenger=msg.sender, previous=held.challenger, commit_block=committed)
        return

    # revert the batch and every later one
    for _: uint256 in range(MAX_PENDING):
        if self.length <= batch.position:
            break
        position: uint256 = self.length - 1
        reverted_id: uint256 = self.live[position]
        self._set_status(reverted_id, REVERTED)
        self.pending_of[convert(convert(self._batches[reverted_id].origin >> 96, uint160), address)] -= 1
        log BatchReverted(id=reverted_id, position=position)
        self.length = position

    # slash: half burned now, half held as the reward. The burned half stays in this
    # contract, where nothing can reach it: ether leaves only as a bond withdrawn by its
    # owner (`unbond`: this bond is zeroed here) or a held reward (`claim_reward`).
    # (Sending it to the zero address cost every proof ~6,800 gas.)
    bond: uint256 = self.bonds[batch.proposer]
    self.bonds[batch.proposer] = 0
    reward: uint256 = bond // 2
    burned: uint256 = bond - reward
    self._batches[batch_id].head |= PROVEN
    self._batches[batch_id].state_root = convert(self._pack(msg.sender, committed, block.timestamp + reward_delay, reward > 0), bytes32)
    log FraudProven(
        id=batch_id, step=step, challenger=msg.sender, proposer=batch.proposer, reason=reason,
        computed_root=computed, posted_root=posted_root, reward=reward, burned=burned, commit_block=committed,
    )


@external
@nonreentrant
def claim_reward(batch_id: uint256) -> uint256:
    """
    @notice Pay the reward of batch `batch_id`'s fraud proof to its challenger (the oldest
            commitment that proved it), once the reward delay has passed. Anyone may call.
    @return The amount paid.
    """
    held: Reward = self._reward(batch_id)
    assert held.challenger != empty(address), "reward: no fraud proven"
    assert block.timestamp >= held.payable_at, "reward: still held"
    assert not held.paid, "reward: already paid"
    self._batches[batch_id].state_root = convert(convert(self._batches[batch_id].state_root, uint256) | REWARD_PAID, bytes32)
    if held.amount > 0:
        send(held.challenger, held.amount)
    log RewardPaid(id=batch_id, challenger=held.challenger, amount=held.amount)
    return held.amount


# ---------------------------------------------------------------------- censorship resistance


@internal
def _final_globals(accounts_root: bytes32, markets_root: bytes32, g: state.Globals, withdrawals_root: bytes32):
    """Finalize every batch past its window, then check that the given parts open the
    last final root (a root nobody can make up any more)."""
    self._finalize(MAX_PENDING)
    assert state.globals_fit(g), "freeze: globals out of range"
    root: bytes32 = state.state_root(accounts_root, markets_root, state.globals_hash(g), withdrawals_root)
    assert root == self._root_at(self.finalized), "freeze: globals not of the final state"


@external
@nonreentrant
def freeze(forced_index: uint256, accounts_root: bytes32, markets_root: bytes32, g: state.Globals, withdrawals_root: bytes32):
    """
    @notice Freeze the rollup: forced request `forced_index` was posted more than
            `inclusion_delay` plus the challenge window ago, and the last final state (every
            batch past its window finalized first; its globals opened here against its
            root) has not consumed it.
    """
    assert not self.frozen, "freeze: already frozen"
    assert forced_index < staticcall inbox.forced_count(), "freeze: no such request"
    assert block.timestamp > staticcall inbox.forced_time(forced_index) + inclusion_delay + challenge_window, "freeze: request not overdue"
    self._final_globals(accounts_root, markets_root, g, withdrawals_root)
    assert g.forced_count <= forced_index, "freeze: request was included"
    self.frozen = True
    log Frozen(forced_index=forced_index, deposit_index=max_value(uint256), final_root=self._root_at(self.finalized))


@external
@nonreentrant
def freeze_on_deposit(
    deposit_index: uint256, account: uint256, owner: address, amount: uint256, timestamp: uint256,
    accounts_root: bytes32, markets_root: bytes32, g: state.Globals, withdrawals_root: bytes32,
):
    """
    @notice Freeze the rollup: deposit `deposit_index` (its fields checked against the
            bridge's hash chain) was made more than `inclusion_delay` plus the challenge
            window ago, and the last final state (as for `freeze`) has not credited it.
    """
    assert not self.frozen, "freeze: already frozen"
    assert deposit_index < staticcall inbox.deposit_count(), "freeze: no such deposit"
    entry: bytes32 = keccak256(concat(
        staticcall inbox.deposit_head(deposit_index),
        abi_encode(deposit_index, account, owner, amount, timestamp),
    ))
    assert entry == staticcall inbox.deposit_head(deposit_index + 1), "freeze: not this deposit"
    assert block.timestamp > timestamp + inclusion_delay + challenge_window, "freeze: deposit not overdue"
    self._final_globals(accounts_root, markets_root, g, withdrawals_root)
    assert g.deposit_count <= deposit_index, "freeze: deposit was credited"
    self.frozen = True
    log Frozen(forced_index=max_value(uint256), deposit_index=deposit_index, final_root=self._root_at(self.finalized))
