"""The import rules of DESIGN.md, checked on the source: the engine knows nothing of files,
tables or plots; only the CLI knows typer; heavy libraries stay where they are needed."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "roofline"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            prefix = base if base.endswith(".") else base + "."
            names |= {prefix + a.name for a in node.names}
    return names


def _modules():
    return {p.relative_to(PACKAGE).as_posix(): _imports(p) for p in PACKAGE.rglob("*.py")}


def _top(name: str) -> str:
    return name.lstrip(".").split(".")[0]


def test_engine_imports_only_numerics():
    allowed = {"__future__", "dataclasses", "typing", "numpy", "numba", "_numba_kernels", ""}
    for module in ("kernels.py", "_numba_kernels.py"):
        tops = {_top(n) for n in _modules()[module]}
        assert tops <= allowed, (module, tops - allowed)


def test_only_the_cli_knows_typer_and_nothing_imports_the_cli():
    for module, names in _modules().items():
        if module != "cli.py":
            assert not any(_top(n) == "typer" for n in names), module
        assert not any(n.endswith("cli") for n in names if n.startswith(".")), module


def test_heavy_libraries_stay_at_the_edges():
    where = {
        "matplotlib": {"plot.py"},
        "pandas": {"report.py", "analysis.py"},
        "rich": {"report.py", "cli.py"},
        "yaml": {"_yaml.py"},
        "onnx": {"workloads/onnx_graph.py"},
    }
    for module, names in _modules().items():
        for lib, homes in where.items():
            if any(_top(n) == lib for n in names):
                assert module in homes, (lib, module)


def test_library_code_does_not_print():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "cli.py":
            continue
        calls = [
            n
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print"
        ]
        assert not calls, path.name
