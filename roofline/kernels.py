"""The roofline engine: arrays in, arrays out. No I/O, no YAML, no pandas.

For every (layer, device) pair:
    intensity   I = FLOPs / bytes                      (FLOP/byte, per layer)
    ridge       R = peak / bandwidth                   (FLOP/byte, per device)
    attainable  A = min(peak, I * bandwidth)           (FLOP/s)
    time        T = max(FLOPs / peak, bytes / bandwidth)  (s)
    bound       compute-bound exactly when I >= R, memory-bound otherwise

`sweep` evaluates a whole grid of scenarios: per-layer costs as polynomial coefficients
times each scenario's basis terms, then the same roofline per layer, summed over layers,
and with an `Expectation` efficiency.py's expected time in the same pass.
`expected_ladder` gives that expected time for the rows of one layer table (the per-run
path, efficiency.expected_times): the grid kernel and it call the same scalar helpers
(_numba_kernels), compiled in the grid and as plain Python here, so the two paths agree to
the last bit (tests/test_kernels.py checks it) and one run never waits for numba.

`evaluate` runs the numba kernel (parallel over layers) on large problems and the plain
vectorised numpy version (`evaluate_numpy`, also the reference the tests compare against) on
small ones: loading numba and its cached kernel costs about 0.3 s a process, far more than a
few hundred evaluations take in numpy (see benchmarks/bench_engine.py for the crossover).
Likewise a sweep's grid runs compiled from AUTO_GRID_MIN_EVALUATIONS evaluations up, as
plain Python below (a report's heatmap): numba is imported only where it pays off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from . import _numba_kernels
from ._kernel_inputs import (
    Expectation,
    Out,
    array,
    bound_only,
    expectation,
    finite,
    grid_inputs,
    used,
)
from .errors import RooflineError

__all__ = [
    "ENGINES",
    "LADDER",
    "Expectation",
    "RooflineArrays",
    "SweepArrays",
    "curve",
    "evaluate",
    "evaluate_numpy",
    "expected_ladder",
    "gemm_share",
    "roofline_buffers",
    "sweep",
    "sweep_buffers",
    "sweep_expected",
]

ENGINES = ("auto", "numba", "numpy")
# Below this many (layer, device) evaluations `auto` uses numpy: the work takes microseconds,
# while starting numba's runtime and loading the cached kernel takes ~0.25 s a process;
# benchmarks/bench_engine.py (c) measures where a fresh process breaks even.
AUTO_NUMBA_MIN_EVALUATIONS = 1_000_000
# Below this many (scenario, layer, device) evaluations a sweep's grid runs as the plain
# Python it is written in (~15 us an evaluation: a report's heatmap of 56 scenarios x 15
# layers takes ~12 ms), above it compiled: numba's start costs ~0.3 s a process.
AUTO_GRID_MIN_EVALUATIONS = 10_000


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
        from . import _compiled
    except Exception as exc:  # numba raises plain ValueError/ImportError at import
        raise RooflineError(
            f"the numba engine could not start: {exc} (check the NUMBA_* environment "
            "variables, e.g. NUMBA_NUM_THREADS must be >= 1)"
        ) from None
    return getattr(_compiled, name)


def _grid(scenarios: int, layers: int, devices: int) -> Any:
    """The grid kernel for this much work: plain Python or compiled, the same numbers."""
    if scenarios * layers * devices < AUTO_GRID_MIN_EVALUATIONS:
        return _numba_kernels.grid
    return _compiled("grid")


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
    flops: object,
    bytes_: object,
    peak: object,
    bandwidth: object,
    engine: str = "auto",
    out: RooflineArrays | None = None,
) -> RooflineArrays:
    """Roofline of L layers (FLOP, byte) on D devices (FLOP/s, byte/s).

    engine: "numba" (the compiled kernel), "numpy" (the reference), or "auto" (numba from
    AUTO_NUMBA_MIN_EVALUATIONS evaluations up). Both give the same numbers to 1e-12.

    out: caller-owned arrays to fill (`roofline_buffers(L, D)` makes a set), checked once
    here for shape, dtype and layout; then returned, so that a loop over problems of one
    shape allocates nothing (fresh outputs cost 17 bytes an evaluation of page faults).
    The numbers are the same to the last bit as without `out`.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    f, b, p, w = _inputs(flops, bytes_, peak, bandwidth)
    n, d = f.shape[0], p.shape[0]
    if out is not None:
        _check_out(out, n, d)
    if engine == "numpy" or (engine == "auto" and n * d < AUTO_NUMBA_MIN_EVALUATIONS):
        return _numpy(f, b, p, w, out)
    roofline = _compiled("roofline")
    res = roofline_buffers(n, d) if out is None else out
    roofline(f, b, p, w, *_arrays(res))
    return res


def roofline_buffers(layers: int, devices: int) -> RooflineArrays:
    """Uninitialised output arrays for `evaluate(..., out=)` on L layers and D devices."""
    ld = (layers, devices)
    return RooflineArrays(
        np.empty(layers), np.empty(devices), np.empty(ld), np.empty(ld), np.empty(ld, np.bool_)
    )


def _named(r: RooflineArrays) -> list[tuple[str, Any]]:
    return [(f.name, getattr(r, f.name)) for f in fields(r)]


def _arrays(r: RooflineArrays) -> list[Any]:
    """The fields in the kernel's order: intensity, ridge, attainable, time, compute."""
    return [a for _, a in _named(r)]


def _check_out(out: RooflineArrays, n: int, d: int) -> None:
    if not isinstance(out, RooflineArrays):
        raise ValueError(f"out: expected RooflineArrays, got {type(out).__name__}")
    shapes = {"intensity": (n,), "ridge": (d,)}
    empty = _named(roofline_buffers(0, 0))
    want = {name: (shapes.get(name, (n, d)), like.dtype) for name, like in empty}
    _check_buffers(_named(out), want)


def _check_buffers(
    named: list[tuple[str, Any]], want: Mapping[str, tuple[tuple[int, ...], np.dtype[Any]]]
) -> None:
    """Caller-owned outputs: each named array of the shape and dtype `want` says (float64
    unless said), C-contiguous and writeable (the kernels write through raw strides), none
    overlapping another."""
    for name, arr in named:
        shape, dtype = want[name]
        if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != dtype:
            got = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr)
            raise ValueError(f"out.{name}: expected {dtype} {shape}, got {got}")
        if not (arr.flags.c_contiguous and arr.flags.writeable):
            raise ValueError(f"out.{name}: must be C-contiguous and writeable")
    for i, (name, arr) in enumerate(named):
        for other, brr in named[i + 1 :]:
            if np.may_share_memory(arr, brr):
                raise ValueError(f"out.{name} and out.{other} share memory")


def evaluate_numpy(
    flops: object, bytes_: object, peak: object, bandwidth: object
) -> RooflineArrays:
    """The same formulas in vectorised numpy: the reference for tests and benchmarks."""
    return _numpy(*_inputs(flops, bytes_, peak, bandwidth))


def _numpy(
    f: np.ndarray,
    b: np.ndarray,
    p: np.ndarray,
    w: np.ndarray,
    out: RooflineArrays | None = None,
) -> RooflineArrays:
    if out is None:
        intensity = f / b
        ridge = p / w
        time = np.maximum(f[:, None] / p[None, :], b[:, None] / w[None, :])
        attainable = np.minimum(p[None, :], intensity[:, None] * w[None, :])
        compute = intensity[:, None] >= ridge[None, :]
        return RooflineArrays(intensity, ridge, attainable, time, compute)
    # the same operations, each written into `out` (one (L, D) temporary: the memory time)
    np.divide(f, b, out=out.intensity)
    np.divide(p, w, out=out.ridge)
    np.divide(f[:, None], p[None, :], out=out.time_s)
    np.maximum(out.time_s, b[:, None] / w[None, :], out=out.time_s)
    np.multiply(out.intensity[:, None], w[None, :], out=out.attainable_flops_per_s)
    np.minimum(p[None, :], out.attainable_flops_per_s, out=out.attainable_flops_per_s)
    np.greater_equal(out.intensity[:, None], out.ridge[None, :], out=out.compute_bound)
    return out


@dataclass(frozen=True)
class SweepArrays:
    """Kernel output for S scenarios on D devices."""

    time_s: np.ndarray  # (S, D) sum over layers of max(FLOPs / peak, bytes / bandwidth)
    memory_share: np.ndarray  # (S, D) share of that time in memory-bound layers
    flops: np.ndarray  # (S,) FLOP over all layers
    working_bytes: np.ndarray  # (S,) the largest layer's activation inputs + outputs
    expected_s: np.ndarray | None = None  # (S, D) when an Expectation was given


def sweep(
    flops: object,
    bytes_: object,
    io_bytes: object,
    basis: object,
    dtype_index: object,
    peak: object,
    bandwidth: object,
    expected: Expectation | None = None,
    out: SweepArrays | None = None,
) -> SweepArrays:
    """Roofline of S scenarios on D devices from polynomial costs, and with `expected` the
    expected time (efficiency.py) in the same pass over the layers.

    out: caller-owned arrays to fill (`sweep_buffers(S, D)`; its expected_s is needed only
    with `expected`), checked here as `evaluate`'s; the result holds those arrays, the same
    numbers to the last bit as fresh ones.

    flops (L, K) FLOP coefficients of L layers in K basis terms; bytes_ and io_bytes
    (T, L, K) byte coefficients per dtype; basis (S, K) each scenario's terms; dtype_index
    (S,) which dtype each scenario uses; peak (T, D) FLOP/s per dtype and device (> 0 for
    every dtype used); bandwidth (D,) byte/s.
    """
    f, y, x, k = grid_inputs(flops, bytes_, basis, dtype_index)
    io = array("io_bytes", io_bytes, 3)
    p = array("peak", peak, 2)
    w = array("bandwidth", bandwidth, 1)
    if io.shape != y.shape:
        raise ValueError(f"bytes {y.shape} and io_bytes {io.shape} must be alike")
    if p.shape != (y.shape[0], w.shape[0]):
        raise ValueError(f"peak: expected shape ({y.shape[0]}, {w.shape[0]}), got {p.shape}")
    if not np.all(w > 0) or not np.all(p[used(k, p.shape[0])] > 0):
        raise ValueError("peak (of every dtype used) and bandwidth must be > 0")
    if expected is None:
        bundles = bound_only(f, y, io, p, w)
    else:
        bundles = expectation(expected, f, y, k, io, (p, w))
    s, d = x.shape[0], w.shape[0]
    if out is None:
        out = sweep_buffers(s, d, expected is not None)
    else:
        named = [(f.name, getattr(out, f.name)) for f in fields(out)]
        if expected is None:  # the kernel does not write it
            named = named[:-1]
        sd = (s, d)
        want = {
            name: ((s,) if name in ("flops", "working_bytes") else sd, _F8) for name, _ in named
        }
        _check_buffers(named, want)
    exp = out.expected_s if expected is not None else None
    bufs = Out(out.time_s, out.memory_share, out.flops, out.working_bytes, _none(exp))
    _grid(s, f.shape[0], d)(*bundles, x, k, bufs)
    return SweepArrays(out.time_s, out.memory_share, out.flops, out.working_bytes, exp)


_F8 = np.dtype(np.float64)


def _none(arr: np.ndarray | None) -> np.ndarray:
    """An output the grid does not fill: an empty (0, 0) array in its place."""
    return np.empty((0, 0)) if arr is None else arr


def sweep_buffers(scenarios: int, devices: int, expected: bool = True) -> SweepArrays:
    """Uninitialised output arrays for `sweep(..., out=)` on S scenarios and D devices."""
    sd = (scenarios, devices)
    exp = np.empty(sd) if expected else None
    return SweepArrays(np.empty(sd), np.empty(sd), np.empty(scenarios), np.empty(scenarios), exp)


def sweep_expected(
    flops: object,
    bytes_: object,
    basis: object,
    dtype_index: object,
    expected: Expectation,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """(S, D) expected time of the kept layers only (no bound): e.g. a recomputed pass;
    into `out` (a caller-owned (S, D) float64 array, returned) when given."""
    f, y, x, k = grid_inputs(flops, bytes_, basis, dtype_index)
    layers, devices, options = expectation(expected, f, y, k, y, None)
    s, d = x.shape[0], devices.bandwidth.shape[0]
    if out is None:
        out = np.empty((s, d))
    else:
        _check_buffers([("expected_s", out)], {"expected_s": ((s, d), _F8)})
    bufs = Out(np.empty((0, 0)), np.empty((0, 0)), np.empty(0), np.empty(0), out)
    _grid(s, f.shape[0], d)(layers, devices, options, x, k, bufs)
    return out


# the rows of `expected_ladder`: each term switched on after the ones before it
LADDER = ("ceilings", "quantization", "attention kernel", "cache", "transcendentals", "launches")


def expected_ladder(flops: object, bytes_: object, expected: Expectation) -> np.ndarray:
    """(6, L) the expected time of L layers (FLOPs and bytes (L,), totals over repeats) on
    the one device of `expected` (one dtype, one device; its coefficients are the values:
    K = 1), with its terms switched on one after another (LADDER): the last row is the
    expected time, each difference of rows a loss (efficiency.expected_times)."""
    f = array("flops", np.asarray(flops).reshape(-1, 1), 2)
    y = array("bytes", np.asarray(bytes_).reshape(1, -1, 1), 3)
    if f.shape[0] != y.shape[1]:
        raise ValueError(f"flops and bytes differ in length: {f.shape[0]} vs {y.shape[1]}")
    layers, devices, options = expectation(expected, f, y, np.zeros(1, np.int64), y, None)
    if devices.ceiling_flops.shape != (1, 1):
        raise ValueError("expected_ladder: one dtype and one device")
    out = np.empty((len(LADDER), f.shape[0]))
    # plain Python: a few dozen rows take well under a millisecond, numba's start ~0.3 s
    _numba_kernels.ladder(layers, devices, options, np.ones((1, 1)), 0, 0, 0, out)
    return out


def gemm_share(
    groups: object,
    m: object,
    n: object,
    k: object,
    units: float,
    tile_m: float,
    tile_n: float,
    split_k_min: float,
    min_tile: float,
) -> np.ndarray:
    """q of GEMMs (groups x m x n outputs, k deep; arrays broadcast) on one device of
    `units` compute units and tiles of at most tile_m x tile_n (the grid's tile model);
    1 where groups is 0 (not a GEMM)."""
    arrays = np.broadcast_arrays(*(finite(a, v) for a, v in zip("gmnk", (groups, m, n, k))))
    flat = [np.ascontiguousarray(a.reshape(-1)) for a in arrays]
    out = np.empty(flat[0].shape)
    settings = (float(units), float(tile_m), float(tile_n), float(split_k_min), float(min_tile))
    _compiled("utilization")(*flat, *settings, out)
    return out.reshape(arrays[0].shape)


def curve(x: object, xs: object, ys: object) -> np.ndarray:
    """ys at each x, linear between the points (xs ascending), the end values beyond."""
    a = finite("x", x)
    px, py = array("xs", xs, 1), array("ys", ys, 1)
    if px.shape != py.shape or len(px) == 0:
        raise ValueError("xs and ys: as many points, at least one")
    out = np.empty(a.size)
    _compiled("curve")(np.ascontiguousarray(a.reshape(-1)), px, py, out)
    return out.reshape(a.shape)
