"""Start-up as users feel it: each command as a fresh process (`python -m roofline`), its
output written to a file or /dev/null, the median wall time of several runs, and each as a
ratio to `--version` (the floor: the interpreter and the command line's frame). Prints
figures; asserts nothing. The first run of each command, not counted, leaves the bytecode
and numba's cache on disk, as an installed package has them. Targets (issue 32, a 2-core
machine): `--version` under 0.1 s, `--help` close to it, `validate --runs`, `plot` and
`report` within 3x `--version`.

Run: python benchmarks/bench_startup.py [REPEATS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 7


def commands(out: Path) -> dict[str, list[str]]:
    return {
        "--version": ["--version"],
        "--help": ["--help"],
        "run --help": ["run", "--help"],
        "run llama-2-7b a100 prefill 1024": [
            "run", "-m", "llama-2-7b", "--hw", "a100", "--phase", "prefill", "--seq", "1024",
        ],
        "validate --runs": ["validate", "--runs"],
        "plot bert-large a100 png": [
            "plot", "-m", "bert-large", "--hw", "a100", "-o", str(out / "r.png"),
        ],
        "report llama-2-7b a100 html": [
            "report", "-m", "llama-2-7b", "--hw", "a100", "-o", str(out / "r.html"),
        ],
    }  # fmt: skip


def wall(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and exit code of one fresh run of the CLI."""
    start = time.perf_counter()
    code = subprocess.call(
        [sys.executable, "-m", "roofline", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    return time.perf_counter() - start, code


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else REPEATS
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: compiled bytecode on disk
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'command':34} {'median':>8} {'min':>8} {'x --version':>12}")
        floor = None
        for name, args in commands(Path(tmp)).items():
            wall(args, env)  # one run first: the disk cache, numba's cache, .pyc files
            runs = [wall(args, env) for _ in range(repeats)]
            if any(code != 0 for _, code in runs):
                print(f"{name:34} failed (exit {[c for _, c in runs]})")
                continue
            median = statistics.median(w for w, _ in runs)
            floor = floor or median
            best = min(w for w, _ in runs)
            print(f"{name:34} {median:7.3f}s {best:7.3f}s {median / floor:11.1f}x")


if __name__ == "__main__":
    main()
