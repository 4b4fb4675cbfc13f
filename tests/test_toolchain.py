"""The contract toolchain: vyper through its Python API, artifacts cached by source hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollup import contracts


def test_every_contract_compiles() -> None:
    names = contracts.contract_names()
    assert {"CollateralToken", "Bridge", "Rollup", "Verifier"} <= set(names)
    for name in names:
        artifact = contracts.load(name)
        assert artifact.bytecode and artifact.abi
        assert artifact.runtime_size <= 24_576, f"{name} is over the EIP-170 code size limit"
    # every module is used by some contract
    sources = "".join((contracts.CONTRACTS_DIR / f"{n}.vy").read_text() for n in names)
    for module in contracts.module_names():
        assert f"import {module}" in sources, f"module {module} is imported by no contract"


def test_artifacts_are_cached_by_source_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLUP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(contracts, "_memory", {})
    calls: list[str] = []
    real_compile = contracts._compile

    def counting(name: str) -> contracts.Artifact:
        calls.append(name)
        return real_compile(name)

    monkeypatch.setattr(contracts, "_compile", counting)
    first = contracts.load("CollateralToken")
    assert calls == ["CollateralToken"]
    cached = list((tmp_path / "vyper").glob("CollateralToken-*.json"))
    assert len(cached) == 1
    monkeypatch.setattr(contracts, "_memory", {})  # a new process: only the disk cache remains
    second = contracts.load("CollateralToken")
    assert calls == ["CollateralToken"]  # not compiled again
    assert second == first
    # a damaged cache entry is rebuilt, not trusted
    cached[0].write_text("{not json")
    monkeypatch.setattr(contracts, "_memory", {})
    assert contracts.load("CollateralToken") == first
    assert calls == ["CollateralToken", "CollateralToken"]


def test_cache_key_changes_with_any_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = contracts.sources_digest()
    copy = tmp_path / "l1_contracts"
    copy.mkdir()
    for path in contracts.CONTRACTS_DIR.glob("*.vy"):
        (copy / path.name).write_text(path.read_text())
    monkeypatch.setattr(contracts, "CONTRACTS_DIR", copy)
    assert contracts.sources_digest() == before
    (copy / "Bridge.vy").write_text((copy / "Bridge.vy").read_text() + "\n# changed\n")
    assert contracts.sources_digest() != before
