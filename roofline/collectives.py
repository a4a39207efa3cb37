"""Collectives on a ring of n devices and transfers on a link: one formula per fact.

Each function takes floats or numpy arrays (one value per scenario) alike.

  all-reduce       each device sends 2 (n-1)/n of the data (reduce-scatter + all-gather)
  all-gather       each device sends (n-1)/n of the data
  reduce-scatter   each device sends (n-1)/n of the data
  transfer time    bytes / per-direction link bandwidth (Device.link_bytes_per_s); no time
                   without traffic, infinite time without a link
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any  # float or numpy array


def allreduce_bytes(n: Array, size: Array) -> Array:
    return 2.0 * (n - 1) / n * size


def allgather_bytes(n: Array, size: Array) -> Array:
    return (n - 1) / n * size


reduce_scatter_bytes = allgather_bytes


def transfer_time_s(nbytes: Array, link_bytes_per_s: Array) -> Array:
    """Seconds to send `nbytes` over a link of `link_bytes_per_s` in one direction: 0 when
    nothing is sent, infinity when something must be sent and there is no link."""
    nbytes = np.asarray(nbytes, dtype=np.float64)
    link = np.asarray(link_bytes_per_s, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(link > 0, nbytes / np.where(link > 0, link, 1.0), np.inf)
    t = np.where(nbytes > 0, t, 0.0)
    return float(t) if t.ndim == 0 else t
