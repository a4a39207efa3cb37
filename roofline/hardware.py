"""Devices: load, validate and freeze `hardware/*.yaml`; find a device by name or alias.

Long (over 400 lines) on purpose: the one reader of a device file, field by field, beside
the frozen Device it builds and the ceilings derived from it.

Only this module knows the layout of a device file. Quantities are converted to SI here:
FLOP/s, byte/s, byte, watt, second.

Beside the datasheet figures a device file may give what the device reaches in practice
(`efficiency:` measured GEMM FLOP/s per datatype, memory bandwidth, per-kernel overhead,
GEMM tile; each with a source), its `compute_units` (SMs, CUs, MXUs) and its scale-out
`network:` (bandwidth per device and direction, latency, devices per node). What a file
leaves out comes from `hardware/defaults/efficiency.yaml`, by vendor, labelled as a default
(`ceilings`).
A file written by `roofline measure` also names the machine measured (`machine:` its CPU
model, logical cores and memory; no host name), which `roofline check` compares with the
machine it runs on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ._catalog import Catalog
from ._paths import data_dir
from ._schema import Fields, Problems, quantity_schema
from ._yaml import load_yaml_mapping
from .dtypes import DTYPES, attention_dtype, check_dtype
from .efficiency import Ceilings
from .errors import FieldError, SpecError, shown
from .scenario import Cluster, RunConfig
from .units import parse_quantity

INTERCONNECT_COUNTING = ("bidirectional", "per-direction", "aggregate")


@dataclass(frozen=True)
class Measured:
    """A device file's `efficiency:` block: what the device was measured to reach."""

    gemm_flops_per_s: MappingProxyType[str, float]  # best dense GEMM per dtype
    bandwidth_bytes_per_s: float | None  # stream-like copy or triad
    kernel_overhead_s: float | None  # launch + synchronisation of one kernel
    tile: tuple[int, int] | None  # the GEMM library's usual output tile (m, n)
    source: str
    transcendentals_per_s: float | None = None  # exp/tanh evaluations a second
    cache_bytes: float | None = None  # a cache tier: its size and bandwidth
    cache_bandwidth_bytes_per_s: float | None = None
    # per dtype, GEMM FLOP/s by the smallest dimension: ((size, FLOP/s), ...) increasing
    gemm_curve: MappingProxyType[str, tuple[tuple[float, float], ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # per dtype, what a fused FlashAttention kernel reaches (forward + backward, long
    # sequences): its FLOP/s as counted for the attention it computes
    attention_flops_per_s: MappingProxyType[str, float] = field(
        default_factory=lambda: MappingProxyType({})
    )


@dataclass(frozen=True)
class Machine:
    """The machine a device file was measured on (a file's `machine:` block, written by
    `roofline measure`): hardware facts only, no host name. `roofline check` runs a model
    only against a file measured on the machine it runs on."""

    cpu: str  # the CPU model, as the operating system names it
    cores: int  # logical CPUs
    memory_bytes: float  # physical memory


@dataclass(frozen=True)
class Price:
    """What one device costs an hour to rent, in `currency`, where and when (a file's
    `price:` block; a planner overrides it with --price)."""

    per_hour: float
    currency: str  # ISO 4217 code, e.g. USD
    date: str  # when the price was read (prices move fast)
    source: str


@dataclass(frozen=True)
class Power:
    """A device file's `power:` block: the board power at idle and at its most (a measured
    maximum, or the TDP), W, with their source; either may be left out (energy.py fills it
    from hardware/defaults/power.yaml and the TDP)."""

    idle_w: float | None
    max_w: float | None
    source: str


@dataclass(frozen=True)
class Device:
    """One accelerator or processor, in SI units. Peaks are dense (no 2:4 sparsity)."""

    key: str
    name: str
    vendor: str
    release: str
    peak_flops_per_s: MappingProxyType[str, float]
    memory_capacity_bytes: float
    memory_bandwidth_bytes_per_s: float
    memory_type: str
    onchip_cache_bytes: float | None
    interconnect_bandwidth_bytes_per_s: float | None
    interconnect_counting: str | None
    interconnect_type: str | None
    tdp_w: float | None
    source: str
    aliases: tuple[str, ...] = ()
    notes: str = ""
    path: str = field(default="", compare=False)
    compute_units: int | None = None
    measured: Measured | None = None
    network: Cluster | None = None  # the usual node and scale-out network of the device
    is_measured: bool = False  # written by `roofline measure` (no datasheet behind it)
    price: Price | None = None  # per device-hour, with its source and date
    machine: Machine | None = None  # the machine measured (`roofline measure` files only)
    power: Power | None = None  # idle and maximum board power, where sourced

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(d for d in DTYPES if d in self.peak_flops_per_s)

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s for `dtype`; a clear error when the device lacks it."""
        check_dtype(dtype)
        try:
            return self.peak_flops_per_s[dtype]
        except KeyError:
            raise FieldError(
                "dtype",
                dtype,
                f"{self.name} ({self.key}) has no {dtype} peak; "
                f"it supports {', '.join(self.dtypes)}",
            ) from None

    @property
    def sixteen_bit(self) -> str | None:
        """The device's best 16-bit datatype: bf16 where it has a bf16 peak, else fp16,
        else None (a device without 16-bit arithmetic)."""
        return next((t for t in ("bf16", "fp16") if t in self.peak_flops_per_s), None)

    def ridge_point(self, dtype: str) -> float:
        """Arithmetic intensity (FLOP/byte) where the memory roof meets the compute roof."""
        return self.peak(dtype) / self.memory_bandwidth_bytes_per_s

    @property
    def link_bytes_per_s(self) -> float:
        """Scale-up link bandwidth in one direction (byte/s; 0: no interconnect). A
        bidirectional figure counts both directions, so one direction is half of it."""
        bw = self.interconnect_bandwidth_bytes_per_s or 0.0
        return bw / 2 if self.interconnect_counting == "bidirectional" else bw

    @property
    def release_year(self) -> float:
        return fractional_year(self.release)


def fractional_year(date: str) -> float:
    """YYYY-MM or YYYY-MM-DD as a fractional year (mid-month when only the month is known)."""
    parts = [int(p) for p in date.split("-")]
    day = parts[2] if len(parts) > 2 else 15
    return parts[0] + (parts[1] - 1) / 12 + (day - 1) / 365.25


@dataclass(frozen=True)
class DeviceTable:
    """Several devices as columns, for the engine: one dtype's peak and the bandwidth."""

    keys: tuple[str, ...]
    peak_flops_per_s: np.ndarray
    bandwidth_bytes_per_s: np.ndarray

    @classmethod
    def build(cls, devices: list[Device], dtype: str) -> DeviceTable:
        return cls(
            keys=tuple(d.key for d in devices),
            peak_flops_per_s=np.array([d.peak(dtype) for d in devices], dtype=np.float64),
            bandwidth_bytes_per_s=np.array(
                [d.memory_bandwidth_bytes_per_s for d in devices], dtype=np.float64
            ),
        )


def parse_device(data: dict[str, Any], source: str, key: str) -> Device:
    """Validate one device mapping; raise SpecError listing every problem."""
    problems = Problems()
    top = Fields(data, problems)
    name = top.text("name")
    vendor = top.text("vendor")
    release = top.month("release")
    aliases = top.names("aliases", required=False)
    peaks: dict[str, float] = {}
    peak = top.mapping("peak")
    if peak is not None:
        for dtype in DTYPES:
            value = peak.quantity(dtype, "rate", required=False)
            if value is not None:
                peaks[dtype] = value
        peak.done()
        if not peaks and peak.ok:
            problems.append(f"peak: give at least one of {', '.join(DTYPES)}")
    memory = top.mapping("memory")
    capacity = bandwidth = None
    memory_type = None
    if memory is not None:
        capacity = memory.quantity("capacity", "size")
        bandwidth = memory.quantity("bandwidth", "bandwidth")
        memory_type = memory.text("type")
        memory.done()
    cache_bytes = top.quantity("onchip_cache", "size", nullable=True)
    link = top.mapping("interconnect", nullable=True)
    link_bw = link_counting = link_type = None
    if link is not None:
        link_bw = link.quantity("bandwidth", "bandwidth")
        link_counting = link.choice("counted", INTERCONNECT_COUNTING)
        link_type = link.text("type")
        link.done()
    tdp = top.quantity("tdp", "power", nullable=True)
    power = _power(top.mapping("power", required=False))
    units = top.integer("compute_units", required=False)
    is_measured = top.flag("measured", default=False)
    machine = _machine(top.mapping("machine", required=False))
    measured = _measured(top.mapping("efficiency", required=False), peaks, bandwidth)
    network = _network(top.mapping("network", required=False))
    price = _price(top.mapping("price", required=False, nullable=True))
    source_text = top.text("source")
    notes = top.text("notes", required=False) or ""
    top.done()
    if problems:
        raise SpecError(source, problems)
    assert name and vendor and release and capacity and bandwidth and memory_type and source_text
    return Device(
        key=key,
        name=name,
        vendor=vendor,
        release=release,
        peak_flops_per_s=MappingProxyType(peaks),
        memory_capacity_bytes=capacity,
        memory_bandwidth_bytes_per_s=bandwidth,
        memory_type=memory_type,
        onchip_cache_bytes=cache_bytes,
        interconnect_bandwidth_bytes_per_s=link_bw,
        interconnect_counting=link_counting or None,
        interconnect_type=link_type,
        tdp_w=tdp,
        source=source_text,
        aliases=aliases,
        notes=notes,
        path=source,
        compute_units=units,
        measured=measured,
        network=network,
        is_measured=is_measured,
        price=price,
        machine=machine,
        power=power,
    )


def _power(f: Fields | None) -> Power | None:
    """`power: {idle: W, max: W, source}`: idle below max, a source for what is given."""
    if f is None:
        return None
    idle = f.quantity("idle", "power", required=False)
    most = f.quantity("max", "power", required=False)
    text = f.text("source")
    f.done()
    if idle is not None and most is not None and idle >= most:
        f.fail("idle", f"{idle:g} W must be below max ({most:g} W)")
        return None
    if text is None:
        return None
    return Power(idle, most, text)


def _machine(f: Fields | None) -> Machine | None:
    if f is None:
        return None
    cpu = f.text("cpu")
    cores = f.integer("cores")
    memory = f.quantity("memory", "size")
    f.done()
    if cpu is None or cores is None or memory is None:
        return None
    return Machine(" ".join(cpu.split()), cores, memory)


def _price(f: Fields | None) -> Price | None:
    if f is None:
        return None
    per_hour = f.number("per_hour")
    currency = f.text("currency")
    date = f.text("date")
    text = f.text("source")
    f.done()
    if currency is not None and not (len(currency) == 3 and currency.isalpha()):
        f.fail("currency", f"a three-letter currency code such as USD, got {currency!r}")
        return None
    if per_hour is None or not currency or not date or not text:
        return None
    return Price(per_hour, currency.upper(), date, text)


def _tile(f: Fields, key: str = "tile") -> tuple[int, int] | None:
    whole = {"type": "integer", "minimum": 1, "maximum": 4096}
    raw = f.raw(key, {"type": "array", "items": whole, "minItems": 2, "maxItems": 2})
    if raw is None:
        return None
    ok = isinstance(raw, list) and len(raw) == 2
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in raw)
    if not ok:
        f.fail(key, f"expected [m, n], two whole numbers from 1 to 4096, got {shown(raw)}")
        return None
    return (raw[0], raw[1])


def _measured(
    f: Fields | None, peaks: dict[str, float], bandwidth: float | None
) -> Measured | None:
    """The `efficiency:` block; each figure at most the datasheet's."""
    if f is None:
        return None
    gemm = _rates(f.mapping("gemm", required=False), peaks)
    attention = _rates(f.mapping("attention", required=False), peaks)
    bw = f.quantity("memory_bandwidth", "bandwidth", required=False)
    if bw is not None and bandwidth is not None and bw > bandwidth * (1 + 1e-9):
        f.fail("memory_bandwidth", "above the datasheet bandwidth")
    overhead = f.quantity("kernel_overhead", "time", required=False)
    tile = _tile(f)
    trans = f.number("transcendentals_per_s", required=False)
    curve = _gemm_curve(f.mapping("gemm_curve", required=False), peaks)
    cache_size = cache_bw = None
    c = f.mapping("cache", required=False)
    if c is not None:
        cache_size = c.quantity("size", "size")
        cache_bw = c.quantity("bandwidth", "bandwidth")
        c.done()
        if cache_bw is not None and bw is not None and cache_bw <= bw:
            f.fail("cache", "its bandwidth must be above the memory_bandwidth (else leave it out)")
    text = f.text("source")
    f.done()
    return Measured(
        MappingProxyType(gemm),
        bw,
        overhead,
        tile,
        text or "",
        trans,
        cache_size,
        cache_bw,
        MappingProxyType(curve),
        MappingProxyType(attention),
    )


def _rates(g: Fields | None, peaks: dict[str, float]) -> dict[str, float]:
    """A mapping dtype -> measured FLOP/s, each at most the device's dense peak."""
    rates: dict[str, float] = {}
    if g is None:
        return rates
    for dtype in DTYPES:
        value = g.quantity(dtype, "rate", required=False)
        if value is None:
            continue
        if dtype not in peaks:
            g.fail(dtype, "the device has no peak for this datatype")
        elif value > peaks[dtype] * (1 + 1e-9):
            g.fail(dtype, f"{value / 1e12:g} TFLOP/s is above the dense peak")
        else:
            rates[dtype] = value
    g.done()
    return rates


_CURVE_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "array",
        "prefixItems": [{"type": "integer", "minimum": 1}, quantity_schema("rate")],
        "items": False,
        "minItems": 2,
    },
    "description": "[[smallest dimension, rate], ...], dimensions increasing",
}


def _gemm_curve(
    f: Fields | None, peaks: dict[str, float]
) -> dict[str, tuple[tuple[float, float], ...]]:
    """`efficiency.gemm_curve`: per dtype, [[smallest dimension, FLOP/s], ...] with the
    dimensions increasing and each rate at most the dtype's peak."""
    if f is None:
        return {}
    out: dict[str, tuple[tuple[float, float], ...]] = {}
    for dtype in DTYPES:
        raw = f.raw(dtype, _CURVE_SCHEMA)
        if raw is None:
            continue
        if dtype not in peaks:
            f.fail(dtype, "the device has no peak for this datatype")
            continue
        points, problem = _curve_points(raw, peaks[dtype])
        if problem:
            f.fail(dtype, problem)
        else:
            out[dtype] = points
    f.done()
    return out


def _curve_points(raw: Any, peak: float) -> tuple[tuple[tuple[float, float], ...], str]:
    """The checked points of one dtype's curve, or the problem with them."""
    allowed = f"expected [[smallest dimension, rate], ...], dimensions increasing; got {shown(raw)}"
    if not isinstance(raw, list) or not raw:
        return (), allowed
    points: list[tuple[float, float]] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)):
            return (), allowed
        if item[0] < 1 or (points and item[0] <= points[-1][0]):
            return (), allowed
        try:
            rate = parse_quantity(item[1], "rate")
        except ValueError as exc:
            return (), str(exc)
        if rate > peak * (1 + 1e-9):
            return (), f"{rate / 1e12:g} TFLOP/s at {item[0]} is above the dense peak"
        points.append((float(item[0]), rate))
    return tuple(points), ""


def _network(f: Fields | None) -> Cluster | None:
    if f is None:
        return None
    bw = f.quantity("bandwidth", "bandwidth")
    latency = f.quantity("latency", "time")
    node = f.integer("node_size")
    text = f.text("source")
    f.done()
    if bw is None or latency is None or node is None or text is None:
        return None
    return Cluster(node, bw, latency, text)


@dataclass(frozen=True)
class VendorDefaults:
    """Ceilings for devices whose file does not give measured ones (by vendor)."""

    gemm_fraction: float  # achievable GEMM / dense peak
    bandwidth_fraction: float  # achievable / datasheet bandwidth
    kernel_overhead_s: float
    tile: tuple[int, int]
    compute_units: int  # used only where the device file gives none
    collective_efficiency: float  # achieved bus bandwidth / link bandwidth (NCCL-like)
    link_latency_s: float  # one step of a collective on the scale-up link
    collective_latency_s: float  # the fixed cost of one collective call, whatever its steps
    cluster: Cluster  # node size and network where the device file gives none
    source: str
    # groups of datatypes the vendor's hardware runs on one path at one rate (fp16 and bf16
    # on NVIDIA tensor cores): a measured ceiling of one stands for the others of its group
    # on a device whose peaks for them are equal (`ceilings`)
    same_path: tuple[tuple[str, ...], ...] = ()


DEFAULTS_FILE = "defaults/efficiency.yaml"


@cache
def vendor_defaults() -> dict[str, VendorDefaults]:
    """hardware/defaults/efficiency.yaml, read once: vendor -> defaults ("*": any other)."""
    path = data_dir("hardware") / DEFAULTS_FILE
    shown = f"hardware/{DEFAULTS_FILE}"
    problems = Problems()
    top = Fields(load_yaml_mapping(path, shown), problems)
    out: dict[str, VendorDefaults] = {}
    vendors = top.raw("vendors")
    top.done()
    if not isinstance(vendors, dict) or "*" not in vendors:
        problems.append("vendors: a mapping of vendor -> defaults, with a '*' entry")
        vendors = {}
    for vendor, entry in vendors.items():
        f = Fields(entry, problems, f"vendors.{vendor}")
        gemm = f.number("gemm_fraction")
        bw = f.number("bandwidth_fraction")
        overhead = f.quantity("kernel_overhead", "time")
        tile = _tile(f)
        units = f.integer("compute_units")
        coll = f.number("collective_efficiency")
        link_latency = f.quantity("link_latency", "time")
        call_latency = f.quantity("collective_latency", "time")
        cluster = _network(f.mapping("network"))
        same_path = _same_path(f)
        text = f.text("source")
        f.done()
        for name, value in (
            ("gemm_fraction", gemm),
            ("bandwidth_fraction", bw),
            ("collective_efficiency", coll),
        ):
            if value is not None and value > 1:
                f.fail(name, f"a fraction of the datasheet figure, <= 1; got {value}")
        values = (gemm, bw, overhead, tile, units, coll, link_latency, call_latency, cluster, text)
        if None not in values:
            out[str(vendor)] = VendorDefaults(*values, same_path)  # type: ignore[arg-type]
    if problems:
        raise SpecError(shown, problems)
    return out


_SAME_PATH_SCHEMA = {
    "type": "array",
    "items": {"type": "array", "items": {"enum": list(DTYPES)}, "minItems": 2},
    "description": "groups of datatypes run on one hardware path at one rate, e.g. [[fp16, bf16]]",
}


def _same_path(f: Fields) -> tuple[tuple[str, ...], ...]:
    """`same_path:` of a vendor's defaults: [[fp16, bf16], ...], each a known datatype."""
    raw = f.raw("same_path", _SAME_PATH_SCHEMA)
    if raw is None:
        return ()
    ok = isinstance(raw, list) and all(
        isinstance(g, list) and len(g) >= 2 and all(isinstance(d, str) and d in DTYPES for d in g)
        for g in raw
    )
    if not ok:
        f.fail("same_path", f"expected groups of datatypes, e.g. [[fp16, bf16]], got {shown(raw)}")
        return ()
    return tuple(tuple(g) for g in raw)


def _on_path(
    rates: MappingProxyType[str, float], dtype: str, device: Device, base: VendorDefaults
) -> tuple[float | None, str]:
    """A measured rate for `dtype`: the file's own, else that of a datatype the vendor runs
    on the same path at the same peak (`VendorDefaults.same_path`); and the datatype it was
    measured in ("" for none)."""
    if dtype in rates:
        return rates[dtype], dtype
    peak = device.peak_flops_per_s.get(dtype)
    for group in base.same_path:
        if dtype in group:
            for other in group:
                if other in rates and device.peak_flops_per_s.get(other) == peak:
                    return rates[other], other
    return None, ""


def cluster(device: Device, run_cluster: Cluster | None = None) -> Cluster:
    """The node and network a layout of `device` runs on: the run's own, else the device
    file's, else the vendor default."""
    if run_cluster is not None:
        return run_cluster
    if device.network is not None:
        return device.network
    table = vendor_defaults()
    return table.get(device.vendor, table["*"]).cluster


def link_terms(device: Device) -> tuple[float, float, float]:
    """(collective efficiency, per-step latency, per-call latency) of the device's
    scale-up link and its collective library."""
    table = vendor_defaults()
    base = table.get(device.vendor, table["*"])
    return base.collective_efficiency, base.link_latency_s, base.collective_latency_s


def ceilings(device: Device, dtype: str) -> Ceilings:
    """What `device` reaches in practice at `dtype`: its measured figures where its file
    gives them, its vendor's defaults (hardware/defaults/efficiency.yaml) otherwise. A GEMM
    or attention rate measured in another datatype of the same hardware path at the same
    peak (the vendor's `same_path`: fp16 and bf16 on NVIDIA tensor cores) stands for this
    one's, labelled as such in the source."""
    peak = device.peak(dtype)
    table = vendor_defaults()
    base = table.get(device.vendor, table["*"])
    m = device.measured
    gemm, gemm_dtype = _on_path(m.gemm_flops_per_s, dtype, device, base) if m else (None, "")
    attention = _on_path(m.attention_flops_per_s, dtype, device, base)[0] if m else None
    bw = m.bandwidth_bytes_per_s if m else None
    overhead = m.kernel_overhead_s if m else None
    tile = m.tile if m else None
    default = gemm is None or bw is None
    sources = []
    if gemm_dtype not in ("", dtype):
        sources.append(
            f"{dtype} GEMM: the {gemm_dtype} measurement (one {device.vendor} hardware path "
            "at the same peak)"
        )
    if m and not default:
        sources.append(f"measured: {m.source}")
    elif m:
        sources.append(f"measured in part: {m.source}; the rest default for {device.vendor}")
    if default or overhead is None or tile is None or device.compute_units is None:
        who = device.vendor if device.vendor in table else "any vendor"
        sources.append(f"default for {who}: {base.source}")
    tile = tile or base.tile
    return Ceilings(
        flops_per_s=gemm if gemm is not None else peak * base.gemm_fraction,
        bandwidth_bytes_per_s=(
            bw if bw is not None else device.memory_bandwidth_bytes_per_s * base.bandwidth_fraction
        ),
        compute_units=device.compute_units or base.compute_units,
        tile_m=tile[0],
        tile_n=tile[1],
        kernel_overhead_s=overhead if overhead is not None else base.kernel_overhead_s,
        source="; ".join(sources),
        default=default,
        gemm_measured=gemm is not None,
        bandwidth_measured=bw is not None,
        transcendentals_per_s=m.transcendentals_per_s if m else None,
        cache_bytes=m.cache_bytes if m else None,
        cache_bandwidth_bytes_per_s=m.cache_bandwidth_bytes_per_s if m else None,
        gemm_curve=m.gemm_curve.get(dtype) if m else None,
        attention_flops_per_s=attention,
    )


def run_ceilings(device: Device, run: RunConfig) -> Ceilings:
    """`ceilings` at the run's datatype, with the attention rate of the datatype its
    attention computes in (dtypes.attention_dtype: bf16 for an fp8 run unless the run asks
    for fp8 attention): that datatype's measured attention rate, else its GEMM ceiling."""
    c = ceilings(device, run.dtype)
    att = attention_dtype(run.dtype, run.attention_dtype, device.dtypes)
    if att == run.dtype:
        return c
    if att not in device.peak_flops_per_s:
        raise FieldError(
            "attention_dtype",
            att,
            f"{device.name} ({device.key}) has no {att} peak; it supports "
            f"{', '.join(device.dtypes)}",
        )
    other = ceilings(device, att)
    measured = other.attention_flops_per_s
    return replace(
        c,
        attention_flops_per_s=measured if measured else other.flops_per_s,
        attention_kernel=bool(measured),
        attention_dtype=att,
        source=f"{c.source}; attention in {att}",
    )


def _load(path: Path, shown: str) -> Device:
    return parse_device(load_yaml_mapping(path, shown), shown, path.stem.lower())


DEVICES: Catalog[Device] = Catalog("hardware", "device", "device", _load)


def load_device_file(path: str | os.PathLike[str]) -> Device:
    """Load a device from any YAML file of the hardware schema."""
    return DEVICES.load_file(path)


def list_devices() -> list[Device]:
    """All shipped devices, oldest first."""
    return sorted(DEVICES.items.values(), key=lambda d: (d.release, d.key))


def get_device(name: str) -> Device:
    """A device by key, alias, or path to a YAML file of the same schema."""
    return DEVICES.get(name)
