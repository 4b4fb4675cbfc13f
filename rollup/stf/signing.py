"""EIP-712 typed data: what users, oracles and the L1 verifier hash and sign.

Domain: EIP712Domain(string name, string version, uint256 chainId, address verifyingContract)
with name "DerivativesRollup" and version "1"; chain id and verifying contract come from
the deployment, so a signature is good on one rollup only. Signatures are 65 bytes
r ++ s ++ v with v in {27, 28}, 0 < r < n and 0 < s <= n/2 (EIP-2 low-s: one form only).
"""

from __future__ import annotations

import coincurve
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from .constants import SECP256K1_HALF_N, SECP256K1_N
from .hashing import keccak

DOMAIN_NAME = "DerivativesRollup"
DOMAIN_VERSION = "1"

DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
ORDER_TYPE = (
    "Order(uint32 account,uint8 market,bool isBuy,uint64 size,uint64 limitPrice,"
    "uint32 maxFeePpm,uint64 nonce,uint64 expiry)"
)
WITHDRAWAL_TYPE = "Withdrawal(uint32 account,uint64 amount,uint64 nonce,uint64 expiry)"
CANCEL_TYPE = "Cancel(uint32 account,uint64 nonce)"
ORACLE_PRICE_TYPE = "OraclePrice(uint8 market,uint64 price,uint64 timestamp)"
RISK_REPORT_TYPE = "RiskReport(uint8 market,uint64 mark,int32 delta,int64 gamma,int64 vega,uint64 timestamp)"
SETTLEMENT_TYPE = "Settlement(uint8 market,uint64 price,uint64 expiry)"

ORDER_TYPEHASH = keccak(ORDER_TYPE.encode())
WITHDRAWAL_TYPEHASH = keccak(WITHDRAWAL_TYPE.encode())
CANCEL_TYPEHASH = keccak(CANCEL_TYPE.encode())
ORACLE_PRICE_TYPEHASH = keccak(ORACLE_PRICE_TYPE.encode())
RISK_REPORT_TYPEHASH = keccak(RISK_REPORT_TYPE.encode())
SETTLEMENT_TYPEHASH = keccak(SETTLEMENT_TYPE.encode())

EIP712_TYPES = {
    "Order": [
        {"name": "account", "type": "uint32"},
        {"name": "market", "type": "uint8"},
        {"name": "isBuy", "type": "bool"},
        {"name": "size", "type": "uint64"},
        {"name": "limitPrice", "type": "uint64"},
        {"name": "maxFeePpm", "type": "uint32"},
        {"name": "nonce", "type": "uint64"},
        {"name": "expiry", "type": "uint64"},
    ],
    "Withdrawal": [
        {"name": "account", "type": "uint32"},
        {"name": "amount", "type": "uint64"},
        {"name": "nonce", "type": "uint64"},
        {"name": "expiry", "type": "uint64"},
    ],
    "Cancel": [{"name": "account", "type": "uint32"}, {"name": "nonce", "type": "uint64"}],
    "OraclePrice": [
        {"name": "market", "type": "uint8"},
        {"name": "price", "type": "uint64"},
        {"name": "timestamp", "type": "uint64"},
    ],
    "RiskReport": [
        {"name": "market", "type": "uint8"},
        {"name": "mark", "type": "uint64"},
        {"name": "delta", "type": "int32"},
        {"name": "gamma", "type": "int64"},
        {"name": "vega", "type": "int64"},
        {"name": "timestamp", "type": "uint64"},
    ],
    "Settlement": [
        {"name": "market", "type": "uint8"},
        {"name": "price", "type": "uint64"},
        {"name": "expiry", "type": "uint64"},
    ],
}
"""The message types in the form eth_account's sign_typed_data takes."""


def word(value: int) -> bytes:
    """A 32-byte EIP-712 word: a negative value (int32, int64) in two's complement."""
    return value.to_bytes(32, "big", signed=value < 0)


def domain_separator(chain_id: int, verifying_contract: bytes) -> bytes:
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(DOMAIN_NAME.encode())
        + keccak(DOMAIN_VERSION.encode())
        + word(chain_id)
        + b"\0" * 12
        + verifying_contract
    )


def typed_digest(domain: bytes, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + domain + struct_hash)


def struct_hash(typehash: bytes, *values: int) -> bytes:
    return keccak(typehash + b"".join(word(v) for v in values))


_recovered: dict[bytes, bytes | None] = {}
_CACHE_LIMIT = 1 << 16


def recover(digest: bytes, signature: bytes) -> bytes | None:
    """The address that signed `digest`, or None if the signature is malformed, high-s,
    or does not recover (as ecrecover returning 0). Results are memoised: the same
    (digest, signature) always recovers the same address."""
    key = digest + signature
    if key in _recovered:
        return _recovered[key]
    address = _recover(digest, signature)
    if len(_recovered) >= _CACHE_LIMIT:
        _recovered.clear()
    _recovered[key] = address
    return address


def remember_all(entries: list[tuple[bytes, bytes | None]]) -> None:
    """Memoise recoveries done elsewhere: (digest ++ signature, signer) pairs."""
    if len(_recovered) + len(entries) > _CACHE_LIMIT:
        _recovered.clear()
    _recovered.update(entries)


def _recover(digest: bytes, signature: bytes) -> bytes | None:
    if len(signature) != 65:
        return None
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28) or not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_HALF_N:
        return None
    # libsecp256k1 directly (as coincurve.PublicKey.from_signature_and_message does,
    # without its Python layers): parse, recover, serialise uncompressed.
    parsed = ffi.new("secp256k1_ecdsa_recoverable_signature *")
    if not lib.secp256k1_ecdsa_recoverable_signature_parse_compact(
        _CONTEXT, parsed, signature[:64], v - 27
    ):
        return None
    public = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ecdsa_recover(_CONTEXT, public, parsed, digest):
        return None  # r is not the x-coordinate of a curve point
    lib.secp256k1_ec_pubkey_serialize(_CONTEXT, _SERIALIZED, _SERIALIZED_SIZE, public, _UNCOMPRESSED)
    return keccak(ffi.buffer(_SERIALIZED, 65)[1:])[12:]


_CONTEXT = GLOBAL_CONTEXT.ctx
_SERIALIZED = ffi.new("unsigned char[65]")
_SERIALIZED_SIZE = ffi.new("size_t *", 65)
_UNCOMPRESSED = lib.SECP256K1_EC_UNCOMPRESSED


def sign(digest: bytes, private_key: bytes) -> bytes:
    """A low-s signature r ++ s ++ v (v in {27, 28}) of `digest` (coincurve signs low-s)."""
    raw = coincurve.PrivateKey(private_key).sign_recoverable(digest, hasher=None)
    return raw[:64] + bytes((raw[64] + 27,))


def address_of(private_key: bytes) -> bytes:
    public = coincurve.PrivateKey(private_key).public_key.format(compressed=False)
    return keccak(public[1:])[12:]


def compact(signature: bytes) -> bytes:
    """The 64-byte EIP-2098 form of a 65-byte signature r ++ s ++ v: r ++ (y << 255 | s)
    with y = v - 27. Exact for every signature the rules accept (v in {27, 28}, s <= n/2
    < 2**255); of any other 65 bytes it keeps r, the low 255 bits of s and v's low bit
    flipped (y = (v - 27) & 1), so that it is defined on every input."""
    if len(signature) != 65:
        raise ValueError("a signature is 65 bytes")
    y = (signature[64] - 27) & 1
    s = int.from_bytes(signature[32:64], "big") & ((1 << 255) - 1)
    return signature[:32] + ((y << 255) | s).to_bytes(32, "big")


def expand(signature: bytes) -> bytes:
    """The 65-byte r ++ s ++ v of a 64-byte EIP-2098 signature (v = 27 + its top bit)."""
    ys = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (ys & ((1 << 255) - 1)).to_bytes(32, "big") + bytes((27 + (ys >> 255),))
