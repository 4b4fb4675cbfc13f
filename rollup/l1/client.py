"""The one way our components talk to L1: web3.py over standard JSON-RPC.

Transactions are signed locally with the component's key and sent raw, so the
same code works against `rollup l1`, anvil, geth or a hosted endpoint.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from .. import contracts
from .chain import dev_accounts
from .wire import Rpc, Views


class L1Error(Exception):
    """An L1 transaction failed; `reason` is the revert string when there was one."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


def default_dev_key() -> str:
    """Key of dev account 0 of the well-known dev mnemonic (anvil's and ours)."""
    return "0x" + bytes(dev_accounts(1)[0].key).hex()


LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def connect(url: str, timeout: float = 60.0) -> Web3:
    """A web3 connection to `url`. The chain id is asked once and remembered (web3's
    validation would otherwise ask for it before every transaction built and sent). A node
    on this machine is reached without looking for proxy settings in the environment at
    every request (a third of a local request's time)."""
    session = None
    if urlsplit(url).netloc.rsplit(":", 1)[0] in LOOPBACK:
        session = requests.Session()
        session.trust_env = False
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}, session=session,
                                  cache_allowed_requests=True, cacheable_requests={"eth_chainId"}))


class EncodedCall:
    """A contract call already encoded (its target and calldata), usable where a web3
    contract function is (`L1.send`, `estimate_gas`, `build_transaction`, `call`) without
    encoding its arguments again at every use."""

    def __init__(self, w3: Web3, to: str, data: bytes) -> None:
        self.w3, self.to, self.data = w3, Web3.to_checksum_address(to), data

    def _fields(self, tx: dict[str, Any] | None) -> dict[str, Any]:
        return {"value": 0, **(tx or {}), "to": self.to, "data": Web3.to_hex(self.data)}

    def estimate_gas(self, tx: dict[str, Any] | None = None, block_identifier: Any = None) -> int:
        return int(self.w3.eth.estimate_gas(self._fields(tx), block_identifier))  # type: ignore[arg-type]

    def build_transaction(self, tx: dict[str, Any]) -> dict[str, Any]:
        return self._fields(tx)

    def call(self, tx: dict[str, Any] | None = None, block_identifier: Any = "latest") -> bytes:
        return bytes(self.w3.eth.call(self._fields(tx), block_identifier))  # type: ignore[arg-type]


class L1:
    """A web3 connection plus a signing key."""

    def __init__(self, url: str, key: str | bytes | None = None, timeout: float = 60.0) -> None:
        self.url = url
        self.w3 = connect(url, timeout)
        self.rpc = Rpc(url, timeout)
        """Light reads (`wire`): what is read often, without web3's per-call cost."""
        self.account: LocalAccount | None = Account.from_key(key) if key is not None else None
        self._chain_id: int | None = None

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    @property
    def address(self) -> ChecksumAddress:
        if self.account is None:
            raise L1Error("no key configured: pass --key")
        return self.account.address

    def contract(self, name: str, address: str) -> Contract:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=contracts.load(name).abi)

    def views(self, name: str, address: str) -> Views:
        """A contract's view functions called through `rpc`."""
        return Views(self.rpc, Web3.to_checksum_address(address), contracts.load(name).abi)

    def deploy(self, name: str, *args: Any) -> Contract:
        artifact = contracts.load(name)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = self.send(factory.constructor(*args))
        return self.contract(name, receipt["contractAddress"])

    def fees(self) -> dict[str, int]:
        base = int(self.w3.eth.get_block("latest")["baseFeePerGas"])
        tip = int(self.w3.eth.max_priority_fee)
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def send(self, call: Any, value: int = 0, gas: int | None = None) -> Any:
        """Sign and send a contract call (or constructor); wait; raise L1Error on revert."""
        if self.account is None:
            raise L1Error("no key configured: pass --key")
        params: dict[str, Any] = {
            "from": self.account.address,
            "value": value,
            "chainId": self.chain_id,
            "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
            **self.fees(),
        }
        if gas is None:
            try:
                # in the pending block: what a transaction sent now sees (anvil and geth run
                # an estimate at "latest" in the latest block, with its number)
                gas = int(call.estimate_gas({"from": self.account.address, "value": value},
                                            block_identifier="pending"))
            except ContractLogicError as exc:
                raise L1Error(f"reverted: {exc.message}", reason=revert_reason(exc)) from None
            gas = gas * 6 // 5 + 10_000
        params["gas"] = gas
        tx = call.build_transaction(params)
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.05)
        if receipt["status"] != 1:
            raise L1Error(f"transaction {tx_hash.hex()} reverted on chain")
        return receipt

    def transfer_eth(self, to: str, value: int) -> Any:
        if self.account is None:
            raise L1Error("no key configured: pass --key")
        tx: TransactionDictType = {
            "to": Web3.to_checksum_address(to),
            "value": value,
            "gas": 21_000,
            "chainId": self.chain_id,
            "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
            **self.fees(),
        }
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.05)


def revert_reason(exc: ContractLogicError) -> str | None:
    """The revert string of a refused call (None when there is none)."""
    message = str(exc.message or "")
    prefix = "execution reverted: "
    return message[len(prefix) :] if message.startswith(prefix) else None
