"""What-ifs: a workload over sweep axes (batch, sequence, context, dtype, device, device
count, device scaling), and the answers a capacity planner asks for.

Answers, per device and datatype (at the longest swept sequence or context):
  compute_bound_batch  the smallest batch whose whole step has intensity >= the ridge point
                       (solved exactly: FLOPs and bytes are linear in the batch)
  max_batch            the largest batch whose footprint fits one device (per replica, times
                       the replicas; memory is linear in the batch too)
  best                 the fitting scenario with the most samples per second
  train_days / cost    training FLOPs / (devices x peak x utilization), and device-hours x price
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .dtypes import check_dtype
from .errors import RooflineError
from .hardware import Device, DeviceTable
from .optimizers import check_optimizer
from .scenario import PHASES, RunConfig
from .sweep import CostModel, Grid, SweepOutput, basis, cost_model, evaluate_grid
from .workloads import Workload


def scaled(
    device: Device, flops: float = 1.0, bandwidth: float = 1.0, capacity: float = 1.0
) -> Device:
    """A hypothetical device: peaks x `flops`, bandwidth x `bandwidth`, capacity x `capacity`."""
    for flag, value in (
        ("--flops-scale", flops),
        ("--bw-scale", bandwidth),
        ("--capacity-scale", capacity),
    ):
        if not value > 0:
            raise RooflineError(f"{flag} {value}: must be > 0")
    if (flops, bandwidth, capacity) == (1.0, 1.0, 1.0):
        return device
    from types import MappingProxyType

    tag = ",".join(
        f"{n}x{v:g}"
        for n, v in (("flops", flops), ("bw", bandwidth), ("cap", capacity))
        if v != 1.0
    )
    return replace(
        device,
        key=f"{device.key}[{tag}]",
        peak_flops_per_s=MappingProxyType(
            {k: v * flops for k, v in device.peak_flops_per_s.items()}
        ),
        memory_bandwidth_bytes_per_s=device.memory_bandwidth_bytes_per_s * bandwidth,
        memory_capacity_bytes=device.memory_capacity_bytes * capacity,
    )


@dataclass(frozen=True)
class Sweep:
    workload: Workload
    phase: str
    devices: list[Device]
    grid: Grid
    model: CostModel
    optimizer: str


def build_sweep(
    workload: Workload,
    devices: Sequence[Device],
    *,
    batches: Sequence[int],
    seqs: Sequence[int | None],
    contexts: Sequence[int | None],
    dtypes: Sequence[str],
    replicas: Sequence[int],
    phase: str = "inference",
    optimizer: str = "adam",
) -> Sweep:
    """The Cartesian product of the axes, checked; every device must have every dtype."""
    for flag, axis in (
        ("--batch", batches),
        ("--seq", seqs),
        ("--context", contexts),
        ("--dtype", dtypes),
        ("--hw", devices),
        ("--devices", replicas),
    ):
        if len(axis) == 0:
            raise RooflineError(f"{flag}: empty sweep axis; give at least one value")
    if phase not in PHASES:
        raise RooflineError(f"--phase {phase!r}: allowed: {', '.join(PHASES)}")
    check_optimizer(optimizer)
    for dt in dtypes:
        check_dtype(dt)
        for d in devices:
            d.peak(dt)  # a clear error for a dtype the device lacks
    for b in batches:
        for n in replicas:
            RunConfig(batch=b)  # validates b
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise RooflineError(f"--devices {n}: must be a whole number >= 1")
            if b % n:
                raise RooflineError(
                    f"--devices {n}: the batch of {b} cannot be split into {n} equal "
                    "data-parallel shares"
                )
    arch = workload.arch
    if not arch.takes_seq and any(s is not None for s in seqs):
        raise RooflineError(f"--seq: {workload.key} takes a fixed input; leave --seq out")
    if phase != "decode" and any(c is not None for c in contexts):
        raise RooflineError("--context: applies to --phase decode only")
    default = arch.default_seq or 1
    for s in seqs:  # validate against the model once per value
        for c in contexts:
            workload.layers(RunConfig(batch=1, seq=s, phase=phase, context=c))
    model = cost_model(workload, phase, tuple(dtypes), optimizer)
    link = np.array(
        [
            (d.interconnect_bandwidth_bytes_per_s or 0.0)
            / (2 if d.interconnect_counting == "bidirectional" else 1)
            for d in devices
        ]
    )
    if any(n > 1 for n in replicas) and phase == "training" and np.any(link == 0):
        missing = [d.key for d, bw in zip(devices, link) if bw == 0]
        raise RooflineError(
            f"--devices: {', '.join(missing)} have no scale-up interconnect "
            "to all-reduce gradients over"
        )
    grid = Grid(
        batches=np.asarray(batches, dtype=np.int64),
        seqs=np.array([x if x is not None else default for x in seqs], dtype=np.int64),
        contexts=np.array([x if x is not None else -1 for x in contexts], dtype=np.int64),
        dtype_axis=np.arange(len(dtypes)),
        replica_axis=np.asarray(replicas, dtype=np.int64),
        dtypes=tuple(dtypes),
        peak=np.array([DeviceTable.build(list(devices), dt).peak_flops_per_s for dt in dtypes]),
        bandwidth=DeviceTable.build(list(devices), dtypes[0]).bandwidth_bytes_per_s,
        capacity=np.array([d.memory_capacity_bytes for d in devices]),
        link=link,
    )
    return Sweep(workload, phase, list(devices), grid, model, optimizer)


def run_sweep(sweep: Sweep, progress: Callable[[int, int], None] | None = None) -> SweepOutput:
    out = evaluate_grid(sweep.model, sweep.grid, sweep.optimizer, progress=progress)
    assert out is not None
    return out


def scenario_rows(sweep: Sweep, out: SweepOutput) -> list[dict[str, Any]]:
    g = sweep.grid
    rows = []
    for i in range(g.scenarios):
        for j, d in enumerate(sweep.devices):
            t = float(out.time_s[i, j])
            rows.append(
                {
                    "device": d.key,
                    "dtype": g.dtypes[g.dtype[i]],
                    "batch": int(g.batch[i]),
                    "seq": int(g.seq[i]) if sweep.model.takes_seq else None,
                    "context": int(g.context[i]) if sweep.phase == "decode" else None,
                    "devices": int(g.replicas[i]),
                    "time_s": t,
                    "samples_per_s": float(g.batch[i]) / t,
                    "tokens_per_s": (
                        float(g.batch[i]) * (1 if sweep.phase == "decode" else float(g.seq[i])) / t
                    )
                    if sweep.model.takes_seq
                    else None,
                    "memory_bytes_per_device": float(out.memory_bytes[i]),
                    "fits": bool(out.memory_bytes[i] <= g.capacity[j]),
                    "memory_bound_time_share": float(out.memory_bound_share[i, j]),
                }
            )
    return rows


def _linear_in_batch(
    sweep: Sweep, seq: int, context: int, dtype_index: int
) -> tuple[np.ndarray, ...]:
    """FLOPs, bytes (per device) and memory as a + b x batch, from the cost model."""
    m, g = sweep.model, sweep.grid
    x = basis(np.array([1, 2]), np.array([seq, seq]), np.array([context, context]))
    one = replace(
        g,
        batches=np.array([1, 2]),
        seqs=np.array([seq]),
        contexts=np.array([context]),
        dtype_axis=np.array([dtype_index]),
        replica_axis=np.array([1]),
    )
    out = evaluate_grid(m, one, sweep.optimizer)
    assert out is not None
    flops = (m.flops @ x.T).sum(axis=0)  # (2,): at batch 1 and 2
    nbytes = (m.bytes[dtype_index] @ x.T).sum(axis=0)

    def line(v: np.ndarray) -> np.ndarray:
        return np.array([v[0] - (v[1] - v[0]), v[1] - v[0]])

    return line(flops), line(nbytes), line(out.memory_bytes)


def _best_fitting(
    sweep: Sweep, progress: Callable[[int, int], None] | None
) -> dict[tuple[int, int], tuple[float, int]]:
    """(dtype index, device index) -> (throughput, scenario) of the fastest scenario that
    fits: tokens/s for text models (prefill, training), samples/s otherwise (a decode step
    makes one token a sample). Streamed chunk by chunk: nothing kept grows with the grid."""
    g = sweep.grid
    best: dict[tuple[int, int], tuple[float, int]] = {}
    per_token = sweep.model.takes_seq and sweep.phase != "decode"

    def reduce(start: int, out: SweepOutput) -> None:
        batch, seq, _, dt, _ = g.chunk(start, start + len(out.memory_bytes))
        fits = out.memory_bytes[:, None] <= g.capacity[None, :]
        work = batch * (seq if per_token else 1)  # tokens (text models) or samples a step
        rate = np.where(fits, work[:, None] / out.time_s, -np.inf)
        for k in np.unique(dt):
            sub = np.where((dt == k)[:, None], rate, -np.inf)
            i = np.argmax(sub, axis=0)
            for j, row in enumerate(i):
                value = float(sub[row, j])
                if value > best.get((int(k), j), (-np.inf, -1))[0]:
                    best[(int(k), j)] = (value, start + int(row))

    evaluate_grid(sweep.model, g, sweep.optimizer, progress=progress, keep=False, reduce=reduce)
    return best


def answers(
    sweep: Sweep,
    *,
    utilization: float | None = None,
    price_per_hour: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    if utilization is not None and not 0 < utilization <= 1:
        raise RooflineError(f"--utilization {utilization}: must be in (0, 1]")
    if price_per_hour is not None and not price_per_hour > 0:
        raise RooflineError(f"--price {price_per_hour}: must be > 0")
    g, w = sweep.grid, sweep.workload
    seq, ctx = (
        int(g.seqs.max()),
        int(max(g.contexts.max(), g.seqs.max() if g.contexts.min() < 0 else 0)),
    )
    train_flops = w.training_flops() if utilization is not None else None
    fastest = _best_fitting(sweep, progress)
    rows = []
    for k, dt in enumerate(g.dtypes):
        f, y, mem = _linear_in_batch(sweep, seq, ctx, k)
        for j, d in enumerate(sweep.devices):
            ridge = d.peak(dt) / d.memory_bandwidth_bytes_per_s
            # intensity (f0 + f1 b) / (y0 + y1 b) >= ridge  <=>  b (f1 - R y1) >= R y0 - f0
            slope = f[1] - ridge * y[1]
            need = ridge * y[0] - f[0]
            if need <= 0:
                crossover: int | None = 1
            elif slope > 0:
                crossover = math.ceil(need / slope)
            else:
                crossover = None  # never: more batch does not raise the intensity enough
            room = g.capacity[j] - mem[0]
            max_batch = int(room // mem[1]) if mem[1] > 0 and room >= mem[1] else 0
            best = None
            if (k, j) in fastest and np.isfinite(fastest[(k, j)][0]):
                rate, i = fastest[(k, j)]
                b, s_, c_, _, n = (int(v[0]) for v in g.chunk(i, i + 1))
                unit = "tokens_per_s" if sweep.model.takes_seq else "samples_per_s"
                best = {
                    "batch": b,
                    "seq": s_,
                    "context": c_,
                    "devices": n,
                    "time_s": b
                    * (s_ if unit == "tokens_per_s" and sweep.phase != "decode" else 1)
                    / rate,
                    unit: rate,
                }
            row: dict[str, Any] = {
                "device": d.key,
                "dtype": dt,
                "seq": seq if sweep.model.takes_seq else None,
                "context": ctx if sweep.phase == "decode" else None,
                "ridge_point": ridge,
                "compute_bound_batch": crossover,
                "max_batch": max_batch,
                "best": best,
            }
            if train_flops is not None and utilization is not None:
                for n in sorted(set(int(r) for r in g.replica_axis)):
                    seconds = train_flops / (n * d.peak(dt) * utilization)
                    entry = {"devices": n, "training_flops": train_flops, "days": seconds / 86400}
                    if price_per_hour is not None:
                        entry["cost"] = seconds / 3600 * n * price_per_hour
                    row.setdefault("training", []).append(entry)
            rows.append(row)
    return rows
