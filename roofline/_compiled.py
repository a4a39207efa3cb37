"""numba's versions of the kernels in `_numba_kernels`: each function marked there with
`@jit(flags)` compiled with those flags. Private: `roofline.kernels` imports this module only
when a kernel must run compiled (a sweep's grid, a large roofline), so a single run never
loads numba.

Each compiled function is a copy of the written one whose globals are this compiled set: a
kernel calling `layer_time` calls the compiled `layer_time`, and `prange` is numba's
parallel range. The copies keep their source file and line, so numba's on-disk cache (and
its check that the source has not changed) works as for decorated functions; with
NUMBA_DISABLE_JIT=1 they run as plain Python, which is what the CI's coverage pass wants.
"""

from __future__ import annotations

import types
from typing import Any

from numba import njit, prange

from . import _numba_kernels as source


def _compile() -> dict[str, Any]:
    namespace = dict(vars(source), prange=prange)
    for name, flags in source.FLAGS.items():
        fn = getattr(source, name)
        copy = types.FunctionType(fn.__code__, namespace, name, fn.__defaults__)
        copy.__qualname__ = fn.__qualname__
        copy.__doc__ = fn.__doc__
        copy.__module__ = fn.__module__
        namespace[name] = njit(**flags)(copy)  # globals are read when first compiled
    return {name: namespace[name] for name in source.FLAGS}


KERNELS = _compile()
globals().update(KERNELS)  # roofline, grid, ladder, utilization, curve and the helpers
