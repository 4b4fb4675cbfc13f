"""Unmodified web3.py against `rollup l1`: deploy, call, raw typed transactions, receipts,
logs, blocks, fees, time control and snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound
from web3.types import RPCEndpoint, Wei

from rollup import contracts
from rollup.l1.chain import dev_accounts
from tests.conftest import start_rollup_l1

KEYS = [bytes(a.key) for a in dev_accounts(4)]


@pytest.fixture(scope="module")
def own_l1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A node of this module's own: these tests read the chain's initial state (balances,
    block numbers), which the session's shared node has long left behind."""
    url, proc = start_rollup_l1(tmp_path_factory.mktemp("l1-rpc"))
    yield url
    proc.stop()


@pytest.fixture
def w3(own_l1: str) -> Iterator[Web3]:
    web3 = Web3(Web3.HTTPProvider(own_l1))
    snapshot = web3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    yield web3
    assert web3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])["result"] is True


def send_raw(w3: Web3, key: bytes, tx: dict[str, Any]) -> Any:
    account = Account.from_key(key)
    tx = {"chainId": w3.eth.chain_id, "nonce": w3.eth.get_transaction_count(account.address), **tx}
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)


def deploy_token(w3: Web3, key: bytes = KEYS[0]) -> Any:
    artifact = contracts.load("CollateralToken")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    data = factory.constructor("Test USD", "tUSD").data_in_transaction
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    receipt = send_raw(w3, key, {"type": 2, "data": data, "gas": 2_000_000, "value": 0,
                                 "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9})
    assert receipt["status"] == 1
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)


def test_identity_and_accounts(w3: Web3) -> None:
    assert w3.eth.chain_id == 31337
    assert w3.net.version == "31337"
    assert w3.client_version.startswith("rollup-l1/")
    accounts = list(w3.eth.accounts)
    assert len(accounts) == 10
    assert accounts[0] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil's account 0
    assert w3.eth.get_balance(accounts[9]) == 10_000 * 10**18


def test_deploy_call_and_eip1559_transactions(w3: Web3) -> None:
    token = deploy_token(w3)
    assert w3.eth.get_code(token.address)[:1] != b""
    assert token.functions.decimals().call() == 6
    assert token.functions.name().call() == "Test USD"
    alice, bob = (Account.from_key(k).address for k in KEYS[:2])
    # a contract transaction built by web3 and sent raw as type 2
    mint = token.functions.mint(alice, 5_000_000).build_transaction(
        {"from": alice, "nonce": w3.eth.get_transaction_count(alice), "chainId": 31337}
    )
    assert "maxFeePerGas" in mint and "gasPrice" not in mint
    signed = Account.from_key(KEYS[0]).sign_transaction(mint)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    assert receipt["status"] == 1 and receipt["type"] == 2
    assert token.functions.balanceOf(alice).call() == 5_000_000
    # transfer through web3's own eth_sendTransaction path (dev accounts are unlocked)
    tx_hash = token.functions.transfer(bob, 1_250_000).transact({"from": alice})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    assert token.functions.balanceOf(bob).call() == 1_250_000
    tx = w3.eth.get_transaction(tx_hash)
    assert tx["from"] == alice and tx["to"] == token.address and tx["blockNumber"] == receipt["blockNumber"]
    assert receipt["effectiveGasPrice"] <= tx["maxFeePerGas"]
    block = w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
    first: Any = block["transactions"][0]  # full transactions were asked for
    assert first["hash"] == tx_hash
    assert w3.eth.get_block(block["hash"])["number"] == block["number"]
    # the balance paid for gas exactly
    assert w3.eth.get_balance(bob) == 10_000 * 10**18


def test_legacy_and_access_list_transactions(w3: Web3) -> None:
    to = Account.from_key(KEYS[3]).address
    before = w3.eth.get_balance(to)
    gas_price = w3.eth.gas_price
    legacy = send_raw(w3, KEYS[1], {"to": to, "value": 7, "gas": 21_000, "gasPrice": gas_price})
    assert legacy["status"] == 1 and legacy["type"] == 0
    access = send_raw(w3, KEYS[1], {"type": 1, "to": to, "value": 9, "gas": 30_000, "gasPrice": gas_price,
                                    "accessList": [{"address": to, "storageKeys": ["0x" + "00" * 32]}]})
    assert access["status"] == 1 and access["type"] == 1
    assert w3.eth.get_balance(to) == before + 16
    tx = w3.eth.get_transaction(access["transactionHash"])
    assert tx["accessList"][0]["address"] == to


def test_revert_data_in_call_and_estimate(w3: Web3) -> None:
    token = deploy_token(w3)
    nobody = Account.create().address
    with pytest.raises(ContractLogicError, match="token: balance too low"):
        token.functions.transfer(nobody, 1).call({"from": nobody})
    with pytest.raises(ContractLogicError, match="token: balance too low"):
        token.functions.transfer(nobody, 1).estimate_gas({"from": nobody})
    raw = w3.provider.make_request(
        RPCEndpoint("eth_call"),
        [{"from": nobody, "to": token.address,
          "data": token.functions.transfer(nobody, 1)._encode_transaction_data()}, "latest"],
    )
    assert raw["error"]["code"] == 3
    assert raw["error"]["data"].startswith("0x08c379a0")


def test_failed_transaction_is_mined_with_status_zero(w3: Web3) -> None:
    token = deploy_token(w3)
    alice = Account.from_key(KEYS[2]).address
    data = token.functions.transfer(alice, 1)._encode_transaction_data()
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    receipt = send_raw(w3, KEYS[2], {"type": 2, "to": token.address, "data": data, "gas": 100_000,
                                     "maxFeePerGas": 2 * base + 1, "maxPriorityFeePerGas": 1})
    assert receipt["status"] == 0
    assert 21_000 < receipt["gasUsed"] < 100_000


def test_logs_filters_by_address_topic_and_range(w3: Web3) -> None:
    token_a = deploy_token(w3)
    token_b = deploy_token(w3)
    alice, bob = (Account.from_key(k).address for k in KEYS[:2])
    first = w3.eth.block_number + 1
    for token, amount in ((token_a, 1), (token_b, 2), (token_a, 3)):
        w3.eth.wait_for_transaction_receipt(token.functions.mint(alice, amount).transact({"from": alice}))
    w3.eth.wait_for_transaction_receipt(token_a.functions.mint(bob, 4).transact({"from": alice}))
    last = w3.eth.block_number
    events = token_a.events.Transfer().get_logs(from_block=first, to_block=last)
    assert [e["args"]["value"] for e in events] == [1, 3, 4]
    only_bob = token_a.events.Transfer().get_logs(
        from_block=first, to_block=last, argument_filters={"receiver": bob}
    )
    assert [e["args"]["value"] for e in only_bob] == [4]
    both = w3.eth.get_logs({"fromBlock": first, "toBlock": last, "address": [token_a.address, token_b.address]})
    assert len(both) == 4
    assert [log["blockNumber"] for log in both] == sorted(log["blockNumber"] for log in both)
    narrow = w3.eth.get_logs({"fromBlock": first + 1, "toBlock": first + 1})
    assert len(narrow) == 1 and narrow[0]["address"] == token_b.address
    by_hash = w3.eth.get_logs({"blockHash": narrow[0]["blockHash"]})
    assert by_hash == narrow
    transfer_topic = Web3.keccak(text="Transfer(address,address,uint256)")
    wrong_topic = w3.eth.get_logs({"fromBlock": first, "toBlock": last, "topics": [Web3.keccak(text="x")]})
    assert wrong_topic == []
    assert len(w3.eth.get_logs({"fromBlock": first, "toBlock": last, "topics": [transfer_topic]})) == 4


def test_log_filter_polling(w3: Web3) -> None:
    token = deploy_token(w3)
    alice = Account.from_key(KEYS[0]).address
    log_filter = w3.eth.filter({"address": token.address})
    block_filter = w3.eth.filter("latest")
    w3.eth.wait_for_transaction_receipt(token.functions.mint(alice, 11).transact({"from": alice}))
    changes = log_filter.get_new_entries()
    assert len(changes) == 1 and int(changes[0]["data"].hex(), 16) == 11
    assert log_filter.get_new_entries() == []
    assert len(block_filter.get_new_entries()) == 1
    assert log_filter.filter_id is not None
    assert w3.eth.uninstall_filter(log_filter.filter_id)


def test_storage_nonce_and_pending(w3: Web3) -> None:
    token = deploy_token(w3)
    alice = Account.from_key(KEYS[0]).address
    nonce = w3.eth.get_transaction_count(alice)
    assert w3.eth.get_transaction_count(alice, "pending") == nonce
    w3.eth.wait_for_transaction_receipt(token.functions.mint(alice, 42).transact({"from": alice}))
    assert w3.eth.get_transaction_count(alice) == nonce + 1
    # totalSupply is the first storage variable after name and symbol: find it by value
    values = [int.from_bytes(w3.eth.get_storage_at(token.address, slot), "big") for slot in range(8)]
    assert 42 in values
    # historical reads by block number
    before = w3.eth.block_number - 1
    assert token.functions.totalSupply().call(block_identifier=before) == 0
    assert token.functions.totalSupply().call(block_identifier="latest") == 42


def test_fees(w3: Web3) -> None:
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    assert w3.eth.gas_price >= base
    assert w3.eth.max_priority_fee == 10**9
    history = w3.eth.fee_history(4, "latest", [25, 75])
    assert len(history["baseFeePerGas"]) == len(history["gasUsedRatio"]) + 1
    assert len(history["reward"]) == len(history["gasUsedRatio"])


def test_time_control_and_snapshots(w3: Web3) -> None:
    start = w3.eth.get_block("latest")
    offset = w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [3600])
    assert "result" in offset
    w3.provider.make_request(RPCEndpoint("evm_mine"), [])
    later = w3.eth.get_block("latest")
    assert later["number"] == start["number"] + 1
    assert later["timestamp"] >= start["timestamp"] + 3600
    target = later["timestamp"] + 1000
    w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [target])
    w3.provider.make_request(RPCEndpoint("evm_mine"), [])
    assert w3.eth.get_block("latest")["timestamp"] == target
    snap = w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    alice = Account.from_key(KEYS[0]).address
    deploy_token(w3)
    assert w3.eth.get_transaction_count(alice) > 0
    nonce_after = w3.eth.get_transaction_count(alice)
    number_after = w3.eth.block_number
    assert w3.provider.make_request(RPCEndpoint("evm_revert"), [snap])["result"] is True
    assert w3.eth.block_number == number_after - 1
    assert w3.eth.get_transaction_count(alice) == nonce_after - 1
    assert w3.provider.make_request(RPCEndpoint("evm_revert"), [snap])["result"] is False  # consumed
    # a block in the past is refused
    bad = w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [start["timestamp"]])
    assert "error" in bad


def test_json_rpc_batch(l1_url: str) -> None:
    import json
    import urllib.request

    body = json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": "two", "method": "no_such_method", "params": []},
        {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []},  # notification
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": ["0x12"]},
    ]).encode()
    request = urllib.request.Request(l1_url, body, {"Content-Type": "application/json"})
    replies = json.loads(urllib.request.urlopen(request, timeout=5).read())
    by_id = {r["id"]: r for r in replies}
    assert set(by_id) == {1, "two", 3}
    assert by_id[1]["result"] == "0x7a69"
    assert by_id["two"]["error"]["code"] == -32601
    assert by_id[3]["error"]["code"] == -32602


def test_interval_mining(tmp_path: Any) -> None:
    import time

    from tests.conftest import start_rollup_l1

    url, proc = start_rollup_l1(tmp_path, "--block-time", "0.5")
    try:
        w3 = Web3(Web3.HTTPProvider(url))
        alice, bob = (Account.from_key(k).address for k in KEYS[:2])
        tx_hash = w3.eth.send_transaction({"from": alice, "to": bob, "value": Wei(1)})
        assert w3.eth.get_transaction_count(alice, "pending") == 1
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=5)
        assert receipt["status"] == 1
        first = w3.eth.block_number
        time.sleep(1.2)
        assert w3.eth.block_number > first
    finally:
        proc.stop()


def test_turning_automine_on_mines_what_waits(any_l1: str) -> None:
    """A transaction sent while mining is off is mined as soon as mining is turned on
    again, as on anvil; not left waiting for some later transaction."""
    import time

    w3 = Web3(Web3.HTTPProvider(any_l1))
    alice, bob = (Account.from_key(bytes(a.key)) for a in dev_accounts(10)[8:10])  # used by no other test here
    w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [False])
    try:
        tx = {"to": bob.address, "value": 1, "gas": 21_000, "chainId": w3.eth.chain_id,
              "nonce": w3.eth.get_transaction_count(alice.address, "pending"),
              "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
              "maxPriorityFeePerGas": 10**9}
        tx_hash = w3.eth.send_raw_transaction(alice.sign_transaction(tx).raw_transaction)
        assert w3.eth.get_transaction_count(alice.address) == tx["nonce"]  # not mined yet
    finally:
        w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [True])
    deadline = time.monotonic() + 5
    while True:  # anvil's miner runs in the background: give it a moment
        try:
            receipt = w3.eth.get_transaction_receipt(tx_hash)
            break
        except TransactionNotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert receipt["status"] == 1


# ---------------------------------------------------------------------- as wallets use the node
# Each test runs against our node and against anvil (any_l1): both must answer alike.

COUNTER_RUNTIME = (
    "600054600101806000556000527f"
    + Web3.keccak(text="Bumped(uint256)").hex().removeprefix("0x")
    + "60206000a160206000f3"
)
"""A contract counting its calls: slot 0 += 1, emit Bumped(count), return count."""


def raw_rpc(url: str, method: str, params: list[Any]) -> dict[str, Any]:
    """The node's whole JSON-RPC reply ({result} or {error})."""
    import json
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    reply: dict[str, Any] = json.loads(urllib.request.urlopen(request, timeout=30).read())
    return reply


def mined_receipt(w3: Web3, tx_hash: Any) -> Any:
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10, poll_latency=0.05)


def deploy_counter(w3: Web3, sender: ChecksumAddress) -> ChecksumAddress:
    size = f"{len(COUNTER_RUNTIME) // 2:02x}"
    init = HexStr(f"0x60{size}600c60003960{size}6000f3{COUNTER_RUNTIME}")
    receipt = mined_receipt(w3, w3.eth.send_transaction({"from": sender, "data": init}))
    return Web3.to_checksum_address(receipt["contractAddress"])


def test_signing_with_unlocked_accounts(any_l1: str) -> None:
    from eth_account.messages import encode_defunct, encode_typed_data

    address = dev_accounts(1)[0].address
    data = "0x" + b"sign me".hex()
    personal = raw_rpc(any_l1, "personal_sign", [data, address.lower()])["result"]
    assert raw_rpc(any_l1, "eth_sign", [address, data])["result"] == personal
    assert Account.recover_message(encode_defunct(primitive=b"sign me"), signature=personal) == address
    assert len(bytes.fromhex(personal[2:])) == 65 and personal[-2:] in ("1b", "1c")
    typed = {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
                  "Order": [{"name": "size", "type": "int256"}, {"name": "market", "type": "string"}]},
        "primaryType": "Order", "domain": {"name": "rollup", "chainId": 31337},
        "message": {"size": -5, "market": "ETH-PERP"},
    }
    as_object = raw_rpc(any_l1, "eth_signTypedData_v4", [address, typed])["result"]
    import json

    assert raw_rpc(any_l1, "eth_signTypedData_v4", [address, json.dumps(typed)])["result"] == as_object
    assert Account.recover_message(encode_typed_data(full_message=typed), signature=as_object) == address
    # eth_signTransaction: the pending nonce and what was asked, signed, and nothing sent
    w3 = Web3(Web3.HTTPProvider(any_l1))
    nonce = w3.eth.get_transaction_count(address, "pending")
    raw = raw_rpc(any_l1, "eth_signTransaction", [{"from": address, "to": address, "value": "0x7", "gas": "0x5208"}])
    signed = bytes.fromhex(raw["result"][2:])
    assert Account.recover_transaction(signed) == address
    assert signed[0] == 2  # EIP-1559 unless gasPrice asks for legacy
    assert w3.eth.get_transaction_count(address, "pending") == nonce
    legacy = raw_rpc(any_l1, "eth_signTransaction", [{"from": address, "to": address, "gas": "0x5208", "gasPrice": "0x1"}])
    assert bytes.fromhex(legacy["result"][2:])[0] >= 0xC0  # an RLP list: legacy
    # an account without a key here: anvil's error, for each method
    stranger = "0x" + "12" * 20
    for method, params in (("personal_sign", [data, stranger]), ("eth_sign", [stranger, data]),
                           ("eth_signTypedData_v4", [stranger, typed]),
                           ("eth_signTransaction", [{"from": stranger, "to": stranger}]),
                           ("eth_sendTransaction", [{"from": stranger, "to": stranger}])):
        error = raw_rpc(any_l1, method, params)["error"]
        assert (error["code"], error["message"]) == (-32602, "No Signer available"), method
    assert raw_rpc(any_l1, "personal_sign", ["not hex", address])["error"]["code"] == -32602


def test_anvil_mine_blocks_and_interval(any_l1: str) -> None:
    w3 = Web3(Web3.HTTPProvider(any_l1))

    def mine(params: list[Any]) -> list[int]:
        start = w3.eth.block_number
        assert raw_rpc(any_l1, "anvil_mine", params)["result"] is None
        return [w3.eth.get_block(n)["timestamp"] for n in range(start, w3.eth.block_number + 1)]

    assert len(mine(["0x3", "0x0"])) == 4  # viem's testClient.mine sends interval 0x0
    assert len(mine([2, 0])) == 3
    assert len(mine([])) == 2
    assert len(mine([None, None])) == 2
    assert len(mine(["0x0"])) == 1
    stamps = mine(["0x2", "0x64"])
    assert len(stamps) == 3 and all(b - a >= 100 for a, b in zip(stamps, stamps[1:], strict=False))
    assert raw_rpc(any_l1, "anvil_mine", ["x"])["error"]["code"] == -32602


def test_refusals_worded_as_wallet_libraries_classify_them(any_l1: str) -> None:
    """Each refusal's message matches viem's pattern for it (ethers v6 matches
    "insufficient funds" and "nonce ... too low" the same way)."""
    import re

    w3 = Web3(Web3.HTTPProvider(any_l1))
    key = dev_accounts(6)[5]
    sender = Account.from_key(bytes(key.key))
    base = w3.eth.get_block("latest")["baseFeePerGas"]

    def refusal(account: Any = sender, **fields: Any) -> str:
        nonce = w3.eth.get_transaction_count(account.address, "pending")
        tx = {"chainId": 31337, "nonce": nonce, "to": sender.address, "value": 1, "gas": 21_000,
              "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9, **fields}
        raw = "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()
        message = raw_rpc(any_l1, "eth_sendRawTransaction", [raw])["error"]["message"]
        return str(message).lower()

    mined_receipt(w3, w3.eth.send_raw_transaction(sender.sign_transaction({
        "chainId": 31337, "nonce": w3.eth.get_transaction_count(sender.address), "to": sender.address,
        "value": 1, "gas": 21_000, "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9,
    }).raw_transaction))
    assert re.search(r"insufficient funds", refusal(Account.create("nobody")))
    assert re.search(r"insufficient funds", refusal(value=10**30))
    assert re.search(r"nonce too low", refusal(nonce=0))
    assert re.search(r"intrinsic gas too low", refusal(gas=20_999))
    assert re.search(r"intrinsic gas too high|gas limit reached", refusal(gas=10**9))
    assert re.search(r"max priority fee per gas higher than max fee per gas",
                     refusal(maxFeePerGas=10**9, maxPriorityFeePerGas=10**10))
    assert re.search(r"max fee per gas less than block base fee", refusal(maxFeePerGas=1, maxPriorityFeePerGas=1))
    via_send = raw_rpc(any_l1, "eth_sendTransaction", [{"from": sender.address, "to": sender.address,
                                                         "value": hex(10**30), "gas": "0x5208"}])
    assert re.search(r"insufficient funds", via_send["error"]["message"].lower())
    call = raw_rpc(any_l1, "eth_call", [{"from": sender.address, "to": sender.address, "value": hex(10**30)}, "latest"])
    assert re.search(r"insufficient funds", call["error"]["message"].lower())


def test_get_logs_ranges_as_anvil_answers_them(any_l1: str) -> None:
    w3 = Web3(Web3.HTTPProvider(any_l1))
    sender = dev_accounts(5)[4].address
    counter = deploy_counter(w3, sender)
    receipt = mined_receipt(w3, w3.eth.send_transaction({"from": sender, "to": counter}))
    head = w3.eth.block_number
    at = receipt["blockNumber"]

    def logs(spec: dict[str, Any]) -> Any:
        reply = raw_rpc(any_l1, "eth_getLogs", [{"address": counter, **spec}])
        return reply["error"]["code"] if "error" in reply else len(reply["result"])

    assert logs({"fromBlock": hex(at), "toBlock": hex(at)}) == 1
    assert logs({"fromBlock": hex(at), "toBlock": hex(at - 1)}) == 0  # reversed: nothing
    assert logs({"fromBlock": hex(at), "toBlock": hex(head + 1_000)}) == 1  # toBlock past the head
    assert logs({"fromBlock": hex(head + 1)}) == -32602  # fromBlock past the head
    assert logs({"blockHash": receipt["blockHash"].to_0x_hex()}) == 1
    assert logs({"blockHash": receipt["blockHash"].to_0x_hex(), "toBlock": "latest"}) == -32602
    assert logs({"blockHash": "0x" + "ab" * 32}) == -32000


def test_create_access_list(any_l1: str) -> None:
    w3 = Web3(Web3.HTTPProvider(any_l1))
    sender = dev_accounts(5)[4].address
    counter = deploy_counter(w3, sender)
    reply = raw_rpc(any_l1, "eth_createAccessList", [{"from": sender, "to": counter}, "latest"])["result"]
    assert reply == {"accessList": [{"address": counter.lower(), "storageKeys": ["0x" + "00" * 32]}],
                     "gasUsed": hex(46_445)}  # 21,000 + 2,400 + 1,900 + the call with slot 0 warm
    given = [{"address": sender.lower(), "storageKeys": []}]
    with_given = raw_rpc(any_l1, "eth_createAccessList", [{"from": sender, "to": counter, "accessList": given}])
    # the given entry is kept beside the touched one (anvil lists them in no fixed order)
    by_address = sorted(with_given["result"]["accessList"], key=lambda e: e["address"])
    assert by_address == sorted(given + reply["accessList"], key=lambda e: e["address"])
    created = raw_rpc(any_l1, "eth_createAccessList", [{"from": sender, "data": "0x00"}])["result"]
    assert created["accessList"] == []


# ---------------------------------------------------------------------- the transaction pool
# A transaction whose nonce is ahead of its sender's waits in the pool ("queued") until the
# gap fills, on our node as on anvil. Each test's sender is a fresh account, funded with
# anvil_setBalance, so that a test never meets another's queued transactions.


def funded_account(url: str, wei: int = 10**18) -> Any:
    account = Account.create()
    assert raw_rpc(url, "anvil_setBalance", [account.address, hex(wei)])["result"] is None
    return account


def signed(url: str, account: Any, nonce: int, **fields: Any) -> str:
    """A raw EIP-1559 transfer of 1 wei (fee cap 10 gwei, tip 1 gwei unless given)."""
    tx = {"chainId": 31337, "nonce": nonce, "to": "0x" + "11" * 20, "value": 1, "gas": 21_000,
          "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, **fields}
    return "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()


def send(url: str, raw: str) -> dict[str, Any]:
    return raw_rpc(url, "eth_sendRawTransaction", [raw])


def queued_of(url: str, address: str) -> dict[str, Any]:
    """The sender's queued transactions in txpool_content, by nonce (decimal)."""
    queued: dict[str, Any] = raw_rpc(url, "txpool_content", [])["result"]["queued"]
    return queued.get(address.lower(), {})


def receipt_of(url: str, tx_hash: str) -> dict[str, Any]:
    """The receipt, once mined (anvil's miner runs in the background: allow it a moment)."""
    import time

    deadline = time.monotonic() + 5
    while (receipt := raw_rpc(url, "eth_getTransactionReceipt", [tx_hash])["result"]) is None:
        assert time.monotonic() < deadline, f"{tx_hash} not mined"
        time.sleep(0.05)
    return dict(receipt)


def test_a_future_nonce_is_queued_until_its_gap_fills(any_l1: str) -> None:
    sender = funded_account(any_l1)
    later = send(any_l1, signed(any_l1, sender, 1))["result"]
    # queued: visible by hash with no block, no receipt, no nonce taken, in txpool_*
    tx = raw_rpc(any_l1, "eth_getTransactionByHash", [later])["result"]
    assert (tx["hash"], tx["nonce"], tx["from"]) == (later, "0x1", sender.address.lower())
    assert tx["blockHash"] is None and tx["blockNumber"] is None and tx["transactionIndex"] is None
    assert raw_rpc(any_l1, "eth_getTransactionReceipt", [later])["result"] is None
    for tag in ("latest", "pending"):
        assert raw_rpc(any_l1, "eth_getTransactionCount", [sender.address, tag])["result"] == "0x0"
    assert list(queued_of(any_l1, sender.address)) == ["1"]
    assert queued_of(any_l1, sender.address)["1"]["hash"] == later
    assert int(raw_rpc(any_l1, "txpool_status", [])["result"]["queued"], 16) >= 1
    inspect = raw_rpc(any_l1, "txpool_inspect", [])["result"]["queued"][sender.address.lower()]
    assert inspect == {"1": "0x" + "11" * 20 + ": 1 wei + 21000 gas × 10000000000 wei"}
    # the gap filled: both mined, in nonce order, in the same block
    first = send(any_l1, signed(any_l1, sender, 0))["result"]
    mined = [receipt_of(any_l1, first), receipt_of(any_l1, later)]
    assert [r["status"] for r in mined] == ["0x1", "0x1"]
    assert mined[0]["blockNumber"] == mined[1]["blockNumber"]
    assert [r["transactionIndex"] for r in mined] == ["0x0", "0x1"]
    assert raw_rpc(any_l1, "eth_getTransactionCount", [sender.address, "latest"])["result"] == "0x2"
    assert queued_of(any_l1, sender.address) == {}


def test_queued_transactions_fill_in_nonce_order_whatever_the_arrival(any_l1: str) -> None:
    sender = funded_account(any_l1)
    hashes = {nonce: send(any_l1, signed(any_l1, sender, nonce))["result"] for nonce in (3, 1, 2)}
    assert sorted(queued_of(any_l1, sender.address)) == ["1", "2", "3"]
    hashes[0] = send(any_l1, signed(any_l1, sender, 0))["result"]
    mined = {nonce: receipt_of(any_l1, tx_hash) for nonce, tx_hash in hashes.items()}
    assert len({r["blockNumber"] for r in mined.values()}) == 1
    assert [mined[n]["transactionIndex"] for n in range(4)] == ["0x0", "0x1", "0x2", "0x3"]


def test_a_queued_transaction_is_checked_as_any_other(any_l1: str) -> None:
    """Every refusal but the nonce's applies to a future nonce too; nothing is queued."""
    import re

    sender = funded_account(any_l1)
    for fields, words in (({"value": 10**30}, r"insufficient funds"),
                          ({"gas": 20_000}, r"intrinsic gas too low"),
                          ({"gas": 10**9}, r"intrinsic gas too high"),
                          ({"maxFeePerGas": 1, "maxPriorityFeePerGas": 1}, r"max fee per gas less than block base fee"),
                          ({"maxFeePerGas": 10**9, "maxPriorityFeePerGas": 10**10},
                           r"max priority fee per gas higher than max fee per gas")):
        error = send(any_l1, signed(any_l1, sender, 5, **fields))["error"]
        assert re.search(words, error["message"].lower()), (fields, error)
    assert queued_of(any_l1, sender.address) == {}


def test_queued_replacement_rules(any_l1: str) -> None:
    """The same transaction again is "already imported"; another for the same nonce must
    offer a strictly higher price (the fee cap of an EIP-1559 transaction; a higher tip
    alone does not count) to replace it; the replacement is what the gap's filling mines."""
    sender = funded_account(any_l1)
    queued = signed(any_l1, sender, 1)
    send(any_l1, queued)

    def refusal(raw: str) -> tuple[int, str]:
        error = send(any_l1, raw)["error"]
        return error["code"], error["message"]

    assert refusal(queued) == (-32003, "transaction already imported")
    underpriced = (-32003, "replacement transaction underpriced")
    assert refusal(signed(any_l1, sender, 1, value=2)) == underpriced  # the same price
    assert refusal(signed(any_l1, sender, 1, value=2, maxPriorityFeePerGas=2 * 10**9)) == underpriced
    assert refusal(signed(any_l1, sender, 1, value=2, maxFeePerGas=10**10 - 1)) == underpriced
    better = send(any_l1, signed(any_l1, sender, 1, value=2, maxFeePerGas=10**10 + 1))["result"]
    # (our node drops the replaced transaction at once; anvil keeps it, by hash and in
    # txpool_content, until the gap fills, then mines the better one as well)
    first = send(any_l1, signed(any_l1, sender, 0))["result"]
    assert receipt_of(any_l1, first)["status"] == "0x1"
    mined = raw_rpc(any_l1, "eth_getTransactionByHash", [better])["result"]
    assert mined["blockNumber"] is not None and mined["value"] == "0x2"


def test_a_queued_transaction_no_longer_affordable_is_dropped(any_l1: str) -> None:
    """Checked again when its gap fills: one the sender can no longer pay for is dropped
    (our node logs it), the transaction that filled the gap is mined."""
    sender = funded_account(any_l1, 10**18)
    queued = send(any_l1, signed(any_l1, sender, 1, value=5 * 10**17))["result"]
    first = send(any_l1, signed(any_l1, sender, 0, value=9 * 10**17))["result"]
    assert receipt_of(any_l1, first)["status"] == "0x1"
    assert raw_rpc(any_l1, "eth_getTransactionByHash", [queued])["result"] is None
    assert queued_of(any_l1, sender.address) == {}
    assert raw_rpc(any_l1, "eth_getTransactionCount", [sender.address, "latest"])["result"] == "0x1"


def test_the_queue_survives_evm_revert(any_l1: str) -> None:
    """evm_revert leaves the queue as it is (anvil's rule); what was mined after the
    snapshot is gone, not put back into the pool."""
    sender = funded_account(any_l1)
    snapshot = raw_rpc(any_l1, "evm_snapshot", [])["result"]
    queued = send(any_l1, signed(any_l1, sender, 1))["result"]
    assert raw_rpc(any_l1, "evm_revert", [snapshot])["result"] is True
    assert queued_of(any_l1, sender.address)["1"]["hash"] == queued
    snapshot = raw_rpc(any_l1, "evm_snapshot", [])["result"]
    first = send(any_l1, signed(any_l1, sender, 0))["result"]
    assert receipt_of(any_l1, queued)["blockNumber"] == receipt_of(any_l1, first)["blockNumber"]
    assert raw_rpc(any_l1, "evm_revert", [snapshot])["result"] is True
    for tx_hash in (first, queued):
        assert raw_rpc(any_l1, "eth_getTransactionByHash", [tx_hash])["result"] is None
    assert queued_of(any_l1, sender.address) == {}
    assert raw_rpc(any_l1, "eth_getTransactionCount", [sender.address, "latest"])["result"] == "0x0"


def test_remove_pool_transactions_of_a_sender(any_l1: str) -> None:
    sender, other = funded_account(any_l1), funded_account(any_l1)
    for nonce in (1, 2):
        send(any_l1, signed(any_l1, sender, nonce))
    kept = send(any_l1, signed(any_l1, other, 1))["result"]
    assert raw_rpc(any_l1, "anvil_removePoolTransactions", [sender.address])["result"] is None
    assert queued_of(any_l1, sender.address) == {}
    assert queued_of(any_l1, other.address)["1"]["hash"] == kept
    assert raw_rpc(any_l1, "anvil_removePoolTransactions", [other.address])["result"] is None
    assert raw_rpc(any_l1, "anvil_removePoolTransactions", ["0x12"])["error"]["code"] == -32602


def test_pool_with_automine_off(any_l1: str) -> None:
    """A filled gap moves the queued transaction next to the one that filled it: both
    pending (txpool_status, the pending nonce), both mined by the next block."""
    sender = funded_account(any_l1)
    raw_rpc(any_l1, "evm_setAutomine", [False])
    try:
        queued = send(any_l1, signed(any_l1, sender, 1))["result"]
        first = send(any_l1, signed(any_l1, sender, 0))["result"]
        assert raw_rpc(any_l1, "txpool_status", [])["result"] == {"pending": "0x2", "queued": "0x0"}
        assert raw_rpc(any_l1, "eth_getTransactionCount", [sender.address, "pending"])["result"] == "0x2"
        assert sorted(raw_rpc(any_l1, "txpool_content", [])["result"]["pending"][sender.address.lower()]) == ["0", "1"]
        assert raw_rpc(any_l1, "eth_getTransactionByHash", [queued])["result"]["blockNumber"] is None
        assert raw_rpc(any_l1, "evm_mine", [])["result"] == "0x0"
    finally:
        raw_rpc(any_l1, "evm_setAutomine", [True])
    assert receipt_of(any_l1, first)["blockNumber"] == receipt_of(any_l1, queued)["blockNumber"]


def test_interval_mining_mines_a_filled_gap(tmp_path: Any) -> None:
    import time

    url, proc = start_rollup_l1(tmp_path, "--block-time", "0.5")
    try:
        sender = funded_account(url)
        while raw_rpc(url, "eth_getBalance", [sender.address, "latest"])["result"] == "0x0":
            time.sleep(0.05)  # the balance is set by the next block
        queued = send(url, signed(url, sender, 1))["result"]
        first = send(url, signed(url, sender, 0))["result"]
        assert receipt_of(url, first)["blockNumber"] == receipt_of(url, queued)["blockNumber"]
    finally:
        proc.stop()


# ------------------------------------------------------------ the pool on our node only


def test_drop_a_queued_transaction(l1_url: str) -> None:
    """anvil_dropTransaction takes a queued transaction out (anvil 1.7 drops only
    transactions ready to mine, and leaves a queued one where it is)."""
    sender = funded_account(l1_url)
    dropped = send(l1_url, signed(l1_url, sender, 1))["result"]
    kept = send(l1_url, signed(l1_url, sender, 2))["result"]
    assert raw_rpc(l1_url, "anvil_dropTransaction", [dropped])["result"] is None
    assert raw_rpc(l1_url, "eth_getTransactionByHash", [dropped])["result"] is None
    assert list(queued_of(l1_url, sender.address)) == ["2"]
    assert raw_rpc(l1_url, "anvil_dropTransaction", [dropped])["result"] is None  # gone already
    assert raw_rpc(l1_url, "anvil_dropTransaction", ["0x12"])["error"]["code"] == -32602
    # nonce 1 is missing again: filling 0 mines 0 alone, 2 waits for a new 1
    first = send(l1_url, signed(l1_url, sender, 0))["result"]
    assert receipt_of(l1_url, first)["status"] == "0x1"
    assert queued_of(l1_url, sender.address)["2"]["hash"] == kept
    second = send(l1_url, signed(l1_url, sender, 1))["result"]
    assert receipt_of(l1_url, second)["blockNumber"] == receipt_of(l1_url, kept)["blockNumber"]


def test_drop_pending_transactions(l1_url: str) -> None:
    """With mining off, dropping a pending transaction takes its sender's later ones with
    it; the rest of the pending block is kept. anvil_dropAllTransactions empties the pool."""
    alice, bob = funded_account(l1_url), funded_account(l1_url)
    raw_rpc(l1_url, "evm_setAutomine", [False])
    try:
        a0, a1 = (send(l1_url, signed(l1_url, alice, n))["result"] for n in (0, 1))
        b0 = send(l1_url, signed(l1_url, bob, 0))["result"]
        queued = send(l1_url, signed(l1_url, bob, 2))["result"]
        assert raw_rpc(l1_url, "anvil_dropTransaction", [a0])["result"] is None
        assert raw_rpc(l1_url, "txpool_status", [])["result"] == {"pending": "0x1", "queued": "0x1"}
        assert raw_rpc(l1_url, "eth_getTransactionByHash", [a1])["result"] is None
        assert raw_rpc(l1_url, "eth_getTransactionCount", [alice.address, "pending"])["result"] == "0x0"
        assert raw_rpc(l1_url, "anvil_dropAllTransactions", [])["result"] is None
        assert raw_rpc(l1_url, "txpool_status", [])["result"] == {"pending": "0x0", "queued": "0x0"}
        for tx_hash in (b0, queued):
            assert raw_rpc(l1_url, "eth_getTransactionByHash", [tx_hash])["result"] is None
    finally:
        raw_rpc(l1_url, "evm_setAutomine", [True])


def test_queue_caps(tmp_path: Any) -> None:
    """At most 64 queued transactions per sender and 1,024 in all (geth's defaults):
    beyond, "account limit exceeded" and "txpool is full" (-32003), nothing queued; a
    replacement needs no new room."""
    from rollup.l1.txpool import MAX_QUEUED, MAX_QUEUED_PER_SENDER

    url, proc = start_rollup_l1(tmp_path)
    try:
        senders = [funded_account(url) for _ in range(MAX_QUEUED // MAX_QUEUED_PER_SENDER + 1)]
        for sender in senders[:-1]:
            for nonce in range(1, MAX_QUEUED_PER_SENDER + 1):
                assert "result" in send(url, signed(url, sender, nonce))
        first = senders[0]
        error = send(url, signed(url, first, MAX_QUEUED_PER_SENDER + 1))["error"]
        assert error["code"] == -32003 and error["message"].startswith("account limit exceeded")
        error = send(url, signed(url, senders[-1], 1))["error"]
        assert error["code"] == -32003 and error["message"].startswith("txpool is full")
        status = raw_rpc(url, "txpool_status", [])["result"]
        assert status == {"pending": "0x0", "queued": hex(MAX_QUEUED)}
        assert "result" in send(url, signed(url, first, 5, maxFeePerGas=2 * 10**10))
        # the gap filled: the sender's 64 are mined, and there is room again
        filler = send(url, signed(url, first, 0))["result"]
        assert receipt_of(url, filler)["status"] == "0x1"
        assert raw_rpc(url, "eth_getTransactionCount", [first.address, "latest"])["result"] == hex(65)
        assert "result" in send(url, signed(url, senders[-1], 1))
    finally:
        proc.stop()
