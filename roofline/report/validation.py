"""Validation against the published dataset: rows and table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import new_table

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..validate import Check


def check_rows(checks: list[Check]) -> list[dict[str, Any]]:
    """Validation rows in SI units (count, FLOP, byte); rel_error = computed / published - 1."""
    return [
        {
            "model": c.model,
            "metric": c.metric,
            "computed": c.computed,
            "published": c.published,
            "rel_error": c.rel_error,
            "tolerance": c.tolerance,
            "ok": c.ok,
            "flagged": c.flagged,
            "reason": c.reason,
        }
        for c in checks
    ]


_METRIC_UNITS = {
    "params": (1e6, "M"),
    "active_params": (1e6, "M"),
    "inference_flops": (1e9, "GFLOP"),
    "training_flops": (1e15, "PFLOP"),
    "memory_total": (1e9, "GB"),
    "memory_optimizer_ratio": (1e9, "GB"),
    "memory_params": (1e9, "GB"),
    "memory_optimizer": (1e9, "GB"),
    "memory_activations": (1e9, "GB"),
    "memory_unit": (1, ""),
    "memory_input": (1, "tokens"),
}


def validation_table(checks: list[Check]) -> list[RenderableType]:
    table = new_table(
        "Computed from the architecture vs the published dataset "
        "(params within 5%, inference FLOPs within 10%; flagged = published figure inconsistent)",
        ("model", "metric", "computed", "published", "error", "check", "reason"),
        left=("model", "metric", "check", "reason"),
    )
    for c in checks:
        scale, unit = _METRIC_UNITS.get(c.metric, (1, ""))

        def show(v: float | None, scale: float = scale, unit: str = unit) -> str:
            if v is None:
                return "-"
            x = v / scale
            return f"{x:,.0f} {unit}" if abs(x) >= 1000 else f"{x:.4g} {unit}"

        err = c.rel_error
        verdict = "flagged" if c.flagged else ("ok" if c.tolerance is not None else "info")
        if not c.ok:
            verdict = "FAIL"
        table.add_row(
            c.model,
            c.metric,
            show(c.computed),
            show(c.published),
            "-" if err is None else f"{100 * err:+.1f}%",
            verdict,
            c.reason,
        )
    n_flagged = sum(c.flagged for c in checks)
    n_fail = sum(not c.ok for c in checks)
    return [
        table,
        f"{len(checks)} checks, {n_flagged} flagged as inconsistent in the published data, "
        f"{n_fail} failing",
    ]
