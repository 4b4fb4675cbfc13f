"""Wire formats of the operator's API shared by the operator and its clients."""

from __future__ import annotations

from typing import Any

from .stf.transactions import Order


def order_json(order: Order) -> dict[str, Any]:
    """An order as the API carries it: {account, market, side, size, price, max_fee_ppm, nonce, expiry}."""
    return {"account": order.account, "market": order.market, "side": "buy" if order.is_buy else "sell",
            "size": order.size, "price": order.limit_price, "max_fee_ppm": order.max_fee_ppm,
            "nonce": order.nonce, "expiry": order.expiry}


ORDER_ID_SPACE = 10**12
"""Order ids are unique across markets: market * ORDER_ID_SPACE + the order's number in
its market's book (books number their orders from 1, never reusing a number)."""


def order_id(market: int, book_id: int) -> int:
    """The API's id of order `book_id` of `market`'s book."""
    return market * ORDER_ID_SPACE + book_id


def book_id_of(order_id: int) -> int:
    """The number, in its market's book, of the order with API id `order_id`."""
    return order_id % ORDER_ID_SPACE
