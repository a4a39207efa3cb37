"""Start-up (issue 32): what a fresh process imports before it answers. Not timed (see
benchmarks/bench_startup.py): the modules that make start-up slow are named instead."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "pandas", "pyarrow", "numba", "matplotlib", "pydantic", "rich", "yaml")

# runs the command line's entry point in a fresh interpreter, then lists what it imported
PROBE = """
import json, sys
args, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["roofline", *args]
from roofline.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
sys.stderr.write(json.dumps({"code": code, "loaded": sorted({m.split(".")[0] for m in loaded}),
    "typer": "typer" in sys.modules}) + "\\n")
"""


def _probe(args: list[str]) -> dict[str, object]:
    res = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report: dict[str, object] = json.loads(res.stderr.strip().splitlines()[-1])
    report["stdout"] = res.stdout
    return report


def test_version_loads_neither_typer_nor_the_numerics():
    report = _probe(["--version"])
    assert report["code"] == 0 and str(report["stdout"]).startswith("roofline ")
    assert report["loaded"] == [] and report["typer"] is False


def test_help_loads_no_numerics_and_no_pydantic():
    report = _probe(["--help"])
    assert report["code"] == 0 and "Usage:" in str(report["stdout"])
    assert report["loaded"] == []


NUMERICS = {"numpy", "pandas", "pyarrow", "numba", "matplotlib"}


@pytest.mark.parametrize("command", ["run", "plot", "report", "whatif", "validate"])
def test_a_commands_help_loads_no_numerics(command):
    # typer (0.29) checks the root's completion options through pydantic before any
    # command's help: pydantic is allowed here, the numerics are not
    report = _probe([command, "--help"])
    assert report["code"] == 0 and "Usage:" in str(report["stdout"])
    assert not NUMERICS & set(report["loaded"]), report["loaded"]


def test_a_run_does_not_load_numba():
    # one run's expected time runs the kernels' scalar helpers as plain Python
    args = ["run", "-m", "llama-2-7b", "--hw", "a100", "--phase", "prefill", "--seq", "1024"]
    report = _probe(args)
    assert report["code"] == 0 and "expected time" in str(report["stdout"])
    assert "numba" not in report["loaded"] and "matplotlib" not in report["loaded"]


def test_importing_the_cli_builds_nothing():
    code = (
        "import sys, roofline.cli; "
        "print(sorted(m for m in ('typer', 'numpy', 'roofline.cli.app') if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "[]", res.stderr
