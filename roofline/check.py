"""Predicted against measured on this machine: run a model's layers for real, in numpy.

Long (over 400 lines) on purpose: the estimate made before a check runs and the run itself
read the same per-row array layout (`_layout`) and kernels; apart, they would drift.

Each row of the model's layer table (one forward pass, fp32 or fp64) is executed with numpy
on arrays of the sizes the table records, timed (the best of REPEATS), multiplied by its
count, and set beside the row's roofline bound and expected time on the given device: a
file written by `roofline measure` on this machine. A file that records another machine, or
none (a datasheet device), is refused: numpy's times here say nothing about that device.

  matmul, conv, attention   np.matmul of the row's GEMM shape: groups x (m x k) . (k x n)
                            (a convolution runs as its implicit GEMM: numpy has no conv)
  softmax                   exp of the row shifted by its max, divided by the row sum
  norm                      layer norm over rows of the model's width (mean, variance,
                            scale); a folded batch norm (<= 2 FLOPs an element) as x s + b
  activation                the tanh form of GELU over the row's elements when the row
                            evaluates transcendentals (GELU, SiLU, sigmoid: one each an
                            element), max(x, 0) when it does not (ReLU)
  elementwise, concat       an add of two arrays of the row's output size (concat: a copy)
The element-wise kinds (softmax, norm, activation, add) run as one compiled pass each
(numba, as the model counts them: one read and one write of the data, math in the array's
dtype), not as numpy's one pass per operation, on one core: a thread pool's wake-up on this
kind of virtual machine costs milliseconds, more than the small kernels themselves, and the
device file's bandwidth, cache and transcendental figures are one core's too (measure.py).
Caches: in a forward pass a layer's weights were last read a whole pass ago, its input was
just written by the layer before. So before each timed call of a row with weights the
caches are flushed (a write over twice the largest cache the kernel reports, at least
64 MiB), and the row's activations are touched by the warm-up call: weights come from
DRAM, activations from wherever the previous layer left them.
  embedding                 np.take of the rows the table reads
  pool                      the maximum of the row's input in windows of its ratio (one
                            compiled pass, like the element-wise kinds)
Each row's arrays (`_layout`) are allocated when the row runs and freed after it; inputs hold
a random block repeated (written at memory speed: drawing every value took longer than the
layers), outputs are written by the calls.

Before anything is allocated, `plan_check` estimates what the check takes: its memory (the
largest arrays one row holds, plus the flush buffer), refused above MEMORY_SHARE of the
memory available now, and its time (each row's predicted time on the device for the warm-up
and the REPEATS calls, the arrays filled, the flushes), refused above `max_time_s`. A check
predicted to run over `progress_after_s` reports each row to `progress` as it starts.

The error of each row and of the total is (predicted - measured) / measured.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .analysis import Result, analyze
from .dtypes import BYTES_PER_ELEMENT
from .errors import FieldError
from .hardware import Device, Machine
from .layers import GEMM_KINDS
from .measure import this_machine
from .scenario import RunConfig
from .workloads import Workload

REPEATS = 3
KINDS = {"fp32": np.float32, "fp64": np.float64}
MIN_FLUSH = 64 * 2**20
EMBEDDING_ROWS = 4096  # the table an embedding row gathers from (rows of the model's width)
TILE = 2**16  # inputs repeat a random block of this many elements
MEMORY_SHARE = 0.5  # a check may hold at most this share of the memory available when it starts
MAX_TIME_S = 60.0  # a check predicted to run longer is refused (the caller may raise it)
PROGRESS_AFTER_S = 3.0  # a check predicted to run longer reports its rows as they start
# the time estimate's write rates, as shares of the measured copy bandwidth (on the 2-core
# development VM, copy 25 GB/s): fresh memory, where each new page faults in (2-6 GB/s), and
# a write over memory already mapped, the cache flush (7.6 GB/s)
FRESH_SHARE = 0.1
WRITE_SHARE = 0.3
MEMORY_TOLERANCE = 0.02  # the memory of the machine measured and of this one may differ so much

Progress = Callable[[int, int, str], None]  # (row number from 1, rows, row name)
# memory cgroups (v2, v1): folder, limit file, usage file (its memory.stat's inactive_file:
# page cache the kernel reclaims before it kills)
CGROUPS = (
    ("/sys/fs/cgroup", "memory.max", "memory.current"),
    ("/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes"),
)


def _flush_bytes() -> int:
    """Twice the largest CPU cache the kernel reports (Linux sysfs), at least MIN_FLUSH."""
    import glob

    largest = 0
    for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            largest = max(largest, int(digits) * scale)
    return max(2 * largest, MIN_FLUSH)


def _read_number(path: str, key: str = "") -> float | None:
    """A number from a kernel file: the whole file, or the value on the line starting `key`
    (None where the file or the line is missing or says `max`)."""
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if not key and parts:
                    return float(parts[0])
                if len(parts) >= 2 and parts[0].rstrip(":") == key:
                    return float(parts[1]) * (1024 if parts[-1] == "kB" else 1)
    except (OSError, ValueError):
        pass
    return None


def available_memory_bytes() -> float:
    """What new arrays can take without swapping: /proc/meminfo's MemAvailable (else the free
    pages), capped by the memory cgroup's limit less its usage (its inactive files aside)."""
    available = _read_number("/proc/meminfo", "MemAvailable")
    if available is None:
        try:
            available = float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            available = this_machine().memory_bytes / 2
    for folder, limit_file, usage_file in CGROUPS:
        limit = _read_number(f"{folder}/{limit_file}")
        usage = _read_number(f"{folder}/{usage_file}")
        if limit is None or usage is None or limit >= 2**60:
            continue
        usage -= _read_number(f"{folder}/memory.stat", "inactive_file") or 0.0
        available = min(available, max(0.0, limit - usage))
    return available


def _machine_text(m: Machine) -> str:
    return f"{m.cpu}, {m.cores} cores, {m.memory_bytes / 2**30:.1f} GiB"


def elsewhere(device: Device, here: Machine | None = None) -> str:
    """Why `device` is not this machine's own measured file ('' when it is)."""
    there, here = device.machine, here or this_machine()
    if there is None:
        return "the file names no machine: a datasheet device, or written by an older roofline"
    same_memory = abs(there.memory_bytes - here.memory_bytes) <= MEMORY_TOLERANCE * max(
        there.memory_bytes, here.memory_bytes
    )
    if there.cpu == here.cpu and there.cores == here.cores and same_memory:
        return ""
    return f"measured on {_machine_text(there)}; this machine is {_machine_text(here)}"


@dataclass(frozen=True)
class LayerCheck:
    name: str
    kind: str
    count: int
    bound_s: float
    expected_s: float
    measured_s: float

    @property
    def error(self) -> float:
        return (self.expected_s - self.measured_s) / self.measured_s


@dataclass(frozen=True)
class CheckResult:
    result: Result
    layers: tuple[LayerCheck, ...]

    @property
    def measured_s(self) -> float:
        return sum(x.measured_s for x in self.layers)

    @property
    def error(self) -> float:
        return (self.result.total_expected_time_s - self.measured_s) / self.measured_s

    @property
    def median_layer_error(self) -> float:
        return float(statistics.median(abs(x.error) for x in self.layers))


@dataclass(frozen=True)
class RowPlan:
    """One row of the check: the arrays one instance of its work holds, and its cost."""

    name: str
    kind: str
    count: int
    row: tuple[tuple[str, float], ...]  # the table's figures the row's work is built from
    arrays: tuple[tuple[str, tuple[int, ...]], ...]  # name, shape; the first is its input
    itemsize: int  # bytes an element of the run's dtype (an embedding's `rows`: int64, 8)
    flushed: bool  # a row with weights: the caches are flushed before each timed call
    time_s: float  # predicted wall time: warm-up and timed calls, arrays filled, flushes

    @property
    def nbytes(self) -> int:
        return _nbytes(self.arrays, self.itemsize)


def _nbytes(arrays: tuple[tuple[str, tuple[int, ...]], ...], itemsize: int) -> int:
    """The bytes of a row's arrays: elements of `itemsize` bytes; `rows` int64 indices."""
    return sum(math.prod(shape) * (8 if name == "rows" else itemsize) for name, shape in arrays)


@dataclass(frozen=True)
class CheckPlan:
    """What a check will take, estimated before anything is allocated."""

    result: Result
    rows: tuple[RowPlan, ...]
    flush_bytes: int  # the cache flush buffer (0: no row has weights)
    time_s: float  # predicted wall time of the whole check
    available_bytes: float  # the memory available when the plan was made

    @property
    def largest(self) -> RowPlan:
        return max(self.rows, key=lambda r: r.nbytes)

    @property
    def memory_bytes(self) -> int:
        """The most the check holds at once: the largest row's arrays and the flush buffer."""
        return (self.largest.nbytes if self.rows else 0) + self.flush_bytes


def _timed(fn: Callable[[], object], flush: np.ndarray | None, warm: np.ndarray | None) -> float:
    """The best of REPEATS calls after a warm-up; with `flush`, each call comes after a
    write over it (the caches emptied) and a read of `warm` (the activation back in)."""
    fn()
    best = float("inf")
    for _ in range(REPEATS):
        if flush is not None:
            flush.fill(1)
            if warm is not None:
                warm.sum()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _elements(nbytes: float, dtype: str) -> int:
    return max(1, round(nbytes / BYTES_PER_ELEMENT[dtype]))


def _folded(kind: str, row: dict[str, float], dtype: str) -> bool:
    """A folded batch norm (x s + b): at most 2 FLOPs an output element."""
    return kind == "norm" and row["flops"] <= 2 * _elements(row["outputs"], dtype)


def _layout(
    kind: str, row: dict[str, float], dtype: str, width: int
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The arrays one instance of the row's work holds: (name, shape) in the run's dtype
    (an embedding's `rows`: int64 indices); the first is the activation input."""
    if kind in GEMM_KINDS:
        g, m, n, k = (max(1, round(row[x])) for x in ("g", "m", "n", "k"))
        return (("x", (g, m, k)), ("w", (g, k, n)), ("out", (g, m, n)))
    size = _elements(row["outputs"], dtype)
    if kind == "embedding":
        rows = max(1, size // width)
        return (("rows", (rows,)), ("table", (EMBEDDING_ROWS, width)), ("out", (rows, width)))
    inputs = _elements(row["inputs"], dtype)
    if kind in ("softmax", "norm") and not _folded(kind, row, dtype):
        cols = min(width, inputs)  # rows of the model's width
        shape = (inputs // cols, cols)
        return (("x", shape), ("out", shape))
    if kind == "pool":  # windows of the ratio of input to output
        return (("x", (size, max(1, inputs // size))), ("out", (size,)))
    if kind in ("activation", "norm"):
        return (("x", (inputs,)), ("out", (inputs,)))
    return (("x", (size,)), ("out", (size,)))  # elementwise, concat: the output's size


def _filled(shape: tuple[int, ...], t: np.dtype[Any], rng: np.random.Generator) -> np.ndarray:
    """An array of `shape` holding a random block of TILE values over and over."""
    out = np.empty(shape, dtype=t)
    flat = out.reshape(-1)
    block = rng.standard_normal(min(flat.size, TILE), dtype=t)
    whole = flat.size // block.size * block.size
    flat[:whole].reshape(-1, block.size)[:] = block
    flat[whole:] = block[: flat.size - whole]
    return out


def _kernels() -> dict[str, Callable[..., None]]:
    """One-pass element-wise kernels (compiled on first use, cached on disk)."""
    from numba import njit

    @njit(cache=True)
    def gelu_in(x, c, out):  # type: ignore[no-untyped-def]
        for i in range(x.size):  # the constants c in x's dtype: fp32 math stays fp32
            v = x[i]
            out[i] = c[0] * v * (c[1] + np.tanh(c[2] * (v + c[3] * v * v * v)))

    def gelu(x, out):  # type: ignore[no-untyped-def]
        gelu_in(x, np.array([0.5, 1.0, 0.7978845608, 0.044715], dtype=x.dtype), out)

    @njit(cache=True)
    def add(a, b, out):  # type: ignore[no-untyped-def]
        for i in range(a.size):
            out[i] = a[i] + b[i]

    @njit(cache=True)
    def softmax(y, out):  # type: ignore[no-untyped-def]
        for r in range(y.shape[0]):
            m = y[r, 0]
            for c in range(y.shape[1]):
                m = max(m, y[r, c])
            total = 0.0
            for c in range(y.shape[1]):
                e = np.exp(y[r, c] - m)
                out[r, c] = e
                total += e
            for c in range(y.shape[1]):
                out[r, c] /= total

    @njit(cache=True)
    def layernorm(y, out):  # type: ignore[no-untyped-def]
        for r in range(y.shape[0]):
            mu = 0.0
            for c in range(y.shape[1]):
                mu += y[r, c]
            mu /= y.shape[1]
            var = 0.0
            for c in range(y.shape[1]):
                var += (y[r, c] - mu) ** 2
            inv = 1.0 / np.sqrt(var / y.shape[1] + 1e-5)
            for c in range(y.shape[1]):
                out[r, c] = (y[r, c] - mu) * inv

    @njit(cache=True)
    def pool(y, out):  # type: ignore[no-untyped-def]
        for r in range(y.shape[0]):  # the maximum of each window (a row of y)
            m = y[r, 0]
            for c in range(1, y.shape[1]):
                m = max(m, y[r, c])
            out[r] = m

    @njit(cache=True)
    def relu(x, out):  # type: ignore[no-untyped-def]
        for i in range(x.size):
            out[i] = max(x[i], 0)

    @njit(cache=True)
    def affine(x, c, out):  # type: ignore[no-untyped-def]
        for i in range(x.size):
            out[i] = x[i] * c[0] + c[1]

    return {
        "gelu": gelu,
        "add": add,
        "softmax": softmax,
        "layernorm": layernorm,
        "relu": relu,
        "affine": affine,
        "pool": pool,
    }


def _op(
    kind: str, row: dict[str, float], a: dict[str, np.ndarray], k: dict[str, Callable[..., None]]
) -> Callable[[], object]:
    """A callable doing one instance of the row's work on its arrays (`_layout`)."""
    out = a["out"]
    if kind == "embedding":  # mode clip: no buffered copy of `out` (the rows are in range)
        return lambda: np.take(a["table"], a["rows"], axis=0, out=out, mode="clip")
    x = a["x"]
    if kind in GEMM_KINDS:
        return lambda: np.matmul(x, a["w"], out=out)
    if kind == "norm" and x.ndim == 1:  # a folded batch norm: x s + b
        scale = np.array([1.5, 0.5], dtype=out.dtype)
        return lambda: k["affine"](x, scale, out)
    if kind in ("softmax", "norm"):
        fn = k["softmax" if kind == "softmax" else "layernorm"]
        return lambda: fn(x, out)
    if kind == "activation":
        act = k["gelu"] if row["transcendentals"] > 0 else k["relu"]
        return lambda: act(x, out)
    if kind == "pool":
        return lambda: k["pool"](x, out)
    if kind == "concat":
        return lambda: np.copyto(out, x)
    return lambda: k["add"](x, x, out)  # elementwise


def _run_row(
    r: RowPlan,
    dtype: str,
    flush: np.ndarray | None,
    k: dict[str, Callable[..., None]],
) -> float:
    """The row's arrays allocated, its work timed (one instance); the arrays are freed on
    return, before the next row allocates its own."""
    t = np.dtype(KINDS[dtype])
    rng = np.random.default_rng(0)
    arrays = {}
    for name, shape in r.arrays:
        if name == "rows":
            arrays[name] = rng.integers(0, EMBEDDING_ROWS, shape)
        elif name == "out":
            arrays[name] = np.empty(shape, dtype=t)
        else:
            arrays[name] = _filled(shape, t, rng)
    op = _op(r.kind, dict(r.row), arrays, k)
    return _timed(op, flush if r.flushed else None, arrays[r.arrays[0][0]])


def _smaller(run: RunConfig, result: Result, w: Workload) -> tuple[str, object, str]:
    """The run field to make smaller when a check is too big: (field, value, advice)."""
    if run.batch > 1:
        return "batch", run.batch, "a smaller batch"
    if run.phase == "decode":
        context = run.context or result.seq or 1  # a decode step attends to `seq` by default
        if context > 1:
            return "context", context, "a shorter context"
    elif (result.seq or 1) > 1:
        return "seq", result.seq, "a shorter sequence"
    return "model", w.key, "a smaller model"


def _size(nbytes: float) -> str:
    if nbytes >= 1000 * 2**30:
        return f"{nbytes / 2**30:,.0f} GiB"
    return f"{nbytes / 2**30:.3g} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.3g} MiB"


def plan_check(w: Workload, device: Device, run: RunConfig) -> CheckPlan:
    """What checking `w` under `run` takes on this machine, estimated from the layer table
    and `device`'s predicted times, before anything is allocated."""
    if run.phase not in ("inference", "prefill", "decode"):
        raise FieldError("phase", run.phase, "check runs forward passes: inference or decode")
    if run.dtype not in KINDS:
        raise FieldError("dtype", run.dtype, f"numpy runs {', '.join(KINDS)}")
    # the layers one by one, as numpy runs them here: per kernel, without the share a
    # whole serving step sustains (calibration.py; fitted on serving stacks, not on this)
    result = analyze(w, device, replace(run, sustained=1.0))
    t = result.layers
    tokens = run.batch * (1 if run.phase == "decode" else (result.seq or 1))
    width = int(w.arch.boundary_elements(run) / tokens) or 1024  # rows of norms and softmax
    flush = _flush_bytes() if np.any(t.weight_bytes > 0) else 0
    copy = device.memory_bandwidth_bytes_per_s
    itemsize = int(BYTES_PER_ELEMENT[run.dtype])
    rows = []
    for i in range(len(t)):
        kind = str(t.kind[i])
        row = {
            "g": float(t.gemm_groups[i]),
            "m": float(t.gemm_m[i]),
            "n": float(t.gemm_n[i]),
            "k": float(t.gemm_k[i]),
            "inputs": float(t.input_bytes[i]),
            "outputs": float(t.output_bytes[i]),
            "weights": float(t.weight_bytes[i]),
            "flops": float(t.flops[i]),
            "transcendentals": float(t.transcendentals[i]),
        }
        arrays = _layout(kind, row, run.dtype, width)
        flushed = row["weights"] > 0 and kind != "norm"  # a norm's scale is tiny
        count = int(t.count[i])
        # the warm-up and timed calls of one instance, the arrays filled, the flushes (a
        # write over the buffer and a read of the input before each timed call)
        time_s = (1 + REPEATS) * float(result.expected_time_s[i]) / max(count, 1)
        time_s += _nbytes(arrays, itemsize) / (FRESH_SHARE * copy)
        if flushed:
            warm = math.prod(arrays[0][1]) * itemsize
            time_s += REPEATS * (flush / (WRITE_SHARE * copy) + warm / copy)
        rows.append(
            RowPlan(
                str(t.name[i]), kind, count, tuple(row.items()), arrays, itemsize, flushed, time_s
            )
        )
    total = sum(r.time_s for r in rows) + flush / (FRESH_SHARE * copy)
    return CheckPlan(result, tuple(rows), flush, total, available_memory_bytes())


def check(
    w: Workload,
    device: Device,
    run: RunConfig,
    *,
    max_time_s: float | None = None,
    progress: Progress | None = None,
    progress_after_s: float = PROGRESS_AFTER_S,
) -> CheckResult:
    """Run `w`'s forward pass for `run` in numpy on this machine, layer by layer.

    `device` must be this machine's own file (`roofline measure`). Refused before anything
    is allocated: a check that would hold more than MEMORY_SHARE of the memory available,
    or is predicted to run longer than `max_time_s` (None: MAX_TIME_S). Predicted to run
    longer than `progress_after_s`, it calls `progress(i, n, name)` as row i of n starts."""
    max_time_s = MAX_TIME_S if max_time_s is None else max_time_s
    if not max_time_s > 0:
        raise FieldError("max_time", max_time_s, "must be > 0 seconds")
    why = elsewhere(device)
    if why:
        raise FieldError(
            "device",
            device.path or device.key,
            f"not measured on this machine ({why}); check times numpy on this machine, so it "
            "compares only with this machine's own file: run `roofline measure -o me.yaml`, "
            "then --hw me.yaml",
        )
    plan = plan_check(w, device, run)
    result = plan.result
    field, value, advice = _smaller(run, result, w)
    limit = MEMORY_SHARE * plan.available_bytes
    if plan.memory_bytes > limit:
        big = plan.largest
        plus = f", plus a {_size(plan.flush_bytes)} cache flush" if plan.flush_bytes else ""
        raise FieldError(
            field,
            value,
            f"checking {w.key} would hold {_size(plan.memory_bytes)} at once ({big.name}: "
            f"{_size(big.nbytes)} of arrays{plus}), above the limit of "
            f"{MEMORY_SHARE:.0%} of the memory available on this machine "
            f"({_size(plan.available_bytes)}); give {advice}",
        )
    if plan.time_s > max_time_s:
        raise FieldError(
            field,
            value,
            f"checking {w.key} is predicted to take {plan.time_s:.0f} s on this machine "
            f"({len(plan.rows)} rows, each a warm-up and {REPEATS} timed calls), above the limit "
            f"of {max_time_s:g} s; give {advice}, or raise the limit with --max-time",
        )
    say = progress if progress is not None and plan.time_s > progress_after_s else None
    compiled = _kernels()
    flush = np.empty(plan.flush_bytes // 8) if plan.flush_bytes else None
    checks = []
    for i, r in enumerate(plan.rows):
        if say is not None:
            say(i + 1, len(plan.rows), r.name)
        measured = _run_row(r, run.dtype, flush, compiled) * r.count
        checks.append(
            LayerCheck(
                name=r.name,
                kind=r.kind,
                count=r.count,
                bound_s=float(result.time_s[i]),
                expected_s=float(result.expected_time_s[i]),
                measured_s=measured,
            )
        )
    return CheckResult(result, tuple(checks))
