"""Published measured runs (`workloads/runs/*.yaml`) and what the model predicts for them.

Long (over 400 lines) on purpose: the metrics table below is read with the reader, the
predictions and the fit that use it (runfile.py reads a user's run with the same reader).

A run file says what ran (a catalog model, a device type and count), how it ran (the
RunConfig fields: batch, sequence, datatype, phase, layout, micro-batch, recomputation,
attention kernel and its datatype (`attention_dtype`), overlap, the storage formats
`weights` (with `group_size`) and `kv_dtype`, the cluster's network), what was measured,
and where it was published. `validate_runs` predicts each measured figure from the expected
step time (step.py) and reports the relative error. Two parameters of the model are fitted
on them: the sustained share of a training step and of an inference step (calibration.py),
each on the fit half of its runs (training, serving), with its error reported on the held-
out half (`fit_sustained`). Every run stays in the set, with its error shown, whether the
model gets it right or not.

Metrics (`measured.metric`), and how each is predicted from the expected step time T of one
step of `run` (a global batch of B samples of S tokens on N devices):
  step_time_s              T
  tokens_per_s             B x S / T (training: all devices; serving decode: B / T)
  tokens_per_s_per_device  the same / N
  hardware_flops_per_device  HFU x dense peak (FLOP/s a device, recomputation counted)
  mfu                      MFU (model FLOPs / (T x dense peak))
  hfu                      HFU
  ttft_s                   the prefill step's T (phase prefill)
  tpot_s                   the decode step's T (phase decode)
  request_latency_s        a whole request of `request.prompt` tokens in and
                           `request.output` tokens out, batch B: the prefill of the prompt,
                           then one decode step per further output token, each attending to
                           the prompt and the tokens before it (the run's phase is decode)
  output_tokens_per_s      a benchmark of batches of B such requests on the run's devices:
                           B (the global batch) x request.output / the request's latency
  output_tokens_per_s_per_device  the same / N
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ._paths import data_dir
from ._schema import Fields, Problems
from ._yaml import load_yaml_mapping
from .calibration import SCALED_PARTS, Fit, best_share, figure, split
from .dtypes import DTYPES, KV_BYTES, WEIGHT_BYTES
from .errors import RooflineError, SpecError
from .hardware import Device, get_device
from .optimizers import STATE_VALUES
from .scenario import ATTENTION, LOGITS, PHASES, RECOMPUTE, Cluster, Layout, RunConfig
from .step import StepTime, step_time
from .workloads import Workload, get_workload

METRICS = (
    "step_time_s",
    "tokens_per_s",
    "tokens_per_s_per_device",
    "hardware_flops_per_device",
    "mfu",
    "hfu",
    "ttft_s",
    "tpot_s",
    "request_latency_s",
    "output_tokens_per_s",
    "output_tokens_per_s_per_device",
)
REQUEST_METRICS = frozenset(
    {"request_latency_s", "output_tokens_per_s", "output_tokens_per_s_per_device"}
)
KINDS = ("training", "serving")
DECODE_SAMPLES = 64  # decode steps of a request evaluated one by one (see _request)
LOWER_IS_BETTER = frozenset({"step_time_s", "ttft_s", "tpot_s", "request_latency_s"})


@dataclass(frozen=True)
class MeasuredRun:
    key: str
    name: str
    kind: str
    workload: Workload
    device: Device
    devices: int
    date: str
    run: RunConfig
    metric: str
    measured: float
    source: str
    notes: str
    path: str
    prompt: int | None = None  # request_latency_s: tokens in
    output: int | None = None  # request_latency_s: tokens out


def read_run_config(f: Fields, devices: int | None) -> RunConfig | None:
    """The `run:` mapping as a RunConfig (the same field names), in a published run file
    and in a user's run file (runfile.py) alike."""
    values: dict[str, Any] = {}
    for key in (
        "batch",
        "seq",
        "context",
        "micro_batch",
        "virtual_stages",
        "group_size",
        "lora_rank",
    ):
        size = f.integer(key, required=key == "batch")
        if size is not None:
            values[key] = size
    for key, allowed, default in (
        ("dtype", DTYPES, "fp16"),
        ("phase", PHASES, "training"),
        ("recompute", RECOMPUTE, "none"),
        ("attention", ATTENTION, "eager"),
        ("logits", LOGITS, "all"),
        ("optimizer", tuple(STATE_VALUES), "adam"),
    ):
        values[key] = f.choice(key, allowed, required=False, default=default)
    for flag, on in (
        ("sequence_parallel", True),
        ("fused_epilogues", False),
        ("first_input_grad", False),
        ("master_weights", True),
        ("ideal", False),
    ):
        values[flag] = f.flag(flag, default=on)
    targets = f.text("lora_targets", required=False)
    if targets:
        values["lora_targets"] = targets
    attention_dtype = f.choice("attention_dtype", DTYPES, required=False)
    if attention_dtype:
        values["attention_dtype"] = attention_dtype
    for key, formats in (("weights", WEIGHT_BYTES), ("kv_dtype", KV_BYTES)):
        stored = f.choice(key, tuple(formats), required=False)
        if stored:
            values[key] = stored
    for key, schema in (
        ("dp_overlap", {"type": "number", "minimum": 0, "maximum": 1}),
        ("sustained", {"type": "number", "exclusiveMinimum": 0, "maximum": 1}),
    ):
        share = f.raw(key, schema)
        if share is not None:
            values[key] = share
    lay = f.mapping("layout", required=False)
    layout = Layout()
    if lay is not None:
        data, tensor, pipeline = (
            lay.integer(k, required=False, default=1) or 1 for k in ("data", "tensor", "pipeline")
        )
        zero = lay.integer("zero", required=False, minimum=0, default=0) or 0
        lay.done()
        layout = Layout(data, tensor, pipeline, zero)
        if devices is not None and layout.devices != devices:
            lay.fail(
                "data", f"data x tensor x pipeline = {layout.devices}, not the {devices} devices"
            )
    net = f.mapping("cluster", required=False)
    if net is not None:
        node = net.integer("node_size")
        bw = net.quantity("network_bandwidth", "bandwidth")
        lat = net.quantity("network_latency", "time")
        text = net.text("source", required=False) or ""
        net.done()
        if None not in (node, bw, lat):
            values["cluster"] = Cluster(node, bw, lat, text)  # type: ignore[arg-type]
    f.done()
    return RunConfig(**values, layout=layout)


def parse_run(
    data: dict[str, Any], shown: str, key: str, folder: Path | None = None
) -> MeasuredRun:
    """One run file's mapping; `model:` is a catalog name, or a model file (`.yaml`) whose
    path is relative to `folder` (the run file's own folder): the configurations that
    papers measured and no catalog entry has (workloads/runs/models/)."""
    problems = Problems()
    top = Fields(data, problems)
    name = top.text("name")
    kind = top.choice("kind", KINDS)
    model = top.text("model")
    device = top.text("device")
    devices = top.integer("devices")
    date = top.month("date")
    source = top.text("source")
    notes = top.text("notes", required=False) or ""
    m = top.mapping("measured")
    metric, value = "", None
    if m is not None:
        metric = m.choice("metric", METRICS)
        value = m.number("value")
        m.text("quote", required=False)
        m.done()
    run_fields = top.mapping("run")
    prompt = output = None
    req = top.mapping("request", required=metric in REQUEST_METRICS)
    if req is not None:
        prompt, output = req.integer("prompt"), req.integer("output")
        req.done()
    top.done()
    run = None
    if run_fields is not None:  # without `devices` (a problem already) the layout is not compared
        try:
            run = read_run_config(run_fields, devices)
        except RooflineError as exc:  # a RunConfig check: name the file
            problems.append(f"run: {exc}")
    if run is not None and kind is not None and (run.phase == "training") != (kind == "training"):
        problems.append(
            f"kind: {kind} does not match run.phase {run.phase} (training runs have phase "
            "training; serving runs inference, prefill or decode)"
        )
    if (
        problems
        or run is None
        or name is None
        or model is None
        or device is None
        or devices is None
        or date is None
        or source is None
        or value is None
    ):
        raise SpecError(shown, problems or ["could not be read"])
    try:
        if model.endswith(".yaml") and folder is not None:
            model = str(folder / model)
        workload, dev = get_workload(model), get_device(device)
    except RooflineError as exc:
        raise SpecError(shown, [str(exc)]) from None
    return MeasuredRun(
        key,
        name,
        kind,
        workload,
        dev,
        devices,
        date,
        run,
        metric,
        value,
        source,
        notes,
        shown,
        prompt,
        output,
    )


def list_runs(folder: str | os.PathLike[str] | None = None) -> list[MeasuredRun]:
    """Every run file of `folder` (default: the shipped workloads/runs/), by date."""
    base = Path(folder) if folder is not None else data_dir("workloads") / "runs"
    runs = []
    for path in sorted(base.glob("*.yaml")):
        shown = f"workloads/runs/{path.name}" if folder is None else str(path)
        runs.append(parse_run(load_yaml_mapping(path, shown), shown, path.stem, path.parent))
    return sorted(runs, key=lambda r: (r.date, r.key))


def runs_from(paths: list[str | os.PathLike[str]]) -> list[MeasuredRun]:
    """The run files at `paths` (a user's own, to score beside or instead of the shipped
    set): a file, or a folder's every *.yaml; each read as a published run is (its model
    file relative to its own folder), by date. A path that is neither, a folder without run
    files, or a bad file: one SpecError naming the path (and the field)."""
    runs: dict[Path, MeasuredRun] = {}
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(path.glob("*.yaml"))
            if not found:
                raise SpecError(str(path), ["no run files (*.yaml) in this folder"])
        elif path.is_file():
            found = [path]
        else:
            raise SpecError(str(path), ["no such file or folder"])
        for f in found:
            if f.resolve() not in runs:
                data = load_yaml_mapping(f, str(f))
                runs[f.resolve()] = parse_run(data, str(f), f.stem, f.parent)
    return sorted(runs.values(), key=lambda r: (r.date, r.key))


@dataclass(frozen=True)
class Prediction:
    run: MeasuredRun
    predicted: float | None
    bound: float | None  # the same figure from the roofline bound
    step: StepTime
    reason: str = ""

    @property
    def rel_error(self) -> float | None:
        if self.predicted is None:
            return None
        return (self.predicted - self.run.measured) / self.run.measured

    @property
    def beats_bound(self) -> bool:
        """The measured figure is better than the roofline bound allows: the run cannot
        have been done as its file says (a lower precision, fewer FLOPs, another setup).
        Kept in the set and flagged: the published data disagrees with its own setup."""
        if self.bound is None:
            return False
        lower_is_better = self.run.metric in LOWER_IS_BETTER
        m = self.run.measured
        return m < self.bound if lower_is_better else m > self.bound


def _figure(r: MeasuredRun, step: StepTime, time: float | None) -> float | None:
    """The measured metric from a step time (expected or bound)."""
    if time is None or time <= 0:
        return None
    run, n = r.run, r.devices
    tokens = run.batch * (1 if run.phase == "decode" else (run.seq or 1))
    peak = r.device.peak(run.dtype)
    scale = (step.expected_s or time) / time  # utilization figures scale inversely with time
    metric = r.metric
    if metric in ("step_time_s", "ttft_s", "tpot_s"):
        return time
    if metric == "tokens_per_s":
        return tokens / time
    if metric == "tokens_per_s_per_device":
        return tokens / time / n
    if step.mfu is None or step.hfu is None:
        return None
    if metric == "mfu":
        return step.mfu * scale
    if metric == "hfu":
        return step.hfu if scale == 1 else step.mfu * scale
    if metric == "hardware_flops_per_device":
        # the bound runs no recomputation: its utilization is the model FLOPs'
        return (step.hfu if scale == 1 else step.mfu * scale) * peak
    raise ValueError(metric)


def _request(r: MeasuredRun) -> tuple[float, float, StepTime]:
    """(expected, bound) seconds of a whole request: the prompt's prefill, then a decode
    step for every further output token, at the context it has reached. The StepTime
    returned is the prefill's, with the parts of all the request's steps summed.

    Up to DECODE_SAMPLES decode steps are evaluated one by one; a longer request's steps are
    cut into DECODE_SAMPLES equal runs of consecutive steps, each counted as its length x
    the step at its middle context (the midpoint rule: a decode step grows almost linearly
    with the context, so the sum moves by far less than the model's own error)."""
    assert r.prompt is not None and r.output is not None  # checked when the file was read
    base = replace(r.run, phase="prefill", seq=r.prompt, context=None, logits="last")
    first = step_time(r.workload, base, r.device)
    expected, bound = first.expected_s, first.total_s
    parts = dict(first.parts)
    steps = r.output - 1  # decode steps i = 1 .. O - 1 at context P + i - 1
    pieces = min(steps, DECODE_SAMPLES)
    for j in range(pieces):
        lo, hi = 1 + steps * j // pieces, 1 + steps * (j + 1) // pieces  # steps lo .. hi - 1
        middle = r.prompt + (lo + hi - 1) / 2 - 1
        run = replace(r.run, phase="decode", seq=None, context=round(middle))
        step = step_time(r.workload, run, r.device)
        if expected is None or bound is None or step.expected_s is None or step.total_s is None:
            return math.nan, math.nan, step
        expected += (hi - lo) * step.expected_s
        bound += (hi - lo) * step.total_s
        for k, v in step.parts:
            parts[k] = parts.get(k, 0.0) + (hi - lo) * v
    if expected is None or bound is None:
        return math.nan, math.nan, first
    return expected, bound, replace(first, parts=tuple(parts.items()))


def predict(r: MeasuredRun) -> Prediction:
    if r.metric in REQUEST_METRICS:
        expected, bound, step = _request(r)
        if math.isnan(expected):
            return Prediction(r, None, None, step, step.reason or "cannot run")
        if r.metric != "request_latency_s":  # output tokens a second, or a device
            assert r.output is not None  # checked when the file was read
            made = float(r.run.batch * r.output)  # the global batch: every replica's
            if r.metric == "output_tokens_per_s_per_device":
                made /= r.devices
            return Prediction(r, made / expected, made / bound, step)
        return Prediction(r, expected, bound, step)
    step = step_time(r.workload, r.run, r.device)
    if step.expected_s is None:
        return Prediction(r, None, None, step, step.reason)
    return Prediction(r, _figure(r, step, step.expected_s), _figure(r, step, step.total_s), step)


def validate_runs(runs: list[MeasuredRun] | None = None) -> list[Prediction]:
    return [predict(r) for r in (runs if runs is not None else list_runs())]


def median_abs_error(predictions: list[Prediction]) -> float | None:
    errors = [abs(p.rel_error) for p in predictions if p.rel_error is not None]
    return statistics.median(errors) if errors else None


WIDE_ERROR = 0.35  # the limit: no run's prediction beyond 35 %


def error_summary(predictions: list[Prediction]) -> dict[str, Any]:
    """The errors of all runs, and of the runs whose measured figure the roofline bound of
    their stated setup allows (a run measured faster than its bound cannot be met by any
    expected time >= the bound: its file does not say how it ran). Each: the number of
    runs, the median and largest absolute error, and the runs beyond WIDE_ERROR."""

    def part(chosen: list[Prediction]) -> dict[str, Any]:
        rated = [p for p in chosen if p.rel_error is not None]
        errors = [abs(p.rel_error) for p in rated if p.rel_error is not None]
        return {
            "runs": len(chosen),
            "median_abs_error": statistics.median(errors) if errors else None,
            "largest_abs_error": max(errors) if errors else None,
            "beyond_35_percent": sorted(
                p.run.key
                for p in rated
                if p.rel_error is not None and abs(p.rel_error) > WIDE_ERROR
            ),
        }

    return {
        "all": part(predictions),
        "within_bound": part([p for p in predictions if not p.beats_bound]),
        "beats_bound": sorted(p.run.key for p in predictions if p.beats_bound),
    }


def source_of(key: str) -> str:
    """The source group of a run: its file name's first word (files are named
    <source>-<model>-<setup>: trtllm-, lmdeploy-, megatron2019-, korthikanti- ...)."""
    return key.split("-", 1)[0]


def by_source(predictions: list[Prediction]) -> list[dict[str, Any]]:
    """Per source group: its runs, kinds, devices, and the errors of its runs (median and
    largest absolute error, runs beyond WIDE_ERROR, runs measured beyond their bound), so a
    source that the model misses as a whole stands out from one run it misses."""
    groups: dict[str, list[Prediction]] = {}
    for p in predictions:
        groups.setdefault(source_of(p.run.key), []).append(p)
    rows = []
    for name in sorted(groups):
        chosen = groups[name]
        errors = [abs(p.rel_error) for p in chosen if p.rel_error is not None]
        rows.append(
            {
                "source": name,
                "runs": len(chosen),
                "kinds": sorted({p.run.kind for p in chosen}),
                "devices": sorted({p.run.device.key for p in chosen}),
                "median_abs_error": statistics.median(errors) if errors else None,
                "largest_abs_error": max(errors) if errors else None,
                "beyond_35_percent": sum(e > WIDE_ERROR for e in errors),
                "beats_bound": sum(p.beats_bound for p in chosen),
            }
        )
    return rows


# ---------------------------------------------------------------- the fitted share
def fit_sustained(runs: list[MeasuredRun] | None = None, kind: str = "training") -> Fit:
    """Fit calibration's share for `kind` runs (training: `training_sustained`; serving:
    `inference_sustained`) on the fit half of those runs and report the median absolute
    error on both halves at the fitted share (see calibration.py for the split, the
    objective and the runs left out of the fit: those measured beyond the bound)."""
    runs = runs if runs is not None else list_runs()
    chosen = [r for r in runs if r.kind == kind]
    fit_keys, held_keys = split([r.key for r in chosen])
    points: dict[str, tuple[float, bool, float, float, float]] = {}
    beyond: set[str] = set()
    for r in chosen:
        p = predict(replace(r, run=replace(r.run, sustained=1.0)))
        if p.predicted is None:
            continue
        if p.beats_bound:
            beyond.add(r.key)
        parts = dict(p.step.parts)
        scaled = sum(parts.get(k, 0.0) for k in SCALED_PARTS)
        fixed = sum(parts.values()) - scaled
        points[r.key] = (p.predicted, r.metric in LOWER_IS_BETTER, scaled, fixed, r.measured)
    share = best_share([points[k] for k in fit_keys if k in points and k not in beyond])

    errors = {k: figure(*points[k][:4], share) / points[k][4] - 1 for k in sorted(points)}

    def median_error(keys: list[str]) -> float:
        errs = [abs(errors[k]) for k in keys if k in errors and k not in beyond]
        return statistics.median(errs) if errs else math.nan

    return Fit(
        share,
        tuple(fit_keys),
        tuple(held_keys),
        median_error(fit_keys),
        median_error(held_keys),
        tuple(errors.items()),
        "training_sustained" if kind == "training" else "inference_sustained",
        tuple(sorted(beyond)),
    )
