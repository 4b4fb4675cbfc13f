"""The Vyper contract toolchain: compile `l1_contracts/*.vy` through vyper's Python API.

Artifacts (ABI and bytecode) are cached on disk by a hash of every source in
`l1_contracts/`, the compiler version and the settings, so repeated runs do not
recompile. The cache lives in `$ROLLUP_CACHE_DIR` or `~/.cache/derivatives-rollup`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import l1_contracts

CONTRACTS_DIR = Path(l1_contracts.__file__).resolve().parent
"""Where the Vyper sources live."""

EVM_VERSION = "cancun"
"""Target EVM: Cancun runs on every current L1 (our py-evm node is on Prague, a superset)."""


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its name, ABI and creation bytecode."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    runtime_size: int


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "derivatives-rollup"
    return Path(os.environ.get("ROLLUP_CACHE_DIR", default)) / "vyper"


_digests: dict[tuple[tuple[str, int, int], ...], str] = {}


def sources_digest() -> str:
    """Hash of every contract source, the compiler version and our settings (computed again
    only when a source file's size or modification time changed)."""
    import vyper

    paths = sorted(CONTRACTS_DIR.glob("*.vy"))
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    if stamp not in _digests:
        digest = hashlib.sha256(f"vyper {vyper.__version__} evm {EVM_VERSION} opt gas\n".encode())
        for path in paths:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        _digests[stamp] = digest.hexdigest()
    return _digests[stamp]


def _compile(name: str) -> Artifact:
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.settings import OptimizationLevel, Settings

    bundle = FilesystemInputBundle([CONTRACTS_DIR])
    file_input = bundle.load_file(CONTRACTS_DIR / f"{name}.vy")
    output = compile_from_file_input(
        file_input,
        input_bundle=bundle,
        settings=Settings(evm_version=EVM_VERSION, optimize=OptimizationLevel.GAS),
        output_formats=["abi", "bytecode", "bytecode_runtime"],
    )
    return Artifact(
        name=name,
        abi=output["abi"],
        bytecode=bytes.fromhex(output["bytecode"].removeprefix("0x")),
        runtime_size=len(output["bytecode_runtime"].removeprefix("0x")) // 2,
    )


_memory: dict[tuple[str, str], Artifact] = {}


def load(name: str) -> Artifact:
    """The artifact of `l1_contracts/<name>.vy`, from memory, the disk cache, or the compiler."""
    digest = sources_digest()
    key = (name, digest)
    if key in _memory:
        return _memory[key]
    path = cache_dir() / f"{name}-{digest[:24]}.json"
    artifact: Artifact | None = None
    if path.exists():
        try:
            data = json.loads(path.read_text())
            artifact = Artifact(
                name=name,
                abi=data["abi"],
                bytecode=bytes.fromhex(data["bytecode"]),
                runtime_size=data["runtime_size"],
            )
        except (ValueError, KeyError):
            artifact = None  # a damaged cache entry is simply rebuilt
    if artifact is None:
        artifact = _compile(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(
            {"abi": artifact.abi, "bytecode": artifact.bytecode.hex(), "runtime_size": artifact.runtime_size}
        )
        # Write atomically so concurrent processes never read half a file.
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            tmp.write(payload)
        os.replace(tmp.name, path)
    _memory[key] = artifact
    return artifact


def _abi_type(arg: dict[str, Any]) -> str:
    kind = str(arg["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in arg["components"]) + ")" + kind[5:]
    return kind


_functions: dict[tuple[str, str, str], tuple[bytes, list[str]]] = {}


def function_abi(contract: str, name: str) -> tuple[bytes, list[str]]:
    """A contract function's selector and argument types, for encoding its calls with
    eth_abi directly (web3's contract encoder takes about seven times as long on a fraud
    proof's witness)."""
    from eth_utils import function_signature_to_4byte_selector

    key = (contract, name, sources_digest())
    if key not in _functions:
        (fn,) = [f for f in load(contract).abi if f.get("name") == name and f.get("type") == "function"]
        types = [_abi_type(a) for a in fn["inputs"]]
        _functions[key] = function_signature_to_4byte_selector(f"{name}({','.join(types)})"), types
    return _functions[key]


def encode_call(contract: str, name: str, args: list[Any]) -> bytes:
    """The calldata of `contract.name(*args)`."""
    from eth_abi import encode

    selector, types = function_abi(contract, name)
    return selector + encode(types, args)


def contract_names() -> list[str]:
    """Deployable contracts: CapitalCase files. lowercase files are Vyper modules, compiled
    into the contracts that import them."""
    return sorted(p.stem for p in CONTRACTS_DIR.glob("*.vy") if p.stem[:1].isupper())


def module_names() -> list[str]:
    return sorted(p.stem for p in CONTRACTS_DIR.glob("*.vy") if not p.stem[:1].isupper())
