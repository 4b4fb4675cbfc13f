"""The operator's API edge: JSON-RPC 2.0 over HTTP and over WebSockets, with live feeds.

Served by aiohttp (its HTTP parser is C; one event loop serves every connection, so a
request costs no thread hand-off). The rules of `rollup.jsonrpc` hold on both
transports: every request is answered, malformed input gets an error object.

    POST /      one JSON-RPC request or a batch (an array of up to 1,000); connections
                are kept alive between requests (HTTP/1.1)
    GET  /ws    a WebSocket: each message is a request or a batch, answered in order; and
                two feeds, as in Ethereum's eth_subscribe:
                  subscribe {"channel": "book", "market": m, "depth": d}  -> subscription id
                  subscribe {"channel": "trades", "market": m}            -> subscription id
                  unsubscribe {"subscription": id}                        -> true
                then {"jsonrpc": "2.0", "method": "subscription",
                      "params": {"subscription": id, "result": ...}}
                whenever the book changes (its `book` answer) or trades happen (their
                `trades` rows, oldest first); the first notification is the present
    OPTIONS /   CORS preflight; GET / is refused with an error object

The service's methods run on the event loop thread, under the service's lock, which the
operator's background loop holds only to change the head (never across an L1 request).
Replies wait for their writes to be durable: the loop is the store's grouping thread
(`Store.group_commits`), and the writes of all the requests handled in one turn of the
loop are committed together at the start of the next, before any of them is answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from ..jsonrpc import RpcError, Service, error_response, invalid

log = logging.getLogger("rollup.operator.edge")

FEED_INTERVAL = 0.05
"""Seconds between two looks at the subscribed books and trades."""
MAX_SUBSCRIPTIONS = 64
"""Most feeds one WebSocket may hold."""
NOT_STORED = error_response(None, -32603, "internal error: the writes could not be stored")
"""The answer to requests whose writes the store could not commit."""


@dataclass
class Feed:
    channel: str
    market: int
    depth: int = 10
    last: Any = None
    """The book last sent, or the newest trade's seq sent."""


@dataclass(eq=False)
class Socket:
    ws: web.WebSocketResponse
    feeds: dict[int, Feed] = field(default_factory=dict)


class Edge:
    """An aiohttp application over a JSON-RPC service that has `rpc_book` and `rpc_trades`."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.store: Any = getattr(service, "store", None)
        """The service's store, if it has one: its writes are committed in groups."""
        self._commit: asyncio.Future[None] | None = None
        self.sockets: set[Socket] = set()
        self._ids = 0
        self.app = web.Application(client_max_size=service.max_body_bytes)
        self.app.router.add_post("/", self.http)
        self.app.router.add_get("/", self.get)
        self.app.router.add_route("OPTIONS", "/", self.options)
        self.app.router.add_get("/ws", self.websocket)
        self.app.on_startup.append(self._start_feeds)
        self.app.on_shutdown.append(self._close_sockets)

    # ------------------------------------------------------------------ HTTP

    @staticmethod
    def _json(payload: Any, status: int = 200) -> web.Response:
        return web.Response(body=b"" if payload is None else json.dumps(payload).encode(), status=status,
                            content_type="application/json", headers={"Access-Control-Allow-Origin": "*"})

    async def http(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._json(error_response(None, -32600, "request body too large"), 413)
        reply = self.service.handle_payload(body)
        if not await self._durable():
            return self._json(NOT_STORED, 500)
        return self._json(reply)

    # ------------------------------------------------------------------ group commit

    async def _durable(self) -> bool:
        """Return once every write made so far is committed (one commit per turn of the
        loop, shared by all the requests handled in that turn): whether it could be."""
        if self.store is None or not self.store.uncommitted:
            return True
        if self._commit is None:
            loop = asyncio.get_running_loop()
            self._commit = loop.create_future()
            loop.call_soon(self._commit_group)
        try:
            await asyncio.shield(self._commit)
        except Exception:  # (logged once, by _commit_group)
            return False
        return True

    def _commit_group(self) -> None:
        future, self._commit = self._commit, None
        assert future is not None
        try:
            self.store.commit()
        except Exception as exc:  # noqa: BLE001 - every waiting request is told
            log.exception("committing the requests' writes failed")
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
        else:
            future.set_result(None)

    async def get(self, request: web.Request) -> web.Response:
        return self._json(error_response(None, -32600, "use POST with a JSON-RPC body, or a WebSocket at /ws"), 405)

    async def options(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"Access-Control-Allow-Origin": "*",
                                                 "Access-Control-Allow-Methods": "POST, OPTIONS",
                                                 "Access-Control-Allow-Headers": "Content-Type"})

    # ------------------------------------------------------------------ WebSocket

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=self.service.max_body_bytes, heartbeat=30)
        await ws.prepare(request)
        socket = Socket(ws)
        self.sockets.add(socket)
        try:
            async for message in ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    data = message.data.encode() if message.type == WSMsgType.TEXT else message.data
                    reply = self._ws_payload(socket, data)
                    if not await self._durable():
                        reply = NOT_STORED
                    if reply is not None:
                        await ws.send_str(json.dumps(reply))
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self.sockets.discard(socket)
        return ws

    def _ws_payload(self, socket: Socket, body: bytes) -> Any:
        """A request or batch from a WebSocket: the feed methods here, the rest to the service."""
        try:
            request = json.loads(body)
        except (ValueError, RecursionError):
            return error_response(None, -32700, "parse error")
        if isinstance(request, dict) and request.get("method") in ("subscribe", "unsubscribe"):
            return self._feed_request(socket, request)
        if isinstance(request, list) and any(isinstance(r, dict) and r.get("method") in ("subscribe", "unsubscribe")
                                             for r in request):
            return error_response(None, -32600, "invalid request: subscribe and unsubscribe cannot be batched")
        return self.service.handle_payload(body)

    def _feed_request(self, socket: Socket, request: dict[str, Any]) -> dict[str, Any]:
        request_id = request.get("id")
        if request.get("jsonrpc") != "2.0" or not isinstance(request_id, (int, str)) or isinstance(request_id, bool):
            return error_response(request_id if isinstance(request_id, (int, str)) else None, -32600,
                                  "invalid request")
        params = request.get("params", {})
        if isinstance(params, list):
            params = params[0] if len(params) == 1 and isinstance(params[0], dict) else {}
        try:
            if not isinstance(params, dict):
                raise invalid("params must be an object")
            if request["method"] == "unsubscribe":
                result: Any = socket.feeds.pop(_integer(params.get("subscription"), "subscription"), None) is not None
            else:
                result = self._subscribe(socket, params)
        except RpcError as exc:
            return error_response(request_id, exc.code, exc.message, exc.data)
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    def _subscribe(self, socket: Socket, params: dict[str, Any]) -> int:
        channel = params.get("channel")
        if channel not in ("book", "trades"):
            raise invalid("channel must be 'book' or 'trades'")
        if len(socket.feeds) >= MAX_SUBSCRIPTIONS:
            raise invalid(f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        market = _integer(params.get("market"), "market")
        depth = _integer(params.get("depth", 10), "depth")
        if channel == "book":
            self._call("book", [market, depth])  # refuses unknown markets and bad depths
        else:
            self._call("trades", [market, 1])
        self._ids += 1
        socket.feeds[self._ids] = Feed(channel, market, depth)
        return self._ids

    def _call(self, method: str, params: list[Any]) -> Any:
        with self.service.lock:
            return self.service.methods[method](params)

    # ------------------------------------------------------------------ feeds

    async def _start_feeds(self, app: web.Application) -> None:
        if self.store is not None:
            self.store.group_commits(threading.get_ident())  # this loop's requests commit in groups
        app["feeds"] = asyncio.get_running_loop().create_task(self._feeds())

    async def _close_sockets(self, app: web.Application) -> None:
        app["feeds"].cancel()
        for socket in list(self.sockets):
            await socket.ws.close()
        if self.store is not None:
            self.store.group_commits(None)  # commits what is open

    async def _feeds(self) -> None:
        """Every FEED_INTERVAL, send each feed what changed since it last sent."""
        while True:
            await asyncio.sleep(FEED_INTERVAL)
            try:
                await self._feed_once()
            except Exception:  # a feed must never stop the others
                log.exception("feeds failed")

    async def _feed_once(self) -> None:
        books: dict[tuple[int, int], Any] = {}
        trades: dict[int, list[dict[str, Any]]] = {}
        for socket in list(self.sockets):
            for sub_id, feed in list(socket.feeds.items()):
                if feed.channel == "book":
                    key = (feed.market, feed.depth)
                    if key not in books:
                        books[key] = self._call("book", [feed.market, feed.depth])
                    result: Any = books[key]
                    if result == feed.last:
                        continue
                    feed.last = result
                else:
                    if feed.market not in trades:
                        trades[feed.market] = self._call("trades", [feed.market, 1000])
                    newest = trades[feed.market]
                    if feed.last is None:  # the present: the newest trade
                        result = newest[:1]
                    else:
                        result = [t for t in reversed(newest) if t["seq"] > feed.last]
                    if not result:
                        feed.last = feed.last if feed.last is not None else 0
                        continue
                    feed.last = max(t["seq"] for t in result)
                if socket.ws.closed:
                    break
                await socket.ws.send_str(json.dumps({"jsonrpc": "2.0", "method": "subscription",
                                                     "params": {"subscription": sub_id, "result": result}}))


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(f"{name} must be a non-negative integer")
    return value


class EdgeServer:
    """The edge served on its own thread (its own event loop): `start`, then `shutdown`."""

    def __init__(self, service: Service, host: str, port: int) -> None:
        self.edge = Edge(service)
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(self.edge.app, access_log=None, handle_signals=False)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="api-edge", daemon=True)

    def start(self) -> EdgeServer:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
            self._loop.run_until_complete(site.start())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def shutdown(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
