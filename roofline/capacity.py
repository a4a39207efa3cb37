"""Capacity: the memory command's answer for one run on a list of devices, in one call.

For the run's layout: the per-device footprint, the layout's communication; for each
device: whether the layout fits, how many devices the whole footprint needs when sharded
evenly, the smallest layout that fits (`parallel.min_layout`), and the step time of the
run's layout on that device, bound and expected (`step.step_time`), with the step's energy
on the layout's devices (`energy.step_energy`: each at the activity bound / expected).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .energy import Energy, Site, step_energy
from .hardware import Device
from .memory import MemoryBreakdown, memory_breakdown
from .parallel import Communication, communication, min_layout
from .scenario import Layout, RunConfig
from .step import StepTime, step_time
from .workloads import Workload


@dataclass(frozen=True)
class DeviceFit:
    device: Device
    fits: bool  # the run's layout fits this device's memory
    min_devices: int  # devices the whole footprint needs when every part is sharded evenly
    min_layout: Layout | None  # None: no layout within the search fits
    communication_time_s: float | None  # None: no interconnect for a multi-device layout
    step: StepTime
    energy: Energy  # the step on all the layout's devices (None figures with the reason)


@dataclass(frozen=True)
class MemoryReport:
    workload: Workload
    run: RunConfig
    breakdown: MemoryBreakdown  # per device of run.layout
    whole: MemoryBreakdown  # the run on one device
    communication: Communication
    devices: tuple[DeviceFit, ...]


def memory_report(
    w: Workload, run: RunConfig, devices: list[Device], site: Site | None = None
) -> MemoryReport:
    """The report of the module docstring; the energy at `site` (energy.site()'s sourced
    defaults where None)."""
    breakdown = memory_breakdown(w, run)
    whole = memory_breakdown(w, replace(run, layout=Layout()))
    comm = communication(w, run)
    rows = []
    for d in devices:
        comm_time = comm.time_s(d)
        step = step_time(w, run, d)
        rows.append(
            DeviceFit(
                device=d,
                fits=float(breakdown.total) <= d.memory_capacity_bytes,
                min_devices=max(1, math.ceil(float(whole.total) / d.memory_capacity_bytes)),
                min_layout=min_layout(w, run, d),
                communication_time_s=comm_time if math.isfinite(comm_time) else None,
                step=step,
                energy=step_energy(step, d, run.layout.devices, site),
            )
        )
    return MemoryReport(w, run, breakdown, whole, comm, tuple(rows))
