"""Deploy the L1 side of the rollup and write a deployment file.

The deployment file is the address book every other component reads:
    {"chain_id", "l1_rpc", "deploy_block", "deployer", "contracts": {name: address}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from .l1.client import L1

DEV_COLLATERAL = 1_000_000 * 10**6
"""Collateral (6-decimal units) minted to each node-provided dev account on a devnet deploy."""


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    l1_rpc: str
    deploy_block: int
    deployer: str
    contracts: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "l1_rpc": self.l1_rpc,
            "deploy_block": self.deploy_block,
            "deployer": self.deployer,
            "contracts": dict(self.contracts),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        return cls(
            chain_id=int(data["chain_id"]),
            l1_rpc=str(data["l1_rpc"]),
            deploy_block=int(data["deploy_block"]),
            deployer=str(data["deployer"]),
            contracts={str(k): str(v) for k, v in data["contracts"].items()},
        )

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> Deployment:
        return cls.from_json(json.loads(Path(path).read_text()))


def deploy(
    l1: L1,
    token: str | None = None,
    fund_dev_accounts: bool = True,
    insurance_owner: str | None = None,
) -> Deployment:
    """Deploy the contracts with `l1`'s key. Without `token`, a test stablecoin is deployed
    and (if the node has unlocked dev accounts) each of them receives DEV_COLLATERAL.
    The insurance fund's L2 account (0) belongs to `insurance_owner` (default: the deployer)."""
    start = int(l1.w3.eth.block_number)
    deployed: dict[str, str] = {}
    if token is None:
        collateral = l1.deploy("CollateralToken", "Test USD", "tUSD")
        deployed["CollateralToken"] = collateral.address
        if fund_dev_accounts:
            for account in l1.w3.eth.accounts:
                l1.send(collateral.functions.mint(account, DEV_COLLATERAL))
    else:
        deployed["CollateralToken"] = Web3.to_checksum_address(token)
    queue = l1.deploy("DepositQueue", deployed["CollateralToken"], insurance_owner or l1.address)
    deployed["DepositQueue"] = queue.address
    return Deployment(
        chain_id=l1.chain_id,
        l1_rpc=l1.url,
        deploy_block=start + 1,
        deployer=l1.address,
        contracts=deployed,
    )
