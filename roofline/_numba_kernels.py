"""numba-compiled kernels. Private: call them through `roofline.kernels`, which checks
shapes and dtypes first. Imported only when a problem is large enough to need them.
"""

from __future__ import annotations

from typing import Any

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
