"""roofline check: predicted vs measured per layer, as rows, JSON and a table."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from . import new_table, seconds

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..check import CheckResult


def check_rows(c: CheckResult) -> list[dict[str, Any]]:
    return [
        {
            "name": x.name,
            "kind": x.kind,
            "count": x.count,
            "time_s": x.bound_s,
            "expected_time_s": x.expected_s,
            "measured_time_s": x.measured_s,
            "rel_error": x.error,
        }
        for x in c.layers
    ]


def check_dict(c: CheckResult) -> dict[str, Any]:
    r = c.result
    return {
        "model": r.workload.key,
        "device": r.device.key,
        # the machine measured, which check ran on: cpu, cores, memory_bytes
        "machine": asdict(r.device.machine) if r.device.machine else None,
        "scenario": {
            "batch": r.run.batch,
            "seq": r.seq,
            "dtype": r.run.dtype,
            "phase": r.run.phase,
        },
        "time_s": r.total_time_s,
        "expected_time_s": r.total_expected_time_s,
        "measured_time_s": c.measured_s,
        "rel_error": c.error,
        "median_layer_abs_error": c.median_layer_error,
        "layers": check_rows(c),
    }


def check_table(c: CheckResult) -> list[RenderableType]:
    r = c.result
    table = new_table(
        f"{r.workload.name} on {r.device.name}: {r.run.phase}, batch {r.run.batch}, "
        f"{r.run.dtype} (measured: numpy on this machine)",
        ("layer", "kind", "count", "bound", "expected", "measured", "error"),
        left=("layer", "kind"),
    )
    for x in c.layers:
        table.add_row(
            x.name,
            x.kind,
            str(x.count),
            seconds(x.bound_s),
            seconds(x.expected_s),
            seconds(x.measured_s),
            f"{100 * x.error:+.0f}%",
        )
    summary = (
        f"total: bound {seconds(r.total_time_s)}, expected {seconds(r.total_expected_time_s)}, "
        f"measured {seconds(c.measured_s)} ({100 * c.error:+.0f}%); median layer error "
        f"{100 * c.median_layer_error:.0f}%"
    )
    return [table, summary]
