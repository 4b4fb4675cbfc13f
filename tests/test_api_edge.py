"""The operator's API edge, against a real operator process: kept-alive HTTP connections,
JSON-RPC batches, and the WebSocket endpoint with its book and trades feeds; malformed
input on each transport gets an error and the server keeps serving."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any

from websockets.sync.client import connect

from rollup.sdk import ApiError, Operator, OperatorStream
from tests.test_operator import funded_traders, setup  # noqa: F401  (the module fixture)

REQUESTS = 200


def test_one_kept_alive_connection_serves_every_request(setup: dict[str, Any]) -> None:  # noqa: F811
    parts = urllib.parse.urlsplit(setup["operator"].url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    sockets = set()
    for i in range(REQUESTS):
        body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "status", "params": []})
        connection.request("POST", "/", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["id"] == i
        sockets.add(id(connection.sock))
    assert len(sockets) == 1  # never reconnected
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 405 and "error" in json.loads(response.read())
    connection.request("POST", "/", b"x" * (2 * 1024 * 1024), {"Content-Type": "application/json"})
    assert connection.getresponse().status == 413
    connection.close()


def test_a_batch_is_answered_in_order_with_each_error_in_place(setup: dict[str, Any]) -> None:  # noqa: F811
    operator: Operator = setup["operator"]
    alice, _ = funded_traders(setup)
    answers = operator.batch([("status", {}), ("book", {"market": 99}), ("account", {"account": alice.account}),
                              ("no_such_method", {}), ("markets", {})])
    assert len(answers) == 5
    assert answers[0]["chain_id"] == setup["deployment"].chain_id
    assert isinstance(answers[1], ApiError) and answers[1].code == 1004
    assert answers[2]["account"] == alice.account
    assert isinstance(answers[3], ApiError) and answers[3].code == -32601
    assert [m["id"] for m in answers[4]] == [0, 1]


def test_websocket_calls_and_feeds(setup: dict[str, Any]) -> None:  # noqa: F811
    operator: Operator = setup["operator"]
    alice, bob = funded_traders(setup)
    with OperatorStream(operator.url, timeout=10) as stream:
        assert stream.call("status")["chain_id"] == setup["deployment"].chain_id
        try:
            stream.call("book", market=99)
            raise AssertionError("an unknown market was answered")
        except ApiError as exc:
            assert exc.code == 1004
        book_feed = stream.subscribe("book", market=0, depth=5)
        trade_feed = stream.subscribe("trades", market=0)
        first = next(r for s, r in stream.notifications(timeout=5) if s == book_feed)
        assert first["market"] == 0  # the present book
        resting = alice.order(0, "buy", 7, 299_000)
        seen = wait_book(stream, book_feed, lambda book: [299_000, 7, 1] in book["bids"])
        assert seen
        bob.order(0, "sell", 7, 299_000, "ioc")
        trades = []
        for subscription, result in stream.notifications(timeout=5):
            if subscription == trade_feed:
                trades += result
            if any(t["maker_order"] == resting["id"] for t in trades):
                break
        assert any(t["maker_order"] == resting["id"] and t["size"] == 7 and t["price"] == 299_000 for t in trades)
        assert stream.unsubscribe(book_feed) is True
        assert stream.unsubscribe(book_feed) is False
        try:
            stream.subscribe("book", market=99)
            raise AssertionError("a feed of an unknown market was accepted")
        except ApiError as exc:
            assert exc.code == 1004


def wait_book(stream: OperatorStream, feed: int, predicate: Any) -> bool:
    for subscription, result in stream.notifications(timeout=5):
        if subscription == feed and predicate(result):
            return True
    return False


def test_malformed_websocket_messages_get_errors(setup: dict[str, Any]) -> None:  # noqa: F811
    parts = urllib.parse.urlsplit(setup["operator"].url)
    malformed: list[tuple[str | bytes, int]] = [
        (b"{", -32700), ("[]", -32600), ('{"jsonrpc": "2.0", "id": 1, "method": "nope"}', -32601),
        ('{"jsonrpc": "2.0", "id": 2, "method": "subscribe", "params": {"channel": "x"}}', -32602),
        ('{"jsonrpc": "2.0", "id": 3, "method": "subscribe", "params": {"channel": "book", "market": -1}}', -32602),
        ('[{"jsonrpc": "2.0", "id": 4, "method": "subscribe", "params": {}}]', -32600),
        ('{"jsonrpc": "2.0", "id": 5, "method": "unsubscribe", "params": {"subscription": "x"}}', -32602),
    ]
    with connect(f"ws://{parts.netloc}/ws", open_timeout=10) as ws:
        for message, code in malformed:
            ws.send(message)
            reply = json.loads(ws.recv(timeout=10))
            assert reply["error"]["code"] == code, (message, reply)
        ws.send('[{"jsonrpc": "2.0", "id": 7, "method": "status"}, {"jsonrpc": "2.0", "id": 8, "method": "markets"}]')
        replies = json.loads(ws.recv(timeout=10))
        assert [r["id"] for r in replies] == [7, 8] and all("result" in r for r in replies)
