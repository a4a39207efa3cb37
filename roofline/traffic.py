"""What a serving simulation runs (simulate.py): the engine's scheduling defaults (read from
hardware/defaults/engines.yaml, each with its source) and the stream of requests (arrival
times and lengths: Poisson, gamma or fixed gaps; fixed, uniform, normal or lognormal
lengths; seeded)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import FieldError
from .hardware import Device


@dataclass(frozen=True)
class Engine:
    """How an engine schedules: its defaults come from hardware/defaults/engines.yaml."""

    name: str
    max_num_seqs: int
    max_batched_tokens: int
    memory_fraction: float  # of each device's memory the engine takes (weights, cache, work)
    block_tokens: int = 16
    static: bool = False  # a batch at a time, no joining mid-batch
    host_overhead_s: float = 0.0  # per iteration, beside the forward pass
    mixed: bool = True  # prefills beside decodes (False: prefill iterations first, alone)
    chunked: bool = True  # a prompt may be split over iterations (False: whole, in one)
    reserve_output: bool = False  # admit a request only with blocks for all its tokens
    kv_of_free: bool = False  # memory_fraction of what weights and activations leave
    sustained: float | None = None  # the stack's fitted share of the kernels' throughput
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "max_batched_tokens", "block_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FieldError(name, value, "must be a whole number >= 1")
        if not 0 < self.memory_fraction <= 1:
            raise FieldError("memory_fraction", self.memory_fraction, "a share above 0, <= 1")
        if not 0 <= self.host_overhead_s < 1:
            raise FieldError("host_overhead", self.host_overhead_s, "seconds from 0 to < 1")
        if self.sustained is not None and not 0 < self.sustained <= 1:
            raise FieldError("sustained", self.sustained, "a share above 0, <= 1")


LARGE_DEVICE_BYTES = 70 * 2**30  # vLLM's threshold for its larger defaults (engines.yaml)
SMALL_DEVICE_BYTES = 25_000 * 2**20  # SGLang's threshold for its smaller defaults (25,000 MiB)


def engine(
    name: str, device: Device, max_seq: int | None = None, tensor: int = 1, **overrides: object
) -> Engine:
    """An engine's shipped defaults (hardware/defaults/engines.yaml) for `device` (and a
    model of `max_seq` tokens, where the engine sizes its budget by it; a replica of
    `tensor` ways, where the engine's memory share depends on it), with the given fields
    overridden (None: keep the default)."""
    from ._paths import data_dir
    from ._schema import Fields, Problems
    from ._yaml import load_yaml_mapping
    from .errors import SpecError, UnknownNameError

    shown = "hardware/defaults/engines.yaml"
    data = load_yaml_mapping(data_dir("hardware") / "defaults" / "engines.yaml", shown)
    if name not in data:
        raise UnknownNameError("engine", name, data, "allowed: " + ", ".join(sorted(data)))
    problems = Problems()
    f = Fields(data, problems).mapping(name)
    assert f is not None  # the name is a key of the file
    values: dict[str, object] = {}
    for key in ("max_num_seqs", "max_batched_tokens", "block_tokens"):
        values[key] = f.integer(key)
    values["memory_fraction"] = f.number("memory_fraction")
    overhead = f.raw("host_overhead_s", {"type": "number", "minimum": 0}, required=True)
    if not isinstance(overhead, int | float) or isinstance(overhead, bool) or overhead < 0:
        problems.append(f"{name}.host_overhead_s: seconds >= 0, got {overhead!r}")
    values["host_overhead_s"] = float(overhead) if isinstance(overhead, int | float) else 0.0
    values["static"] = f.flag("static", default=False)
    values["mixed"] = f.flag("mixed", default=True)
    values["chunked"] = f.flag("chunked", default=True)
    values["reserve_output"] = f.flag("reserve_output", default=False)
    values["kv_of_free"] = f.flag("kv_of_free", default=False)
    values["sustained"] = f.number("sustained", required=False)
    f.text("fitted_on", required=False)
    by_tensor = f.raw("memory_fraction_by_tensor", {"type": "object"})
    if by_tensor is not None:  # {ways: share}: the share of the largest ways <= tensor
        good = isinstance(by_tensor, dict) and all(
            isinstance(k, int) and not isinstance(k, bool) and k >= 1
            and isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1
            for k, v in by_tensor.items()
        )  # fmt: skip
        if not good:
            problems.append(f"{name}.memory_fraction_by_tensor: {{ways >= 1: share (0, 1]}}")
        else:
            ways = [k for k in by_tensor if k <= tensor]
            if ways:
                values["memory_fraction"] = float(by_tensor[max(ways)])
    if f.flag("budget_from_model", default=False) and max_seq is not None:
        values["max_batched_tokens"] = max(max_seq, int(values["max_batched_tokens"]))  # type: ignore[call-overload]
    values["source"] = f.text("source")
    large = f.mapping("large_device", required=False)
    if large is not None:
        bigger = {k: large.integer(k) for k in ("max_num_seqs", "max_batched_tokens")}
        large.done()
        big = device.memory_capacity_bytes >= LARGE_DEVICE_BYTES
        if big and "a100" not in device.key.lower():
            values |= bigger
    small = f.mapping("small_device", required=False)
    if small is not None:
        smaller = {k: small.integer(k) for k in ("max_batched_tokens",)}
        small.done()
        if device.memory_capacity_bytes < SMALL_DEVICE_BYTES:
            values |= smaller
    f.done()
    if problems:
        raise SpecError(shown, list(problems))
    values |= {k: v for k, v in overrides.items() if v is not None}
    return Engine(name, **values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Requests:
    """The request stream: arrival times (s, ascending), prompt and output tokens."""

    arrival_s: np.ndarray
    prompt: np.ndarray
    output: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        if n == 0 or len(self.prompt) != n or len(self.output) != n:
            raise FieldError("requests", n, "need at least one request, each with its lengths")
        if np.any(np.diff(self.arrival_s) < 0) or not np.all(np.isfinite(self.arrival_s)):
            raise FieldError("requests", None, "arrival times must be finite and ascending")
        if np.any(self.prompt < 1) or np.any(self.output < 1):
            raise FieldError("requests", None, "every request needs >= 1 prompt and output token")


def arrivals(
    n: int,
    rate: float,
    *,
    kind: str = "poisson",
    cv: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """n arrival times at `rate` a second: Poisson (exponential gaps), gamma gaps with a
    coefficient of variation `cv` (burstier above 1), or fixed gaps."""
    if not (isinstance(n, int) and 1 <= n <= 10**7):
        raise FieldError("requests", n, "a whole number from 1 to 10,000,000")
    if not (0 < rate <= 1e6):
        raise FieldError("rate", rate, "requests a second, above 0 and at most 1e6")
    rng = np.random.default_rng(seed)
    if kind == "poisson":
        gaps = rng.exponential(1 / rate, n)
    elif kind == "gamma":
        if not (0 < cv <= 100):
            raise FieldError("cv", cv, "a coefficient of variation above 0, at most 100")
        shape = 1 / cv**2
        gaps = rng.gamma(shape, 1 / (rate * shape), n)
    elif kind == "fixed":
        gaps = np.full(n, 1 / rate)
    else:
        raise FieldError("arrival", kind, "allowed: poisson, gamma, fixed")
    times: np.ndarray = np.cumsum(gaps) - gaps[0]  # the first request at time 0
    return times


def staged_arrivals(
    stages: list[tuple[float, float]], *, kind: str = "poisson", cv: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Arrival times of a load in stages, each (rate a second, seconds) after the one
    before: within a stage the gaps are `kind`'s (arrivals) at its rate, the first a gap
    after the stage starts. Returns (times, the stages' start times and the end)."""
    if not stages or len(stages) > 1000:
        raise FieldError("stages", len(stages), "1 to 1,000 stages of rate:seconds")
    times, edges, start = [], [0.0], 0.0
    for i, (rate, seconds) in enumerate(stages):
        if not (0 < seconds <= 1e7):
            raise FieldError("stages", seconds, "a stage lasts above 0, at most 1e7 s")
        n = max(16, int(rate * seconds * 1.2) + 16)
        while True:
            gaps = np.diff(arrivals(n + 1, rate, kind=kind, cv=cv, seed=seed + i), prepend=0.0)
            t = start + np.cumsum(gaps[1:])
            if t[-1] >= start + seconds or n > 10**7:
                break
            n *= 2
        times.append(t[t < start + seconds])
        start += seconds
        edges.append(start)
    out = np.concatenate(times)
    if len(out) > 10**7:
        raise FieldError("stages", len(out), "at most 10,000,000 requests in all")
    return out, np.array(edges)


def lengths(n: int, mean: int, *, kind: str = "fixed", spread: float = 0.0, seed: int = 0,
            name: str = "tokens") -> np.ndarray:  # fmt: skip
    """n token counts of mean `mean`: fixed; uniform over mean +- spread x mean; normal or
    lognormal with a coefficient of variation `spread`; at least 1 each."""
    if not (isinstance(mean, int) and mean >= 1):
        raise FieldError(name, mean, "a whole number >= 1")
    rng = np.random.default_rng(seed)
    if kind == "fixed":
        x = np.full(n, float(mean))
    elif kind == "uniform":
        x = rng.uniform(mean * (1 - spread), mean * (1 + spread), n)
    elif kind == "normal":
        x = rng.normal(mean, spread * mean, n)
    elif kind == "lognormal":
        sigma = math.sqrt(math.log1p(spread**2))
        x = rng.lognormal(math.log(mean) - sigma**2 / 2, sigma, n)
    else:
        raise FieldError(f"{name}_dist", kind, "allowed: fixed, uniform, normal, lognormal")
    counts: np.ndarray = np.maximum(np.rint(x), 1).astype(np.int64)
    return counts


def resample(values: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n lengths drawn from an empirical distribution (with replacement, seeded)."""
    rng = np.random.default_rng(seed)
    out: np.ndarray = values[rng.integers(0, len(values), n)]
    return out
