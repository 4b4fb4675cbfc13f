"""A Python SDK for the rollup: the operator's JSON-RPC API, and a trader that signs.

    from rollup.sdk import Operator, Trader
    operator = Operator("http://127.0.0.1:8550")
    alice = Trader.from_deployment(operator, "<private key hex>", deployment)
    alice.order(market=0, side="buy", size=10, price=300_000)

Orders, cancels and withdrawals are signed locally with EIP-712 (the key never leaves);
the operator only relays what the state transition accepts.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from .api import order_json
from .deploy import Deployment
from .l1.rollup_client import config_of
from .stf import builders
from .stf.fork import Context
from .stf.signing import address_of
from .stf.state import Config
from .stf.transactions import Order


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
        order, signature = self.sign_order(market, side, size, price, **kwargs)
        return self.operator.call("submit_order", order=order_json(order), signature=signature, kind=kind)

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
