"""A development L1 chain: py-evm on its latest fork, with the habits of anvil and hardhat.

`DevChain` owns one in-memory py-evm chain and everything a JSON-RPC node needs on
top of it: an index of mined blocks, transactions, receipts and logs; dev accounts
that can sign; time control (`increase_time`, `set_next_timestamp`, `mine`);
snapshots; and read-only execution (`call`, `estimate_gas`).

It is not thread-safe by itself: the RPC layer serialises access with one lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import rlp
from eth._utils.address import generate_contract_address
from eth.abc import ReceiptAPI, SignedTransactionAPI
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth.vm.forks import PragueVM
from eth.vm.spoof import SpoofTransaction
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import ValidationError, to_checksum_address

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
        self._chain_class = MiningChain.configure(
            __name__="DevL1Chain", vm_configuration=((0, PragueVM),), chain_id=chain_id
        )
        self._memory = MemoryDB()
        self._db = AtomicDB(self._memory)
        genesis_params = {
            "coinbase": b"\0" * 20,
            "difficulty": 0,
            "gas_limit": gas_limit,
            "timestamp": int(time.time()) if genesis_timestamp is None else genesis_timestamp,
            "extra_data": b"",
            "nonce": b"\0" * 8,
            "base_fee_per_gas": INITIAL_BASE_FEE,
        }
        genesis_state = {
            address: {"balance": balance, "nonce": 0, "code": b"", "storage": {}}
            for address in self.keys
        }
        self.chain = self._chain_class.from_genesis(self._db, genesis_params, genesis_state)
        self.time_offset = 0
        self.next_timestamp: int | None = None
        self.blocks: list[MinedBlock] = []
        self.block_numbers: dict[bytes, int] = {}
        self.tx_locations: dict[bytes, tuple[int, int]] = {}
        self._pending_txs: list[SignedTransactionAPI] = []
        self._pending_receipts: list[ReceiptAPI] = []
        self._snapshots: dict[int, tuple[dict[bytes, bytes], int, int, int | None]] = {}
        self._snapshot_counter = 0
        genesis = self.chain.get_canonical_head()
        self._record(self.chain.get_canonical_block_by_number(0), [], genesis)
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
        """Seal the pending block (with whatever transactions it holds) and start the next."""
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
            generate_contract_address(sender, tx.nonce) if not tx.to else None
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
        """Execute a signed transaction into the pending block; auto-mine it if enabled."""
        if bytes(tx.hash) in self.tx_locations:
            raise ChainError("already known")
        state = self.chain.get_vm().state
        sender = bytes(tx.sender)
        expected_nonce = state.get_nonce(sender)
        if tx.nonce < expected_nonce:
            raise ChainError(f"nonce too low: next nonce {expected_nonce}, tx nonce {tx.nonce}")
        if tx.nonce > expected_nonce:
            raise ChainError(f"nonce too high: next nonce {expected_nonce}, tx nonce {tx.nonce}")
        if not self._pending_txs:
            self._new_pending_block()
        header = self.chain.header
        if tx.gas > header.gas_limit - header.gas_used:
            raise ChainError(f"gas limit {tx.gas} exceeds the block's remaining gas")
        if tx.max_fee_per_gas < header.base_fee_per_gas:
            raise ChainError(
                f"max fee per gas less than block base fee: maxFeePerGas {tx.max_fee_per_gas}, "
                f"baseFee {header.base_fee_per_gas}"
            )
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
        if self.auto_mine:
            self.mine()
        return bytes(tx.hash)

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

    def sign_and_send(self, fields: dict[str, Any]) -> bytes:
        """eth_sendTransaction: fill defaults, sign with an unlocked dev key, send."""
        sender = fields["from"]
        account = self.keys.get(sender)
        if account is None:
            raise ChainError(f"unknown account 0x{sender.hex()}: only dev accounts are unlocked")
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
        signed = Account.sign_transaction(tx, account.key)
        return self.send_transaction(self.decode_raw_transaction(bytes(signed.raw_transaction)))

    def set_balance(self, address: bytes, balance: int) -> None:
        """Overwrite an account's balance (a dev cheat); mined into a block when auto-mining."""
        state = self.chain.get_vm().state
        state.set_balance(address, balance)
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

    def _unsigned(self, state: Any, fields: dict[str, Any], gas: int) -> SpoofTransaction:
        sender = fields.get("from", b"\0" * 20)
        vm_tx = self.chain.get_vm().create_unsigned_transaction(
            nonce=state.get_nonce(sender),
            gas_price=0,
            gas=gas,
            to=fields.get("to") or b"",
            value=fields.get("value", 0),
            data=fields.get("data", b""),
        )
        return SpoofTransaction(vm_tx, from_=sender)

    def _execute(self, state: Any, fields: dict[str, Any], gas: int) -> Any:
        snapshot = state.snapshot()
        try:
            return state.apply_transaction(self._unsigned(state, fields, gas))
        except ValidationError as exc:
            raise ChainError(str(exc)) from None
        finally:
            state.revert(snapshot)

    def call(self, fields: dict[str, Any], header: Any, pending: bool = False) -> bytes:
        """eth_call: run a message against a block's state without mining; revert -> RevertError."""
        state = self._execution_state(header, pending)
        gas = fields.get("gas", self.gas_limit)
        computation = self._execute(state, fields, gas)
        if computation.is_error:
            if computation.output or "Revert" in type(computation.error).__name__:
                raise RevertError(bytes(computation.output))
            raise ChainError(f"execution failed: {type(computation.error).__name__}")
        return bytes(computation.output)

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
        """Return to a snapshot; it and every later snapshot are consumed (anvil's rule)."""
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
