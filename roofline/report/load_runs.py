"""Serving under load, predicted against measured (`roofline validate --load`): a row per
(run, figure), the errors by figure, and the runs not predicted with their reason."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from . import new_table, seconds

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..load_runs import LoadPrediction, StackFit

FIGURES = (
    "ttft_mean_s",
    "ttft_p50_s",
    "ttft_p99_s",
    "tpot_mean_s",
    "tpot_p50_s",
    "tpot_p99_s",
    "e2e_mean_s",
    "e2e_p50_s",
    "e2e_p99_s",
    "itl_mean_s",
    "output_tokens_per_s",
    "requests_per_s",
)


def load_rows(predictions: list[LoadPrediction]) -> list[dict[str, Any]]:
    rows = []
    for p in predictions:
        r = p.run
        base = {
            "run": r.key,
            "kind": r.kind,
            "device": r.device,
            "devices": r.devices,
            "engine": f"{r.engine} {r.engine_version}".strip(),
        }
        if p.reason:
            rows.append(
                base
                | {
                    "figure": None,
                    "predicted": None,
                    "measured": None,
                    "rel_error": None,
                    "reason": p.reason,
                }
            )
            continue
        errors = p.errors()
        for name in FIGURES:
            if name in r.measured:
                rows.append(
                    base
                    | {
                        "figure": name,
                        "predicted": p.predicted.get(name),
                        "measured": r.measured[name],
                        "rel_error": errors.get(name),
                        "reason": "",
                    }
                )
    return rows


def by_figure(predictions: list[LoadPrediction]) -> dict[str, dict[str, Any]]:
    """The median and largest |error| of each figure over the runs that have it."""
    out: dict[str, dict[str, Any]] = {}
    for name in FIGURES:
        errors = [abs(e) for p in predictions if (e := p.errors().get(name)) is not None]
        if errors:
            out[name] = {
                "runs": len(errors),
                "median_abs_error": statistics.median(errors),
                "largest_abs_error": max(errors),
            }
    return out


def _shown(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name.endswith("_per_s"):  # a rate: tokens or requests a second
        return f"{value:,.0f}/s" if value >= 100 else f"{value:.3g}/s"
    return seconds(value)


def load_tables(predictions: list[LoadPrediction]) -> list[RenderableType]:
    summary = new_table(
        "Serving under load: predicted vs measured, by figure",
        ("figure", "runs", "median |error|", "largest"),
        left=("figure",),
    )
    for name, s in by_figure(predictions).items():
        summary.add_row(
            name, str(s["runs"]), f"{s['median_abs_error']:.0%}", f"{s['largest_abs_error']:.0%}"
        )
    runs = new_table(
        "Each run",
        ("run", "kind", "figure", "predicted", "measured", "error"),
        left=("run", "kind", "figure"),
    )
    for row in load_rows(predictions):
        if row["reason"]:
            runs.add_row(row["run"], row["kind"], row["reason"], "-", "-", "-")
            continue
        err = row["rel_error"]
        runs.add_row(
            row["run"],
            row["kind"],
            row["figure"],
            _shown(row["figure"], row["predicted"]),
            _shown(row["figure"], row["measured"]),
            "-" if err is None else f"{err:+.0%}",
        )
    return [summary, runs]


def fit_rows(fits: list[StackFit]) -> list[dict[str, Any]]:
    return [
        {
            "stack": f.stack,
            "share": f.share,
            "fit_runs": len(f.fit),
            "held_out_runs": len(f.held),
            "fit_median_abs_error": f.fit_error,
            "held_out_median_abs_error": f.held_error,
            "held_out_median_abs_error_shipped": f.held_error_shipped,
            "fit_on": list(f.fit),
        }
        for f in fits
    ]


def fit_table(fits: list[StackFit]) -> list[RenderableType]:
    t = new_table(
        "A sustained share per serving stack: fitted on the step figures (TPOT, ITL, "
        "saturated throughput) of half its deployments, every figure of the other half",
        ("stack", "share", "fit runs", "held out", "fit |error|", "held-out |error|",
         "held out, shipped share"),
        left=("stack",),
    )  # fmt: skip
    for f in fits:
        held = "-" if f.held_error is None else f"{f.held_error:.0%}"
        shipped = "-" if f.held_error_shipped is None else f"{f.held_error_shipped:.0%}"
        t.add_row(f.stack, f"{f.share:.2f}", str(len(f.fit)), str(len(f.held)),
                  f"{f.fit_error:.0%}", held, shipped)  # fmt: skip
    return [t]
