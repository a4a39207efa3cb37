"""Edges: turn Results and Devices into rows, JSON objects, CSV, rich tables and DataFrames.

Machine formats (JSON, CSV) are in SI units; the table shows scaled units, named in headers
(GB = 1e9 bytes).
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import TYPE_CHECKING, Any

from .hardware import Device

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import RenderableType
    from rich.table import Table

    from .analysis import Result
    from .memory import Fit, MemoryBreakdown
    from .memwall import Generation, Trend
    from .parallel import Communication, Layout
    from .sweep import SweepOutput
    from .validate import Check
    from .whatif import Sweep
    from .workloads import Workload


def layer_rows(result: Result) -> list[dict[str, Any]]:
    """One dict per layer, SI units; flops, bytes and time_s cover all `count` repeats."""
    total = result.total_time_s
    t = result.layers
    return [
        {
            "name": str(t.name[i]),
            "kind": str(t.kind[i]),
            "count": int(t.count[i]),
            "params": float(t.params[i]),
            "flops": float(result.flops[i]),
            "bytes": float(result.bytes[i]),
            "intensity": float(result.intensity[i]),
            "attainable_flops": float(result.attainable_flops_per_s[i]),
            "time_s": float(result.time_s[i]),
            "time_share": float(result.time_s[i] / total),
            "bound": "compute" if result.compute_bound[i] else "memory",
        }
        for i in range(len(t))
    ]


def summary(result: Result) -> dict[str, Any]:
    return {
        "params": result.params,
        "flops": result.total_flops,
        "bytes": result.total_bytes,
        "intensity": result.intensity_overall,
        "time_s": result.total_time_s,
        "memory_bound_time_share": result.memory_bound_time_share,
        "ridge_point": result.ridge_point,
        "peak_flops_per_s": result.peak_flops_per_s,
        "memory_bandwidth_bytes_per_s": result.device.memory_bandwidth_bytes_per_s,
        "achieved_flops_per_s": result.achieved_flops_per_s,
        "fraction_of_peak": result.achieved_flops_per_s / result.peak_flops_per_s,
        "top_layers": [{"name": n, "time_share": s} for n, s in result.top_layers(3)],
    }


def result_dict(result: Result) -> dict[str, Any]:
    return {
        "model": result.workload.key,
        "model_name": result.workload.name,
        "device": result.device.key,
        "device_name": result.device.name,
        "scenario": {
            "batch": result.run.batch,
            "seq": result.seq,
            "dtype": result.run.dtype,
            "phase": result.run.phase,
        }
        | ({"context": result.run.context or result.seq} if result.run.phase == "decode" else {}),
        "summary": summary(result),
        "layers": layer_rows(result),
    }


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def layer_frame(result: Result) -> pd.DataFrame:
    """The per-layer table as a DataFrame; units in the column names."""
    import pandas as pd

    frame = pd.DataFrame(layer_rows(result)).rename(
        columns={
            "flops": "flops_FLOP",
            "bytes": "bytes_B",
            "intensity": "intensity_FLOP_per_B",
            "attainable_flops": "attainable_FLOP_per_s",
        }
    )
    return frame.set_index("name")


# ---------------------------------------------------------------- human-readable formatting

_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(value: float, unit: str, digits: int = 3) -> str:
    """3 significant digits with an SI prefix: si(3.364e11, 'FLOP') -> '336 GFLOP'."""
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def count(value: float) -> str:
    """Parameter counts the way ML papers write them: 335M, 6.74B, 2T."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.0f}"


def seconds(value: float) -> str:
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def _table(title: str, headers: tuple[str, ...], left: tuple[str, ...]) -> Table:
    """A rich Table with a left-justified title; `left` columns left-aligned, others right."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, justify="left" if header in left else "right")
    return table


def result_table(result: Result) -> list[RenderableType]:
    r = result
    scenario = [r.run.phase, f"batch {r.run.batch}"]
    if r.seq is not None:
        scenario.append(f"seq {r.seq}")
    if r.run.phase == "decode":
        scenario.append(f"context {r.run.context or r.seq}")
    title = f"{r.workload.name} on {r.device.name}: {', '.join(scenario)}, {r.run.dtype}"
    headers = (
        "layer",
        "kind",
        "count",
        "GFLOP",
        "MB moved",
        "FLOP/B",
        "TFLOP/s",
        "time",
        "% time",
        "bound",
    )
    table = _table(title, headers, left=("layer", "kind", "bound"))
    for row in layer_rows(r):
        table.add_row(
            row["name"],
            row["kind"],
            str(row["count"]),
            f"{row['flops'] / 1e9:,.2f}",
            f"{row['bytes'] / 1e6:,.2f}",
            f"{row['intensity']:,.1f}",
            f"{row['attainable_flops'] / 1e12:,.1f}",
            seconds(row["time_s"]),
            f"{100 * row['time_share']:.1f}",
            row["bound"],
        )
    top = ", ".join(f"{n} {100 * s:.0f}%" for n, s in r.top_layers(3))
    lines = [
        f"parameters      {count(r.params)}",
        f"total compute   {si(r.total_flops, 'FLOP')}",
        f"total traffic   {si(r.total_bytes, 'B')}  (GB = 1e9 bytes)",
        f"intensity       {r.intensity_overall:,.1f} FLOP/B  "
        f"(ridge point of {r.device.key} at {r.run.dtype}: {r.ridge_point:,.1f} FLOP/B)",
        f"estimated time  {seconds(r.total_time_s)}  "
        f"({si(r.achieved_flops_per_s, 'FLOP/s')} = {100 * r.achieved_flops_per_s / r.peak_flops_per_s:.1f}% "  # noqa: E501
        f"of the {si(r.peak_flops_per_s, 'FLOP/s')} peak)",
        f"memory-bound    {100 * r.memory_bound_time_share:.1f}% of the time",
        f"top layers      {top}",
    ]
    return [table, "\n".join(lines)]


def device_rows(devices: list[Device]) -> list[dict[str, Any]]:
    return [device_dict(d) for d in devices]


def device_dict(d: Device) -> dict[str, Any]:
    return {
        "key": d.key,
        "name": d.name,
        "vendor": d.vendor,
        "release": d.release,
        "aliases": list(d.aliases),
        "peak_flops_per_s": dict(d.peak_flops_per_s),
        "memory_capacity_bytes": d.memory_capacity_bytes,
        "memory_bandwidth_bytes_per_s": d.memory_bandwidth_bytes_per_s,
        "memory_type": d.memory_type,
        "onchip_cache_bytes": d.onchip_cache_bytes,
        "interconnect_bandwidth_bytes_per_s": d.interconnect_bandwidth_bytes_per_s,
        "interconnect_counting": d.interconnect_counting,
        "interconnect_type": d.interconnect_type,
        "tdp_w": d.tdp_w,
        "source": d.source,
        "notes": d.notes,
    }


def device_list_table(devices: list[Device]) -> RenderableType:
    headers = ("key", "device", "released", "fp16/bf16 TFLOP/s", "memory GB", "GB/s", "aliases")
    table = _table(
        "Devices (dense peaks; GB = 1e9 bytes, GiB = 2^30 bytes)",
        headers,
        left=("key", "device", "released", "aliases"),
    )
    for d in devices:
        half = d.peak_flops_per_s.get("fp16", d.peak_flops_per_s.get("bf16"))
        table.add_row(
            d.key,
            d.name,
            d.release,
            f"{half / 1e12:,.1f}" if half else "-",
            f"{d.memory_capacity_bytes / 1e9:,.1f}",
            f"{d.memory_bandwidth_bytes_per_s / 1e9:,.0f}",
            ", ".join(d.aliases),
        )
    return table


def device_detail(d: Device) -> str:
    def opt(value: float | None, fmt: str) -> str:
        return fmt.format(value) if value is not None else "not published"

    peaks = "\n".join(
        f"  {dt:5} {v / 1e12:10,.2f} {'TOP/s' if dt == 'int8' else 'TFLOP/s'}"
        f"   ridge {v / d.memory_bandwidth_bytes_per_s:8,.1f} FLOP/B"
        for dt, v in d.peak_flops_per_s.items()
    )
    link = (
        f"{d.interconnect_bandwidth_bytes_per_s / 1e9:,.0f} GB/s ({d.interconnect_counting}), "
        f"{d.interconnect_type}"
        if d.interconnect_bandwidth_bytes_per_s
        else "none"
    )
    return "\n".join(
        [
            f"{d.name}  [{d.key}]  ({d.path})",
            f"vendor        {d.vendor}",
            f"released      {d.release}",
            f"aliases       {', '.join(d.aliases) or '-'}",
            "dense peaks",
            peaks,
            f"memory        {d.memory_capacity_bytes / 1e9:,.2f} GB "
            f"({d.memory_capacity_bytes / 2**30:,.2f} GiB) {d.memory_type}",
            f"bandwidth     {d.memory_bandwidth_bytes_per_s / 1e9:,.1f} GB/s",
            f"on-chip       {opt(d.onchip_cache_bytes and d.onchip_cache_bytes / 1e6, '{:,.2f} MB')}",  # noqa: E501
            f"interconnect  {link}",
            f"TDP           {opt(d.tdp_w, '{:,.0f} W')}",
            f"source        {d.source}",
            f"notes         {d.notes or '-'}",
        ]
    )


def workload_dict(w: Workload) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "key": w.key,
        "name": w.name,
        "family": w.family,
        "aliases": list(w.aliases),
        "description": w.description,
        "architecture": asdict(w.arch),
        "published": asdict(w.published),
        "sources": list(w.sources),
    }


def workload_list_table(workloads: list[Workload], params: list[float]) -> RenderableType:
    table = _table(
        "Models (parameters computed from the architecture)",
        ("key", "model", "family", "date", "params", "aliases"),
        left=("key", "model", "family", "date", "aliases"),
    )
    for w, p in zip(workloads, params):
        table.add_row(
            w.key, w.name, w.family, w.published.date or "-", count(p), ", ".join(w.aliases)
        )
    return table


# ---------------------------------------------------------------- validation


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
    table = _table(
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


# ---------------------------------------------------------------- memory


def memory_dict(
    breakdown: MemoryBreakdown,
    fits: list[Fit],
    layout: Layout,
    comm: Communication,
    layouts: dict[str, Layout | None],
    steps: dict[str, tuple[float, float] | None] | None = None,
) -> dict[str, Any]:
    """`breakdown` is per device of `layout`; each device row adds the smallest layout that
    fits it (tensor parallel up to 8, then pipeline, then data parallel with ZeRO-3)."""
    return {
        "layout": {
            "data": layout.data,
            "tensor": layout.tensor,
            "pipeline": layout.pipeline,
            "zero": layout.zero,
            "devices": layout.devices,
        },
        "breakdown": breakdown.as_dict(),
        "communication_bytes": {
            "data": comm.data_bytes,
            "tensor": comm.tensor_bytes,
            "pipeline": comm.pipeline_bytes,
        },
        "devices": [
            {
                "device": f.device.key,
                "capacity_bytes": f.device.memory_capacity_bytes,
                "fits": f.fits,
                "min_devices": f.min_devices,
                "min_layout": _layout_dict(layouts.get(f.device.key)),
                "communication_time_s": _comm_time(comm, f.device),
                "step_time_s": sum(steps[f.device.key] or (math.nan,)) if steps else None,
            }
            for f in fits
        ],
    }


def _layout_dict(layout: Layout | None) -> dict[str, int] | None:
    if layout is None:
        return None
    return {
        "data": layout.data,
        "tensor": layout.tensor,
        "pipeline": layout.pipeline,
        "zero": layout.zero,
        "devices": layout.devices,
    }


def _comm_time(comm: Communication, device: Device) -> float | None:
    if comm.total_bytes == 0:
        return 0.0
    if not device.interconnect_bandwidth_bytes_per_s:
        return None
    return comm.time_s(device)


def memory_table(
    title: str,
    breakdown: MemoryBreakdown,
    fits: list[Fit],
    layout: Layout,
    comm: Communication,
    layouts: dict[str, Layout | None],
    steps: dict[str, tuple[float, float] | None] | None = None,
) -> list[RenderableType]:
    parts = _table(title, ("part", "GB", "GiB"), left=("part",))
    for name, value in breakdown.as_dict().items():
        parts.add_row(name, f"{value / 1e9:,.2f}", f"{value / 2**30:,.2f}")
    headers = ["device", "memory GB", "fits", "min devices", "smallest layout"]
    if layout.devices > 1:
        headers.append("communication / step")
    if steps:
        headers.append("step time")
    devices = _table(
        "Fit per device (GB = 1e9 bytes; min devices: footprint sharded evenly; "
        "smallest layout: dp x tp x pp, ZeRO stage)",
        tuple(headers),
        left=("device", "smallest layout"),
    )
    for f in fits:
        best = layouts.get(f.device.key)
        shown = (
            f"{best.data} x {best.tensor} x {best.pipeline} = {best.devices}, ZeRO-{best.zero}"
            if best
            else "none within tp <= 8"
        )
        row = [
            f.device.key,
            f"{f.device.memory_capacity_bytes / 1e9:,.1f}",
            "yes" if f.fits else "no",
            str(f.min_devices),
            shown,
        ]
        if layout.devices > 1:
            t = _comm_time(comm, f.device)
            row.append("no interconnect" if t is None else seconds(t))
        if steps:
            step = steps.get(f.device.key)
            row.append("-" if step is None else seconds(sum(step)))
        devices.add_row(*row)
    return [parts, devices]


# ---------------------------------------------------------------- what-ifs


def whatif_rows(sweep: Sweep, out: SweepOutput) -> list[dict[str, Any]]:
    from .whatif import scenario_rows

    return scenario_rows(sweep, out)


def whatif_tables(name: str, sweep: Sweep, result: dict[str, Any]) -> list[RenderableType]:
    items: list[RenderableType] = []
    rows = result["scenarios"]
    if rows:
        table = _table(
            f"{name}: {sweep.phase} (time per step; memory per device, GB = 1e9 B)",
            (
                "device",
                "dtype",
                "batch",
                "seq",
                "context",
                "devices",
                "time",
                "samples/s",
                "memory GB",
                "fits",
                "memory-bound",
            ),
            left=("device", "dtype", "fits"),
        )
        for r in rows:
            table.add_row(
                r["device"],
                r["dtype"],
                str(r["batch"]),
                str(r["seq"] or "-"),
                str(r["context"] or "-"),
                str(r["devices"]),
                seconds(r["time_s"]),
                f"{r['samples_per_s']:,.1f}",
                f"{r['memory_bytes_per_device'] / 1e9:,.2f}",
                "yes" if r["fits"] else "no",
                f"{100 * r['memory_bound_time_share']:.0f}%",
            )
        items.append(table)
    else:
        n = sweep.grid.scenarios * len(sweep.devices)
        items.append(
            f"{n:,} (scenario, device) pairs evaluated; "
            "--format csv --output FILE writes all of them"
        )
    ans = _table(
        "Answers (at the longest swept sequence/context)",
        (
            "device",
            "dtype",
            "ridge FLOP/B",
            "compute-bound from batch",
            "largest batch that fits",
            "fastest fitting scenario",
            "time to train",
        ),
        left=("device", "dtype", "fastest fitting scenario", "time to train"),
    )
    for a in result["answers"]:
        best = a["best"]
        best_text = (
            f"batch {best['batch']}, seq {best['seq']}, {best['devices']} dev: "
            + (
                f"{best['tokens_per_s']:,.0f} tokens/s"
                if "tokens_per_s" in best
                else f"{best['samples_per_s']:,.1f} samples/s"
            )
            if best
            else "nothing fits"
        )
        train = (
            "; ".join(
                f"{t['devices']} dev: {t['days']:,.1f} days"
                + (f", {t['cost']:,.0f} cost" if "cost" in t else "")
                for t in a.get("training", [])
            )
            or "-"
        )
        ans.add_row(
            a["device"],
            a["dtype"],
            f"{a['ridge_point']:,.1f}",
            str(a["compute_bound_batch"]) if a["compute_bound_batch"] is not None else "never",
            f"{a['max_batch']:,}",
            best_text,
            train,
        )
    items.append(ans)
    return items


# ---------------------------------------------------------------- memory wall


def rates_dict(trends: dict[str, Trend]) -> dict[str, Any]:
    from .memwall import PAPER_RATES

    return {
        "rates": {name: t.growth_per_2y for name, t in trends.items()},
        "paper_rates": dict(PAPER_RATES),
        "series": [
            {
                "series": name,
                "growth_per_2y": t.growth_per_2y,
                "paper": PAPER_RATES[name],
                "devices": t.points,
            }
            for name, t in trends.items()
        ],
    }


def rates_table(trends: dict[str, Trend]) -> RenderableType:
    from .memwall import PAPER_RATES

    table = _table(
        "Growth per two years, fitted over the device database (least squares "
        "on log value vs release date)",
        ("series", "this database", "paper", "devices"),
        left=("series",),
    )
    for name, t in trends.items():
        table.add_row(name, f"{t.growth_per_2y:.2f}x", f"{PAPER_RATES[name]:.1f}x", str(t.points))
    return table


def generation_rows(gens: list[Generation]) -> list[dict[str, Any]]:
    return [
        {
            "device": g.device.key,
            "release": g.device.release,
            "dtype": g.dtype,
            "ridge_point": g.ridge_point,
            "time_s": g.time_s,
            "memory_bound_time_share": g.memory_bound_share,
            "fraction_of_peak": g.fraction_of_peak,
            "speedup": g.speedup,
            "speedup_if_bandwidth_kept_pace": g.speedup_if_bandwidth_kept_pace,
        }
        for g in gens
    ]


def generation_table(name: str, gens: list[Generation]) -> RenderableType:
    table = _table(
        f"{name} across generations (each device at its 16-bit tensor peak, else fp32); "
        "speedup over the oldest",
        (
            "device",
            "released",
            "dtype",
            "ridge FLOP/B",
            "time",
            "memory-bound",
            "of peak",
            "speedup",
            "if bandwidth kept pace",
        ),
        left=("device", "released", "dtype"),
    )
    for g in gens:
        table.add_row(
            g.device.key,
            g.device.release,
            g.dtype,
            f"{g.ridge_point:,.1f}",
            seconds(g.time_s),
            f"{100 * g.memory_bound_share:.0f}%",
            f"{100 * g.fraction_of_peak:.0f}%",
            f"{g.speedup:,.1f}x",
            f"{g.speedup_if_bandwidth_kept_pace:,.1f}x",
        )
    return table
