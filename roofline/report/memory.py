"""The memory command's answer (capacity.MemoryReport) as JSON, CSV rows and tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import flat_interval, interval_fields, new_table, seconds, si, with_interval
from .energy import step_dict

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..capacity import DeviceFit, MemoryReport
    from ..intervals import Interval
    from ..scenario import Layout, RunConfig


def layout_dict(layout: Layout | None) -> dict[str, int] | None:
    if layout is None:
        return None
    return {
        "data": layout.data,
        "tensor": layout.tensor,
        "pipeline": layout.pipeline,
        "zero": layout.zero,
        "devices": layout.devices,
    }


def layout_text(layout: Layout | None) -> str:
    if layout is None:
        return "none within tp <= 8"
    return (
        f"{layout.data} x {layout.tensor} x {layout.pipeline} = {layout.devices}, "
        f"ZeRO-{layout.zero}"
    )


def step_tokens(m: MemoryReport) -> float | None:
    """Tokens a step processes over the whole layout (None: a model without tokens):
    batch x seq, a decode step batch."""
    if m.run.seq is None:
        return None
    return float(m.run.batch * (1 if m.run.phase == "decode" else m.run.seq))


def _interval(f: DeviceFit, run: RunConfig) -> tuple[Interval | None, str]:
    """The expected step time's interval (intervals.yaml, by the phase), or why none."""
    from ..intervals import expected_interval

    if f.step.expected_s is None:
        return None, f.step.reason or "no expected step time"
    return expected_interval(f.step.expected_s, run.phase, ideal=run.ideal, sustained=run.sustained)


def _device(f: DeviceFit, run: RunConfig) -> dict[str, Any]:
    iv, why = _interval(f, run)
    return {
        "device": f.device.key,
        "capacity_bytes": f.device.memory_capacity_bytes,
        "fits": f.fits,
        "min_devices": f.min_devices,
        "min_layout": layout_dict(f.min_layout),
        "communication_time_s": f.communication_time_s,
        "step_time_s": f.step.total_s,
        "expected_step_time_s": f.step.expected_s,
        **interval_fields("expected_step_time_interval", iv, why),
        "mfu": f.step.mfu,
        "hfu": f.step.hfu,
        "expected_parts_s": dict(f.step.parts) or None,
        "step_time_reason": f.step.reason or None,
    }


def _energy_columns(f: DeviceFit, tokens: float | None) -> dict[str, Any]:
    """The step's energy as flat columns (CSV)."""
    e = f.energy
    return {
        "step_energy_j": e.energy_j,
        "step_energy_per_token_j": e.per(tokens) if tokens else None,
        "step_device_power_w": e.device_power_w,
        "step_activity": e.utilization,
        "step_co2_g": e.co2_g,
        "energy_reason": e.reason or None,
    }


def memory_dict(m: MemoryReport) -> dict[str, Any]:
    """`breakdown` is per device of the run's layout; each device row adds the smallest
    layout that fits it (tensor parallel up to 8, then pipeline, then data parallel with
    ZeRO-3) and the step time of the run's layout (null with a reason where it cannot run)."""
    c = m.communication
    return {
        "model": m.workload.key,
        "layout": layout_dict(m.run.layout),
        "how": {  # how the run is done (RunConfig)
            "phase": m.run.phase,
            "micro_batch": m.run.micro_batch_size,
            "recompute": m.run.recompute,
            "attention": m.run.attention,
            "sequence_parallel": m.run.sequence_parallel,
            "fused_epilogues": m.run.fused_epilogues,
            "first_input_grad": m.run.first_input_grad,
            "virtual_stages": m.run.virtual_stages,
            "dp_overlap": m.run.dp_overlap,
        }
        | _lora(m.workload, m.run),
        "breakdown": m.breakdown.as_dict(),
        "communication_bytes": {
            "data": float(c.data_bytes),
            "tensor": float(c.tensor_bytes),
            "pipeline": float(c.pipeline_bytes),
        },
        "devices": [
            _device(f, m.run) | {"step_energy": step_dict(f.energy, step_tokens(m))}
            for f in m.devices
        ],
    }


def memory_rows(m: MemoryReport) -> list[dict[str, Any]]:
    """One flat row per device: the breakdown's parts as `<part>_bytes` columns."""
    parts = {f"{k}_bytes": v for k, v in m.breakdown.as_dict().items()}
    rows = []
    for f in m.devices:
        row = _device(f, m.run)
        row["min_layout"] = layout_text(f.min_layout) if f.min_layout else None
        expected_parts = row.pop("expected_parts_s") or {}
        interval = flat_interval(
            "expected_step_time_interval", row.pop("expected_step_time_interval_s")
        )
        rows.append(
            row
            | interval
            | {f"expected_{k}_s": v for k, v in expected_parts.items()}
            | _energy_columns(f, step_tokens(m))
            | parts
        )
    return rows


def memory_title(m: MemoryReport) -> str:
    run, layout = m.run, m.run.layout
    title = f"{m.workload.name}: {run.phase}, batch {run.batch}, {run.precision}"
    if run.training:
        title += f", {run.optimizer}" + (", full recompute" if run.recompute == "full" else "")
    if layout.devices > 1:
        title += (
            f"; per device of dp {layout.data} x tp {layout.tensor} x pp {layout.pipeline}, "
            f"ZeRO-{layout.zero}"
        )
    return title


def memory_table(m: MemoryReport) -> list[RenderableType]:
    parts = new_table(memory_title(m), ("part", "GB", "GiB"), left=("part",))
    for name, value in m.breakdown.as_dict().items():
        parts.add_row(name, f"{value / 1e9:,.2f}", f"{value / 2**30:,.2f}")
    multi = m.run.layout.devices > 1
    headers = ["device", "memory GB", "fits", "min devices", "smallest layout"]
    if multi:
        headers.append("communication / step")
    headers += ["step bound", "expected", "MFU", "energy / step", "J / token"]
    devices = new_table(
        "Fit per device (GB = 1e9 bytes; min devices: footprint sharded evenly; "
        "smallest layout: dp x tp x pp, ZeRO stage)",
        tuple(headers),
        left=("device", "smallest layout"),
    )
    for f in m.devices:
        row = [
            f.device.key,
            f"{f.device.memory_capacity_bytes / 1e9:,.1f}",
            "yes" if f.fits else "no",
            str(f.min_devices),
            layout_text(f.min_layout),
        ]
        if multi:
            t = f.communication_time_s
            row.append("no interconnect" if t is None else seconds(t))
        total, expected = f.step.total_s, f.step.expected_s
        row.append("-" if total is None else seconds(total))
        row.append("-" if expected is None else with_interval(expected, _interval(f, m.run)[0]))
        row.append("-" if f.step.mfu is None else f"{100 * f.step.mfu:.0f}%")
        e, tokens = f.energy, step_tokens(m)
        per = e.per(tokens) if tokens else None
        row.append("-" if e.energy_j is None else si(e.energy_j, "J"))
        row.append("-" if per is None else f"{per:.3g}")
        devices.add_row(*row)
    out: list[RenderableType] = [parts, devices]
    site = next((f.energy.site for f in m.devices), None)
    if site is not None:
        out.append(
            f"energy / step: the layout's {m.run.layout.devices} device(s) at the step's "
            f"activity (bound / expected) + {site.node_power_w:g} W a device for the node, x "
            f"PUE {site.pue:g}; CO2 in JSON and CSV at {site.grid_g_per_kwh:g} gCO2eq/kWh "
            f"({site.grid}, location-based)"
        )
    reasons = {f.energy.reason for f in m.devices if f.energy.energy_j is None and f.energy.reason}
    out.extend(f"energy '-': {r}" for r in sorted(reasons))
    return out


def _lora(w: Any, run: Any) -> dict[str, Any]:
    """A LoRA fine-tune's settings and its adapters' (trained) parameters; {} otherwise."""
    if run.lora_rank is None:
        return {}
    rank, targets = run.lora_rank, run.lora_targets.split(",")
    return {"lora": {"rank": rank, "targets": targets, "adapter_params": w.trainable_params(run)}}
