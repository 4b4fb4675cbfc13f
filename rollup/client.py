"""`rollup client`: a trader's command line over the operator's API and the L1 bridge.

    rollup client deposit AMOUNT [--no-wait] [--timeout S]   approve + deposit on L1, wait until credited
    rollup client order MARKET SIDE SIZE PRICE [--kind limit|ioc|post_only] [--expiry S] [--max-fee-ppm N]
    rollup client cancel NONCE                               cancel the order signed with NONCE
    rollup client account                                    collateral, positions, orders, withdrawals
    rollup client book MARKET [--depth N]                    price levels of a market
    rollup client trades MARKET [--limit N]                  recent trades, newest first
    rollup client withdraw AMOUNT                            a signed Withdraw; prints its index
    rollup client claim [INDEX] [--wait] [--timeout S]       pay a final withdrawal out on L1
    rollup client batches [--limit N] [--from auto|l1|operator]   batches and their L1 status
    rollup client status                                     operator, L1 and your account at a glance

AMOUNT is in USD (collateral has 6 decimals: `12.5` is 12,500,000 units). MARKET is a
symbol (ETH-USD, or just ETH) or a market id. SIZE is in lots and PRICE in collateral
units per lot (ETH-USD: a lot is 0.0001 ETH, so 3,000 USD/ETH is a price of 300000).
`--expiry S` makes an order expire S seconds from the rollup's current time.

Options (before or after the sub-command):
    --deployment FILE     deployment file (default .devnet/deployment.json)
    --operator-url URL    default: `operator_url` of endpoints.json beside the deployment
                          file (the devnet writes it), else http://127.0.0.1:8550
    --l1-rpc URL          default: the deployment file's `l1_rpc` (or endpoints.json's)
    --key HEX             your private key (default: $ROLLUP_KEY, else dev account 1 of the
                          well-known mnemonic `test ... junk`: dev keys are for the devnet only,
                          never use them on a real chain)
    --json                machine-readable output (amounts in integer collateral units)

Every failure prints one line to stderr and exits with status 1 (2 for a usage error).
Also runnable as `python -m rollup.client ...`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import urllib.error
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

DEFAULT_DEPLOYMENT = ".devnet/deployment.json"
DEFAULT_OPERATOR_URL = "http://127.0.0.1:8550"
DEFAULT_L1_RPC = "http://127.0.0.1:8545"
UNIT = 10**6
"""Collateral units per USD (a 6-decimal stablecoin)."""
NO_EXPIRY = 2**32 - 1
"""An order that never expires: transactions.ORDER_NO_EXPIRY (the widest an order carries)."""
DEV_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
"""The default key: dev account 1 of the well-known mnemonic `test test ... junk`, i.e.
`rollup.l1.chain.dev_accounts(2)[1]` (written out: deriving it loads the whole EVM).
Public knowledge: for the devnet only."""
OPERATOR_STATUS = {"open": "pending", "cut": "pending", "posted": "pending", "final": "final", "reverted": "reverted"}
"""The operator's batch statuses as L1's: a batch not final nor reverted is pending."""


class ClientError(Exception):
    """A failure to report on one line."""


# ---------------------------------------------------------------------- formatting


def usd(units: int | None) -> str:
    """Collateral units as USD with 6 decimals: 1234500000 -> '1,234.500000'."""
    if units is None:
        return "?"
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(int(units)), UNIT)
    return f"{sign}{whole:,}.{frac:06d}"


def parse_usd(text: str) -> int:
    """A USD amount (at most 6 decimals, positive) as collateral units."""
    try:
        value = Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise ClientError(f"invalid amount {text!r}: give USD, e.g. 100 or 12.5") from None
    units = value * UNIT
    if not value.is_finite() or units != units.to_integral_value():
        raise ClientError(f"invalid amount {text!r}: at most 6 decimals")
    if units <= 0:
        raise ClientError(f"invalid amount {text!r}: must be positive")
    return int(units)


def when(timestamp: int | None) -> str:
    if not timestamp:
        return "-"
    return datetime.datetime.fromtimestamp(int(timestamp), datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: list[str], rows: list[list[Any]], indent: str = "  ") -> str:
    """A plain text table; columns whose header starts with '>' are right-aligned."""
    align_right = [h.startswith(">") for h in headers]
    names = [h.lstrip(">") for h in headers]
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]

    def line(values: list[str]) -> str:
        return indent + "  ".join(v.rjust(w) if right else v.ljust(w)
                                  for v, w, right in zip(values, widths, align_right, strict=True)).rstrip()

    return "\n".join([line(names)] + [line(r) for r in cells])


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


# ---------------------------------------------------------------------- connections


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read {path}: {exc}") from None


class Client:
    """What a command needs, opened on first use: the deployment, the operator, L1, the key."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.deployment_path = Path(args.deployment or DEFAULT_DEPLOYMENT)
        self.endpoints = _read_json(self.deployment_path.parent / "endpoints.json") or {}
        self.operator_url = str(args.operator_url or self.endpoints.get("operator_url") or DEFAULT_OPERATOR_URL)
        self._deployment: Any = None
        self._operator: Any = None
        self._markets: list[dict[str, Any]] | None = None
        self._chain: Any = None
        self._trader: Any = None
        self._account: int | None = None

    # --- configuration

    @property
    def deployment(self) -> Any:
        if self._deployment is None:
            from .deploy import Deployment

            data = _read_json(self.deployment_path)
            if data is None:
                raise ClientError(f"no deployment file at {self.deployment_path} — is the devnet running? "
                                  "(or pass --deployment FILE)")
            try:
                self._deployment = Deployment.from_json(data)
            except (KeyError, TypeError, ValueError) as exc:
                raise ClientError(f"{self.deployment_path} is not a deployment file: {exc!r}") from None
        return self._deployment

    @property
    def l1_url(self) -> str:
        if self.args.l1_rpc:
            return str(self.args.l1_rpc)
        if self._deployment is not None or self.deployment_path.exists():
            return str(self.deployment.l1_rpc)
        return str(self.endpoints.get("l1_rpc") or DEFAULT_L1_RPC)

    @property
    def key(self) -> str:
        key = self.args.key or os.environ.get("ROLLUP_KEY")
        if not key:
            return DEV_KEY_1
        key = key.strip()
        try:
            raw = bytes.fromhex(key[2:] if key.startswith("0x") else key)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise ClientError("invalid key: give 32 bytes of hex (--key or ROLLUP_KEY)")
        return "0x" + raw.hex()

    # --- services

    @property
    def operator(self) -> Any:
        if self._operator is None:
            from .sdk import Operator

            self._operator = Operator(self.operator_url, timeout=30.0)
        return self._operator

    def call(self, method: str, **params: Any) -> Any:
        return self.operator.call(method, **params)

    @property
    def chain(self) -> Any:
        """The Rollup and Bridge contracts, sending with the client's key."""
        if self._chain is None:
            from .l1.client import L1
            from .l1.rollup_client import RollupL1

            self._chain = RollupL1(L1(self.l1_url, self.key), self.deployment)
        return self._chain

    @property
    def address(self) -> str:
        from eth_utils import to_checksum_address

        from .stf.signing import address_of

        return str(to_checksum_address(address_of(bytes.fromhex(self.key[2:]))))

    @property
    def trader(self) -> Any:
        """The SDK's signer for the client's account (which must exist)."""
        if self._trader is None:
            from .sdk import Trader

            self._trader = Trader.from_deployment(self.operator, self.key, self.deployment)
            self._trader._account = self.account_id()
        return self._trader

    def account_id(self) -> int:
        """The client's L2 account (an error naming the address when it has none)."""
        from .sdk import NOT_FOUND, ApiError

        if self._account is None:
            try:
                self._account = int(self.call("account_of", owner=self.address)["account"])
            except ApiError as exc:
                if exc.code == NOT_FOUND:
                    raise ClientError(f"no L2 account for {self.address} yet: deposit first "
                                      "(rollup client deposit AMOUNT)") from None
                raise
        return self._account

    # --- markets

    @property
    def markets(self) -> list[dict[str, Any]]:
        if self._markets is None:
            self._markets = list(self.call("markets"))
        return self._markets

    def market(self, text: str) -> dict[str, Any]:
        """A market by symbol (ETH-USD, ETH-27DEC26-3000-C), a perpetual's base asset (ETH)
        or id (0)."""
        wanted = text.strip().upper()
        for m in self.markets:
            symbol = str(m["symbol"]).upper()
            base = symbol.split("-")[0] if m.get("product", "perpetual") == "perpetual" else symbol
            if wanted in (str(m["id"]), symbol, base):
                return m
        known = ", ".join(f"{m['symbol']} ({m['id']})" for m in self.markets)
        raise ClientError(f"unknown market {text!r} (markets: {known})")

    def symbol(self, market_id: int) -> str:
        for m in self.markets:
            if m["id"] == market_id:
                return str(m["symbol"])
        return f"M{market_id}"


# ---------------------------------------------------------------------- commands


def cmd_deposit(c: Client, args: argparse.Namespace) -> None:
    from .sdk import deposit, wait_credited

    amount = parse_usd(args.amount)
    if not args.no_wait:
        c.call("status")  # is the operator there before money moves?
    chain = c.chain
    balance = int(chain.token.functions.balanceOf(chain.l1.address).call())
    if balance < amount:
        raise ClientError(f"insufficient collateral on L1: {chain.l1.address} holds {usd(balance)} USD, "
                          f"the deposit needs {usd(amount)} USD")
    done = deposit(chain, amount)
    result: dict[str, Any] = {**done, "credited": False}
    lines = [f"deposited {usd(done['amount'])} USD on L1 for {done['owner']}: deposit #{done['index']}, "
             f"L2 account {done['account']} (tx {done['tx']})"]
    if not args.no_wait:
        try:
            wait_credited(c.operator, done["index"], args.timeout)
        except TimeoutError as exc:
            raise ClientError(f"{exc} (the deposit is on L1; it stays queued for the operator)") from None
        info = c.call("account", account=done["account"])
        result.update(credited=True, collateral=int(info["collateral"]))
        lines.append(f"credited by the operator: collateral {usd(info['collateral'])} USD")
    emit(args, result, "\n".join(lines))


def cmd_order(c: Client, args: argparse.Namespace) -> None:
    from .api import order_json

    market = c.market(args.market)
    expiry = NO_EXPIRY if args.expiry is None else int(c.call("status")["time"]) + args.expiry
    order, signature = c.trader.sign_order(market["id"], args.side, args.size, args.price,
                                           expiry=expiry, max_fee_ppm=args.max_fee_ppm)
    result = c.call("submit_order", order=order_json(order), signature=signature, kind=args.kind)
    result = {**result, "nonce": order.nonce, "order": order_json(order), "kind": args.kind,
              "symbol": market["symbol"]}
    sym = market["symbol"]
    lines = [f"order {result['id']} (nonce {order.nonce}) {result['status']}: {args.kind} {args.side} "
             f"{args.size} {sym} @ {args.price}; filled {result['filled']}, resting {result['remaining']}"]
    for fill in result["fills"]:
        lines.append(f"  fill {fill['size']} @ {fill['price']} {sym} against order {fill['maker_order']}")
    if result["status"] == "resting":
        lines.append(f"cancel with: rollup client cancel {order.nonce}")
    emit(args, result, "\n".join(lines))


def cmd_cancel(c: Client, args: argparse.Namespace) -> None:
    result = c.trader.cancel(args.nonce)
    if result.get("cancelled") is not None:
        text = f"cancelled order {result['cancelled']} (nonce {args.nonce})"
    else:
        text = f"nonce {args.nonce} cancelled (no resting order had it)"
    emit(args, result, text)


def _l1_extras(c: Client, info: dict[str, Any]) -> dict[str, Any]:
    """The account's L1 side, best effort: wallet balance, which withdrawals are claimed."""
    try:
        chain = c.chain
        wallet = int(chain.token.functions.balanceOf(chain.l1.address).call())
        claimed = {w["index"]: bool(chain.bridge.functions.claimed(w["index"]).call()) for w in info["withdrawals"]}
        return {"wallet": wallet, "claimed": claimed}
    except Exception:  # noqa: BLE001 - the account itself is the operator's answer
        return {"wallet": None, "claimed": {}}


def cmd_account(c: Client, args: argparse.Namespace) -> None:
    info = dict(c.call("account", account=c.account_id()))
    extras = _l1_extras(c, info)
    info["address"] = c.address
    info["wallet"] = extras["wallet"]
    info["withdrawals"] = [{**w, "claimed": extras["claimed"].get(w["index"])} for w in info["withdrawals"]]
    prices = {m["id"]: m["price"] for m in c.markets}
    for p in info["positions"]:
        p["symbol"] = c.symbol(p["market"])
        p["mark_price"] = prices.get(p["market"])
        p["notional"] = p["size"] * (p["mark_price"] or 0)
    lines = [
        f"address     {info['address']}",
        f"account     {info['account']}",
        f"collateral  {usd(info['collateral'])} USD",
        f"value       {usd(info['value'])} USD (collateral + unrealised PnL and funding)",
        f"margin      initial {usd(info['initial_requirement'])} USD, maintenance "
        f"{usd(info['maintenance_requirement'])} USD",
        f"L1 wallet   {usd(info['wallet'])} USD" if info["wallet"] is not None else "L1 wallet   (L1 not reachable)",
    ]
    greeks = {m["id"]: (m.get("delta", 1_000_000), m.get("gamma", 0), m.get("vega", 0)) for m in c.markets}
    for p in info["positions"]:
        delta, gamma, vega = greeks.get(p["market"], (1_000_000, 0, 0))
        p["delta"], p["gamma"], p["vega"] = p["size"] * delta, p["size"] * gamma, p["size"] * vega
    if info["positions"]:
        lines += ["positions (delta in lots of the underlying; gamma, vega in collateral units)", table(
            ["market", "side", ">size (lots)", ">mark price", ">notional USD", ">delta", ">gamma", ">vega"],
            [[p["symbol"], "long" if p["size"] > 0 else "short", abs(p["size"]), p["mark_price"], usd(p["notional"]),
              f"{p['delta'] / 1_000_000:+.2f}", p["gamma"], p["vega"]] for p in info["positions"]])]
    else:
        lines.append("positions   none")
    if info.get("portfolio"):
        lines += ["portfolio margin by underlying (worst of 21 scenarios: price move x volatility move)", table(
            ["underlying", ">net delta", ">net gamma", ">net vega", ">worst move", ">vol move", ">loss USD",
             ">floors USD", ">maintenance USD"],
            [[c.symbol(u["underlying"]), f"{u['delta'] / 1_000_000:+.2f}", u["gamma"], u["vega"],
              f"{u['worst_price_move_ppm'] / 10_000:+.2f}%", f"{u['worst_vol_move_ppm'] / 10_000:+.1f} pts",
              usd(u["worst_loss"]), usd(u["floors"]), usd(u["maintenance_requirement"])] for u in info["portfolio"]])]
    if info["open_orders"]:
        lines += ["open orders", table(
            [">id", ">nonce", "market", "side", ">size", ">remaining", ">price", "expires"],
            [[o["id"], o["nonce"], c.symbol(o["market"]), o["side"], o["size"], o["remaining"], o["price"],
              "never" if o["expiry"] >= NO_EXPIRY else when(o["expiry"])] for o in info["open_orders"]])]
    else:
        lines.append("open orders none")
    if info["withdrawals"]:
        lines += ["withdrawals", table(
            [">index", ">amount USD", "claimed on L1"],
            [[w["index"], usd(w["amount"]), {True: "yes", False: "no", None: "?"}[w["claimed"]]]
             for w in info["withdrawals"]])]
    emit(args, info, "\n".join(lines))


def cmd_book(c: Client, args: argparse.Namespace) -> None:
    market = c.market(args.market)
    book = dict(c.call("book", market=market["id"], depth=args.depth))
    book["symbol"] = market["symbol"]
    lot = market.get("lot")
    base = market["symbol"].split("-")[0]
    lines = [f"{market['symbol']} (market {market['id']}): prices in collateral units per lot"
             + (f" of {lot} {base}" if lot else "") + f"; oracle price {market['price'] or 'none yet'}"]
    if not book["bids"] and not book["asks"]:
        lines.append("  (empty book)")
    else:
        rows = [["ask", price, size, orders] for price, size, orders in reversed(book["asks"])]
        rows += [["bid", price, size, orders] for price, size, orders in book["bids"]]
        lines.append(table(["side", ">price", ">size (lots)", ">orders"], rows))
        if book["bids"] and book["asks"]:
            lines.append(f"  spread {book['asks'][0][0] - book['bids'][0][0]}")
    emit(args, book, "\n".join(lines))


def cmd_trades(c: Client, args: argparse.Namespace) -> None:
    market = c.market(args.market)
    trades = list(c.call("trades", market=market["id"], limit=args.limit))
    if not trades:
        text = f"no trades in {market['symbol']} yet"
    else:
        text = f"{market['symbol']}: last {len(trades)} trades (price in units per lot)\n" + table(
            ["time (UTC)", ">price", ">size (lots)", ">maker", ">taker", ">seq"],
            [[when(t["time"]), t["price"], t["size"], t["maker"], t["taker"], t["seq"]] for t in trades])
    emit(args, trades, text)


def cmd_withdraw(c: Client, args: argparse.Namespace) -> None:
    amount = parse_usd(args.amount)
    result = dict(c.trader.withdraw(amount))
    window = c.deployment.params.get("challenge_window")
    emit(args, result,
         f"withdrawal #{result['index']} of {usd(result['amount'])} USD signed and sequenced; once its batch is "
         f"final (challenge window {window} s) claim it on L1 with: rollup client claim {result['index']} --wait")


def cmd_claim(c: Client, args: argparse.Namespace) -> None:
    from web3 import Web3

    from .sdk import NOT_FOUND, ApiError, claim, wait_withdrawal_proof

    index = args.index
    if index is None:
        withdrawals = c.call("account", account=c.account_id())["withdrawals"]
        if not withdrawals:
            raise ClientError(f"account {c.account_id()} has no withdrawals (rollup client withdraw AMOUNT)")
        index = max(int(w["index"]) for w in withdrawals)
    chain = c.chain
    if chain.bridge.functions.claimed(index).call():
        raise ClientError(f"withdrawal {index} is already claimed")
    try:
        if args.wait:
            timeout = args.timeout if args.timeout is not None else \
                float(c.deployment.params.get("challenge_window", 60)) + 120
            proof = wait_withdrawal_proof(c.operator, index, timeout)
        else:
            proof = dict(c.call("withdrawal_proof", index=index))
    except TimeoutError as exc:
        raise ClientError(str(exc)) from None
    except ApiError as exc:
        if exc.code == NOT_FOUND:
            raise ClientError(f"withdrawal {index} is not in a final batch yet (the challenge window must pass): "
                              "retry later or pass --wait") from None
        raise
    before = int(chain.token.functions.balanceOf(Web3.to_checksum_address(proof["record"]["owner"])).call())
    paid = claim(chain, proof)
    paid["owner_balance"] = before + paid["paid"]
    text = (f"claimed withdrawal #{paid['index']} (account {paid['account']}, final batch {paid['batch']}): "
            f"paid {usd(paid['paid'])} USD to {paid['owner']} (tx {paid['tx']})")
    if paid["paid"] < paid["amount"]:
        text += f"; the bridge held less than the {usd(paid['amount'])} USD owed"
    emit(args, paid, text)


def _l1_batches(c: Client, limit: int) -> list[dict[str, Any]]:
    chain = c.chain
    count = int(chain.rollup.functions.batch_count().call())
    out = []
    for batch_id in range(count - 1, max(count - limit, 0) - 1, -1):
        b = chain.batch(batch_id)
        out.append({"index": b.id, "position": b.position, "status": b.status_name,
                    # a batch proven wrong has no state root on L1 (its word holds the reward)
                    "state_root": "0x" + b.state_root.hex() if any(b.state_root) else None,
                    "steps": b.steps, "timestamp": b.timestamp,
                    "deadline": b.deadline, "proposer": b.proposer, "source": "l1"})
    return out


def _operator_batches(c: Client, limit: int) -> list[dict[str, Any]]:
    return [{"index": b["index"], "position": b["position"], "status": OPERATOR_STATUS.get(b["status"], b["status"]),
             "operator_status": b["status"], "state_root": b["state_root"], "steps": b["txs"],
             "timestamp": b["timestamp"], "l1_tx": b["l1_tx"], "local": b["local"], "source": "operator"}
            for b in c.call("batches", limit=limit)]


def cmd_batches(c: Client, args: argparse.Namespace) -> None:
    source = args.source
    batches: list[dict[str, Any]]
    note = ""
    if source in ("auto", "l1"):
        try:
            batches = _l1_batches(c, args.limit)
        except Exception as exc:  # noqa: BLE001 - no deployment file, no L1 node, not our contracts
            if source == "l1":
                raise
            batches = _operator_batches(c, args.limit)
            note = f" (L1 not readable: {_describe(exc, c)})"
    else:
        batches = _operator_batches(c, args.limit)
    if args.json:
        emit(args, batches, "")
        return
    if not batches:
        print("no batches yet" + note)
        return
    origin = "L1" if batches[0]["source"] == "l1" else "the operator"
    print(f"last {len(batches)} batches, from {origin}{note}")
    rows = []
    for b in batches:
        extra = ""
        if b["source"] == "l1" and b["status"] == "pending":
            extra = f"final after {when(b['deadline'])}"
        elif b["source"] == "operator" and b["status"] == "pending":
            extra = b["operator_status"]
        rows.append(["-" if b["index"] is None else b["index"], "-" if b["position"] is None else b["position"],
                     b["status"], b["steps"], when(b["timestamp"]), b["state_root"] or "-", extra])
    print(table([">index", ">position", "status", ">txs", "time (UTC)", "state root", ""], rows))


def cmd_status(c: Client, args: argparse.Namespace) -> None:
    op = dict(c.call("status"))
    chain = c.chain
    r = chain.rollup.functions
    l1 = {
        "url": c.l1_url, "chain_id": int(chain.l1.chain_id), "block": int(chain.l1.w3.eth.block_number),
        "batches": int(r.batch_count().call()), "live_length": int(r.length().call()),
        "finalized": int(r.finalized().call()), "frozen": bool(r.frozen().call()),
        "tip_root": "0x" + bytes(r.tip_root().call()).hex(), "final_root": "0x" + bytes(r.final_root().call()).hex(),
        "challenge_window": int(r.challenge_window().call()),
    }
    from .sdk import NOT_FOUND, ApiError

    account: int | None
    try:
        account = int(c.call("account_of", owner=c.address)["account"])
    except ApiError as exc:
        if exc.code != NOT_FOUND:
            raise
        account = None
    wallet = int(chain.token.functions.balanceOf(c.address).call())
    data = {"operator_url": c.operator_url, "operator": op, "l1": l1, "markets": c.markets,
            "address": c.address, "account": account, "wallet": wallet}
    b = op["batches"]
    lines = [
        f"operator   {c.operator_url}  chain {op['chain_id']}; rollup time {when(op['time'])} UTC",
        f"state      root {op['state_root']}",
        f"           {op['accounts']} accounts, {op['deposits']} deposits, {op['withdrawals']} withdrawals, "
        f"{op['open_batch_txs']} txs in the open batch",
        f"batches    operator: {b['open']} open, {b['cut']} cut, {b['posted']} posted, {b['final']} final, "
        f"{b['reverted']} reverted",
        f"L1         {l1['url']}  chain {l1['chain_id']}, block {l1['block']}",
        f"           {l1['batches']} batches submitted, live chain {l1['live_length']}, {l1['finalized']} final; "
        f"challenge window {l1['challenge_window']} s" + ("; FROZEN" if l1["frozen"] else ""),
        f"           final root {l1['final_root']}",
        "markets",
        table(["symbol", ">id", ">oracle price", ">best bid", ">best ask", ">open interest"],
              [[m["symbol"], m["id"], m["price"] or "-", m["best_bid"] or "-", m["best_ask"] or "-",
                m["open_interest"]] for m in c.markets]),
        f"you        {c.address}: " + (f"L2 account {account}" if account is not None else "no L2 account yet")
        + f"; L1 wallet {usd(wallet)} USD",
    ]
    emit(args, data, "\n".join(lines))


def cmd_markets(c: Client, args: argparse.Namespace) -> None:
    markets = list(c.call("markets"))
    perpetuals = [m for m in markets if m.get("product", "perpetual") == "perpetual"]
    series = [m for m in markets if m.get("product", "perpetual") != "perpetual"]
    symbols = {m["id"]: m["symbol"] for m in markets}
    lines = ["perpetuals (prices: collateral units per lot)", table(
        ["symbol", ">id", "lot", ">index price", ">funding index", ">best bid", ">best ask", ">open interest"],
        [[m["symbol"], m["id"], m.get("lot") or "-", m["price"] or "-", m["funding_index"], m["best_bid"] or "-",
          m["best_ask"] or "-", m["open_interest"]] for m in perpetuals])]
    if series:
        lines += ["option series (European, cash-settled; strike, mark and gamma, vega in units per lot; "
                  "delta per lot of the underlying)", table(
            ["series", ">id", "type", "underlying", ">strike", "expiry (UTC)", ">mark", ">delta", ">gamma", ">vega",
             ">open interest", ">settled at"],
            [[m["symbol"], m["id"], m["product"], symbols.get(m["underlying"], m["underlying"]), m["strike"],
              when(m["expiry"])[:16], m["price"] or "-", f"{m['delta'] / 1_000_000:+.3f}", m["gamma"], m["vega"],
              m["open_interest"], m["settlement_price"] or "-"] for m in series])]
    emit(args, markets, "\n".join(lines))


COMMANDS = {
    "markets": cmd_markets,
    "deposit": cmd_deposit, "order": cmd_order, "cancel": cmd_cancel, "account": cmd_account, "book": cmd_book,
    "trades": cmd_trades, "withdraw": cmd_withdraw, "claim": cmd_claim, "batches": cmd_batches, "status": cmd_status,
}


# ---------------------------------------------------------------------- errors


def _describe(exc: BaseException, c: Client | None) -> str:
    """One line for a failure."""
    from .sdk import ApiError

    # web3 and requests are only loaded by commands that use L1: no need to load them here
    l1_client, requests = sys.modules.get("rollup.l1.client"), sys.modules.get("requests")
    operator_url = c.operator_url if c else DEFAULT_OPERATOR_URL
    if isinstance(exc, ClientError):
        return str(exc)
    if isinstance(exc, ApiError):
        reason = exc.data
        if reason is None:
            from .operator.service import ERRORS

            reason = next((name for name, code in ERRORS.items() if code == exc.code), str(exc.code))
        if str(reason) in exc.message:
            return f"operator refused: {exc.message}"
        return f"operator refused: {exc.message} ({reason})"
    if l1_client is not None and isinstance(exc, l1_client.L1Error):
        return f"L1 refused the transaction: {exc.reason}" if exc.reason else f"L1 error: {exc}"
    if isinstance(exc, urllib.error.HTTPError):
        return f"the operator at {operator_url} answered HTTP {exc.code}: {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        if isinstance(exc.reason, ConnectionRefusedError):
            return f"no operator at {operator_url} — is the devnet running?"
        return f"cannot reach the operator at {operator_url}: {exc.reason}"
    if requests is not None and isinstance(exc, requests.exceptions.ConnectionError):
        url = c.l1_url if c else DEFAULT_L1_RPC
        return f"no L1 node at {url} — is the devnet running?"
    if isinstance(exc, TimeoutError):
        return f"timed out: {exc}" if str(exc) else "timed out waiting for an answer"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def run(args: argparse.Namespace) -> int:
    """Run a parsed `client` command; 0 on success, 1 (after one line on stderr) on failure."""
    client: Client | None = None
    try:
        client = Client(args)
        COMMANDS[args.client_command](client, args)
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rollup client ... | head`: the reader left, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        if os.environ.get("ROLLUP_CLIENT_DEBUG"):
            raise
        print(f"error: {_describe(exc, client)}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------------- parser


def _add_globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The options every sub-command takes (given before or after it)."""
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--deployment", default=default(None), metavar="FILE",
                        help=f"deployment file (default {DEFAULT_DEPLOYMENT})")
    parser.add_argument("--operator-url", default=default(None), metavar="URL",
                        help="operator JSON-RPC (default: endpoints.json beside the deployment file, "
                             f"else {DEFAULT_OPERATOR_URL})")
    parser.add_argument("--l1-rpc", default=default(None), metavar="URL",
                        help="L1 JSON-RPC (default: the deployment file's)")
    parser.add_argument("--key", default=default(None), metavar="HEX",
                        help="private key (default: $ROLLUP_KEY, else dev account 1: devnet only)")
    parser.add_argument("--json", action="store_true", default=default(False), help="JSON output for scripts")


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= low."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}: {text!r}")
        return value
    return parse


_positive = _at_least(1)
_non_negative = _at_least(0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The client's options and sub-commands on `parser` (`rollup client` or `python -m rollup.client`)."""
    _add_globals(parser, suppress=False)
    sub = parser.add_subparsers(dest="client_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_globals(p, suppress=True)
        return p

    p = command("deposit", "approve and deposit collateral on L1 through the bridge, then wait until credited")
    p.add_argument("amount", metavar="AMOUNT", help="USD, e.g. 1000 or 12.5")
    p.add_argument("--no-wait", action="store_true", help="do not wait for the operator to credit it")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the credit (default 60)")

    p = command("order", "sign and submit an order")
    p.add_argument("market", metavar="MARKET", help="symbol (ETH-USD, ETH) or id")
    p.add_argument("side", metavar="SIDE", choices=("buy", "sell"), type=str.lower, help="buy or sell")
    p.add_argument("size", metavar="SIZE", type=_positive, help="lots")
    p.add_argument("price", metavar="PRICE", type=_positive, help="collateral units per lot")
    p.add_argument("--kind", choices=("limit", "ioc", "post_only"), default="limit")
    p.add_argument("--expiry", type=_non_negative, metavar="S", help="expire S seconds from now (default: never)")
    p.add_argument("--max-fee-ppm", type=_non_negative, default=1_000, help="highest fee accepted (default 1000)")

    p = command("cancel", "cancel the order signed with NONCE")
    p.add_argument("nonce", metavar="NONCE", type=_non_negative)

    command("markets", "every market: the perpetuals, and each option series with its terms, mark and Greeks")

    command("account", "your collateral, positions, open orders and withdrawals")

    p = command("book", "a market's order book")
    p.add_argument("market", metavar="MARKET")
    p.add_argument("--depth", type=_positive, default=10, help="price levels per side (default 10)")

    p = command("trades", "a market's recent trades, newest first")
    p.add_argument("market", metavar="MARKET")
    p.add_argument("--limit", type=_positive, default=20, help="how many (default 20)")

    p = command("withdraw", "sign a withdrawal of collateral (claim it on L1 once final)")
    p.add_argument("amount", metavar="AMOUNT", help="USD")

    p = command("claim", "pay a withdrawal out on L1 once its batch is final")
    p.add_argument("index", metavar="INDEX", nargs="?", type=_non_negative,
                   help="withdrawal index (default: your latest)")
    p.add_argument("--wait", action="store_true", help="wait until the withdrawal is final")
    p.add_argument("--timeout", type=float, help="seconds to wait (default: the challenge window + 120)")

    p = command("batches", "batches with their status (L1 is the truth; the operator's view as a fallback)")
    p.add_argument("--limit", type=_positive, default=20, help="how many, newest first (default 20)")
    p.add_argument("--from", dest="source", choices=("auto", "l1", "operator"), default="auto",
                   help="where to read them (default: L1, else the operator)")

    command("status", "the operator, L1 and your account at a glance")


def register(subparsers: Any) -> None:
    """Add `client` to the `rollup` command's sub-commands."""
    p = subparsers.add_parser("client", help="trade, deposit and withdraw: a client of the operator and the bridge",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollup client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
