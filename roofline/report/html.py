"""`roofline report`: one self-contained HTML page of a workload on several devices.

The page holds, for one run (RunConfig) on each device: a plain-text summary (FLOPs, bytes,
bound and expected time, tokens/s, MFU, fit), a log-log roofline chart (roofs per device,
a point per layer at its FLOP/s at the bound as the PNG draws it, coloured by kind and
shaped by device, the whole step at the bound and as expected, hover details with the
expected figures, devices toggled on and off), the per-layer table (sortable), a what-if
heatmap per device over batch x sequence (decode: batch x context) from the sweep engine
with the cells that do not fit in memory marked and their boundary drawn, and the memory
breakdown with the fit per device. The text parts are static HTML (readable without the
script); the data travel as strict JSON (null for a figure that does not exist) in a
`<script type="application/json">`; a small script of our own (html_assets/report.js,
inlined) draws the charts as SVG. No server, no network: the page opens from file://.

Why hand-written SVG rather than a charting library (measured on this project's machine,
2026-11; the command is part of the product, so a library would be a runtime dependency):
- plotly 7.1.0 (MIT): its bundled plotly.min.js alone is 4.82 MB; every report would be
  about 4.9 MB, at the 5 MB limit, for four simple chart types.
- vl-convert-python 1.9 (BSD-3-Clause): `javascript_bundle()` hands over Vega + Vega-Lite
  in 0.90 MB, but the package installs 84 MB (a native binary with a JS runtime) to do it.
- our own script: 22 kB (MIT, this project's licence), no new dependency, no third-party
  code in the page; a whole BERT-Large report on two devices is 57 kB.

Units: SI inside and in the JSON (FLOP, byte, second); the page shows scaled units named
where shown (GB = 1e9 bytes). Library code writes no file: the CLI writes the page whole.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html import escape
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis import Result, analyze
from ..capacity import MemoryReport, memory_report
from ..errors import FieldError
from ..scenario import RunConfig, check_size
from ..whatif import Sweep, build_sweep, run_sweep, scenario_columns
from . import count, plain
from .memory import layout_text
from .run import summary

if TYPE_CHECKING:
    from ..hardware import Device
    from ..sweep import SweepOutput
    from ..workloads import Workload

MAX_DEVICES = 8  # devices in one report: the palette's colours, and a chart one can read
AXIS_VALUES = 7  # the default sweep axes keep at most this many powers of two (the largest)
MAX_AXIS = 32  # values on a heatmap axis: cells one can still read
BATCH_AXIS = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class Report:
    """Everything the page shows: one analysis per device, the memory report, the sweep."""

    workload: Workload
    run: RunConfig
    results: tuple[Result, ...]
    memory: MemoryReport
    sweep: Sweep
    sweep_out: SweepOutput


def powers_up_to(top: int, low: int) -> list[int]:
    """Powers of two from `low` below `top`, then `top`: the AXIS_VALUES largest."""
    values, v = [], low
    while v < top:
        values.append(v)
        v *= 2
    return [*values, top][-AXIS_VALUES:]


def _axis(values: list[int] | None, default: list[int], field: str) -> list[int]:
    if values is None:
        return default
    if not values:
        raise FieldError(field, None, "empty sweep axis; give at least one value")
    axis = sorted({check_size(field, v) for v in values})
    if len(axis) > MAX_AXIS:
        raise FieldError(field, len(axis), f"at most {MAX_AXIS} values on a heatmap axis")
    return axis


def build_report(
    workload: Workload,
    devices: list[Device],
    run: RunConfig,
    *,
    batches: list[int] | None = None,
    seqs: list[int] | None = None,
) -> Report:
    """Analyse `run` on every device, its memory, and a sweep of `run` over `batches` x
    `seqs` (decode: contexts). Default axes: batches 1, 2, 4 ... 128 and the run's own;
    powers of two up to the run's sequence (decode: context), the AXIS_VALUES largest."""
    if not devices:
        raise FieldError("device", None, "give at least one device")
    if len(devices) > MAX_DEVICES:
        raise FieldError("device", len(devices), f"at most {MAX_DEVICES} devices in one report")
    results = tuple(analyze(workload, d, run) for d in devices)
    arch, decode = workload.arch, run.phase == "decode"
    batch_axis = _axis(batches, sorted({*BATCH_AXIS, run.batch}), "sweep_batch")
    seq = results[0].seq
    if seqs is not None and not (arch.takes_seq or decode):
        raise FieldError("sweep_seq", None, f"{workload.key} takes a fixed input; leave it out")
    seq_axis: list[int | None] = [None]
    ctx_axis: list[int | None] = [None]
    if decode:
        top = run.context or seq or 1
        ctx_axis = list(_axis(seqs, powers_up_to(top, min(128, top)), "sweep_seq"))
        seq_axis = [run.seq]
    elif arch.takes_seq and seq is not None:
        seq_axis = list(_axis(seqs, powers_up_to(seq, min(32, seq)), "sweep_seq"))
    try:
        sweep = build_sweep(
            workload,
            devices,
            run,
            batches=batch_axis,
            seqs=seq_axis,
            contexts=ctx_axis,
            dtypes=[run.dtype],
            replicas=[1],
        )
    except FieldError as exc:  # an axis value the model refuses: name the report's flag
        if exc.field in ("batch", "seq", "context"):
            field = "sweep_batch" if exc.field == "batch" else "sweep_seq"
            raise FieldError(field, exc.value, exc.problem) from None
        raise
    return Report(
        workload=workload,
        run=run,
        results=results,
        memory=memory_report(workload, run, devices),
        sweep=sweep,
        sweep_out=run_sweep(sweep),
    )


# ---------------------------------------------------------------- data (strict JSON)
def _rate(r: Result) -> tuple[str, float]:
    """Work a step does: tokens for text models (decode: one a sample), else samples."""
    if r.workload.arch.takes_seq and r.seq is not None:
        return "tokens_per_s", float(r.run.batch * (1 if r.run.phase == "decode" else r.seq))
    return "samples_per_s", float(r.run.batch)


def _scenario(report: Report) -> dict[str, Any]:
    run, r = report.run, report.results[0]
    out: dict[str, Any] = {"batch": run.batch, "seq": r.seq, "dtype": run.dtype}
    out |= {"phase": run.phase, "ideal": run.ideal, "attention": run.attention}
    out |= {"logits": run.logits, "fused_epilogues": run.fused_epilogues}
    if run.phase == "decode":
        out["context"] = run.context or r.seq
    if run.training:
        out |= {"optimizer": run.optimizer, "recompute": run.recompute}
        out["first_input_grad"] = run.first_input_grad
    return out


def _index(axis: np.ndarray, value: int | None) -> int | None:
    """The position of `value` on a sweep axis, or None when it is not on it."""
    if value is None:
        return None
    where = np.flatnonzero(axis == value)
    return int(where[0]) if len(where) else None


def _whatif(report: Report) -> dict[str, Any]:
    sweep, g = report.sweep, report.sweep.grid
    cols = scenario_columns(sweep, report.sweep_out)
    n_dev, nx = len(sweep.devices), len(g.batches)
    decode = sweep.phase == "decode"
    y_name = "context" if decode else ("seq" if sweep.model.takes_seq else None)
    y_values = g.contexts if decode else g.seqs
    ny = len(y_values)
    metric = "tokens_per_s" if "tokens_per_s" in cols else "samples_per_s"

    def grid(name: str, j: int) -> Any:  # (S * D,) -> rows y, columns batch
        return plain(cols[name].reshape(nx, ny, n_dev)[:, :, j].T)

    run, seq = report.run, report.results[0].seq
    own_y = (run.context or seq) if decode else seq
    current_y = 0 if y_name is None else _index(y_values, own_y)
    return {
        "x": {"name": "batch", "values": plain(g.batches)},
        "y": {"name": y_name, "values": plain(y_values) if y_name else [None]},
        "metric": metric,
        "memory_bytes": grid("memory_bytes_per_device", 0),
        "current": {"x": _index(g.batches, run.batch), "y": current_y},
        "devices": [
            {
                "key": d.key,
                "capacity_bytes": d.memory_capacity_bytes,
                "rate": grid(metric, j),
                "time_s": grid("time_s", j),
                "expected_time_s": grid("expected_time_s", j),
                "fits": grid("fits", j),
            }
            for j, d in enumerate(sweep.devices)
        ],
    }


def report_data(report: Report) -> dict[str, Any]:
    """The page's data: SI units, strict JSON (plain(): non-finite -> null)."""
    first = report.results[0]
    t = first.layers
    layers = [
        {
            "name": str(t.name[i]),
            "kind": str(t.kind[i]),
            "count": int(t.count[i]),
            "params": float(t.params[i]),
            "flops": float(first.flops[i]),
            "bytes": float(first.bytes[i]),
            "intensity": float(first.intensity[i]),
        }
        for i in range(len(t))
    ]
    devices = []
    for r, fit in zip(report.results, report.memory.devices):
        unit, work = _rate(r)
        devices.append(
            {
                "key": r.device.key,
                "name": r.device.name,
                "peak_flops_per_s": r.peak_flops_per_s,
                "memory_bandwidth_bytes_per_s": r.device.memory_bandwidth_bytes_per_s,
                "ridge_point": r.ridge_point,
                "capacity_bytes": r.device.memory_capacity_bytes,
                "summary": summary(r)
                | {
                    "rate_unit": unit,
                    "rate_bound": work / r.total_time_s,
                    "rate_expected": work / r.total_expected_time_s,
                },
                "fits": fit.fits,
                "min_devices": fit.min_devices,
                "min_layout": layout_text(fit.min_layout),
                "time_s": r.time_s,
                "expected_time_s": r.expected_time_s,
                "compute_bound": r.compute_bound,
            }
        )
    data = {
        "title": title(report),
        "model": {
            "key": report.workload.key,
            "name": report.workload.name,
            "family": report.workload.arch.family,
            "params": first.params,
        },
        "scenario": _scenario(report),
        "layers": layers,
        "devices": devices,
        "memory": {"breakdown": report.memory.breakdown.as_dict()},
        "whatif": _whatif(report),
    }
    return dict(plain(data))


def title(report: Report) -> str:
    run, r = report.run, report.results[0]
    parts = [run.phase, f"batch {run.batch}"]
    if run.phase == "decode":  # one new token a sample, attending to the cached ones
        parts.append(f"1 new token, context {run.context or r.seq}")
    elif r.seq is not None and report.workload.arch.takes_seq:
        parts.append(f"seq {r.seq}")
    return f"{report.workload.name}: {', '.join(parts)}, {run.dtype}"


# ---------------------------------------------------------------- the page
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("html_assets", name).read_text("utf-8")


def render_html(report: Report) -> str:
    """The whole page as one string: static text sections, the data, the inlined script."""
    from .html_sections import layer_table, memory_section, summary_section

    data = report_data(report)
    blob = json.dumps(data, allow_nan=False, separators=(",", ":"))
    blob = blob.replace("<", "\\u003c")  # no `</script>` or `<!--` inside the script element
    page = _asset("template.html")
    fills = {
        "TITLE": escape(data["title"]),
        "MODEL_NOTE": escape(
            f"{report.workload.name} ({report.workload.key}, {report.workload.arch.family}, "
            f"{count(data['model']['params'])} parameters) on "
            + ", ".join(f"{d.name} ({d.key})" for d in report.sweep.devices)
        ),
        "WHATIF_TITLE": {"seq": "batch x sequence", "context": "batch x context"}.get(
            data["whatif"]["y"]["name"], "batch"
        ),
        "SUMMARY": summary_section(data),
        "LAYERS": layer_table(data),
        "MEMORY": memory_section(data),
        "DATA": blob,
        "SCRIPT": _asset("report.js"),
    }
    return re.sub(r"\{\{([A-Z_]+)\}\}", lambda m: fills[m.group(1)], page)  # one pass
