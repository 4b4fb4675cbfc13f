"""The Vyper contract toolchain: compile `l1_contracts/*.vy` through vyper's Python API.

`l1_contracts/` holds what deploys (CapitalCase files) and the modules those contracts
import (lowercase files). Test-only contracts (harnesses, a hostile token) live with the
tests, which name their directory with `add_source_dir`; their sources import the modules
of `l1_contracts/`, which is searched first.

Artifacts (ABI and bytecode) are cached on disk by a hash of every source in those
directories, the compiler version and the settings, so repeated runs do not recompile.
The cache lives in `$ROLLUP_CACHE_DIR` or `~/.cache/derivatives-rollup`.
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
"""Where the deployable contracts and their modules live."""

EXTRA_DIRS: list[Path] = []
"""More directories of contracts (the tests' own), searched after CONTRACTS_DIR."""


def add_source_dir(path: Path) -> None:
    """Let `load` find the contracts in `path` (their imports resolve in CONTRACTS_DIR first)."""
    path = Path(path).resolve()
    if path not in EXTRA_DIRS:
        EXTRA_DIRS.append(path)


def source_dirs() -> list[Path]:
    """The vyper search path: CONTRACTS_DIR, then EXTRA_DIRS."""
    return [CONTRACTS_DIR, *EXTRA_DIRS]


def source_path(name: str) -> Path:
    """The file of contract `name`: the first `<name>.vy` on the search path."""
    for directory in source_dirs():
        path = directory / f"{name}.vy"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no contract {name}.vy in {', '.join(map(str, source_dirs()))}")

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
    """Hash of every contract source on the search path (each directory's files named by
    their place in it), the compiler version and our settings (computed again only when a
    source file's size or modification time changed)."""
    import vyper

    paths = [(f"{i}/{p.name}", p) for i, d in enumerate(source_dirs()) for p in sorted(d.glob("*.vy"))]
    stamp = tuple((name, p.stat().st_mtime_ns, p.stat().st_size) for name, p in paths)
    if stamp not in _digests:
        digest = hashlib.sha256(f"vyper {vyper.__version__} evm {EVM_VERSION} opt gas\n".encode())
        for name, path in paths:
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        _digests[stamp] = digest.hexdigest()
    return _digests[stamp]


def _compile(name: str) -> Artifact:
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.settings import OptimizationLevel, Settings

    bundle = FilesystemInputBundle(source_dirs())
    file_input = bundle.load_file(source_path(name))
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
    """The artifact of contract `name` (`source_path`), from memory, the disk cache, or the
    compiler."""
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
    """Deployable contracts: CapitalCase files of CONTRACTS_DIR. lowercase files are Vyper
    modules, compiled into the contracts that import them."""
    return sorted(p.stem for p in CONTRACTS_DIR.glob("*.vy") if p.stem[:1].isupper())


def module_names() -> list[str]:
    return sorted(p.stem for p in CONTRACTS_DIR.glob("*.vy") if not p.stem[:1].isupper())
