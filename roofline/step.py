"""The time of one step of a layout on one device type: the roofline bound and the
expected time, with the parts of the difference named.

Bound (the roofline; unchanged by any efficiency term):
  compute        the replica's roofline time over tensor x pipeline devices (no bubble)
  communication  the layout's traffic (parallel.traffic: the bytes of its collectives) on
                 the scale-up link, one direction, not overlapped

Expected (a layout of t x pp x d devices; m micro-batches of b samples per replica):
  stage      E: one micro-batch on one device: the model's layers at batch b, FLOPs and
             bytes / t (a GEMM's n / t too), each layer's expected time (efficiency.py),
             / pp. Kernel launches are not divided by t: every device launches every
             kernel of its stage
  recompute  R: the forward time again of what recomputation recomputes (full: the
             repeated blocks; selective: the attention core), per micro-batch
  compute    m x (E + R)
  bubble     (pp - 1) x (E + R) / v: 1F1B's fill and drain, v interleaved model chunks a
             rank (Narayanan et al. 2021; v = 1: plain 1F1B)
  sustained  (1 / s - 1) x (compute + recompute + bubble): s, the share of the kernels'
             throughput a whole step sustains, one for training steps and one for
             inference steps, are the model's two fitted parameters (calibration.py:
             each fitted on half its measured runs, reported on the other half); 0 with
             RunConfig.ideal
  tensor     m x the micro-batch's tensor-parallel all-reduces     } the collectives of
  pipeline   m x v x the micro-batch's stage-boundary sends (and   } parallel.traffic,
             gradients back)                                       } the bound's too
  data       the gradient all-reduce (ZeRO-3: 1.5x), of which RunConfig.dp_overlap is
             hidden behind the last micro-batch's backward pass, no more than it lasts
             (ZeRO-3: the whole step's kernels, its gathers under every micro-batch)
A collective over a group of n devices takes bytes / (bandwidth x efficiency) + steps x
latency + the call's fixed latency (ring: 2 (n - 1) steps for an all-reduce, one for a
send; NCCL's own tuning model, src/graph/tuning.cc, has this form: a base latency per
call plus a hardware latency per step). The group runs on the
scale-up link while it stays inside a node (tensor groups are innermost, then data, then
pipeline, as Megatron-LM orders ranks), on the network otherwise.
MFU = the step's model FLOPs per device / (expected time x dense peak); HFU adds the
recomputed FLOPs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .calibration import sustained_share
from .efficiency import expected_times
from .errors import FieldError
from .hardware import Device, cluster, link_terms, run_ceilings
from .kernels import evaluate
from .parallel import Collective, Communication, communication
from .scenario import RunConfig
from .workloads import Workload

Array = Any  # a float, or a numpy array (per scenario, per device)


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
    micro = run.micro() if rows == "all" else run.micro().forward()
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
        c = run_ceilings(device, run)
        whole = (table.total_flops, table.total_bytes)
        expected = expected_times(table, *whole, bound, c, micro.training, tensor=t).time_s
    return (
        float(expected[keep].sum()) / pp,
        float(bound[keep].sum()) / pp,
        float(flops[keep].sum()) / pp,
    )


@dataclass(frozen=True)
class Links:
    """The links a layout's collectives run on, for one device type (floats) or several
    (arrays, one value per device): the scale-up link inside a node and the network."""

    link_bytes_per_s: Array
    link_latency_s: Array
    efficiency: Array  # achieved / link bandwidth of a collective
    node_size: Array
    network_bytes_per_s: Array
    network_latency_s: Array
    call_latency_s: Array  # the fixed cost of one collective call (the library's base)


def links(device: Device, run: RunConfig) -> Links:
    efficiency, latency, call = link_terms(device)
    net = cluster(device, run.cluster)
    return Links(
        device.link_bytes_per_s,
        latency,
        efficiency,
        net.node_size,
        net.network_bandwidth_bytes_per_s,
        net.network_latency_s,
        call,
    )


def collective_s(nbytes: Array, steps: Array, span: Array, links: Links, ideal: bool) -> Array:
    """Seconds of one collective sending `nbytes` per device in `steps` latency-bound steps,
    over a group whose ranks span `span` consecutive ranks: on the scale-up link while that
    fits in a node, on the network otherwise. Nothing to send takes no time."""
    inside = span <= links.node_size
    bw: Array = np.where(inside, links.link_bytes_per_s, links.network_bytes_per_s)
    latency: Array = np.where(inside, links.link_latency_s, links.network_latency_s)
    call: Array = links.call_latency_s
    if ideal:
        latency, call = 0.0 * latency, 0.0 * call
    else:
        bw = bw * links.efficiency
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(bw > 0, nbytes / np.where(bw > 0, bw, 1.0) + steps * latency + call, np.inf)
    return np.where(nbytes > 0, t, 0.0)


def communication_parts(
    comm: Communication, links: Links, ideal: bool
) -> tuple[Array, Array, Array]:
    """(tensor, pipeline, data) seconds of a step's collectives (parallel.traffic), each
    call timed on its links (collective_s); the gradient all-reduce whole (`assemble`
    hides its overlap). A collective that cannot occur is a scalar zero (cheap in sweeps)."""

    def seconds(c: Collective) -> Array:
        if not (np.any(c.calls) and np.any(c.nbytes)):
            return 0.0
        return c.calls * collective_s(c.nbytes, c.steps, c.span, links, ideal)

    return seconds(comm.tensor), seconds(comm.pipeline), seconds(comm.data)


def assemble(
    run: RunConfig, stage: Array, recompute: Array, micro_batches: Array, comm: tuple[Array, ...]
) -> dict[str, Array]:
    """The parts of the expected step time: m x (E + R), the (pp - 1) x (E + R) / v
    bubble (v: interleaved model chunks a rank, 1 for plain 1F1B), and the communication.
    Of the gradient traffic, run.dp_overlap is hidden, but no more than the compute it
    runs under: the last micro-batch's backward pass (2/3 of its kernels, the backward
    running two GEMMs for the forward's one, and its recomputation, which runs in the
    backward pass), when the gradients are reduced once a step as PyTorch DDP and
    Megatron-LM do; with ZeRO-3 the whole step (the parameters' all-gathers run under every
    micro-batch's forward and backward). Traffic longer than that window stays exposed:
    the step is then as long as its communication."""
    tensor, pipeline, data = comm
    pp, v = run.layout.pipeline, run.virtual_stages
    one = np.ndim(micro_batches) == 0 and micro_batches == 1  # (a sweep's arrays: no copy)
    compute = stage if one else micro_batches * stage
    again = recompute if one else micro_batches * recompute
    bubble = (pp - 1) * (stage + recompute) / v if pp > 1 else 0.0
    share = sustained_share(run.training, run.ideal, run.sustained)
    kernels = compute
    for part in (again, bubble):
        if np.ndim(part) or part:
            kernels = kernels + part
    if run.dp_overlap and (np.ndim(data) or data):
        last = 2.0 / 3.0 * stage + recompute  # the last micro-batch's backward
        window = (compute + again if run.layout.zero >= 3 else last) / share
        data = data - np.minimum(run.dp_overlap * data, window)
    return {
        "compute": compute,
        "recompute": again,
        "bubble": bubble,
        # what a whole step sustains below its kernels (calibration.py; fitted)
        "sustained": (1 / share - 1) * kernels,
        "tensor": tensor,
        "pipeline": pipeline,
        "data": data,
    }


def _expected(w: Workload, run: RunConfig, device: Device, traffic: Communication) -> StepTime:
    m = run.micro_batches
    stage, _, flops = _stage(w, run, device, "all")
    recompute = recompute_flops = 0.0
    if run.training and run.recompute != "none":
        recompute, _, recompute_flops = _stage(w, run, device, run.recompute)
    comm = communication_parts(traffic, links(device, run), run.ideal)
    parts = {k: float(v) for k, v in assemble(run, stage, recompute, m, comm).items()}
    total = sum(parts.values())
    peak = device.peak(run.dtype)
    model_flops = m * flops
    finite = math.isfinite(total)
    return StepTime(
        compute_s=None,
        communication_s=None,
        expected_s=total,
        parts=tuple(parts.items()),
        mfu=model_flops / (total * peak) if finite else None,
        hfu=(model_flops + m * recompute_flops) / (total * peak) if finite else None,
    )


def step_time(w: Workload, run: RunConfig, device: Device) -> StepTime:
    from .analysis import analyze

    w.check_layout(run.layout)
    try:
        compute = analyze(w, device, run.replica()).total_time_s / run.layout.model_split
    except FieldError as exc:  # the device lacks the datatype
        return StepTime(None, None, exc.problem)
    traffic = communication(w, run)  # the bound's bytes and the expected time's collectives
    comm = traffic.time_s(device)
    if comm == math.inf:
        return StepTime(compute, None, f"{device.key} has no scale-up interconnect in its file")
    e = _expected(w, run, device, traffic)
    return replace(e, compute_s=compute, communication_s=comm)
