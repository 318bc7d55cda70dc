"""The arrows between core's stages point one way: measure <- keep <- show, and core has no UI.

- ``core.measure`` imports neither ``core.keep`` nor ``core.show``;
- ``core.keep`` never imports ``core.show``, and never torch at module level (reading
  results must not cost torch's import);
- nothing in ``core`` imports streamlit.
Base modules (``core.errors``, ``core.units``) may be imported by anyone.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
MODULES = sorted(CORE.rglob("*.py"))


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = ROOT) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in one file.

    ``from core import keep`` counts as ``core.keep``; relative imports are resolved.
    Module level means run on import: anything outside a function body.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package[: len(package) - child.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                found.append((base, child.lineno, top))
                found.extend((f"{base}.{a.name}", child.lineno, top) for a in child.names)
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            visit(child, inner)

    visit(tree, True)
    return found


def _is(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations() -> list[str]:
    problems: dict[tuple[str, int, str], str] = {}  # one line per import statement and rule
    for path in MODULES:
        where = path.relative_to(ROOT).as_posix()
        stage = _module_name(path)
        for name, line, top in _imports(path):
            rules = {
                "core has no UI": _is(name, "streamlit"),
                "measuring comes before keeping and showing": _is(stage, "core.measure")
                and (_is(name, "core.keep") or _is(name, "core.show")),
                "keeping comes before showing": _is(stage, "core.keep") and _is(name, "core.show"),
                "keeping must not import torch at module level": _is(stage, "core.keep")
                and _is(name, "torch")
                and top,
            }
            for rule, broken in rules.items():
                if broken:
                    problems.setdefault(
                        (where, line, rule), f"{where}:{line} imports {name}: {rule}"
                    )
    return list(problems.values())


def test_the_checker_sees_every_kind_of_import(tmp_path):
    package = tmp_path / "core" / "measure"
    package.mkdir(parents=True)
    probe = package / "probe.py"
    probe.write_text(
        "from core import keep\n"
        "from ..show import charts\n"
        "import core.keep.store as store\n"
        "def later():\n"
        "    import torch\n"
    )
    imports = {(name, top) for name, _line, top in _imports(probe, tmp_path)}
    assert ("core.keep", True) in imports
    assert ("core.show.charts", True) in imports
    assert ("core.keep.store", True) in imports
    assert ("torch", False) in imports


def test_core_modules_are_found():
    names = {_module_name(path) for path in MODULES}
    assert {"core.measure.devices", "core.keep.store", "core.show.report", "core.cli"} <= names


def test_imports_between_stages_point_one_way():
    problems = _violations()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module", ["core.keep.files", "core.keep.store", "core.keep.reference"])
def test_keeping_does_not_import_torch_even_through_others(module):
    """The AST check sees only a module's own imports; this one follows them all."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
