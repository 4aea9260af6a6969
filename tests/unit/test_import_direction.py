"""Arrows run one way: services → shared → contracts; tooling/ (publishing, the compatibility gate, the contract
suite) may import anything and nothing imports it. An AST scan of every import statement, including the ones
inside functions, so a late `import services` inside contracts/ or shared/ fails as well."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package → the top-level packages of ours it must not import
FORBIDDEN = {
    "contracts": {"shared", "services", "tooling", "deploy", "bench", "chaos"},
    "shared": {"services", "tooling", "deploy", "bench", "chaos"},
    "services": {"tooling", "deploy", "bench", "chaos"},
}


def imported_packages(path: Path) -> set[tuple[int, str]]:
    """(line, top-level package) of every absolute import in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {(node.lineno, alias.name.split(".")[0]) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downstream(package: str) -> None:
    offending = [f"{path.relative_to(ROOT)}:{line} imports {top}"
                 for path in sorted((ROOT / package).rglob("*.py"))
                 for line, top in sorted(imported_packages(path)) if top in FORBIDDEN[package]]
    assert not offending, "\n".join(offending)


def test_the_scan_sees_a_late_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from services.gateway.app import app\n    import shared.db\n")
    assert imported_packages(module) == {(2, "services"), (3, "shared")}
