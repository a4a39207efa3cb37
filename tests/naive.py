"""Slow, obviously correct references: plain Python loops over scalars, no numpy maths."""

from __future__ import annotations


def roofline_naive(flops, bytes_, peak, bandwidth):
    """Per (layer, device): time, attainable FLOP/s, compute-bound, from the definitions."""
    time, attainable, compute = [], [], []
    for f, b in zip(flops, bytes_):
        row_t, row_a, row_c = [], [], []
        for p, w in zip(peak, bandwidth):
            row_t.append(max(f / p, b / w))
            row_a.append(min(p, (f / b) * w))
            row_c.append((f / b) >= (p / w))
        time.append(row_t)
        attainable.append(row_a)
        compute.append(row_c)
    return time, attainable, compute
