"""EIP-712 digests and signature recovery on the EVM (l1_contracts/signing.vy) agree with the
STF's (rollup/stf/signing.py): the same digest for every order, and the same signer or the
same refusal for valid, corrupted, high-s, bad-v, out-of-range and off-curve signatures."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
from web3 import Web3
from web3.contract import Contract

from rollup.l1.client import L1, default_dev_key
from rollup.stf.constants import SECP256K1_N
from rollup.stf.fork import order_hash
from rollup.stf.signing import domain_separator, recover, sign, typed_digest
from rollup.stf.transactions import Order

CASES = 1_000 if os.environ.get("ROLLUP_LONG") else 80
ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module")
def harness(l1_url: str) -> Iterator[Contract]:
    yield L1(l1_url, default_dev_key()).deploy("SigningHarness")


def signature_variants(rng: random.Random, digest: bytes, key: bytes) -> list[bytes]:
    good = sign(digest, key)
    r, s, v = int.from_bytes(good[:32], "big"), int.from_bytes(good[32:64], "big"), good[64]
    word = lambda x: x.to_bytes(32, "big")  # noqa: E731
    flipped = bytearray(good)
    flipped[rng.randrange(64)] ^= 1 << rng.randrange(8)
    return [
        good,
        bytes(flipped),
        word(r) + word(SECP256K1_N - s) + bytes((55 - v,)),  # the high-s twin
        good[:64] + bytes((v - 27,)),  # v in {0, 1}
        good[:64] + bytes((29,)),
        word(0) + good[32:],
        word(SECP256K1_N) + good[32:],
        good[:32] + word(0) + good[64:],
        word(rng.randrange(1, SECP256K1_N)) + good[32:],  # a random r: often off the curve
    ]


def test_digests_and_recovery_agree(harness: Contract) -> None:
    rng = random.Random(9)
    chain_id, contract = 31337, rng.randbytes(20)
    domain = domain_separator(chain_id, contract)
    assert harness.functions.domain_separator(chain_id, Web3.to_checksum_address(contract)).call() == domain
    refusals = 0
    for _ in range(CASES // 8):
        order = Order(rng.randrange(2**32), rng.randrange(256), rng.random() < 0.5, rng.randrange(2**64),
                      rng.randrange(2**64), rng.randrange(2**32), rng.randrange(2**64), rng.randrange(2**64))
        digest = typed_digest(domain, order_hash(order))
        assert harness.functions.order_digest(domain, tuple(order)).call() == digest
        key = rng.randbytes(32)
        for signature in signature_variants(rng, digest, key):
            ours = recover(digest, signature)
            theirs = harness.functions.recover(digest, signature).call()
            expected = ZERO if ours is None else Web3.to_checksum_address(ours)
            assert theirs == expected, signature.hex()
            refusals += ours is None
    assert refusals > 0
