"""Published serving measurements under load (`workloads/load_runs/*.yaml`, sources in its
README) and what the serving simulation predicts for them.

A file is one deployment at one load: the model, device, layout (`data`: replicas behind a
load balancer), datatypes, the engine and its version, the load (Poisson at `rate_per_s`,
a fixed `concurrency`, or `offline`: every request at once), the requests' lengths (a fixed
count or a mean of a dataset) and what was measured (seconds; tokens/s). `predict` runs a
Poisson or offline point through `simulate` with the shipped defaults of the engine it ran
on (vLLM before 0.8: `vllm-v0`; from 0.8, and the other in-flight batching stacks: `vllm`):
  - one replica at rate / replicas (round-robin balancing); lengths at their mean (a
    dataset's spread of lengths is not modelled yet);
  - a datatype the file leaves out is bf16 (the model's own);
  - a `concurrency` point is a closed loop of that many clients (over the replicas), each
    sending its next request when one finishes, at least 10 requests a client;
  - a device outside the catalog, or lengths the file does not give, are reported with
    the reason and not predicted.
Nothing is fitted on these runs: the errors are what the model gives.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._paths import data_dir
from ._schema import Fields, Problems
from ._yaml import load_yaml_mapping
from .errors import RooflineError, SpecError

MEASURED = (
    *(f"{m}_{s}_s" for m in ("ttft", "tpot", "e2e", "itl") for s in ("mean", "p50", "p99")),
    "output_tokens_per_s",
    "requests_per_s",
)
KINDS = ("poisson", "concurrency", "offline")
SIMULATED = 20_000  # requests simulated at most a point (the run's own count where it gives one)


DATASETS = "datasets.yaml"  # the folder's one file that is not a run: length shapes


@dataclass(frozen=True)
class Shape:
    """A dataset's spread of one length (datasets.yaml): cv and the largest, if known."""

    cv: float | None
    most: int | None


def datasets(folder: Path | None = None) -> dict[str, dict[str, Shape]]:
    """{dataset: {"prompt_tokens" | "output_tokens": Shape}} from datasets.yaml."""
    folder = folder or data_dir("workloads") / "load_runs"
    shown = f"workloads/load_runs/{DATASETS}"
    data = load_yaml_mapping(folder / DATASETS, shown)
    problems = Problems()
    top = Fields(data, problems)
    out: dict[str, dict[str, Shape]] = {}
    for name in list(data):
        d = top.mapping(str(name))
        if d is None:
            continue
        shapes = {}
        for which in ("prompt_tokens", "output_tokens"):
            f = d.mapping(which, required=False)
            if f is None:
                continue
            for key in ("mean", "p50", "p90", "p99", "min"):
                f.number(key, required=False)
            cv, most = f.number("cv", required=False), f.number("max", required=False)
            for key in ("how", "not_found"):
                f.text(key, required=False)
            f.done()
            shapes[which] = Shape(cv, None if most is None else int(most))
        for key in ("filter", "source", "quote", "caveat"):
            d.raw(key)
        d.done()
        out[str(name)] = shapes
    top.done()
    if problems:
        raise SpecError(shown, list(problems))
    return out


@dataclass(frozen=True)
class LoadRun:
    key: str
    name: str
    model: str
    device: str
    devices: int
    tensor: int
    pipeline: int
    replicas: int
    dtype: str
    kv_dtype: str | None
    engine: str
    engine_version: str
    source: str
    kind: str
    rate: float | None
    concurrency: int | None
    requests: int | None
    prompt: float | None  # mean tokens
    output: float | None
    measured: dict[str, float]
    multi_step: bool = False  # the engine sent tokens in bursts (vLLM --num-scheduler-steps)
    prompt_dist: str | None = None  # the dataset the lengths come from (datasets.yaml)
    output_dist: str | None = None


def _length(f: Fields | None) -> tuple[float | None, str | None]:
    """(the mean or fixed length, the dataset it is drawn from: None if fixed)."""
    if f is None:
        return None, None
    fixed, mean = f.number("fixed", required=False), f.number("mean", required=False)
    dist = f.text("dist", required=False)
    f.done()
    return (fixed, None) if fixed is not None else (mean, dist)


def parse_load_run(data: dict[str, Any], shown: str, key: str) -> LoadRun:
    problems = Problems()
    top = Fields(data, problems)
    text = {k: top.text(k) for k in ("name", "model", "device", "engine", "source", "quote")}
    settings = top.text("engine_settings", required=False) or ""
    top.text("notes", required=False)
    version = top.text("engine_version", required=False) or ""
    top.raw("date", {"type": "string"})
    devices = top.integer("devices")
    dtype = top.text("dtype", required=False) or "bf16"
    kv = top.text("kv_dtype", required=False)
    lay = top.mapping("layout", required=False)
    tensor = pipeline = replicas = 1
    if lay is not None:
        tensor = lay.integer("tensor", required=False, default=1) or 1
        pipeline = lay.integer("pipeline", required=False, default=1) or 1
        replicas = lay.integer("data", required=False, default=1) or 1
        lay.done()
    load = top.mapping("load")
    kind, rate, concurrency, requests, prompt, output = "", None, None, None, None, None
    prompt_dist = output_dist = None
    if load is not None:
        kind = load.choice("kind", KINDS)
        rate = load.number("rate_per_s", required=kind == "poisson")
        concurrency = load.integer("concurrency", required=kind == "concurrency")
        requests = load.integer("requests", required=False)
        prompt, prompt_dist = _length(load.mapping("prompt_tokens"))
        output, output_dist = _length(load.mapping("output_tokens"))
        load.done()
    m = top.mapping("measured")
    measured: dict[str, float] = {}
    if m is not None:
        for name in MEASURED:
            value = m.number(name, required=False)
            if value is not None:
                measured[name] = value
        m.done()
    top.done()
    if problems or devices is None or None in text.values():
        raise SpecError(shown, problems or ["could not be read"])
    return LoadRun(
        key, str(text["name"]), str(text["model"]), str(text["device"]), devices, tensor,
        pipeline, replicas, dtype, kv, str(text["engine"]), version, str(text["source"]), kind,
        rate, concurrency, requests, prompt, output, measured,
        "num-scheduler-steps" in settings or "num_scheduler_steps" in settings,
        prompt_dist, output_dist,
    )  # fmt: skip


def list_load_runs(folder: Path | None = None) -> list[LoadRun]:
    folder = folder or data_dir("workloads") / "load_runs"
    runs = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name == DATASETS:
            continue
        shown = f"workloads/load_runs/{path.name}"
        runs.append(parse_load_run(load_yaml_mapping(path, shown), shown, path.stem))
    return runs


@dataclass(frozen=True)
class LoadPrediction:
    run: LoadRun
    predicted: dict[str, float | None]  # the simulation's figures, by the measured names
    reason: str = ""  # why a run is not predicted

    def errors(self) -> dict[str, float]:
        """(predicted - measured) / measured for every figure both have."""
        out = {}
        for name, value in self.run.measured.items():
            p = self.predicted.get(name)
            if p is not None and value > 0:
                out[name] = (p - value) / value
        return out


ENGINES = {  # the stack a file names -> the shipped engine that schedules like it
    "tensorrt-llm": "trtllm",
    "nvidia-nim": "trtllm",  # NIM's LLM containers run TensorRT-LLM
    "sglang": "sglang",
}


def engine_of(r: LoadRun) -> str:
    """The shipped engine (engines.yaml) a run's stack schedules like: vLLM before 0.8
    (V0: prefills first, whole) or from 0.8 (V1: chunked and mixed), TensorRT-LLM's
    in-flight batching (NIM too), SGLang's."""
    if r.engine == "vllm":
        major_minor = tuple(int(x) for x in r.engine_version.split(".")[:2] if x.isdigit())
        return "vllm-v0" if major_minor and major_minor < (0, 8) else "vllm"
    return ENGINES.get(r.engine, "vllm")


def deployment(r: LoadRun) -> str:
    """What a run shares with the other loads of the same deployment: stack, version,
    model, device, layout and datatypes (the unit the calibration splits by)."""
    return "/".join(
        str(x) for x in (engine_of(r), r.engine_version, r.model, r.device, r.devices,
                         r.tensor, r.pipeline, r.dtype, r.kv_dtype)
    )  # fmt: skip


def split(runs: list[LoadRun]) -> dict[str, tuple[list[LoadRun], list[LoadRun]]]:
    """{stack: (fit half, held-out half)}: each stack's deployments in key order, the even
    positions fitted on and the odd held out, so no held-out load shares a deployment
    with a fitted one."""
    by_stack: dict[str, dict[str, list[LoadRun]]] = {}
    for r in sorted(runs, key=lambda r: r.key):
        by_stack.setdefault(engine_of(r), {}).setdefault(deployment(r), []).append(r)
    out = {}
    for stack, groups in by_stack.items():
        names = sorted(groups, key=lambda d: groups[d][0].key)
        fit = [r for i, d in enumerate(names) if i % 2 == 0 for r in groups[d]]
        held = [r for i, d in enumerate(names) if i % 2 == 1 for r in groups[d]]
        out[stack] = (fit, held)
    return out


@functools.cache
def _shapes() -> dict[str, dict[str, Shape]]:
    return datasets()


def _draw(mean: float, shape: Shape | None, n: int, seed: int) -> np.ndarray:
    """n lengths of `mean`: lognormal with the dataset's cv, cut at its largest (a length
    whose spread is unknown stays at its mean)."""
    from .traffic import lengths

    if shape is None or shape.cv is None:
        return np.full(n, round(mean), dtype=np.int64)
    x = lengths(n, round(mean), kind="lognormal", spread=shape.cv, seed=seed)
    return np.minimum(x, shape.most) if shape.most else x


STREAM_REQUESTS = 2000  # a point is the mean over seeds of at least this many requests
MAX_SEEDS = 8


@dataclass
class Prepared:
    """A run made ready to simulate at any share: the deployment, its engine, the
    request streams (one per seed) and the iteration cost (see simulate.IterationCost)."""

    run: LoadRun
    args: tuple[Any, ...]  # (workload, run config, device)
    engine: Any
    streams: list[Any]
    clients: int | None
    cost: Any


def prepare(r: LoadRun, seed: int = 0) -> Prepared | str:
    """The run ready to simulate, or the reason it cannot be."""
    from .hardware import get_device
    from .scenario import Layout, RunConfig
    from .simulate import IterationCost
    from .traffic import Requests, arrivals, engine
    from .workloads import get_workload

    if r.prompt is None or r.output is None:
        return "the file gives no mean prompt or output length"
    if r.tensor * r.pipeline * r.replicas != r.devices:
        return (
            f"the file's layout (tensor {r.tensor} x pipeline {r.pipeline} x {r.replicas} "
            f"replicas) does not cover its {r.devices} devices"
        )
    try:
        w, device = get_workload(r.model), get_device(r.device)
        run = RunConfig(phase="decode", dtype=r.dtype,
                        kv_dtype=r.kv_dtype, attention="flash",
                        layout=Layout(1, r.tensor, r.pipeline))  # fmt: skip
        n = min(r.requests or SIMULATED, SIMULATED)
        clients = None
        if r.kind == "concurrency":  # a closed loop: each client's next request at once
            clients = max(1, round((r.concurrency or 1) / r.replicas))
            n = min(max(r.requests or 0, 10 * clients, 200), 4 * SIMULATED)
        shapes = _shapes()
        prompt_shape = shapes.get(r.prompt_dist or "", {}).get("prompt_tokens")
        output_shape = shapes.get(r.output_dist or "", {}).get("output_tokens")
        random = r.kind == "poisson" or any(
            x is not None and x.cv is not None for x in (prompt_shape, output_shape)
        )
        seeds = min(MAX_SEEDS, -(-STREAM_REQUESTS // n)) if random else 1
        streams = []
        for k in range(seed, seed + seeds):
            if r.kind in ("offline", "concurrency"):
                times = np.zeros(n)
            else:
                assert r.rate is not None  # required for poisson by the reader
                times = arrivals(n, r.rate / r.replicas, seed=10 * k)
            prompts = _draw(r.prompt, prompt_shape, n, 10 * k + 1)
            outputs = _draw(r.output, output_shape, n, 10 * k + 2)
            streams.append(Requests(times, prompts, outputs))
        eng = engine(engine_of(r), device, max_seq=w.arch.max_seq, tensor=r.tensor)
        cost = IterationCost(w, run, device, eng.max_batched_tokens, eng.sustained)
    except RooflineError as exc:
        return str(exc)
    return Prepared(r, (w, run, device), eng, streams, clients, cost)


def evaluate(p: Prepared, share: float | None = None) -> LoadPrediction:
    """The simulated figures of a prepared run (the mean over its streams) at `share`
    [default: its engine's fitted share, or the inference share]."""
    from .simulate import simulate

    r = p.run
    cost = p.cost if share is None else p.cost.at(share)
    w, run, device = p.args
    sums: dict[str, list[float]] = {}
    try:
        for stream in p.streams:
            result = simulate(w, run, device, stream, p.engine, cost=cost, concurrency=p.clients)
            for k in MEASURED:
                value = result.stats.get(k)
                if value is not None:
                    sums.setdefault(k, []).append(value)
    except RooflineError as exc:
        return LoadPrediction(r, {}, str(exc))
    predicted: dict[str, float | None] = {k: float(np.mean(v)) for k, v in sums.items()}
    if r.multi_step:  # streamed in bursts of steps: its inter-token gaps are not the model's
        predicted.pop("itl_mean_s", None)
    for name in ("output_tokens_per_s", "requests_per_s"):
        value = predicted.get(name)
        predicted[name] = None if value is None else value * r.replicas
    return LoadPrediction(r, predicted)


def predict_load(r: LoadRun, seed: int = 0) -> LoadPrediction:
    p = prepare(r, seed)
    return LoadPrediction(r, {}, p) if isinstance(p, str) else evaluate(p)


@dataclass(frozen=True)
class StackFit:
    """A serving stack's sustained share, fitted on its fit half (split)."""

    stack: str
    share: float
    fit: tuple[str, ...]  # run keys
    held: tuple[str, ...]
    fit_error: float  # median |error| over every figure of the fit half, at the share
    held_error: float | None  # ... of the held-out half
    held_error_shipped: float | None  # ... of the held-out half at the shipped share


STEP_FIGURES = ("tpot_mean_s", "tpot_p50_s", "itl_mean_s", "itl_p50_s")


def step_figures(r: LoadRun) -> tuple[str, ...]:
    """The figures of a run that measure the step itself, the ones a share is fitted on:
    the time per output token and between tokens (mean and median), and the throughput
    of a run held at saturation (offline, or a closed loop), where the step sets it; not
    the first token's latency nor the 99th percentiles, which queueing sets under load."""
    names = [k for k in STEP_FIGURES if k in r.measured]
    if r.kind in ("offline", "concurrency"):
        for k in ("output_tokens_per_s", "requests_per_s"):
            if k in r.measured:
                names.append(k)
                break
    return tuple(names)


def _loss(predictions: list[LoadPrediction]) -> float:
    """The sum of |log(predicted / measured)| over the step figures of the runs (a run not
    predicted at this share, e.g. one whose cache cannot hold a request, counts as 10)."""
    total = 0.0
    for p in predictions:
        if p.reason:
            total += 10.0
            continue
        for name in step_figures(p.run):
            value, measured = p.predicted.get(name), p.run.measured[name]
            if value is not None and value > 0 and measured > 0:
                total += abs(float(np.log(value / measured)))
    return total


def _median_error(predictions: list[LoadPrediction]) -> float | None:
    errors = [abs(e) for p in predictions for e in p.errors().values()]
    return float(np.median(errors)) if errors else None


def fit_stacks(runs: list[LoadRun] | None = None) -> list[StackFit]:
    """Each stack's share (0.40 to 1.00, to 0.01) minimising the summed |log error| of its
    fit half: a grid every 0.05, then every 0.01 around the best."""
    runs = list_load_runs() if runs is None else runs
    fits = []
    for stack, (fit_runs, held_runs) in sorted(split(runs).items()):
        ready = [p for r in fit_runs if not isinstance(p := prepare(r), str)]
        if not ready:
            continue

        def loss(share: float, ready: list[Prepared] = ready) -> float:
            return _loss([evaluate(p, share) for p in ready])

        coarse = [round(0.40 + 0.05 * i, 2) for i in range(13)]
        best = min(coarse, key=loss)
        fine = [round(best + 0.01 * i, 2) for i in range(-4, 5) if 0.40 <= best + 0.01 * i <= 1]
        share = min(fine, key=loss)
        held = [p for r in held_runs if not isinstance(p := prepare(r), str)]
        fits.append(StackFit(
            stack, share, tuple(r.key for r in fit_runs), tuple(r.key for r in held_runs),
            _median_error([evaluate(p, share) for p in ready]) or 0.0,
            _median_error([evaluate(p, share) for p in held]),
            _median_error([evaluate(p) for p in held]),
        ))  # fmt: skip
    return fits
