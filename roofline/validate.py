"""Validate the workload catalog against the published dataset, and the dataset against itself.

For each model: parameters, inference FLOPs and training FLOPs computed from the architecture
(and the published training setup), next to the published figure, with the relative error.
A published figure is *flagged* when it is judged inconsistent: an erratum in the model's
file (with the reason), or a check that finds the published data contradicting itself
(a row that repeats another model's figures, a memory total that is not the sum of its
parts, optimizer memory that is not 1x or 2x the parameter memory, an input longer than the
model takes).

Conventions: inference FLOPs at batch 1 and the published input size, without the output
vocabulary projection (`lm_head`), which the dataset's figures leave out (GPT-1: 97 GFLOPs
without it, 129 with it, published 96; the original Transformer: 55 vs 74, published 54).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenario import RunConfig
from .workloads import TrainingMemory, Workload, list_workloads

TOLERANCE = {"params": 0.05, "inference_flops": 0.10}
# The memory table prints GB to 2 decimals, so each figure may be off by up to 0.005 GB;
# a sum of n printed figures compared with a printed total may be off by (n + 1) x 0.005 GB.
HALF_DIGIT = 0.005e9  # bytes


@dataclass(frozen=True)
class Check:
    model: str
    metric: str  # params | active_params | inference_flops | training_flops | memory_*
    computed: float | None  # count or FLOP or byte
    published: float | None
    flagged: bool
    reason: str
    tolerance: float | None  # relative; None: reported, not judged

    @property
    def rel_error(self) -> float | None:
        if self.computed is None or not self.published:
            return None
        return (self.computed - self.published) / self.published

    @property
    def ok(self) -> bool:
        """Within tolerance, flagged (published figure inconsistent) or not judged."""
        err = self.rel_error
        return self.flagged or self.tolerance is None or err is None or abs(err) <= self.tolerance


def inference_flops(w: Workload) -> float:
    """Forward FLOPs at batch 1 and the published input size, without the lm_head."""
    seq = None
    if w.arch.takes_seq and w.published.input_size:
        seq = int(str(w.published.input_size).split()[0])
    table = w.layers(RunConfig(batch=1, seq=seq))
    keep = table.name != "lm_head"
    return float(np.sum(table.total_flops[keep]))


def _duplicates(workloads: list[Workload]) -> dict[str, str]:
    """Model -> the earlier model whose published (params, inference FLOPs) it repeats."""
    seen: dict[tuple[float, float], Workload] = {}
    found = {}
    for w in sorted(workloads, key=lambda w: (w.published.date or "", w.key)):
        p = w.published
        if p.params is None or p.inference_flops is None:
            continue
        key = (p.params, p.inference_flops)
        if key in seen:
            found[w.key] = seen[key].name
        else:
            seen[key] = w
    return found


def validate(workloads: list[Workload] | None = None) -> list[Check]:
    """Every check of every model, in catalog order."""
    workloads = workloads if workloads is not None else list_workloads()
    repeats = _duplicates(workloads)
    checks: list[Check] = []
    units = [
        reproduce_memory_row(w, w.published.training_memory)[1]
        for w in workloads
        if w.published.training_memory is not None
    ]
    majority = max(set(units), key=units.count) if units else 1e9
    for w in workloads:
        checks.extend(_model_checks(w, repeats.get(w.key)))
        checks.extend(_memory_checks(w, w.published.training_memory, majority))
    return checks


def _model_checks(w: Workload, repeats: str | None) -> list[Check]:
    errata = {e.metric: e.reason for e in w.errata}
    p = w.published
    dup = ""
    if repeats is not None and p.params and p.inference_flops:
        dup = (
            f"repeats {repeats}'s published row ({p.params / 1e6:,.0f}M params, "
            f"{p.inference_flops / 1e9:,.0f} GFLOPs)"
        )
    rows: list[tuple[str, float | None, float | None, float | None, str]] = []
    if p.params is not None:
        rows.append(("params", w.params, p.params, TOLERANCE["params"], dup))
    if p.active_params is not None:
        rows.append(("active_params", active_params(w), p.active_params, 0.05, ""))
    if p.inference_flops is not None:
        tol = TOLERANCE["inference_flops"]
        rows.append(("inference_flops", inference_flops(w), p.inference_flops, tol, dup))
    if p.training_flops is not None or w.training is not None:
        rows.append(("training_flops", w.training_flops(), p.training_flops, None, ""))
    if "date" in errata:
        rows.append(("date", None, None, None, ""))
    out = []
    for metric, computed, published, tolerance, reason in rows:
        reason = reason or errata.get(metric, "")
        out.append(Check(w.key, metric, computed, published, bool(reason), reason, tolerance))
    return out


def active_params(w: Workload) -> float:
    """Parameters one token uses: all but the experts it is not routed to."""
    return w.active_params


GIB = 2.0**30
# the table's conventions: fp32 parameters, optimizer state 1x (SGD with momentum, CV rows) or
# 2x (Adam, NLP rows) the parameters, gradients not counted; activations as kept by the
# framework: fp32 for the CV rows, 16-bit (mixed precision) for the NLP rows, which is what
# their figures match (in fp32 BERT's would be 28 GB, not 14.4).
STATE_PER_PARAM = {"cnn": 1, "transformer": 2, "lstm": 2}
ACTIVATION_DTYPE = {"cnn": "fp32", "transformer": "fp16", "lstm": "fp16"}


def reproduce_memory_row(w: Workload, m: TrainingMemory) -> tuple[dict[str, float], float]:
    """Computed (params, optimizer, activations) bytes under the table's conventions, and
    the unit (1e9 or 2^30 bytes) the row's parameter figure turns out to be written in."""
    p = w.params
    seq = None
    if w.arch.takes_seq:
        seq = min(int(m.input_size.split()[0]), (w.arch.max_seq or 0))
    run = RunConfig(batch=m.batch, seq=seq, dtype=ACTIVATION_DTYPE[w.family], phase="training")
    computed = {
        "params": 4.0 * p,
        "optimizer": STATE_PER_PARAM[w.family] * 4.0 * p,
        "activations": w.layers(run).total_saved_bytes,
    }
    shown = m.params_bytes / 1e9  # the number printed in the table
    unit = min((1e9, GIB), key=lambda u: abs(computed["params"] / u - shown))
    return computed, unit


def _memory_checks(w: Workload, m: TrainingMemory | None, majority_unit: float) -> list[Check]:
    if m is None:
        return []
    errata = {e.metric: e.reason for e in w.errata}
    out = []
    # --- the published row against itself
    parts = m.params_bytes + m.optimizer_bytes + m.activations_bytes
    off = abs(parts - m.total_bytes) > 4 * HALF_DIGIT
    reason = (
        f"the total ({m.total_bytes / 1e9:.2f}) is not the sum of its parts ({parts / 1e9:.2f})"
    )
    out.append(
        Check(
            w.key,
            "memory_total",
            parts,
            m.total_bytes,
            off,
            reason if off else "",
            4 * HALF_DIGIT / m.total_bytes,
        )
    )
    ratio = m.optimizer_bytes / m.params_bytes
    nearest = min((1.0, 2.0), key=lambda r: abs(ratio - r))
    expected = nearest * m.params_bytes
    off = abs(m.optimizer_bytes - expected) > (1 + nearest) * HALF_DIGIT
    reason = (
        f"optimizer memory ({m.optimizer_bytes / 1e9:.2f}) should be {nearest:.0f}x the "
        f"parameter memory ({expected / 1e9:.2f})"
    )
    out.append(
        Check(
            w.key,
            "memory_optimizer_ratio",
            expected,
            m.optimizer_bytes,
            off,
            reason if off else "",
            (1 + nearest) * HALF_DIGIT / expected,
        )
    )
    if w.arch.takes_seq:
        tokens, limit = int(m.input_size.split()[0]), (w.arch.max_seq or 0)
        if tokens > limit:
            out.append(
                Check(
                    w.key,
                    "memory_input",
                    float(limit),
                    float(tokens),
                    True,
                    f"input length {tokens} exceeds the model's {limit} tokens "
                    f"(likely a typo for {limit})",
                    None,
                )
            )
    # --- the row reproduced from the architecture, in the unit the row is written in
    computed, unit = reproduce_memory_row(w, m)
    name = "GiB (2^30 B)" if unit == GIB else "GB (1e9 B)"
    if unit != majority_unit and "memory" not in errata:
        out.append(
            Check(
                w.key,
                "memory_unit",
                computed["params"] / unit,
                m.params_bytes / 1e9,
                True,
                f"this row is in {name}: {w.params / 1e6:,.1f}M fp32 parameters "
                f"are {computed['params'] / unit:.3f} {name.split()[0]}; the table's "
                "other rows are in the other unit",
                None,
            )
        )
    for part, published, tol in (
        ("params", m.params_bytes, 0.03),
        ("optimizer", m.optimizer_bytes, 0.03),
        ("activations", m.activations_bytes, 0.15),
    ):
        pub = published / 1e9 * unit
        # a figure printed to 0.01 may be off by half a digit: allow that too
        tolerance = max(tol, HALF_DIGIT / 1e9 * unit / pub)
        reason = errata.get("memory", "")
        out.append(
            Check(w.key, f"memory_{part}", computed[part], pub, bool(reason), reason, tolerance)
        )
    return out
