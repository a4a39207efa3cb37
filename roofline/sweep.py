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
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dtypes import BYTES_PER_ELEMENT
from .errors import RooflineError
from .memory import kv_cache_bytes
from .optimizers import STATE_VALUES, check_optimizer
from .scenario import RunConfig
from .workloads import Workload


def basis(b: np.ndarray, s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The terms 1, s, b, b*s, b*s^2, b*c of every scenario (last axis)."""
    b, s, c = (np.asarray(x, dtype=np.float64) for x in (b, s, c))
    return np.stack([np.ones_like(b), s, b, b * s, b * s * s, b * c], axis=-1)


@dataclass(frozen=True)
class CostModel:
    """Per-layer polynomial coefficients for one workload, phase and set of dtypes. Bytes are
    fitted per dtype (T dtypes): the optimizer update's fp32 state and master copy, dropout
    masks and pooling indices do not scale with the bytes of an element."""

    names: np.ndarray
    dtypes: tuple[str, ...]
    flops: np.ndarray  # (L, K) FLOP, all repeats
    bytes: np.ndarray  # (T, L, K) DRAM bytes moved, all repeats
    io_bytes: np.ndarray  # (T, L, K) activation bytes in + out of one instance (working set)
    saved_bytes: np.ndarray  # (T, L, K) activation bytes kept for backward, all repeats
    kv_bytes: np.ndarray  # (T, K) KV cache (decoders)
    params: float
    phase: str
    takes_seq: bool
    default_seq: int


def _table_arrays(w: Workload, run: RunConfig) -> tuple[Any, ...]:
    """Per-layer totals over all repeats (a repeat count may itself depend on the scenario,
    as an LSTM's steps do; max(f/p, y/w) x n = max(n f/p, n y/w), so totals lose nothing),
    except the working set, which is per instance."""
    t = w.layers(run)
    return (
        t.total_flops,
        t.total_bytes,
        t.input_bytes + t.output_bytes,
        t.saved_bytes * t.count,
        np.atleast_1d(kv_cache_bytes(w, run)),
    )


def cost_model(
    w: Workload, phase: str, dtypes: tuple[str, ...] = ("fp16",), optimizer: str | None = "adam"
) -> CostModel:
    """Fit and check the per-layer polynomials of `w` for `phase` (training: with the update
    of `optimizer`) and each of `dtypes`."""
    arch = w.arch
    takes_seq = bool(arch.takes_seq)
    max_seq = getattr(arch, "max_positions", 0) or 1
    default_seq = arch.default_seq or 1
    seqs = [2, 3, 5] if takes_seq else [None]
    contexts = [3, 7] if phase == "decode" else [None]
    if takes_seq and max_seq < 7:
        raise RooflineError(f"{w.key}: too short a context ({max_seq}) to sweep")
    design = [(b, s, c) for b in (1, 2, 3) for s in seqs for c in contexts]
    x = basis(*np.array([(b, s or default_seq, c or s or default_seq) for b, s, c in design]).T)
    scale = np.abs(x).max(axis=0)  # equilibrate the columns: a better-conditioned solve

    def fit(values: list[np.ndarray]) -> np.ndarray:
        y = np.stack(values)  # (points, L)
        coef, *_ = np.linalg.lstsq(x / scale, y, rcond=None)
        coef = coef / scale[:, None]
        # Costs are whole numbers at whole-number scenarios, so the coefficients are
        # multiples of 1/2 (the b*s^2 term can carry a half); snapping them removes the
        # solver's rounding, which extrapolation to large batches would amplify.
        snapped = np.round(coef * 2) / 2
        if np.allclose(x @ snapped, y, rtol=1e-12, atol=1e-9):
            coef = snapped
        return np.asarray(coef.T)

    def tables(dtype: str) -> list[tuple[Any, ...]]:
        return [
            _table_arrays(
                w,
                RunConfig(batch=b, seq=s, dtype=dtype, phase=phase, context=c, optimizer=optimizer),
            )
            for b, s, c in design
        ]

    per_dtype = {dt: tables(dt) for dt in dtypes}
    first = per_dtype[dtypes[0]]
    table = w.layers(
        RunConfig(batch=1, seq=seqs[0], phase=phase, context=contexts[0], optimizer=optimizer)
    )
    model = CostModel(
        names=table.name,
        dtypes=tuple(dtypes),
        flops=fit([r[0] for r in first]),
        bytes=np.stack([fit([r[1] for r in per_dtype[dt]]) for dt in dtypes]),
        io_bytes=np.stack([fit([r[2] for r in per_dtype[dt]]) for dt in dtypes]),
        saved_bytes=np.stack([fit([r[3] for r in per_dtype[dt]]) for dt in dtypes]),
        kv_bytes=np.stack([fit([r[4] for r in per_dtype[dt]])[0] for dt in dtypes]),
        params=table.total_params,
        phase=phase,
        takes_seq=takes_seq,
        default_seq=default_seq,
    )
    # check on a scenario outside the design
    b, s = 7, (min(11, max_seq) if takes_seq else None)
    c = min(13, max_seq) if phase == "decode" else None
    got = basis(np.array([b]), np.array([s or default_seq]), np.array([c or s or default_seq]))[0]
    for k, dt in enumerate(dtypes):
        run = RunConfig(batch=b, seq=s, dtype=dt, phase=phase, context=c, optimizer=optimizer)
        want = _table_arrays(w, run)
        for name, coef, ref in (
            ("FLOPs", model.flops, want[0]),
            ("bytes", model.bytes[k], want[1]),
        ):
            if not np.allclose(coef @ got, ref, rtol=1e-9, atol=1e-6):
                raise RooflineError(
                    f"{w.key}: its layer {name} are not polynomial in batch, sequence and "
                    "context (mixture-of-experts weight reads depend on routing); sweep it "
                    "with roofline run"
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

    if model.dtypes != grid.dtypes:
        raise ValueError(f"cost model dtypes {model.dtypes} != grid dtypes {grid.dtypes}")
    nb_of = np.array([BYTES_PER_ELEMENT[d] for d in grid.dtypes], dtype=np.float64)
    if np.any(grid.peak[grid.dtype_axis] <= 0):
        raise RooflineError("a device in the sweep lacks one of the swept datatypes")
    training = model.phase == "training"
    state = STATE_VALUES[optimizer] * 4.0 * model.params
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
            model.flops,
            model.bytes,
            model.io_bytes,
            model.saved_bytes,
            x,
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
            kv = np.einsum("sk,sk->s", x, model.kv_bytes[dt])
            memory = weights + kv + acts
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
