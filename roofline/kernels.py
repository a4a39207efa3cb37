"""The roofline engine: arrays in, arrays out. No I/O, no YAML, no pandas.

For every (layer, device) pair:
    intensity   I = FLOPs / bytes                      (FLOP/byte, per layer)
    ridge       R = peak / bandwidth                   (FLOP/byte, per device)
    attainable  A = min(peak, I * bandwidth)           (FLOP/s)
    time        T = max(FLOPs / peak, bytes / bandwidth)  (s)
    bound       compute-bound exactly when I >= R, memory-bound otherwise

`evaluate` runs the numba kernel (parallel over layers) on large problems and the plain
vectorised numpy version (`evaluate_numpy`, also the reference the tests compare against) on
small ones: loading numba and its cached kernel costs about 0.3 s a process, far more than a
few hundred evaluations take in numpy (see benchmarks/bench_engine.py for the crossover).
numba is imported only when the numba path runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    from ._numba_kernels import roofline

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
