"""Predicted against measured on this machine: run a model's layers for real, in numpy.

Each row of the model's layer table (one forward pass, fp32 or fp64) is executed with numpy
on arrays of the sizes the table records, timed (the best of REPEATS), multiplied by its
count, and set beside the row's roofline bound and expected time on the given device (a
file written by `roofline measure` for this machine):

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

The error of each row and of the total is (predicted - measured) / measured.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .analysis import Result, analyze
from .dtypes import BYTES_PER_ELEMENT
from .errors import FieldError
from .hardware import Device
from .scenario import RunConfig
from .workloads import Workload

REPEATS = 3
KINDS = {"fp32": np.float32, "fp64": np.float64}
MIN_FLUSH = 64 * 2**20


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
    kind: str, row: dict[str, float], dtype: str, width: int, k: dict[str, Callable[..., None]]
) -> tuple[Callable[[], object], np.ndarray | None]:
    """A callable doing one instance of the row's work on fresh arrays, and for a row with
    weights its activation input (warmed after a cache flush; None: no flush)."""
    t = KINDS[dtype]
    rng = np.random.default_rng(0)
    if kind in ("matmul", "conv", "attention"):
        g, m, n, kk = (max(1, round(row[x])) for x in ("g", "m", "n", "k"))
        a = rng.standard_normal((g, m, kk)).astype(t)
        b = rng.standard_normal((g, kk, n)).astype(t)
        return (lambda: np.matmul(a, b)), a
    size = _elements(row["outputs"], dtype)
    if kind == "embedding":
        table = rng.standard_normal((4096, width)).astype(t)
        rows = rng.integers(0, 4096, max(1, size // width))
        return (lambda: np.take(table, rows, axis=0)), rows
    x = rng.standard_normal(_elements(row["inputs"], dtype)).astype(t)
    if kind == "norm" and row["flops"] <= 2 * size:  # a folded batch norm: x s + b
        dst0 = np.empty_like(x)
        scale = np.array([1.5, 0.5], dtype=t)
        return (lambda: k["affine"](x, scale, dst0)), x
    if kind in ("softmax", "norm"):
        cols = min(width, x.size) or 1
        y = x[: x.size // cols * cols].reshape(-1, cols)
        dst = np.empty_like(y)
        fn = k["softmax" if kind == "softmax" else "layernorm"]
        return (lambda: fn(y, dst)), x
    if kind == "activation":
        dst1 = np.empty_like(x)
        act = k["gelu"] if row["transcendentals"] > 0 else k["relu"]
        return (lambda: act(x, dst1)), x
    if kind == "pool":
        ratio = max(1, x.size // size)
        y = x[: size * ratio].reshape(size, ratio)
        dst3 = np.empty(size, dtype=t)
        return (lambda: k["pool"](y, dst3)), x
    out = x[:size] if x.size >= size else np.resize(x, size)
    if kind == "concat":
        return (lambda: out.copy()), x
    dst2 = np.empty_like(out)
    return (lambda: k["add"](out, out, dst2)), x  # elementwise


def check(w: Workload, device: Device, run: RunConfig) -> CheckResult:
    """Run `w`'s forward pass for `run` in numpy on this machine, layer by layer."""
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
    compiled = _kernels()
    flush = np.empty(_flush_bytes() // 8) if np.any(t.weight_bytes > 0) else None
    checks = []
    for i in range(len(t)):
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
        op, warm = _op(str(t.kind[i]), row, run.dtype, width, compiled)
        weighted = row["weights"] > 0 and t.kind[i] != "norm"  # a norm's scale is tiny
        measured = _timed(op, flush if weighted else None, warm) * int(t.count[i])
        checks.append(
            LayerCheck(
                name=str(t.name[i]),
                kind=str(t.kind[i]),
                count=int(t.count[i]),
                bound_s=float(result.time_s[i]),
                expected_s=float(result.expected_time_s[i]),
                measured_s=measured,
            )
        )
    return CheckResult(result, tuple(checks))
