"""The per-layer roofline of one run: rows, JSON, table, DataFrame."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import ceiling_dict, count, interval_fields, new_table, seconds, si, with_interval

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import RenderableType

    from ..analysis import Result
    from ..intervals import Interval


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
            "expected_time_s": float(result.expected_time_s[i]),
        }
        for i in range(len(t))
    ]


def expected_interval(result: Result) -> tuple[Interval | None, str]:
    """The expected time's interval (intervals.yaml, training or serving by the phase)."""
    from ..intervals import expected_interval as interval_of

    run = result.run
    return interval_of(
        result.total_expected_time_s, run.phase, ideal=run.ideal, sustained=run.sustained
    )


def summary(result: Result) -> dict[str, Any]:
    iv, why = expected_interval(result)
    return {
        "params": result.params,
        "flops": result.total_flops,
        "bytes": result.total_bytes,
        "bytes_by_kind": result.traffic_split,
        "intensity": result.intensity_overall,
        "time_s": result.total_time_s,
        "memory_bound_time_share": result.memory_bound_time_share,
        "ridge_point": result.ridge_point,
        "peak_flops_per_s": result.peak_flops_per_s,
        "memory_bandwidth_bytes_per_s": result.device.memory_bandwidth_bytes_per_s,
        "achieved_flops_per_s": result.achieved_flops_per_s,
        "fraction_of_peak": result.achieved_flops_per_s / result.peak_flops_per_s,
        "top_layers": [{"name": n, "time_share": s} for n, s in result.top_layers(3)],
        "expected_time_s": result.total_expected_time_s,
        **interval_fields("expected_time_interval", iv, why),
        "mfu": result.mfu,
        "losses_s": dict(result.loss_totals()),
        "ceilings": None if result.ceilings is None else ceiling_dict(result.ceilings),
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
            "weights": result.run.weights or result.run.dtype,
            "kv_dtype": result.run.kv_dtype or result.run.dtype,
            "phase": result.run.phase,
            "ideal": result.run.ideal,
            "attention": result.run.attention,
            "logits": result.run.logits,
            "fused_epilogues": result.run.fused_epilogues,
            "layout": {
                "data": result.run.layout.data,
                "tensor": result.run.layout.tensor,
                "pipeline": result.run.layout.pipeline,
                "zero": result.run.layout.zero,
            },
        }
        | ({"context": result.run.context or result.seq} if result.run.phase == "decode" else {})
        | (
            {"first_input_grad": result.run.first_input_grad}
            if result.run.phase == "training"
            else {}
        )
        | (
            {"lora_rank": result.run.lora_rank, "lora_targets": result.run.lora_targets}
            if result.run.lora_rank is not None
            else {}
        ),
        "summary": summary(result),
        "layers": layer_rows(result),
    }


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


def result_table(result: Result) -> list[RenderableType]:
    r = result
    scenario = [r.run.phase, f"batch {r.run.batch}"]
    if r.seq is not None:
        scenario.append(f"seq {r.seq}")
    if r.run.phase == "decode":
        scenario.append(f"context {r.run.context or r.seq}")
    lay = r.run.layout
    if lay.devices > 1:  # the table is one device's share
        scenario.append(f"one device of {lay.data} x tp {lay.tensor} x pp {lay.pipeline}")
    title = f"{r.workload.name} on {r.device.name}: {', '.join(scenario)}, {r.run.precision}"
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
        "expected",
    )
    table = new_table(title, headers, left=("layer", "kind", "bound"))
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
            seconds(row["expected_time_s"]),
        )
    top = ", ".join(f"{n} {100 * s:.0f}%" for n, s in r.top_layers(3))
    lines = [
        f"parameters      {count(r.params)}",
        f"total compute   {si(r.total_flops, 'FLOP')}",
        f"total traffic   {si(r.total_bytes, 'B')}  (GB = 1e9 bytes): "
        + ", ".join(
            f"{si(v, 'B')} {name.replace('kv_cache', 'KV cache')}"
            for name, v in r.traffic_split.items()
        ),
        f"intensity       {r.intensity_overall:,.1f} FLOP/B  "
        f"(ridge point of {r.device.key} at {r.run.dtype}: {r.ridge_point:,.1f} FLOP/B)",
        f"roofline bound  {seconds(r.total_time_s)}  "
        f"({si(r.achieved_flops_per_s, 'FLOP/s')} = {100 * r.bound_utilization:.1f}% "
        f"of the {si(r.peak_flops_per_s, 'FLOP/s')} peak)",
        f"expected time   {with_interval(r.total_expected_time_s, expected_interval(r)[0])}  "
        f"(MFU {100 * r.mfu:.1f}%)" + ("  [--ideal: no efficiency terms]" if r.run.ideal else ""),
        f"memory-bound    {100 * r.memory_bound_time_share:.1f}% of the bound time",
        f"top layers      {top}",
    ]
    if r.ceilings is not None:
        gap = ", ".join(
            f"{name} +{seconds(v)}" for name, v in r.loss_totals() if v > 0.005 * r.total_time_s
        )
        c = r.ceilings
        label = "measured GEMM" if c.gemm_measured else "default"
        attention = ""
        if c.attention_dtype and c.attention_flops_per_s:
            attention = (
                f", attention in {c.attention_dtype} {si(c.attention_flops_per_s, 'FLOP/s')}"
            )
        lines += [
            f"why slower      {gap or 'nothing of note'}",
            f"ceilings        {si(c.flops_per_s, 'FLOP/s')} GEMM{attention}, "
            f"{si(c.bandwidth_bytes_per_s, 'B/s')} memory, {c.compute_units} units, "
            f"{seconds(c.kernel_overhead_s)} a kernel ({label}; `roofline hardware show`)",
        ]
    return [table, "\n".join(lines)]
