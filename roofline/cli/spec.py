"""From a command's declared options (options.py) and an optional run file to the run the
library takes: the command line overrides the file, the file overrides the command's
defaults; aliases become the tool's own names; a flag given where it has no effect is
refused; --gpus becomes data-parallel replicas. No arithmetic of the physics here."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import typer

from ..errors import FieldError, RooflineError
from ..scenario import PHASES, Layout, RunConfig
from .options import BY_NAME, canonical

LAYOUT = {"dp": "data", "tp": "tensor", "pp": "pipeline", "zero": "zero"}


@dataclass(frozen=True)
class Spec:
    """What a scenario command runs: `run` (a what-if's base run: its axes in `axes`)."""

    command: str
    model: str | None
    hw: str | None
    run: RunConfig
    axes: dict[str, list[Any]] = field(default_factory=dict)
    request: tuple[int | None, int | None] = (None, None)  # a run file's tokens in, out
    explicit: frozenset[str] = frozenset()  # every option given on the command line

    def need_model(self) -> str:
        if self.model is None:
            raise FieldError("model", None, "give --model (or --run FILE)")
        return self.model

    def need_hw(self) -> str:
        if self.hw is None:
            raise FieldError("device", None, "give --hw (or a run file with `device:`)")
        return self.hw


def _explicit(ctx: typer.Context) -> frozenset[str]:
    given = ("COMMANDLINE", "ENVIRONMENT")  # typer's own click: compared by name
    sources = {n: ctx.get_parameter_source(n) for n in ctx.params}
    return frozenset(n for n, s in sources.items() if s is not None and s.name in given)


def _from_run(run: RunConfig) -> dict[str, Any]:
    """A run's values by option name (the inverse of _to_run)."""
    values: dict[str, Any] = {}
    for name, o in BY_NAME.items():
        if o.field.startswith("layout."):
            values[name] = getattr(run.layout, o.field.split(".")[1])
        elif o.field:
            values[name] = getattr(run, o.field)
    return values


def _split(o_name: str, text: Any) -> list[Any]:
    """A what-if axis: comma-separated text (or one value from a file) as a list."""
    o = BY_NAME[o_name]
    if not isinstance(text, str):
        return [text]
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise FieldError(o.field or o.name, None, "empty sweep axis; give at least one value")
    if o.kind is str:
        return [canonical(o_name, p) for p in parts]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise FieldError(
            o.field or o.name, text, "expected whole numbers separated by commas"
        ) from None


def _refuse_no_effect(values: dict[str, Any], explicit: frozenset[str]) -> None:
    phase = values.get("phase", "inference")
    if phase not in PHASES:
        return  # RunConfig names the phases allowed
    for name in sorted(explicit & set(BY_NAME), key=list(BY_NAME).index):
        o = BY_NAME[name]
        value = values[name]
        if phase in o.phases or value == o.default or value is None:
            continue
        where = " or ".join([", ".join(o.phases[:-1]), o.phases[-1]] if o.phases[:-1] else o.phases)
        raise RooflineError(
            f"{o.given(value)}: applies to phase {where} only (this run is --phase {phase})"
        )
    parallel = values.get("sequence_parallel", True)
    if "sequence_parallel" in explicit and not parallel and values.get("tp", 1) == 1:
        off = BY_NAME["sequence_parallel"].negation
        raise RooflineError(f"{off}: applies with {BY_NAME['tp'].flag} > 1")
    if values.get("virtual_stages", 1) != 1 and values.get("pp", 1) == 1:
        stages = values["virtual_stages"]
        raise RooflineError(
            f"--virtual-stages {stages}: interleaves pipeline stages; give --pp > 1"
        )


def _gpus(values: dict[str, Any], explicit: frozenset[str]) -> None:
    """--gpus N: the layout's data-parallel replicas are N / (tp x pp)."""
    gpus = values.pop("gpus", None)
    if gpus is None:
        return
    if "dp" in explicit:
        raise FieldError("gpus", None, "--gpus and --dp name the same thing; give one")
    split = values.get("tp", 1) * values.get("pp", 1)
    counts = gpus if isinstance(gpus, list) else [gpus]
    for n in counts:
        if not isinstance(n, int) or n < 1 or n % split:
            raise FieldError("gpus", n, f"must be a multiple of --tp x --pp = {split}")
    dp = [n // split for n in counts]
    values["dp"] = dp if isinstance(gpus, list) else dp[0]


def build_spec(
    ctx: typer.Context,
    command: str,
    values: dict[str, Any],
    *,
    model: str | None,
    run_file: Path | None,
    save_run: Path | None,
    hw: str | None,
    defaults: dict[str, Any],
) -> Spec:
    from ..runfile import read_run_file, run_file_text

    explicit = _explicit(ctx)
    base = dict(defaults)
    request: tuple[int | None, int | None] = (None, None)
    cluster = None
    if run_file is not None:
        loaded = read_run_file(run_file)
        base |= {k: v for k, v in _from_run(loaded.run).items() if k in values}
        model = model if model is not None else loaded.model
        hw = hw if "hw" in explicit else (loaded.device or hw)
        request, cluster = (loaded.prompt, loaded.output), loaded.run.cluster
    merged = base | {k: v for k, v in values.items() if k in explicit}
    axes: dict[str, list[Any]] = {}
    for name in list(merged):
        if command == "whatif" and BY_NAME[name].axis:
            axes[name] = _split(name, merged[name]) if merged[name] is not None else [None]
            merged[name] = axes[name][0]
        else:
            merged[name] = canonical(name, merged[name])
    given = dict(merged)
    if "gpus" in axes:
        merged["gpus"] = None if axes["gpus"] == [None] else axes.pop("gpus")
        _gpus(merged, explicit)
        if isinstance(merged.get("dp"), list):
            axes["dp"] = merged["dp"]
            merged["dp"] = 1
    else:
        _gpus(merged, explicit)
    if command == "whatif":
        merged["dp"] = 1  # the replicas are an axis of their own
        merged["batch"] = max(axes["batch"])
    layout = Layout(**{LAYOUT[k]: merged.pop(k) for k in list(merged) if k in LAYOUT})
    fields = {BY_NAME[k].field: v for k, v in merged.items() if BY_NAME[k].field}
    run = replace(RunConfig(**fields, layout=layout), cluster=cluster)  # values checked
    _refuse_no_effect(given, explicit)  # then the ones that would change nothing
    spec = Spec(command, model, hw, run, axes, request, explicit)
    if save_run is not None:
        from .io import write_file

        tokens = request if None not in request else None
        write_file(save_run, run_file_text(spec.need_model(), hw, run, tokens))  # type: ignore[arg-type]
    return spec
