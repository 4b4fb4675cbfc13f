"""Wire formats of the operator's API shared by the operator and its clients."""

from __future__ import annotations

from typing import Any

from .stf.transactions import Order


def order_json(order: Order) -> dict[str, Any]:
    """An order as the API carries it: {account, market, side, size, price, max_fee_ppm, nonce, expiry}."""
    return {"account": order.account, "market": order.market, "side": "buy" if order.is_buy else "sell",
            "size": order.size, "price": order.limit_price, "max_fee_ppm": order.max_fee_ppm,
            "nonce": order.nonce, "expiry": order.expiry}
