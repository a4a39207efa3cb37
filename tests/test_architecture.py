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
    allowed |= {"_kernel_inputs"}  # the kernels' checked input bundles (numpy only)
    allowed |= {"errors"}  # the exception family: a leaf module, no I/O
    allowed |= {"math", "collections", "types", "_compiled"}  # the kernels' source, compiled
    engine = ("kernels.py", "_numba_kernels.py", "_kernel_inputs.py", "_compiled.py",
              "_sim_kernel.py")  # fmt: skip
    for module in engine:
        tops = {_top(n) for n in _modules()[module]}
        assert tops <= allowed, (module, tops - allowed)


def test_numba_is_loaded_only_where_a_kernel_runs_compiled():
    """One run's expected time runs the kernels' source as plain Python (issue 32): numba
    is imported by `_compiled` (the engine's compiled kernels), by `_sim_kernel` (the
    serving simulation's loop, which only simulate and serve --rate load) and by the
    commands that run numerics of their own (check, measure), and only the engine's door
    imports `_compiled`."""
    for module, names in _modules().items():
        if any(_top(n) == "numba" for n in names):
            assert module in ("_compiled.py", "_sim_kernel.py", "check.py", "measure.py"), module
        if any(n.lstrip(".") == "_compiled" for n in names):
            assert module == "kernels.py", module


def _in_cli(module: str) -> bool:
    return module.startswith("cli/")


def test_only_the_cli_knows_typer_and_nothing_imports_the_cli():
    for module, names in _modules().items():
        if not _in_cli(module):
            assert not any(_top(n) == "typer" for n in names), module
        if module != "__main__.py" and not _in_cli(module):  # `python -m`: the second door
            assert not any(n.endswith("cli") for n in names if n.startswith(".")), module


def test_heavy_libraries_stay_at_the_edges():
    where = {
        "matplotlib": {"plot.py"},
        "pandas": {"report/"},
        "pyarrow": {"report/"},
        "rich": {"report/", "cli/"},
        "yaml": {"_yaml.py"},
        "onnx": {"workloads/onnx_graph.py"},
    }
    for module, names in _modules().items():
        for lib, homes in where.items():
            if any(_top(n) == lib for n in names):
                inside = any(module.startswith(h) for h in homes if h.endswith("/"))
                assert module in homes or inside, (lib, module)


def test_library_code_does_not_print():
    for path in PACKAGE.rglob("*.py"):
        if _in_cli(path.relative_to(PACKAGE).as_posix()):
            continue
        calls = [
            n
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print"
        ]
        assert not calls, path.name


def _is_edge(module: str) -> bool:
    return module in ("__main__.py", "plot.py") or module.startswith(("report/", "cli/"))


def test_core_never_imports_the_edges():
    """Layering: library modules never import report, plot or cli (no circle back up)."""
    for module, names in _modules().items():
        if _is_edge(module):
            continue
        rel = {n.lstrip(".") for n in names if n.startswith(".")}
        up = {n for n in rel if n.split(".")[0] in ("report", "plot", "cli") or n in ("",)}
        up -= {""}
        assert not up, (module, up)


def test_no_module_outside_workloads_reads_family_attributes():
    """Code outside workloads/ asks an architecture only through the family protocol."""
    import inspect

    from roofline.workloads.base import Architecture

    protocol = {n for n, _ in inspect.getmembers(Architecture) if not n.startswith("_")}
    for path in PACKAGE.rglob("*.py"):
        module = path.relative_to(PACKAGE).as_posix()
        if module.startswith("workloads/"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "arch"
            ):
                assert node.attr in protocol, (module, node.attr)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr":
                target = node.args[0] if node.args else None
                assert not (isinstance(target, ast.Attribute) and target.attr == "arch"), (
                    module,
                    "getattr on an architecture",
                )
