"""The kernels' inputs, checked: `Expectation` (what the expected time needs, as callers
give it) and the named bundles the numba kernels take (NamedTuples of contiguous float64,
int64 and bool arrays: numba compiles one version for them all). Private to the engine:
`roofline.kernels` is the door. No I/O, numpy only.

numba's on-disk cache records these classes by module and name: after moving or renaming
one, delete roofline/__pycache__/_numba_kernels.*.nbi, whose index would no longer load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class Expectation:
    """What the kernels need for efficiency.py's expected time: the layers' GEMM shapes
    (4, L, K: groups, m, n, k per instance; groups 0: not a GEMM) and kernel launches
    (L, K) as coefficients, which layers count (keep, (L,) bool), each device's ceilings
    (ceiling_flops (T, D); ceiling_bandwidth, units, tile_m, tile_n, overhead_s (D,)), the
    tensor-parallel degree (FLOPs, bytes, transcendentals, an instance's bytes and a GEMM's
    n are divided by it; launches are not), split-K's least k, the smallest tile side, and
    whether to quantize (False with datasheet peaks and no overhead: the roofline bound)."""

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
    min_tile: float
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
    # ceiling such a row reaches (efficiency.attention_factor); None: the GEMM ceiling
    attention_layers: object = None
    attention_share: object = None


# The kernels' inputs as named bundles (numba takes NamedTuples of arrays): built and
# checked here, read by field name in _numba_kernels.


class Layers(NamedTuple):
    """L layers' costs as coefficients of K basis terms (totals over repeats), T dtypes."""

    flops: np.ndarray  # (L, K)
    bytes: np.ndarray  # (T, L, K)
    io: np.ndarray  # (T, L, K) one instance's inputs + outputs (the working set)
    shape: np.ndarray  # (4, L, K) GEMM groups, m, n, k per instance
    kernels: np.ndarray  # (L, K) launches
    transcendentals: np.ndarray  # (L, K)
    instance_bytes: np.ndarray  # (T, L, K)
    keep: np.ndarray  # (L,) bool: the layers the expected time counts
    cacheable: np.ndarray  # (L,) bool
    fused: np.ndarray  # (L,) bool: fused attention rows


class Devices(NamedTuple):
    """D devices: the datasheet roofline and what each reaches (efficiency.Ceilings)."""

    peak: np.ndarray  # (T, D) FLOP/s, the bound's
    bandwidth: np.ndarray  # (D,) byte/s, the bound's
    ceiling_flops: np.ndarray  # (T, D)
    ceiling_bandwidth: np.ndarray  # (D,)
    units: np.ndarray  # (D,)
    tile_m: np.ndarray  # (C,) the devices' distinct tile shapes
    tile_n: np.ndarray  # (C,)
    tile_class: np.ndarray  # (D,) int64: each device's tile shape
    overhead_s: np.ndarray  # (D,)
    transcendental_rate: np.ndarray  # (D,) 0: not modelled
    cache_bytes: np.ndarray  # (D,) 0: no cache tier
    cache_bw: np.ndarray  # (D,)
    curve_x: np.ndarray  # (D, P) log sizes of measured GEMM curves
    curve_y: np.ndarray  # (T, D, P) their FLOP/s
    curve_n: np.ndarray  # (D,) int64 points (0: the tile model)
    attention_share: np.ndarray  # (T, D)


class Options(NamedTuple):
    tensor: float
    split_k_min: float
    min_tile: float
    quantize: bool
    bound: bool  # the grid fills the bound
    expected: bool  # the grid fills the expected time


class Out(NamedTuple):
    time: np.ndarray  # (S, D)
    share: np.ndarray  # (S, D)
    flops: np.ndarray  # (S,)
    working: np.ndarray  # (S,)
    expected: np.ndarray  # (S, D)


def array(name: str, values: object, ndim: int) -> np.ndarray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: values must be finite")
    return arr


def finite(name: str, values: object) -> np.ndarray:
    """`values` as a float64 array of any shape, all finite."""
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: values must be finite")
    return arr


def _flags(values: object, n: int, default: bool = False) -> np.ndarray:
    return np.ascontiguousarray(np.full(n, default) if values is None else values, dtype=np.bool_)


def _optional(name: str, values: object, ndim: int, default: np.ndarray) -> np.ndarray:
    return default if values is None else array(name, values, ndim)


def used(k: np.ndarray, n: int) -> np.ndarray:
    """(n,) bool: the dtypes the scenarios' indices k use."""
    mask = np.zeros(n, dtype=np.bool_)
    mask[k] = True
    return mask


def grid_inputs(
    flops: object, bytes_: object, basis: object, dtype_index: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    f = array("flops", flops, 2)
    y = array("bytes", bytes_, 3)
    x = array("basis", basis, 2)
    k = np.ascontiguousarray(dtype_index, dtype=np.int64)
    n_layers, n_terms = f.shape
    if y.shape[1:] != (n_layers, n_terms):
        raise ValueError(f"bytes {y.shape} must be (T, {n_layers}, {n_terms})")
    if x.shape[1] != n_terms:
        raise ValueError(f"basis has {x.shape[1]} terms, the coefficients {n_terms}")
    if k.shape != (x.shape[0],) or (len(k) and (k.min() < 0 or k.max() >= y.shape[0])):
        raise ValueError(f"dtype_index: expected {x.shape[0]} indices in [0, {y.shape[0]})")
    return f, y, x, k


def bound_only(
    f: np.ndarray, y: np.ndarray, io: np.ndarray, peak: np.ndarray, bandwidth: np.ndarray
) -> tuple[Layers, Devices, Options]:
    """The bundles of a grid without an expected time."""
    (n_layers, n_terms), n_dtypes, d = f.shape, y.shape[0], bandwidth.shape[0]
    off = np.zeros(n_layers, np.bool_)
    zeros, ones = np.zeros(d), np.ones(d)
    layers = Layers(
        f, y, io, np.zeros((4, n_layers, n_terms)), *(np.zeros(f.shape),) * 2, y, off, off, off
    )
    devices = Devices(
        peak, bandwidth, peak, bandwidth, ones, ones[:1], ones[:1], np.zeros(d, np.int64),
        zeros, zeros, zeros, zeros, np.zeros((d, 1)), np.zeros((n_dtypes, d, 1)),
        np.zeros(d, np.int64), np.ones((n_dtypes, d)),
    )  # fmt: skip
    return layers, devices, Options(1.0, 1.0, 1.0, False, True, False)


def expectation(
    e: Expectation,
    f: np.ndarray,
    y: np.ndarray,
    k: np.ndarray,
    io: np.ndarray,
    bound: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[Layers, Devices, Options]:
    """The checked bundles of `e` for L layers, K terms, T dtypes; `bound`: the datasheet
    peaks (T, D) and bandwidths (D,) when the grid fills the bound too."""
    n_layers, n_terms = f.shape
    sh = array("shape", e.shape, 3)
    kc = array("kernel_counts", e.kernel_counts, 2)
    mask = _flags(e.keep, n_layers, True)  # None: every layer counts
    pa = array("ceiling_flops", e.ceiling_flops, 2)
    per_device = [
        array(name, getattr(e, name), 1)
        for name in ("ceiling_bandwidth", "units", "tile_m", "tile_n", "overhead_s")
    ]
    n_dev = pa.shape[1]
    if sh.shape != (4, n_layers, n_terms) or kc.shape != f.shape or mask.shape != (n_layers,):
        raise ValueError("shape, kernel_counts and keep must match the layers and terms")
    if pa.shape[0] != y.shape[0] or any(a.shape != (n_dev,) for a in per_device):
        raise ValueError(f"ceilings must be (T, D) and (D,) with D = {n_dev}")
    if not (np.all(per_device[0] > 0) and np.all(per_device[1] >= 1) and e.tensor >= 1):
        raise ValueError("bandwidth must be > 0, units and tensor >= 1")
    if not np.all(pa[used(k, pa.shape[0])] > 0):
        raise ValueError("ceiling_flops of every dtype used must be > 0")
    zeros = np.zeros(n_dev)
    tr = _optional("transcendentals", e.transcendentals, 2, np.zeros(f.shape))
    inst = _optional("instance_bytes", e.instance_bytes, 3, np.zeros(y.shape))
    cacheable = _flags(e.cacheable, n_layers, True)
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
    fused = _flags(e.attention_layers, n_layers)
    share = _optional("attention_share", e.attention_share, 2, np.ones(pa.shape))
    if fused.shape != (n_layers,) or share.shape != pa.shape:
        raise ValueError("attention_layers must be (L,) and attention_share (T, D)")
    if np.any(share <= 0) or np.any(share > 1):
        raise ValueError("attention_share must be in (0, 1]")
    if bound is not None and bound[0].shape != pa.shape:
        raise ValueError("the expectation's devices differ from the peaks'")
    peak, bandwidth = bound if bound is not None else (pa, per_device[0])
    # the devices' distinct tile shapes: the grid counts a GEMM's tiles once a shape
    tiles = np.stack(per_device[2:4], axis=1)
    tile_class = np.zeros(n_dev, np.int64)
    if n_dev > 1:
        tiles, tile_class = np.unique(tiles, axis=0, return_inverse=True)
    layers = Layers(f, y, io, sh, kc, tr, inst, mask, cacheable, fused)
    devices = Devices(
        peak, bandwidth, pa, per_device[0], per_device[1],
        np.ascontiguousarray(tiles[:, 0]), np.ascontiguousarray(tiles[:, 1]),
        np.ascontiguousarray(tile_class.reshape(-1), dtype=np.int64),
        per_device[4], extra[0], extra[1], extra[2], cx, cy, cn, share,
    )  # fmt: skip
    options = Options(
        float(e.tensor), float(e.split_k_min), float(e.min_tile), bool(e.quantize),
        bound is not None, True,
    )  # fmt: skip
    return layers, devices, options
