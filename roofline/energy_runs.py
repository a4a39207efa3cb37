"""Published energy and emissions (`workloads/energy_runs/*.yaml`) and what the model
predicts for them (`roofline validate --energy`).

A training file names the run (a model, a device type and count, the RunConfig of one step,
as in workloads/runs/) and its training tokens, with what was published: the GPU-hours and
the method that turned them into energy and emissions (power per GPU, PUE, gCO2eq/kWh, as
the source states them). The prediction: steps = tokens / (batch x seq), each the expected
step time (step.py), GPU-hours = steps x step time x devices / 3600; energy and tCO2eq by
the source's own method on the predicted GPU-hours (GPU-hours x power x PUE, x intensity),
and, beside them, the energy this model's power model gives (energy.py, GPU boards only).

A serving file names a static batch of requests (serve.serve) and the measured joules per
output token (GPU energy over the output tokens, no PUE); the prediction is
energy.serving_energy at PUE 1 and no node power (what a GPU power meter counts).

Nothing here is fitted.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from ._paths import data_dir
from ._schema import Fields, Problems
from ._yaml import load_yaml_mapping
from .energy import scaled, serving_energy, site, step_energy
from .errors import RooflineError, SpecError
from .hardware import Device, get_device
from .runs import read_run_config
from .scenario import RunConfig
from .serve import Request, serve
from .step import step_time
from .workloads import Workload, get_workload

FIGURES = ("gpu_hours", "energy_kwh", "co2_t", "joules_per_output_token")


@dataclass(frozen=True)
class EnergyRun:
    key: str
    name: str
    kind: str  # training | serving
    workload: Workload
    device: Device
    devices: int
    run: RunConfig
    tokens: float | None
    request: Request | None
    published: dict[str, float]  # FIGURES given by the source
    power_w: float | None  # the source's power per GPU (its method)
    pue: float | None
    g_per_kwh: float | None
    source: str
    path: str


def _read(data: dict[str, object], shown: str, key: str, folder: Path) -> EnergyRun:
    problems = Problems()
    top = Fields(data, problems)
    name = top.text("name")
    kind = top.choice("kind", ("training", "serving"))
    model = top.text("model")
    device = top.text("device")
    devices = top.integer("devices")
    tokens = top.number("tokens", required=kind == "training")
    req = top.mapping("request", required=kind == "serving")
    prompt = output = None
    if req is not None:
        prompt, output = req.integer("prompt"), req.integer("output")
        req.done()
    pub = top.mapping("published")
    published: dict[str, float] = {}
    power = pue = intensity = None
    if pub is not None:
        for figure in FIGURES:
            v = pub.number(figure, required=False)
            if v is not None:
                published[figure] = v
        power = pub.number("power_w", required=False)
        pue = pub.number("pue", required=False)
        intensity = pub.number("g_per_kwh", required=False)
        pub.text("quote")
        pub.done()
    run_fields = top.mapping("run")
    source = top.text("source")
    top.text("notes", required=False)
    top.done()
    run = None
    if run_fields is not None:
        try:
            run = read_run_config(run_fields, devices)
        except RooflineError as exc:
            problems.append(f"run: {exc}")
    if not published and pub is not None:
        problems.append(f"published: give at least one of {', '.join(FIGURES)}")
    if problems or None in (name, kind, model, device, devices, run, source):
        raise SpecError(shown, problems or ["could not be read"])
    assert name and kind and model and device and devices and run and source
    try:
        path = str(folder / model) if model.endswith(".yaml") else model
        workload, dev = get_workload(path), get_device(device)
    except RooflineError as exc:
        raise SpecError(shown, [str(exc)]) from None
    request = Request(prompt, output) if prompt and output else None
    return EnergyRun(key, name, kind, workload, dev, devices, run, tokens, request, published,
                     power, pue, intensity, source, shown)  # fmt: skip


def list_energy_runs(folder: str | None = None) -> list[EnergyRun]:
    base = Path(folder) if folder else data_dir("workloads") / "energy_runs"
    runs = []
    for p in sorted(base.glob("*.yaml")):
        shown = f"workloads/energy_runs/{p.name}" if folder is None else str(p)
        runs.append(_read(load_yaml_mapping(p, shown), shown, p.stem, p.parent.parent / "runs"))
    return runs


@dataclass(frozen=True)
class EnergyCheck:
    run: EnergyRun
    figure: str
    published: float
    predicted: float | None
    modelled_energy_kwh: float | None  # this model's power model (GPU boards), training
    reason: str = ""

    @property
    def rel_error(self) -> float | None:
        if self.predicted is None:
            return None
        return (self.predicted - self.published) / self.published


def check_run(r: EnergyRun) -> list[EnergyCheck]:
    """Every published figure of `r` beside its prediction."""
    gpu_only = site(pue=1.0, node_power_w=0.0)
    out = []
    if r.kind == "serving":
        assert r.request is not None
        result = serve(r.workload, replace(r.run, phase="decode"), r.device, r.request)
        e = serving_energy(result, gpu_only)
        for figure, value in r.published.items():
            out.append(EnergyCheck(r, figure, value, e.joules_per_output_token, None,
                                   e.energy.reason))  # fmt: skip
        return out
    step = step_time(r.workload, r.run, r.device)
    assert r.tokens is not None
    steps = r.tokens / (r.run.batch * (r.run.seq or 1))
    if step.expected_s is None:
        return [EnergyCheck(r, f, v, None, None, step.reason) for f, v in r.published.items()]
    hours = steps * step.expected_s * r.devices / 3600
    kwh = None if r.power_w is None else hours * r.power_w / 1e3 * (r.pue or 1.0)
    co2 = None if kwh is None or r.g_per_kwh is None else kwh * r.g_per_kwh / 1e6
    modelled = scaled(step_energy(step, r.device, r.devices, gpu_only), steps).energy_j
    mod_kwh = None if modelled is None else modelled / 3.6e6
    predicted = {"gpu_hours": hours, "energy_kwh": kwh, "co2_t": co2}
    for figure, value in r.published.items():
        out.append(EnergyCheck(r, figure, value, predicted.get(figure), mod_kwh))
    return out


def validate_energy(folder: str | None = None) -> list[EnergyCheck]:
    return [c for r in list_energy_runs(folder) for c in check_run(r)]


def summary(checks: list[EnergyCheck]) -> dict[str, float | None]:
    """Median absolute relative error of each figure."""
    out: dict[str, float | None] = {}
    for figure in FIGURES:
        errs = [abs(c.rel_error) for c in checks if c.figure == figure and c.rel_error is not None]
        out[figure] = statistics.median(errs) if errs else None
    return out
