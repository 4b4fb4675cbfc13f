"""The explorer's HTTP server: the page, its JSON API and a stream of changes.

    GET /                      the page (static/index.html, app.js, style.css: no CDN, no build)
    GET /api/summary           L1 head, batches by status, proofs, freeze; the operator's status
    GET /api/batches           newest batches first (?limit=N&before=ID), with steps by type
    GET /api/batches/{id}      one batch: its steps, the proofs that reverted it
    GET /api/proofs            every fraud proof: challenger, step and type, bond slashed, batches reverted
    GET /api/markets           every market: oracle and mark prices, funding, open interest, Greeks
    GET /api/markets/{id}      one market, its order book and recent trades
    GET /api/accounts/{ref}    an account by id or L1 address: collateral, positions, margin, withdrawals
    GET /api/deployment        contracts, parameters, bonded proposers, freeze
    GET /events                server-sent events: `change` with the summary whenever it moves

L1 is read by `index.L1Index` (events and calldata: the explorer shows what L1 says); the
order books, accounts and prices come from the operator's JSON-RPC API. Without the
operator the L1 pages still answer, and the operator's pages say it is unreachable (503).
Every reply is JSON; a bad parameter is a 400 with `{"error": ...}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from ..deploy import Deployment
from ..operator.service import ERRORS
from ..sdk import ApiError, Operator
from .index import L1Index

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
MAX_STREAMS = 100
"""Open event streams at most: each holds a queue, so an unbounded number would let anyone
hold the server's memory."""
BOOK_DEPTH = 20
RECENT_TRADES = 30
NOT_FOUND = ERRORS["not_found"]


class OperatorDown(Exception):
    """The operator's API did not answer."""


class Explorer:
    """The explorer of one deployment: its L1 index, the operator's API and the web app."""

    def __init__(self, deployment: Deployment, operator_url: str | None, l1_rpc: str | None = None,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.index = L1Index(deployment, l1_rpc)
        self.operator = Operator(operator_url, timeout=5.0) if operator_url else None
        self.poll_seconds = poll_seconds
        self.clock_offset = 0
        """L1's clock minus this machine's, learnt from each new head (the countdowns)."""
        self.operator_state: dict[str, Any] | None = None
        self.version = 0
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self.app = web.Application()
        self.app.add_routes([
            web.get("/", self.page), web.get("/api/summary", self.summary), web.get("/api/batches", self.batches),
            web.get("/api/batches/{id}", self.batch), web.get("/api/proofs", self.proofs),
            web.get("/api/markets", self.markets), web.get("/api/markets/{id}", self.market),
            web.get("/api/accounts/{ref}", self.account), web.get("/api/deployment", self.deployment),
            web.get("/events", self.events), web.static("/static", STATIC),
        ])
        self.app.on_startup.append(self._start)
        self.app.on_cleanup.append(self._stop)

    # ------------------------------------------------------------------ background

    async def _start(self, app: web.Application) -> None:
        try:  # the first read before the first request is answered
            await asyncio.get_running_loop().run_in_executor(None, self._refresh)
        except Exception as exc:  # noqa: BLE001 - L1 not up yet: the poll keeps trying
            log.warning("explorer: first read of L1 failed: %s", exc)
        self._poller = asyncio.create_task(self._poll())

    async def _stop(self, app: web.Application) -> None:
        self._poller.cancel()
        for queue in list(self._listeners):
            queue.put_nowait({})  # wakes each stream to end it

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                changed = await loop.run_in_executor(None, self._refresh)
                if changed:
                    self.version += 1
                    summary = await loop.run_in_executor(None, self._summary)
                    for queue in list(self._listeners):
                        queue.put_nowait(summary)
            except Exception as exc:  # noqa: BLE001 - a node restarting: keep polling
                log.warning("explorer refresh failed: %s", exc)
            await asyncio.sleep(self.poll_seconds)

    def _refresh(self) -> bool:
        head = self.index.head["number"]
        changed = self.index.refresh()
        if self.index.head["number"] != head:
            self.clock_offset = self.index.head["timestamp"] - int(time.time())
        state, old = self._operator_status(), self.operator_state
        self.operator_state = state
        return changed or _status_key(state) != _status_key(old)

    def _operator_status(self) -> dict[str, Any] | None:
        try:
            return dict(self._call("status"))
        except OperatorDown:
            return None

    def _call(self, method: str, **params: Any) -> Any:
        return self._reach(lambda operator: operator.call(method, **params))

    def _batch(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Calls in one round trip: each one's result, or its ApiError (not raised)."""
        return list(self._reach(lambda operator: operator.batch(calls))) if calls else []

    def _reach(self, request: Callable[[Operator], Any]) -> Any:
        """A request of the operator's API; OperatorDown when there is none or it does not answer."""
        if self.operator is None:
            raise OperatorDown("no operator URL configured")
        try:
            return request(self.operator)
        except OSError as exc:
            raise OperatorDown(str(exc)) from None

    def _summary(self) -> dict[str, Any]:
        return self.index.summary() | {
            "version": self.version, "l1_now": int(time.time()) + self.clock_offset,
            "operator": self.operator_state, "challenge_window": self.index.deployment.params.get("challenge_window"),
        }

    # ------------------------------------------------------------------ handlers

    async def _run(self, function: Callable[..., Any], *args: Any) -> web.Response:
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, function, *args)
        except OperatorDown as exc:
            return web.json_response({"error": f"the operator is unreachable: {exc}"}, status=503)
        except ApiError as exc:
            return web.json_response({"error": exc.message}, status=404 if exc.code == NOT_FOUND else 400)
        if result is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(result)

    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def summary(self, request: web.Request) -> web.Response:
        return await self._run(self._summary)

    async def batches(self, request: web.Request) -> web.Response:
        try:
            limit = _int(request.query.get("limit", "50"), "limit", 1, 500)
            before = request.query.get("before")
            before_id = None if before is None else _int(before, "before", 0, 2**63)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return await self._run(self.index.batch_list, limit, before_id)

    async def batch(self, request: web.Request) -> web.Response:
        try:
            batch_id = _int(request.match_info["id"], "batch id", 0, 2**63)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return await self._run(self.index.batch, batch_id)

    async def proofs(self, request: web.Request) -> web.Response:
        return await self._run(self.index.proof_list)

    async def deployment(self, request: web.Request) -> web.Response:
        return await self._run(self.index.deployment_view)

    async def markets(self, request: web.Request) -> web.Response:
        return await self._run(self._markets)

    async def market(self, request: web.Request) -> web.Response:
        try:
            market_id = _int(request.match_info["id"], "market id", 0, 255)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return await self._run(self._market, market_id)

    async def account(self, request: web.Request) -> web.Response:
        ref = request.match_info["ref"]
        try:
            if ref.lower().startswith("0x"):
                if len(ref) != 42 or any(c not in "0123456789abcdefABCDEF" for c in ref[2:]):
                    raise ValueError("an address is 0x and 40 hex digits")
                account_id: int | str = ref
            else:
                account_id = _int(ref, "account", 0, 2**32 - 1)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return await self._run(self._account, account_id)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the summary at once, then at every change (a comment every
        KEEPALIVE_SECONDS keeps proxies from closing an idle stream). Beyond MAX_STREAMS
        open streams, a 503."""
        if len(self._listeners) >= MAX_STREAMS:
            return web.json_response({"error": f"too many event streams (at most {MAX_STREAMS})"}, status=503)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            summary = await asyncio.get_running_loop().run_in_executor(None, self._summary)
            await response.write(_sse(summary))
            while True:
                try:
                    summary = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if not summary:
                    break
                await response.write(_sse(summary))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._listeners.discard(queue)
        return response

    # ------------------------------------------------------------------ operator views

    def _markets(self) -> list[dict[str, Any]]:
        markets = list(self._call("markets"))
        last = self._batch([("trades", {"market": m["id"], "limit": 1}) for m in markets])
        for m, trades in zip(markets, last, strict=True):
            m["last_trade"] = trades[0] if isinstance(trades, list) and trades else None
            m["mark_price"] = mark_price(m)
        return markets

    def _market(self, market_id: int) -> dict[str, Any] | None:
        markets = {m["id"]: m for m in self._markets()}
        if market_id not in markets:
            return None
        book = self._call("book", market=market_id, depth=BOOK_DEPTH)
        trades = self._call("trades", market=market_id, limit=RECENT_TRADES)
        return {"market": markets[market_id], "book": book, "trades": trades,
                "symbols": {m["id"]: m["symbol"] for m in markets.values()}}

    def _account(self, ref: int | str) -> dict[str, Any] | None:
        if isinstance(ref, str):
            found = self.index.account_of(ref)
            if found is None:
                try:
                    found = int(self._call("account_of", owner=ref)["account"])
                except ApiError:
                    return None
            ref = found
        info = dict(self._call("account", account=ref))
        activity = self.index.account_activity(ref)
        proofs = self._batch([("withdrawal_proof", {"index": w["index"]}) for w in info["withdrawals"]])
        for w, proof in zip(info["withdrawals"], proofs, strict=True):
            claim = activity["claims"].get(w["index"])
            if claim is not None:
                w["status"], w["claim"] = "claimed", claim
            elif isinstance(proof, dict):
                w["status"], w["batch"] = "claimable", proof["batch"]
            else:
                w["status"] = "awaiting finality"
        markets = {m["id"]: m for m in self._call("markets")}
        for p in info["positions"]:
            m = markets.get(p["market"], {})
            p["symbol"] = m.get("symbol", str(p["market"]))
            p["price"], p["lot"] = m.get("price"), m.get("lot")
            p["notional"] = p["size"] * (m.get("price") or 0)
            p["delta"] = p["size"] * m.get("delta", 1_000_000)
        info["deposits"] = activity["deposits"]
        info["forced"] = activity["forced"]
        info["escapes"] = activity["escapes"]
        info["symbols"] = {m["id"]: m["symbol"] for m in markets.values()}
        info["lots"] = {m["id"]: m["lot"] for m in markets.values()}
        return info


def mark_price(market: dict[str, Any]) -> int | None:
    """The mark price the explorer shows: the book's mid when both sides quote, else the
    last trade, else the oracle price (the STF margins on the oracle price: docs/spec.md)."""
    bid, ask = market.get("best_bid"), market.get("best_ask")
    if bid is not None and ask is not None:
        return (int(bid) + int(ask)) // 2
    if market.get("last_trade"):
        return int(market["last_trade"]["price"])
    return market.get("price")


def _status_key(status: dict[str, Any] | None) -> Any:
    """What of the operator's status the page shows moving: its root, its batches, its open batch."""
    if status is None:
        return None
    return status["state_root"], json.dumps(status["batches"], sort_keys=True), status["open_batch_txs"]


def _int(text: str, name: str, low: int, high: int) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise ValueError(f"{name} must be a decimal integer") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be within {low}..{high}")
    return value


def _sse(data: dict[str, Any]) -> bytes:
    return f"event: change\ndata: {json.dumps(data)}\n\n".encode()


def serve(explorer: Explorer, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM."""
    web.run_app(explorer.app, host=host, port=port, print=None, access_log=None)
