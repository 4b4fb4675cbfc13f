"""Deploy the L1 side of the rollup and write a deployment file.

The deployment file is the address book every other component reads:
    {"chain_id", "l1_rpc", "deploy_block", "deployer", "contracts": {name: address},
     "params": {oracle_signers, oracle_quorum, challenge_window, inclusion_delay, bond,
                sequencer, silence_period, max_time_lag, reward_delay, genesis_root,
                insurance_owner, markets}}
`markets` is the genesis listing (genesis.listing_to_json: symbol, lot and the record of
each market); a file without it lists the devnet's perpetuals (genesis.DEVNET_MARKETS).

Deployed: the collateral token (devnet only), the Bridge (deposits, forced requests,
claims, escape; the EIP-712 verifying contract), the verifier's five rules contracts and
its router, and the Rollup chain; then the bridge is wired to the rollup.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from .l1.client import L1
from .stf.genesis import DEVNET_MARKETS, Listing, genesis_state, listing_from_json, listing_to_json
from .stf.hashing import keccak
from .stf.signing import address_of
from .stf.state import State

DEV_COLLATERAL = 1_000_000 * 10**6
"""Collateral (6-decimal units) minted to each node-provided dev account on a devnet deploy."""

RULES = ("VerifyMarket", "VerifyTrade", "VerifyAccount", "VerifyForced", "VerifyRisk", "Portfolio")
"""The verifier's rules contracts, in the order its constructor takes them."""

DEVNET_ORACLE_KEYS = tuple(keccak(f"derivatives-rollup devnet oracle {i}".encode()) for i in range(3))
"""The devnet's oracle committee (well-known keys: never use them on a real chain)."""


@dataclass(frozen=True)
class Params:
    """Deployment parameters fixed in the contracts."""

    oracle_signers: tuple[str, ...] = tuple(
        Web3.to_checksum_address(address_of(k)) for k in DEVNET_ORACLE_KEYS
    )
    oracle_quorum: int = 2
    challenge_window: int = 60
    """Seconds a batch can be challenged (days on a real chain)."""
    inclusion_delay: int = 120
    """Seconds the operator has to include a forced request before anyone may freeze."""
    bond: int = 10**18
    """Proposer bond, in wei."""
    sequencer: str | None = None
    """The address that may always propose (default: the deployer)."""
    silence_period: int = 120
    """Seconds without a batch from the sequencer after which any bonded address may propose
    (hours or days on a real chain)."""
    max_time_lag: int = 300
    """Seconds a batch's timestamp may lag the L1 block that carries it."""
    reward_delay: int = 10
    """Seconds a fraud proof's reward is held, during which an older commitment may take it."""

    def check(self) -> None:
        """Refuse parameters the contracts would refuse, with a clear message."""
        signers = [s.lower() for s in self.oracle_signers]
        if len(set(signers)) != len(signers):
            raise ValueError("oracle signers must be distinct")
        if any(int(s, 16) == 0 for s in signers):
            raise ValueError("an oracle signer is the zero address")
        if not 1 <= self.oracle_quorum <= len(signers) or len(signers) > 16:
            raise ValueError("oracle quorum must be in [1, signers] and signers at most 16")
        for name in ("challenge_window", "inclusion_delay", "max_time_lag", "bond"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.silence_period < 0 or self.reward_delay < 0:
            raise ValueError("silence_period and reward_delay must not be negative")


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    l1_rpc: str
    deploy_block: int
    deployer: str
    contracts: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "l1_rpc": self.l1_rpc,
            "deploy_block": self.deploy_block,
            "deployer": self.deployer,
            "contracts": dict(self.contracts),
            "params": dict(self.params),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        return cls(
            chain_id=int(data["chain_id"]),
            l1_rpc=str(data["l1_rpc"]),
            deploy_block=int(data["deploy_block"]),
            deployer=str(data["deployer"]),
            contracts={str(k): str(v) for k, v in data["contracts"].items()},
            params=dict(data.get("params", {})),
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

    def listing(self) -> Listing:
        """The markets at genesis, with their symbols and lots (`params.markets`; the
        devnet's perpetuals for a file written before listings were recorded)."""
        data = self.params.get("markets")
        return DEVNET_MARKETS if data is None else listing_from_json(data)

    def genesis(self) -> State:
        """The L2 state at genesis: this deployment's markets and insurance fund owner. Its
        root is the one the Rollup contract was deployed with (`params.genesis_root`)."""
        owner = bytes.fromhex(str(self.params["insurance_owner"])[2:])
        return genesis_state(owner, tuple(market for _, market in self.listing()))


def deploy(
    l1: L1,
    token: str | None = None,
    fund_dev_accounts: bool = True,
    insurance_owner: str | None = None,
    params: Params | None = None,
    listing: Listing | None = None,
) -> Deployment:
    """Deploy the contracts with `l1`'s key. Without `token`, a test stablecoin is deployed
    and (if the node has unlocked dev accounts) each of them receives DEV_COLLATERAL.
    The insurance fund's L2 account (0) belongs to `insurance_owner` (default: the deployer).
    The L2 state starts with `listing`'s markets (default: the devnet's)."""
    params = params or Params()
    listing = DEVNET_MARKETS if listing is None else listing
    markets = listing_from_json(listing_to_json(listing))  # checked, as a reader will load it
    params.check()
    owner = Web3.to_checksum_address(insurance_owner or l1.address)
    sequencer = Web3.to_checksum_address(params.sequencer or l1.address)
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
    bridge = l1.deploy("Bridge", deployed["CollateralToken"], owner)
    deployed["Bridge"] = bridge.address
    for name in RULES:
        deployed[name] = l1.deploy(name).address
    verifier = l1.deploy(
        "Verifier", *(deployed[name] for name in RULES), bridge.address,
        list(params.oracle_signers), params.oracle_quorum,
    )
    deployed["Verifier"] = verifier.address
    genesis_root = genesis_state(bytes.fromhex(owner[2:]), tuple(m for _, m in markets)).root()
    rollup = l1.deploy(
        "Rollup", verifier.address, bridge.address, genesis_root, params.challenge_window,
        params.inclusion_delay, params.bond, sequencer, params.silence_period, params.max_time_lag,
        params.reward_delay,
    )
    deployed["Rollup"] = rollup.address
    l1.send(bridge.functions.set_rollup(rollup.address))
    return Deployment(
        chain_id=l1.chain_id,
        l1_rpc=l1.url,
        deploy_block=start + 1,
        deployer=l1.address,
        contracts=deployed,
        params={
            "oracle_signers": list(params.oracle_signers),
            "oracle_quorum": params.oracle_quorum,
            "challenge_window": params.challenge_window,
            "inclusion_delay": params.inclusion_delay,
            "bond": params.bond,
            "sequencer": sequencer,
            "silence_period": params.silence_period,
            "max_time_lag": params.max_time_lag,
            "reward_delay": params.reward_delay,
            "genesis_root": "0x" + genesis_root.hex(),
            "insurance_owner": owner,
            "markets": listing_to_json(markets),
        },
    )
