"""1,000 malformed requests to the operator's API (bad JSON, wrong types, unknown methods
and markets, negative or huge numbers, bad or replayed signatures): each gets a JSON-RPC
error, and nothing changes."""

from __future__ import annotations

import json
import random
import urllib.request
from typing import Any

from rollup.api import order_json
from rollup.sdk import Operator
from tests.test_operator import funded_traders, setup  # noqa: F401  (the module fixture)

REQUESTS = 1_000


def post(url: str, body: bytes) -> Any:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_malformed_requests_get_errors_and_change_nothing(setup: dict[str, Any]) -> None:  # noqa: F811
    operator: Operator = setup["operator"]
    alice, bob = funded_traders(setup)
    placed = alice.order(0, "buy", 3, 250_000)  # a resting order: its replay must fail
    order, signature = alice.sign_order(0, "buy", 3, 250_000, nonce=10**9)

    def snapshot() -> Any:
        return (alice.info(), bob.info(), operator.call("book", market=0), operator.call("book", market=1),
                operator.call("trades", market=0), operator.call("status")["withdrawals"])

    before = snapshot()
    rng = random.Random(11)
    good = order_json(order)
    weird: list[Any] = [None, True, -1, 2**70, "x", "0x", [], {}, 1.5, "0x" + "ff" * 80, -(2**64)]
    placed_order = next(o for o in alice.info()["open_orders"] if o["id"] == placed["id"])
    replay = {k: placed_order[k] for k in good}

    def request() -> bytes:
        kind = rng.randrange(9)
        if kind == 0:  # not JSON at all, or not a request
            return rng.choice([b"{", b"[]", b"null", b"\xff\xfe", b'{"jsonrpc": "2.0"}', b"[1, 2]",
                               json.dumps({"jsonrpc": "1.0", "id": 1, "method": "status"}).encode()])
        if kind == 1:  # unknown method
            return json.dumps({"jsonrpc": "2.0", "id": 1, "method": rng.choice(["", "eth_call", "submit", "x" * 300]),
                               "params": {}}).encode()
        if kind == 2:  # a field of the order replaced by junk
            field = rng.choice(list(good))
            return call("submit_order", {"order": {**good, field: rng.choice(weird)}, "signature": signature})
        if kind == 3:  # sizes and prices out of bounds, unknown markets
            field = rng.choice(["size", "price", "market"])
            values = {"size": [0, -5, 2**40, 2**63], "price": [0, -5, 2**40, 2**63], "market": [16, 255, 99, -1]}
            bad = {**good, field: rng.choice(values[field])}
            return call("submit_order", {"order": bad, "signature": signature})
        if kind == 4:  # a signature that is not the owner's, or not a signature
            sig = rng.choice(["0x" + rng.randbytes(65).hex(), "0x" + "00" * 65, signature[:-2], 7, None])
            return call("submit_order", {"order": good, "signature": sig})
        if kind == 5:  # the order already placed, sent again (a replay)
            return call("submit_order", {"order": replay, "signature": placed_signature})
        if kind == 6:  # params of the wrong shape
            return json.dumps({"jsonrpc": "2.0", "id": 2, "method": rng.choice(["submit_order", "book", "account"]),
                               "params": rng.choice([7, "x", [1, 2, 3, 4, 5, 6], [None]])}).encode()
        if kind == 7:  # cancels and withdrawals with forged signatures
            method = rng.choice(["cancel_order", "withdraw"])
            params = {"account": alice.account, "nonce": rng.randrange(1, 10**6), "amount": rng.randrange(1, 10**12),
                      "expiry": 2**40, "signature": "0x" + rng.randbytes(65).hex()}
            if method == "cancel_order":
                params.pop("amount")
                params.pop("expiry")
            return call(method, params)
        return call(rng.choice(["book", "trades", "account", "withdrawal_proof", "submit_oracle"]),
                    {"market": rng.choice([16, -1, "0"]), "account": 10**6, "index": 10**9, "tx": "0x05"})

    placed_signature = alice.sign_order(0, "buy", 3, 250_000, nonce=placed_order["nonce"])[1]

    def call(method: str, params: Any) -> bytes:
        return json.dumps({"jsonrpc": "2.0", "id": 3, "method": method, "params": params}).encode()

    codes: dict[int, int] = {}
    for _ in range(REQUESTS):
        replies = post(operator.url, request())
        for reply in replies if isinstance(replies, list) else [replies]:  # a batch: one error each
            assert "error" in reply and "result" not in reply, reply
            codes[reply["error"]["code"]] = codes.get(reply["error"]["code"], 0) + 1
    assert snapshot() == before
    assert {-32700, -32600, -32601, -32602, 1003, 1004, 1005} <= set(codes), codes
    assert -32603 not in codes  # no internal error
    assert operator.call("status")  # and it still serves
