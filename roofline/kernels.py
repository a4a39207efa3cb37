"""The roofline engine: arrays in, arrays out. No I/O, no YAML, no pandas.

For every (layer, device) pair:
    intensity   I = FLOPs / bytes                      (FLOP/byte, per layer)
    ridge       R = peak / bandwidth                   (FLOP/byte, per device)
    attainable  A = min(peak, I * bandwidth)           (FLOP/s)
    time        T = max(FLOPs / peak, bytes / bandwidth)  (s)
    bound       compute-bound exactly when I >= R, memory-bound otherwise

`sweep` evaluates a whole grid of scenarios: per-layer costs as polynomial coefficients
times each scenario's basis terms, then the same roofline per layer, summed over layers.

`evaluate` runs the numba kernel (parallel over layers) on large problems and the plain
vectorised numpy version (`evaluate_numpy`, also the reference the tests compare against) on
small ones: loading numba and its cached kernel costs about 0.3 s a process, far more than a
few hundred evaluations take in numpy (see benchmarks/bench_engine.py for the crossover).
numba is imported only when the numba path runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import RooflineError

ENGINES = ("auto", "numba", "numpy")
# Below this many (layer, device) evaluations `auto` uses numpy: the work takes microseconds,
# while starting numba's runtime and loading the cached kernel takes ~0.25 s a process;
# benchmarks/bench_engine.py (c) measures where a fresh process breaks even.
AUTO_NUMBA_MIN_EVALUATIONS = 1_000_000


@dataclass(frozen=True)
class RooflineArrays:
    """Engine output for L layers on D devices."""

    intensity: np.ndarray  # (L,) FLOP/byte
    ridge: np.ndarray  # (D,) FLOP/byte
    attainable_flops_per_s: np.ndarray  # (L, D)
    time_s: np.ndarray  # (L, D)
    compute_bound: np.ndarray  # (L, D) bool


def _compiled(name: str) -> Any:
    """A numba kernel by name. numba reads its settings (NUMBA_NUM_THREADS, ...) from the
    environment when first imported; a bad one is the user's to fix, said in one line."""
    try:
        from . import _numba_kernels
    except Exception as exc:  # numba raises plain ValueError/ImportError at import
        raise RooflineError(
            f"the numba engine could not start: {exc} (check the NUMBA_* environment "
            "variables, e.g. NUMBA_NUM_THREADS must be >= 1)"
        ) from None
    return getattr(_numba_kernels, name)


def _checked(name: str, values: object, positive: bool) -> np.ndarray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: values must be finite")
    if positive and not np.all(arr > 0):
        raise ValueError(f"{name}: values must be > 0")
    if not positive and not np.all(arr >= 0):
        raise ValueError(f"{name}: values must be >= 0")
    return arr


def _inputs(
    flops: object, bytes_: object, peak: object, bandwidth: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    f = _checked("flops", flops, positive=False)
    b = _checked("bytes", bytes_, positive=True)
    p = _checked("peak", peak, positive=True)
    w = _checked("bandwidth", bandwidth, positive=True)
    if f.shape != b.shape:
        raise ValueError(f"flops and bytes differ in length: {f.shape} vs {b.shape}")
    if p.shape != w.shape:
        raise ValueError(f"peak and bandwidth differ in length: {p.shape} vs {w.shape}")
    return f, b, p, w


def evaluate(
    flops: object, bytes_: object, peak: object, bandwidth: object, engine: str = "auto"
) -> RooflineArrays:
    """Roofline of L layers (FLOP, byte) on D devices (FLOP/s, byte/s).

    engine: "numba" (the compiled kernel), "numpy" (the reference), or "auto" (numba from
    AUTO_NUMBA_MIN_EVALUATIONS evaluations up). Both give the same numbers to 1e-12.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    f, b, p, w = _inputs(flops, bytes_, peak, bandwidth)
    n, d = f.shape[0], p.shape[0]
    if engine == "numpy" or (engine == "auto" and n * d < AUTO_NUMBA_MIN_EVALUATIONS):
        return _numpy(f, b, p, w)
    roofline = _compiled("roofline")
    intensity = np.empty(n)
    ridge = np.empty(d)
    attainable = np.empty((n, d))
    time = np.empty((n, d))
    compute = np.empty((n, d), dtype=np.bool_)
    roofline(f, b, p, w, intensity, ridge, attainable, time, compute)
    return RooflineArrays(intensity, ridge, attainable, time, compute)


def evaluate_numpy(
    flops: object, bytes_: object, peak: object, bandwidth: object
) -> RooflineArrays:
    """The same formulas in vectorised numpy: the reference for tests and benchmarks."""
    return _numpy(*_inputs(flops, bytes_, peak, bandwidth))


def _numpy(f: np.ndarray, b: np.ndarray, p: np.ndarray, w: np.ndarray) -> RooflineArrays:
    intensity = f / b
    ridge = p / w
    time = np.maximum(f[:, None] / p[None, :], b[:, None] / w[None, :])
    attainable = np.minimum(p[None, :], intensity[:, None] * w[None, :])
    compute = intensity[:, None] >= ridge[None, :]
    return RooflineArrays(intensity, ridge, attainable, time, compute)


@dataclass(frozen=True)
class SweepArrays:
    """Kernel output for S scenarios on D devices."""

    time_s: np.ndarray  # (S, D) sum over layers of max(FLOPs / peak, bytes / bandwidth)
    memory_share: np.ndarray  # (S, D) share of that time in memory-bound layers
    flops: np.ndarray  # (S,) FLOP over all layers
    working_bytes: np.ndarray  # (S,) the largest layer's activation inputs + outputs
    expected_s: np.ndarray | None = None  # (S, D) when an Expectation was given


@dataclass(frozen=True)
class Expectation:
    """What the kernel needs for efficiency.py's expected time of a grid: the layers' GEMM
    shapes (4, L, K: groups, m, n, k per instance; groups 0: not a GEMM) and kernel launches
    (L, K) as coefficients, which layers count (keep, (L,) bool), each device's ceilings
    (ceiling_flops (T, D); ceiling_bandwidth, units, tile_m, tile_n, overhead_s (D,)), the
    tensor-parallel degree (FLOPs, bytes and a GEMM's n are divided by it; launches are
    not), split-K's least k, and whether to quantize (False with datasheet peaks and no
    overhead: the roofline bound)."""

    shape: object
    kernel_counts: object
    keep: object
    ceiling_flops: object
    ceiling_bandwidth: object
    units: object
    tile_m: object
    tile_n: object
    overhead_s: object
    tensor: float
    split_k_min: float
    quantize: bool = True
    # optional (None: not modelled): transcendental evaluations (L, K) and one instance's
    # bytes (T, L, K) as coefficients; per device the transcendental rate (elements/s), the
    # cache a layer's instance must fit to stream from it, and that cache's bandwidth
    transcendentals: object = None
    instance_bytes: object = None
    cacheable: object = None  # (L,) bool: the layers that may stream from the cache
    # measured GEMM curves (efficiency.curve_rate): log sizes (D, C), FLOP/s (T, D, C), and
    # the points each device has (D,; 0: none, the tile model)
    curve_x: object = None
    curve_y: object = None
    curve_n: object = None
    transcendental_rate: object = None
    cache_bytes: object = None
    cache_bandwidth: object = None
    # fused attention rows (L,) bool and, per dtype and device (T, D), the share of the GEMM
    # ceiling such a row reaches (efficiency.attention_share); None: the GEMM ceiling
    attention_layers: object = None
    attention_share: object = None


def _array(name: str, values: object, ndim: int) -> np.ndarray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: values must be finite")
    return arr


def _grid_inputs(
    flops: object, bytes_: object, basis: object, dtype_index: object, n_dtypes_from: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    f = _array("flops", flops, 2)
    y = _array("bytes", bytes_, 3)
    x = _array("basis", basis, 2)
    k = np.ascontiguousarray(dtype_index, dtype=np.int64)
    n_layers, n_terms = f.shape
    if y.shape[1:] != (n_layers, n_terms):
        raise ValueError(f"bytes {y.shape} must be (T, {n_layers}, {n_terms})")
    if x.shape[1] != n_terms:
        raise ValueError(f"basis has {x.shape[1]} terms, the coefficients {n_terms}")
    if k.shape != (x.shape[0],) or (len(k) and (k.min() < 0 or k.max() >= y.shape[0])):
        raise ValueError(f"dtype_index: expected {x.shape[0]} indices in [0, {y.shape[0]})")
    return f, y, x, k


def _expectation(
    e: Expectation, f: np.ndarray, y: np.ndarray, k: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The checked arrays of `e` for L layers, K terms, T dtypes."""
    n_layers, n_terms = f.shape
    sh = _array("shape", e.shape, 3)
    kc = _array("kernel_counts", e.kernel_counts, 2)
    mask = np.ascontiguousarray(e.keep, dtype=np.bool_)
    pa = _array("ceiling_flops", e.ceiling_flops, 2)
    per_device = [
        _array(name, getattr(e, name), 1)
        for name in ("ceiling_bandwidth", "units", "tile_m", "tile_n", "overhead_s")
    ]
    n_dev = pa.shape[1]
    if sh.shape != (4, n_layers, n_terms) or kc.shape != f.shape or mask.shape != (n_layers,):
        raise ValueError("shape, kernel_counts and keep must match the layers and terms")
    if pa.shape[0] != y.shape[0] or any(a.shape != (n_dev,) for a in per_device):
        raise ValueError(f"ceilings must be (T, D) and (D,) with D = {n_dev}")
    if not (np.all(per_device[0] > 0) and np.all(per_device[1] >= 1) and e.tensor >= 1):
        raise ValueError("bandwidth must be > 0, units and tensor >= 1")
    if len(k) and not np.all(pa[np.unique(k)] > 0):
        raise ValueError("ceiling_flops of every dtype used must be > 0")
    zeros = np.zeros(n_dev)
    tr = _optional("transcendentals", e.transcendentals, 2, np.zeros(f.shape))
    inst = _optional("instance_bytes", e.instance_bytes, 3, np.zeros(y.shape))
    cacheable = np.ascontiguousarray(
        np.ones(n_layers, dtype=np.bool_) if e.cacheable is None else e.cacheable, dtype=np.bool_
    )
    if cacheable.shape != (n_layers,):
        raise ValueError("cacheable must have one flag a layer")
    extra = [
        _optional(name, getattr(e, name), 1, zeros)
        for name in ("transcendental_rate", "cache_bytes", "cache_bandwidth")
    ]
    if tr.shape != f.shape or inst.shape != y.shape or any(a.shape != (n_dev,) for a in extra):
        raise ValueError("transcendentals, instance_bytes and the cache must match the layers")
    if any(np.any(a < 0) for a in extra):
        raise ValueError("transcendental_rate and the cache must be >= 0 (0: not modelled)")
    cn = np.ascontiguousarray(
        np.zeros(n_dev, np.int64) if e.curve_n is None else e.curve_n, dtype=np.int64
    )
    cx = _optional("curve_x", e.curve_x, 2, np.zeros((n_dev, 1)))
    cy = _optional("curve_y", e.curve_y, 3, np.zeros((y.shape[0], n_dev, 1)))
    if cn.shape != (n_dev,) or cx.shape[0] != n_dev or cy.shape != (y.shape[0], *cx.shape):
        raise ValueError("curve_x (D, C), curve_y (T, D, C) and curve_n (D,) must agree")
    if np.any(cn < 0) or np.any(cn > cx.shape[1]):
        raise ValueError("curve_n must count points the curves have")
    fused = np.ascontiguousarray(
        np.zeros(n_layers, np.bool_) if e.attention_layers is None else e.attention_layers,
        dtype=np.bool_,
    )
    share = _optional("attention_share", e.attention_share, 2, np.ones(pa.shape))
    if fused.shape != (n_layers,) or share.shape != pa.shape:
        raise ValueError("attention_layers must be (L,) and attention_share (T, D)")
    if np.any(share <= 0) or np.any(share > 1):
        raise ValueError("attention_share must be in (0, 1]")
    return (sh, kc, mask, pa, *per_device, tr, inst, cacheable, *extra, cx, cy, cn, fused, share)


def _optional(name: str, values: object, ndim: int, default: np.ndarray) -> np.ndarray:
    return default if values is None else _array(name, values, ndim)


def sweep(
    flops: object,
    bytes_: object,
    io_bytes: object,
    basis: object,
    dtype_index: object,
    peak: object,
    bandwidth: object,
    expected: Expectation | None = None,
) -> SweepArrays:
    """Roofline of S scenarios on D devices from polynomial costs, and with `expected` the
    expected time (efficiency.py) in the same pass over the layers.

    flops (L, K) FLOP coefficients of L layers in K basis terms; bytes_ and io_bytes
    (T, L, K) byte coefficients per dtype; basis (S, K) each scenario's terms; dtype_index
    (S,) which dtype each scenario uses; peak (T, D) FLOP/s per dtype and device (> 0 for
    every dtype used); bandwidth (D,) byte/s.
    """
    f, y, x, k = _grid_inputs(flops, bytes_, basis, dtype_index)
    io = _array("io_bytes", io_bytes, 3)
    p = _array("peak", peak, 2)
    w = _array("bandwidth", bandwidth, 1)
    if io.shape != y.shape:
        raise ValueError(f"bytes {y.shape} and io_bytes {io.shape} must be alike")
    if p.shape != (y.shape[0], w.shape[0]):
        raise ValueError(f"peak: expected shape ({y.shape[0]}, {w.shape[0]}), got {p.shape}")
    if not np.all(w > 0) or (len(k) and not np.all(p[np.unique(k)] > 0)):
        raise ValueError("peak (of every dtype used) and bandwidth must be > 0")
    s, d = x.shape[0], w.shape[0]
    exp_arrays = None
    if expected is not None:
        exp_arrays = _expectation(expected, f, y, k)
        if exp_arrays[3].shape[1] != d:
            raise ValueError("the expectation's devices differ from the peaks'")
    out = SweepArrays(
        np.empty((s, d)),
        np.empty((s, d)),
        np.empty(s),
        np.empty(s),
        np.empty((s, d)) if expected is not None else None,
    )
    _run_grid(f, y, io, x, k, p, w, expected, exp_arrays, out)
    return out


def sweep_expected(
    flops: object, bytes_: object, basis: object, dtype_index: object, expected: Expectation
) -> np.ndarray:
    """(S, D) expected time of the kept layers only (no bound): e.g. a recomputed pass."""
    f, y, x, k = _grid_inputs(flops, bytes_, basis, dtype_index)
    arrays = _expectation(expected, f, y, k)
    d = arrays[3].shape[1]
    s = x.shape[0]
    out = SweepArrays(
        np.empty((0, 0)), np.empty((0, 0)), np.empty(0), np.empty(0), np.empty((s, d))
    )
    dummy = np.zeros((1, d))
    _run_grid(f, y, y, x, k, dummy, np.ones(d), expected, arrays, out, want_bound=False)
    assert out.expected_s is not None  # filled above
    return out.expected_s


def _run_grid(
    f: np.ndarray,
    y: np.ndarray,
    io: np.ndarray,
    x: np.ndarray,
    k: np.ndarray,
    p: np.ndarray,
    w: np.ndarray,
    e: Expectation | None,
    arrays: tuple[np.ndarray, ...] | None,
    out: SweepArrays,
    want_bound: bool = True,
) -> None:
    kernel = _compiled("grid")
    n_layers, n_terms = f.shape
    d = w.shape[0]
    if e is None or arrays is None:
        sh, kc, mask = (
            np.zeros((4, n_layers, n_terms)),
            np.zeros(f.shape),
            np.zeros(n_layers, np.bool_),
        )
        pa, wa, units, tm, tn, oh = np.ones((y.shape[0], d)), *(np.ones(d) for _ in range(5))
        tr, inst, rate, cb, cbw = np.zeros(f.shape), np.zeros(y.shape), *(np.zeros(d),) * 3
        cacheable = np.zeros(n_layers, np.bool_)
        cx, cy, cn = np.zeros((d, 1)), np.zeros((y.shape[0], d, 1)), np.zeros(d, np.int64)
        fused, ashare = np.zeros(n_layers, np.bool_), np.ones((y.shape[0], d))
        tensor, split, quantize = 1.0, 1.0, False
    else:
        sh, kc, mask, pa, wa, units, tm, tn, oh, tr, inst, cacheable, rate, cb, cbw = arrays[:15]
        cx, cy, cn, fused, ashare = arrays[15:]
        tensor, split, quantize = float(e.tensor), float(e.split_k_min), bool(e.quantize)
    expected = out.expected_s if out.expected_s is not None else np.empty((0, 0))
    # the devices' distinct tile shapes: the kernel counts a GEMM's tiles once a shape
    shapes, tile_class = np.unique(np.stack([tm, tn], axis=1), axis=0, return_inverse=True)
    kernel(
        f,
        y,
        io,
        sh,
        kc,
        mask,
        x,
        k,
        p,
        w,
        pa,
        wa,
        units,
        np.ascontiguousarray(shapes[:, 0]),
        np.ascontiguousarray(shapes[:, 1]),
        np.ascontiguousarray(tile_class.reshape(-1), dtype=np.int64),
        oh,
        tr,
        inst,
        cacheable,
        rate,
        cb,
        cbw,
        cx,
        cy,
        cn,
        fused,
        ashare,
        tensor,
        split,
        quantize,
        want_bound,
        e is not None,
        out.time_s,
        out.memory_share,
        out.flops,
        out.working_bytes,
        expected,
    )
