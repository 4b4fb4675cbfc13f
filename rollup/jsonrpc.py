"""JSON-RPC 2.0 over HTTP: the one server both our L1 node and the operator speak.

A `Service` names its methods `rpc_<name>`; each takes the request's params (an array,
or an object for methods that accept named params) and returns a JSON value or raises
`RpcError`. Every request is answered: malformed input gets an error object
(-32700 parse error, -32600 invalid request, -32601 method not found, -32602 invalid
params; a service adds its own codes) and the server keeps serving. Calls are
serialised by the service's lock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("rollup.jsonrpc")

MAX_BATCH = 1_000
"""Most requests in one JSON-RPC batch."""


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def invalid(message: str) -> RpcError:
    return RpcError(-32602, f"invalid params: {message}")


# ---------------------------------------------------------------------- params
# One set of parsers for every API (the operator's and the L1 node's): each returns the
# value or raises the invalid-params error naming what is wrong.


def param(params: list[Any] | dict[str, Any], index: int, default: Any = ..., *, name: str | None = None) -> Any:
    """Param `index` of an array, or the one called `name` of an object; `default` if
    absent (none given: an error naming it)."""
    if isinstance(params, dict):
        if name is not None and name in params:
            return params[name]
    elif index < len(params):
        return params[index]
    if default is ...:
        raise invalid(f"missing {name}" if name else f"missing parameter {index}")
    return default


def integer(value: Any, name: str, low: int = 0, high: int = 2**64 - 1) -> int:
    """A JSON integer, or a 0x-hex string, within [low, high]."""
    if isinstance(value, str) and value.startswith("0x"):
        try:
            value = int(value, 16)
        except ValueError:
            raise invalid(f"{name} must be an integer") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{name} must be an integer")
    if not low <= value <= high:
        raise invalid(f"{name} must be in [{low}, {high}]")
    return value


def quantity(value: Any, name: str = "quantity", bound: int = 2**256 - 1) -> int:
    """An Ethereum quantity: 0x-hex (JSON integers accepted too), 0 <= value <= bound."""
    if isinstance(value, bool):
        raise invalid(f"{name} must be a hex quantity")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value[:2] in ("0x", "0X") and 2 < len(value) <= 66:
        try:
            number = int(value[2:], 16)
        except ValueError:
            raise invalid(f"{name} is not hex: {value[:80]!r}") from None
    else:
        raise invalid(f"{name} must be a 0x-prefixed hex quantity, got {str(value)[:80]!r}")
    if not 0 <= number <= bound:
        raise invalid(f"{name} out of range")
    return number


def hex_data(value: Any, name: str = "data", length: int | None = None, *, prefixed: bool = True) -> bytes:
    """Hex bytes (0x-prefixed; with `prefixed` False the prefix may be left out),
    optionally of an exact length."""
    if not isinstance(value, str) or (prefixed and value[:2] not in ("0x", "0X")):
        raise invalid(f"{name} must be 0x-prefixed hex" if prefixed else f"{name} must be a hex string")
    body = value[2:] if value[:2] in ("0x", "0X") else value
    if len(body) % 2:
        raise invalid(f"{name} has an odd number of hex digits")
    try:
        data = bytes.fromhex(body)
    except ValueError:
        raise invalid(f"{name} is not hex") from None
    if length is not None and len(data) != length:
        raise invalid(f"{name} must be {length} bytes")
    return data


def error_response(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


class Service:
    """Dispatch of JSON-RPC requests to `rpc_*` methods."""

    arity: dict[str, int] = {}
    """Most positional params per method (default 0)."""
    named: frozenset[str] = frozenset()
    """Methods that also take their params as one object."""
    max_body_bytes = 1024 * 1024

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.last_request = time.monotonic()
        """When the last request arrived (monotonic clock)."""
        self.methods: dict[str, Callable[[Any], Any]] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("rpc_")
        }

    def translate(self, exc: Exception) -> RpcError | None:
        """A service's own exceptions as RPC errors (None: an internal error)."""
        return None

    def handle_payload(self, body: bytes) -> Any:
        """Answer a raw HTTP body: one request, a batch, or an error object. None = no reply."""
        self.last_request = time.monotonic()
        try:
            request = json.loads(body)
        except (ValueError, RecursionError):
            return error_response(None, -32700, "parse error")
        if isinstance(request, list):
            if not request:
                return error_response(None, -32600, "invalid request: empty batch")
            if len(request) > MAX_BATCH:
                return error_response(None, -32600, f"invalid request: batch over {MAX_BATCH}")
            replies = [self.handle_request(item) for item in request]
            replies = [r for r in replies if r is not None]
            return replies or None
        return self.handle_request(request)

    def handle_request(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict):
            return error_response(None, -32600, "invalid request: not an object")
        request_id = request.get("id")
        if not isinstance(request_id, (str, int, type(None))) or isinstance(request_id, bool):
            return error_response(None, -32600, "invalid request: bad id")
        method = request.get("method")
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return error_response(request_id, -32600, "invalid request")
        params = request.get("params", [])
        if params is None:
            params = []
        handler = self.methods.get(method)
        if handler is None:
            return error_response(request_id, -32601, f"the method {method[:100]} does not exist")
        if isinstance(params, dict):
            if method not in self.named:
                return error_response(request_id, -32602, "invalid params: must be an array")
        elif isinstance(params, list):
            most = self.arity.get(method, 0)
            if len(params) > most:
                return error_response(
                    request_id, -32602, f"invalid params: too many arguments, want at most {most}"
                )
        else:
            return error_response(request_id, -32602, "invalid params: must be an array or an object")
        try:
            with self.lock:
                result = handler(params)
        except RpcError as exc:
            return error_response(request_id, exc.code, exc.message, exc.data)
        except Exception as exc:
            translated = self.translate(exc)
            if translated is not None:
                return error_response(request_id, translated.code, translated.message, translated.data)
            log.exception("internal error in %s", method)  # a bug must not take the server down
            return error_response(request_id, -32603, f"internal error: {type(exc).__name__}: {exc}")
        if "id" not in request:
            return None  # a notification
        return {"jsonrpc": "2.0", "id": request_id, "result": result}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm
    # and the client's delayed ACK stall every keep-alive reply by about 40 ms.
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)

    def _reply(self, status: int, payload: Any) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def do_OPTIONS(self) -> None:  # noqa: N802 - CORS preflight for browser clients
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        self._reply(405, error_response(None, -32600, "use POST with a JSON-RPC body"))

    def do_POST(self) -> None:  # noqa: N802
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._reply(411, error_response(None, -32600, "Content-Length required"))
            return
        if length < 0 or length > self.server.service.max_body_bytes:
            self.close_connection = True
            self._reply(413, error_response(None, -32600, "request body too large"))
            return
        body = self.rfile.read(length)
        self._reply(200, self.server.service.handle_payload(body))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    service: Service


def serve(service: Service, host: str, port: int) -> Server:
    """Bind an HTTP JSON-RPC server for `service` (call serve_forever on it)."""
    server = Server((host, port), _Handler)
    server.service = service
    return server
