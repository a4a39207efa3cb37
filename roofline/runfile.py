"""A run written down once: the file `--run FILE` reads and `--save-run FILE` writes.

    model: llama-2-7b            # a catalog name, or a model file (relative to this file)
    device: a100                 # optional: the --hw the run is for
    devices: 8                   # optional: checked against the layout
    run:                         # the RunConfig fields, read as a published run's are
      batch: 64
      seq: 2048
      dtype: bf16
      phase: training            # the reader's default when left out
      layout: {data: 2, tensor: 4, pipeline: 1, zero: 1}
      recompute: selective
    request: {prompt: 2048, output: 128}   # optional: serving's tokens in and out
    name: my run                 # optional, and `notes:`

A published run of workloads/runs/ (one with `measured:`) is a run file too: its model,
device and run are read by the same reader (runs.read_run_config), the rest ignored here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._schema import Fields, Problems
from ._yaml import dump_yaml, load_yaml_mapping
from .errors import RooflineError, SpecError
from .scenario import RunConfig

MODEL_FILES = (".yaml", ".yml", ".json", ".onnx")


@dataclass(frozen=True)
class RunFile:
    path: str
    model: str
    device: str | None
    run: RunConfig
    prompt: int | None = None
    output: int | None = None


def _model_path(model: str, folder: Path) -> str:
    """A model file named relative to the run file's folder, or a catalog name."""
    if model.lower().endswith(MODEL_FILES) and not Path(model).is_absolute():
        return str(folder / model)
    return model


def read_run_file(path: Path) -> RunFile:
    """A run file (see the module docstring) as a RunFile, or one SpecError naming the file
    and every problem."""
    from .runs import parse_run, read_run_config

    shown = str(path)
    if path.is_dir():
        raise SpecError(shown, ["is a folder, not a run file"])
    data = load_yaml_mapping(path, shown)
    if "measured" in data:  # a published run: the same reader as `validate --runs`
        measured = parse_run(data, shown, path.stem, path.parent)
        model = _model_path(str(data["model"]), path.parent)
        return RunFile(
            shown, model, measured.device.key, measured.run, measured.prompt, measured.output
        )
    problems = Problems()
    top = Fields(data, problems)
    named = top.text("model")
    device = top.text("device", required=False)
    devices = top.integer("devices", required=False)
    top.text("name", required=False)
    top.text("notes", required=False)
    fields = top.mapping("run")
    prompt = output = None
    req = top.mapping("request", required=False)
    if req is not None:
        prompt, output = req.integer("prompt"), req.integer("output")
        req.done()
    top.done()
    run = None
    if fields is not None:
        try:
            run = read_run_config(fields, devices)
        except RooflineError as exc:  # a RunConfig check: name the file
            problems.append(f"run: {exc}")
    if problems or run is None or named is None:
        raise SpecError(shown, problems or ["could not be read"])
    return RunFile(shown, _model_path(named, path.parent), device, run, prompt, output)


def run_file_text(
    model: str,
    device: str | None,
    run: RunConfig,
    request: tuple[int, int] | None = None,
) -> str:
    """The run file of a run: every field that differs from RunConfig's defaults, and the
    phase and batch always (a file without a phase reads as training; the batch is
    required)."""
    defaults = RunConfig()
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(RunConfig):
        value = getattr(run, f.name)
        if f.name in ("layout", "cluster", "replicated_over"):
            continue
        if f.name in ("phase", "batch") or value != getattr(defaults, f.name):
            fields[f.name] = value
    layout = dataclasses.asdict(run.layout)
    if run.layout != defaults.layout:
        fields["layout"] = layout
    if run.cluster is not None:
        raise RooflineError("a run with a cluster: cannot be saved yet (write `cluster:` by hand)")
    doc: dict[str, Any] = {"model": model}
    if device is not None:
        doc["device"] = device
    doc["run"] = fields
    if request is not None:
        doc["request"] = {"prompt": request[0], "output": request[1]}
    header = "# a roofline run file: `roofline run --run THIS` (flags given override it)\n"
    return header + dump_yaml(doc)
