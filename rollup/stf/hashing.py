"""keccak-256, through the fastest backend installed (safe-pysha3 ~1 us per short input)."""

from __future__ import annotations

from typing import Any

try:
    from sha3 import keccak_256  # safe-pysha3
except ImportError:  # pragma: no cover - fallback, about 6x slower
    from Crypto.Hash import keccak as _pycryptodome_keccak

    def keccak_256(data: bytes) -> Any:
        return _pycryptodome_keccak.new(digest_bits=256, data=data)


def keccak(data: bytes) -> bytes:
    """keccak-256 of `data` (Ethereum's hash, not NIST SHA3)."""
    return keccak_256(data).digest()

ZERO_HASH = b"\0" * 32
"""The hash of an empty leaf or an all-empty subtree."""


def keccak_backend() -> str:
    """The name of the backend `eth_hash.auto.keccak` uses (resolving it if not yet)."""
    from eth_hash.auto import keccak as auto

    auto(b"")  # the first call binds the backend
    return type(getattr(auto.hasher, "__self__", auto.hasher)).__module__


def use_fast_keccak() -> None:
    """Bind eth-hash's shared `keccak` (used by py-evm, web3, eth-account and eth-utils)
    to safe-pysha3 when it is installed (ETH_HASH_BACKEND, if set, is respected)."""
    import os

    from eth_hash.auto import keccak as auto

    if os.environ.get("ETH_HASH_BACKEND"):
        return
    try:
        from eth_hash.backends.pysha3 import backend
    except ImportError:  # pragma: no cover - pycryptodome it is
        return
    # (eth-hash types these as its own first-run methods, whose parameter is named differently)
    auto.hasher = backend.keccak256  # type: ignore[assignment]
    auto.preimage = backend.preimage  # type: ignore[assignment]
