"""Cost models: a workload's layer costs as exact polynomials in the scenario.

A layer's costs are polynomials in the scenario (batch b, sequence s, context c): in the
basis 1, s, b, b*s, b*s^2, b*c, c every transformer, CNN, LSTM and embedding layer is exact
(weights are constant, or re-read every LSTM step: s; token work grows with b*s, attention
with b*s^2, decode attention with b*c; the last term is for GEMM shapes per instance, such
as decode attention's n = c + 1 keys). `cost_model` recovers each layer's coefficients
from a handful of builder calls (least squares on a small design) and checks them on a
held-out scenario, together with the replica's activation memory, KV cache and
block-boundary activation (from the functions the per-run path uses), the GEMM shapes and
kernel launches (for the expected time) and the recomputed forward pass. Models whose costs
are not polynomial (mixture-of-experts weight reads depend on how many experts the tokens
reach) get an `exact_model`: sweep.py then builds each scenario's own tables.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .dtypes import BYTES_PER_ELEMENT
from .efficiency import kernels
from .errors import RooflineError
from .layers import fused_attention
from .memory import activation_bytes, kv_cache_bytes
from .scenario import RunConfig
from .workloads import Workload


def basis(b: np.ndarray, s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The terms 1, s, b, b*s, b*s^2, b*c, c of every scenario (last axis)."""
    b, s, c = (np.asarray(x, dtype=np.float64) for x in (b, s, c))
    return np.stack([np.ones_like(b), s, b, b * s, b * s * s, b * c, c], axis=-1)


@dataclass(frozen=True)
class Pass:
    """What the expected-time kernel needs of a set of layers, as polynomial coefficients:
    FLOPs (L, K), bytes (T, L, K), GEMM shape (4, L, K: groups, m, n, k per instance),
    kernel launches (L, K), which layers count (keep, (L,)), transcendental evaluations
    (L, K, all repeats) and one instance's bytes (T, L, K: for the cache tier)."""

    flops: np.ndarray
    bytes: np.ndarray
    shape: np.ndarray
    kernels: np.ndarray
    keep: np.ndarray
    transcendentals: np.ndarray
    instance_bytes: np.ndarray
    cacheable: np.ndarray  # (L,) bool: reads no weights (may stream from a cache)
    fused: np.ndarray | None = None  # (L,) bool: fused attention rows (their own ceiling)


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
    adapters: float | None = None  # a LoRA fine-tune's trained parameters (the base frozen)

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
        adapters=w.trainable_params(run) if run.lora_rank is not None else None,
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


def _shape_arrays(w: Workload, run: RunConfig) -> tuple[np.ndarray, ...]:
    """(4, L) GEMM shapes per instance, (L,) kernel launches and transcendentals (all
    repeats) of one scenario."""
    t = w.layers(run)
    shape = np.stack([t.gemm_groups, t.gemm_m, t.gemm_n, t.gemm_k])
    return shape, kernels(t, run.training), t.transcendentals * t.count


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
    if phase != "decode":  # the context is the sequence: b*c and c would repeat b*s and s
        x[:, 5:] = 0.0
    scale = np.abs(x).max(axis=0)  # equilibrate the columns: a better-conditioned solve
    scale[scale == 0] = 1.0

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
        return base.scenario(b, s, c, dtype)

    def tables(dtype: str) -> list[tuple[Any, ...]]:
        return [_table_arrays(w, scenario(b, s, c, dtype)) for b, s, c in design]

    per_dtype = {dt: tables(dt) for dt in dtypes}
    first = per_dtype[dtypes[0]]
    table = w.layers(scenario(1, seqs[0], contexts[0], dtypes[0]))

    def per_dtype_fit(i: int) -> np.ndarray:
        return np.stack([fit([r[i] for r in per_dtype[dt]]) for dt in dtypes])

    def shapes(forward: bool) -> tuple[np.ndarray, ...]:
        runs = [scenario(b, s, c, dtypes[0]) for b, s, c in design]
        if forward:
            runs = [r.forward() for r in runs]
        arrays = [_shape_arrays(w, r) for r in runs]
        shape = np.stack([fit([a[0][i] for a in arrays]) for i in range(4)])
        return shape, fit([a[1] for a in arrays]), fit([a[2] for a in arrays])

    def instance_bytes(forward: bool) -> np.ndarray:
        def layers(b: int, s: int | None, c: int | None, dt: str) -> Any:
            r = scenario(b, s, c, dt)
            return w.layers(r.forward() if forward else r)

        return np.stack([fit([layers(*p, dt).bytes for p in design]) for dt in dtypes])

    step_shape, step_kernels, step_trans = shapes(forward=False)
    step = Pass(
        np.empty(0),
        np.empty(0),
        step_shape,
        step_kernels,
        np.ones(len(table), dtype=bool),
        step_trans,
        instance_bytes(forward=False),
        table.weight_bytes == 0,
        fused_attention(table.name),
    )
    recompute = None
    if run.training and run.recompute != "none":
        fwd_shape, fwd_kernels, fwd_trans = shapes(forward=True)
        fwd = [[w.layers(scenario(b, s, c, dt).forward()) for b, s, c in design] for dt in dtypes]
        first_fwd = fwd[0][0]
        keep = first_fwd.count > 1 if run.recompute == "full" else w.arch.attention_core(first_fwd)
        recompute = Pass(
            fit([t.total_flops for t in fwd[0]]),
            np.stack([fit([t.total_bytes for t in per]) for per in fwd]),
            fwd_shape,
            fwd_kernels,
            keep,
            fwd_trans,
            instance_bytes(forward=True),
            first_fwd.weight_bytes == 0,
            fused_attention(first_fwd.name),
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
        adapters=w.trainable_params(run) if run.lora_rank is not None else None,
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
    # the expected-time inputs too: GEMM shapes, launches and transcendentals
    shape, launches, trans = _shape_arrays(w, scenario(b, s, c, dtypes[0]))
    for name, coef, ref in (
        ("GEMM shapes", step.shape, shape),
        ("kernel launches", step.kernels, launches),
        ("transcendentals", step.transcendentals, trans),
    ):
        if not np.allclose(coef @ got, ref, rtol=1e-9, atol=1e-6):
            raise NotPolynomial(f"{w.key}: its layer {name} are not polynomial in the scenario")
    return model
