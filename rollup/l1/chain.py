"""A development L1 chain: py-evm on its latest fork, with the habits of anvil and hardhat.

`DevChain` owns one in-memory py-evm chain and everything a JSON-RPC node needs on
top of it: an index of mined blocks, transactions, receipts and logs; dev accounts
that can sign; time control (`increase_time`, `set_next_timestamp`, `mine`);
snapshots; read-only execution (`call`, `estimate_gas`); and the queue of transactions
whose nonce is ahead of their sender's (`rollup/l1/txpool.py`).

It is not thread-safe by itself: the RPC layer serialises access with one lock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, cast

import rlp
from eth._utils.address import generate_contract_address
from eth.abc import ReceiptAPI, SignedTransactionAPI
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth.vm.forks import PragueVM
from eth.vm.spoof import SpoofTransaction
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import Address, BlockNumber
from eth_utils import ValidationError, to_checksum_address

from .txpool import PoolRefusal, TxQueue

log = logging.getLogger("rollup.l1")

DEV_MNEMONIC = "test test test test test test test test test test test junk"
"""The well-known development mnemonic of anvil and hardhat: same accounts, same keys."""

DEV_ACCOUNT_COUNT = 10
"""How many dev accounts (derivation paths m/44'/60'/0'/0/i) are prefunded and unlocked."""

DEV_BALANCE = 10_000 * 10**18
"""Wei given to each dev account at genesis (10,000 ether, as anvil does)."""

BLOCK_GAS_LIMIT = 30_000_000
"""Gas limit of every block; kept constant (py-evm would otherwise drift it down)."""

INITIAL_BASE_FEE = 1_000_000_000
"""Base fee of the genesis block, in wei (1 gwei)."""

DEFAULT_PRIORITY_FEE = 1_000_000_000
"""What `eth_maxPriorityFeePerGas` suggests (1 gwei)."""

CLIENT_VERSION = "rollup-l1/0.1.0/py-evm-0.12/prague"

NO_SIGNER = "No Signer available"
"""What anvil answers (code -32602) when asked to sign for an account it holds no key of."""

FLOOR_TOKEN_GAS = 10
"""EIP-7623: gas per calldata token a transaction must at least pay (the data floor)."""

TX_BASE_GAS = 21_000

ZERO_ADDRESS = b"\0" * 20

MAX_ACCESS_LIST_ROUNDS = 8
"""eth_createAccessList re-runs a call with its list at most this often (it settles in two)."""

AccessList = list[tuple[bytes, list[int]]]
"""EIP-2930 access list: (address, storage slots) pairs."""


class ChainError(Exception):
    """A request the chain refuses (bad nonce, low fee, ...); `code` is a JSON-RPC error code."""

    def __init__(self, message: str, code: int = -32000, data: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data


class RevertError(ChainError):
    """Execution reverted; `data` holds the revert payload as 0x-hex (geth's code 3)."""

    def __init__(self, output: bytes) -> None:
        reason = decode_revert_reason(output)
        message = "execution reverted" + (f": {reason}" if reason else "")
        super().__init__(message, code=3, data="0x" + output.hex())


def decode_revert_reason(output: bytes) -> str | None:
    """The string of an `Error(string)` revert payload, or None for any other payload."""
    if len(output) < 68 or output[:4] != bytes.fromhex("08c379a0"):
        return None
    try:
        length = int.from_bytes(output[36:68], "big")
        if length > len(output) - 68:
            return None
        return output[68 : 68 + length].decode("utf-8", errors="replace")
    except (ValueError, IndexError):
        return None


def dev_accounts(count: int = DEV_ACCOUNT_COUNT, mnemonic: str = DEV_MNEMONIC) -> list[LocalAccount]:
    """The dev accounts derived from `mnemonic` along m/44'/60'/0'/0/i."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}") for i in range(count)
    ]


@dataclass(frozen=True)
class MinedBlock:
    """A block as the node serves it: header, transactions, receipts and derived facts."""

    header: Any
    transactions: tuple[SignedTransactionAPI, ...]
    receipts: tuple[ReceiptAPI, ...]
    senders: tuple[bytes, ...]
    gas_used: tuple[int, ...]
    contract_addresses: tuple[bytes | None, ...]
    size: int
    first_log_index: tuple[int, ...] = field(default=())

    @property
    def number(self) -> int:
        return int(self.header.block_number)

    @property
    def hash(self) -> bytes:
        return bytes(self.header.hash)


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int) -> int:
    """What the sender pays per gas: min(max fee, base fee + tip) for typed fee txs."""
    if tx.type_id is None or tx.type_id == 1:
        return int(tx.gas_price)
    return min(int(tx.max_fee_per_gas), base_fee + int(tx.max_priority_fee_per_gas))


def data_floor_gas(data: bytes) -> int:
    """EIP-7623's floor: 21,000 plus 10 gas per calldata token (a zero byte is one token,
    any other byte four). Since Prague a transaction's gas limit must cover it."""
    zeros = data.count(0)
    return TX_BASE_GAS + FLOOR_TOKEN_GAS * (zeros + 4 * (len(data) - zeros))


def insufficient_funds(sender: bytes, have: int, want: int) -> ChainError:
    """geth's wording, which ethers (INSUFFICIENT_FUNDS) and viem (InsufficientFundsError)
    recognise."""
    return ChainError(
        f"insufficient funds for gas * price + value: address 0x{sender.hex()} "
        f"have {have} want {want}"
    )


class WarmRecorder:
    """Records what a py-evm state makes warm (EIP-2929): each account and storage slot,
    in the order first touched, reverted inner calls included. It wraps the two marking
    methods of one throwaway state object (the one eth_createAccessList runs calls on)."""

    def __init__(self, state: Any) -> None:
        self.accounts: dict[bytes, None] = {}
        self.slots: dict[bytes, dict[int, None]] = {}
        mark_account, mark_slot = state.mark_address_warm, state.mark_storage_warm

        def record_account(address: bytes) -> None:
            self.accounts.setdefault(bytes(address))
            mark_account(address)

        def record_slot(address: bytes, slot: int) -> None:
            self.accounts.setdefault(bytes(address))
            self.slots.setdefault(bytes(address), {}).setdefault(slot)
            mark_slot(address, slot)

        state.mark_address_warm = record_account
        state.mark_storage_warm = record_slot

    def clear(self) -> None:
        self.accounts.clear()
        self.slots.clear()

    def touched(self, always_warm: set[bytes]) -> AccessList:
        """What was recorded: accounts in `always_warm` only where a slot of theirs was."""
        return [
            (address, list(self.slots.get(address, {})))
            for address in self.accounts
            if address not in always_warm or self.slots.get(address)
        ]


def merge_access_list(first: AccessList, then: AccessList) -> AccessList:
    """`first`, then the entries and slots of `then` it lacks (each address once)."""
    merged: dict[bytes, list[int]] = {}
    for address, slots in [*first, *then]:
        entry = merged.setdefault(address, [])
        entry.extend(slot for slot in slots if slot not in entry)
    return list(merged.items())


class DevChain:
    """An in-memory py-evm chain (Prague rules) with block index, time control and snapshots."""

    def __init__(
        self,
        chain_id: int = 31337,
        accounts: int = DEV_ACCOUNT_COUNT,
        balance: int = DEV_BALANCE,
        gas_limit: int = BLOCK_GAS_LIMIT,
        genesis_timestamp: int | None = None,
        auto_mine: bool = True,
    ) -> None:
        self.chain_id = chain_id
        self.gas_limit = gas_limit
        self.auto_mine = auto_mine
        self.accounts = dev_accounts(accounts)
        self.keys: dict[bytes, LocalAccount] = {
            bytes.fromhex(a.address[2:]): a for a in self.accounts
        }
        self._chain_class = cast(type[MiningChain], MiningChain.configure(
            __name__="DevL1Chain", vm_configuration=((0, PragueVM),), chain_id=chain_id
        ))
        self._memory = MemoryDB()
        self._db = AtomicDB(self._memory)
        genesis_params: dict[str, Any] = {
            "coinbase": b"\0" * 20,
            "difficulty": 0,
            "gas_limit": gas_limit,
            "timestamp": int(time.time()) if genesis_timestamp is None else genesis_timestamp,
            "extra_data": b"",
            "nonce": b"\0" * 8,
            "base_fee_per_gas": INITIAL_BASE_FEE,
        }
        genesis_state: dict[Any, Any] = {
            address: {"balance": balance, "nonce": 0, "code": b"", "storage": {}}
            for address in self.keys
        }
        self.chain = cast(
            MiningChain, self._chain_class.from_genesis(self._db, genesis_params, genesis_state)
        )
        self.time_offset = 0
        self.next_timestamp: int | None = None
        self.blocks: list[MinedBlock] = []
        self.block_numbers: dict[bytes, int] = {}
        self.tx_locations: dict[bytes, tuple[int, int]] = {}
        self._pending_txs: list[SignedTransactionAPI] = []
        self._pending_receipts: list[ReceiptAPI] = []
        self.queue = TxQueue()
        """Transactions with a future nonce, waiting for their gap to fill (see `_promote`)."""
        self._snapshots: dict[int, tuple[dict[bytes, bytes], int, int, int | None]] = {}
        self._snapshot_counter = 0
        genesis = self.chain.get_canonical_head()
        self._record(self.chain.get_canonical_block_by_number(BlockNumber(0)), [], genesis)
        self._new_pending_block()

    # ------------------------------------------------------------------ time

    def now(self) -> int:
        """The chain's clock: wall time shifted by `evm_increaseTime`."""
        return int(time.time()) + self.time_offset

    def increase_time(self, seconds: int) -> int:
        """Shift the clock forward by `seconds`, and at least to `seconds` after the latest
        block (blocks mined within one wall-clock second run ahead of the clock); return
        the total shift."""
        self.time_offset += seconds
        behind = self.head.header.timestamp + seconds - self.now()
        if behind > 0:
            self.time_offset += behind
        if not self._pending_txs:
            self._new_pending_block()
        return self.time_offset

    def set_next_timestamp(self, timestamp: int) -> None:
        """Make the next mined block carry exactly `timestamp` (must exceed the head's)."""
        head = self.head.header
        if timestamp <= head.timestamp:
            raise ChainError(
                f"timestamp {timestamp} is not later than the latest block's {head.timestamp}",
                code=-32602,
            )
        if self._pending_txs:
            raise ChainError("cannot change the timestamp of a block with pending transactions")
        self.next_timestamp = timestamp
        self._new_pending_block()

    def _next_block_timestamp(self) -> int:
        parent = self.head.header
        if self.next_timestamp is not None:
            return self.next_timestamp
        return max(self.now(), parent.timestamp + 1)

    # ------------------------------------------------------------------ blocks

    @property
    def head(self) -> MinedBlock:
        return self.blocks[-1]

    def _new_pending_block(self) -> None:
        parent = self.chain.get_canonical_head()
        self.chain.header = self.chain.create_header_from_parent(
            parent, timestamp=self._next_block_timestamp(), gas_limit=self.gas_limit
        )
        self._pending_txs = []
        self._pending_receipts = []

    @property
    def pending_header(self) -> Any:
        return self.chain.header

    def mine(self, timestamp: int | None = None) -> MinedBlock:
        """Seal the pending block (with whatever transactions it holds) and start the next;
        return the block sealed.

        The next pending block then takes the queued transactions that have become their
        senders' next (`_promote`); while auto-mining, they are mined at once, in blocks
        of their own after the one returned (only queued transactions that did not fit
        the pending block's gas are left for them)."""
        mined = self._seal(timestamp)
        while self._promote() and self.auto_mine:
            self._seal()
        return mined

    def _seal(self, timestamp: int | None = None) -> MinedBlock:
        """Seal the pending block and start the next (nothing is promoted into it)."""
        if timestamp is not None and timestamp != self.chain.header.timestamp:
            self.set_next_timestamp(timestamp)
        header_ts = self.chain.header.timestamp
        block = self.chain.mine_block()
        if self.next_timestamp is not None:
            # Like anvil: later blocks continue from the forced timestamp.
            self.time_offset = header_ts - int(time.time())
            self.next_timestamp = None
        mined = self._record(block, self._pending_receipts, block.header)
        self._new_pending_block()
        return mined

    def _record(self, block: Any, receipts: list[ReceiptAPI], header: Any) -> MinedBlock:
        txs = tuple(block.transactions)
        senders = tuple(bytes(tx.sender) for tx in txs)
        gas_used = []
        previous = 0
        for receipt in receipts:
            gas_used.append(receipt.gas_used - previous)
            previous = receipt.gas_used
        creations = tuple(
            generate_contract_address(Address(sender), tx.nonce) if not tx.to else None
            for tx, sender in zip(txs, senders, strict=True)
        )
        first_log_index = []
        count = 0
        for receipt in receipts:
            first_log_index.append(count)
            count += len(receipt.logs)
        mined = MinedBlock(
            header=header,
            transactions=txs,
            receipts=tuple(receipts),
            senders=senders,
            gas_used=tuple(gas_used),
            contract_addresses=creations,
            size=len(rlp.encode(block)),
            first_log_index=tuple(first_log_index),
        )
        self.blocks.append(mined)
        self.block_numbers[mined.hash] = mined.number
        for index, tx in enumerate(txs):
            self.tx_locations[bytes(tx.hash)] = (mined.number, index)
        return mined

    # ------------------------------------------------------------------ transactions

    def decode_raw_transaction(self, raw: bytes) -> SignedTransactionAPI:
        """Decode and check a signed transaction (any type py-evm's Prague VM knows)."""
        vm = self.chain.get_vm()
        try:
            tx = vm.get_transaction_builder().decode(raw)
            tx.check_signature_validity()
            tx.sender  # noqa: B018 - recovers the sender, raising on a bad signature
        except Exception as exc:  # malformed bytes raise many types inside py-evm and rlp
            raise ChainError(f"invalid transaction: {exc}", code=-32602) from None
        tx_chain_id = tx.chain_id
        if tx_chain_id is not None and tx_chain_id != self.chain_id:
            raise ChainError(
                f"invalid chain id {tx_chain_id} (this chain is {self.chain_id})", code=-32000
            )
        return tx

    def send_transaction(self, tx: SignedTransactionAPI) -> bytes:
        """Execute a signed transaction into the pending block; auto-mine it if enabled.
        Return its hash.

        A transaction the chain cannot include is refused (`ChainError`, nothing changes)
        with geth's words, which ethers v6 and viem classify: see `check_admission`. One
        whose nonce is ahead of its sender's next nonce, but that passes every other check,
        is queued instead (`TxQueue`'s rules; its refusals are -32003 as on anvil): it is
        executed once the sender's transactions fill the gap, in the same block as the
        one that fills it (see `_promote`)."""
        if not self._pending_txs:
            self._new_pending_block()
        if self.check_admission(tx):
            try:
                replaced = self.queue.add(tx)
            except PoolRefusal as exc:
                raise ChainError(exc.message, exc.code) from None
            if replaced is not None:
                log.info("queued transaction 0x%s replaced by 0x%s", bytes(replaced.hash).hex(),
                         bytes(tx.hash).hex())
            return bytes(tx.hash)
        try:
            _block, receipt, _computation = self.chain.apply_transaction(tx)
        except ValidationError as exc:
            self._reset_pending()
            raise ChainError(str(exc)) from None
        except Exception:
            self._reset_pending()
            raise
        self._pending_txs.append(tx)
        self._pending_receipts.append(receipt)
        self._promote([bytes(tx.sender)])
        if self.auto_mine:
            self.mine()
        return bytes(tx.hash)

    def check_admission(self, tx: SignedTransactionAPI) -> bool:
        """Refuse a transaction the pending block cannot take, in this order and wording;
        return True when its nonce is ahead of the sender's next one (it is for the queue):

        - "intrinsic gas too high": its gas limit exceeds the block gas limit ("gas limit
          reached" when only the pending block's remaining gas is too small; not checked
          for a future nonce, which waits for a later block anyway);
        - "nonce too low": its nonce is below the sender's next one;
        - "max priority fee per gas higher than max fee per gas";
        - "max fee per gas less than block base fee";
        - "intrinsic gas too low": its gas limit is below its intrinsic gas;
        - "insufficient gas for floor data gas cost": below EIP-7623's calldata floor;
        - "insufficient funds for gas * price + value": the sender's balance is below
          gas limit * fee cap + value.
        """
        state = self.chain.get_vm().state
        header = self.chain.header
        sender = tx.sender
        who = f"address 0x{bytes(sender).hex()}"
        if tx.gas > header.gas_limit:
            raise ChainError(
                f"intrinsic gas too high: gas limit {tx.gas} exceeds the block gas limit "
                f"{header.gas_limit}"
            )
        expected_nonce = state.get_nonce(sender)
        future = tx.nonce > expected_nonce
        if not future and tx.gas > header.gas_limit - header.gas_used:
            raise ChainError(
                f"gas limit reached: {tx.gas} gas does not fit the pending block "
                f"({header.gas_limit - header.gas_used} left)"
            )
        if tx.nonce < expected_nonce:
            raise ChainError(f"nonce too low: {who}, tx: {tx.nonce} state: {expected_nonce}")
        if tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
            raise ChainError(
                f"max priority fee per gas higher than max fee per gas: {who}, "
                f"maxPriorityFeePerGas: {tx.max_priority_fee_per_gas}, "
                f"maxFeePerGas: {tx.max_fee_per_gas}"
            )
        base_fee = int(header.base_fee_per_gas or 0)
        if tx.max_fee_per_gas < base_fee:
            raise ChainError(
                f"max fee per gas less than block base fee: {who}, "
                f"maxFeePerGas: {tx.max_fee_per_gas}, baseFee: {base_fee}"
            )
        intrinsic = int(tx.intrinsic_gas)
        if tx.gas < intrinsic:
            raise ChainError(f"intrinsic gas too low: gas {tx.gas}, minimum needed {intrinsic}")
        floor = data_floor_gas(bytes(tx.data))
        if tx.gas < floor:
            raise ChainError(
                f"insufficient gas for floor data gas cost: gas {tx.gas}, minimum needed {floor}"
            )
        balance = state.get_balance(sender)
        cost = tx.gas * tx.max_fee_per_gas + tx.value
        if balance < cost:
            raise insufficient_funds(sender, balance, cost)
        return future

    def _promote(self, senders: list[bytes] | None = None) -> bool:
        """Move into the pending block, in nonce order, each queued transaction of
        `senders` (all senders by default) whose nonce has become its sender's next one;
        return whether any moved.

        A queued transaction is checked again as it moves (`check_admission`): one the
        chain now refuses (the sender's balance no longer covers it, its fee cap is below
        the base fee, ...) is dropped from the queue and the drop logged, as is one whose
        nonce a mined transaction has used meanwhile; the sender's later ones then wait
        for that nonce again. One that does not fit the gas the pending block has left
        stays queued for the next block."""
        moved = False
        for sender in self.queue.senders() if senders is None else senders:
            while True:
                next_nonce = self.chain.get_vm().state.get_nonce(Address(sender))
                for stale in self.queue.remove_below(sender, next_nonce):
                    log.warning("dropped queued transaction 0x%s: nonce %d already used",
                                bytes(stale.hash).hex(), stale.nonce)
                tx = self.queue.at(sender, next_nonce)
                if tx is None or tx.gas > self.chain.header.gas_limit - self.chain.header.gas_used:
                    break
                self.queue.remove(bytes(tx.hash))
                try:
                    self.check_admission(tx)
                except ChainError as exc:
                    log.warning("dropped queued transaction 0x%s: %s", bytes(tx.hash).hex(), exc)
                    continue
                try:
                    _block, receipt, _computation = self.chain.apply_transaction(tx)
                except Exception as exc:  # py-evm raises many types; the node must go on
                    self._reset_pending()
                    log.warning("dropped queued transaction 0x%s: %s", bytes(tx.hash).hex(), exc)
                    continue
                self._pending_txs.append(tx)
                self._pending_receipts.append(receipt)
                moved = True
        return moved

    def pool_transaction(self, tx_hash: bytes) -> tuple[SignedTransactionAPI, bool] | None:
        """A transaction not yet mined: (it, True) when it waits in the pending block,
        (it, False) when it is queued; None for any other hash."""
        for tx in self._pending_txs:
            if bytes(tx.hash) == tx_hash:
                return tx, True
        queued = self.queue.get(tx_hash)
        return None if queued is None else (queued, False)

    @property
    def pending_transactions(self) -> tuple[SignedTransactionAPI, ...]:
        """The transactions the pending block holds (none while auto-mining), in order."""
        return tuple(self._pending_txs)

    def drop_transactions(self, tx_hash: bytes | None = None, sender: bytes | None = None) -> int:
        """anvil_dropTransaction / anvil_removePoolTransactions / anvil_dropAllTransactions:
        take out of the pool, unmined, the transaction `tx_hash`, or every transaction of
        `sender`, or (neither given) every transaction; return how many went.

        From the pending block, a dropped transaction takes its sender's later ones with
        it (their nonces would no longer follow, anvil's rule), and the block is rebuilt
        from what remains (a remaining transaction the chain then refuses is dropped too,
        and logged). From the queue, only the transactions named go: the sender's later
        ones wait for the gap as any queued transaction does."""
        if tx_hash is not None:
            gone = [] if self.queue.remove(tx_hash) is None else [tx_hash]
        elif sender is not None:
            gone = [bytes(tx.hash) for tx in self.queue.remove_sender(sender)]
        else:
            gone = [bytes(tx.hash) for _sender, txs in self.queue for tx in txs]
            self.queue.clear()
        everything = tx_hash is None and sender is None
        keep: list[SignedTransactionAPI] = []
        cut: set[bytes] = set()  # senders whose later pending transactions go as well
        for tx in self._pending_txs:
            from_ = bytes(tx.sender)
            if everything or from_ in cut or from_ == sender or bytes(tx.hash) == tx_hash:
                cut.add(from_)
                gone.append(bytes(tx.hash))
            else:
                keep.append(tx)
        if len(keep) < len(self._pending_txs):
            self._new_pending_block()
            for tx in keep:
                try:
                    _block, receipt, _computation = self.chain.apply_transaction(tx)
                except Exception as exc:  # py-evm raises many types; the node must go on
                    self._reset_pending()
                    log.warning("dropped pending transaction 0x%s: %s", bytes(tx.hash).hex(), exc)
                    gone.append(bytes(tx.hash))
                    continue
                self._pending_txs.append(tx)
                self._pending_receipts.append(receipt)
        return len(gone)

    def set_auto_mine(self, enabled: bool) -> None:
        """Turn automatic mining on or off. Turning it on mines the transactions waiting in
        the pending block at once (as anvil does): a transaction sent while mining was off
        must not wait for some later transaction to be mined."""
        self.auto_mine = enabled
        if enabled and self._pending_txs:
            self.mine()

    def _reset_pending(self) -> None:
        """Rebuild the pending block from what it held, dropping anything half-applied."""
        txs = list(self._pending_txs)
        self._new_pending_block()
        for tx in txs:
            _block, receipt, _ = self.chain.apply_transaction(tx)
            self._pending_txs.append(tx)
            self._pending_receipts.append(receipt)

    def signer(self, address: bytes) -> LocalAccount:
        """The unlocked dev account at `address`; anvil's -32602 "No Signer available" for
        any other."""
        account = self.keys.get(address)
        if account is None:
            raise ChainError(NO_SIGNER, code=-32602)
        return account

    def sign_message(self, address: bytes, data: bytes) -> bytes:
        """personal_sign / eth_sign: the EIP-191 signature (version 0x45, "\x19Ethereum
        Signed Message:\n" + length + data) of `data`, as r || s || v with v 27 or 28."""
        signed = Account.sign_message(encode_defunct(primitive=data), self.signer(address).key)
        return bytes(signed.signature)

    def sign_typed_data(self, address: bytes, typed_data: dict[str, Any]) -> bytes:
        """eth_signTypedData_v4: the EIP-712 signature of `typed_data` ({types, primaryType,
        domain, message}); r || s || v with v 27 or 28. Malformed data: -32602."""
        account = self.signer(address)
        try:
            signable = encode_typed_data(full_message=typed_data)
        except Exception as exc:  # eth-account raises many types on malformed typed data
            raise ChainError(f"invalid typed data: {exc}", code=-32602) from None
        return bytes(Account.sign_message(signable, account.key).signature)

    def sign_transaction(self, fields: dict[str, Any]) -> bytes:
        """eth_signTransaction: the raw signed transaction (EIP-2718 bytes) that
        eth_sendTransaction would send, defaults filled the same way: the sender's pending
        nonce, estimated gas, and EIP-1559 fees (tip 1 gwei, cap twice the pending base
        fee plus the tip) unless `gasPrice` asks for a legacy transaction."""
        sender = fields["from"]
        account = self.signer(sender)
        tx: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": fields.get("nonce", self.get_nonce(sender, pending=True)),
            "value": fields.get("value", 0),
            "data": fields.get("data", b""),
        }
        if fields.get("to") is not None:
            tx["to"] = to_checksum_address(fields["to"])
        if "gas" in fields:
            tx["gas"] = fields["gas"]
        else:
            tx["gas"] = self.estimate_gas(fields, self.pending_header, pending=True)
        if "gasPrice" in fields:
            tx["gasPrice"] = fields["gasPrice"]
        else:
            tip = fields.get("maxPriorityFeePerGas", DEFAULT_PRIORITY_FEE)
            fee_cap = fields.get(
                "maxFeePerGas", 2 * self.pending_header.base_fee_per_gas + tip
            )
            tx.update(type=2, maxFeePerGas=fee_cap, maxPriorityFeePerGas=min(tip, fee_cap))
        if fields.get("accessList"):
            tx["accessList"] = [
                {"address": to_checksum_address(address), "storageKeys": [
                    "0x" + slot.to_bytes(32, "big").hex() for slot in slots
                ]}
                for address, slots in fields["accessList"]
            ]
            tx.setdefault("type", 1)
        return bytes(Account.sign_transaction(tx, account.key).raw_transaction)

    def sign_and_send(self, fields: dict[str, Any]) -> bytes:
        """eth_sendTransaction: fill defaults, sign with an unlocked dev key, send."""
        raw = self.sign_transaction(fields)
        return self.send_transaction(self.decode_raw_transaction(raw))

    def set_balance(self, address: bytes, balance: int) -> None:
        """Overwrite an account's balance (a dev cheat); mined into a block when auto-mining."""
        state = self.chain.get_vm().state
        state.set_balance(Address(address), balance)
        state.persist()
        self.chain.header = self.chain.header.copy(state_root=state.state_root)
        if self.auto_mine:
            self.mine()

    # ------------------------------------------------------------------ state reads

    def state_at(self, header: Any) -> Any:
        return self.chain.get_vm(header).state

    def get_nonce(self, address: bytes, pending: bool = False) -> int:
        header = self.pending_header if pending else self.head.header
        return int(self.state_at(header).get_nonce(address))

    def _execution_state(self, header: Any, pending: bool) -> Any:
        """A throwaway state for eth_call: the post-state of `header`, in the context of
        the next block (or of the pending block), with base fee 0."""
        if pending:
            context = self.pending_header
        else:
            context = self.chain.create_header_from_parent(
                header, timestamp=max(self.now(), header.timestamp + 1), gas_limit=self.gas_limit
            )
        return self.chain.get_vm(context.copy(base_fee_per_gas=0)).state

    def _unsigned(
        self, state: Any, fields: dict[str, Any], gas: int, access_list: AccessList | None = None
    ) -> SpoofTransaction:
        """The message of a call as an unsigned transaction from `from` (the zero address if
        absent) at price 0: legacy, or EIP-2930 when it carries an access list (whose
        entries are then warm and paid for, as in a real transaction)."""
        sender = fields.get("from", ZERO_ADDRESS)
        access = fields.get("accessList", []) if access_list is None else access_list
        vm = self.chain.get_vm()
        common = {
            "nonce": state.get_nonce(sender),
            "gas_price": 0,
            "gas": gas,
            "to": fields.get("to") or b"",
            "value": fields.get("value", 0),
            "data": fields.get("data", b""),
        }
        if access:
            builder: Any = vm.get_transaction_builder()  # Berlin's and later builders
            vm_tx = builder.new_unsigned_access_list_transaction(
                chain_id=self.chain_id, access_list=access, **common
            )
        else:
            vm_tx = vm.create_unsigned_transaction(**common)
        return SpoofTransaction(vm_tx, from_=sender)

    def _execute(
        self, state: Any, fields: dict[str, Any], gas: int, access_list: AccessList | None = None
    ) -> Any:
        """Run a call on `state` and undo it; refuse it first as a transaction would be:
        "intrinsic gas too low" below its intrinsic gas, "insufficient funds for gas *
        price + value" when the sender cannot pay its value (plus gas * price when the call
        names both a gas limit and a price)."""
        unsigned = self._unsigned(state, fields, gas, access_list)
        intrinsic = int(unsigned.intrinsic_gas)
        if gas < intrinsic:
            raise ChainError(f"intrinsic gas too low: have {gas}, want {intrinsic}")
        sender = fields.get("from", ZERO_ADDRESS)
        price = fields.get("gasPrice", fields.get("maxFeePerGas", 0))
        cost = fields.get("value", 0) + price * fields.get("gas", 0)
        balance = state.get_balance(sender)
        if balance < cost:
            raise insufficient_funds(sender, balance, cost)
        snapshot = state.snapshot()
        try:
            return state.apply_transaction(unsigned)
        except ValidationError as exc:
            raise ChainError(str(exc)) from None
        finally:
            state.revert(snapshot)

    @staticmethod
    def _refuse_failed(computation: Any) -> None:
        """A failed call as an error: reverted (code 3, with its data) or failed otherwise."""
        if computation.is_error:
            if computation.output or "Revert" in type(computation.error).__name__:
                raise RevertError(bytes(computation.output))
            raise ChainError(f"execution failed: {type(computation.error).__name__}")

    def call(self, fields: dict[str, Any], header: Any, pending: bool = False) -> bytes:
        """eth_call: run a message against a block's state without mining; revert -> RevertError."""
        state = self._execution_state(header, pending)
        gas = fields.get("gas", self.gas_limit)
        computation = self._execute(state, fields, gas)
        self._refuse_failed(computation)
        return bytes(computation.output)

    def create_access_list(
        self, fields: dict[str, Any], header: Any, pending: bool = False
    ) -> tuple[AccessList, int]:
        """eth_createAccessList: the accounts and storage slots the call touches, and the gas
        it uses when sent with that list (geth's and anvil's rule).

        The call is run, recording every account it makes warm and every storage slot it
        reads or writes (reverted inner calls included); the list is the given
        `accessList` followed by what was recorded, in the order first touched, leaving
        out the accounts every transaction has warm anyway (sender, recipient or created
        contract, precompiles, the coinbase) unless one of their slots was touched. Since
        the list changes gas costs, and so possibly the path taken, the call is run again
        with the list until it no longer grows. A call that fails is refused as eth_call
        refuses it."""
        state = self._execution_state(header, pending)
        gas = fields.get("gas", self.gas_limit)
        sender = fields.get("from", ZERO_ADDRESS)
        target = fields.get("to") or generate_contract_address(sender, state.get_nonce(sender))
        always_warm = {sender, target, bytes(state.coinbase)} | {
            bytes(address) for address in state.computation_class.get_precompiles()
        }
        recorder = WarmRecorder(state)
        access: AccessList = list(fields.get("accessList", []))
        for _ in range(MAX_ACCESS_LIST_ROUNDS):
            recorder.clear()
            computation = self._execute(state, fields, gas, access)
            self._refuse_failed(computation)
            grown = merge_access_list(access, recorder.touched(always_warm))
            if grown == access:
                break
            access = grown
        spent = gas - computation.get_gas_remaining()
        refund = min(computation.get_gas_refund(), spent // 5)
        return access, spent - refund + computation.data_floor_gas

    def estimate_gas(self, fields: dict[str, Any], header: Any, pending: bool = False) -> int:
        """eth_estimateGas: the least gas (within 1%) with which the message succeeds."""
        cap = min(fields.get("gas", self.gas_limit), self.gas_limit)
        state = self._execution_state(header, pending)
        computation = self._execute(state, fields, cap)
        if computation.is_error:
            if computation.output or "Revert" in type(computation.error).__name__:
                raise RevertError(bytes(computation.output))
            raise ChainError(f"gas required exceeds allowance ({cap})")
        intrinsic = self._unsigned(state, fields, cap).intrinsic_gas
        used = intrinsic + computation.get_gas_used()

        def succeeds(gas: int) -> bool:
            return not self._execute(state, fields, gas).is_error

        if succeeds(used):
            return used
        # Most calls succeed with used * 64/63 (the call-stipend rule); try that first.
        low, high = max(used, intrinsic) - 1, min(cap, used * 64 // 63 + 5_000)
        if not succeeds(high):
            low, high = high, cap
        while high - low > max(1_000, high // 100):
            middle = (low + high) // 2
            if succeeds(middle):
                high = middle
            else:
                low = middle
        return high

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> int:
        """Remember the whole chain; return an id for `revert`."""
        self._snapshot_counter += 1
        self._snapshots[self._snapshot_counter] = (
            dict(self._memory.kv_store),
            len(self.blocks),
            self.time_offset,
            self.next_timestamp,
        )
        return self._snapshot_counter

    def revert(self, snapshot_id: int) -> bool:
        """Return to a snapshot; it and every later snapshot are consumed (anvil's rule).

        The queue is kept as it is (anvil's rule too): going back only lowers nonces, so
        what was queued is still ahead of its sender. Transactions that were mined after
        the snapshot are gone with their blocks, not put back into the pool."""
        saved = self._snapshots.get(snapshot_id)
        if saved is None:
            return False
        kv, block_count, self.time_offset, self.next_timestamp = saved
        for later in [s for s in self._snapshots if s >= snapshot_id]:
            del self._snapshots[later]
        self._memory.kv_store = dict(kv)
        for block in self.blocks[block_count:]:
            del self.block_numbers[block.hash]
            for tx in block.transactions:
                del self.tx_locations[bytes(tx.hash)]
        del self.blocks[block_count:]
        self.chain = self._chain_class(self._db)
        self._new_pending_block()
        return True

    # ------------------------------------------------------------------ lookups

    def block_by_number(self, number: int) -> MinedBlock | None:
        if 0 <= number < len(self.blocks):
            return self.blocks[number]
        return None

    def block_by_hash(self, block_hash: bytes) -> MinedBlock | None:
        number = self.block_numbers.get(block_hash)
        return None if number is None else self.blocks[number]

    def transaction_location(self, tx_hash: bytes) -> tuple[MinedBlock, int] | None:
        location = self.tx_locations.get(tx_hash)
        if location is None:
            return None
        return self.blocks[location[0]], location[1]
