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


def sweep_naive(flops, bytes_, io_bytes, basis, dtype_index, peak, bandwidth):
    """Per (scenario, device): the layer costs from their coefficients, then the roofline of
    each layer summed; the share of memory-bound time; total FLOPs; the largest working set.
    Plain loops over Python floats."""
    time, share, total_flops, working = [], [], [], []
    for i, x in enumerate(basis):
        k = dtype_index[i]
        f = [sum(c * t for c, t in zip(row, x)) for row in flops]
        y = [sum(c * t for c, t in zip(row, x)) for row in bytes_[k]]
        io = [sum(c * t for c, t in zip(row, x)) for row in io_bytes[k]]
        total_flops.append(sum(f))
        working.append(max([0.0, *io]))
        row_t, row_s = [], []
        for j, w in enumerate(bandwidth):
            p = peak[k][j]
            layer_times = [max(fl / p, by / w) for fl, by in zip(f, y)]
            memory = sum(by / w for fl, by in zip(f, y) if by / w > fl / p)
            t = sum(layer_times)
            row_t.append(t)
            row_s.append(memory / t if t > 0 else 0.0)
        time.append(row_t)
        share.append(row_s)
    return time, share, total_flops, working
