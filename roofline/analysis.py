"""Result: one workload, one scenario, one device, through the engine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .hardware import Device, get_device
from .kernels import RooflineArrays, evaluate
from .layers import LayerTable
from .scenario import RunConfig
from .workloads import Workload, get_workload


@dataclass(frozen=True)
class Result:
    """Per-layer roofline of `workload` under `run` on `device`; costs cover all repeats."""

    workload: Workload
    device: Device
    run: RunConfig
    seq: int | None  # None: the model takes no sequence (CNN, recsys)
    layers: LayerTable
    flops: np.ndarray  # (L,) FLOP, all `count` repeats
    bytes: np.ndarray  # (L,) byte, all repeats
    intensity: np.ndarray  # (L,) FLOP/byte
    attainable_flops_per_s: np.ndarray  # (L,)
    time_s: np.ndarray  # (L,) all repeats
    compute_bound: np.ndarray  # (L,) bool

    @property
    def peak_flops_per_s(self) -> float:
        return self.device.peak(self.run.dtype)

    @property
    def ridge_point(self) -> float:
        return self.device.ridge_point(self.run.dtype)

    @property
    def total_flops(self) -> float:
        return float(self.flops.sum())

    @property
    def total_bytes(self) -> float:
        return float(self.bytes.sum())

    @property
    def intensity_overall(self) -> float:
        return self.total_flops / self.total_bytes

    @property
    def total_time_s(self) -> float:
        """Layers run one after another: the step time is the sum of layer times."""
        return float(self.time_s.sum())

    @property
    def memory_bound_time_share(self) -> float:
        return float(self.time_s[~self.compute_bound].sum() / self.total_time_s)

    @property
    def achieved_flops_per_s(self) -> float:
        return self.total_flops / self.total_time_s

    @property
    def params(self) -> float:
        return self.layers.total_params

    def top_layers(self, n: int = 3) -> list[tuple[str, float]]:
        """The `n` layers that take the most time, with their share of the total."""
        order = np.argsort(-self.time_s, kind="stable")[:n]
        return [
            (str(self.layers.name[i]), float(self.time_s[i] / self.total_time_s)) for i in order
        ]


def analyze(workload: Workload | str, device: Device | str, run: RunConfig | None = None) -> Result:
    """Build the workload's layer table for `run` and put it through the engine on `device`."""
    w = get_workload(workload) if isinstance(workload, str) else workload
    d = get_device(device) if isinstance(device, str) else device
    run = run or RunConfig()
    peak = d.peak(run.dtype)  # raises a clear error for a dtype the device lacks
    table = w.layers(run)
    flops, nbytes = table.total_flops, table.total_bytes
    out: RooflineArrays = evaluate(
        flops, nbytes, np.array([peak]), np.array([d.memory_bandwidth_bytes_per_s])
    )
    return Result(
        workload=w,
        device=d,
        run=run,
        seq=run.seq if run.seq is not None else w.arch.default_seq,
        layers=table,
        flops=flops,
        bytes=nbytes,
        intensity=out.intensity,
        attainable_flops_per_s=out.attainable_flops_per_s[:, 0],
        time_s=out.time_s[:, 0],
        compute_bound=out.compute_bound[:, 0],
    )
