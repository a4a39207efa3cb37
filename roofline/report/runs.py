"""Predicted vs measured published runs (`roofline validate --runs`): rows and table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import new_table

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..calibration import Fit
    from ..interval_fit import KindResiduals
    from ..intervals import Band
    from ..runs import Prediction

UNITS = {
    "step_time_s": (1.0, "s"),
    "ttft_s": (1e-3, "ms"),
    "tpot_s": (1e-3, "ms"),
    "request_latency_s": (1e-3, "ms"),
    "tokens_per_s": (1.0, "tok/s"),
    "output_tokens_per_s": (1.0, "tok/s"),
    "output_tokens_per_s_per_device": (1.0, "tok/s"),
    "tokens_per_s_per_device": (1.0, "tok/s"),
    "hardware_flops_per_device": (1e12, "TFLOP/s"),
    "mfu": (0.01, "%"),
    "hfu": (0.01, "%"),
}


def run_rows(predictions: list[Prediction]) -> list[dict[str, Any]]:
    """{run, metric, predicted, measured, rel_error, source} and how the run was set up."""
    rows = []
    from ..intervals import interval, intervals
    from ..runs import LOWER_IS_BETTER

    bands = intervals().bands
    for p in predictions:
        r = p.run
        lay = r.run.layout
        band = bands[r.kind]
        low_better = r.metric in LOWER_IS_BETTER
        iv = interval(p.predicted, r.kind, lower_is_better=low_better, band=band)
        rows.append(
            {
                "run": r.key,
                "name": r.name,
                "kind": r.kind,
                "model": r.workload.key,
                "device": r.device.key,
                "devices": r.devices,
                "layout": f"dp {lay.data} x tp {lay.tensor} x pp {lay.pipeline}",
                "metric": r.metric,
                "predicted": p.predicted,
                "measured": r.measured,
                "rel_error": p.rel_error,
                # the predicted figure's interval (intervals.yaml, the run's kind) and whether
                # the measured figure lies in it
                "predicted_interval": None if iv is None else iv.as_dict(),
                "inside_interval": None if iv is None else iv.low <= r.measured <= iv.high,
                "bound": p.bound,
                "reason": p.reason or None,
                "beats_bound": p.beats_bound,
                "source": r.source,
                "file": r.path,
            }
        )
    return rows


def csv_run_rows(predictions: list[Prediction]) -> list[dict[str, Any]]:
    """run_rows with the interval as flat columns (predicted_interval_coverage, _low,
    _high: in the metric's own unit)."""
    from . import flat_interval

    rows = []
    for row in run_rows(predictions):
        iv = flat_interval("predicted_interval", row.pop("predicted_interval"), unit="")
        rows.append(row | iv)
    return rows


def _show(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    scale, unit = UNITS[metric]
    return f"{value / scale:,.3g} {unit}"


def runs_table(
    predictions: list[Prediction],
    median: float | None,
    given: int = 0,
    coverage: list[dict[str, Any]] | None = None,
) -> list[RenderableType]:
    """The runs, the error summary, the intervals' held-out coverage (`coverage`:
    coverage_rows of the shipped set) and the errors by source; `given`: the last `given`
    predictions are the user's own files (`validate --runs PATH`), summed up apart."""
    table = new_table(
        "Published measured runs: predicted (expected time) vs measured; the roofline bound "
        "for reference",
        ("run", "device x n", "metric", "bound", "predicted", "measured", "error", "note"),
        left=("run", "device x n", "metric", "note"),
    )
    for p in predictions:
        r = p.run
        err = p.rel_error
        table.add_row(
            r.key,
            f"{r.device.key} x {r.devices}",
            r.metric,
            _show(p.bound, r.metric),
            _show(p.predicted, r.metric),
            _show(r.measured, r.metric),
            "-" if err is None else f"{100 * err:+.0f}%",
            "measured beats the bound: setup differs" if p.beats_bound else "",
        )
    from ..runs import error_summary

    s = error_summary(predictions)

    def errors(part: dict[str, Any]) -> str:
        med, worst, wide = (
            part["median_abs_error"],
            part["largest_abs_error"],
            part["beyond_35_percent"],
        )
        return (
            "median absolute error "
            + ("-" if med is None else f"{100 * med:.1f}%")
            + ("" if worst is None else f", largest {100 * worst:.0f}%")
            + f", {len(wide)} beyond 35%"
        )

    flagged = len(s["beats_bound"])
    summary = f"{len(predictions)} runs: " + errors(s["all"])
    if flagged:
        summary += (
            f". {flagged} measured faster than the roofline bound of their stated setup allows"
            f" ({', '.join(s['beats_bound'])}); the other {s['within_bound']['runs']}: "
            + errors(s["within_bound"])
        )
    wide = s["within_bound"]["beyond_35_percent"]
    if wide:
        summary += f" ({', '.join(wide)})"
    where = "workloads/runs/*.yaml" + (" and the files given" if given else "")
    if given == len(predictions):
        where = "the files given"
    out: list[RenderableType] = [table, f"{summary}. Sources in {where}"]
    if given:
        mine = error_summary(predictions[-given:])["all"]
        out.append(f"Your {given} run{'s' if given > 1 else ''} (the files given): " + errors(mine))
    if coverage:
        out.append(coverage_line(coverage))
    return [*out, sources_table(predictions)]


def sources_table(predictions: list[Prediction]) -> RenderableType:
    """The errors by source group (runs.by_source)."""
    from ..runs import by_source

    table = new_table(
        "By source (the run file's first word): median and largest absolute error",
        ("source", "runs", "kind", "devices", "median", "largest", "> 35%", "beats bound"),
        left=("source", "kind", "devices"),
    )

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.0f}%"

    for row in by_source(predictions):
        table.add_row(
            row["source"],
            str(row["runs"]),
            ", ".join(row["kinds"]),
            ", ".join(row["devices"]),
            pct(row["median_abs_error"]),
            pct(row["largest_abs_error"]),
            str(row["beyond_35_percent"]),
            str(row["beats_bound"]),
        )
    return table


def _finite(x: float) -> float | None:
    return None if x != x else x  # NaN (no run in a half) is null in JSON


def fit_rows(fit: Fit) -> list[dict[str, Any]]:
    """{parameter, run, half, rel_error}: each run's error at the refitted share; a run
    measured beyond its bound is in neither half of the fit ('beyond bound')."""
    held, beyond = set(fit.held_keys), set(fit.beyond_bound)
    return [
        {
            "parameter": fit.parameter,
            "run": k,
            "half": "beyond bound" if k in beyond else "held out" if k in held else "fit",
            "rel_error": e,
        }
        for k, e in fit.errors
    ]


def fit_dict(fit: Fit, shipped: float) -> dict[str, Any]:
    return {
        "parameter": fit.parameter,
        "fitted": fit.value,
        "shipped": shipped,
        "fit_runs": len([k for k in fit.fit_keys if k not in fit.beyond_bound]),
        "held_out_runs": len([k for k in fit.held_keys if k not in fit.beyond_bound]),
        "beyond_bound_runs": list(fit.beyond_bound),
        "fit_median_abs_error": _finite(fit.fit_median_abs_error),
        "held_out_median_abs_error": _finite(fit.held_median_abs_error),
        "runs": fit_rows(fit),
    }


def fit_table(fit: Fit, shipped: float) -> list[RenderableType]:
    kind = "training" if fit.parameter == "training_sustained" else "serving"
    table = new_table(
        f"{fit.parameter} refitted: each {kind} run's error at the fitted value",
        ("run", "half", "error"),
        left=("run", "half"),
    )
    for row in fit_rows(fit):
        table.add_row(row["run"], row["half"], f"{100 * row['rel_error']:+.1f}%")

    def pct(x: float) -> str:
        return "-" if x != x else f"{100 * x:.1f}%"

    info = fit_dict(fit, shipped)
    same = "the shipped value" if abs(fit.value - shipped) < 1e-9 else f"shipped: {shipped:g}"
    summary = (
        f"{fit.parameter} fitted = {fit.value:g} ({same}; hardware/defaults/calibration.yaml) "
        f"on {info['fit_runs']} runs (median absolute error {pct(fit.fit_median_abs_error)}); "
        f"held out: {info['held_out_runs']} runs, median absolute error "
        f"{pct(fit.held_median_abs_error)}"
    )
    if fit.beyond_bound:
        summary += f"; not fitted on (measured beyond the bound): {len(fit.beyond_bound)}"
    return [table, summary]


def coverage_rows(kinds: list[KindResiduals], bands: dict[str, Band]) -> list[dict[str, Any]]:
    """Each kind's band (`bands`: the shipped or the refitted) and its held-out coverage."""
    from ..interval_fit import coverage_summary

    return [coverage_summary(k, bands[k.kind]) for k in kinds]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def coverage_line(rows: list[dict[str, Any]]) -> str:
    """The shipped intervals' coverage on the held-out half, one clause a kind."""
    nominal = rows[0]["coverage"] if rows else 0.8
    parts = [
        f"{row['kind']} {_pct(row['held_out_coverage'])} ({row['inside']} of "
        f"{row['held_out_runs']})"
        for row in rows
    ]
    return (
        f"Intervals at {100 * nominal:.0f} % (hardware/defaults/intervals.yaml): measured "
        f"coverage on the held-out half {', '.join(parts)}"
    )


def _factor(x: float) -> str:
    return "inf" if x == float("inf") else f"{x:.4f}"


def intervals_table(rows: list[dict[str, Any]], shipped: dict[str, Band]) -> list[RenderableType]:
    """`validate --runs --intervals`: each kind's refitted band beside the shipped one."""
    table = new_table(
        "Intervals refitted: measured / predicted time of the fit half's runs at the split "
        "conformal ends, and the held-out half inside them",
        ("kind", "fit runs", "low factor", "high factor", "shipped", "held out", "coverage"),
        left=("kind", "shipped"),
    )
    for row in rows:
        b = shipped[row["kind"]]
        same = b.low_factor == row["low_factor"] and b.high_factor == row["high_factor"]
        table.add_row(
            row["kind"],
            str(row["fit_runs"]),
            _factor(row["low_factor"]),
            _factor(row["high_factor"]),
            "the same" if same else f"{_factor(b.low_factor)}-{_factor(b.high_factor)}",
            str(row["held_out_runs"]),
            f"{_pct(row['held_out_coverage'])} ({row['inside']} of {row['held_out_runs']})",
        )
    nominal = rows[0]["coverage"] if rows else 0.8
    return [
        table,
        f"Nominal coverage {100 * nominal:.0f} %; shipped in hardware/defaults/intervals.yaml "
        "(low_factor, high_factor, runs of each kind)",
    ]
