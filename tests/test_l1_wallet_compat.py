"""Wallet and dapp tooling against our L1 node and against anvil: tests/js/wallet_compat.mjs
drives a fresh node of each with ethers v6 and viem (versions pinned by
tests/js/package-lock.json) and prints what the libraries saw; the two documents must be
equal, and hold the values a wallet expects (signatures that recover to the signer, each
refusal classified as what it is, anvil_mine with interval 0, getLogs edge cases,
eth_createAccessList, a transaction with a future nonce queued until its gap fills)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, TOOLS, Process, start_anvil, start_rollup_l1

JS = ROOT / "tests" / "js"
LIBRARIES = TOOLS / "wallet-compat"

DEV = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9", "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
]
"""The anvil mnemonic's ten accounts, as both nodes must list them."""

COUNTER = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
"""Where dev account 0 deploys the script's counter contract (its third transaction)."""


def wallet_libraries() -> Path | None:
    """node_modules holding ethers and viem exactly as tests/js/package-lock.json pins them,
    installed with `npm ci` under .tools/wallet-compat on first use and again whenever the
    lock changes; None without node or npm."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        return None
    lock = (JS / "package-lock.json").read_bytes()
    modules = LIBRARIES / "node_modules"
    stamp = LIBRARIES / "installed-lock.json"
    if modules.is_dir() and stamp.exists() and stamp.read_bytes() == lock:
        return modules
    LIBRARIES.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(JS / name, LIBRARIES / name)
    subprocess.run([npm, "ci", "--prefix", str(LIBRARIES), "--no-audit", "--no-fund"],
                   check=True, capture_output=True, timeout=600)
    stamp.write_bytes(lock)
    return modules


def drive(url: str, proc: Process, modules: Path) -> dict[str, Any]:
    """Run the script against a fresh node at `url`, stop the node, return the script's
    document."""
    try:
        done = subprocess.run(
            [str(shutil.which("node")), str(JS / "wallet_compat.mjs"), url, str(modules)],
            capture_output=True, text=True, timeout=120,
        )
    finally:
        proc.stop()
    assert done.returncode == 0, f"{done.stderr[-3000:]}\nnode log:\n{proc.log()[-2000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ours, anvil's): the script's document from a fresh node of each."""
    modules = wallet_libraries()
    if modules is None:
        pytest.skip("node and npm are needed to install and run ethers and viem")
    tmp = tmp_path_factory.mktemp("wallet-compat")
    anvil_url, anvil = start_anvil(tmp)  # skips without npm
    theirs = drive(anvil_url, anvil, modules)
    ours = drive(*start_rollup_l1(tmp), modules)
    return ours, theirs


def test_libraries_see_our_node_as_they_see_anvil(documents: tuple[dict[str, Any], dict[str, Any]]) -> None:
    ours, theirs = documents
    assert ours == theirs


def test_what_wallets_expect(documents: tuple[dict[str, Any], dict[str, Any]]) -> None:
    ours, _ = documents
    assert ours["chainId"] == ours["viemChainId"] == 31337
    assert ours["accounts"] == ours["viemAccounts"] == DEV
    assert ours["balance"] == ours["viemBalance"] == str(10_000 * 10**18)
    # personal_sign, eth_sign and eth_signTypedData_v4 recover to the signer in both libraries
    for signed in (ours["personalSign"], ours["signTypedData"]):
        assert signed["sameInViem"] and signed["ethersRecovers"] and signed["viemRecovers"]
    assert ours["ethSign"] == ours["personalSign"]["signature"]
    assert ours["unknownSigner"] == -32602
    # eth_signTransaction signs what was asked, with the pending nonce, and sends nothing
    assert ours["signTransaction"] == {"type": 2, "chainId": 31337, "nonce": 0, "to": DEV[1],
                                       "value": "7", "gasLimit": "21000", "from": DEV[0]}
    assert ours["viemSignTransaction"]["from"] == DEV[0]
    assert ours["signTransactionSent"] is False
    assert ours["ethersSend"] == {"status": 1, "gasUsed": "21000", "from": DEV[0], "to": DEV[1],
                                  "received": str(10**18)}
    assert ours["viemSend"] == {"status": "success", "gasUsed": "21000", "from": DEV[0]}
    # the counter contract: called, logged, its access list (slot 0), gas with that list
    assert ours["contract"] == {"address": COUNTER, "code": True, "call": "0x" + "00" * 31 + "01"}
    entry = {"address": COUNTER.lower(), "storageKeys": ["0x" + "00" * 32]}
    assert ours["accessList"] == {"accessList": [entry], "gasUsed": hex(46_445)}
    assert ours["viemAccessList"] == {"accessList": [entry], "gasUsed": "46445"}
    assert [log["block"] for log in ours["logs"]] == [0, 1] and ours["viemLogCount"] == 2
    assert ours["getLogsEdges"] == {
        "reversed": 0, "toPastHead": 2, "toPastHeadOnly": 1, "fromPastHead": -32602,
        "byBlockHash": 1, "unknownBlockHash": -32000, "blockHashAndRange": -32602,
    }
    assert ours["viemFromPastHead"] == "InvalidParamsRpcError"
    # anvil_mine: viem's [blocks, "0x0"], hex or numbers, nulls, nothing, an interval
    assert {name: mined["blocks"] for name, mined in ours["mine"].items()} == {
        "viemIntervalZero": 3, "hexIntervalZero": 2, "numbers": 2, "noParams": 1, "nulls": 1,
        "zeroBlocks": 0, "interval100": 2,
    }
    assert ours["mine"]["interval100"]["step"] == ">=100"
    # each refusal classified as what it is, by each library
    assert ours["ethersErrors"] == {
        "insufficientFunds": "INSUFFICIENT_FUNDS", "nonceTooLow": "NONCE_EXPIRED",
        "intrinsicGasTooLow": "UNKNOWN_ERROR",  # ethers v6 has no code for it
        "estimateInsufficientFunds": "INSUFFICIENT_FUNDS", "callInsufficientFunds": "CALL_EXCEPTION",
    }
    assert ours["ethersRawErrors"] == {
        "insufficientFunds": "INSUFFICIENT_FUNDS", "intrinsicGasTooLow": "UNKNOWN_ERROR",
        "feeCapTooLow": "UNKNOWN_ERROR", "nonceTooLow": "NONCE_EXPIRED",
    }
    assert ours["viemErrors"] == {
        "insufficientFunds": "InsufficientFundsError", "nonceTooLow": "NonceTooLowError",
        "intrinsicGasTooLow": "IntrinsicGasTooLowError", "rawInsufficientFunds": "InsufficientFundsError",
        "rawNonceTooLow": "NonceTooLowError", "rawIntrinsicGasTooLow": "IntrinsicGasTooLowError",
        "rawFeeCapTooLow": "FeeCapTooLowError", "estimateInsufficientFunds": "InsufficientFundsError",
        "callInsufficientFunds": "InsufficientFundsError",
    }
    assert ours["nothingChanged"] is True


def test_a_future_nonce(documents: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """A transaction whose nonce is ahead of its sender's is queued, as anvil and geth do:
    both libraries get its hash and see it unmined (ethers' JsonRpcSigner.sendTransaction
    waits until the node shows it); once the sender fills the gap, both are mined in one
    block, in nonce order. The same transaction again and a same-nonce one at the same
    price are refused with -32003 (ethers: REPLACEMENT_UNDERPRICED for the latter; viem:
    TransactionRejectedRpcError, its class for -32003); a higher fee cap replaces it, and
    the replacement is what gets mined."""
    ours, _ = documents
    future = ours["futureNonce"]
    assert future["ethers"]["waiting"] == {
        "nonce": 1, "blockNumber": None,
        "seen": {"nonce": 1, "blockNumber": None, "from": DEV[6], "hash": True},
        "receipt": None, "latest": 0, "pending": 0,
        "status": {"pending": "0x0", "queued": "0x1"}, "queued": ["1"],
    }
    mined = {"status": [1, 1], "sameBlock": True, "index": [0, 1], "latest": 2}
    assert future["ethers"]["mined"] == mined
    assert future["ethers"]["after"] == {"status": {"pending": "0x0", "queued": "0x0"}, "queued": []}
    assert future["viem"] == {
        "waiting": {"seen": {"nonce": 1, "blockNumber": None, "from": DEV[7]},
                    "receipt": "TransactionReceiptNotFoundError", "pending": 0,
                    "status": {"pending": 0, "queued": 1}, "queued": ["1"], "inspect": {"1": True}},
        "mined": {"status": ["success", "success"], "sameBlock": True, "index": [0, 1]},
        "after": {"pending": 0, "queued": 0},
    }
    assert future["replacement"] == {
        "again": -32003, "ethersAgain": "UNKNOWN_ERROR", "viemAgain": "TransactionRejectedRpcError",
        "samePrice": "REPLACEMENT_UNDERPRICED",  # ethers' provider.send classifies it too
        "ethersSamePrice": "REPLACEMENT_UNDERPRICED", "viemSamePrice": "TransactionRejectedRpcError",
        "ethersHigherTipOnly": "REPLACEMENT_UNDERPRICED",
        "mined": {"status": 1, "value": "3", "latest": 2},
    }
