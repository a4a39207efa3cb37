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
