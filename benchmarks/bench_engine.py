"""Engine and CLI speed. Prints figures; asserts nothing (targets live in README and notes).

(a) (layer, device) evaluations per second of the numba kernel and of the numpy reference,
    on 10^7 evaluations and more;
(b) wall time of a second `roofline run --model bert-large --hw a100` (the first may
    compile and warm caches);
(c) the crossover: problem size at which the numba path (including its per-process start)
    beats numpy, which sets kernels.AUTO_NUMBA_MIN_EVALUATIONS;
(d) the library API by name and with loaded objects;
(e) the roofline kernel alone on N evaluations: its time with fresh outputs and with one
    reused set (`evaluate(..., out=)`), the bytes it writes per second (17 an evaluation:
    attainable, time, compute), and the fraction of this machine's copy bandwidth (a
    np.copyto of as many bytes, warm) that reaches.

Run: python benchmarks/bench_engine.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np

from roofline.kernels import evaluate, evaluate_numpy, roofline_buffers


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def problem(n_layers: int, n_devices: int):
    rng = np.random.default_rng(0)
    return (
        10 ** rng.uniform(3, 13, n_layers),
        10 ** rng.uniform(3, 10, n_layers),
        10 ** rng.uniform(11, 15.5, n_devices),
        10 ** rng.uniform(11, 13, n_devices),
    )


def main() -> None:
    print(f"cores: {os.cpu_count()}, numpy {np.__version__}")
    evaluate(*problem(10, 3), engine="numba")  # compile or load from cache
    for n_layers, n_devices in ((10_000, 1_000), (50_000, 1_000)):
        args = problem(n_layers, n_devices)
        n = n_layers * n_devices
        t_numba = best_of(lambda args=args: evaluate(*args, engine="numba"))
        t_numpy = best_of(lambda args=args: evaluate_numpy(*args), repeat=3)
        print(
            f"(a) {n:.0e} evaluations: numba {n / t_numba / 1e6:8.1f} M/s ({t_numba * 1e3:.1f} ms)"
            f"   numpy {n / t_numpy / 1e6:8.1f} M/s ({t_numpy * 1e3:.1f} ms)"
        )

    exe = shutil.which("roofline") or os.path.join(os.path.dirname(sys.executable), "roofline")
    cmd = [exe, "run", "--model", "bert-large", "--hw", "a100"]
    subprocess.run(cmd, check=True, capture_output=True)  # the first run
    walls = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
    print(
        f"(b) second `{' '.join(['roofline', *cmd[1:]])}`: best {min(walls):.3f} s, "
        f"median {sorted(walls)[2]:.3f} s (target < 0.5 s)"
    )

    code = (
        "import time, numpy as np; t=time.perf_counter();"
        "from roofline.kernels import evaluate;"
        "rng=np.random.default_rng(0); n={n}; d=20;"
        "evaluate(10**rng.uniform(3,13,n//d), 10**rng.uniform(3,10,n//d),"
        " 10**rng.uniform(11,15,d), 10**rng.uniform(11,13,d), engine='{engine}');"
        "print(time.perf_counter()-t)"
    )
    print("(c) one fresh process, import + one evaluation (s):")
    for n in (1_000, 100_000, 1_000_000, 10_000_000):
        row = []
        for engine in ("numpy", "numba"):
            out = subprocess.run(
                [sys.executable, "-c", code.format(n=n, engine=engine)],
                check=True,
                capture_output=True,
                text=True,
            )
            row.append(float(out.stdout))
        print(f"    {n:>10,} evaluations: numpy {row[0]:.3f}   numba {row[1]:.3f}")


def by_name() -> None:
    """(d) the library API: analyze() by catalog name vs with loaded objects. The catalog
    parses each file once per process, so a name costs a lookup, not a YAML parse."""
    from roofline import RunConfig, analyze, get_device, get_workload

    run = RunConfig(batch=1, seq=1024, phase="decode", context=1024)
    w, d = get_workload("llama-2-7b"), get_device("a100")
    n = 2000
    for label, args in (("objects", (w, d)), ("names", ("llama-2-7b", "a100"))):
        start = time.perf_counter()
        for _ in range(n):
            analyze(*args, run)
        rate = n / (time.perf_counter() - start)
        print(f"(d) analyze(llama-2-7b, a100, decode) with {label:7}: {rate:,.0f} calls/s")


def kernel_only() -> None:
    """(e) the kernel at the machine's limit: bytes written per second against a copy's."""
    evaluate(*problem(10, 3), engine="numba")  # compile or load from cache
    for n_layers, n_devices in ((10_000, 1_000), (50_000, 1_000)):
        args = problem(n_layers, n_devices)
        n = n_layers * n_devices
        written = n * (8 + 8 + 1) + (n_layers + n_devices) * 8
        fresh = best_of(lambda args=args: evaluate(*args, engine="numba"))
        out = roofline_buffers(n_layers, n_devices)
        evaluate(*args, engine="numba", out=out)  # the pages, touched once
        reused = best_of(lambda args=args, out=out: evaluate(*args, engine="numba", out=out))
        src = np.ones(written // 8)
        dst = np.empty_like(src)
        np.copyto(dst, src)
        copy = best_of(lambda src=src, dst=dst: np.copyto(dst, src))
        del out, src, dst
        print(
            f"(e) {n:.0e} evaluations, {written / 1e6:.0f} MB written: "
            f"fresh {fresh * 1e3:.1f} ms ({written / fresh / 1e9:.2f} GB/s, "
            f"{copy / fresh:.0%} of copy)   reused {reused * 1e3:.1f} ms "
            f"({written / reused / 1e9:.2f} GB/s, {copy / reused:.0%} of copy)   "
            f"np.copyto {copy * 1e3:.1f} ms ({written / copy / 1e9:.2f} GB/s)"
        )


if __name__ == "__main__":
    main()
    by_name()
    kernel_only()
