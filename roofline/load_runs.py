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
SIMULATED = 1000  # requests simulated at most a point


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


def _length(f: Fields | None) -> float | None:
    if f is None:
        return None
    fixed, mean = f.number("fixed", required=False), f.number("mean", required=False)
    f.text("dist", required=False)
    f.done()
    return fixed if fixed is not None else mean


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
    if load is not None:
        kind = load.choice("kind", KINDS)
        rate = load.number("rate_per_s", required=kind == "poisson")
        concurrency = load.integer("concurrency", required=kind == "concurrency")
        requests = load.integer("requests", required=False)
        prompt = _length(load.mapping("prompt_tokens"))
        output = _length(load.mapping("output_tokens"))
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
    )  # fmt: skip


def list_load_runs(folder: Path | None = None) -> list[LoadRun]:
    folder = folder or data_dir("workloads") / "load_runs"
    runs = []
    for path in sorted(folder.glob("*.yaml")):
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


def _engine_of(r: LoadRun) -> str:
    """The shipped engine a run's stack schedules like: vLLM before 0.8 (V0, prefills
    first) or from 0.8 (V1, chunked and mixed); the other stacks batch in flight with
    chunked context, as V1 does."""
    if r.engine == "vllm":
        major_minor = tuple(int(x) for x in r.engine_version.split(".")[:2] if x.isdigit())
        return "vllm-v0" if major_minor and major_minor < (0, 8) else "vllm"
    return "vllm"


def predict_load(r: LoadRun, seed: int = 0) -> LoadPrediction:
    from .hardware import get_device
    from .scenario import Layout, RunConfig
    from .simulate import simulate
    from .traffic import Requests, arrivals, engine
    from .workloads import get_workload

    if r.prompt is None or r.output is None:
        return LoadPrediction(r, {}, "the file gives no mean prompt or output length")
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
        if r.kind in ("offline", "concurrency"):
            times = np.zeros(n)
        else:
            assert r.rate is not None  # required for poisson by the reader
            times = arrivals(n, r.rate / r.replicas, seed=seed)
        req = Requests(times, np.full(n, round(r.prompt)), np.full(n, round(r.output)))
        eng = engine(_engine_of(r), device, max_seq=w.arch.max_seq)
        result = simulate(w, run, device, req, eng, concurrency=clients)
    except RooflineError as exc:
        return LoadPrediction(r, {}, str(exc))
    stats = dict(result.stats)
    if r.multi_step:  # streamed in bursts of steps: its inter-token gaps are not the model's
        stats.pop("itl_mean_s", None)
    predicted: dict[str, float | None] = {k: stats.get(k) for k in MEASURED if k in stats}
    for name in ("output_tokens_per_s", "requests_per_s"):
        value = stats.get(name)
        predicted[name] = None if value is None else value * r.replicas
    return LoadPrediction(r, predicted)
