"""Devices: load, validate and freeze `hardware/*.yaml`; find a device by name or alias.

Only this module knows the layout of a device file. Quantities are converted to SI here:
FLOP/s, byte/s, byte, watt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ._catalog import Catalog
from ._schema import Fields, Problems
from ._yaml import load_yaml_mapping
from .dtypes import DTYPES, check_dtype
from .errors import FieldError, SpecError

INTERCONNECT_COUNTING = ("bidirectional", "per-direction", "aggregate")


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
