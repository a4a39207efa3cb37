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


@njit(**SCALAR)
def _tile(size, largest):  # type: ignore[no-untyped-def]
    """The power of two >= size, clipped to [16, largest] (efficiency._tile)."""
    t = 16.0
    while t < size and t < largest:
        t *= 2.0
    return t if t < largest else largest


@njit(**SCALAR)
def _curve_at(x, xs, ys, n):  # type: ignore[no-untyped-def]
    """efficiency.curve_rate: ys at x = log(size) between the n points (xs: log sizes)."""
    if x <= xs[0]:
        return ys[0]
    for i in range(n - 1):
        if x < xs[i + 1]:
            return ys[i] + (ys[i + 1] - ys[i]) * (x - xs[i]) / (xs[i + 1] - xs[i])
    return ys[n - 1]


@njit(**SCALAR)
def _tiles(g, m, n, tile_m, tile_n, tiles, pad):  # type: ignore[no-untyped-def]
    """gemm_utilization's device-independent part for each tile class c (m, n >= 1):
    tiles[c], the output tiles, and pad[c], the share of their slots inside the matrix."""
    for c in range(tile_m.shape[0]):
        tm = _tile(m, tile_m[c])
        tn = _tile(n, tile_n[c])
        t = g * np.ceil(m / tm) * np.ceil(n / tn)
        tiles[c] = t
        pad[c] = g * m * n / (t * tm * tn)


@njit(**SCALAR)
def _waves(tiles, pad, k_split, units):  # type: ignore[no-untyped-def]
    """gemm_utilization's device part: split-K while the tiles leave units idle, then the
    share of the last wave's slots in use, times the padding share."""
    split = 1.0
    if tiles < units:
        split = min(np.floor(units / tiles), k_split)
        if split < 1.0:
            split = 1.0
    waves = np.ceil(tiles * split / units)
    q = pad * (tiles * split / (waves * units))
    return q if q < 1.0 else 1.0


@njit(**JIT)
def grid(  # type: ignore[no-untyped-def]
    flops_c,
    bytes_c,
    io_c,
    shape_c,
    kernels_c,
    keep,
    basis,
    dtype_idx,
    peak,
    bandwidth,
    apeak,
    abw,
    units,
    tile_m,
    tile_n,
    tile_class,
    overhead,
    trans_c,
    inst_c,
    cacheable,
    trate,
    cache_b,
    cache_bw,
    curve_x,
    curve_y,
    curve_n,
    fused,
    attention_share,
    tensor,
    split_k_min,
    quantize,
    want_bound,
    want_expected,
    time,
    share,
    flops_out,
    working_out,
    expected_out,
):
    """One pass over S scenarios x L layers x D devices; see kernels.sweep and
    kernels.sweep_expected. The layers' FLOPs and bytes are evaluated from their
    coefficients once per scenario and serve both results:
      bound (want_bound): sum over layers of max(FLOPs / peak, bytes / bandwidth), its
        memory-bound share, the FLOPs and the working set (largest inputs + outputs);
      expected (want_expected): over the kept layers, efficiency.py's expected time on one
        device of a tensor-parallel group: FLOPs, bytes and a GEMM's n / tensor, tile and
        wave quantization (quantize; the devices' distinct tile shapes tile_m, tile_n
        (C,) and each device's tile_class (D,): tiles are counted once a shape), the
        cache's bandwidth for a cacheable layer (no weights) whose one instance fits it
        (cache_b > 0), transcendentals at trate (> 0), at least one kernel overhead per
        launch; a fused attention row (fused) at attention_share (T, D) of the GEMM
        ceiling besides. The device loops are written without branches where they can be, so that
        the compiler vectorizes them.
    Coefficients are totals over repeats; bytes are per dtype [dtype, layer, term]."""
    n_layers, n_terms = flops_c.shape
    n_dev = bandwidth.shape[0]
    is_gemm = np.zeros(n_layers, dtype=np.bool_)
    # the transcendental and cache terms only where some device has them (GPUs: none)
    need_t = want_expected and n_dev > 0 and trate.max() > 0.0
    need_c = want_expected and n_dev > 0 and cache_b.max() > 0.0
    if want_expected:
        for layer in range(n_layers):
            for term in range(n_terms):
                if shape_c[0, layer, term] != 0.0:
                    is_gemm[layer] = True
    any_curve = n_dev > 0 and curve_n.max() > 0
    # reciprocals: the device loops multiply (a division costs several multiplications;
    # the results differ from dividing by at most an ulp)
    inv_peak = 1.0 / peak
    inv_bw = 1.0 / bandwidth
    inv_apeak = 1.0 / apeak
    for i in prange(basis.shape[0]):
        kd = dtype_idx[i]
        tiles = np.empty(tile_m.shape[0])
        pad = np.empty(tile_m.shape[0])
        qs = np.empty(n_dev)
        t_bound = np.zeros(n_dev)
        t_mem = np.zeros(n_dev)
        t_exp = np.zeros(n_dev)
        total_f = 0.0
        working = 0.0
        for layer in range(n_layers):
            f = 0.0
            y = 0.0
            io = 0.0
            for term in range(n_terms):
                x = basis[i, term]
                f += flops_c[layer, term] * x
                y += bytes_c[kd, layer, term] * x
            if want_bound:
                for term in range(n_terms):
                    io += io_c[kd, layer, term] * basis[i, term]
                total_f += f
                if io > working:
                    working = io
                for j in range(n_dev):
                    tc = f * inv_peak[kd, j]
                    tm = y * inv_bw[j]
                    memory_bound = tm > tc
                    t_bound[j] += tm if memory_bound else tc
                    t_mem[j] += tm if memory_bound else 0.0
            if not (want_expected and keep[layer]):
                continue
            nk = 0.0
            te = 0.0
            yi = 0.0
            g = 0.0
            m = 0.0
            n = 0.0
            kk = 0.0
            for term in range(n_terms):
                nk += kernels_c[layer, term] * basis[i, term]
            if need_t:
                for term in range(n_terms):
                    te += trans_c[layer, term] * basis[i, term]
            if need_c:
                for term in range(n_terms):
                    yi += inst_c[kd, layer, term] * basis[i, term]
            if quantize and is_gemm[layer]:
                for term in range(n_terms):
                    x = basis[i, term]
                    g += shape_c[0, layer, term] * x
                    m += shape_c[1, layer, term] * x
                    n += shape_c[2, layer, term] * x
                    kk += shape_c[3, layer, term] * x
                n /= tensor
            fe = f / tensor
            ye = y / tensor
            te /= tensor
            yi /= tensor
            k_split = 0.0
            log_s = 0.0
            if g > 0.0:
                m = m if m > 1.0 else 1.0
                n = n if n > 1.0 else 1.0
                _tiles(g, m, n, tile_m, tile_n, tiles, pad)
                k_split = np.floor(kk / split_k_min)
                if any_curve:
                    s = min(m, min(n, kk))
                    log_s = np.log(s if s > 1.0 else 1.0)
            if g > 0.0:  # the GEMM's share of the device's ceiling, q
                for j in range(n_dev):
                    if curve_n[j] > 0:  # a measured curve by the smallest dimension
                        r = _curve_at(log_s, curve_x[j], curve_y[kd, j], curve_n[j])
                        q = r / apeak[kd, j]
                        qs[j] = q if q < 1.0 else 1.0
                    else:
                        c = tile_class[j]
                        qs[j] = _waves(tiles[c], pad[c], k_split, units[j])
                    if fused[layer]:  # a fused attention kernel: its own ceiling's share
                        qs[j] *= attention_share[kd, j]
            else:
                qs[:] = 1.0
            cached = need_c and cacheable[layer]
            for j in range(n_dev):
                tc = fe * inv_apeak[kd, j] / qs[j]
                w = abw[j]
                if cached and cache_b[j] > 0.0 and yi <= cache_b[j] and cache_bw[j] > w:
                    w = cache_bw[j]
                tm = ye / w
                t = tc if tc > tm else tm
                if need_t and trate[j] > 0.0 and te / trate[j] > t:
                    t = te / trate[j]
                launch = nk * overhead[j]  # nk >= 0 and t >= 0: a floor only where nk > 0
                t_exp[j] += t if t > launch else launch
        if want_bound:
            flops_out[i] = total_f
            working_out[i] = working
            for j in range(n_dev):
                time[i, j] = t_bound[j]
                share[i, j] = t_mem[j] / t_bound[j] if t_bound[j] > 0 else 0.0
        if want_expected:
            for j in range(n_dev):
                expected_out[i, j] = t_exp[j]
