"""Measure the machine at hand (the CPU, through numpy) and describe it as a device file.

  GEMM         numpy matmul of n x n matrices for n in the size sweep, the best of several
               repeats each: 2 n^3 / time. The best size gives the achievable FLOP/s per
               datatype. Skinny products (m x N) . (N x N), m in SKINNY and N the largest
               size, and the squares make the GEMM curve by the smallest dimension
               (`efficiency.gemm_curve`), which the expected time uses for GEMM-like
               layers on this device (efficiency.py).
  bandwidth    a copy of an array well beyond the last-level cache (np.copyto: each element
               read once and written once, 2 x size bytes), and a triad a = b + s c done
               as numpy does it (a = s c, then a += b: 5 x size bytes); the copy is the
               memory ceiling.
  cache        the same copy over working sets of 256 KiB to 16 MiB (source + destination):
               the largest one whose copy runs at least CACHE_SPEEDUP x the DRAM copy is
               the cache tier (its size and that bandwidth); none when no size does.
  transcend.   exp and tanh, one each on alternate elements of an in-cache fp32 array, in a
               compiled (numba) loop on one core, the way `roofline check` evaluates softmax
               (exp) and GELU (tanh): evaluations a second of that even mix (on this
               machine exp runs ~2x faster than tanh, so softmax comes out slower and GELU
               faster than measured). numpy's own vectorised functions are faster; the
               figure belongs to the implementation.
  overhead     the time of one tiny numpy call (one element): the per-kernel overhead.
  spread       each figure is taken REPEATS times; (max - min) / median is reported.

The written file uses the device schema: `peak` holds the best measured GEMM (a CPU has no
datasheet figure here), `efficiency` the same measured figures, `measured: true`, the date,
the library versions and the method in `source`, and `machine:` the machine measured (CPU
model, logical cores, physical memory: hardware facts, no host name), which `roofline check`
compares with the machine it runs on. Progress goes to the caller's callback.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .hardware import Machine

DTYPES = {"fp32": np.float32, "fp64": np.float64}
SIZES = (256, 512, 1024, 2048)
QUICK_SIZES = (128, 256, 512)
SKINNY = (1, 4, 16, 64)  # rows of the skinny products (decode's GEMVs, small batches)
REPEATS = 3
CACHE_SETS = (2**18, 2**20, 2**21, 2**22, 2**24)  # copy working sets (source + destination), bytes
CACHE_SPEEDUP = 2.0  # a tier counts when its copy is at least this much faster than DRAM's
TANH_ELEMENTS = 2**18  # 1 MiB of fp32: in cache, so the evaluations bind, not memory


@dataclass(frozen=True)
class Measurement:
    gemm_flops_per_s: dict[str, float]  # best over the sizes, per dtype
    gemm_curve: dict[str, list[tuple[int, float]]]  # (n, FLOP/s) per dtype
    copy_bytes_per_s: float
    triad_bytes_per_s: float
    overhead_s: float
    spread: dict[str, float]  # (max - min) / median of the repeats, per figure
    cache_curve: list[tuple[int, float]]  # (working set bytes, copy byte/s)
    cache_bytes: float | None  # the cache tier, if one shows
    cache_bytes_per_s: float | None
    transcendentals_per_s: float
    array_bytes: int
    machine: Machine


def _cpu_model() -> str:
    """The CPU model as the operating system names it: /proc/cpuinfo's model name (x86),
    its hardware or implementer and part (Arm), else what `platform` knows."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() not in fields and value.strip():
                    fields[key.strip()] = value.strip()
    except OSError:
        pass
    if "model name" in fields:
        return fields["model name"]
    if "Hardware" in fields:
        return fields["Hardware"]
    if "CPU implementer" in fields:
        part = fields.get("CPU part", "?")
        return f"{platform.machine()} implementer {fields['CPU implementer']} part {part}"
    return platform.processor() or platform.machine() or "unknown CPU"


def this_machine() -> Machine:
    """The machine at hand: CPU model, logical cores, physical memory."""
    memory = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return Machine(" ".join(_cpu_model().split()), os.cpu_count() or 1, memory)


def _best(fn: Callable[[], None], repeats: int) -> float:
    """The shortest of `repeats` timings of fn, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _spread(values: list[float]) -> float:
    return float((max(values) - min(values)) / np.median(values))


def measure_cpu(
    dtypes: tuple[str, ...] = ("fp32", "fp64"),
    *,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Measurement:
    say = progress or (lambda _: None)
    sizes = QUICK_SIZES if quick else SIZES
    rng = np.random.default_rng(0)
    gemm: dict[str, float] = {}
    curve: dict[str, list[tuple[int, float]]] = {}
    spread: dict[str, float] = {}
    for name in dtypes:
        kind = DTYPES[name]
        curve[name] = []
        for n in sizes:
            say(f"GEMM {name} {n}x{n}")
            a = rng.standard_normal((n, n)).astype(kind)
            b = rng.standard_normal((n, n)).astype(kind)
            out = np.empty((n, n), dtype=kind)

            def gemm_call(a: np.ndarray = a, b: np.ndarray = b, out: np.ndarray = out) -> None:
                np.matmul(a, b, out=out)

            t = _best(gemm_call, REPEATS)
            curve[name].append((n, 2.0 * n**3 / t))
        best_n = max(curve[name], key=lambda p: p[1])[0]
        big = sizes[-1]
        w = rng.standard_normal((big, big)).astype(kind)
        for m in SKINNY:
            say(f"GEMM {name} {m}x{big} . {big}x{big}")
            x = rng.standard_normal((m, big)).astype(kind)
            y = np.empty((m, big), dtype=kind)

            def skinny(x: np.ndarray = x, y: np.ndarray = y, w: np.ndarray = w) -> None:
                np.matmul(x, w, out=y)

            curve[name].append((m, 2.0 * m * big * big / _best(skinny, REPEATS)))
        curve[name].sort()  # by the smallest dimension: skinny rows first, then squares
        a = rng.standard_normal((best_n, best_n)).astype(kind)
        out = np.empty_like(a)
        rates = []

        def square(a: np.ndarray = a, out: np.ndarray = out) -> None:
            np.matmul(a, a, out=out)

        for _ in range(REPEATS):
            rates.append(2.0 * best_n**3 / _best(square, 2))
        gemm[name] = max(rates)
        spread[f"gemm_{name}"] = _spread(rates)
    elements = (4 if quick else 64) * 2**20  # doubles: 32 MiB (quick) or 512 MiB an array
    say(f"bandwidth: copy and triad of {elements * 8 / 2**20:.0f} MiB arrays")
    src = np.ones(elements)
    dst = np.empty(elements)
    other = np.ones(elements)
    copies, triads = [], []
    for _ in range(REPEATS):
        t = _best(lambda: np.copyto(dst, src), 2)
        copies.append(2 * src.nbytes / t)

        def triad() -> None:
            np.multiply(other, 3.0, out=dst)
            np.add(dst, src, out=dst)

        t = _best(triad, 2)
        triads.append(5 * src.nbytes / t)
    spread["copy"] = _spread(copies)
    spread["triad"] = _spread(triads)
    say("cache: copies of 256 KiB to 16 MiB")
    cache_curve = []
    for size in CACHE_SETS:
        a, b = np.ones(size // 16), np.empty(size // 16)  # two arrays of doubles: `size` bytes

        def copy(a: np.ndarray = a, b: np.ndarray = b) -> None:
            np.copyto(b, a)

        t = min(_best(copy, 20) for _ in range(REPEATS))
        cache_curve.append((size, size / t))
    fast = [(s, bw) for s, bw in cache_curve if bw >= CACHE_SPEEDUP * max(copies)]
    cache_size, cache_bw = fast[-1] if fast else (None, None)
    say("transcendentals: exp and tanh in a compiled loop")
    rates = _tanh_rates()
    spread["transcendentals"] = _spread(rates)
    say("per-call overhead")
    tiny = np.ones(1)
    calls = 2000 if quick else 20000
    overheads = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(calls):
            np.add(tiny, 0.0, out=tiny)
        overheads.append((time.perf_counter() - start) / calls)
    spread["overhead"] = _spread(overheads)
    return Measurement(
        gemm_flops_per_s=gemm,
        gemm_curve=curve,
        copy_bytes_per_s=max(copies),
        triad_bytes_per_s=max(triads),
        overhead_s=min(overheads),
        spread=spread,
        cache_curve=cache_curve,
        cache_bytes=cache_size,
        cache_bytes_per_s=cache_bw,
        transcendentals_per_s=max(rates),
        array_bytes=src.nbytes,
        machine=this_machine(),
    )


def _tanh_rates() -> list[float]:
    """exp/tanh evaluations a second (an even mix), REPEATS times, in a compiled loop on one
    core (as check's element-wise kernels run)."""
    from numba import njit

    @njit(cache=True)
    def tanh(x, out):  # type: ignore[no-untyped-def]
        for i in range(x.size // 2):
            out[2 * i] = np.tanh(x[2 * i])
            out[2 * i + 1] = np.exp(x[2 * i + 1])

    x = np.linspace(-3, 3, TANH_ELEMENTS).astype(np.float32)
    out = np.empty_like(x)
    return [x.size / _best(lambda: tanh(x, out), 10) for _ in range(REPEATS)]


def device_yaml(m: Measurement, name: str | None = None) -> str:
    """The measurement as a device file (the hardware/ schema)."""
    today = _dt.date.today().isoformat()
    here = m.machine
    name = name or f"This machine ({here.cpu}, {here.cores} cores, measured {today})"
    peaks = "\n".join(f"  {dt}: {v / 1e9:.4g} GFLOP/s" for dt, v in m.gemm_flops_per_s.items())
    curve = "; ".join(
        f"{dt}: " + ", ".join(f"{n}: {v / 1e9:.3g}" for n, v in points)
        for dt, points in m.gemm_curve.items()
    )
    spread = ", ".join(f"{k} {100 * v:.1f}%" for k, v in m.spread.items())
    versions = f"numpy {np.__version__}, python {platform.python_version()}"
    method = (
        f"roofline measure on {today}: numpy matmul of n x n matrices and of m x N by N x N, "
        f"best of {REPEATS} repeats per size; copy and triad of "
        f"{m.array_bytes / 2**20:.0f} MiB arrays; copies of 256 KiB-16 MiB working sets for "
        f"the cache; tanh in a numba loop for the transcendentals (an even mix with exp); "
        f"one tiny numpy call for the overhead ({versions})"
    )
    cache = ", ".join(f"{s / 2**20:g} MiB: {bw / 1e9:.3g}" for s, bw in m.cache_curve)
    tier = ""
    if m.cache_bytes and m.cache_bytes_per_s:
        tier = (
            f"  cache:  # the largest working set copied >= {CACHE_SPEEDUP:g}x the DRAM copy\n"
            f"    size: {m.cache_bytes / 2**20:g} MiB\n"
            f"    bandwidth: {m.cache_bytes_per_s / 1e9:.4g} GB/s\n"
        )
    gemm = "\n".join(f"    {dt}: {v / 1e9:.4g} GFLOP/s" for dt, v in m.gemm_flops_per_s.items())
    points = "\n".join(
        f"    {dt}: ["
        + ", ".join(f"[{n}, {min(v, m.gemm_flops_per_s[dt]) / 1e9:.4g} GFLOP/s]" for n, v in pts)
        + "]"
        for dt, pts in m.gemm_curve.items()
    )
    triad = m.triad_bytes_per_s / 1e9
    return f"""# Measured by `roofline measure`: this machine's CPU through numpy.
name: {json.dumps(name)}
vendor: "measured"
release: "{today}"
measured: true
peak:  # the best measured GEMM: no datasheet figure for this machine
{peaks}
memory:
  capacity: {here.memory_bytes / 1e9:.4g} GB
  bandwidth: {m.copy_bytes_per_s / 1e9:.4g} GB/s  # the measured copy
  type: "host DRAM"
onchip_cache: null
interconnect: null
tdp: null
compute_units: {here.cores}
machine:  # the machine measured: `roofline check` compares it with the one it runs on
  cpu: {json.dumps(here.cpu)}
  cores: {here.cores}
  memory: {here.memory_bytes / 2**30:.6g} GiB
efficiency:
  gemm:
{gemm}
  memory_bandwidth: {m.copy_bytes_per_s / 1e9:.4g} GB/s
  kernel_overhead: {m.overhead_s * 1e6:.4g} us
  transcendentals_per_s: {m.transcendentals_per_s:.4g}  # exp/tanh evaluations a second
  gemm_curve:  # [smallest dimension min(m, n, k), FLOP/s]: skinny products, then squares
{points}
{tier}  source: "{method}"
source: "{method}"
notes: "GEMM GFLOP/s by size: {curve}. Copy GB/s by working set: {cache}. \\
Triad {triad:.4g} GB/s. Spread of repeats: {spread}."
"""
