"""Sweeps: a workload over a grid of scenarios x devices, in the numba engine.

A layer's costs are polynomials in the scenario (batch b, sequence s, context c): in the
basis 1, s, b, b*s, b*s^2, b*c every transformer, CNN, LSTM and embedding layer is exact
(weights are constant, or re-read every LSTM step: s; token work grows with b*s, attention
with b*s^2, decode attention with b*c). `cost_model` recovers each layer's coefficients
from a handful of builder calls (least squares on a small design) and checks them on a
held-out scenario; models whose costs are not polynomial (mixture-of-experts weight
reads) are refused with a clear error.
The kernel then evaluates every (scenario, device) pair without a Python loop, in chunks, so
memory stays bounded when only the per-device summaries are wanted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .dtypes import BYTES_PER_ELEMENT
from .errors import RooflineError
from .memory import OPTIMIZER_STATE, check_optimizer, kv_cache_bytes
from .scenario import RunConfig
from .workloads import Workload


def basis(b: np.ndarray, s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The terms 1, s, b, b*s, b*s^2, b*c of every scenario (last axis)."""
    b, s, c = (np.asarray(x, dtype=np.float64) for x in (b, s, c))
    return np.stack([np.ones_like(b), s, b, b * s, b * s * s, b * c], axis=-1)


@dataclass(frozen=True)
class CostModel:
    """Per-layer polynomial coefficients (L x K) for one workload and phase."""

    names: np.ndarray
    count: np.ndarray  # (L,) float64
    flops: np.ndarray  # FLOP
    elements: np.ndarray  # DRAM elements moved (x bytes per element = bytes)
    io_elements: np.ndarray  # activation elements in + out (inference working set)
    saved_elements: np.ndarray  # activation elements kept for backward
    saved_fixed_bytes: np.ndarray  # bytes kept whatever the dtype (dropout masks, indices)
    params: float
    kv_elements: np.ndarray  # (K,) KV-cache elements (decoders)
    phase: str
    takes_seq: bool
    default_seq: int


def _table_arrays(w: Workload, run: RunConfig) -> tuple[Any, ...]:
    """Per-layer totals over all repeats (a repeat count may itself depend on the scenario,
    as an LSTM's steps do; max(f/p, y/w) x n = max(n f/p, n y/w), so totals lose nothing),
    except the working set, which is per instance."""
    t = w.layers(run)
    nb = BYTES_PER_ELEMENT[run.dtype]
    return (
        t.total_flops,
        t.total_bytes / nb,
        (t.input_bytes + t.output_bytes) / nb,
        t.saved_bytes * t.count,
        kv_cache_bytes(w, run) / nb,
    )


def cost_model(w: Workload, phase: str) -> CostModel:
    """Fit and check the per-layer polynomials of `w` for `phase`."""
    arch = w.arch
    takes_seq = bool(arch.takes_seq)
    max_seq = getattr(arch, "max_positions", 0) or 1
    default_seq = arch.default_seq or 1
    seqs = [2, 3, 5] if takes_seq else [None]
    contexts = [3, 7] if phase == "decode" else [None]
    if takes_seq and max_seq < 7:
        raise RooflineError(f"{w.key}: too short a context ({max_seq}) to sweep")
    points, rows32, rows16 = [], [], []
    for b in (1, 2, 3):
        for s in seqs:
            for c in contexts:
                run = RunConfig(batch=b, seq=s, dtype="fp32", phase=phase, context=c)
                points.append((b, s or default_seq, c or s or default_seq))
                rows32.append(_table_arrays(w, run))
                rows16.append(_table_arrays(w, replace(run, dtype="fp16")))
    x = basis(*np.array(points).T)

    scale = np.abs(x).max(axis=0)  # equilibrate the columns: a better-conditioned solve

    def fit(values: list[np.ndarray]) -> np.ndarray:
        y = np.stack(values)  # (points, L) or (points,)
        coef, *_ = np.linalg.lstsq(x / scale, y, rcond=None)
        coef = coef / scale[:, None] if coef.ndim == 2 else coef / scale
        # Costs are whole numbers at whole-number scenarios, so the coefficients are
        # multiples of 1/2 (the b*s^2 term can carry a half); snapping them removes the
        # solver's rounding, which extrapolation to large batches would amplify.
        snapped = np.round(coef * 2) / 2
        if np.allclose(x @ snapped, y, rtol=1e-12, atol=1e-9):
            coef = snapped
        return np.asarray(coef.T)

    flops = fit([r[0] for r in rows32])
    elements = fit([r[1] for r in rows32])
    io = fit([r[2] for r in rows32])
    saved32 = fit([r[3] for r in rows32])
    saved16 = fit([r[3] for r in rows16])
    kv = fit([np.atleast_1d(r[4]) for r in rows32])[0]
    table = w.layers(RunConfig(batch=1, seq=seqs[0], phase=phase, context=contexts[0]))
    model = CostModel(
        names=table.name,
        count=np.ones(len(table)),  # the coefficients are totals over the repeats
        flops=flops,
        elements=elements,
        io_elements=io,
        saved_elements=(saved32 - saved16) / 2,
        saved_fixed_bytes=2 * saved16 - saved32,
        params=table.total_params,
        kv_elements=kv,
        phase=phase,
        takes_seq=takes_seq,
        default_seq=default_seq,
    )
    # check on a scenario outside the design
    b, s = 7, (min(11, max_seq) if takes_seq else None)
    c = min(13, max_seq) if phase == "decode" else None
    run = RunConfig(batch=b, seq=s, dtype="fp32", phase=phase, context=c)
    want = _table_arrays(w, run)
    got = basis(np.array([b]), np.array([s or default_seq]), np.array([c or s or default_seq]))[0]
    for name, coef, ref in (("FLOPs", flops, want[0]), ("bytes", elements, want[1])):
        if not np.allclose(coef @ got, ref, rtol=1e-9, atol=1e-6):
            raise RooflineError(
                f"{w.key}: its layer {name} are not polynomial in batch, sequence and context "
                "(mixture-of-experts weight reads depend on routing); sweep it with roofline run"
            )
    return model


@dataclass(frozen=True)
class Grid:
    """The Cartesian product of sweep axes x D devices. Scenario arrays are made chunk by
    chunk from the axes (`chunk`), so a sweep reduced to summaries holds no per-scenario
    array larger than a chunk."""

    batches: np.ndarray  # axes, each (n_i,) int
    seqs: np.ndarray
    contexts: np.ndarray  # -1: the scenario's seq
    dtype_axis: np.ndarray  # indices into dtypes
    replica_axis: np.ndarray
    dtypes: tuple[str, ...]
    peak: np.ndarray  # (n_dtypes, D) FLOP/s (0 where the device lacks the dtype)
    bandwidth: np.ndarray  # (D,) byte/s
    capacity: np.ndarray  # (D,) byte
    link: np.ndarray  # (D,) byte/s per direction (0: none)

    @property
    def shape(self) -> tuple[int, ...]:
        axes = (self.batches, self.seqs, self.contexts, self.dtype_axis, self.replica_axis)
        return tuple(len(a) for a in axes)

    @property
    def scenarios(self) -> int:
        return int(np.prod(self.shape))

    def chunk(self, start: int, end: int) -> tuple[np.ndarray, ...]:
        """batch, seq, context, dtype index, replicas of scenarios start..end-1."""
        ib, isq, ic, idt, ir = np.unravel_index(np.arange(start, end), self.shape)
        seq = self.seqs[isq]
        ctx = self.contexts[ic]
        return (
            self.batches[ib],
            seq,
            np.where(ctx < 0, seq, ctx),
            self.dtype_axis[idt],
            self.replica_axis[ir],
        )

    def _all(self, i: int) -> np.ndarray:
        return self.chunk(0, self.scenarios)[i]

    # Whole-grid columns: these materialise every scenario, for small sweeps and reports.
    batch = property(lambda self: self._all(0))
    seq = property(lambda self: self._all(1))
    context = property(lambda self: self._all(2))
    dtype = property(lambda self: self._all(3))
    replicas = property(lambda self: self._all(4))


@dataclass(frozen=True)
class SweepOutput:
    time_s: np.ndarray  # (S, D) step time, with gradient all-reduce for training
    memory_bound_share: np.ndarray  # (S, D)
    memory_bytes: np.ndarray  # (S,) per device
    flops: np.ndarray  # (S,) per device per step


def evaluate_grid(
    model: CostModel,
    grid: Grid,
    optimizer: str = "adam",
    *,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 1 << 15,
    keep: bool = True,
    reduce: Callable[[int, SweepOutput], None] | None = None,
) -> SweepOutput | None:
    """Step time, memory-bound share and memory of every (scenario, device) pair.

    keep=False with `reduce`: each chunk goes to reduce(start, chunk_output) and nothing
    grows with the grid."""
    check_optimizer(optimizer)
    from ._numba_kernels import sweep

    nb_of = np.array([BYTES_PER_ELEMENT[d] for d in grid.dtypes], dtype=np.float64)
    if np.any(grid.peak[grid.dtype_axis] <= 0):
        raise RooflineError("a device in the sweep lacks one of the swept datatypes")
    training = model.phase == "training"
    state = OPTIMIZER_STATE[optimizer] * 4.0 * model.params
    outs = []
    n = grid.scenarios
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        batch, seq, ctx, dt, reps = grid.chunk(start, end)
        nb = nb_of[dt]
        x = basis(batch // reps, seq, ctx)
        s, d = end - start, len(grid.bandwidth)
        time = np.empty((s, d))
        share = np.empty((s, d))
        flops = np.empty(s)
        acts = np.empty(s)
        sweep(
            model.count,
            model.flops,
            model.elements,
            model.io_elements,
            model.saved_elements,
            model.saved_fixed_bytes,
            x,
            nb,
            dt,
            grid.peak,
            grid.bandwidth,
            training,
            time,
            share,
            flops,
            acts,
        )
        weights = model.params * nb
        if training:
            master = np.where(nb < 4, 4.0 * model.params, 0.0)
            memory = 2 * weights + state + master + acts
            reps = reps.astype(np.float64)
            allreduce = 2 * (reps - 1) / reps * weights  # ring all-reduce of the gradients
            with np.errstate(divide="ignore"):
                comm = allreduce[:, None] / np.where(grid.link > 0, grid.link, np.nan)[None, :]
            time += np.where(reps[:, None] > 1, np.nan_to_num(comm, nan=np.inf), 0.0)
        else:
            memory = weights + x @ model.kv_elements * nb + acts
        out = SweepOutput(time, share, memory, flops)
        if reduce is not None:
            reduce(start, out)
        if keep:
            outs.append(out)
        if progress is not None:
            progress(end, n)
    if not keep:
        return None
    return SweepOutput(
        *(
            np.concatenate([getattr(o, f) for o in outs])
            for f in ("time_s", "memory_bound_share", "memory_bytes", "flops")
        )
    )
