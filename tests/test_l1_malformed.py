"""The node survives bad input: 1,000 malformed requests each get a JSON-RPC error object,
nothing changes (the transaction pool included), and correct requests are answered
correctly afterwards."""

from __future__ import annotations

import http.client
import json
import random
from typing import Any
from urllib.parse import urlparse

from eth_account import Account
from web3 import Web3
from web3.types import RPCEndpoint

from rollup.l1.chain import dev_accounts

KEY = bytes(dev_accounts(1)[0].key)
ADDRESS = Account.from_key(KEY).address


def post(url: str, body: bytes) -> tuple[int, Any]:
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(str(parsed.hostname), parsed.port, timeout=10)
    try:
        connection.request("POST", "/", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        connection.close()


def signed_transfer(nonce: int, **overrides: Any) -> bytes:
    tx = {"chainId": 31337, "nonce": nonce, "to": ADDRESS, "value": 1, "gas": 21_000,
          "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "type": 2, **overrides}
    return bytes(Account.from_key(KEY).sign_transaction(tx).raw_transaction)


def high_s(raw: bytes) -> bytes:
    """The same EIP-1559 transaction with s replaced by n - s (the malleable twin)."""
    import rlp

    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    fields = rlp.decode(raw[1:])
    s = int.from_bytes(fields[-1], "big")
    fields[-1] = (n - s).to_bytes(32, "big").lstrip(b"\0")
    fields[-3] = b"" if fields[-3] == b"\x01" else b"\x01"
    return raw[:1] + rlp.encode(fields)


def malformed_requests(rng: random.Random, nonce: int) -> list[bytes]:
    """Bad JSON, wrong types, unknown methods, huge numbers, invalid signatures."""
    valid_raw = signed_transfer(nonce)
    methods = ["eth_getBalance", "eth_call", "eth_getBlockByNumber", "eth_getLogs",
               "eth_sendRawTransaction", "eth_getStorageAt", "eth_estimateGas",
               "eth_getTransactionReceipt", "eth_feeHistory", "evm_increaseTime",
               "eth_getCode", "eth_getTransactionCount", "eth_sendTransaction", "evm_revert",
               "txpool_status", "txpool_content", "anvil_removePoolTransactions"]
    junk_values: list[Any] = [
        None, True, -1, 1.5, 2**300, "0x", "0xzz", "latest?", "0x" + "f" * 65, "0x" + "1" * 41,
        [], {}, {"to": 5}, {"from": "0x12"}, "0x" + "f" * 64, {"fromBlock": "0x999999999"},
        {"topics": ["0x12"]}, {"address": 17}, "9" * 5000, {"blockHash": "0x00"},
    ]

    def rpc(method: str, params: Any) -> bytes:
        return json.dumps({"jsonrpc": "2.0", "id": rng.randrange(10**6), "method": method,
                           "params": params}).encode()

    kinds = []
    for i in range(1000):
        kind = i % 10
        if kind == 0:  # not JSON at all / truncated JSON
            good = rpc("eth_chainId", [])
            kinds.append(good[: rng.randrange(1, len(good) - 1)] + bytes([rng.randrange(256)]))
        elif kind == 1:  # well-formed JSON, not a request
            kinds.append(json.dumps(rng.choice([1, "x", None, [], {"id": 1}, {"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"},
                                                 {"jsonrpc": "2.0", "id": 1, "method": 7},
                                                 {"jsonrpc": "2.0", "id": [1], "method": "eth_chainId"}])).encode())
        elif kind == 2:  # unknown methods
            kinds.append(rpc(f"eth_nope{rng.randrange(10**9)}", []))
        elif kind == 3:  # wrong parameter types
            method = rng.choice(methods)
            kinds.append(rpc(method, [rng.choice(junk_values) for _ in range(rng.randrange(0, 4))] or [None]))
        elif kind == 4:  # params not an array
            kinds.append(rpc(rng.choice(methods), rng.choice([{"a": 1}, "0x1", 5])))
        elif kind == 5:  # huge numbers
            huge = hex(2**256 + rng.randrange(2**64))
            kinds.append(rpc(rng.choice(["eth_getBalance", "eth_getStorageAt", "eth_getBlockByNumber"]),
                             [ADDRESS, huge, huge][: 3 if rng.random() < 0.5 else 2]
                             if rng.random() < 0.7 else [huge, False]))
        elif kind == 6:  # a valid transaction with a corrupted signature
            corrupted = bytearray(valid_raw)
            corrupted[-rng.randrange(1, 33)] ^= 1 << rng.randrange(8)
            kinds.append(rpc("eth_sendRawTransaction", ["0x" + bytes(corrupted).hex()]))
        elif kind == 7:  # the high-s twin, a wrong chain id, truncated bytes, or a future
            choice = rng.randrange(4)  # nonce that no check lets into the queue
            if choice == 0:
                raw = high_s(valid_raw)
            elif choice == 1:
                raw = signed_transfer(nonce, chainId=1)
            elif choice == 2:
                raw = signed_transfer(nonce + rng.randrange(1, 10), **rng.choice([
                    {"chainId": 1}, {"gas": 20_000}, {"value": 10**30}, {"maxFeePerGas": 1,
                     "maxPriorityFeePerGas": 1}]))
            else:
                raw = valid_raw[: rng.randrange(1, len(valid_raw) - 1)]
            kinds.append(rpc("eth_sendRawTransaction", ["0x" + raw.hex()]))
        elif kind == 8:  # random bytes as a transaction
            kinds.append(rpc("eth_sendRawTransaction", ["0x" + rng.randbytes(rng.randrange(1, 200)).hex()]))
        else:  # nonsense in a batch: every element answered with an error
            kinds.append(json.dumps([1, {"jsonrpc": "2.0", "id": 2, "method": "nope"}]).encode())
    return kinds


def test_thousand_malformed_requests_each_get_an_error(l1_url: str) -> None:
    w3 = Web3(Web3.HTTPProvider(l1_url))
    snapshot = w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    try:
        block_before = w3.eth.block_number
        pool_before = w3.provider.make_request(RPCEndpoint("txpool_content"), [])["result"]
        nonce = w3.eth.get_transaction_count(ADDRESS)
        balance_before = w3.eth.get_balance(ADDRESS)
        rng = random.Random(20261124)
        codes: dict[int, int] = {}
        for body in malformed_requests(rng, nonce):
            status, reply = post(l1_url, body)
            assert status == 200, body[:200]
            replies = reply if isinstance(reply, list) else [reply]
            assert replies, body[:200]
            for item in replies:
                assert item["jsonrpc"] == "2.0"
                assert "result" not in item, (body[:200], item)
                error = item["error"]
                assert isinstance(error["code"], int) and isinstance(error["message"], str)
                assert error["code"] != -32603, (body[:200], error)  # no internal errors
                codes[error["code"]] = codes.get(error["code"], 0) + 1
        # every standard class of error was exercised
        assert {-32700, -32600, -32601, -32602, -32000} <= set(codes)
        # nothing changed ...
        assert w3.eth.block_number == block_before
        assert w3.eth.get_transaction_count(ADDRESS) == nonce
        assert w3.eth.get_balance(ADDRESS) == balance_before
        assert w3.provider.make_request(RPCEndpoint("txpool_content"), [])["result"] == pool_before
        # ... and the node still serves correct answers
        tx_hash = w3.eth.send_raw_transaction(signed_transfer(nonce))
        assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1
        assert w3.eth.get_transaction_count(ADDRESS) == nonce + 1
        assert w3.eth.chain_id == 31337
    finally:
        w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])


def test_oversized_and_non_post_requests(l1_url: str) -> None:
    parsed = urlparse(l1_url)
    connection = http.client.HTTPConnection(str(parsed.hostname), parsed.port, timeout=10)
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 405
    assert json.loads(response.read())["error"]["code"] == -32600
    connection.close()
    connection = http.client.HTTPConnection(str(parsed.hostname), parsed.port, timeout=10)
    connection.putrequest("POST", "/")
    connection.putheader("Content-Length", str(10**10))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    connection.close()
    status, reply = post(l1_url, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode())
    assert reply["result"] == "0x7a69"
