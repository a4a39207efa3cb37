"""The memory wall from the tool's own data: growth rates of device peaks, bandwidths and
capacities over release dates, and what they mean for one workload, generation after
generation.

Conventions, as in Gholami et al.'s Fig. 1: a device's FLOP/s is its dense 16-bit tensor peak
(fp16, else bf16) where it has one, else its fp32 peak; DRAM bandwidth and capacity are per
device; interconnect is the device's scale-up link bandwidth (the paper plots per-lane
signalling rates of PCIe/NVLink generations instead; devices without a link are left out).
Growth per two years is exp(2 x slope) of a least-squares line through log(value) vs year.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import RooflineError
from .hardware import Device
from .scenario import RunConfig
from .workloads import Workload

# The paper's headline growth per two years (Gholami et al. 2024, abstract and Fig. 1-2).
PAPER_RATES = {
    "peak_flops": 3.0,
    "dram_bandwidth": 1.6,
    "interconnect_bandwidth": 1.4,
    "memory_capacity": 2.0,
}

# The paper's curated set: the flagship training accelerators its figures draw, to 2022
# (Fig. 1 names GTX 580 ... A100, H100, TPU v3, v4; Fig. 2 P100, V100 32 GB, TPU v2, v3,
# A100 40/80 GB, H100; Fig. 4's memory line GTX 580, K40, Titan X, P100, V100 16/32 GB; see
# ../shared/reference/ai-and-memory-wall.md). Inference cards (T4, A10, L4) are left out.
PAPER_DEVICES = (
    "gtx-580",
    "k40",
    "titan-x",
    "p100",
    "v100",
    "v100-32gb",
    "tpu-v2",
    "tpu-v3",
    "tpu-v4",
    "a100-40gb",
    "a100",
    "h100",
)


def headline_dtype(device: Device) -> str:
    for dtype in ("fp16", "bf16", "fp32"):
        if dtype in device.peak_flops_per_s:
            return dtype
    raise RooflineError(f"{device.key}: no fp16, bf16 or fp32 peak to compare generations with")


def series(devices: list[Device]) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """name -> (release years, values in SI units, device keys), oldest first."""
    ordered = sorted(devices, key=lambda d: d.release_year)
    out = {}
    picks: dict[str, Callable[[Device], float | None]] = {
        "peak_flops": lambda d: d.peak(headline_dtype(d)),
        "dram_bandwidth": lambda d: d.memory_bandwidth_bytes_per_s,
        "interconnect_bandwidth": lambda d: d.interconnect_bandwidth_bytes_per_s,
        "memory_capacity": lambda d: d.memory_capacity_bytes,
    }
    for name, pick in picks.items():
        kept = [d for d in ordered if pick(d)]
        out[name] = (
            np.array([d.release_year for d in kept]),
            np.array([pick(d) for d in kept], dtype=np.float64),
            [d.key for d in kept],
        )
    return out


@dataclass(frozen=True)
class Trend:
    growth_per_2y: float
    slope: float  # natural log per year
    intercept: float
    points: int

    def at(self, year: np.ndarray | float) -> np.ndarray:
        return np.exp(self.intercept + self.slope * np.asarray(year))


def fit_trend(years: np.ndarray, values: np.ndarray) -> Trend:
    """Least-squares line through (year, ln value)."""
    if len(years) < 2 or np.ptp(years) == 0:
        raise RooflineError("a growth rate needs at least two release dates")
    slope, intercept = np.polyfit(years, np.log(values), 1)
    return Trend(float(np.exp(2 * slope)), float(slope), float(intercept), len(years))


def rates(devices: list[Device]) -> dict[str, Trend]:
    return {name: fit_trend(y, v) for name, (y, v, _) in series(devices).items() if len(y) >= 2}


@dataclass(frozen=True)
class Generation:
    device: Device
    dtype: str
    ridge_point: float
    time_s: float
    memory_bound_share: float
    fraction_of_peak: float
    speedup: float  # over the oldest device
    speedup_if_bandwidth_kept_pace: float  # bandwidth grown as fast as peak FLOP/s since the oldest


def generations(workload: Workload, devices: list[Device], run: RunConfig) -> list[Generation]:
    """One workload on every device, oldest first, each at its headline datatype."""
    from dataclasses import replace

    from .analysis import analyze

    ordered = sorted(devices, key=lambda d: d.release_year)
    if not ordered:
        raise RooflineError("no devices to compare")
    results = []
    for d in ordered:
        dtype = headline_dtype(d)
        results.append((d, dtype, analyze(workload, d, replace(run, dtype=dtype))))
    base_device, base_dtype, base = results[0]
    base_peak = base_device.peak(base_dtype)
    base_bw = base_device.memory_bandwidth_bytes_per_s
    out = []
    for d, dtype, r in results:
        # the same device had its bandwidth grown by the same factor as its peak
        kept_pace = base_bw * d.peak(dtype) / base_peak
        hypothetical = float(np.sum(np.maximum(r.flops / d.peak(dtype), r.bytes / kept_pace)))
        out.append(
            Generation(
                device=d,
                dtype=dtype,
                ridge_point=r.ridge_point,
                time_s=r.total_time_s,
                memory_bound_share=r.memory_bound_time_share,
                fraction_of_peak=r.achieved_flops_per_s / r.peak_flops_per_s,
                speedup=base.total_time_s / r.total_time_s,
                speedup_if_bandwidth_kept_pace=base.total_time_s / hypothetical,
            )
        )
    return out
