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
from types import MappingProxyType

import numpy as np

from .dtypes import check_dtype
from .errors import FieldError
from .hardware import Device, DeviceTable, ceilings
from .layers import LayerTable
from .scenario import MAX_DEVICES, MAX_SIZE, RunConfig, check_size
from .step import Links, links
from .sweep import (
    CostModel,
    DeviceCeilings,
    Grid,
    NotPolynomial,
    SweepOutput,
    basis,
    cost_model,
    evaluate_grid,
    exact_model,
)
from .workloads import Workload

# a what-if scales a device by at most this factor either way: far past any generation gap,
# and every scaled figure stays a finite, normal float
MAX_SCALE = 1e6


def scaled(
    device: Device, flops: float = 1.0, bandwidth: float = 1.0, capacity: float = 1.0
) -> Device:
    """A hypothetical device: peaks x `flops`, bandwidth x `bandwidth`, capacity x `capacity`."""
    for name, value in (
        ("flops_scale", flops),
        ("bandwidth_scale", bandwidth),
        ("capacity_scale", capacity),
    ):
        if not (isinstance(value, (int, float)) and 1 / MAX_SCALE <= value <= MAX_SCALE):
            raise FieldError(name, value, f"must be > 0, from {1 / MAX_SCALE:g} to {MAX_SCALE:g}")
    if (flops, bandwidth, capacity) == (1.0, 1.0, 1.0):
        return device
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
    """A workload run as `run` says (phase, optimizer, recompute, layout), over a grid of
    batch x seq x context x dtype x data-parallel replicas, on `devices`."""

    workload: Workload
    run: RunConfig
    devices: list[Device]
    grid: Grid
    model: CostModel

    @property
    def phase(self) -> str:
        return self.run.phase


def build_sweep(
    workload: Workload,
    devices: Sequence[Device],
    run: RunConfig | None = None,
    *,
    batches: Sequence[int],
    seqs: Sequence[int | None],
    contexts: Sequence[int | None],
    dtypes: Sequence[str],
    replicas: Sequence[int],
) -> Sweep:
    """The Cartesian product of the axes, checked; every device must have every dtype.
    `run` says how each scenario runs; its own batch, seq, context and dtype are replaced
    by the axes', and its data-parallel degree by `replicas`."""
    run = run or RunConfig()
    for name, axis in (
        ("batch", batches),
        ("seq", seqs),
        ("context", contexts),
        ("dtype", dtypes),
        ("device", devices),
        ("replicas", replicas),
    ):
        if len(axis) == 0:
            raise FieldError(name, None, "empty sweep axis; give at least one value")
    for dt in dtypes:
        check_dtype(dt)
        for d in devices:
            d.peak(dt)  # a clear error for a dtype the device lacks
    for b in batches:
        check_size("batch", b)
    for n in replicas:
        check_size("replicas", n, maximum=MAX_DEVICES)
        for b in batches:
            if b % n:
                raise FieldError(
                    "replicas",
                    n,
                    f"the batch of {b} cannot be split into {n} equal data-parallel shares",
                )
    arch = workload.arch
    if not arch.takes_seq and any(s is not None for s in seqs):
        raise FieldError("seq", None, f"{workload.key} takes a fixed input; leave seq out")
    if run.phase != "decode" and any(c is not None for c in contexts):
        raise FieldError("context", None, "applies to phase decode only")
    default = arch.default_seq or 1
    for s in seqs:  # validate against the model once per value
        for c in contexts:
            workload.layers(replace(run.replica(), batch=1, seq=s, context=c))
    try:
        model = cost_model(workload, run, tuple(dtypes))
    except NotPolynomial:
        model = exact_model(workload, run, tuple(dtypes))
    link = np.array([d.link_bytes_per_s for d in devices])
    needs_link = run.layout.model_split > 1 or (run.training and any(n > 1 for n in replicas))
    if needs_link and np.any(link == 0):
        missing = [d.key for d, bw in zip(devices, link) if bw == 0]
        raise FieldError(
            "device",
            ", ".join(missing),
            "no scale-up interconnect in the file, and the "
            "layout needs one to exchange gradients or activations",
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
        ceilings=device_ceilings(list(devices), tuple(dtypes), run),
        devices=tuple(devices),
    )
    return Sweep(workload, run, list(devices), grid, model)


def device_ceilings(
    devices: list[Device], dtypes: tuple[str, ...], run: RunConfig
) -> DeviceCeilings:
    """hardware.ceilings and step.links of every device, as arrays."""
    per = [[ceilings(d, dt) for d in devices] for dt in dtypes]
    first = per[0]
    each = [links(d, run) for d in devices]
    return DeviceCeilings(
        flops_per_s=np.array([[c.flops_per_s for c in row] for row in per]),
        bandwidth_bytes_per_s=np.array([c.bandwidth_bytes_per_s for c in first]),
        units=np.array([c.compute_units for c in first], dtype=np.float64),
        tile_m=np.array([c.tile_m for c in first], dtype=np.float64),
        tile_n=np.array([c.tile_n for c in first], dtype=np.float64),
        overhead_s=np.array([c.kernel_overhead_s for c in first]),
        links=Links(
            *(
                np.array([getattr(x, f) for x in each], dtype=np.float64)
                for f in (
                    "link_bytes_per_s",
                    "link_latency_s",
                    "efficiency",
                    "node_size",
                    "network_bytes_per_s",
                    "network_latency_s",
                )
            )
        ),
    )


def run_sweep(sweep: Sweep, progress: Callable[[int, int], None] | None = None) -> SweepOutput:
    out = evaluate_grid(sweep.model, sweep.grid, progress=progress)
    assert out is not None  # keep=True always returns the output
    return out


def scenario_columns(sweep: Sweep, out: SweepOutput) -> dict[str, np.ndarray]:
    """Every (scenario, device) pair as columns (scenario-major), built with array code.
    Units are in the names; a column that does not apply (seq of a CNN, context outside
    decode, tokens of a model without tokens) is absent."""
    g = sweep.grid
    n_dev = len(sweep.devices)
    batch, seq, ctx, dt, reps = (np.repeat(c, n_dev) for c in g.columns)
    time = out.time_s.reshape(-1)
    cols: dict[str, np.ndarray] = {
        "device": np.tile(np.array([d.key for d in sweep.devices], dtype=object), g.scenarios),
        "dtype": np.array(g.dtypes, dtype=object)[dt],
        "batch": batch,
    }
    if sweep.model.takes_seq:
        cols["seq"] = seq
    if sweep.phase == "decode":
        cols["context"] = ctx
    memory = np.repeat(out.memory_bytes, n_dev)
    expected = out.expected_time_s.reshape(-1)
    cols |= {
        "devices": reps,
        "time_s": time,
        "expected_time_s": expected,
        "samples_per_s": batch / expected,
    }
    if sweep.model.takes_seq:
        cols["tokens_per_s"] = batch * (1 if sweep.phase == "decode" else seq) / expected
    cols |= {
        "memory_bytes_per_device": memory,
        "fits": memory <= np.tile(g.capacity, g.scenarios),
        "memory_bound_time_share": out.memory_bound_share.reshape(-1),
    }
    return cols


@dataclass(frozen=True)
class Best:
    """The fitting scenario with the highest throughput (`unit`: tokens_per_s for text
    models outside decode, samples_per_s otherwise)."""

    batch: int
    seq: int
    context: int
    devices: int
    time_s: float
    rate: float
    unit: str


@dataclass(frozen=True)
class TrainingEstimate:
    """The published training run's FLOPs on `devices` devices: at the given utilization
    of the dense peak (`days`), and at the expected step time of the largest swept batch
    and sequence on that many devices (`expected_days`: samples / batch x step time)."""

    devices: int
    training_flops: float
    days: float
    cost: float | None
    expected_days: float | None
    expected_cost: float | None


@dataclass(frozen=True)
class Answer:
    """What a planner asks of one device and dtype (at the longest swept sequence or
    context): where a step turns compute-bound, the largest batch that fits, the fastest
    fitting scenario, and the time and cost to train."""

    device: str
    dtype: str
    seq: int | None
    context: int | None
    ridge_point: float
    compute_bound_batch: int | None  # None: never, whatever the batch
    max_batch: int
    best: Best | None  # None: nothing fits
    training: tuple[TrainingEstimate, ...]


def _linear_in_batch(
    sweep: Sweep, seq: int, context: int, dtype_index: int
) -> tuple[np.ndarray, ...]:
    """FLOPs, bytes (one replica) and memory (per device) as a + b x batch."""
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
    out = evaluate_grid(m, one)
    assert out is not None  # keep=True always returns the output
    if m.polynomial:
        flops = (m.flops @ x.T).sum(axis=0)  # (2,): at batch 1 and 2
        nbytes = (m.bytes[dtype_index] @ x.T).sum(axis=0)
    else:  # one replica's own tables (a line through batch 1 and 2; see _crossover_exact)
        tables = [_table(sweep, b, seq, context, dtype_index) for b in (1, 2)]
        flops = np.array([t.total_flops.sum() for t in tables])
        nbytes = np.array([t.total_bytes.sum() for t in tables])

    def line(v: np.ndarray) -> np.ndarray:
        return np.array([v[0] - (v[1] - v[0]), v[1] - v[0]])

    return line(flops), line(nbytes), line(out.memory_bytes)


def _best_fitting(
    sweep: Sweep, progress: Callable[[int, int], None] | None
) -> dict[tuple[int, int], tuple[float, int]]:
    """(dtype index, device index) -> (throughput, scenario) of the fastest scenario that
    fits: tokens/s for text models (prefill, training), samples/s otherwise (a decode step
    makes one token a sample), at the expected step time. Streamed chunk by chunk: nothing
    kept grows with the grid."""
    g = sweep.grid
    best: dict[tuple[int, int], tuple[float, int]] = {}
    per_token = sweep.model.takes_seq and sweep.phase != "decode"

    def reduce(start: int, out: SweepOutput) -> None:
        batch, seq, _, dt, _ = g.chunk(start, start + len(out.memory_bytes))
        fits = out.memory_bytes[:, None] <= g.capacity[None, :]
        work = batch * (seq if per_token else 1)  # tokens (text models) or samples a step
        t = out.expected_time_s
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(fits & np.isfinite(t), work[:, None] / t, -np.inf)
        for k in np.unique(dt):
            sub = np.where((dt == k)[:, None], rate, -np.inf)
            i = np.argmax(sub, axis=0)
            for j, row in enumerate(i):
                value = float(sub[row, j])
                if value > best.get((int(k), j), (-np.inf, -1))[0]:
                    best[(int(k), j)] = (value, start + int(row))

    evaluate_grid(sweep.model, g, progress=progress, keep=False, reduce=reduce)
    return best


def _table(sweep: Sweep, batch: int, seq: int, context: int, dtype_index: int) -> LayerTable:
    run = replace(
        sweep.run.replica(),
        batch=batch,
        seq=seq if sweep.model.takes_seq else None,
        context=context if sweep.phase == "decode" else None,
        dtype=sweep.grid.dtypes[dtype_index],
    )
    return sweep.workload.layers(run)


def _crossover_exact(
    sweep: Sweep, seq: int, context: int, dtype_index: int, ridge: float
) -> int | None:
    """The smallest batch whose intensity reaches `ridge`, for costs that are not linear in
    the batch (mixture of experts: the experts' weight reads saturate as the batch grows):
    intensity only grows with the batch, so double until it is reached, then bisect."""

    def reaches(b: int) -> bool:
        t = _table(sweep, b, seq, context, dtype_index)
        return bool(t.total_flops.sum() >= ridge * t.total_bytes.sum())

    if reaches(1):
        return 1
    low, high = 1, 2
    while not reaches(high):
        low, high = high, high * 2
        if high > MAX_SIZE:
            return None
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if reaches(mid) else (mid, high)
    return high


def _expected_training_s(sweep: Sweep, device: int, dtype_index: int, n: int) -> float | None:
    """Seconds to train on the published samples at the expected step time of the largest
    swept batch and sequence on n devices."""
    w, g = sweep.workload, sweep.grid
    if w.training is None or sweep.phase != "training":
        return None
    b, s = int(g.batches.max()), int(g.seqs.max())
    if b % n:
        return None
    one = replace(
        g,
        batches=np.array([b]),
        seqs=np.array([s]),
        contexts=np.array([-1]),
        dtype_axis=np.array([dtype_index]),
        replica_axis=np.array([n]),
    )
    out = evaluate_grid(sweep.model, one)
    assert out is not None  # keep=True always returns the output
    step = float(out.expected_time_s[0, device])
    if not np.isfinite(step):
        return None
    return w.training.samples / b * step


def _crossover(f: np.ndarray, y: np.ndarray, ridge: float) -> int | None:
    """The smallest batch whose intensity (f0 + f1 b) / (y0 + y1 b) reaches `ridge`:
    b (f1 - R y1) >= R y0 - f0. None when more batch never gets there."""
    slope = f[1] - ridge * y[1]
    need = ridge * y[0] - f[0]
    if need <= 0:
        return 1
    if slope > 0:
        return math.ceil(float(need) / float(slope))
    return None


def answers(
    sweep: Sweep,
    *,
    utilization: float | None = None,
    price_per_hour: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Answer]:
    if utilization is not None and not (
        isinstance(utilization, float | int) and 0 < utilization <= 1
    ):
        raise FieldError("utilization", utilization, "must be in (0, 1]")
    if price_per_hour is not None and not (
        isinstance(price_per_hour, float | int) and 0 < price_per_hour < 1e9
    ):
        raise FieldError("price", price_per_hour, "must be > 0 and finite (per device-hour)")
    g, w = sweep.grid, sweep.workload
    seq = int(g.seqs.max())
    ctx = int(max(g.contexts.max(), g.seqs.max() if g.contexts.min() < 0 else 0))
    train_flops = w.training_flops() if utilization is not None else None
    fastest = _best_fitting(sweep, progress)
    unit = "tokens_per_s" if sweep.model.takes_seq and sweep.phase != "decode" else "samples_per_s"
    rows = []
    for k, dt in enumerate(g.dtypes):
        f, y, mem = _linear_in_batch(sweep, seq, ctx, k)
        for j, d in enumerate(sweep.devices):
            ridge = d.peak(dt) / d.memory_bandwidth_bytes_per_s
            room = g.capacity[j] - mem[0]
            max_batch = int(room // mem[1]) if mem[1] > 0 and room >= mem[1] else 0
            best = None
            if (k, j) in fastest and np.isfinite(fastest[(k, j)][0]):
                rate, i = fastest[(k, j)]
                b, s_, c_, _, n = (int(v[0]) for v in g.chunk(i, i + 1))
                work = b * (s_ if unit == "tokens_per_s" else 1)
                best = Best(b, s_, c_, n, work / rate, rate, unit)
            training: list[TrainingEstimate] = []
            if train_flops is not None and utilization is not None:
                for n in sorted({int(r) for r in g.replica_axis}):
                    seconds = train_flops / (n * d.peak(dt) * utilization)
                    expected = _expected_training_s(sweep, j, k, n)
                    price = price_per_hour or None
                    training.append(
                        TrainingEstimate(
                            n,
                            train_flops,
                            seconds / 86400,
                            seconds / 3600 * n * price if price else None,
                            None if expected is None else expected / 86400,
                            expected / 3600 * n * price if price and expected else None,
                        )
                    )
            rows.append(
                Answer(
                    device=d.key,
                    dtype=dt,
                    seq=seq if sweep.model.takes_seq else None,
                    context=ctx if sweep.phase == "decode" else None,
                    ridge_point=ridge,
                    compute_bound_batch=(
                        _crossover(f, y, ridge)
                        if sweep.model.polynomial
                        else _crossover_exact(sweep, seq, ctx, k, ridge)
                    ),
                    max_batch=max_batch,
                    best=best,
                    training=tuple(training),
                )
            )
    return rows
