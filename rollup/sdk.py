"""A Python SDK for the rollup: the operator's JSON-RPC API, and a trader that signs.

    from rollup.sdk import Operator, Trader
    operator = Operator("http://127.0.0.1:8550")
    alice = Trader.from_deployment(operator, "<private key hex>", deployment)
    alice.order(market=0, side="buy", size=10, price=300_000)

Orders, cancels and withdrawals are signed locally with EIP-712 (the key never leaves);
the operator only relays what the state transition accepts.

The L1 side: `deposit(chain, amount)` approves and deposits through the bridge and
`wait_credited` waits for the operator to credit it; `wait_withdrawal_proof` waits until a
withdrawal is in a final batch and `claim(chain, proof)` pays it out on L1 (`chain` is a
`rollup.l1.rollup_client.RollupL1` with the sender's key).
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .api import order_json
from .stf import builders
from .stf.fork import Context
from .stf.signing import address_of
from .stf.state import Config
from .stf.transactions import Order

if TYPE_CHECKING:  # web3 is imported when used: reading the operator's API does not need it
    from web3.contract import Contract

    from .deploy import Deployment
    from .l1.rollup_client import RollupL1


NOT_FOUND = 1006
"""The operator's error code for what does not exist (yet): an account, a final withdrawal."""


class ApiError(Exception):
    """A JSON-RPC error from the operator: `code`, `message`, `data` (a reason's name)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} ({code}{', ' + str(data) if data else ''})")
        self.code = code
        self.message = message
        self.data = data


class Operator:
    """The operator's JSON-RPC API."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            reply = json.loads(response.read())
        if "error" in reply:
            e = reply["error"]
            raise ApiError(int(e["code"]), str(e["message"]), e.get("data"))
        return reply["result"]


@dataclass
class Trader:
    """An account holder: signs orders, cancels and withdrawals for its account."""

    operator: Operator
    key: bytes
    config: Config
    _account: int | None = None
    _nonce: int | None = None
    nonces_used: list[int] = field(default_factory=list)

    @classmethod
    def from_deployment(cls, operator: Operator, key: str | bytes, deployment: Deployment) -> Trader:
        from .l1.rollup_client import config_of

        raw = bytes.fromhex(key[2:] if isinstance(key, str) and key.startswith("0x") else key) \
            if isinstance(key, str) else key
        return cls(operator, raw, config_of(deployment))

    @property
    def address(self) -> bytes:
        return address_of(self.key)

    @property
    def account(self) -> int:
        if self._account is None:
            self._account = int(self.operator.call("account_of", owner="0x" + self.address.hex())["account"])
        return self._account

    def context(self) -> Context:
        return Context(self.config, 0)

    def next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = int(self.operator.call("next_nonce", account=self.account)["nonce"])
        nonce = self._nonce
        self._nonce += 1
        self.nonces_used.append(nonce)
        return nonce

    def sign_order(self, market: int, side: str, size: int, price: int, *, expiry: int = 2**40,
                   max_fee_ppm: int = 1_000, nonce: int | None = None) -> tuple[Order, str]:
        order = Order(self.account, market, side == "buy", size, price, max_fee_ppm,
                      self.next_nonce() if nonce is None else nonce, expiry)
        return order, "0x" + builders.sign_order(order, self.key, self.context()).hex()

    def order(self, market: int, side: str, size: int, price: int, kind: str = "limit", **kwargs: Any) -> Any:
        """Sign and submit an order; the operator's answer, with the order's `nonce` (to cancel it)."""
        order, signature = self.sign_order(market, side, size, price, **kwargs)
        result = self.operator.call("submit_order", order=order_json(order), signature=signature, kind=kind)
        return {**result, "nonce": order.nonce} if isinstance(result, dict) else result

    def cancel(self, nonce: int) -> Any:
        signed = builders.cancel(self.account, nonce, self.key, self.context())
        return self.operator.call("cancel_order", account=self.account, nonce=nonce,
                                  signature="0x" + signed.signature.hex())

    def withdraw(self, amount: int, expiry: int = 2**40) -> Any:
        nonce = self.next_nonce()
        signed = builders.withdraw(self.account, amount, nonce, expiry, self.key, self.context())
        return self.operator.call("withdraw", account=self.account, amount=amount, nonce=nonce, expiry=expiry,
                                  signature="0x" + signed.signature.hex())

    def info(self) -> Any:
        return self.operator.call("account", account=self.account)


# ---------------------------------------------------------------------- L1 side: deposits and claims


def deposit(chain: RollupL1, amount: int, owner: str | None = None) -> dict[str, Any]:
    """Approve and deposit `amount` collateral units through the bridge, for `owner` (default:
    the sender's own address). Returns {index, account, owner, amount, tx}: `index` is the
    deposit's place in the L1 queue, `account` the owner's L2 account id."""
    from web3.logs import DISCARD

    receipt = chain.deposit(owner or chain.l1.address, amount)
    event = chain.bridge.events.Deposited().process_receipt(receipt, errors=DISCARD)[0]["args"]
    return {"index": int(event["index"]), "account": int(event["account"]), "owner": str(event["owner"]),
            "amount": int(event["amount"]), "tx": "0x" + bytes(receipt["transactionHash"]).hex()}


def wait_credited(operator: Operator, deposit_index: int, timeout: float = 60.0, poll: float = 0.2) -> None:
    """Wait until the operator's state has credited L1 deposit `deposit_index` (TimeoutError)."""
    deadline = time.monotonic() + timeout
    while int(operator.call("status")["deposits"]) <= deposit_index:
        if time.monotonic() > deadline:
            raise TimeoutError(f"deposit {deposit_index} not credited by the operator after {timeout:g} s")
        time.sleep(poll)


def wait_withdrawal_proof(operator: Operator, index: int, timeout: float = 120.0, poll: float = 0.5) -> dict[str, Any]:
    """The operator's `withdrawal_proof` of withdrawal `index`, once a final batch holds it
    (the challenge window must pass first); TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return dict(operator.call("withdrawal_proof", index=index))
        except ApiError as exc:
            if exc.code != NOT_FOUND:
                raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"withdrawal {index} not in a final batch after {timeout:g} s") from None
        time.sleep(poll)


def claim_call(bridge: Contract, proof: dict[str, Any]) -> Any:
    """The `Bridge.claim` call of a `withdrawal_proof` answer."""
    from web3 import Web3

    record = proof["record"]
    return bridge.functions.claim(
        int(proof["batch"]), int(proof["index"]),
        (int(record["account"]), Web3.to_checksum_address(record["owner"]), int(record["amount"])),
        [bytes.fromhex(p[2:]) for p in proof["proof"]],
        bytes.fromhex(proof["accounts_root"][2:]), bytes.fromhex(proof["markets_root"][2:]),
        bytes.fromhex(proof["globals_hash"][2:]))


def claim(chain: RollupL1, proof: dict[str, Any]) -> dict[str, Any]:
    """Claim on L1 the withdrawal a `withdrawal_proof` answer opens (anyone may send it; the
    record's owner is paid). Returns {index, batch, account, owner, amount, paid, tx}."""
    from web3.logs import DISCARD

    receipt = chain.l1.send(claim_call(chain.bridge, proof))
    event = chain.bridge.events.WithdrawalClaimed().process_receipt(receipt, errors=DISCARD)[0]["args"]
    return {"index": int(event["index"]), "batch": int(proof["batch"]), "account": int(event["account"]),
            "owner": str(event["owner"]), "amount": int(event["amount"]), "paid": int(event["paid"]),
            "tx": "0x" + bytes(receipt["transactionHash"]).hex()}
