"""L1 reads on the wire: JSON-RPC over one kept-alive HTTP connection per thread, and
contract view functions encoded from their ABI with eth_abi.

The operator's background loop reads L1 several times a second (the head, the queues,
the live chain) in the process that answers orders. Through web3.py a contract call costs
about 6 ms of CPU (its contract objects, middleware and result formatters), a block read
about 1.4 ms, and all of it holds the GIL the request path needs; here a call costs what
its JSON and ABI coding cost (a fraction of a millisecond). Reads only: transactions are
built, signed and sent through web3 (`client.L1.send`).
"""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any
from urllib.parse import urlsplit

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import (
    event_signature_to_log_topic,
    function_signature_to_4byte_selector,
    to_checksum_address,
)


class RpcCallError(Exception):
    """The node answered with a JSON-RPC error (a refused call, a bad parameter)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code, self.message, self.data = code, message, data


class NoSuchBlock(RpcCallError):
    """The node has no block by that number (the chain is shorter)."""


class Rpc:
    """JSON-RPC requests on a kept-alive connection (one per thread, opened on first use
    and opened again once if the node closed it)."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self._local = threading.local()
        self._ids = 0

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            connection = self._local.connection = kind(self.host, self.port, timeout=self.timeout)
        return connection

    def _post(self, payload: Any) -> Any:
        body = json.dumps(payload).encode()
        for attempt in (0, 1):
            connection = self._connection()
            try:
                connection.request("POST", self.path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, http.client.CannotSendRequest, ConnectionError):
                connection.close()  # the node closed a kept-alive connection: a read is safe to send again
                self._local.connection = None
                if attempt:
                    raise
            except BaseException:  # a timeout, say: the connection's state is unknown, start afresh
                connection.close()
                self._local.connection = None
                raise
        if response.status != 200:
            raise RpcCallError(-32603, f"HTTP {response.status} from the node")
        return json.loads(data)

    def request(self, method: str, params: list[Any]) -> Any:
        """One request's result; a JSON-RPC error raises RpcCallError."""
        self._ids += 1
        reply = self._post({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params})
        return _result(reply)

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several requests in one round trip; their results in order (an error in any
        raises RpcCallError)."""
        if not calls:
            return []
        base = self._ids
        self._ids += len(calls)
        replies = self._post([{"jsonrpc": "2.0", "id": base + i, "method": method, "params": params}
                              for i, (method, params) in enumerate(calls)])
        if not isinstance(replies, list):
            return [_result(replies)]  # the node refused the whole batch
        by_id = {reply.get("id"): reply for reply in replies if isinstance(reply, dict)}
        return [_result(by_id.get(base + i, {})) for i in range(len(calls))]

    # --- the reads the operator makes

    def block(self, tag: int | str = "latest") -> dict[str, Any]:
        """A block's header fields (hex strings, as the node sends them)."""
        block = self.request("eth_getBlockByNumber", [hex(tag) if isinstance(tag, int) else tag, False])
        if block is None:
            raise NoSuchBlock(-32001, f"no block {tag}")
        return dict(block)

    def block_hash(self, number: int) -> bytes | None:
        """The hash of block `number`, or None when the chain is shorter (a reader's check
        that L1 has not reorganised under what it read)."""
        try:
            return bytes.fromhex(self.block(number)["hash"][2:])
        except NoSuchBlock:
            return None

    def block_number(self) -> int:
        return int(self.request("eth_blockNumber", []), 16)


def _result(reply: Any) -> Any:
    if not isinstance(reply, dict):
        raise RpcCallError(-32603, "malformed reply")
    if reply.get("error") is not None:
        error = reply["error"]
        raise RpcCallError(int(error.get("code", -32603)), str(error.get("message", "")), error.get("data"))
    if "result" not in reply:
        raise RpcCallError(-32603, "reply without a result")
    return reply["result"]


def block_param(block: Any) -> Any:
    """A block identifier as JSON-RPC takes it: a tag, a number, or a hash (EIP-1898)."""
    if isinstance(block, (bytes, bytearray)):
        return {"blockHash": "0x" + bytes(block).hex()}
    if isinstance(block, int):
        return hex(block)
    return block


class Views:
    """A contract's view functions, called with `eth_call` through `Rpc`: each function's
    selector and types read once from the ABI."""

    def __init__(self, rpc: Rpc, address: str, abi: list[dict[str, Any]]) -> None:
        self.rpc = rpc
        self.address = address
        self._functions: dict[str, tuple[bytes, list[str], list[dict[str, Any]], list[str]]] = {}
        """name -> (selector, input types, outputs, output types)"""
        for entry in abi:
            if entry.get("type") == "function" and entry.get("stateMutability") in ("view", "pure"):
                inputs = [_abi_type(i) for i in entry.get("inputs", [])]
                outputs = list(entry.get("outputs", []))
                selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(inputs)})")
                self._functions[entry["name"]] = (selector, inputs, outputs, [_abi_type(o) for o in outputs])

    def encode(self, name: str, *args: Any) -> bytes:
        selector, inputs, _, _ = self._functions[name]
        return selector + abi_encode(inputs, list(args))

    def decode(self, name: str, data: str) -> Any:
        """A call's result: the one value, or a tuple of several (a struct's fields)."""
        _, _, outputs, types = self._functions[name]
        values = _checksummed(outputs, abi_decode(types, bytes.fromhex(data[2:])))
        return values[0] if len(values) == 1 else values

    def call(self, name: str, *args: Any, block: Any = "latest") -> Any:
        data = "0x" + self.encode(name, *args).hex()
        return self.decode(name, self.rpc.request("eth_call", [{"to": self.address, "data": data},
                                                               block_param(block)]))

    def calls(self, calls: list[tuple[str, tuple[Any, ...]]], block: Any = "latest") -> list[Any]:
        """Several view calls at one block, in one round trip."""
        tag = block_param(block)
        results = self.rpc.batch([("eth_call", [{"to": self.address, "data": "0x" + self.encode(name, *args).hex()},
                                                tag]) for name, args in calls])
        return [self.decode(name, data) for (name, _), data in zip(calls, results, strict=True)]


def _checksummed(entries: list[dict[str, Any]], values: Any) -> tuple[Any, ...]:
    """Decoded values with their addresses checksummed, as web3 gives them (structs too)."""
    out = []
    for entry, value in zip(entries, values, strict=True):
        if entry["type"] == "address":
            value = to_checksum_address(value)
        elif entry["type"] == "tuple":
            value = _checksummed(entry["components"], value)
        out.append(value)
    return tuple(out)


def _abi_type(entry: dict[str, Any]) -> str:
    """The canonical type of an ABI parameter (a struct as a tuple of its fields)."""
    kind = str(entry["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in entry["components"]) + ")" + kind[len("tuple"):]
    return kind


class Events:
    """A contract's events, read with `eth_getLogs` through `Rpc` and decoded from their
    ABI (indexed arguments from the topics, the rest from the data)."""

    def __init__(self, rpc: Rpc, address: str, abi: list[dict[str, Any]]) -> None:
        self.rpc = rpc
        self.address = address
        self._by_topic: dict[str, tuple[str, list[dict[str, Any]], list[dict[str, Any]], list[str]]] = {}
        """topic -> (name, indexed inputs, the other inputs, the other inputs' types)"""
        self._topic: dict[str, str] = {}
        for entry in abi:
            if entry.get("type") == "event" and not entry.get("anonymous"):
                signature = f"{entry['name']}({','.join(_abi_type(i) for i in entry['inputs'])})"
                topic = "0x" + event_signature_to_log_topic(signature).hex()
                plain = [i for i in entry["inputs"] if not i.get("indexed")]
                self._by_topic[topic] = (entry["name"], [i for i in entry["inputs"] if i.get("indexed")], plain,
                                         [_abi_type(i) for i in plain])
                self._topic[entry["name"]] = topic

    def logs(self, names: list[str], from_block: int, to_block: int) -> list[dict[str, Any]]:
        """The events of these names in the block range, in chain order: each a dict of
        `event`, `args`, `blockNumber`, `logIndex` and `transactionHash`."""
        logs = self.rpc.request("eth_getLogs", [{
            "address": self.address, "fromBlock": hex(from_block), "toBlock": hex(to_block),
            "topics": [[self._topic[name] for name in names]],
        }])
        out = [self.decode(log) for log in logs if not log.get("removed")]
        return sorted(out, key=lambda e: (e["blockNumber"], e["logIndex"]))

    def decode(self, log: dict[str, Any]) -> dict[str, Any]:
        name, indexed, plain, types = self._by_topic[log["topics"][0]]
        args: dict[str, Any] = {}
        for entry, topic in zip(indexed, log["topics"][1:], strict=True):
            args[entry["name"]] = _checksummed([entry], abi_decode([_abi_type(entry)], bytes.fromhex(topic[2:])))[0]
        values = _checksummed(plain, abi_decode(types, bytes.fromhex(log["data"][2:])))
        args.update((entry["name"], value) for entry, value in zip(plain, values, strict=True))
        return {"event": name, "args": args, "blockNumber": int(log["blockNumber"], 16),
                "logIndex": int(log["logIndex"], 16), "transactionHash": log["transactionHash"]}

