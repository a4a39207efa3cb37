"""The time of one step of a layout on one device type: the roofline bound and the
expected time, with the parts of the difference named.

Bound (the roofline; unchanged by any efficiency term):
  compute        the replica's roofline time over tensor x pipeline devices (no bubble)
  communication  the layout's traffic (parallel.traffic) on the scale-up link, one
                 direction, not overlapped

Expected (a layout of t x pp x d devices; m micro-batches of b samples per replica):
  stage      E: one micro-batch on one device: the model's layers at batch b, FLOPs and
             bytes / t (a GEMM's n / t too), each layer's expected time (efficiency.py),
             / pp. Kernel launches are not divided by t: every device launches every
             kernel of its stage
  recompute  R: the forward time again of what recomputation recomputes (full: the
             repeated blocks; selective: the attention core), per micro-batch
  compute    m x (E + R)
  bubble     (pp - 1) x (E + R): 1F1B's fill and drain (Narayanan et al. 2021)
  tensor     m x the micro-batch's tensor-parallel all-reduces
  pipeline   m x the micro-batch's stage-boundary sends (and gradients back)
  data       the gradient all-reduce (ZeRO-3: 1.5x), of which RunConfig.dp_overlap is
             hidden behind the backward pass
A collective over a group of n devices takes bytes / (bandwidth x efficiency) + steps x
latency (ring: 2 (n - 1) steps for an all-reduce, one for a send). The group runs on the
scale-up link while it stays inside a node (tensor groups are innermost, then data, then
pipeline, as Megatron-LM orders ranks), on the network otherwise.
MFU = the step's model FLOPs per device / (expected time x dense peak); HFU adds the
recomputed FLOPs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .collectives import allreduce_bytes
from .dtypes import BYTES_PER_ELEMENT
from .efficiency import expected_times
from .errors import FieldError
from .hardware import Device, ceilings, cluster, link_terms
from .kernels import evaluate
from .parallel import communication
from .scenario import RunConfig
from .workloads import Workload


@dataclass(frozen=True)
class StepTime:
    """One step of a layout on one device type. Times in seconds; None with a reason where
    the device cannot run it (no such datatype, no interconnect for a multi-device layout).
    `parts` name what the expected time is made of (compute, recompute, bubble, tensor,
    pipeline, data)."""

    compute_s: float | None  # bound
    communication_s: float | None  # bound
    reason: str = ""
    expected_s: float | None = None
    parts: tuple[tuple[str, float], ...] = ()
    mfu: float | None = None
    hfu: float | None = None

    @property
    def total_s(self) -> float | None:
        """The roofline bound of the step."""
        if self.compute_s is None or self.communication_s is None:
            return None
        return self.compute_s + self.communication_s


def _stage(w: Workload, run: RunConfig, device: Device, rows: str) -> tuple[float, float, float]:
    """(expected seconds, bound seconds, FLOPs) of one micro-batch of `run` on one device
    of the layout: the whole model's layers / tensor / pipeline. rows: "all", or the rows a
    recomputation runs again ("full", "selective"), forward only."""
    t, pp = run.layout.tensor, run.layout.pipeline
    micro = replace(run.replica(), batch=run.micro_batch_size)
    if rows != "all":
        micro = replace(micro, phase="inference")
    table = w.layers(micro)
    keep = np.ones(len(table), dtype=bool)
    if rows == "full":
        keep = table.count > 1  # the repeated blocks
    elif rows == "selective":
        keep = w.arch.attention_core(table)
    flops, nbytes = table.total_flops / t, table.total_bytes / t
    peak = device.peak(run.dtype)
    bound = evaluate(
        flops, np.maximum(nbytes, 1e-30), [peak], [device.memory_bandwidth_bytes_per_s]
    ).time_s[:, 0]
    if run.ideal:
        expected = bound
    else:
        split = replace(table, gemm_n=np.maximum(table.gemm_n / t, 1.0))
        c = ceilings(device, run.dtype)
        expected = expected_times(split, flops, nbytes, bound, c, micro.training).time_s
    return (
        float(expected[keep].sum()) / pp,
        float(bound[keep].sum()) / pp,
        float(flops[keep].sum()) / pp,
    )


def _collective(
    nbytes: float, n: int, steps: float, inside_node: bool, device: Device, run: RunConfig
) -> float:
    """Seconds of one collective of `nbytes` per device over a group of n."""
    if nbytes <= 0 or n <= 1:
        return 0.0
    efficiency, link_latency = link_terms(device)
    if inside_node:
        bw, latency = device.link_bytes_per_s, link_latency
    else:
        net = cluster(device, run.cluster)
        bw, latency = net.network_bandwidth_bytes_per_s, net.network_latency_s
    if not run.ideal:
        bw *= efficiency
    else:
        latency = 0.0
    return nbytes / bw + steps * latency if bw > 0 else math.inf


def _expected(w: Workload, run: RunConfig, device: Device) -> StepTime:
    layout = run.layout
    t, pp, d = layout.tensor, layout.pipeline, layout.data
    m = run.micro_batches
    stage, _, flops = _stage(w, run, device, "all")
    recompute = recompute_flops = 0.0
    if run.training and run.recompute != "none":
        recompute, _, recompute_flops = _stage(w, run, device, run.recompute)
    node = cluster(device, run.cluster).node_size
    nb = BYTES_PER_ELEMENT[run.dtype]
    micro = replace(run.replica(), batch=run.micro_batch_size)
    boundary = w.arch.boundary_elements(micro) * nb
    passes = 2 if run.training else 1
    split = w.arch.tensor_split
    tensor = 0.0
    if t > 1 and split is not None:
        per = allreduce_bytes(t, boundary)
        calls = passes * split.allreduces_per_block * w.arch.blocks / pp
        one = _collective(per, t, 2 * (t - 1), t <= node, device, run)
        tensor = m * calls * one
    pipeline = 0.0
    if pp > 1:
        send = _collective(boundary / t, 2, 1, t * d * pp <= node, device, run)
        pipeline = m * passes * send
    data = 0.0
    if run.training and d > 1:
        grads = w.params * nb / (t * pp)
        factor = 1.5 if layout.zero >= 3 else 1.0
        reduce = _collective(
            factor * allreduce_bytes(d, grads), d, 2 * (d - 1), t * d <= node, device, run
        )
        data = (1 - run.dp_overlap) * reduce
    parts = (
        ("compute", m * stage),
        ("recompute", m * recompute),
        ("bubble", (pp - 1) * (stage + recompute)),
        ("tensor", tensor),
        ("pipeline", pipeline),
        ("data", data),
    )
    total = sum(v for _, v in parts)
    peak = device.peak(run.dtype)
    model_flops = m * flops
    return StepTime(
        compute_s=None,
        communication_s=None,
        expected_s=total,
        parts=parts,
        mfu=model_flops / (total * peak) if math.isfinite(total) else None,
        hfu=(model_flops + m * recompute_flops) / (total * peak) if math.isfinite(total) else None,
    )


def step_time(w: Workload, run: RunConfig, device: Device) -> StepTime:
    from .analysis import analyze

    w.check_layout(run.layout)
    try:
        compute = analyze(w, device, run.replica()).total_time_s / run.layout.model_split
    except FieldError as exc:  # the device lacks the datatype
        return StepTime(None, None, exc.problem)
    comm = communication(w, run).time_s(device)
    if comm == math.inf:
        return StepTime(compute, None, f"{device.key} has no scale-up interconnect in its file")
    e = _expected(w, run, device)
    return replace(e, compute_s=compute, communication_s=comm)
