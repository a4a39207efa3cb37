"""The kernels numba compiles, written as plain Python on floats and numpy arrays. Private:
call them through `roofline.kernels`, which checks shapes and dtypes first. This module
imports numpy only: `_compiled` compiles each function marked `@jit(FLAGS)` below (the grid
of a sweep, the large roofline), while one run's expected time (`ladder`, from
efficiency.expected_times through kernels.expected_ladder) runs as the plain Python it is
written in, without the ~0.3 s that loading numba and its cached kernels costs a process.

The per-layer expected time (efficiency.py's model) is written once, as small scalar
helpers of plain floats (`tile_side` ... `layer_time`), in poliastro's way: the compiled
grid kernel calls their compiled versions for every (scenario, layer, device), and the plain
`ladder` these same functions for the rows of one layer table; tests/test_kernels.py checks
the two runs agree to the last bit. What works in both: float arithmetic in a fixed order,
np.floor and np.ceil (exact), math.log (libm's, as numba calls it), no Python-only types.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

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
# helpers that take arrays or a bundle (a NamedTuple of arrays) are inlined in numba's IR:
# a call passes every array's structure (and counts its references); the grid ran 60%
# slower with layer_terms called
BUNDLE = SCALAR | {"inline": "always"}

FLAGS: dict[str, dict[str, Any]] = {}  # what _compiled compiles: function name -> flags
prange = range  # numba's parallel range where compiled (_compiled binds numba.prange)


def jit(flags: dict[str, Any]) -> Callable[[Callable[..., Any]], Any]:
    """Mark a function for `_compiled` to compile with `flags`; here it stays as written
    (typed Any, as numba's dispatchers are: the kernels take arrays of any shape)."""

    def mark(fn: Callable[..., Any]) -> Any:
        FLAGS[fn.__name__] = flags
        return fn

    return mark


@jit(JIT)
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


# --- the per-layer expected time: scalar helpers (efficiency.py's docstring names the terms)


@jit(SCALAR)
def tile_side(size, smallest, largest):  # type: ignore[no-untyped-def]
    """The power of two >= size, clipped to [smallest, largest] (smallest a power of two)."""
    t = smallest
    while t < size and t < largest:
        t *= 2.0
    return t if t < largest else largest


@jit(SCALAR)
def gemm_dims(m, n, k, split_k_min, want_log):  # type: ignore[no-untyped-def]
    """A GEMM's m and n (at least 1), the most split-K parts its k allows, and (want_log)
    the log of its smallest dimension, where a measured curve is read (else 0)."""
    m = m if m > 1.0 else 1.0
    n = n if n > 1.0 else 1.0
    k_split = np.floor(k / split_k_min)
    log_s = 0.0
    if want_log:
        s = min(m, min(n, k))
        log_s = math.log(s if s > 1.0 else 1.0)
    return m, n, k_split, log_s


@jit(SCALAR)
def gemm_tiles(g, m, n, tile_m, tile_n, min_tile):  # type: ignore[no-untyped-def]
    """q's device-independent part for tiles of at most tile_m x tile_n (m, n >= 1): the
    output tiles, and the share of their slots inside the matrix (the padding share)."""
    tm = tile_side(m, min_tile, tile_m)
    tn = tile_side(n, min_tile, tile_n)
    t = g * np.ceil(m / tm) * np.ceil(n / tn)
    return t, g * m * n / (t * tm * tn)


@jit(SCALAR)
def gemm_waves(tiles, pad, k_split, units):  # type: ignore[no-untyped-def]
    """q's device part: split-K while the tiles leave units idle, then the share of the
    last wave's slots in use, times the padding share; at most 1."""
    split = 1.0
    if tiles < units:
        split = min(np.floor(units / tiles), k_split)
        if split < 1.0:
            split = 1.0
    waves = np.ceil(tiles * split / units)
    q = pad * (tiles * split / (waves * units))
    return q if q < 1.0 else 1.0


@jit(SCALAR)
def curve_at(x, xs, ys, n):  # type: ignore[no-untyped-def]
    """ys at x, linear between the first n points (xs ascending), the end values beyond."""
    if x <= xs[0]:
        return ys[0]
    for i in range(n - 1):
        if x < xs[i + 1]:
            return ys[i] + (ys[i + 1] - ys[i]) * (x - xs[i]) / (xs[i + 1] - xs[i])
    return ys[n - 1]


@jit(BUNDLE)
def gemm_share(tiles, pad, k_split, log_s, dev, kd, j, attention):  # type: ignore[no-untyped-def]
    """q of a GEMM on device j (dtype kd): a measured curve's rate at its smallest dimension
    over the ceiling where the device has one, else the tiles in waves; times `attention`
    (a fused attention row's share of the GEMM ceiling; 1 for other rows)."""
    points = dev.curve_n[j]
    if points > 0:
        rate = curve_at(log_s, dev.curve_x[j], dev.curve_y[kd, j], points)
        q = rate / dev.ceiling_flops[kd, j]
        q = q if q < 1.0 else 1.0
    else:
        q = gemm_waves(tiles, pad, k_split, dev.units[j])
    return q * attention


@jit(SCALAR)
def stream_bandwidth(bandwidth, cacheable, instance_bytes, cache_bytes, cache_bandwidth):  # type: ignore[no-untyped-def]
    """The bandwidth a layer streams at: the cache's where it reads no weights (cacheable)
    and one instance fits the cache (cache_bytes > 0) and the cache is faster."""
    if (
        cacheable
        and cache_bytes > 0.0
        and instance_bytes <= cache_bytes
        and cache_bandwidth > bandwidth
    ):
        return cache_bandwidth
    return bandwidth


@jit(SCALAR)
def layer_time(f, y, te, nk, inv_ceiling, q, w, trate, overhead):  # type: ignore[no-untyped-def]
    """A layer's expected time: max(f / (P_a q), y / w, te / trate), and at least one
    overhead per kernel launch (nk >= 0: a floor only where nk > 0). inv_ceiling = 1 / P_a
    (a multiplication: the grid's device loops avoid a division); trate 0: not modelled."""
    tc = f * inv_ceiling / q
    tm = y / w
    t = tc if tc > tm else tm
    if trate > 0.0 and te / trate > t:
        t = te / trate
    launch = nk * overhead
    return t if t > launch else launch


@jit(BUNDLE)
def _poly(coef, layer, basis, i):  # type: ignore[no-untyped-def]
    """Coefficients coef[layer] (L, K) at scenario i's basis terms."""
    s = 0.0
    for term in range(basis.shape[1]):
        s += coef[layer, term] * basis[i, term]
    return s


@jit(BUNDLE)
def _poly_t(coef, kd, layer, basis, i):  # type: ignore[no-untyped-def]
    """Coefficients coef[kd, layer] (T, L, K) at scenario i's basis terms."""
    s = 0.0
    for term in range(basis.shape[1]):
        s += coef[kd, layer, term] * basis[i, term]
    return s


@jit(BUNDLE)
def layer_terms(lay, layer, kd, basis, i, tensor, need_t, need_c, gemm):  # type: ignore[no-untyped-def]
    """One layer's expected-time inputs besides its FLOPs and bytes, at scenario i's basis
    terms, on one device of a tensor-parallel group: kernel launches (every device
    launches every kernel), transcendentals / tensor (need_t), one instance's bytes /
    tensor (need_c) and, for a GEMM (gemm), its groups, m, n / tensor and k (groups 0: not
    a GEMM)."""
    nk = _poly(lay.kernels, layer, basis, i)
    te = _poly(lay.transcendentals, layer, basis, i) / tensor if need_t else 0.0
    yi = _poly_t(lay.instance_bytes, kd, layer, basis, i) / tensor if need_c else 0.0
    g = m = n = k = 0.0
    if gemm:
        g = _poly_t(lay.shape, 0, layer, basis, i)
        m = _poly_t(lay.shape, 1, layer, basis, i)
        n = _poly_t(lay.shape, 2, layer, basis, i) / tensor
        k = _poly_t(lay.shape, 3, layer, basis, i)
    return nk, te, yi, g, m, n, k


@jit(SCALAR)
def ladder(lay, dev, opt, basis, i, kd, j, out):  # type: ignore[no-untyped-def]
    """Each layer's expected time at scenario i's basis terms, dtype kd, on device j, with
    its terms switched on one after another (kernels.LADDER): out (6, L) rows: the
    ceilings, q without and with the attention kernel's share, the cache, the
    transcendentals, the kernel launches (the expected time)."""
    tensor = opt.tensor
    inv = 1.0 / dev.ceiling_flops[kd, j]
    w0 = dev.ceiling_bandwidth[j]
    c = dev.tile_class[j]
    for layer in range(lay.flops.shape[0]):
        f = _poly(lay.flops, layer, basis, i) / tensor
        y = _poly_t(lay.bytes, kd, layer, basis, i) / tensor
        gemm = opt.quantize and lay.shape[0, layer].any()
        nk, te, yi, g, m, n, k = layer_terms(lay, layer, kd, basis, i, tensor, True, True, gemm)
        q0 = q = 1.0
        if g > 0.0:
            m, n, k_split, log_s = gemm_dims(m, n, k, opt.split_k_min, dev.curve_n[j] > 0)
            tiles, pad = gemm_tiles(g, m, n, dev.tile_m[c], dev.tile_n[c], opt.min_tile)
            q0 = gemm_share(tiles, pad, k_split, log_s, dev, kd, j, 1.0)
            a = dev.attention_share[kd, j] if lay.fused[layer] else 1.0
            q = gemm_share(tiles, pad, k_split, log_s, dev, kd, j, a)
        w = stream_bandwidth(w0, lay.cacheable[layer], yi, dev.cache_bytes[j], dev.cache_bw[j])
        rate, o = dev.transcendental_rate[j], dev.overhead_s[j]
        out[0, layer] = layer_time(f, y, te, nk, inv, 1.0, w0, 0.0, 0.0)
        out[1, layer] = layer_time(f, y, te, nk, inv, q0, w0, 0.0, 0.0)
        out[2, layer] = layer_time(f, y, te, nk, inv, q, w0, 0.0, 0.0)
        out[3, layer] = layer_time(f, y, te, nk, inv, q, w, 0.0, 0.0)
        out[4, layer] = layer_time(f, y, te, nk, inv, q, w, rate, 0.0)
        out[5, layer] = layer_time(f, y, te, nk, inv, q, w, rate, o)


@jit(JIT)
def grid(lay, dev, opt, basis, dtype_idx, out):  # type: ignore[no-untyped-def]
    """One pass over S scenarios x L layers x D devices; see kernels.sweep and
    kernels.sweep_expected. The layers' FLOPs and bytes are evaluated from their
    coefficients (lay) once per scenario and serve both results:
      bound (opt.bound): sum over layers of max(FLOPs / peak, bytes / bandwidth), its
        memory-bound share, the FLOPs and the working set (largest inputs + outputs);
      expected (opt.expected): over the kept layers, the sum of `layer_time` on one device
        of a tensor-parallel group, as `ladder` has it, with a GEMM's tiles counted once a
        tile shape (dev.tile_m, dev.tile_n (C,); dev.tile_class (D,)).
    Coefficients are totals over repeats; bytes are per dtype [dtype, layer, term]."""
    n_layers, n_terms = lay.flops.shape
    n_dev = dev.bandwidth.shape[0]
    n_classes = dev.tile_m.shape[0]
    want_bound, want_expected, tensor = opt.bound, opt.expected, opt.tensor
    is_gemm = np.zeros(n_layers, dtype=np.bool_)
    # the transcendental and cache terms only where some device has them (GPUs: none)
    need_t = want_expected and n_dev > 0 and dev.transcendental_rate.max() > 0.0
    need_c = want_expected and n_dev > 0 and dev.cache_bytes.max() > 0.0
    if want_expected and opt.quantize:
        for layer in range(n_layers):
            is_gemm[layer] = lay.shape[0, layer].any()
    any_curve = n_dev > 0 and dev.curve_n.max() > 0
    # reciprocals: the device loops multiply (a division costs several multiplications;
    # the results differ from dividing by at most an ulp)
    inv_peak = 1.0 / dev.peak
    inv_bw = 1.0 / dev.bandwidth
    inv_apeak = 1.0 / dev.ceiling_flops
    # the outputs as locals: numba (0.68) loses writes through a tuple's field in a prange loop
    time, share, flops_out, working_out, expected_out = out
    for i in prange(basis.shape[0]):
        kd = dtype_idx[i]
        tiles = np.empty(n_classes)
        pad = np.empty(n_classes)
        qs = np.empty(n_dev)
        t_bound = np.zeros(n_dev)
        t_mem = np.zeros(n_dev)
        t_exp = np.zeros(n_dev)
        total_f = 0.0
        working = 0.0
        for layer in range(n_layers):
            f = 0.0
            y = 0.0
            for term in range(n_terms):
                x = basis[i, term]
                f += lay.flops[layer, term] * x
                y += lay.bytes[kd, layer, term] * x
            if want_bound:
                io = _poly_t(lay.io, kd, layer, basis, i)
                total_f += f
                if io > working:
                    working = io
                for j in range(n_dev):
                    tc = f * inv_peak[kd, j]
                    tm = y * inv_bw[j]
                    memory_bound = tm > tc
                    t_bound[j] += tm if memory_bound else tc
                    t_mem[j] += tm if memory_bound else 0.0
            if not (want_expected and lay.keep[layer]):
                continue
            nk, te, yi, g, m, n, k = layer_terms(
                lay, layer, kd, basis, i, tensor, need_t, need_c, is_gemm[layer]
            )
            fe = f / tensor
            ye = y / tensor
            if g > 0.0:  # the GEMM's share of each device's ceiling, q
                m, n, k_split, log_s = gemm_dims(m, n, k, opt.split_k_min, any_curve)
                for c in range(n_classes):
                    tiles[c], pad[c] = gemm_tiles(
                        g, m, n, dev.tile_m[c], dev.tile_n[c], opt.min_tile
                    )
                fused = lay.fused[layer]
                for j in range(n_dev):
                    c = dev.tile_class[j]
                    a = dev.attention_share[kd, j] if fused else 1.0
                    qs[j] = gemm_share(tiles[c], pad[c], k_split, log_s, dev, kd, j, a)
            else:
                qs[:] = 1.0
            # need_c and need_t are the same for every device: the compiler takes the
            # cache and transcendental branches out of the device loop when they are off
            cacheable = need_c and lay.cacheable[layer]
            for j in range(n_dev):
                w = dev.ceiling_bandwidth[j]
                if cacheable:
                    w = stream_bandwidth(w, True, yi, dev.cache_bytes[j], dev.cache_bw[j])
                rate = dev.transcendental_rate[j] if need_t else 0.0
                o = dev.overhead_s[j]
                t_exp[j] += layer_time(fe, ye, te, nk, inv_apeak[kd, j], qs[j], w, rate, o)
        if want_bound:
            flops_out[i] = total_f
            working_out[i] = working
            for j in range(n_dev):
                time[i, j] = t_bound[j]
                share[i, j] = t_mem[j] / t_bound[j] if t_bound[j] > 0 else 0.0
        if want_expected:
            for j in range(n_dev):
                expected_out[i, j] = t_exp[j]


@jit(SCALAR)
def utilization(g, m, n, k, units, tile_m, tile_n, split_k_min, min_tile, out):  # type: ignore[no-untyped-def]
    """kernels.gemm_share: q of each GEMM (1 where g is 0) by the tile model."""
    for i in range(out.shape[0]):
        out[i] = 1.0
        if g[i] > 0.0:
            mi, ni, k_split, _ = gemm_dims(m[i], n[i], k[i], split_k_min, False)
            tiles, pad = gemm_tiles(g[i], mi, ni, tile_m, tile_n, min_tile)
            out[i] = gemm_waves(tiles, pad, k_split, units)


@jit(SCALAR)
def curve(x, xs, ys, out):  # type: ignore[no-untyped-def]
    """kernels.curve: curve_at of each x."""
    for i in range(out.shape[0]):
        out[i] = curve_at(x[i], xs, ys, xs.shape[0])
