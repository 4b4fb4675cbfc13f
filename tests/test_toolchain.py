"""The contract toolchain: vyper through its Python API, artifacts cached by source hash."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from rollup import contracts

ROOT = Path(__file__).resolve().parent.parent


def test_every_contract_compiles() -> None:
    names = contracts.contract_names()
    assert {"CollateralToken", "Bridge", "Rollup", "Verifier"} <= set(names)
    for name in names:
        artifact = contracts.load(name)
        assert artifact.bytecode and artifact.abi
        assert artifact.runtime_size <= 24_576, f"{name} is over the EIP-170 code size limit"
    # every module is compiled into some contract: imported by one, or by a module it imports
    imports = {
        path.stem: set(re.findall(r"^import (\w+)", path.read_text(), re.MULTILINE))
        for path in contracts.CONTRACTS_DIR.glob("*.vy")
    }
    used: set[str] = set()
    todo = [module for name in names for module in imports[name]]
    while todo:
        module = todo.pop()
        if module not in used:
            used.add(module)
            todo += imports[module]
    for module in contracts.module_names():
        assert module in used, f"module {module} is imported by no contract"


def test_test_contracts_live_with_the_tests() -> None:
    """l1_contracts/ holds only what deploys: the harnesses and the hostile token are under
    tests/contracts/, which the tests add to the search path, and compile against the
    modules of l1_contracts/."""
    directory = ROOT / "tests" / "contracts"
    names = sorted(p.stem for p in directory.glob("*.vy"))
    assert {"HostileToken", "InboxHarness", "StateHarness"} <= set(names)
    deployable = contracts.contract_names()
    assert not [n for n in deployable if n.endswith("Harness") or n.startswith("Hostile")], deployable
    for name in names:
        assert contracts.source_path(name) == directory / f"{name}.vy"
        assert contracts.load(name).bytecode


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


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_constraints_pin_every_dependency() -> None:
    """constraints.txt pins every dependency pyproject.toml names (the package's, the test
    and the lint extras') at a version within its range, `make` installs with it, and the
    packages installed here are the pinned versions."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for extra in ("test", "lint") for r in project["optional-dependencies"][extra]]
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not a pin: {line}"
            pins[_normalized(name)] = version
    for requirement in wanted:
        name = _normalized(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(Version(pins[name]), prereleases=True), (requirement, pins[name])
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line and "-e " in line]
    assert installs and all("-c constraints.txt" in line for line in installs), installs
    for name, version in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an extra this environment does not install (lint)
        assert Version(installed) == Version(version), (name, installed, version)


LINTED = "rollup challengers tests bench"


def _recipe(makefile: str, target: str) -> list[str]:
    """The commands of a Makefile target (its tab-indented lines)."""
    lines = makefile.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_ci_runs_ruff_and_mypy_before_the_tests() -> None:
    """`make lint` installs the lint extras and runs ruff and mypy over every Python
    directory; .ci/run (which stops at the first failure) runs it before the README's
    test command."""
    lint = _recipe((ROOT / "Makefile").read_text(), "lint")
    assert any("pip install" in line and '".[lint]"' in line for line in lint), lint
    assert f"$(VENV)/bin/ruff check {LINTED}" in lint, lint
    assert f"$(VENV)/bin/mypy {LINTED}" in lint, lint
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    commands = [line.strip() for line in ci.splitlines() if line.strip().startswith("make ")]
    assert commands == ["make lint", 'make test PYTEST_ARGS="-q"'], commands
