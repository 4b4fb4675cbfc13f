"""The explorer's view of L1: the rollup's and the bridge's events, read with `eth_getLogs`
from the deployment block on, folded into batches, fraud proofs, proposers' bonds, bridge
operations and the freeze.

Nothing here is trusted by the rollup: the explorer only shows what L1 says. A batch's
steps are read from the calldata of the transaction that submitted it, checked against
its BatchSubmitted event (`batches.batch_calldata`), and decoded by the STF's own
decoder, so the explorer names each step as the verifier would. If L1 reorganises under
what was read (the hash of the last block read changes), the index is read again from the
deployment block: a devnet's history is short, and a view that is sometimes rebuilt is
simpler than one that rewinds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from .. import contracts
from ..deploy import Deployment
from ..l1.batches import BatchDataError, batch_calldata
from ..l1.client import L1
from ..l1.rollup_client import PENDING, STATUS_NAMES
from ..l1.wire import Events
from ..stf import transactions
from ..stf.reasons import Reason

ROLLUP_EVENTS = ["BatchSubmitted", "BatchFinalized", "BatchReverted", "ChallengeCommitted", "FraudProven",
                 "RewardReassigned", "RewardPaid", "Bonded", "Unbonded", "Frozen"]
BRIDGE_EVENTS = ["Deposited", "Registered", "ForcedRequested", "WithdrawalClaimed", "DepositReclaimed", "Escaped"]
BOND_EVENTS = {"Bonded", "Unbonded", "FraudProven"}
"""The events after which a proposer's bond may differ (a proof slashes it)."""
SCAN_BLOCKS = 5_000
"""Blocks per `eth_getLogs` request (public endpoints cap the range)."""

TYPE_NAMES = {
    transactions.DEPOSIT: "Deposit", transactions.WITHDRAW: "Withdraw", transactions.TRADE: "Trade",
    transactions.CANCEL: "Cancel", transactions.ORACLE_UPDATE: "OracleUpdate",
    transactions.FUNDING_TICK: "FundingTick", transactions.LIQUIDATE: "Liquidate",
    transactions.DELEVERAGE: "Deleverage", transactions.FORCED_REQUEST: "ForcedRequest",
    transactions.ADVANCE_TIME: "AdvanceTime", transactions.SWEEP_FEES: "SweepFees", transactions.FILL: "Fill",
    transactions.RISK_UPDATE: "RiskUpdate", transactions.SETTLE_SERIES: "SettleSeries",
    transactions.SETTLE_POSITION: "SettlePosition",
}
"""A transaction's type by its first byte, as docs/spec.md names it."""


def hex0x(value: bytes | str) -> str:
    """A byte string (or a hex string from the node) as 0x-prefixed lower-case hex."""
    if isinstance(value, str):
        return value if value.startswith("0x") else "0x" + value
    return "0x" + bytes(value).hex()


def step_type(tx: bytes) -> str:
    """The name of a step's transaction type ("invalid" when its first byte is no type)."""
    return TYPE_NAMES.get(tx[0], "invalid") if tx else "invalid"


def _field(value: Any) -> Any:
    if isinstance(value, bytes):
        return hex0x(value) if len(value) <= 32 else f"{len(value)} bytes"
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {name: _field(getattr(value, name)) for name in value._fields}
    if isinstance(value, (tuple, list)):
        return [_field(v) for v in value]
    return value


def describe_step(index: int, tx: bytes) -> dict[str, Any]:
    """One step of a batch as the explorer shows it: its type and its decoded fields (or
    why the STF's decoder refuses it: such a step is a no-op with that reason)."""
    decoded = transactions.decode(tx)
    step: dict[str, Any] = {"step": index, "type": step_type(tx), "bytes": len(tx)}
    if isinstance(decoded, Reason):
        step["refused"] = decoded.name
    else:
        step["fields"] = {name: _field(getattr(decoded, name)) for name in decoded._fields
                          if not name.endswith("signature") and name not in ("signatures",)}
    return step


class L1Index:
    """Batches, fraud proofs, bonds and bridge operations of one deployment, as L1 holds
    them. `refresh` reads what is new; the other methods answer from what is read (a lock
    guards the two)."""

    def __init__(self, deployment: Deployment, l1_rpc: str | None = None) -> None:
        self.deployment = deployment
        self.l1 = L1(l1_rpc or deployment.l1_rpc)
        self.rollup = self.l1.contract("Rollup", deployment.contracts["Rollup"])
        self.views = self.l1.views("Rollup", deployment.contracts["Rollup"])
        self.rollup_events = Events(self.l1.rpc, deployment.contracts["Rollup"], contracts.load("Rollup").abi)
        self.bridge_events = Events(self.l1.rpc, deployment.contracts["Bridge"], contracts.load("Bridge").abi)
        self.lock = threading.Lock()
        self.version = 0
        """Counts the refreshes that changed anything, a reorganisation's reread included."""
        self._reset()

    def _reset(self) -> None:
        self.next_block = self.deployment.deploy_block
        self.last_read: tuple[int, bytes] | None = None
        self.batches: dict[int, dict[str, Any]] = {}
        self.proofs: list[dict[str, Any]] = []
        self.proposers: dict[str, dict[str, Any]] = {}
        self.deposits: list[dict[str, Any]] = []
        self.forced: list[dict[str, Any]] = []
        self.claims: dict[int, dict[str, Any]] = {}
        self.escapes: list[dict[str, Any]] = []
        self.owners: dict[int, str] = {}
        self.frozen: dict[str, Any] | None = None
        self.head = {"number": 0, "timestamp": 0}
        self._steps: dict[int, list[dict[str, Any]]] = {}

    # ------------------------------------------------------------------ reading

    def refresh(self) -> bool:
        """Read the blocks L1 added since the last refresh (everything again after a
        reorganisation). True when anything the explorer shows changed."""
        head_block = self.l1.rpc.block("latest")
        number, timestamp = int(head_block["number"], 16), int(head_block["timestamp"], 16)
        changed = bonds_moved = False
        if self.last_read is not None and self.l1.rpc.block_hash(self.last_read[0]) != self.last_read[1]:
            with self.lock:
                self._reset()
            changed = True
        while self.next_block <= number:
            start, end = self.next_block, min(number, self.next_block + SCAN_BLOCKS - 1)
            end_hash = bytes.fromhex((head_block if end == number else self.l1.rpc.block(end))["hash"][2:])
            events = self.rollup_events.logs(ROLLUP_EVENTS, start, end)
            events += self.bridge_events.logs(BRIDGE_EVENTS, start, end)
            events.sort(key=lambda e: (e["blockNumber"], e["logIndex"]))
            bonds_moved = bonds_moved or any(e["event"] in BOND_EVENTS for e in events)
            with self.lock:
                for event in events:
                    self._apply(event)
                    changed = True
                self.next_block, self.last_read = end + 1, (end, end_hash)
        if bonds_moved:  # read outside the lock: answers do not wait for L1
            bonds = {address: int(self.views.call("bonds", address)) for address in list(self.proposers)}
        with self.lock:
            if bonds_moved:
                for address, bond in bonds.items():
                    self.proposers[address]["bond"] = bond
            if self.head["number"] != number:
                self.head = {"number": number, "timestamp": timestamp}
                changed = True
            if changed:
                self.version += 1
        return changed

    def _apply(self, event: dict[str, Any]) -> None:
        name, args = event["event"], event["args"]
        where = {"block": event["blockNumber"], "l1_tx": hex0x(event["transactionHash"])}
        if name == "BatchSubmitted":
            self.batches[int(args["id"])] = {
                "id": int(args["id"]), "position": int(args["position"]), "proposer": args["proposer"],
                "state_root": hex0x(args["state_root"]), "step_root": hex0x(args["step_root"]),
                "steps": int(args["steps"]), "timestamp": int(args["timestamp"]),
                "deposit_count": int(args["deposit_count"]), "forced_count": int(args["forced_count"]),
                "deadline": int(args["deadline"]), "status": STATUS_NAMES[PENDING], "submitted": where,
                "finalized": None, "reverted": None, "types": None,
            }
        elif name == "BatchFinalized" and int(args["id"]) in self.batches:
            self.batches[int(args["id"])].update(status="final", finalized=where)
        elif name == "BatchReverted" and int(args["id"]) in self.batches:
            self.batches[int(args["id"])].update(status="reverted", reverted=where)
            for proof in self.proofs:
                if proof["l1_tx"] == where["l1_tx"] and int(args["id"]) not in proof["reverted"]:
                    proof["reverted"].append(int(args["id"]))
        elif name == "FraudProven":
            reason = int(args["reason"])
            self.proofs.append({
                "batch": int(args["id"]), "step": int(args["step"]), "challenger": args["challenger"],
                "proposer": args["proposer"], "reason": Reason(reason).name if reason in Reason._value2member_map_
                else str(reason), "computed_root": hex0x(args["computed_root"]),
                "posted_root": hex0x(args["posted_root"]), "reward": int(args["reward"]),
                "burned": int(args["burned"]), "commit_block": int(args["commit_block"]), "reverted": [],
                "paid": None, **where,
            })
            # the Rollup reverts the batches before it logs the proof, in the same transaction
            self.proofs[-1]["reverted"] = sorted(i for i, b in self.batches.items()
                                                 if b["reverted"] and b["reverted"]["l1_tx"] == where["l1_tx"])
        elif name == "RewardPaid":
            for proof in self.proofs:
                if proof["batch"] == int(args["id"]):
                    proof["paid"] = {"to": args["challenger"], "amount": int(args["amount"]), **where}
        elif name == "RewardReassigned":
            for proof in self.proofs:
                if proof["batch"] == int(args["id"]):
                    proof["challenger"] = args["challenger"]
        elif name in ("Bonded", "Unbonded"):
            proposer = self.proposers.setdefault(args["proposer"], {"address": args["proposer"], "bond": 0,
                                                                    "since": where})
            proposer["last"] = {"event": name, "amount": int(args["amount"]), **where}
        elif name == "Frozen":
            self.frozen = {"forced_index": int(args["forced_index"]), "deposit_index": int(args["deposit_index"]),
                           "final_root": hex0x(args["final_root"]), **where}
        elif name == "Deposited":
            self.owners.setdefault(int(args["account"]), args["owner"])
            self.deposits.append({"index": int(args["index"]), "account": int(args["account"]),
                                  "owner": args["owner"], "amount": int(args["amount"]), **where})
        elif name == "Registered":
            self.owners[int(args["account"])] = args["owner"]
        elif name == "ForcedRequested":
            self.forced.append({"index": int(args["index"]), "kind": int(args["kind"]),
                                "account": int(args["account"]), "requester": args["requester"],
                                "market": int(args["market"]), "amount": int(args["amount"]), **where})
        elif name == "WithdrawalClaimed":
            self.claims[int(args["index"])] = {"index": int(args["index"]), "account": int(args["account"]),
                                               "amount": int(args["amount"]), "paid": int(args["paid"]), **where}
        elif name == "Escaped":
            self.escapes.append({"account": int(args["account"]), "owner": args["owner"],
                                 "equity": int(args["equity"]), "paid": int(args["paid"]), **where})

    # ------------------------------------------------------------------ answers

    def steps(self, batch_id: int) -> list[dict[str, Any]] | None:
        """A batch's steps, read from its calldata (None: no such batch, or its calldata
        does not hold what its event announced)."""
        with self.lock:
            batch = self.batches.get(batch_id)
            cached = self._steps.get(batch_id)
        if batch is None:
            return None
        if cached is not None:
            return cached
        try:
            data = batch_calldata(self.l1.w3, self.rollup, batch["submitted"]["l1_tx"], batch["position"],
                                  batch["timestamp"], batch["steps"], bytes.fromhex(batch["step_root"][2:]))
        except BatchDataError:
            return None
        steps = [describe_step(i, tx) | {"posted_root": hex0x(data.roots[i])} for i, tx in enumerate(data.txs)]
        with self.lock:
            self._steps[batch_id] = steps
            batch["types"] = type_counts(step["type"] for step in steps)
        return steps

    def batch_list(self, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
        """The newest batches (below id `before`), newest first, each with its transaction
        counts by type."""
        with self.lock:
            ids = sorted((i for i in self.batches if before is None or i < before), reverse=True)[:limit]
        for batch_id in ids:
            if self.batches[batch_id]["types"] is None:
                self.steps(batch_id)
        with self.lock:
            return [dict(self.batches[i]) for i in ids]

    def batch(self, batch_id: int) -> dict[str, Any] | None:
        steps = self.steps(batch_id)
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            proofs = [p for p in self.proofs if p["batch"] == batch_id or batch_id in p["reverted"]]
            return dict(batch) | {"step_list": steps, "proofs": proofs}

    def proof_list(self) -> list[dict[str, Any]]:
        """Every fraud proof, newest first, with the disputed step's transaction type."""
        with self.lock:
            proofs = [dict(p) for p in reversed(self.proofs)]
        for proof in proofs:
            steps = self.steps(proof["batch"])
            proof["type"] = steps[proof["step"]]["type"] if steps and proof["step"] < len(steps) else None
        return proofs

    def summary(self) -> dict[str, Any]:
        with self.lock:
            counts: dict[str, int] = {}
            for batch in self.batches.values():
                counts[batch["status"]] = counts.get(batch["status"], 0) + 1
            return {"head": dict(self.head), "version": self.version, "batches": counts,
                    "proofs": len(self.proofs), "frozen": self.frozen is not None,
                    "deposits": len(self.deposits), "forced_requests": len(self.forced)}

    def deployment_view(self) -> dict[str, Any]:
        d = self.deployment
        with self.lock:
            proposers = [dict(p) for p in self.proposers.values()]
            frozen = self.frozen
        return {"chain_id": d.chain_id, "deploy_block": d.deploy_block, "deployer": d.deployer,
                "contracts": d.contracts, "params": {k: v for k, v in d.params.items() if k != "listing"},
                "proposers": proposers, "frozen": frozen, "sequencer": d.params.get("sequencer")}

    def account_activity(self, account: int) -> dict[str, Any]:
        """What L1 knows of one account: its owner, deposits, forced requests, claims."""
        with self.lock:
            return {"owner": self.owners.get(account),
                    "deposits": [dict(x) for x in self.deposits if x["account"] == account],
                    "forced": [dict(x) for x in self.forced if x["account"] == account],
                    "claims": {i: dict(c) for i, c in self.claims.items() if c["account"] == account},
                    "escapes": [dict(x) for x in self.escapes if x["account"] == account]}

    def account_of(self, owner: str) -> int | None:
        with self.lock:
            for account, address in self.owners.items():
                if address.lower() == owner.lower():
                    return account
        return None


def type_counts(types: Iterable[str]) -> dict[str, int]:
    """How many steps of each transaction type."""
    counts: dict[str, int] = {}
    for name in types:
        counts[name] = counts.get(name, 0) + 1
    return counts
