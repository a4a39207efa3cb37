"""Sweeps: a workload over a grid of scenarios x devices, in the numba engine.

The cost model (costmodel.py) gives each layer's costs as polynomials in the scenario; the
kernels (`kernels.sweep`, `kernels.sweep_expected`) evaluate every (scenario, device) pair
without a Python loop, in chunks, so memory stays bounded when only the per-device
summaries are wanted. Memory per device, communication and the expected step time then come
from the same formulas as one run's (`RunConfig.micro_batch_of`, `memory.in_flight`,
`memory.footprint`, `parallel.traffic`, `step.communication_parts`, `step.assemble`), given
arrays; the kernels' expected time runs the compiled helpers the per-run path runs
(efficiency.py). Models whose costs are not polynomial are swept scenario by scenario
through their own tables, up to costmodel.MAX_EXACT_SCENARIOS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .collectives import transfer_time_s
from .costmodel import MAX_EXACT_SCENARIOS, CostModel, Pass, basis
from .dtypes import BYTES_PER_ELEMENT
from .efficiency import MIN_TILE, SPLIT_K_MIN, attention_factor
from .errors import RooflineError
from .hardware import Device
from .kernels import Expectation, SweepArrays, sweep_buffers, sweep_expected
from .kernels import sweep as sweep_kernel
from .memory import footprint, in_flight
from .parallel import Communication, traffic
from .step import Links, assemble, communication_parts, step_time


@dataclass(frozen=True)
class DeviceCeilings:
    """What each of D devices reaches (hardware.ceilings), as arrays for the kernel, and
    the links its collectives run on (step.Links of arrays)."""

    flops_per_s: np.ndarray  # (n_dtypes, D) achievable GEMM FLOP/s (0: dtype missing)
    bandwidth_bytes_per_s: np.ndarray  # (D,)
    units: np.ndarray  # (D,)
    tile_m: np.ndarray
    tile_n: np.ndarray
    overhead_s: np.ndarray
    links: Links
    transcendentals_per_s: np.ndarray | None = None  # (D,) 0: not modelled
    cache_bytes: np.ndarray | None = None  # (D,) 0: no cache tier
    cache_bandwidth_bytes_per_s: np.ndarray | None = None  # (D,)
    curve_x: np.ndarray | None = None  # (D, C) log sizes of measured GEMM curves
    curve_y: np.ndarray | None = None  # (n_dtypes, D, C) their FLOP/s
    curve_n: np.ndarray | None = None  # (D,) points (0: none)
    # (n_dtypes, D) measured fused attention FLOP/s / GEMM ceiling (0: not measured)
    attention_share: np.ndarray | None = None
    # (n_dtypes, D) the attention rate is a measured fused kernel's (Ceilings.
    # attention_kernel; None: all are)
    attention_kernel: np.ndarray | None = None


@dataclass(frozen=True)
class Grid:
    """The Cartesian product of sweep axes x D devices. Scenario arrays are made chunk by
    chunk from the axes (`chunk`), so a sweep reduced to summaries holds no per-scenario
    array larger than a chunk; `columns` makes the whole grid's once."""

    batches: np.ndarray  # axes, each (n_i,) int
    seqs: np.ndarray
    contexts: np.ndarray  # -1: the scenario's seq
    dtype_axis: np.ndarray  # indices into dtypes
    replica_axis: np.ndarray  # data-parallel replicas
    dtypes: tuple[str, ...]
    peak: np.ndarray  # (n_dtypes, D) FLOP/s (0 where the device lacks the dtype)
    bandwidth: np.ndarray  # (D,) byte/s
    capacity: np.ndarray  # (D,) byte
    link: np.ndarray  # (D,) byte/s per direction (0: none)
    ceilings: DeviceCeilings | None = None  # for the expected time (None: bound only)
    devices: tuple[Device, ...] = ()  # the devices themselves (exact sweeps use them)

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

    @cached_property
    def columns(self) -> tuple[np.ndarray, ...]:
        """batch, seq, context, dtype index, replicas of every scenario, made once."""
        return self.chunk(0, self.scenarios)

    batch = property(lambda self: self.columns[0])
    seq = property(lambda self: self.columns[1])
    context = property(lambda self: self.columns[2])
    dtype = property(lambda self: self.columns[3])
    replicas = property(lambda self: self.columns[4])


@dataclass(frozen=True)
class SweepOutput:
    time_s: np.ndarray  # (S, D) step time per device, with the layout's communication
    memory_bound_share: np.ndarray  # (S, D) of the compute part
    memory_bytes: np.ndarray  # (S,) per device
    flops: np.ndarray  # (S,) per device per step
    expected_time_s: np.ndarray  # (S, D) the expected step time (step.py's model)
    # (S, D) the kernels' roofline bound per device, without communication (step.py's
    # StepTime.compute_s): the activity of the energy model is this / the expected time
    compute_time_s: np.ndarray


def evaluate_grid(
    model: CostModel,
    grid: Grid,
    *,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 1 << 15,
    keep: bool = True,
    reduce: Callable[[int, SweepOutput], None] | None = None,
) -> SweepOutput | None:
    """Step time, memory-bound share and memory of every (scenario, device) pair: the
    replica's roofline split over tensor x pipeline devices, plus the layout's
    communication on each device's link; memory per device under the layout.

    keep=False with `reduce`: each chunk goes to reduce(start, chunk_output) and nothing
    grows with the grid. The kernels write each chunk into one set of buffers made for
    the first (`kernels.sweep_buffers`) and reused by the next; what reaches `reduce` (or
    is kept) is the chunk's own, fresh, as a reducer may keep it."""
    if model.dtypes != grid.dtypes:
        raise ValueError(f"cost model dtypes {model.dtypes} != grid dtypes {grid.dtypes}")
    if not model.polynomial:
        return _evaluate_exact(model, grid, progress=progress, keep=keep, reduce=reduce)
    nb_of = np.array([BYTES_PER_ELEMENT[d] for d in grid.dtypes], dtype=np.float64)
    if np.any(grid.peak[grid.dtype_axis] <= 0):
        raise RooflineError("a device in the sweep lacks one of the swept datatypes")
    run = model.run
    split = run.layout.model_split
    uses_kv = not run.training and bool(np.any(model.kv_bytes))
    outs = []
    n = grid.scenarios
    # the kernel's outputs that stay in this loop (the expected stage time, the FLOPs, the
    # working set, a recomputed pass), one set for every chunk: fresh ones cost page faults
    buffers = sweep_buffers(min(n, chunk), len(grid.bandwidth))
    recomputed = np.empty_like(buffers.time_s) if model.recompute is not None else None
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        rows = end - start
        batch, seq, ctx, dt, reps = grid.chunk(start, end)
        nb = nb_of[dt]
        local = batch // reps
        x = basis(local, seq, ctx)
        # the micro-batches of a step (RunConfig's rule, memory's and step's): one pass
        # gives the bound and, when a micro-batch is the whole replica, the stage's
        # expected time as well
        micro = run.micro_batch_of(local)
        m = local // micro
        whole = bool(np.all(micro == local))
        xm = x if whole else basis(micro, seq, ctx)
        e = _expectation(model, model.step, grid) if whole else None
        # time and memory share reach `reduce` as they are (split 1): fresh arrays
        into = SweepArrays(
            np.empty((rows, len(grid.bandwidth))),
            np.empty((rows, len(grid.bandwidth))),
            buffers.flops[:rows],
            buffers.working_bytes[:rows],
            None if buffers.expected_s is None else buffers.expected_s[:rows],
        )
        k = sweep_kernel(
            model.flops, model.bytes, model.io_bytes, x, dt, grid.peak, grid.bandwidth, e, into
        )
        if run.training:  # memory.held_activations: one micro-batch's x those in flight
            acts = np.einsum("sk,sk->s", xm, model.activation_bytes[dt]) * in_flight(run, m)
        else:
            acts = k.working_bytes
        kv = np.einsum("sk,sk->s", x, model.kv_bytes[dt]) if uses_kv else 0.0
        memory = footprint(
            run, model.params, acts, kv, bytes_per_element=nb, data=reps, adapters=model.adapters
        ).total
        # the layout's collectives (S, 1), for the bound's bytes and the expected time's
        # seconds (S, D); one micro-batch a step (most sweeps): a scalar, so that no part
        # is an (S, D) product
        mb = 1.0 if np.all(m == 1) else m[:, None].astype(np.float64)
        boundary = 0.0
        if split > 1:
            boundary = np.einsum("sk,sk->s", xm, model.boundary_bytes[dt])[:, None]
        comm = traffic(
            run,
            model.params,
            boundary,
            model.blocks,
            model.allreduces_per_block,
            micro_batches=mb,
            bytes_per_element=nb[:, None],
            data=reps[:, None].astype(np.float64),
            adapters=model.adapters,
        )
        time = compute = k.time_s / split if split > 1 else k.time_s
        total = comm.total_bytes
        if np.any(total):  # most sweeps send nothing: skip an (S, D) pass
            time = time + transfer_time_s(total, grid.link[None, :])
        spare = None if recomputed is None else recomputed[:rows]
        expected = _expected_grid(model, grid, xm, dt, mb, comm, k.expected_s, spare)
        out = SweepOutput(time, k.memory_share, memory, k.flops / split, expected, compute)
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
            for f in (
                "time_s",
                "memory_bound_share",
                "memory_bytes",
                "flops",
                "expected_time_s",
                "compute_time_s",
            )
        )
    )


def _expected_grid(
    model: CostModel,
    grid: Grid,
    xm: np.ndarray,
    dt: np.ndarray,
    mb: float | np.ndarray,
    comm: Communication,
    whole_stage: np.ndarray | None,
    spare: np.ndarray | None = None,
) -> np.ndarray:
    """(S, D) expected step times: step.py's model (micro-batch stage time from the
    expected-time kernel at the micro-batch's basis terms xm, recomputation, bubble,
    collectives), given arrays. `mb`: micro-batches a step (1.0: one for every scenario);
    `whole_stage`: the stage time already computed for the whole replica, if it was;
    `spare`: an (S, D) buffer the recomputed pass's kernel may write into."""
    run, c, step = model.run, grid.ceilings, model.step
    if c is None or step is None:
        return np.full((len(xm), len(grid.bandwidth)), np.nan)
    pp = run.layout.pipeline

    def stage(p: Pass, into: np.ndarray | None = None) -> np.ndarray:
        exp = _expectation(model, p, grid)
        assert exp is not None  # ceilings and the pass exist here
        return np.asarray(sweep_expected(p.flops, p.bytes, xm, dt, exp, into) / pp)

    e = stage(step) if whole_stage is None else whole_stage / pp if pp > 1 else whole_stage
    r = stage(model.recompute, spare) if model.recompute is not None else 0.0
    comm_s = communication_parts(comm, c.links, run.ideal)
    parts = list(assemble(run, e, r, mb, comm_s).values())
    arrays = [p for p in parts if np.ndim(p)]  # parts that cannot occur are scalar zeros
    total = np.array(arrays[0], dtype=np.float64)  # a copy: `e` may be the kernel's output
    for part in arrays[1:]:
        total += part
    rest = sum(float(p) for p in parts if not np.ndim(p))
    if rest:
        total += rest
    return total


def _expectation(model: CostModel, p: Pass | None, grid: Grid) -> Expectation | None:
    """The kernel's inputs for the expected time of pass `p` on the grid's devices."""
    c = grid.ceilings
    if c is None or p is None:
        return None
    run = model.run
    ideal = run.ideal  # the datasheet figures, no quantization, no launch overhead
    return Expectation(
        shape=p.shape,
        kernel_counts=p.kernels,
        keep=p.keep,
        ceiling_flops=grid.peak if ideal else c.flops_per_s,
        ceiling_bandwidth=grid.bandwidth if ideal else c.bandwidth_bytes_per_s,
        units=c.units,
        tile_m=c.tile_m,
        tile_n=c.tile_n,
        overhead_s=0.0 * c.overhead_s if ideal else c.overhead_s,
        tensor=run.layout.tensor,
        split_k_min=SPLIT_K_MIN,
        min_tile=MIN_TILE,
        quantize=not ideal,
        transcendentals=p.transcendentals,
        instance_bytes=p.instance_bytes,
        cacheable=p.cacheable,
        transcendental_rate=None if ideal else c.transcendentals_per_s,
        cache_bytes=None if ideal else c.cache_bytes,
        cache_bandwidth=None if ideal else c.cache_bandwidth_bytes_per_s,
        curve_x=c.curve_x,
        curve_y=c.curve_y,
        curve_n=None if ideal else c.curve_n,
        attention_layers=None if ideal else p.fused,
        attention_share=(
            None
            if ideal or c.attention_share is None
            else attention_factor(
                c.attention_share,
                run.training and p is model.step,
                True if c.attention_kernel is None else c.attention_kernel,
            )
        ),
    )


def _evaluate_exact(
    model: CostModel,
    grid: Grid,
    *,
    progress: Callable[[int, int], None] | None,
    keep: bool,
    reduce: Callable[[int, SweepOutput], None] | None,
) -> SweepOutput | None:
    """evaluate_grid for a non-polynomial model: each scenario's own layer table through the
    engine, and the per-run footprint and traffic (memory_breakdown, communication)."""
    from .kernels import evaluate
    from .memory import memory_breakdown
    from .parallel import communication

    w, base = model.workload, model.run
    assert w is not None  # only exact models come here
    n, d = grid.scenarios, len(grid.bandwidth)
    if n > MAX_EXACT_SCENARIOS:
        raise RooflineError(
            f"{w.key}: its costs are not polynomial, so each scenario is built on its own; "
            f"{n:,} scenarios are more than {MAX_EXACT_SCENARIOS:,}: narrow the sweep"
        )
    batch, seq, ctx, dt, reps = grid.columns
    time, share, compute = np.empty((n, d)), np.empty((n, d)), np.empty((n, d))
    expected = np.full((n, d), np.nan)
    memory, flops = np.empty(n), np.empty(n)
    split = base.layout.model_split
    for i in range(n):
        run = base.scenario(
            int(batch[i]),
            int(seq[i]) if model.takes_seq else None,
            int(ctx[i]) if base.phase == "decode" else None,
            grid.dtypes[dt[i]],
            data=int(reps[i]),
        )
        table = w.layers(run.replica())
        r = evaluate(table.total_flops, table.total_bytes, grid.peak[dt[i]], grid.bandwidth)
        step = r.time_s.sum(axis=0)
        mem_bound = np.where(r.compute_bound, 0.0, r.time_s).sum(axis=0)
        share[i] = np.where(step > 0, mem_bound / np.where(step > 0, step, 1.0), 0.0)
        comm = communication(w, run).total_bytes
        compute[i] = step / split
        time[i] = compute[i] + transfer_time_s(comm, grid.link)
        memory[i] = memory_breakdown(w, run).total
        flops[i] = table.total_flops.sum() / split
        for j, device in enumerate(grid.devices):
            step = step_time(w, run, device)
            expected[i, j] = np.nan if step.expected_s is None else step.expected_s
    out = SweepOutput(time, share, memory, flops, expected, compute)
    if reduce is not None:
        reduce(0, out)
    if progress is not None:
        progress(n, n)
    return out if keep else None
