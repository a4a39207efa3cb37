"""What-ifs: a workload over sweep axes (batch, sequence, context, dtype, device, device
count, device scaling), and the answers a capacity planner asks for.

The answers a planner asks of a sweep are answers.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np

from .costmodel import CostModel, NotPolynomial, cost_model, exact_model
from .dtypes import check_dtype
from .errors import FieldError
from .hardware import Device, DeviceTable, run_ceilings
from .scenario import MAX_DEVICES, RunConfig, check_size
from .step import Links, links
from .sweep import DeviceCeilings, Grid, SweepOutput, evaluate_grid
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
    by the axes', and its data-parallel degree by `replicas` (RunConfig.scenario: the
    sweep reads none of them)."""
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
    # the axes own each scenario's batch, seq, context, dtype and replicas (RunConfig.
    # scenario); `run`'s own are placeholders, never read. Every value is checked as a run
    # of its own: a micro-batch must divide each local batch, a seq fit the model
    for b in batches:
        for n in replicas:
            run.scenario(b, seqs[0], contexts[0], dtypes[0], data=n)
    default = arch.default_seq or 1
    for s in seqs:  # validate against the model once per value
        for c in contexts:
            workload.layers(run.replica().scenario(1, s, c, dtypes[0]))
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
    per = [[run_ceilings(d, replace(run, dtype=dt)) for d in devices] for dt in dtypes]
    first = per[0]
    # measured GEMM curves, padded to the longest (a device's own count says how many)
    curves = [[c.gemm_curve or () for c in row] for row in per]
    width = max([len(cv) for row in curves for cv in row] + [1])
    curve_n = np.array([len(cv) for cv in curves[0]], dtype=np.int64)
    curve_x = np.zeros((len(devices), width))
    curve_y = np.zeros((len(dtypes), len(devices), width))
    for t, row in enumerate(curves):
        for j, cv in enumerate(row):
            if len(cv) != curve_n[j]:  # one dtype measured and another not: the tile model
                curve_n[j] = 0
            for i, (size, rate) in enumerate(cv):
                curve_x[j, i], curve_y[t, j, i] = np.log(size), rate
    each = [links(d, run) for d in devices]
    return DeviceCeilings(
        flops_per_s=np.array([[c.flops_per_s for c in row] for row in per]),
        bandwidth_bytes_per_s=np.array([c.bandwidth_bytes_per_s for c in first]),
        units=np.array([c.compute_units for c in first], dtype=np.float64),
        tile_m=np.array([c.tile_m for c in first], dtype=np.float64),
        tile_n=np.array([c.tile_n for c in first], dtype=np.float64),
        overhead_s=np.array([c.kernel_overhead_s for c in first]),
        transcendentals_per_s=np.array([c.transcendentals_per_s or 0.0 for c in first]),
        cache_bytes=np.array([c.cache_bytes or 0.0 for c in first]),
        cache_bandwidth_bytes_per_s=np.array([c.cache_bandwidth_bytes_per_s or 0.0 for c in first]),
        curve_x=curve_x,
        curve_y=curve_y,
        curve_n=curve_n,
        attention_share=np.array([[c.attention_ratio for c in row] for row in per]),
        attention_kernel=np.array([[c.attention_kernel for c in row] for row in per]),
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
                    "call_latency_s",
                )
            )
        ),
    )


def run_sweep(sweep: Sweep, progress: Callable[[int, int], None] | None = None) -> SweepOutput:
    out = evaluate_grid(sweep.model, sweep.grid, progress=progress)
    assert out is not None  # keep=True always returns the output
    return out


# every scenario column a what-if can have, in order; absent ones do not apply to the model
SCENARIO_COLUMNS = (
    "device",
    "dtype",
    "batch",
    "seq",
    "context",
    "devices",
    "time_s",
    "expected_time_s",
    "samples_per_s",
    "tokens_per_s",
    "memory_bytes_per_device",
    "fits",
    "memory_bound_time_share",
    "currency",
    "price_per_device_hour",
    "cost_per_million_tokens",
    "cost_per_million_samples",
)


def scenario_columns(sweep: Sweep, out: SweepOutput, start: int = 0) -> dict[str, np.ndarray]:
    """The (scenario, device) pairs of `out` (scenarios start.. of the grid) as columns,
    scenario-major, built with array code. Units are in the names; a column that does not
    apply (seq of a CNN, context outside decode, tokens of a model without tokens) is
    absent."""
    g = sweep.grid
    n_dev = len(sweep.devices)
    n = len(out.memory_bytes)
    batch, seq, ctx, dt, reps = (np.repeat(c, n_dev) for c in g.chunk(start, start + n))
    time = out.time_s.reshape(-1)
    cols: dict[str, np.ndarray] = {
        "device": np.tile(np.array([d.key for d in sweep.devices], dtype=object), n),
        "dtype": np.array(g.dtypes, dtype=object)[dt],
        "batch": batch,
    }
    if sweep.model.takes_seq and sweep.phase != "decode":  # decode: 1 new token, a context
        cols["seq"] = seq
    if sweep.phase == "decode":
        cols["context"] = ctx
    memory = np.repeat(out.memory_bytes, n_dev)
    expected = out.expected_time_s.reshape(-1)
    devices = reps * sweep.run.layout.model_split  # replicas x tensor x pipeline
    cols |= {
        "devices": devices,
        "time_s": time,
        "expected_time_s": expected,
        "samples_per_s": batch / expected,
    }
    work = "samples"
    if sweep.model.takes_seq:
        cols["tokens_per_s"] = batch * (1 if sweep.phase == "decode" else seq) / expected
        work = "tokens"
    cols |= {
        "memory_bytes_per_device": memory,
        "fits": memory <= np.tile(g.capacity, n),
        "memory_bound_time_share": out.memory_bound_share.reshape(-1),
    }
    prices = [d.price for d in sweep.devices]
    if any(p is not None for p in prices):  # a million tokens (samples) at the expected time
        per_hour = np.tile(np.array([p.per_hour if p else np.nan for p in prices]), n)
        per_s = cols[f"{work}_per_s"]
        cols["currency"] = np.tile(np.array([p.currency if p else None for p in prices]), n)
        cols["price_per_device_hour"] = per_hour
        cols[f"cost_per_million_{work}"] = devices * per_hour / 3600 / per_s * 1e6
    return cols


def priced(
    devices: Sequence[Device], prices: float | Mapping[str, float], currency: str = "USD"
) -> list[Device]:
    """`devices` with the price per device-hour given (one figure for all, or per device
    key or alias), replacing their files' prices; a key that names none of them is an
    error with the keys allowed."""
    from .hardware import Price

    def one(value: float, who: str) -> Price:
        if isinstance(value, bool) or not (isinstance(value, int | float) and 0 < value < 1e6):
            raise FieldError("price", value, f"{who}: a price per device-hour > 0 and < 1e6")
        return Price(float(value), currency, "given", "--price")

    if not isinstance(prices, Mapping):
        return [replace(d, price=one(prices, d.key)) for d in devices]
    names = {n: d.key for d in devices for n in (d.key, *d.aliases)}
    by_key: dict[str, Price] = {}
    for name, value in prices.items():
        if name.lower() not in names:
            keys = ", ".join(d.key for d in devices)
            raise FieldError("price", name, f"not a swept device; give one of {keys}")
        by_key[names[name.lower()]] = one(value, name)
    return [replace(d, price=by_key.get(d.key, d.price)) for d in devices]
