"""One set of rules, two executions: the constants and reason codes the Vyper verifier
declares equal the STF's. Vyper's values are read through its own front end: the folded
value of every `constant(...)` declared by a contract or a module it imports. The Python
ones come from rollup/stf/constants.py, the transaction tags and kinds of
rollup/stf/transactions.py, and Reason. A constant changed on one side only fails here."""

from __future__ import annotations

from functools import cache

from vyper.ast import nodes
from vyper.compiler.input_bundle import FilesystemInputBundle
from vyper.compiler.phases import CompilerData
from vyper.compiler.settings import OptimizationLevel, Settings

from rollup import contracts
from rollup.stf import constants, transactions
from rollup.stf.reasons import Reason

PYTHON_ONLY = {
    "MAX_U32": "a width the Vyper rules write in place (margin.vy U32, 2**32 - 1)",
    "MAX_U64": "a width the Vyper rules write in place (margin.vy U64, 2**64 - 1)",
}
"""Constants of rollup/stf/constants.py the verifier does not declare, and why."""

TAGS = ("DEPOSIT", "WITHDRAW", "TRADE", "CANCEL", "ORACLE_UPDATE", "FUNDING_TICK", "LIQUIDATE", "DELEVERAGE",
        "FORCED_REQUEST", "ADVANCE_TIME", "SWEEP_FEES", "FILL", "RISK_UPDATE", "SETTLE_SERIES", "SETTLE_POSITION")


def _value(folded: object) -> object:
    """A folded Vyper literal as Python holds it (a bytes32 hex literal as bytes)."""
    if isinstance(folded, str) and folded.startswith("0x"):
        return bytes.fromhex(folded[2:])
    return folded


@cache
def vyper_constants() -> dict[str, dict[str, object]]:
    """Every constant the contracts declare or import: name -> {module: value}."""
    bundle = FilesystemInputBundle([contracts.CONTRACTS_DIR])
    settings = Settings(evm_version=contracts.EVM_VERSION, optimize=OptimizationLevel.GAS)
    found: dict[str, dict[str, object]] = {}
    seen: set[str] = set()  # by file: ids of freed modules are reused by the next contract's

    def walk(module: nodes.Module, where: str) -> None:
        if module.resolved_path in seen:
            return
        seen.add(module.resolved_path)
        for decl in module.get_children(nodes.VariableDecl):
            if decl.is_constant:
                found.setdefault(decl.target.id, {})[where] = _value(decl.value.get_folded_value().value)
        for imported in module.get_children((nodes.Import, nodes.ImportFrom)):
            info = imported._metadata.get("import_info")
            node = getattr(getattr(info, "typ", None), "module_t", None)
            if node is not None:
                walk(node._module, info.alias)

    for name in contracts.contract_names():
        data = CompilerData(bundle.load_file(contracts.CONTRACTS_DIR / f"{name}.vy"), input_bundle=bundle,
                            settings=settings)
        walk(data.annotated_vyper_module, name)
    return found


def python_constants() -> dict[str, object]:
    """The STF's constants (constants.py's, the transaction tags and ForcedRequest kinds)."""
    out: dict[str, object] = {
        name: value for name, value in vars(constants).items()
        if name.isupper() and isinstance(value, (int, bytes))
    }
    for name in (*TAGS, "FORCED_WITHDRAW", "FORCED_CLOSE"):
        out[name] = getattr(transactions, name)
    return out


def disagreements(vyper: dict[str, dict[str, object]], python: dict[str, object]) -> list[str]:
    """Every Python constant the verifier declares with another value, or does not
    declare (PYTHON_ONLY aside)."""
    out = []
    for name, value in sorted(python.items()):
        if name in PYTHON_ONLY:
            continue
        if name not in vyper:
            out.append(f"{name} is not declared by any contract or module")
        for where, declared in sorted(vyper.get(name, {}).items()):
            if declared != value:
                out.append(f"{name}: {where} declares {declared!r}, the STF {value!r}")
    return out


def test_constants_agree() -> None:
    python = python_constants()
    assert disagreements(vyper_constants(), python) == []
    # the comparison covers the rules' bounds and every transaction tag
    assert len(python) - len(PYTHON_ONLY) >= 35, sorted(python)
    assert set(PYTHON_ONLY) <= set(python)  # no stale exemption


def test_reason_codes_agree() -> None:
    """transactions.vy declares every Reason, with its code (the verifier returns them)."""
    declared = vyper_constants()
    for reason in Reason:
        assert declared.get(reason.name, {}).get("transactions") == reason.value, reason
    assert len(Reason) >= 50


def test_a_change_on_one_side_is_caught() -> None:
    """The comparison names a constant changed in Python only, one changed in Vyper only,
    and one the verifier stops declaring."""
    vyper = {name: dict(where) for name, where in vyper_constants().items()}
    python = python_constants()
    ppm, max_size = python["PPM"], python["MAX_SIZE"]
    assert isinstance(ppm, int) and isinstance(max_size, int)
    changed = disagreements(vyper, {**python, "PPM": ppm + 1})
    assert changed and all(line.startswith("PPM:") for line in changed), changed
    vyper["MAX_SIZE"]["VerifyTrade"] = max_size - 1
    assert disagreements(vyper, python) == [f"MAX_SIZE: VerifyTrade declares {max_size - 1!r}, the STF {max_size!r}"]
    del vyper["MAX_SIZE"]
    assert disagreements(vyper, python) == ["MAX_SIZE is not declared by any contract or module"]
