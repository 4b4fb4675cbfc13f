"""A Python SDK for the rollup: the operator's JSON-RPC API, and a trader that signs.

    from rollup.sdk import Operator, Trader
    operator = Operator("http://127.0.0.1:8550")
    alice = Trader.from_deployment(operator, "<private key hex>", deployment)
    alice.order(market=0, side="buy", size=10, price=300_000)

Orders, cancels and withdrawals are signed locally with EIP-712 (the key never leaves);
the operator only relays what the state transition accepts.

`Operator` keeps one HTTP connection alive per thread and sends JSON-RPC batches
(`batch`); `OperatorStream` speaks over a WebSocket and follows the book and trades feeds.

The L1 side: `deposit(chain, amount)` approves and deposits through the bridge and
`wait_credited` waits for the operator to credit it; `wait_withdrawal_proof` waits until a
withdrawal is in a final batch and `claim(chain, proof)` pays it out on L1 (`chain` is a
`rollup.l1.rollup_client.RollupL1` with the sender's key).
"""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .api import order_json
from .stf import builders
from .stf.fork import Context
from .stf.signing import address_of
from .stf.state import Config
from .stf.transactions import ORDER_NO_EXPIRY, Order

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
    """The operator's JSON-RPC API over HTTP, on one kept-alive connection per thread.

    `call` sends one request; `batch` sends several in one JSON-RPC batch (one round trip,
    answered in order). A refused connection raises urllib's URLError (as urlopen does)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        parts = urllib.parse.urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._path = parts.path or "/"
        self._ids = itertools.count(1)
        self._local = threading.local()

    def call(self, method: str, **params: Any) -> Any:
        reply = self._post(json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                                       "params": params}).encode())
        return _result(reply)

    def batch(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Several calls in one round trip: each one's result, or its ApiError (not raised)."""
        ids = [next(self._ids) for _ in calls]
        replies = self._post(json.dumps([{"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                                         for i, (method, params) in zip(ids, calls, strict=True)]).encode())
        if not isinstance(replies, list):  # the whole batch refused
            _result(replies)
        by_id = {r.get("id"): r for r in replies}
        out: list[Any] = []
        for i in ids:
            try:
                out.append(_result(by_id[i]))
            except ApiError as exc:
                out.append(exc)
        return out

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            connection = self._local.connection = kind(self._host, self._port, timeout=self.timeout)
            self._local.used = False
        return connection

    def _post(self, body: bytes) -> Any:
        for attempt in range(2):
            connection = self._connection()
            reused = self._local.used
            try:
                connection.request("POST", self._path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle kept-alive connection: once more, anew
                raise urllib.error.URLError(exc) from None
            except (ConnectionError, socket.gaierror) as exc:
                self.close()
                raise urllib.error.URLError(exc) from None
            except BaseException:
                self.close()
                raise
            self._local.used = True
            if response.status != 200 and not data.startswith((b"{", b"[")):
                raise urllib.error.HTTPError(self.url, response.status, response.reason, response.headers, None)
            return json.loads(data)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close this thread's connection (the next call opens another)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None


def _result(reply: Any) -> Any:
    if not isinstance(reply, dict):
        raise ApiError(-32603, f"unexpected reply: {str(reply)[:100]}")
    if "error" in reply:
        e = reply["error"]
        raise ApiError(int(e["code"]), str(e["message"]), e.get("data"))
    return reply["result"]


class OperatorStream:
    """The operator's API over one WebSocket (`ws://host:port/ws`): calls, and the book and
    trades feeds.

        with OperatorStream("http://127.0.0.1:8550") as stream:
            book = stream.subscribe("book", market=0)
            for subscription, result in stream.notifications(timeout=5):
                ...
    """

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        from websockets.sync.client import connect

        parts = urllib.parse.urlsplit(url)
        scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
        self.timeout = timeout
        # entered at once (closed by `close`): the form every websockets version takes
        self._ws = connect(f"{scheme}://{parts.netloc}/ws", open_timeout=timeout, max_size=2**24).__enter__()
        self._ids = itertools.count(1)
        self._pending: list[tuple[int, Any]] = []

    def __enter__(self) -> OperatorStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._ws.close()

    def call(self, method: str, **params: Any) -> Any:
        request_id = next(self._ids)
        self._ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=self.timeout))
            if isinstance(message, dict) and message.get("method") == "subscription":
                params_ = message["params"]
                self._pending.append((int(params_["subscription"]), params_["result"]))
                continue
            return _result(message)

    def subscribe(self, channel: str, market: int, depth: int = 10) -> int:
        """Follow a market's book ("book") or its trades ("trades"): the subscription id."""
        return int(self.call("subscribe", channel=channel, market=market, depth=depth))

    def unsubscribe(self, subscription: int) -> bool:
        return bool(self.call("unsubscribe", subscription=subscription))

    def notifications(self, timeout: float | None = None) -> Iterator[tuple[int, Any]]:
        """(subscription id, result) as they come; ends after `timeout` seconds of silence."""
        while True:
            while self._pending:
                yield self._pending.pop(0)
            try:
                message = json.loads(self._ws.recv(timeout=timeout))
            except TimeoutError:
                return
            if isinstance(message, dict) and message.get("method") == "subscription":
                yield int(message["params"]["subscription"]), message["params"]["result"]


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

    def sign_order(self, market: int, side: str, size: int, price: int, *, expiry: int = ORDER_NO_EXPIRY,
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
