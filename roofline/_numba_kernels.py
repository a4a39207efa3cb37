"""numba-compiled kernels. Private: call them through `roofline.kernels`, which checks
shapes and dtypes first. Imported only when a problem is large enough to need them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

# Compilation flags, set in one place. cache=True: a second process loads the compiled
# kernel from disk instead of compiling again. fastmath stays off so results match numpy.
JIT: dict[str, Any] = {
    "cache": True,
    "nogil": True,
    "parallel": True,
    "fastmath": False,
    "error_model": "numpy",
}
SCALAR = JIT | {"parallel": False}  # helpers called inside the parallel loops


@njit(**JIT)
def roofline(flops, bytes_, peak, bandwidth, intensity, ridge, attainable, time, compute):  # type: ignore[no-untyped-def]
    """Fill intensity (L,), ridge (D,), attainable, time, compute (L, D); see kernels.py."""
    n_dev = peak.shape[0]
    for j in range(n_dev):
        ridge[j] = peak[j] / bandwidth[j]
    for i in prange(flops.shape[0]):
        f = flops[i]
        b = bytes_[i]
        ai = f / b
        intensity[i] = ai
        for j in range(n_dev):
            p = peak[j]
            w = bandwidth[j]
            t_compute = f / p
            t_memory = b / w
            time[i, j] = t_compute if t_compute >= t_memory else t_memory
            roof = ai * w
            attainable[i, j] = p if p <= roof else roof
            compute[i, j] = ai >= ridge[j]


@njit(**JIT)
def sweep(  # type: ignore[no-untyped-def]
    flops_c, bytes_c, io_c, basis, dtype_idx, peak, bandwidth, time, share, flops_out, working_out
):
    """Per scenario i and device j: step time = sum over layers of max(FLOPs / peak,
    bytes / bandwidth) (coefficients are totals over repeats), the memory-bound share of it,
    the FLOPs, and the working set (the largest layer's inputs + outputs). Byte coefficients
    are per dtype: [dtype, layer, term]; see kernels.sweep."""
    n_layers, n_terms = flops_c.shape
    n_dev = bandwidth.shape[0]
    for i in prange(basis.shape[0]):
        k = dtype_idx[i]
        f = np.empty(n_layers)
        y = np.empty(n_layers)
        total_f = 0.0
        working = 0.0
        for layer in range(n_layers):
            fl = 0.0
            by = 0.0
            io = 0.0
            for term in range(n_terms):
                x = basis[i, term]
                fl += flops_c[layer, term] * x
                by += bytes_c[k, layer, term] * x
                io += io_c[k, layer, term] * x
            f[layer] = fl
            y[layer] = by
            total_f += fl
            if io > working:
                working = io
        flops_out[i] = total_f
        working_out[i] = working
        for j in range(n_dev):
            p = peak[k, j]
            w = bandwidth[j]
            t = 0.0
            mem = 0.0
            for layer in range(n_layers):
                tc = f[layer] / p
                tm = y[layer] / w
                if tm > tc:
                    t += tm
                    mem += tm
                else:
                    t += tc
            time[i, j] = t
            share[i, j] = mem / t if t > 0 else 0.0


@njit(**SCALAR)
def _tile(size, largest):  # type: ignore[no-untyped-def]
    """The power of two >= size, clipped to [16, largest] (efficiency._tile)."""
    t = 16.0
    while t < size and t < largest:
        t *= 2.0
    return t if t < largest else largest


@njit(**SCALAR)
def gemm_utilization(g, m, n, k, units, tile_m, tile_n, split_k_min):  # type: ignore[no-untyped-def]
    """efficiency.gemm_utilization for one GEMM (g > 0)."""
    if m < 1.0:
        m = 1.0
    if n < 1.0:
        n = 1.0
    tm = _tile(m, tile_m)
    tn = _tile(n, tile_n)
    tiles = g * np.ceil(m / tm) * np.ceil(n / tn)
    split = 1.0
    if tiles < units:
        split = min(np.floor(units / tiles), np.floor(k / split_k_min))
        if split < 1.0:
            split = 1.0
    waves = np.ceil(tiles * split / units)
    q = g * m * n / (tiles * tm * tn) * (tiles * split / (waves * units))
    return q if q < 1.0 else 1.0


@njit(**JIT)
def sweep_expected(  # type: ignore[no-untyped-def]
    flops_c,
    bytes_c,
    shape_c,
    kernels_c,
    keep,
    basis,
    dtype_idx,
    apeak,
    abw,
    units,
    tile_m,
    tile_n,
    overhead,
    tensor,
    split_k_min,
    quantize,
    out,
):
    """Per scenario i and device j: the expected time of the kept layers (efficiency.py) of
    one micro-batch on one device of a tensor-parallel group of `tensor`: FLOPs, bytes and
    a GEMM's n divided by `tensor`; kernel launches not. shape_c: [groups, m, n, k]."""
    n_layers, n_terms = flops_c.shape
    n_dev = abw.shape[0]
    is_gemm = np.zeros(n_layers, dtype=np.bool_)
    for layer in range(n_layers):
        for term in range(n_terms):
            if shape_c[0, layer, term] != 0.0:
                is_gemm[layer] = True
    for i in prange(basis.shape[0]):
        kd = dtype_idx[i]
        acc = np.zeros(n_dev)
        for layer in range(n_layers):
            if not keep[layer]:
                continue
            f = 0.0
            y = 0.0
            nk = 0.0
            g = 0.0
            m = 0.0
            n = 0.0
            kk = 0.0
            for term in range(n_terms):
                x = basis[i, term]
                f += flops_c[layer, term] * x
                y += bytes_c[kd, layer, term] * x
                nk += kernels_c[layer, term] * x
            if quantize and is_gemm[layer]:
                for term in range(n_terms):
                    x = basis[i, term]
                    g += shape_c[0, layer, term] * x
                    m += shape_c[1, layer, term] * x
                    n += shape_c[2, layer, term] * x
                    kk += shape_c[3, layer, term] * x
                n /= tensor
            f /= tensor
            y /= tensor
            for j in range(n_dev):
                q = 1.0
                if g > 0.0:
                    q = gemm_utilization(g, m, n, kk, units[j], tile_m[j], tile_n[j], split_k_min)
                tc = f / (apeak[kd, j] * q)
                tm = y / abw[j]
                t = tc if tc > tm else tm
                if nk > 0.0 and t < nk * overhead[j]:
                    t = nk * overhead[j]
                acc[j] += t
        for j in range(n_dev):
            out[i, j] = acc[j]
