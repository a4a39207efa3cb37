"""check_architecture: the facts every family keeps, run against one architecture.

As scikit-learn's `check_estimator` does for estimators, a family's author (a new module
here, or a loader whose product is an architecture) runs

    from roofline.workloads.checks import check_architecture
    check_architecture(workload)   # a Workload, or an Architecture instance

which runs each check of `CHECKS` in order on small runs (batch 2, a short seq) and raises
`ArchitectureCheckError` naming the first check that fails, what it saw and the physical fact
the check enforces. Each check is a public function of a Workload, to be run alone while
debugging one answer. The checks hold for every shipped family (tests/test_family_checks.py);
they test what a family answers (`base.Architecture`), not the code every family shares.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import replace

import numpy as np

from ..errors import FieldError
from ..layers import GEMM_KINDS, KINDS, LayerTable
from ..scenario import MAX_DEVICES, Layout, RunConfig
from . import Published, Workload
from .base import Architecture, TensorSplit

Check = Callable[[Workload], None]
REL = 1e-9  # "equal to rounding" for sums of float64 costs
GEMM_DOMINATED = 0.9  # share of forward FLOPs in GEMM rows above which training ~ 3x
TRAINING_BAND = (2.5, 3.5)  # training / inference FLOPs there (6N vs 2N a token)
PROBE_BATCH = 2
PROBE_SEQ = 16


class ArchitectureCheckError(AssertionError):
    """An architecture breaks a fact of the family protocol: a programming error in a
    family (an AssertionError, as scikit-learn's checks raise), not bad user input."""

    def __init__(self, model: str, family: str, check: str, problem: str, fact: str) -> None:
        self.model, self.family, self.check, self.problem = model, family, check, problem
        text = f"{model} ({family or 'no family'}) fails {check}: {problem}"
        super().__init__(f"{text} [{fact}]" if fact else text)


class _Failed(Exception):
    """Raised inside a check; check_architecture adds the check's name and fact."""


def _require(ok: bool, problem: str) -> None:
    if not ok:
        raise _Failed(problem)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-12)


def _refused(call: Callable[[], object], field: str, what: str) -> None:
    """`call` must raise a FieldError about `field` (the run's bad value)."""
    try:
        call()
    except FieldError as exc:
        _require(exc.field == field, f"{what}: refused, but for {exc.field!r}: {exc}")
        return
    raise _Failed(f"{what}: accepted, must raise FieldError({field!r}, ...)")


def _run(w: Workload, **changes: object) -> RunConfig:
    """A small run of the model (batch 2, seq 16 or max_seq if shorter), with `changes`."""
    seq = min(PROBE_SEQ, w.arch.max_seq or PROBE_SEQ) if w.arch.takes_seq else None
    return replace(RunConfig(batch=PROBE_BATCH, seq=seq), **changes)  # type: ignore[arg-type]


def _is_decoder(w: Workload) -> bool:
    """A decoder keeps a KV cache in a decode step (the test serve.py makes)."""
    return w.arch.kv_cache_elements(_run(w, phase="decode", context=1, batch=1)) > 0


def _phases(w: Workload) -> list[RunConfig]:
    runs = [_run(w), _run(w, phase="training")]
    if _is_decoder(w):
        runs += [_run(w, phase="prefill"), _run(w, phase="decode", context=1)]
    return runs


def _forward(w: Workload, run: RunConfig) -> LayerTable:
    return w.arch.build(run, w.key)


def _flops(table: LayerTable) -> float:
    return float(np.sum(table.total_flops))


def check_family_named(w: Workload) -> None:
    """Every architecture names its family (tables, the command matrix and errors show it)."""
    family = type(w.arch).family
    _require(isinstance(family, str) and family.strip() == family != "", f"family {family!r}")


def check_protocol_answers(w: Workload) -> None:
    """Sizes are counts: seq limits None or >= 1 (default <= max), blocks >= 0, a tensor
    split names sizes >= 1 and needs >= 1 all-reduce a block (partial sums must meet)."""
    a = w.arch

    def count(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    _require(isinstance(a.takes_seq, bool), f"takes_seq {a.takes_seq!r} is not a bool")
    for name, v in (("default_seq", a.default_seq), ("max_seq", a.max_seq)):
        _require(v is None or (count(v) and v >= 1), f"{name} {v!r}: None or a whole number >= 1")
    if a.default_seq is not None and a.max_seq is not None:
        _require(a.default_seq <= a.max_seq, f"default_seq {a.default_seq} > max_seq {a.max_seq}")
    _require(count(a.blocks) and a.blocks >= 0, f"blocks {a.blocks!r}: a whole number >= 0")
    split = a.tensor_split
    if split is not None:
        _require(isinstance(split, TensorSplit) and bool(split.dims), f"tensor_split {split!r}")
        for name, size in split.dims:
            _require(isinstance(name, str) and count(size) and size >= 1, f"split {name}={size!r}")
        n = split.allreduces_per_block
        _require(count(n) and n >= 1, f"tensor_split.allreduces_per_block {n!r}: >= 1")


def check_table_well_formed(w: Workload) -> None:
    """build() gives a LayerTable of known kinds, one value a row in every column, and
    positive whole repeat counts, in every phase the model runs."""
    for run in _phases(w):
        t = _forward(w, run)
        _require(isinstance(t, LayerTable), f"{run.phase}: build() gave {type(t).__name__}")
        _require(len(t) > 0, f"{run.phase}: the table has no rows")
        for col in ("kind", "count", "flops", "weight_bytes", "input_bytes", "output_bytes"):
            _require(np.shape(getattr(t, col)) == (len(t),), f"{run.phase}: {col} has a shape")
        unknown = sorted(set(t.kind.astype(str)) - set(KINDS))
        _require(not unknown, f"{run.phase}: unknown kinds {unknown}")
        _require(np.issubdtype(t.count.dtype, np.integer), f"{run.phase}: counts not integers")
        _no_bad_row(t, t.count, t.count < 1, f"{run.phase}: count")


def _no_bad_row(t: LayerTable, values: np.ndarray, bad: np.ndarray, what: str) -> None:
    """Fail naming the first row where `bad` holds, and its value."""
    rows = np.flatnonzero(bad)
    if rows.size:
        raise _Failed(f"{what} of row {t.name[rows[0]]} is {values[rows[0]]}")


COST_COLUMNS = (
    *("flops", "weight_bytes", "input_bytes", "output_bytes", "params", "saved_bytes"),
    *("transcendentals", "gemm_groups", "gemm_m", "gemm_n", "gemm_k"),
)


def check_costs_non_negative(w: Workload) -> None:
    """FLOPs, bytes moved, parameters and kept activations are finite and never negative,
    in every phase's forward table and in the training step."""
    tables = [(run.phase, _forward(w, run)) for run in _phases(w)]
    tables.append(("training step", w.layers(_run(w, phase="training"))))
    for phase, t in tables:
        for col in COST_COLUMNS:
            values = np.asarray(getattr(t, col), dtype=np.float64)
            _no_bad_row(t, values, ~np.isfinite(values) | (values < 0), f"{phase}: {col}")


def check_params_match_the_workload(w: Workload) -> None:
    """Parameters are the model's, not the run's: the same at any batch and seq, in
    inference, training and prefill (the workload's `params`)."""
    runs = [*_phases(w), _run(w, batch=2 * PROBE_BATCH)]
    for run in runs:
        if run.phase == "decode":  # an encoder-decoder's decode step skips the encoder
            continue
        got = _forward(w, run).total_params
        _require(_close(got, w.params), f"{run.phase} at batch {run.batch}: {got} != {w.params}")


def check_active_params_at_most_params(w: Workload) -> None:
    """A token uses no more parameters than the model has, and some if it has any."""
    active, params = w.active_params, w.params
    ok = 0 <= active <= params * (1 + REL) and (active > 0 or params == 0)
    _require(ok, f"active_params {active} of {params}")


def check_flops_linear_in_batch(w: Workload) -> None:
    """Samples are independent: twice the batch is twice the forward FLOPs (to rounding)."""
    runs = [_run(w)] + ([_run(w, phase="decode", context=1)] if _is_decoder(w) else [])
    for run in runs:
        one = _flops(_forward(w, run))
        two = _flops(_forward(w, replace(run, batch=2 * run.batch)))
        _require(one > 0, f"{run.phase}: {one} FLOPs")
        _require(_close(two, 2 * one), f"{run.phase}: batch x2 gives {two} FLOPs, not 2 x {one}")


def check_longer_sequences_cost_more(w: Workload) -> None:
    """A token is work: where seq applies, twice the tokens is more FLOPs and no fewer
    bytes."""
    if not w.arch.takes_seq:
        return
    hi = min(2 * PROBE_SEQ, w.arch.max_seq or 2 * PROBE_SEQ)
    lo = hi // 2
    if lo < 1:
        return
    short, long = (_forward(w, _run(w, seq=s)) for s in (lo, hi))
    _require(_flops(long) > _flops(short), f"seq {hi}: {_flops(long)} FLOPs <= seq {lo}'s")
    moved = float(np.sum(long.total_bytes)), float(np.sum(short.total_bytes))
    _require(moved[0] >= moved[1], f"seq {hi}: {moved[0]} bytes < seq {lo}'s {moved[1]}")


def check_training_costs_more_than_inference(w: Workload) -> None:
    """The backward pass costs at least the forward pass (training >= 2x inference FLOPs);
    where GEMMs do >= 90% of the work, about twice (training within 2.5x-3.5x). Every
    layer's backward counted, the first's input gradient too (a small model's first
    convolution may be a large share of its work; frameworks skip that gradient)."""
    forward = _forward(w, _run(w))
    step = _flops(w.layers(_run(w, phase="training", optimizer=None, first_input_grad=True)))
    ratio = step / _flops(forward)
    _require(ratio >= 2 * (1 - REL), f"training is {ratio:.4g}x inference FLOPs")
    gemm = float(np.sum(forward.total_flops[np.isin(forward.kind, list(GEMM_KINDS))]))
    if gemm >= GEMM_DOMINATED * _flops(forward):
        low, high = TRAINING_BAND
        _require(low <= ratio <= high, f"GEMM-dominated, yet training is {ratio:.4g}x inference")


def check_kv_cache(w: Workload) -> None:
    """Only a decoder keeps a KV cache (0 otherwise, in every phase); a decoder's grows
    linearly with the context and with the batch."""
    kv = w.arch.kv_cache_elements
    if not _is_decoder(w):
        for run in (_run(w), _run(w, phase="training"), _run(w, phase="prefill")):
            _require(kv(run) == 0, f"not a decoder, yet {kv(run)} cached in {run.phase}")
        return
    at = [kv(_run(w, phase="decode", context=c)) for c in (4, 8, 12)]
    _require(all(math.isfinite(v) for v in at), f"cache at contexts 4, 8, 12: {at}")
    _require(at[1] > at[0], f"the cache does not grow with the context: {at}")
    _require(_close(at[2] - at[1], at[1] - at[0]), f"not linear in the context: {at}")
    doubled = kv(_run(w, phase="decode", context=4, batch=2 * PROBE_BATCH))
    _require(_close(doubled, 2 * at[0]), f"batch x2 gives {doubled}, not 2 x {at[0]}")


def check_decode_follows_the_kv_cache(w: Workload) -> None:
    """A decode step exists exactly where a KV cache does: a decoder builds it (and refuses
    a context beyond max_seq); any other model refuses phase decode with a FieldError."""
    decode = _run(w, phase="decode", context=1)
    if not _is_decoder(w):
        _refused(lambda: _forward(w, decode), "phase", "phase decode without a KV cache")
        return
    _require(_flops(_forward(w, decode)) > 0, "the decode step does no work")
    limit = w.arch.max_seq
    if limit is not None:
        beyond = replace(decode, context=limit + 1)
        _refused(lambda: _forward(w, beyond), "context", f"context {limit + 1} > max_seq")


def check_boundary_traffic(w: Workload) -> None:
    """Where a model can be split over devices (blocks, or a tensor split), activations
    cross the split: boundary_elements > 0, and twice the batch sends twice as much."""
    a = w.arch
    splits = a.blocks >= 1 or a.tensor_split is not None
    for run in _phases(w):
        n = a.boundary_elements(run)
        _require(math.isfinite(n) and n >= 0, f"{run.phase}: {n} boundary elements")
        if splits:
            why = f"{a.blocks} blocks" if a.blocks else "a tensor split"
            _require(n > 0, f"{run.phase}: {why} but no boundary traffic (0 elements)")
            twice = a.boundary_elements(replace(run, batch=2 * run.batch))
            _require(_close(twice, 2 * n), f"{run.phase}: batch x2 sends {twice}, not 2 x {n}")


def _layout_ok(w: Workload, layout: Layout, field: str, accept: bool, why: str) -> None:
    if accept:
        try:
            w.check_layout(layout)
        except FieldError as exc:
            raise _Failed(f"{why}, yet check_layout refuses it: {exc}") from None
    else:
        _refused(lambda: w.check_layout(layout), field, why)


def check_tensor_split_agrees_with_check_layout(w: Workload) -> None:
    """A tensor degree dividing every size the family splits is accepted, any other refused;
    with no tensor split, tensor parallelism is refused."""
    split = w.arch.tensor_split
    if split is None:
        _layout_ok(w, Layout(tensor=2), "layout.tensor", False, "tensor 2 with no tensor split")
        return
    g = math.gcd(*(size for _, size in split.dims))
    for t in sorted({2, g, g + 1} & set(range(2, MAX_DEVICES + 1))):
        ok = g % t == 0
        why = f"tensor {t} {'divides' if ok else 'does not divide'} {dict(split.dims)}"
        _layout_ok(w, Layout(tensor=t), "layout.tensor", ok, why)


def check_blocks_agree_with_check_layout(w: Workload) -> None:
    """Pipeline stages hold whole blocks: a stage count dividing `blocks` is accepted, any
    other (and any with fewer than 2 blocks) refused."""
    blocks = w.arch.blocks
    if blocks < 2:
        _layout_ok(w, Layout(pipeline=2), "layout.pipeline", False, f"pipeline 2, {blocks} block")
        return
    first = next(p for p in range(2, blocks + 1) if blocks % p == 0)
    for p, ok in ((first, True), (blocks, True), (blocks + 1, False)):
        if p <= MAX_DEVICES:
            why = f"pipeline {p} over {blocks} blocks"
            _layout_ok(w, Layout(pipeline=p), "layout.pipeline", ok, why)


def check_seq_limits(w: Workload) -> None:
    """A model builds at its default seq and at max_seq and refuses a seq beyond it; one
    that takes no seq refuses any seq but its own; without a default, seq must be given."""
    a = w.arch
    if not a.takes_seq:
        _forward(w, _run(w))
        seq = (a.default_seq or 1) + 1
        _refused(lambda: _forward(w, _run(w, seq=seq)), "seq", f"seq {seq}, takes_seq False")
        return
    if a.default_seq is None:
        _refused(lambda: _forward(w, _run(w, seq=None)), "seq", "no seq and no default_seq")
    else:
        _forward(w, _run(w, seq=None, batch=1))
    if a.max_seq is not None:
        limit = a.max_seq
        _forward(w, _run(w, seq=limit, batch=1))
        beyond = _run(w, seq=limit + 1, batch=1)
        _refused(lambda: _forward(w, beyond), "seq", f"seq {limit + 1} > max_seq {limit}")


def check_describe_is_json(w: Workload) -> None:
    """describe() is plain data: a mapping JSON can write (for `models show`)."""
    data = w.arch.describe()
    _require(isinstance(data, dict), f"describe() gave {type(data).__name__}")
    json.dumps(data, allow_nan=False)


def check_attention_core_mask(w: Workload) -> None:
    """attention_core is one bool a row, and marks only rows without parameters (what
    selective recomputation redoes needs no weights)."""
    for run in _phases(w):
        t = _forward(w, run)
        mask = np.asarray(w.arch.attention_core(t))
        _require(mask.dtype == bool and mask.shape == (len(t),), f"mask {mask.dtype}{mask.shape}")
        _no_bad_row(t, t.params, mask & (t.params > 0), f"{run.phase}: params (core)")


CHECKS: tuple[Check, ...] = (
    check_family_named,
    check_protocol_answers,
    check_table_well_formed,
    check_costs_non_negative,
    check_params_match_the_workload,
    check_active_params_at_most_params,
    check_flops_linear_in_batch,
    check_longer_sequences_cost_more,
    check_training_costs_more_than_inference,
    check_kv_cache,
    check_decode_follows_the_kv_cache,
    check_boundary_traffic,
    check_tensor_split_agrees_with_check_layout,
    check_blocks_agree_with_check_layout,
    check_seq_limits,
    check_describe_is_json,
    check_attention_core_mask,
)


def as_workload(target: Workload | Architecture | type[Architecture]) -> Workload:
    """A workload to check: `target` itself, or an architecture wrapped in one."""
    if isinstance(target, Workload):
        return target
    if isinstance(target, type):
        name = target.__name__
        missing = sorted(getattr(target, "__abstractmethods__", ()))
        if missing:
            raise ArchitectureCheckError(
                name, target.family, "protocol", f"does not answer {', '.join(missing)}", ""
            )
        raise TypeError(f"check_architecture takes an instance of {name}, not the class")
    if not isinstance(target, Architecture):
        raise TypeError(f"expected a Workload or an Architecture, got {type(target).__name__}")
    key = target.family or type(target).__name__.lower()
    return Workload(key, key, target, Published(), ("check_architecture",))


def check_architecture(
    target: Workload | Architecture | type[Architecture], checks: Iterable[Check] | None = None
) -> None:
    """Run `checks` (default: all of CHECKS, in order) against one architecture; raise
    ArchitectureCheckError naming the first failing check, what it saw and the fact (the
    check's docstring). An exception a check did not expect fails the check too. Given a
    class, name the protocol's members it does not answer (check "protocol")."""
    w = as_workload(target)
    for check in CHECKS if checks is None else checks:
        try:
            check(w)
        except Exception as exc:
            problem = str(exc) if isinstance(exc, _Failed) else f"{type(exc).__name__}: {exc}"
            fact = " ".join((check.__doc__ or "").split())
            raise ArchitectureCheckError(
                w.key, type(w.arch).family, check.__name__, problem, fact
            ) from exc
