"""The intervals' residuals and their coverage (`validate --runs --intervals`): each kind's
residuals on the fit half and the held-out half of its published runs, the band the fit
half gives (intervals.conformal_ends) and the share of the held-out half inside it.

The halves are the calibration's: the training (serving) runs of workloads/runs/ at even
positions in key order are the fit half (calibration.split), the odd ones held out; under
load, each stack's deployments alternate (load_runs.split), every figure of a run in its
deployment's half. Every run with a prediction is in, those measured faster than their
roofline bound too (the sustained share is not fitted on them, but their errors are what a
user meets). Under load a residual is one figure of one run (TTFT, TPOT, ITL, end-to-end
latency, mean, median or 99th percentile; throughput turned over): a run gives several.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .calibration import split
from .intervals import COVERAGE, DIGITS, LOAD_RATES, Band, conformal_ends, inside, time_residual
from .runs import LOWER_IS_BETTER, Prediction

if TYPE_CHECKING:
    from .load_runs import LoadPrediction


@dataclass(frozen=True)
class KindResiduals:
    """A kind's residuals by half: (the run's key, or run/figure under load; residual)."""

    kind: str
    fit: tuple[tuple[str, float], ...]
    held: tuple[tuple[str, float], ...]

    def band(self, coverage: float = COVERAGE) -> Band:
        """The fit half's band at `coverage`, the factors rounded to DIGITS decimals (as
        shipped; an end the fit half cannot bound is 0 or inf)."""
        low, high = conformal_ends((r for _, r in self.fit), coverage)
        return Band(
            self.kind,
            coverage,
            round(math.exp(low), DIGITS),
            round(math.exp(high), DIGITS) if math.isfinite(high) else math.inf,
            len(self.fit),
        )

    def coverage(self, band: Band) -> float | None:
        """The share of the held-out residuals inside `band` (None: no held-out run)."""
        if not self.held:
            return None
        return sum(inside(r, band) for _, r in self.held) / len(self.held)


def prediction_residual(p: Prediction) -> float | None:
    """A published run's residual (None: not predicted)."""
    if p.predicted is None or p.predicted <= 0 or p.run.measured <= 0:
        return None
    return time_residual(p.predicted, p.run.measured, p.run.metric in LOWER_IS_BETTER)


def run_residuals(predictions: list[Prediction], kind: str) -> KindResiduals:
    """The residuals of the `kind` runs (training or serving) of `predictions` (the shipped
    set: the halves are its keys') by half."""
    chosen = [p for p in predictions if p.run.kind == kind]
    fit_keys, _ = split([p.run.key for p in chosen])
    fit_set = set(fit_keys)
    fit: list[tuple[str, float]] = []
    held: list[tuple[str, float]] = []
    for p in sorted(chosen, key=lambda p: p.run.key):
        r = prediction_residual(p)
        if r is not None:
            (fit if p.run.key in fit_set else held).append((p.run.key, r))
    return KindResiduals(kind, tuple(fit), tuple(held))


def load_residuals(predictions: list[LoadPrediction]) -> KindResiduals:
    """The residuals of every predicted figure of the load runs, by half (load_runs.split)."""
    from .load_runs import split as load_split

    fit_keys = {
        r.key for fit_half, _ in load_split([p.run for p in predictions]).values() for r in fit_half
    }
    fit: list[tuple[str, float]] = []
    held: list[tuple[str, float]] = []
    for p in sorted(predictions, key=lambda p: p.run.key):
        for name, measured in sorted(p.run.measured.items()):
            value = p.predicted.get(name)
            if value is None or value <= 0 or measured <= 0:
                continue
            r = time_residual(value, measured, name not in LOAD_RATES)
            (fit if p.run.key in fit_keys else held).append((f"{p.run.key}/{name}", r))
    return KindResiduals("load", tuple(fit), tuple(held))


def coverage_summary(res: KindResiduals, band: Band) -> dict[str, float | int | str | None]:
    """A kind's band and its held-out coverage: {kind, coverage (nominal), low_factor,
    high_factor, fit_runs (residuals the band was made of), held_out_runs, inside,
    held_out_coverage (inside / held_out_runs; None without a held-out run)}."""
    held_in = sum(inside(r, band) for _, r in res.held)
    return {
        "kind": res.kind,
        "coverage": band.coverage,
        "low_factor": band.low_factor,
        "high_factor": band.high_factor,
        "fit_runs": band.runs,
        "held_out_runs": len(res.held),
        "inside": held_in,
        "held_out_coverage": res.coverage(band),
    }
