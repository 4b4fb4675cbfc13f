"""Standard Ethereum JSON-RPC over HTTP for a `DevChain`.

Every request is answered: malformed input gets a JSON-RPC error object
(-32700 parse error, -32600 invalid request, -32601 method not found,
-32602 invalid params, -32000 refused by the chain, 3 execution reverted with
the revert data) and the node keeps serving.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from eth.abc import SignedTransactionAPI

from .. import jsonrpc
from ..jsonrpc import RpcError, Server, hex_data, invalid, param, quantity
from .chain import (
    CLIENT_VERSION,
    DEFAULT_PRIORITY_FEE,
    AccessList,
    ChainError,
    DevChain,
    MinedBlock,
    effective_gas_price,
)
from .txpool import pool_price

log = logging.getLogger("rollup.l1")

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest HTTP request body served (rollup batches travel in calldata)."""

MAX_LOG_RANGE = 100_000
"""Most blocks one eth_getLogs may scan."""

UINT256_MAX = 2**256 - 1

MAX_MINED_BLOCKS = 10_000
"""Most blocks one anvil_mine / hardhat_mine / evm_mine may mine."""


# ---------------------------------------------------------------------- parsing


parse_quantity = quantity
parse_data = hex_data


def parse_address(value: Any, name: str = "address") -> bytes:
    return hex_data(value, name, 20)


CALL_FIELDS = {
    "from", "to", "gas", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "value", "data",
    "input", "nonce", "type", "chainId", "accessList",
}


def parse_call(value: Any) -> dict[str, Any]:
    """A transaction/call object: from, to, gas, gasPrice, maxFeePerGas, value, data/input, nonce."""
    if not isinstance(value, dict):
        raise invalid("transaction must be an object")
    unknown = set(value) - CALL_FIELDS
    if unknown:
        raise invalid(f"unknown transaction fields: {sorted(unknown)[:5]}")
    if value.get("type") is not None and parse_quantity(value["type"], "type", 4) > 2:
        raise invalid("only transaction types 0, 1 and 2 are supported")
    out: dict[str, Any] = {}
    if value.get("from") is not None:
        out["from"] = parse_address(value["from"], "from")
    if value.get("to") is not None:
        out["to"] = parse_address(value["to"], "to")
    for key in ("gas", "nonce"):
        if value.get(key) is not None:
            out[key] = parse_quantity(value[key], key, 2**64 - 1)
    for key in ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "value"):
        if value.get(key) is not None:
            out[key] = parse_quantity(value[key], key)
    data = value.get("input", value.get("data"))
    if data is not None:
        out["data"] = parse_data(data, "input")
    if value.get("accessList") is not None:
        out["accessList"] = parse_access_list(value["accessList"])
    return out


MAX_ACCESS_LIST_ITEMS = 10_000
"""Most addresses plus storage keys one access list may name."""


def parse_access_list(value: Any) -> AccessList:
    """An EIP-2930 access list: [{address, storageKeys: [32-byte hex, ...]}, ...]."""
    if not isinstance(value, list):
        raise invalid("accessList must be a list")
    if len(value) > MAX_ACCESS_LIST_ITEMS:
        raise invalid(f"accessList over {MAX_ACCESS_LIST_ITEMS} entries")
    out: AccessList = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) - {"address", "storageKeys"}:
            raise invalid("accessList entries must be {address, storageKeys}")
        keys = entry.get("storageKeys") or []
        if not isinstance(keys, list):
            raise invalid("storageKeys must be a list")
        out.append((
            parse_address(entry.get("address"), "accessList address"),
            [int.from_bytes(parse_data(key, "storage key", 32), "big") for key in keys],
        ))
    if len(out) + sum(len(slots) for _, slots in out) > MAX_ACCESS_LIST_ITEMS:
        raise invalid(f"accessList over {MAX_ACCESS_LIST_ITEMS} entries")
    return out


# ---------------------------------------------------------------------- formatting


def hexq(number: int) -> str:
    return hex(number)


def hexb(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def hexa(address: bytes | None) -> str | None:
    return None if address is None else "0x" + bytes(address).hex()


def word(number: int) -> str:
    return "0x" + number.to_bytes(32, "big").hex()


# ---------------------------------------------------------------------- the methods


ARITY = {
    "web3_sha3": 1, "eth_getBlockByNumber": 2, "eth_getBlockByHash": 2,
    "eth_getBlockTransactionCountByNumber": 1, "eth_getBlockTransactionCountByHash": 1,
    "eth_sendRawTransaction": 1, "eth_sendTransaction": 1, "eth_getTransactionByHash": 1,
    "eth_getTransactionByBlockNumberAndIndex": 2, "eth_getTransactionReceipt": 1,
    "eth_getBalance": 2, "eth_getCode": 2, "eth_getStorageAt": 3, "eth_getTransactionCount": 2,
    "eth_call": 3, "eth_estimateGas": 3, "eth_feeHistory": 3, "eth_getLogs": 1,
    "eth_newFilter": 1, "eth_getFilterChanges": 1, "eth_getFilterLogs": 1,
    "eth_uninstallFilter": 1, "evm_increaseTime": 1, "evm_setNextBlockTimestamp": 1,
    "evm_mine": 1, "anvil_mine": 2, "hardhat_mine": 2, "evm_revert": 1, "evm_setAutomine": 1,
    "anvil_setBalance": 2, "hardhat_setBalance": 2, "personal_sign": 2, "eth_sign": 2,
    "eth_signTypedData_v4": 2, "eth_signTransaction": 1, "eth_createAccessList": 2,
    "anvil_dropTransaction": 1, "anvil_removePoolTransactions": 1,
}
"""Most positional parameters each method takes (methods not listed take none)."""


class Node(jsonrpc.Service):
    """JSON-RPC methods over a DevChain. Thread-safe: one lock around the chain."""

    arity = ARITY
    max_body_bytes = MAX_BODY_BYTES

    def __init__(self, chain: DevChain) -> None:
        super().__init__()
        self.chain = chain
        self.filters: dict[int, dict[str, Any]] = {}
        self._filter_counter = 0

    def translate(self, exc: Exception) -> RpcError | None:
        if isinstance(exc, ChainError):
            return RpcError(exc.code, exc.message, exc.data)
        return None

    # --- block selection

    def resolve_block(self, tag: Any) -> tuple[Any, bool]:
        """(header, is_pending) for a block tag, number or EIP-1898 object."""
        chain = self.chain
        if isinstance(tag, dict):
            if "blockHash" in tag:
                block = chain.block_by_hash(parse_data(tag["blockHash"], "blockHash", 32))
                if block is None:
                    raise RpcError(-32001, "block not found")
                return block.header, False
            if "blockNumber" in tag:
                return self.resolve_block(tag["blockNumber"])
            raise invalid("block object needs blockHash or blockNumber")
        if tag in ("latest", "safe", "finalized"):
            return chain.head.header, False
        if tag == "pending":
            return chain.pending_header, True
        if tag == "earliest":
            return chain.blocks[0].header, False
        number = parse_quantity(tag, "block number", 2**63)
        block = chain.block_by_number(number)
        if block is None:
            raise RpcError(-32001, f"block {number} not found (latest is {chain.head.number})")
        return block.header, False

    def block_number_of(self, tag: Any, default: str) -> int:
        if tag is None:
            tag = default
        if tag == "pending":
            return self.chain.head.number
        header, _ = self.resolve_block(tag)
        return int(header.block_number)

    # --- chain identity

    def rpc_eth_chainId(self, params: list[Any]) -> str:
        return hexq(self.chain.chain_id)

    def rpc_net_version(self, params: list[Any]) -> str:
        return str(self.chain.chain_id)

    def rpc_net_listening(self, params: list[Any]) -> bool:
        return True

    def rpc_net_peerCount(self, params: list[Any]) -> str:
        return "0x0"

    def rpc_web3_clientVersion(self, params: list[Any]) -> str:
        return CLIENT_VERSION

    def rpc_web3_sha3(self, params: list[Any]) -> str:
        from eth_utils import keccak

        return hexb(keccak(parse_data(param(params, 0))))

    def rpc_eth_syncing(self, params: list[Any]) -> bool:
        return False

    def rpc_eth_mining(self, params: list[Any]) -> bool:
        return True

    def rpc_eth_accounts(self, params: list[Any]) -> list[str]:
        return [a.address.lower() for a in self.chain.accounts]

    def rpc_eth_coinbase(self, params: list[Any]) -> str:
        return "0x" + "00" * 20

    # --- blocks

    def rpc_eth_blockNumber(self, params: list[Any]) -> str:
        return hexq(self.chain.head.number)

    def rpc_eth_getBlockByNumber(self, params: list[Any]) -> dict[str, Any] | None:
        tag = param(params, 0)
        full = bool(param(params, 1, False))
        if tag == "pending":
            tag = "latest"
        try:
            header, _ = self.resolve_block(tag)
        except RpcError as exc:
            if exc.code == -32001:
                return None
            raise
        return self.format_block(self.chain.blocks[header.block_number], full)

    def rpc_eth_getBlockByHash(self, params: list[Any]) -> dict[str, Any] | None:
        block = self.chain.block_by_hash(parse_data(param(params, 0), "block hash", 32))
        full = bool(param(params, 1, False))
        return None if block is None else self.format_block(block, full)

    def rpc_eth_getBlockTransactionCountByNumber(self, params: list[Any]) -> str | None:
        block = self.rpc_eth_getBlockByNumber([param(params, 0), False])
        return None if block is None else hexq(len(block["transactions"]))

    def rpc_eth_getBlockTransactionCountByHash(self, params: list[Any]) -> str | None:
        block = self.rpc_eth_getBlockByHash([param(params, 0), False])
        return None if block is None else hexq(len(block["transactions"]))

    def format_block(self, block: MinedBlock, full: bool) -> dict[str, Any]:
        h = block.header
        txs: list[Any]
        if full:
            txs = [self.format_tx(block, i) for i in range(len(block.transactions))]
        else:
            txs = [hexb(tx.hash) for tx in block.transactions]
        out = {
            "number": hexq(h.block_number),
            "hash": hexb(h.hash),
            "parentHash": hexb(h.parent_hash),
            "nonce": hexb(h.nonce),
            "sha3Uncles": hexb(h.uncles_hash),
            "logsBloom": word_bloom(h.bloom),
            "transactionsRoot": hexb(h.transaction_root),
            "stateRoot": hexb(h.state_root),
            "receiptsRoot": hexb(h.receipt_root),
            "miner": hexb(h.coinbase),
            "difficulty": hexq(h.difficulty),
            "totalDifficulty": "0x0",
            "extraData": hexb(h.extra_data),
            "size": hexq(block.size),
            "gasLimit": hexq(h.gas_limit),
            "gasUsed": hexq(h.gas_used),
            "timestamp": hexq(h.timestamp),
            "mixHash": hexb(h.mix_hash),
            "baseFeePerGas": hexq(h.base_fee_per_gas),
            "transactions": txs,
            "uncles": [],
            "withdrawals": [],
            "withdrawalsRoot": hexb(h.withdrawals_root),
            "blobGasUsed": hexq(h.blob_gas_used),
            "excessBlobGas": hexq(h.excess_blob_gas),
            "parentBeaconBlockRoot": hexb(h.parent_beacon_block_root),
            "requestsHash": hexb(h.requests_hash),
        }
        return out

    # --- transactions

    def format_tx(self, block: MinedBlock, index: int) -> dict[str, Any]:
        """A mined transaction as eth_getTransactionByHash shows it."""
        tx = block.transactions[index]
        out = self.tx_fields(tx, block.senders[index],
                             effective_gas_price(tx, block.header.base_fee_per_gas))
        out.update(blockHash=hexb(block.hash), blockNumber=hexq(block.number),
                   transactionIndex=hexq(index))
        return out

    def format_pool_tx(self, tx: SignedTransactionAPI, gas_price: int | None = None) -> dict[str, Any]:
        """A transaction not mined yet (pending or queued), as anvil shows one: block hash,
        number and index null; `gasPrice` what it would pay in the pending block unless
        `gas_price` is given."""
        if gas_price is None:
            gas_price = effective_gas_price(tx, self.chain.pending_header.base_fee_per_gas)
        out = self.tx_fields(tx, bytes(tx.sender), gas_price)
        out.update(blockHash=None, blockNumber=None, transactionIndex=None)
        return out

    def tx_fields(self, tx: SignedTransactionAPI, sender: bytes, gas_price: int) -> dict[str, Any]:
        """The fields of a transaction that do not depend on where it is mined."""
        type_id = tx.type_id or 0
        out: dict[str, Any] = {
            "hash": hexb(tx.hash),
            "type": hexq(type_id),
            "nonce": hexq(tx.nonce),
            "from": hexa(sender),
            "to": hexa(tx.to) if tx.to else None,
            "value": hexq(tx.value),
            "gas": hexq(tx.gas),
            "gasPrice": hexq(gas_price),
            "input": hexb(tx.data),
            "r": hexq(tx.r),
            "s": hexq(tx.s),
        }
        chain_id = tx.chain_id
        if type_id == 0:
            legacy: Any = tx  # a legacy transaction carries v (EIP-155: chain id folded in)
            out["v"] = hexq(legacy.v)
            if chain_id is not None:
                out["chainId"] = hexq(chain_id)
        else:
            out["v"] = hexq(tx.y_parity)
            out["yParity"] = hexq(tx.y_parity)
            out["chainId"] = hexq(self.chain.chain_id if chain_id is None else chain_id)
            out["accessList"] = [
                {"address": hexa(address), "storageKeys": [word(slot) for slot in slots]}
                for address, slots in tx.access_list
            ]
        if type_id >= 2:
            out["maxFeePerGas"] = hexq(tx.max_fee_per_gas)
            out["maxPriorityFeePerGas"] = hexq(tx.max_priority_fee_per_gas)
        return out

    def rpc_eth_sendRawTransaction(self, params: list[Any]) -> str:
        raw = parse_data(param(params, 0), "raw transaction")
        if not raw:
            raise invalid("empty transaction")
        tx = self.chain.decode_raw_transaction(raw)
        return hexb(self.chain.send_transaction(tx))

    def rpc_eth_sendTransaction(self, params: list[Any]) -> str:
        fields = parse_call(param(params, 0))
        if "from" not in fields:
            raise invalid("from is required")
        return hexb(self.chain.sign_and_send(fields))

    # --- signing with the unlocked dev accounts (anvil's and geth's parameter orders)

    def rpc_personal_sign(self, params: list[Any]) -> str:
        """[data, address] -> the EIP-191 signature of the hex `data` (65 bytes, v 27/28)."""
        data = parse_data(param(params, 0), "message")
        return hexb(self.chain.sign_message(parse_address(param(params, 1)), data))

    def rpc_eth_sign(self, params: list[Any]) -> str:
        """[address, data] -> the same signature as personal_sign (EIP-191 prefixed)."""
        address = parse_address(param(params, 0))
        return hexb(self.chain.sign_message(address, parse_data(param(params, 1), "message")))

    def rpc_eth_signTypedData_v4(self, params: list[Any]) -> str:
        """[address, typedData] -> the EIP-712 signature; typedData is an object or its
        JSON text."""
        address = parse_address(param(params, 0))
        typed = param(params, 1)
        if isinstance(typed, str):
            try:
                typed = json.loads(typed)
            except ValueError:
                raise invalid("typed data is not JSON") from None
        if not isinstance(typed, dict):
            raise invalid("typed data must be an object or its JSON text")
        return hexb(self.chain.sign_typed_data(address, typed))

    def rpc_eth_signTransaction(self, params: list[Any]) -> str:
        """[transaction] -> the raw signed transaction, defaults filled as eth_sendTransaction
        fills them; nothing is sent."""
        fields = parse_call(param(params, 0))
        if "from" not in fields:
            raise invalid("from is required")
        return hexb(self.chain.sign_transaction(fields))

    def rpc_eth_getTransactionByHash(self, params: list[Any]) -> dict[str, Any] | None:
        """A mined transaction, or one waiting in the pending block or the queue (block
        fields null, as on anvil); null for an unknown hash."""
        tx_hash = parse_data(param(params, 0), "tx hash", 32)
        found = self.chain.transaction_location(tx_hash)
        if found is not None:
            return self.format_tx(*found)
        waiting = self.chain.pool_transaction(tx_hash)
        return None if waiting is None else self.format_pool_tx(waiting[0])

    def rpc_eth_getTransactionByBlockNumberAndIndex(self, params: list[Any]) -> Any:
        header, _ = self.resolve_block(param(params, 0))
        block = self.chain.blocks[header.block_number]
        index = parse_quantity(param(params, 1), "index", 2**32)
        return self.format_tx(block, index) if index < len(block.transactions) else None

    def rpc_eth_getTransactionReceipt(self, params: list[Any]) -> dict[str, Any] | None:
        found = self.chain.transaction_location(parse_data(param(params, 0), "tx hash", 32))
        if found is None:
            return None
        block, index = found
        tx = block.transactions[index]
        receipt = block.receipts[index]
        return {
            "transactionHash": hexb(tx.hash),
            "transactionIndex": hexq(index),
            "blockHash": hexb(block.hash),
            "blockNumber": hexq(block.number),
            "from": hexa(block.senders[index]),
            "to": hexa(tx.to) if tx.to else None,
            "cumulativeGasUsed": hexq(receipt.gas_used),
            "gasUsed": hexq(block.gas_used[index]),
            "effectiveGasPrice": hexq(effective_gas_price(tx, block.header.base_fee_per_gas)),
            "contractAddress": hexa(block.contract_addresses[index]),
            "logs": self.format_logs(block, index),
            "logsBloom": word_bloom(receipt.bloom),
            "status": "0x1" if receipt.state_root == b"\x01" else "0x0",
            "type": hexq(tx.type_id or 0),
        }

    def format_logs(self, block: MinedBlock, index: int) -> list[dict[str, Any]]:
        tx_hash = hexb(block.transactions[index].hash)
        first = block.first_log_index[index]
        return [
            {
                "address": hexa(entry.address),
                "topics": [word(topic) for topic in entry.topics],
                "data": hexb(entry.data),
                "blockNumber": hexq(block.number),
                "blockHash": hexb(block.hash),
                "transactionHash": tx_hash,
                "transactionIndex": hexq(index),
                "logIndex": hexq(first + position),
                "removed": False,
            }
            for position, entry in enumerate(block.receipts[index].logs)
        ]

    # --- state

    def rpc_eth_getBalance(self, params: list[Any]) -> str:
        address = parse_address(param(params, 0))
        header, _ = self.resolve_block(param(params, 1, "latest"))
        return hexq(self.chain.state_at(header).get_balance(address))

    def rpc_eth_getCode(self, params: list[Any]) -> str:
        address = parse_address(param(params, 0))
        header, _ = self.resolve_block(param(params, 1, "latest"))
        return hexb(self.chain.state_at(header).get_code(address))

    def rpc_eth_getStorageAt(self, params: list[Any]) -> str:
        address = parse_address(param(params, 0))
        slot = parse_quantity(param(params, 1), "slot")
        header, _ = self.resolve_block(param(params, 2, "latest"))
        return word(self.chain.state_at(header).get_storage(address, slot))

    def rpc_eth_getTransactionCount(self, params: list[Any]) -> str:
        address = parse_address(param(params, 0))
        header, _ = self.resolve_block(param(params, 1, "latest"))
        return hexq(self.chain.state_at(header).get_nonce(address))

    # --- execution

    def rpc_eth_call(self, params: list[Any]) -> str:
        if param(params, 2, None) is not None:
            raise invalid("state overrides are not supported")
        fields = parse_call(param(params, 0))
        header, pending = self.resolve_block(param(params, 1, "latest"))
        return hexb(self.chain.call(fields, header, pending))

    def rpc_eth_estimateGas(self, params: list[Any]) -> str:
        if param(params, 2, None) is not None:
            raise invalid("state overrides are not supported")
        fields = parse_call(param(params, 0))
        header, pending = self.resolve_block(param(params, 1, "latest"))
        return hexq(self.chain.estimate_gas(fields, header, pending))

    def rpc_eth_createAccessList(self, params: list[Any]) -> dict[str, Any]:
        """[call, block] -> {accessList, gasUsed}: the accounts and slots the call touches
        and the gas it uses with that list (see DevChain.create_access_list)."""
        fields = parse_call(param(params, 0))
        header, pending = self.resolve_block(param(params, 1, "latest"))
        access, gas_used = self.chain.create_access_list(fields, header, pending)
        return {
            "accessList": [
                {"address": hexa(address), "storageKeys": [word(slot) for slot in slots]}
                for address, slots in access
            ],
            "gasUsed": hexq(gas_used),
        }

    # --- fees

    def rpc_eth_gasPrice(self, params: list[Any]) -> str:
        return hexq(self.chain.pending_header.base_fee_per_gas + DEFAULT_PRIORITY_FEE)

    def rpc_eth_maxPriorityFeePerGas(self, params: list[Any]) -> str:
        return hexq(DEFAULT_PRIORITY_FEE)

    def rpc_eth_blobBaseFee(self, params: list[Any]) -> str:
        return "0x1"

    def rpc_eth_feeHistory(self, params: list[Any]) -> dict[str, Any]:
        count = parse_quantity(param(params, 0), "block count", 2**32)
        count = max(1, min(count, 1024))
        newest = self.block_number_of(param(params, 1, "latest"), "latest")
        percentiles = param(params, 2, None) or []
        if not isinstance(percentiles, list) or not all(
            isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 100
            for p in percentiles
        ):
            raise invalid("reward percentiles must be numbers in [0, 100]")
        if percentiles != sorted(percentiles):
            raise invalid("reward percentiles must be increasing")
        oldest = max(0, newest - count + 1)
        blocks = self.chain.blocks[oldest : newest + 1]
        base_fees = [hexq(b.header.base_fee_per_gas) for b in blocks]
        if newest == self.chain.head.number:
            base_fees.append(hexq(self.chain.pending_header.base_fee_per_gas))
        else:
            base_fees.append(hexq(self.chain.blocks[newest + 1].header.base_fee_per_gas))
        out: dict[str, Any] = {
            "oldestBlock": hexq(oldest),
            "baseFeePerGas": base_fees,
            "gasUsedRatio": [b.header.gas_used / b.header.gas_limit for b in blocks],
            "baseFeePerBlobGas": ["0x1"] * len(base_fees),
            "blobGasUsedRatio": [0.0] * len(blocks),
        }
        if percentiles:
            out["reward"] = [block_rewards(b, percentiles) for b in blocks]
        return out

    # --- logs and filters

    def rpc_eth_getLogs(self, params: list[Any]) -> list[dict[str, Any]]:
        spec = param(params, 0)
        if not isinstance(spec, dict):
            raise invalid("filter must be an object")
        return self.matching_logs(self.parse_filter(spec))

    def parse_filter(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A log filter: `address` (one or a list), `topics` (at most 4 positions, each null,
        one topic or a list of alternatives), and `blockHash` or a block range.

        The range follows anvil: fromBlock past the head is refused (-32602, "block height
        is H but requested was N"); toBlock past the head reaches the head (a filter goes on
        seeing new blocks up to it); fromBlock after toBlock matches nothing; at most
        MAX_LOG_RANGE blocks. `blockHash` with fromBlock/toBlock is invalid params; an
        unknown blockHash is -32000 "unknown block" (geth's and anvil's words)."""
        addresses: set[bytes] | None = None
        raw_address = spec.get("address")
        if raw_address is not None:
            items = raw_address if isinstance(raw_address, list) else [raw_address]
            addresses = {parse_address(a) for a in items}
        topics: list[set[int] | None] = []
        raw_topics = spec.get("topics") or []
        if not isinstance(raw_topics, list) or len(raw_topics) > 4:
            raise invalid("topics must be a list of at most 4 entries")
        for entry in raw_topics:
            if entry is None:
                topics.append(None)
            else:
                options = entry if isinstance(entry, list) else [entry]
                topics.append(
                    {int.from_bytes(parse_data(t, "topic", 32), "big") for t in options}
                    if options
                    else None
                )
        if spec.get("blockHash") is not None:
            if spec.get("fromBlock") is not None or spec.get("toBlock") is not None:
                raise invalid(
                    "cannot specify both blockHash and fromBlock/toBlock, choose one or the other"
                )
            block = self.chain.block_by_hash(parse_data(spec["blockHash"], "blockHash", 32))
            if block is None:
                raise RpcError(-32000, "unknown block")
            first = last = block.number
            moving_to = False
        else:
            head = self.chain.head.number
            first = self.filter_block(spec.get("fromBlock"))
            if first > head:
                raise RpcError(
                    -32602, f"fromBlock is past the head: block height is {head} but "
                    f"requested was {first}",
                )
            last = self.filter_block(spec.get("toBlock"))
            moving_to = spec.get("toBlock") in (None, "latest", "pending", "safe", "finalized")
            if min(last, head) - first > MAX_LOG_RANGE:
                raise invalid(f"block range over {MAX_LOG_RANGE}")
        return {"first": first, "last": last, "addresses": addresses, "topics": topics,
                "moving_to": moving_to}

    def filter_block(self, tag: Any) -> int:
        """A log filter's fromBlock/toBlock as a number: tags as usual (absent: latest), a
        number as given even past the head (the caller decides what that means)."""
        if tag is None or isinstance(tag, str) and not tag.startswith(("0x", "0X")):
            return self.block_number_of(tag, "latest")
        if isinstance(tag, dict):
            return self.block_number_of(tag, "latest")
        return parse_quantity(tag, "block number", 2**63)

    def matching_logs(self, f: dict[str, Any], first: int | None = None) -> list[dict[str, Any]]:
        first = f["first"] if first is None else first
        last = self.chain.head.number if f["moving_to"] else f["last"]
        out = []
        for block in self.chain.blocks[first : last + 1]:
            for index, receipt in enumerate(block.receipts):
                if not receipt.logs:
                    continue
                for entry in self.format_logs(block, index):
                    raw = receipt.logs[int(entry["logIndex"], 16) - block.first_log_index[index]]
                    if f["addresses"] is not None and bytes(raw.address) not in f["addresses"]:
                        continue
                    if not topics_match(f["topics"], raw.topics):
                        continue
                    out.append(entry)
        return out

    def rpc_eth_newFilter(self, params: list[Any]) -> str:
        spec = param(params, 0)
        if not isinstance(spec, dict):
            raise invalid("filter must be an object")
        f = self.parse_filter(spec)
        f["kind"] = "logs"
        f["cursor"] = f["first"]
        return self._install(f)

    def rpc_eth_newBlockFilter(self, params: list[Any]) -> str:
        return self._install({"kind": "blocks", "cursor": self.chain.head.number + 1})

    def _install(self, f: dict[str, Any]) -> str:
        self._filter_counter += 1
        self.filters[self._filter_counter] = f
        return hexq(self._filter_counter)

    def _filter(self, params: list[Any]) -> tuple[int, dict[str, Any]]:
        filter_id = parse_quantity(param(params, 0), "filter id", 2**64)
        f = self.filters.get(filter_id)
        if f is None:
            raise RpcError(-32000, "filter not found")
        return filter_id, f

    def rpc_eth_getFilterChanges(self, params: list[Any]) -> list[Any]:
        _, f = self._filter(params)
        head = self.chain.head.number
        if f["kind"] == "blocks":
            out = [hexb(b.hash) for b in self.chain.blocks[f["cursor"] : head + 1]]
            f["cursor"] = head + 1
            return out
        last = head if f["moving_to"] else min(f["last"], head)
        if f["cursor"] > last:
            return []
        logs = self.matching_logs(dict(f, moving_to=False, last=last), first=f["cursor"])
        f["cursor"] = last + 1
        return logs

    def rpc_eth_getFilterLogs(self, params: list[Any]) -> list[Any]:
        _, f = self._filter(params)
        if f["kind"] != "logs":
            raise invalid("not a log filter")
        return self.matching_logs(f)

    def rpc_eth_uninstallFilter(self, params: list[Any]) -> bool:
        filter_id = parse_quantity(param(params, 0), "filter id", 2**64)
        return self.filters.pop(filter_id, None) is not None

    # --- time, mining, snapshots (anvil/hardhat names)

    def rpc_evm_increaseTime(self, params: list[Any]) -> str:
        seconds = parse_quantity(param(params, 0), "seconds", 2**40)
        return hexq(self.chain.increase_time(seconds))

    def rpc_evm_setNextBlockTimestamp(self, params: list[Any]) -> None:
        self.chain.set_next_timestamp(parse_quantity(param(params, 0), "timestamp", 2**40))
        return None

    def rpc_evm_mine(self, params: list[Any]) -> str:
        option = param(params, 0, None)
        blocks, timestamp = 1, None
        if isinstance(option, dict):
            if option.get("timestamp") is not None:
                timestamp = parse_quantity(option["timestamp"], "timestamp", 2**40)
            if option.get("blocks") is not None:
                blocks = parse_quantity(option["blocks"], "blocks", MAX_MINED_BLOCKS)
        elif option is not None:
            timestamp = parse_quantity(option, "timestamp", 2**40)
        for i in range(blocks):
            self.chain.mine(timestamp if i == 0 else None)
        return "0x0"

    def rpc_anvil_mine(self, params: list[Any]) -> None:
        """[blocks, interval], each optional (null or absent: 1 block, no interval), hex or
        a number: mine `blocks` blocks (0 mines none), moving the clock `interval` seconds
        forward before each (anvil's rule; the next block is then at least `interval`
        seconds after the last). Interval 0 or none: blocks follow each other as closely as
        the chain allows, one second apart when the clock has not moved (anvil would give
        them equal timestamps; Ethereum's header rule, which py-evm enforces, needs them
        strictly increasing)."""
        raw_blocks = param(params, 0, None)
        blocks = 1 if raw_blocks is None else parse_quantity(raw_blocks, "blocks", MAX_MINED_BLOCKS)
        raw_interval = param(params, 1, None)
        interval = 0 if raw_interval is None else parse_quantity(raw_interval, "interval", 2**32)
        for _ in range(blocks):
            if interval:
                self.chain.increase_time(interval)
            self.chain.mine()
        return None

    rpc_hardhat_mine = rpc_anvil_mine

    def rpc_evm_snapshot(self, params: list[Any]) -> str:
        return hexq(self.chain.snapshot())

    def rpc_evm_revert(self, params: list[Any]) -> bool:
        return self.chain.revert(parse_quantity(param(params, 0), "snapshot id", 2**64))

    def rpc_evm_setAutomine(self, params: list[Any]) -> None:
        enabled = param(params, 0)
        if not isinstance(enabled, bool):
            raise invalid("expected a boolean")
        self.chain.set_auto_mine(enabled)
        return None

    def rpc_anvil_setBalance(self, params: list[Any]) -> None:
        """Set an account's balance (writes a block, like anvil's state override)."""
        address = parse_address(param(params, 0))
        balance = parse_quantity(param(params, 1), "balance")
        self.chain.set_balance(address, balance)
        return None

    rpc_hardhat_setBalance = rpc_anvil_setBalance

    # --- the transaction pool (geth's txpool namespace, anvil's drop methods)

    def pool_by_sender(self) -> tuple[dict[bytes, list[SignedTransactionAPI]],
                                      dict[bytes, list[SignedTransactionAPI]]]:
        """(pending, queued): the transactions waiting in the pending block and those
        queued, by sender, each sender's in nonce order."""
        pending: dict[bytes, list[SignedTransactionAPI]] = {}
        for tx in self.chain.pending_transactions:
            pending.setdefault(bytes(tx.sender), []).append(tx)
        return pending, dict(self.chain.queue)

    def rpc_txpool_status(self, params: list[Any]) -> dict[str, str]:
        """{pending, queued}: how many transactions wait in the pending block (none while
        auto-mining) and how many are queued for a nonce gap to fill."""
        return {"pending": hexq(len(self.chain.pending_transactions)),
                "queued": hexq(len(self.chain.queue))}

    def rpc_txpool_content(self, params: list[Any]) -> dict[str, Any]:
        """{pending, queued}: sender -> nonce (decimal) -> transaction. A queued one's
        `gasPrice` is its price in the pool (fee cap of an EIP-1559 transaction), as anvil
        shows it."""
        pending, queued = self.pool_by_sender()
        return {
            "pending": {hexa(sender): {str(tx.nonce): self.format_pool_tx(tx) for tx in txs}
                        for sender, txs in pending.items()},
            "queued": {hexa(sender): {str(tx.nonce): self.format_pool_tx(tx, pool_price(tx))
                                      for tx in txs}
                       for sender, txs in queued.items()},
        }

    def rpc_txpool_inspect(self, params: list[Any]) -> dict[str, Any]:
        """{pending, queued}: sender -> nonce -> "to: value wei + gas gas × price wei"
        ("contract creation: ..." without a recipient), geth's summary."""
        def summary(tx: SignedTransactionAPI) -> str:
            to = hexa(tx.to) if tx.to else "contract creation"
            return f"{to}: {tx.value} wei + {tx.gas} gas × {pool_price(tx)} wei"

        pending, queued = self.pool_by_sender()
        return {name: {hexa(sender): {str(tx.nonce): summary(tx) for tx in txs}
                       for sender, txs in pool.items()}
                for name, pool in (("pending", pending), ("queued", queued))}

    def rpc_anvil_dropTransaction(self, params: list[Any]) -> None:
        """[hash]: take that transaction out of the pool unmined (see
        DevChain.drop_transactions); an unknown hash changes nothing. null, as anvil."""
        self.chain.drop_transactions(tx_hash=parse_data(param(params, 0), "tx hash", 32))
        return None

    def rpc_anvil_removePoolTransactions(self, params: list[Any]) -> None:
        """[address]: take every transaction of that sender out of the pool unmined."""
        self.chain.drop_transactions(sender=parse_address(param(params, 0)))
        return None

    def rpc_anvil_dropAllTransactions(self, params: list[Any]) -> None:
        """Empty the pool: the pending block's transactions and the queue."""
        self.chain.drop_transactions()
        return None


def topics_match(wanted: list[set[int] | None], topics: Any) -> bool:
    if len(wanted) > len(topics):
        return False
    return all(options is None or topics[i] in options for i, options in enumerate(wanted))


def word_bloom(bloom: int) -> str:
    return "0x" + int(bloom).to_bytes(256, "big").hex()


def block_rewards(block: MinedBlock, percentiles: list[float]) -> list[str]:
    """Priority fees paid at each gas-weighted percentile of a block (eth_feeHistory)."""
    base_fee = block.header.base_fee_per_gas
    tips = sorted(
        (effective_gas_price(tx, base_fee) - base_fee, gas)
        for tx, gas in zip(block.transactions, block.gas_used, strict=True)
    )
    if not tips:
        return ["0x0"] * len(percentiles)
    total = sum(gas for _, gas in tips)
    out = []
    for p in percentiles:
        threshold = total * p / 100
        cumulative = 0
        chosen = tips[-1][0]
        for tip, gas in tips:
            cumulative += gas
            if cumulative >= threshold:
                chosen = tip
                break
        out.append(hexq(max(chosen, 0)))
    return out


def serve(node: Node, host: str, port: int) -> Server:
    """Bind an HTTP JSON-RPC server for `node` (call serve_forever on it)."""
    return jsonrpc.serve(node, host, port)


class IntervalMiner(threading.Thread):
    """Seals a block every `seconds` (for --block-time); auto-mining is off meanwhile."""

    def __init__(self, node: Node, seconds: float) -> None:
        super().__init__(daemon=True, name="interval-miner")
        self.node = node
        self.seconds = seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.seconds):
            with self.node.lock:
                self.node.chain.mine()
