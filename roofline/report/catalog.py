"""The device database and the model catalog as rows, JSON and tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import ceiling_dict, count, new_table

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..hardware import Device
    from ..workloads import Workload


def device_rows(devices: list[Device]) -> list[dict[str, Any]]:
    return [device_dict(d) for d in devices]


def device_csv_rows(devices: list[Device]) -> list[dict[str, Any]]:
    """Flat rows: one `peak_<dtype>_flops_per_s` column per datatype (empty where absent)."""
    rows = []
    for row in device_rows(devices):
        peaks = row.pop("peak_flops_per_s")
        ceiling = row.pop("ceilings")
        row.pop("aliases")
        network = row.pop("network") or {}
        price = row.pop("price") or {}
        rows.append(
            row
            | {f"peak_{k}_flops_per_s": v for k, v in peaks.items()}
            | {f"achievable_{k}_flops_per_s": c["gemm_flops_per_s"] for k, c in ceiling.items()}
            | {f"network_{k}": v for k, v in network.items()}
            | {f"price_{k}": v for k, v in price.items()}
        )
    return rows


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
        "price": None
        if d.price is None
        else {
            "per_hour": d.price.per_hour,
            "currency": d.price.currency,
            "date": d.price.date,
            "source": d.price.source,
        },
        "source": d.source,
        "notes": d.notes,
        "ceilings": {dt: _ceiling_dict(d, dt) for dt in d.dtypes},
        "network": None
        if d.network is None
        else {
            "bandwidth_bytes_per_s": d.network.network_bandwidth_bytes_per_s,
            "latency_s": d.network.network_latency_s,
            "node_size": d.network.node_size,
            "source": d.network.source,
        },
    }


def _ceiling_dict(d: Device, dtype: str) -> dict[str, Any]:
    from ..hardware import ceilings

    return ceiling_dict(ceilings(d, dtype))


def _ceiling_lines(d: Device) -> list[str]:
    """What the device reaches in practice, per dtype; defaults said to be defaults."""
    from ..hardware import ceilings

    lines = ["achievable (expected-time model)"]
    for dt in d.dtypes:
        c = ceilings(d, dt)
        label = "measured" if c.gemm_measured else "default"
        lines.append(
            f"  {dt:5} {c.flops_per_s / 1e12:10,.2f} {'TOP/s' if dt == 'int8' else 'TFLOP/s'}"
            f"   ({100 * c.flops_per_s / d.peak(dt):.0f}% of peak, {label})"
        )
    for dt in d.dtypes:
        a = ceilings(d, dt).attention_flops_per_s
        if a:
            lines.append(
                f"  {dt:5} {a / 1e12:10,.2f} TFLOP/s   ({100 * a / d.peak(dt):.0f}% of peak, "
                "measured): a fused attention kernel (FlashAttention)"
            )
    from ..hardware import cluster

    c = ceilings(d, d.dtypes[0])
    net = cluster(d)
    label = "device file" if d.network is not None else "vendor default"
    lines += [
        f"  network {net.network_bandwidth_bytes_per_s / 1e9:,.1f} GB/s a device and direction "
        f"between nodes of {net.node_size}, {net.network_latency_s * 1e6:g} us ({label})",
        f"  memory {c.bandwidth_bytes_per_s / 1e9:9,.1f} GB/s "
        f"({100 * c.bandwidth_bytes_per_s / d.memory_bandwidth_bytes_per_s:.0f}% of datasheet, "
        f"{'measured' if c.bandwidth_measured else 'default'})",
        f"  {c.compute_units} compute units, GEMM tile {c.tile_m}x{c.tile_n}, "
        f"{c.kernel_overhead_s * 1e6:g} us a kernel",
    ]
    if c.cache_bytes and c.cache_bandwidth_bytes_per_s:
        lines.append(
            f"  cache {c.cache_bytes / 2**20:,.1f} MiB at "
            f"{c.cache_bandwidth_bytes_per_s / 1e9:,.1f} GB/s (a layer instance that fits)"
        )
    if c.transcendentals_per_s:
        lines.append(f"  transcendentals {c.transcendentals_per_s / 1e9:,.3f} G evaluations/s")
    lines.append(f"  source: {c.source}")
    return lines


def device_list_table(devices: list[Device]) -> RenderableType:
    headers = ("key", "device", "released", "fp16/bf16 TFLOP/s", "memory GB", "GB/s", "aliases")
    table = new_table(
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
            *_ceiling_lines(d),
            f"TDP           {opt(d.tdp_w, '{:,.0f} W')}",
            f"price         {_price_line(d)}",
            f"source        {d.source}",
            f"notes         {d.notes or '-'}",
        ]
    )


def _price_line(d: Device) -> str:
    p = d.price
    if p is None:
        return "- (none in the file; whatif --price sets one)"
    return f"{p.per_hour:,.4g} {p.currency} a device-hour ({p.date}; {p.source})"


def workload_dict(w: Workload) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "key": w.key,
        "name": w.name,
        "family": w.family,
        "aliases": list(w.aliases),
        "description": w.description,
        "architecture": w.arch.describe(),
        "published": asdict(w.published),
        "sources": list(w.sources),
    }


def workload_detail(w: Workload) -> str:
    """`models show`: one model for people (JSON carries every field)."""
    arch = w.arch.describe()
    shown_arch = []
    for key, value in arch.items():
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
            shown_arch.append(f"{key}: {len(value)} ops (the graph: -f json)")
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], tuple):
            shown_arch.append(f"{key} ({', '.join(f'{k} {v}' for k, v in value)})")
        elif isinstance(value, (list, tuple)):
            shown_arch.append(f"{key} {' x '.join(str(v) for v in value)}")
        elif value not in (0, False, "", None):  # leave out what is off or absent
            shown_arch.append(f"{key} {value}")
    wrapped = _wrap(", ".join(shown_arch), 14)
    p = w.published
    computed = count(w.params)
    if w.active_params != w.params:
        computed += f" ({count(w.active_params)} active per token)"
    if p.params:
        computed += f" computed; {count(p.params)} published ({w.params / p.params - 1:+.1%})"
    figures = [
        f"inference {p.inference_flops / 1e9:,.4g} GFLOP published" if p.inference_flops else "",
        f"training {p.training_flops / 1e15:,.4g} PFLOP published" if p.training_flops else "",
    ]
    lines = [
        f"{w.name}  [{w.key}]  ({w.path})",
        f"family        {w.family}",
        f"aliases       {', '.join(w.aliases) or '-'}",
    ]
    if w.description:
        lines.append(f"description   {_wrap(w.description, 14)}")
    lines += [
        f"published     {p.date or 'no date'}"
        + (f", input {p.input_size}" if p.input_size else ""),
        f"parameters    {computed}",
    ]
    if any(figures):
        lines.append(f"FLOPs         {'; '.join(f for f in figures if f)}")
    if w.training is not None:
        t = w.training
        seq = f" x {t.seq} tokens" if t.seq else ""
        lines.append(f"training run  {t.samples:,.4g} samples{seq}, {t.optimizer}")
    lines.append(f"architecture  {wrapped}")
    lines.append("sources       " + "\n              ".join(_wrap(s, 14) for s in w.sources))
    for e in w.errata:
        lines.append(f"erratum       {e.metric}: {_wrap(e.reason, 14)}")
    return "\n".join(lines) + "\n"


def _wrap(text: str, indent: int, width: int = 96) -> str:
    import textwrap

    return ("\n" + " " * indent).join(textwrap.wrap(text, width - indent)) or "-"


def workload_list_table(workloads: list[Workload], params: list[float]) -> RenderableType:
    table = new_table(
        "Models (parameters computed from the architecture)",
        ("key", "model", "family", "date", "params", "aliases"),
        left=("key", "model", "family", "date", "aliases"),
    )
    for w, p in zip(workloads, params):
        table.add_row(
            w.key, w.name, w.family, w.published.date or "-", count(p), ", ".join(w.aliases)
        )
    return table
