"""Result: one workload, one scenario, one device, through the engine: the roofline bound
of every layer and, beside it, the expected time on the real device (efficiency.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calibration import sustained_share
from .efficiency import LOSSES, Ceilings, expected_times
from .hardware import Device, get_device, run_ceilings
from .kernels import RooflineArrays, evaluate
from .layers import LayerTable
from .scenario import RunConfig
from .workloads import Workload, get_workload

# the loss of a whole step below its kernels (calibration.py: the fitted sustained share)
SUSTAINED = "step overhead (fitted)"


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
    time_s: np.ndarray  # (L,) the roofline bound, all repeats
    compute_bound: np.ndarray  # (L,) bool
    expected_time_s: np.ndarray  # (L,) on the real device (= time_s with run.ideal)
    losses: dict[str, np.ndarray]  # (L,) seconds each loss adds to the bound
    ceilings: Ceilings | None  # what the device reaches (None with run.ideal)

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
    def traffic_split(self) -> dict[str, float]:
        """This device's bytes moved (total_bytes) as weights, KV cache and activations
        (LayerTable.traffic_split over the tensor x pipeline share, as `bytes` is)."""
        share = self.run.layout.tensor * self.run.layout.pipeline
        weights, cache, activations = self.layers.traffic_split()
        return {
            "weights": weights / share,
            "kv_cache": cache / share,
            "activations": activations / share,
        }

    @property
    def intensity_overall(self) -> float:
        return self.total_flops / self.total_bytes

    @property
    def total_time_s(self) -> float:
        """Layers run one after another: the step time is the sum of layer times."""
        return float(self.time_s.sum())

    @property
    def total_expected_time_s(self) -> float:
        return float(self.expected_time_s.sum())

    @property
    def mfu(self) -> float:
        """Model FLOPs utilization: the step's FLOPs / (expected time x dense peak)."""
        return self.total_flops / (self.total_expected_time_s * self.peak_flops_per_s)

    @property
    def bound_utilization(self) -> float:
        """The same at the bound: the most any stack could reach."""
        return self.total_flops / (self.total_time_s * self.peak_flops_per_s)

    def loss_totals(self) -> list[tuple[str, float]]:
        """Seconds each loss adds over the whole step, largest first."""
        totals = [(name, float(self.losses[name].sum())) for name in (*LOSSES, SUSTAINED)]
        return sorted(totals, key=lambda kv: -kv[1])

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
    """Build the workload's layer table for `run` and put it through the engine on `device`.

    With a layout (data x tensor x pipeline), one device's share of each layer, as the step
    model counts it (step._stage): the replica's local batch, every row split over the
    tensor ranks, then 1/pipeline of it (an average stage). Communication and the pipeline
    bubble are the step's, not a layer's (`roofline memory`)."""
    w = get_workload(workload) if isinstance(workload, str) else workload
    d = get_device(device) if isinstance(device, str) else device
    run = run or RunConfig()
    peak = d.peak(run.dtype)  # raises a clear error for a dtype the device lacks
    w.check_layout(run.layout)
    # a replica's own run (step.py passes one) keeps its replicated rows as they are
    replica = run.replica() if run.layout.devices > 1 else run
    table = w.layers(replica)
    t = run.layout.tensor  # each rank's share of every row (efficiency.expected_times)
    flops, nbytes = table.total_flops / t, table.total_bytes / t
    out: RooflineArrays = evaluate(
        flops, nbytes, np.array([peak]), np.array([d.memory_bandwidth_bytes_per_s])
    )
    bound = out.time_s[:, 0]
    if run.ideal:
        ceiling = None
        expected = bound.copy()
        losses = {name: np.zeros_like(bound) for name in (*LOSSES, SUSTAINED)}
    else:
        ceiling = run_ceilings(d, run)
        whole = (table.total_flops, table.total_bytes)
        e = expected_times(table, *whole, bound, ceiling, run.training, tensor=t)
        # each layer's kernel time / the share a whole step sustains (step.assemble's
        # "sustained" part, spread over the layers in proportion to their time)
        share = sustained_share(run.training, run.ideal, run.sustained)
        expected = e.time_s / share
        losses = dict(e.losses) | {SUSTAINED: e.time_s * (1 / share - 1)}
    stage = run.layout.pipeline
    if stage > 1:  # the average stage: 1/pipeline of every figure, as step._stage sums
        flops, nbytes, bound, expected = (
            flops / stage,
            nbytes / stage,
            bound / stage,
            expected / stage,
        )
        losses = {name: value / stage for name, value in losses.items()}
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
        time_s=bound,
        compute_bound=out.compute_bound[:, 0],
        expected_time_s=expected,
        losses=losses,
        ceilings=ceiling,
    )
