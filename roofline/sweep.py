"""Sweeps: a workload over a grid of scenarios x devices, in the numba engine.

A layer's costs are polynomials in the scenario (batch b, sequence s, context c): in the
basis 1, s, b, b*s, b*s^2, b*c every transformer, CNN, LSTM and embedding layer is exact
(weights are constant, or re-read every LSTM step: s; token work grows with b*s, attention
with b*s^2, decode attention with b*c). `cost_model` recovers each layer's coefficients
from a handful of builder calls (least squares on a small design) and checks them on a
held-out scenario. Models whose costs are not polynomial (mixture-of-experts weight reads
depend on how many experts the tokens reach) are swept scenario by scenario instead, through
the per-run layer tables (`exact_model`), up to MAX_EXACT_SCENARIOS. The activation memory,
KV cache and block-boundary activation of a replica are fitted the same way, from the
functions the per-run path uses.

The kernel (`kernels.sweep`) evaluates every (scenario, device) pair without a Python loop,
in chunks, so memory stays bounded when only the per-device summaries are wanted. Memory per
device and communication then come from the same formulas as one run's (`memory.footprint`,
`parallel.traffic`), given arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from .collectives import transfer_time_s
from .dtypes import BYTES_PER_ELEMENT
from .efficiency import SPLIT_K_MIN, kernels
from .errors import RooflineError
from .hardware import Device
from .kernels import sweep as sweep_kernel
from .kernels import sweep_expected
from .memory import activation_bytes, footprint, kv_cache_bytes
from .parallel import traffic
from .scenario import RunConfig
from .step import Links, assemble, communication_parts, step_time
from .workloads import Workload


def basis(b: np.ndarray, s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The terms 1, s, b, b*s, b*s^2, b*c of every scenario (last axis)."""
    b, s, c = (np.asarray(x, dtype=np.float64) for x in (b, s, c))
    return np.stack([np.ones_like(b), s, b, b * s, b * s * s, b * c], axis=-1)


@dataclass(frozen=True)
class Pass:
    """What the expected-time kernel needs of a set of layers, as polynomial coefficients:
    FLOPs (L, K), bytes (T, L, K), GEMM shape (4, L, K: groups, m, n, k per instance),
    kernel launches (L, K), and which layers count (keep, (L,))."""

    flops: np.ndarray
    bytes: np.ndarray
    shape: np.ndarray
    kernels: np.ndarray
    keep: np.ndarray


@dataclass(frozen=True)
class CostModel:
    """Polynomial coefficients (K terms of `basis`) for one workload, one way of running it
    (`run`: phase, optimizer, recompute, layout; its batch, seq, context and dtype are the
    sweep's) and a set of dtypes. Bytes are fitted per dtype (T dtypes): the optimizer
    update's fp32 state and master copy, dropout masks and pooling indices do not scale
    with the bytes of an element. Everything is for one data-parallel replica."""

    names: np.ndarray
    dtypes: tuple[str, ...]
    flops: np.ndarray  # (L, K) FLOP, all repeats
    bytes: np.ndarray  # (T, L, K) DRAM bytes moved, all repeats
    io_bytes: np.ndarray  # (T, L, K) activation bytes in + out of one instance (working set)
    activation_bytes: np.ndarray  # (T, K) memory.activation_bytes
    kv_bytes: np.ndarray  # (T, K) KV cache (decoders)
    boundary_bytes: np.ndarray  # (T, K) activation crossing a block boundary
    params: float
    run: RunConfig
    takes_seq: bool
    default_seq: int
    blocks: int
    allreduces_per_block: int
    workload: Workload | None = None  # set when the costs are not polynomial (exact sweep)
    step: Pass | None = None  # the step's layers, for the expected time
    recompute: Pass | None = None  # the forward layers recomputation runs again

    @property
    def phase(self) -> str:
        return self.run.phase

    @property
    def polynomial(self) -> bool:
        return self.workload is None


class NotPolynomial(RooflineError):
    """A workload whose layer costs are not polynomial in the scenario."""


# scenarios a non-polynomial model is swept over, one layer table each (~1 ms apiece)
MAX_EXACT_SCENARIOS = 20_000


def exact_model(w: Workload, run: RunConfig, dtypes: tuple[str, ...]) -> CostModel:
    """A cost model that evaluates every scenario through its own layer table."""
    w.check_layout(run.layout)
    arch = w.arch
    none = np.zeros((len(dtypes), 0))
    return CostModel(
        names=np.array([], dtype=str),
        dtypes=tuple(dtypes),
        flops=np.zeros((0, 0)),
        bytes=np.zeros((len(dtypes), 0, 0)),
        io_bytes=np.zeros((len(dtypes), 0, 0)),
        activation_bytes=none,
        kv_bytes=none,
        boundary_bytes=none,
        params=w.params,
        run=run,
        takes_seq=bool(arch.takes_seq),
        default_seq=arch.default_seq or 1,
        blocks=arch.blocks,
        allreduces_per_block=arch.tensor_split.allreduces_per_block if arch.tensor_split else 0,
        workload=w,
    )


def _table_arrays(w: Workload, run: RunConfig) -> tuple[Any, ...]:
    """Per-layer totals over all repeats (a repeat count may itself depend on the scenario,
    as an LSTM's steps do; max(f/p, y/w) x n = max(n f/p, n y/w), so totals lose nothing),
    except the working set, which is per instance; then the replica's memory terms."""
    t = w.layers(run)
    nb = BYTES_PER_ELEMENT[run.dtype]
    return (
        t.total_flops,
        t.total_bytes,
        t.input_bytes + t.output_bytes,
        np.atleast_1d(activation_bytes(w, run) if run.training else 0.0),
        np.atleast_1d(kv_cache_bytes(w, run)),
        np.atleast_1d(w.arch.boundary_elements(run) * nb),
    )


def _shape_arrays(w: Workload, run: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """(4, L) GEMM shapes per instance and (L,) kernel launches of one scenario."""
    t = w.layers(run)
    shape = np.stack([t.gemm_groups, t.gemm_m, t.gemm_n, t.gemm_k])
    return shape, kernels(t, run.training)


def cost_model(w: Workload, run: RunConfig, dtypes: tuple[str, ...] = ("fp16",)) -> CostModel:
    """Fit and check the polynomials of `w` run as `run` says (phase; in training the
    optimizer's update and the recompute setting), for each of `dtypes`."""
    arch = w.arch
    phase = run.phase
    w.check_layout(run.layout)
    takes_seq = bool(arch.takes_seq)
    max_seq = arch.max_seq or 1
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

    base = run.replica()

    def scenario(b: int, s: int | None, c: int | None, dtype: str) -> RunConfig:
        return replace(base, batch=b, seq=s, context=c, dtype=dtype)

    def tables(dtype: str) -> list[tuple[Any, ...]]:
        return [_table_arrays(w, scenario(b, s, c, dtype)) for b, s, c in design]

    per_dtype = {dt: tables(dt) for dt in dtypes}
    first = per_dtype[dtypes[0]]
    table = w.layers(scenario(1, seqs[0], contexts[0], dtypes[0]))

    def per_dtype_fit(i: int) -> np.ndarray:
        return np.stack([fit([r[i] for r in per_dtype[dt]]) for dt in dtypes])

    def shapes(forward: bool) -> tuple[np.ndarray, np.ndarray]:
        runs = [scenario(b, s, c, dtypes[0]) for b, s, c in design]
        if forward:
            runs = [replace(r, phase="inference") for r in runs]
        arrays = [_shape_arrays(w, r) for r in runs]
        shape = np.stack([fit([a[0][i] for a in arrays]) for i in range(4)])
        return shape, fit([a[1] for a in arrays])

    step_shape, step_kernels = shapes(forward=False)
    step = Pass(np.empty(0), np.empty(0), step_shape, step_kernels, np.ones(len(table), dtype=bool))
    recompute = None
    if run.training and run.recompute != "none":
        fwd_shape, fwd_kernels = shapes(forward=True)
        fwd = [
            [w.layers(replace(scenario(b, s, c, dt), phase="inference")) for b, s, c in design]
            for dt in dtypes
        ]
        first_fwd = fwd[0][0]
        keep = first_fwd.count > 1 if run.recompute == "full" else w.arch.attention_core(first_fwd)
        recompute = Pass(
            fit([t.total_flops for t in fwd[0]]),
            np.stack([fit([t.total_bytes for t in per]) for per in fwd]),
            fwd_shape,
            fwd_kernels,
            keep,
        )
    split = arch.tensor_split
    model = CostModel(
        names=table.name,
        dtypes=tuple(dtypes),
        flops=fit([r[0] for r in first]),
        bytes=per_dtype_fit(1),
        io_bytes=per_dtype_fit(2),
        activation_bytes=per_dtype_fit(3)[:, 0],
        kv_bytes=per_dtype_fit(4)[:, 0],
        boundary_bytes=per_dtype_fit(5)[:, 0],
        params=w.params,
        run=run,
        takes_seq=takes_seq,
        default_seq=default_seq,
        blocks=arch.blocks,
        allreduces_per_block=split.allreduces_per_block if split else 0,
        recompute=recompute,
    )
    model = replace(model, step=replace(step, flops=model.flops, bytes=model.bytes))
    # check on a scenario outside the design
    b, s = 7, (min(11, max_seq) if takes_seq else None)
    c = min(13, max_seq) if phase == "decode" else None
    got = basis(np.array([b]), np.array([s or default_seq]), np.array([c or s or default_seq]))[0]
    for k, dt in enumerate(dtypes):
        want = _table_arrays(w, scenario(b, s, c, dt))
        for name, coef, ref in (
            ("FLOPs", model.flops, want[0]),
            ("bytes", model.bytes[k], want[1]),
            # (the working set of inference is a max over layers: the kernel takes it per layer)
            ("activation bytes", model.activation_bytes[k][None, :], want[3] * run.training),
        ):
            if not np.allclose(coef @ got, ref, rtol=1e-9, atol=1e-6):
                raise NotPolynomial(
                    f"{w.key}: its layer {name} are not polynomial in batch, sequence and "
                    "context (mixture-of-experts weight reads depend on routing)"
                )
    return model


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
    grows with the grid."""
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
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        batch, seq, ctx, dt, reps = grid.chunk(start, end)
        nb = nb_of[dt]
        x = basis(batch // reps, seq, ctx)
        k = sweep_kernel(model.flops, model.bytes, model.io_bytes, x, dt, grid.peak, grid.bandwidth)
        if run.training:  # one micro-batch's activations x those in flight (memory.py)
            local = batch // reps
            micro = np.full_like(local, run.micro_batch) if run.micro_batch else local
            if run.micro_batch is None and run.layout.pipeline > 1:
                micro = np.ones_like(local)
            held = np.minimum(run.layout.pipeline, local // micro)
            xm = basis(micro, seq, ctx)
            acts = np.einsum("sk,sk->s", xm, model.activation_bytes[dt]) * held
        else:
            acts = k.working_bytes
        kv = np.einsum("sk,sk->s", x, model.kv_bytes[dt]) if uses_kv else 0.0
        boundary = np.einsum("sk,sk->s", x, model.boundary_bytes[dt]) if split > 1 else 0.0
        memory = footprint(run, model.params, acts, kv, bytes_per_element=nb, data=reps).total
        comm = traffic(
            run,
            model.params,
            boundary,
            model.blocks,
            model.allreduces_per_block,
            bytes_per_element=nb,
            data=reps.astype(np.float64),
        ).total_bytes
        time = k.time_s / split if split > 1 else k.time_s
        if np.any(comm):  # most sweeps send nothing: skip an (S, D) pass
            time = time + transfer_time_s(comm[:, None], grid.link[None, :])
        expected = _expected_grid(model, grid, batch // reps, seq, ctx, dt, nb, reps)
        out = SweepOutput(time, k.memory_share, memory, k.flops / split, expected)
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
            for f in ("time_s", "memory_bound_share", "memory_bytes", "flops", "expected_time_s")
        )
    )


def _expected_grid(
    model: CostModel,
    grid: Grid,
    local: np.ndarray,
    seq: np.ndarray,
    ctx: np.ndarray,
    dt: np.ndarray,
    nb: np.ndarray,
    reps: np.ndarray,
) -> np.ndarray:
    """(S, D) expected step times: step.py's model (micro-batch stage time from the
    expected-time kernel, recomputation, bubble, collectives), given arrays."""
    run, c, step = model.run, grid.ceilings, model.step
    if c is None or step is None:
        return np.full((len(local), len(grid.bandwidth)), np.nan)
    t, pp = run.layout.tensor, run.layout.pipeline
    if run.micro_batch is not None:
        micro = np.full_like(local, run.micro_batch)
    else:
        micro = local if pp == 1 else np.ones_like(local)
    m = (local // micro).astype(np.float64)
    xm = basis(micro, seq, ctx)
    if run.ideal:  # the datasheet figures, no quantization, no launch overhead
        ceil = (grid.peak, grid.bandwidth, c.units, c.tile_m, c.tile_n, 0.0 * c.overhead_s)
    else:
        ceil = (c.flops_per_s, c.bandwidth_bytes_per_s, c.units, c.tile_m, c.tile_n, c.overhead_s)

    def stage(p: Pass) -> np.ndarray:
        out = sweep_expected(
            p.flops,
            p.bytes,
            p.shape,
            p.kernels,
            p.keep,
            xm,
            dt,
            *ceil,
            t,
            SPLIT_K_MIN,
            quantize=not run.ideal,
        )
        return np.asarray(out / pp)

    e = stage(step)
    r = stage(model.recompute) if model.recompute is not None else 0.0
    boundary = np.einsum("sk,sk->s", xm, model.boundary_bytes[dt])
    comm = communication_parts(
        run,
        model.params,
        boundary[:, None],
        model.blocks,
        model.allreduces_per_block,
        c.links,
        micro_batches=m[:, None],
        bytes_per_element=nb[:, None],
        data=reps[:, None].astype(np.float64),
    )
    parts = list(assemble(run, e, r, m[:, None], comm).values())
    arrays = [p for p in parts if np.ndim(p)]  # parts that cannot occur are scalar zeros
    total = np.array(arrays[0], dtype=np.float64)
    for part in arrays[1:]:
        total += part
    return total + sum(float(p) for p in parts if not np.ndim(p))


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
    time, share = np.empty((n, d)), np.empty((n, d))
    expected = np.full((n, d), np.nan)
    memory, flops = np.empty(n), np.empty(n)
    split = base.layout.model_split
    for i in range(n):
        run = replace(
            base,
            batch=int(batch[i]),
            seq=int(seq[i]) if model.takes_seq else None,
            context=int(ctx[i]) if base.phase == "decode" else None,
            dtype=grid.dtypes[dt[i]],
            layout=replace(base.layout, data=int(reps[i])),
        )
        table = w.layers(run.replica())
        r = evaluate(table.total_flops, table.total_bytes, grid.peak[dt[i]], grid.bandwidth)
        step = r.time_s.sum(axis=0)
        mem_bound = np.where(r.compute_bound, 0.0, r.time_s).sum(axis=0)
        share[i] = np.where(step > 0, mem_bound / np.where(step > 0, step, 1.0), 0.0)
        comm = communication(w, run).total_bytes
        time[i] = step / split + transfer_time_s(comm, grid.link)
        memory[i] = memory_breakdown(w, run).total
        flops[i] = table.total_flops.sum() / split
        for j, device in enumerate(grid.devices):
            step = step_time(w, run, device)
            expected[i, j] = np.nan if step.expected_s is None else step.expected_s
    out = SweepOutput(time, share, memory, flops, expected)
    if reduce is not None:
        reduce(0, out)
    if progress is not None:
        progress(n, n)
    return out if keep else None
