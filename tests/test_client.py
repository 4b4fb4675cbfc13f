"""`rollup client` as a user runs it: real `python -m rollup.client ...` processes against a
real operator process and a real L1 node. Deposits credited, orders resting and filling,
accounts, a withdrawal claimed on L1 once final (the ERC-20 balance grows), batches with
their L1 status, status, one-line errors; and the example script end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from rollup.client import DEV_KEY_1
from rollup.deploy import Deployment, deploy
from rollup.l1.chain import dev_accounts
from rollup.l1.client import L1
from rollup.oracle import Feeder, RandomWalk
from rollup.sdk import Operator
from tests.conftest import ROOT, free_port, params_for, start_operator, wait_for

KEYS = [bytes(a.key) for a in dev_accounts(10)]
DEPLOYER, PROPOSER = KEYS[0], KEYS[9]
ALICE = dev_accounts(2)[1]  # the client's default key: dev account 1
BOB = KEYS[4]
STRANGER = KEYS[7]  # never deposits
USD = 10**6



@pytest.fixture(scope="module")
def setup(l1_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("client")
    deployment = deploy(L1(l1_url, DEPLOYER), params=params_for(PROPOSER, challenge_window=5, inclusion_delay=300))
    path = tmp / "deployment.json"
    deployment.save(path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # as the devnet does: the client finds the operator through endpoints.json
    (tmp / "endpoints.json").write_text(json.dumps({"l1_rpc": l1_url, "operator_url": url}))
    proc = start_operator(l1_url, path, PROPOSER, port, tmp / "op.db", tmp / "operator.log", "--heartbeat", "2")
    operator = Operator(url)
    try:
        wait_for(lambda: operator.call("status"), 60, "the operator")
        yield {"deployment": deployment, "path": path, "operator": operator, "url": url, "l1": l1_url, "tmp": tmp,
               "nonces": {}}
    finally:
        proc.stop()
        print(proc.log()[-3000:])


def start_client(setup: dict[str, Any], *args: str, key: bytes | None = None) -> subprocess.Popen[str]:
    """`python -m rollup.client --deployment <the test's> ARGS`, as ALICE (the default key) or `key`."""
    env = {k: v for k, v in os.environ.items() if k != "ROLLUP_KEY"}
    if key is not None:
        env["ROLLUP_KEY"] = "0x" + key.hex()
    return subprocess.Popen([sys.executable, "-m", "rollup.client", "--deployment", str(setup["path"]), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    stdout, stderr = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def client(setup: dict[str, Any], *args: str, key: bytes | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = finish(start_client(setup, *args, key=key))
    if ok:
        assert done.returncode == 0, f"{args}: rc {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert done.stderr == "", done.stderr
    return done


def client_json(setup: dict[str, Any], *args: str, key: bytes | None = None) -> Any:
    return json.loads(client(setup, *args, "--json", key=key).stdout)


def token_balance(setup: dict[str, Any], address: str) -> int:
    token = L1(setup["l1"]).contract("CollateralToken", setup["deployment"].contracts["CollateralToken"])
    return int(token.functions.balanceOf(Web3.to_checksum_address(address)).call())


def test_default_key_is_dev_account_1() -> None:
    assert DEV_KEY_1 == "0x" + bytes(ALICE.key).hex()


def test_register_adds_client_with_options_before_or_after_the_command() -> None:
    import argparse

    from rollup import client as client_module

    parser = argparse.ArgumentParser(prog="rollup")
    client_module.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["client", "--json", "--deployment", "d.json", "order", "ETH", "BUY", "5", "300000",
                              "--kind", "ioc", "--key", "0x" + "11" * 32])
    assert args.func is client_module.run and args.client_command == "order" and args.json
    assert (args.deployment, args.side, args.size, args.price, args.kind) == ("d.json", "buy", 5, 300_000, "ioc")
    assert args.key == "0x" + "11" * 32 and args.expiry is None
    args = parser.parse_args(["client", "claim"])
    assert args.index is None and not args.json and args.deployment is None


def test_deposit_then_account_shows_collateral(setup: dict[str, Any]) -> None:
    out = client(setup, "deposit", "1000").stdout
    assert "deposited 1,000.000000 USD on L1" in out and "credited by the operator" in out, out
    bob = client_json(setup, "deposit", "500.5", key=BOB)
    assert bob["credited"] and bob["amount"] == 500_500_000 and bob["collateral"] == 500_500_000
    account = client(setup, "account").stdout
    assert ALICE.address in account and "collateral  1,000.000000 USD" in account, account
    # prices for the trades below: one round of the devnet committee
    operator: Operator = setup["operator"]
    wait_for(lambda: operator.call("status")["time"], 30, "the first batch")
    feeder = Feeder(operator, setup["deployment"], walk=RandomWalk({0: 300_000, 1: 1_000_000}, step_ppm=0))
    assert feeder.round() == 2


def test_order_rests_and_book_shows_it(setup: dict[str, Any]) -> None:
    resting = client_json(setup, "order", "ETH-USD", "buy", "100", "299900")
    assert resting["status"] == "resting" and resting["remaining"] == 100 and resting["filled"] == 0
    setup["nonces"]["resting"] = resting["nonce"]
    text = client(setup, "order", "ETH", "buy", "10", "299000", "--expiry", "3600").stdout
    assert "resting" in text and "cancel with: rollup client cancel" in text, text
    book = client_json(setup, "book", "ETH-USD")
    assert book["bids"] == [[299_900, 100, 1], [299_000, 10, 1]] and book["asks"] == []
    table = client(setup, "book", "0", "--depth", "1").stdout
    assert "ETH-USD (market 0)" in table and "299900" in table and "299000" not in table, table


def test_crossing_order_fills_and_trades(setup: dict[str, Any]) -> None:
    taken = client_json(setup, "order", "ETH-USD", "sell", "40", "299000", "--kind", "ioc", key=BOB)
    assert taken["filled"] == 40 and [f["price"] for f in taken["fills"]] == [299_900]
    trades = client_json(setup, "trades", "ETH-USD")
    assert trades[0]["size"] == 40 and trades[0]["price"] == 299_900
    text = client(setup, "trades", "ETH-USD", "--limit", "5").stdout
    assert "299900" in text and "40" in text, text
    assert client_json(setup, "book", "ETH-USD")["bids"][0] == [299_900, 60, 1]


def test_account_json_and_cancel(setup: dict[str, Any]) -> None:
    alice = client_json(setup, "account")
    assert isinstance(alice["collateral"], int) and alice["collateral"] < 1000 * USD
    assert [(p["market"], p["size"]) for p in alice["positions"]] == [(0, 40)]
    assert {o["remaining"] for o in alice["open_orders"]} == {60, 10}
    bob = client_json(setup, "account", key=BOB)
    assert [(p["market"], p["size"]) for p in bob["positions"]] == [(0, -40)]
    assert "long" in client(setup, "account").stdout
    out = client(setup, "cancel", str(setup["nonces"]["resting"])).stdout
    assert "cancelled order" in out, out
    assert client_json(setup, "book", "ETH-USD")["bids"] == [[299_000, 10, 1]]


def start_example(setup: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(ROOT / "examples" / "trade_and_withdraw.py"),
                             "--deployment", str(setup["path"])], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT)


def test_withdraw_then_claim_after_finality_pays_on_l1(setup: dict[str, Any]) -> None:
    # The example script (test_example_script) waits out a challenge window too: it starts now,
    # its own accounts (dev accounts 2 and 3) beside ours, so that both waits overlap.
    setup["example"] = start_example(setup)
    withdrawal = client_json(setup, "withdraw", "100")
    index = withdrawal["index"]
    assert withdrawal["amount"] == 100 * USD
    # (whether withdrawal `index` is final yet depends on L1's clock: ask about one not even made)
    early = client(setup, "claim", str(index + 100), ok=False)
    assert early.returncode == 1 and "not in a final batch yet" in early.stderr, early.stderr
    before = token_balance(setup, ALICE.address)
    paid = client_json(setup, "claim", "--wait", "--timeout", "60")  # default: the latest withdrawal
    assert paid["index"] == index and paid["paid"] == 100 * USD and paid["owner"] == ALICE.address
    assert token_balance(setup, ALICE.address) == before + 100 * USD
    again = client(setup, "claim", str(index), ok=False)
    assert again.returncode == 1 and again.stderr.strip() == f"error: withdrawal {index} is already claimed"
    withdrawals = client_json(setup, "account")["withdrawals"]
    assert withdrawals == [{"index": index, "amount": 100 * USD, "claimed": True}]


def test_batches_json_from_l1_and_operator(setup: dict[str, Any]) -> None:
    batches = client_json(setup, "batches", "--limit", "50")
    assert batches and all(b["source"] == "l1" for b in batches)
    assert [b["index"] for b in batches] == sorted((b["index"] for b in batches), reverse=True)
    for b in batches:
        assert b["status"] in ("pending", "final", "reverted")
        assert b["state_root"].startswith("0x") and len(b["state_root"]) == 66
    assert any(b["status"] == "final" for b in batches)  # the claim above needed one
    chain_roots = {b["index"]: b["state_root"] for b in batches}
    seen = client_json(setup, "batches", "--from", "operator")
    assert seen and {b["status"] for b in seen} <= {"pending", "final", "reverted"}
    for b in seen:
        if b["index"] is not None and b["index"] in chain_roots:
            assert b["state_root"] == chain_roots[b["index"]]
    text = client(setup, "batches", "--limit", "50").stdout
    assert "from L1" in text and "final" in text, text


def test_status(setup: dict[str, Any]) -> None:
    status = client_json(setup, "status")
    assert status["operator"]["chain_id"] == 31337 and status["l1"]["batches"] >= 1
    assert status["account"] is not None and status["address"] == ALICE.address
    assert status["operator_url"] == setup["url"]  # from endpoints.json
    text = client(setup, "status").stdout
    assert "ETH-USD" in text and setup["url"] in text and "L2 account" in text, text


def test_errors_are_one_line_and_non_zero(setup: dict[str, Any]) -> None:
    cases = [
        (("book", "DOGE-USD"), None, "error: unknown market 'DOGE-USD' (markets: ETH-USD (0), BTC-USD (1))"),
        (("order", "9", "buy", "1", "300000"), None, "error: unknown market '9'"),
        (("account",), STRANGER, "error: no L2 account for"),
        (("withdraw", "1000000"), None, "error: operator refused: the withdrawal is refused"),
        (("deposit", "abc"), None, "error: invalid amount 'abc'"),
        (("--operator-url", f"http://127.0.0.1:{free_port()}", "status"), None, "error: no operator at http://127.0.0.1:"),
        (("--key", "0x1234", "account"), None, "error: invalid key"),
    ]
    running = [start_client(setup, *args, key=key) for args, key, _ in cases]  # each changes nothing
    for (args, _, message), proc in zip(cases, running, strict=True):
        done = finish(proc)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, (args, done.stderr)
        assert "is the devnet running?" in done.stderr or "no operator" not in message
    usage = client(setup, "order", "ETH", "hold", "1", "1", ok=False)
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_example_script(setup: dict[str, Any]) -> None:
    proc = setup.pop("example", None) or start_example(setup)
    done = finish(proc)
    assert done.returncode == 0, done.stdout
    assert "claimed on L1: paid 1,000.000000 USD" in done.stdout and done.stdout.rstrip().endswith("done"), done.stdout


def test_example_script_fails_without_operator(tmp_path: Path, setup: dict[str, Any]) -> None:
    deployment: Deployment = setup["deployment"]
    deployment.save(tmp_path / "deployment.json")
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "trade_and_withdraw.py"),
                           "--deployment", str(tmp_path / "deployment.json"),
                           "--operator-url", f"http://127.0.0.1:{free_port()}"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1 and done.stderr.startswith("error:"), done.stdout + done.stderr
