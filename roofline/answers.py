"""What a planner asks of a sweep (whatif.Sweep), per device and datatype, at the longest
swept sequence or context:

  compute_bound_batch  the smallest batch whose whole step has intensity >= the ridge point
                       (solved exactly: FLOPs and bytes are linear in the batch; by
                       bisection on the layer tables where they are not, as for MoE)
  max_batch            the largest batch whose per-device footprint fits (memory is linear
                       in the batch too), on the most replicas swept (ZeRO shards over
                       them): a whole number of samples per replica times the replicas;
                       None when memory does not grow with the batch (a fixed
                       --micro-batch: more samples are more micro-batches) and it fits
  best                 the fitting scenario with the highest throughput at the expected time
  training             time and cost to train: at a utilization of the dense peak, and at
                       the expected step time of the largest swept batch and sequence;
                       with that step, the energy and CO2 to train (energy.py: each
                       device at activity u = the kernels' bound / the expected step
                       time, x PUE, x the grid's intensity at the given site)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .costmodel import basis
from .energy import Energy, Site, iteration_energy, scaled
from .errors import FieldError
from .layers import LayerTable
from .scenario import MAX_SIZE
from .sweep import SweepOutput, evaluate_grid
from .whatif import Sweep


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
    """A training run's FLOPs on `devices` devices (data-parallel replicas x tensor x
    pipeline): at the given utilization of the dense peak (`days`), and at the expected
    step time of the largest swept batch and sequence on that layout (`expected_days`:
    samples / batch x step time)."""

    devices: int
    training_flops: float
    days: float
    cost: float | None
    expected_days: float | None
    expected_cost: float | None
    currency: str | None = None  # of the costs: the device's price's, or USD if given here
    # the run at the expected step time on all `devices`: energy, power and CO2 (None
    # where there is no expected time)
    energy: Energy | None = None

    @property
    def device_hours(self) -> float | None:
        """Device-hours at the expected step time (GPU-hours, as the model cards count)."""
        return None if self.expected_days is None else self.expected_days * 24 * self.devices


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
    max_batch: int | None  # None: any batch (memory does not grow with it), see max_batch_note
    best: Best | None  # None: nothing fits
    max_batch_note: str | None
    training: tuple[TrainingEstimate, ...]


def _linear_in_batch(
    sweep: Sweep, seq: int, context: int, dtype_index: int
) -> tuple[np.ndarray, ...]:
    """FLOPs, bytes and memory per device as a + b x (samples per replica); memory on the
    most replicas swept, over which ZeRO shards the training state."""
    m, g = sweep.model, sweep.grid
    x = basis(np.array([1, 2]), np.array([seq, seq]), np.array([context, context]))
    reps = int(g.replica_axis.max())
    one = replace(  # global batches of 1 and 2 samples per replica
        g,
        batches=np.array([reps, 2 * reps]),
        seqs=np.array([seq]),
        contexts=np.array([context]),
        dtype_axis=np.array([dtype_index]),
        replica_axis=np.array([reps]),
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


def _max_batch(capacity: float, mem: np.ndarray) -> tuple[int | None, str | None]:
    """The largest batch b with mem[0] + mem[1] b <= capacity, or None (with why) when the
    footprint does not grow with the batch and fits."""
    fixed, per_sample = float(mem[0]), float(mem[1])
    if per_sample <= 1e-9 * max(abs(fixed), 1.0):  # flat: a fixed micro-batch
        if fixed + max(per_sample, 0.0) <= capacity:
            return None, "any: memory does not grow with the batch (fixed micro-batch)"
        return 0, None
    room = capacity - fixed
    return (int(room // per_sample) if room >= per_sample else 0), None


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
        kinds = np.unique(dt)
        for k in kinds:
            sub = rate if len(kinds) == 1 else np.where((dt == k)[:, None], rate, -np.inf)
            i = np.argmax(sub, axis=0)
            for j, row in enumerate(i):
                value = float(sub[row, j])
                if value > best.get((int(k), j), (-np.inf, -1))[0]:
                    best[(int(k), j)] = (value, start + int(row))

    evaluate_grid(sweep.model, g, progress=progress, keep=False, reduce=reduce)
    return best


def _table(sweep: Sweep, batch: int, seq: int, context: int, dtype_index: int) -> LayerTable:
    run = sweep.run.replica().scenario(
        batch,
        seq if sweep.model.takes_seq else None,
        context if sweep.phase == "decode" else None,
        sweep.grid.dtypes[dtype_index],
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


def _expected_training_s(
    sweep: Sweep, device: int, dtype_index: int, n: int, samples: float | None
) -> tuple[float, float, float] | None:
    """(steps, expected seconds a step, the kernels' bound a step on one device) to train
    on `samples` at the largest swept batch and sequence on n replicas; None where there is
    no expected time."""
    g = sweep.grid
    if samples is None or sweep.phase != "training":
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
    if not np.isfinite(step) or step <= 0:
        return None
    return samples / b, step, float(out.compute_time_s[0, device])


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
    tokens: float | None = None,
    site: Site | None = None,
) -> list[Answer]:
    """The answers of the module docstring; time to train on `tokens` tokens of the longest
    swept sequence (default: the catalog's published training run) with `utilization`, and
    its energy and CO2 at `site` (energy.site(): the sourced defaults where None)."""
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
    if tokens is not None and not (isinstance(tokens, int | float) and 1 <= tokens <= 1e18):
        raise FieldError("tokens", tokens, "a number of training tokens from 1 to 1e18")
    samples = None
    if tokens is not None:  # samples of the longest swept sequence (a fixed input: 1 token each)
        samples = tokens / (seq if sweep.model.takes_seq else 1)
        train_flops = w.training_flops(samples, seq if sweep.model.takes_seq else None, sweep.run)
    else:
        train_flops = w.training_flops() if utilization is not None else None
        samples = w.training.samples if w.training is not None else None
    if utilization is None:
        train_flops = None
    fastest = _best_fitting(sweep, progress)
    unit = "tokens_per_s" if sweep.model.takes_seq else "samples_per_s"  # decode: 1 a sample
    rows = []
    for k, dt in enumerate(g.dtypes):
        f, y, mem = _linear_in_batch(sweep, seq, ctx, k)
        for j, d in enumerate(sweep.devices):
            ridge = d.peak(dt) / d.memory_bandwidth_bytes_per_s
            max_batch, max_note = _max_batch(float(g.capacity[j]), mem)
            if max_batch is not None:  # samples per replica -> the batch over all of them
                max_batch *= int(g.replica_axis.max())
            best = None
            if (k, j) in fastest and np.isfinite(fastest[(k, j)][0]):
                rate, i = fastest[(k, j)]
                b, s_, c_, _, n = (int(v[0]) for v in g.chunk(i, i + 1))
                work = b * (s_ if unit == "tokens_per_s" and sweep.phase != "decode" else 1)
                best = Best(b, s_, c_, n * sweep.run.layout.model_split, work / rate, rate, unit)
            training: list[TrainingEstimate] = []
            if train_flops is not None and utilization is not None:
                for reps in sorted({int(r) for r in g.replica_axis}):
                    n = reps * sweep.run.layout.model_split  # devices: replicas x tp x pp
                    seconds = train_flops / (n * d.peak(dt) * utilization)
                    run = _expected_training_s(sweep, j, k, reps, samples)
                    expected = None if run is None else run[0] * run[1]
                    energy = None
                    if run is not None:  # one step on all n devices, times the steps
                        one = iteration_energy(d, run[1], run[2], n, site)
                        energy = scaled(one, run[0])
                    # the given price, else the device's own (its file's, or --price's)
                    price = price_per_hour or (d.price.per_hour if d.price else None)
                    currency = "USD" if price_per_hour or not d.price else d.price.currency
                    training.append(
                        TrainingEstimate(
                            n,
                            train_flops,
                            seconds / 86400,
                            seconds / 3600 * n * price if price else None,
                            None if expected is None else expected / 86400,
                            expected / 3600 * n * price if price and expected else None,
                            currency if price else None,
                            energy,
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
                    max_batch_note=max_note,
                    best=best,
                    training=tuple(training),
                )
            )
    return rows
