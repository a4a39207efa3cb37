"""The catalog and the machine: validate (against published data), measure (this
machine as a device file), hardware list/show, models list/show, schema."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import FieldError
from .app import app, boundary, fail, hardware_app, models_app
from .io import Format, FormatOpt, OutputOpt, emit, show, show_of
from .values import names


class MeasureDevice(str, Enum):  # what `measure` times
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


class SchemaKind(str, Enum):  # the files `schema` describes
    device = "device"
    workload = "workload"
    run = "run"


@app.command()
@boundary
def validate(
    runs: Annotated[
        bool,
        typer.Option(
            "--runs", help="Predicted vs measured published runs (workloads/runs/) instead."
        ),
    ] = False,
    fit: Annotated[
        bool,
        typer.Option(
            "--fit",
            help="With --runs: refit the sustained shares on half the training (serving) runs and "
            "report the error on the other half; with --load: a share per serving stack, the same "
            "way.",
        ),
    ] = False,
    with_intervals: Annotated[
        bool,
        typer.Option(
            "--intervals",
            help="With --runs: recompute the intervals' factors (hardware/defaults/"
            "intervals.yaml) from the fit half of the training, serving and under-load runs, "
            "and their coverage on the held-out half.",
        ),
    ] = False,
    load: Annotated[
        bool,
        typer.Option(
            "--load",
            help="Serving under load: the simulation against published measurements "
            "(workloads/load_runs/).",
        ),
    ] = False,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="With --runs: your own run files or folders of them (the published runs' "
            "schema: `roofline schema run`), scored beside the shipped set.",
            show_default=False,
        ),
    ] = None,
    only: Annotated[
        bool,
        typer.Option("--only", help="With --runs PATH...: score only the files given."),
    ] = False,
    energy: Annotated[
        bool,
        typer.Option(
            "--energy",
            help="Training GPU-hours, energy and tCO2eq, and serving J per output token, "
            "against published figures (workloads/energy_runs/).",
        ),
    ] = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Computed params, inference and training FLOPs of every model vs the published dataset,
    and the places where the published data contradicts itself; with --runs, the expected
    time against published measured training and serving runs (and your own run files
    given as PATH); with --load, the serving simulation against published measurements
    under load."""
    if energy:
        if runs or load or fit or paths or with_intervals:
            raise FieldError("--energy", True, "give --energy alone")
        from ..energy_runs import summary, validate_energy
        from ..report import energy as re_

        energy_checks = validate_energy()
        medians = summary(energy_checks)
        show(
            fmt,
            output,
            data=lambda: {
                "median_abs_error": medians,
                "runs": re_.validate_rows(energy_checks),
            },
            rows=lambda: re_.validate_rows(energy_checks),
            table=lambda: re_.validate_table(energy_checks, medians),
        )
        return
    if fit and not (runs or load):
        raise FieldError("--fit", True, "goes with --runs or --load")
    if paths and not runs:
        raise FieldError("PATH", str(paths[0]), "run files to score go with --runs")
    if only and not paths:
        raise FieldError("--only", True, "goes with --runs PATH...")
    if fit and paths:
        raise FieldError("--fit", True, "refits on the shipped runs; give no PATH")
    if with_intervals:
        if not runs or load:
            raise FieldError("--intervals", True, "goes with --runs")
        if fit or paths:
            raise FieldError(
                "--intervals", True, "recomputes on the shipped runs; give --runs alone"
            )
        from ..interval_fit import load_residuals, run_residuals
        from ..intervals import intervals
        from ..load_runs import list_load_runs, predict_load
        from ..report import runs as rr
        from ..runs import validate_runs

        shipped_runs = validate_runs()
        kinds = [
            run_residuals(shipped_runs, "training"),
            run_residuals(shipped_runs, "serving"),
            load_residuals([predict_load(r) for r in list_load_runs()]),
        ]
        refitted = rr.coverage_rows(kinds, {k.kind: k.band() for k in kinds})
        shipped_bands = intervals().bands
        show(
            fmt,
            output,
            data=lambda: {"kinds": refitted},
            rows=lambda: refitted,
            table=lambda: rr.intervals_table(refitted, shipped_bands),
        )
        return
    if load and fit:
        if runs:
            raise FieldError("--load", True, "give --runs or --load, not both")
        from ..load_runs import fit_stacks
        from ..report import load_runs as rl

        stacks = fit_stacks()
        show(
            fmt,
            output,
            data=lambda: {"stacks": rl.fit_rows(stacks)},
            rows=lambda: rl.fit_rows(stacks),
            table=lambda: rl.fit_table(stacks),
        )
        return
    if load:
        if runs:
            raise FieldError("--load", True, "give --runs or --load, not both")
        from ..interval_fit import load_residuals
        from ..intervals import intervals
        from ..load_runs import list_load_runs, predict_load
        from ..report import load_runs as rl
        from ..report import runs as rr

        under_load = [predict_load(r) for r in list_load_runs()]
        (load_coverage,) = rr.coverage_rows([load_residuals(under_load)], intervals().bands)
        show(
            fmt,
            output,
            data=lambda: {
                "by_figure": rl.by_figure(under_load),
                # the shipped interval (kind load) and its coverage on the held-out half
                "interval_coverage": load_coverage,
                "runs": rl.load_rows(under_load),
            },
            rows=lambda: rl.load_rows(under_load),
            table=lambda: [*rl.load_tables(under_load), rr.coverage_line([load_coverage])],
        )
        return
    if runs and fit:
        from ..calibration import calibration
        from ..report import runs as rr
        from ..runs import KINDS, fit_sustained

        fits = [fit_sustained(kind=kind) for kind in ("training", "serving")]
        shipped = calibration()
        show(
            fmt,
            output,
            data=lambda: [rr.fit_dict(f, shipped.shipped(k)) for f, k in zip(fits, KINDS)],
            rows=lambda: [row for f in fits for row in rr.fit_rows(f)],
            table=lambda: [
                item for f, k in zip(fits, KINDS) for item in rr.fit_table(f, shipped.shipped(k))
            ],
        )
        return
    if runs:
        from ..interval_fit import run_residuals
        from ..intervals import intervals
        from ..report import runs as rr
        from ..runs import (
            by_source,
            error_summary,
            list_runs,
            median_abs_error,
            runs_from,
            validate_runs,
        )

        mine = runs_from(list(paths)) if paths else []
        predictions = validate_runs(([] if only else list_runs()) + mine)
        given = predictions[len(predictions) - len(mine) :]
        median = median_abs_error(predictions)
        shipped_set = predictions[: len(predictions) - len(mine)]
        coverage = (
            None
            if only
            else rr.coverage_rows(
                [run_residuals(shipped_set, k) for k in ("training", "serving")],
                intervals().bands,
            )
        )
        show(
            fmt,
            output,
            data=lambda: {
                "median_abs_error": median,
                "errors": error_summary(predictions),
                "given": error_summary(given)["all"] if mine else None,
                "by_source": by_source(predictions),
                # the shipped intervals' coverage on the held-out half of the shipped runs
                # (null with --only: no shipped run is scored)
                "interval_coverage": coverage,
                "runs": rr.run_rows(predictions),
            },
            rows=lambda: rr.csv_run_rows(predictions),
            table=lambda: rr.runs_table(predictions, median, len(mine), coverage),
        )
        return
    from ..report import validation as rv
    from ..validate import validate as run_validation

    checks = run_validation()
    show_of(fmt, output, checks, rv.check_rows, rv.check_rows, rv.validation_table)


@app.command()
@boundary
def measure(
    device: Annotated[
        MeasureDevice, typer.Option(help="What to measure: cpu (numpy), cuda, or auto.")
    ] = MeasureDevice.auto,
    dtype: Annotated[str, typer.Option(help="Datatypes, comma-separated (cpu: fp32, fp64).")] = (
        "fp32,fp64"
    ),
    quick: Annotated[bool, typer.Option(help="Fewer, smaller sizes (seconds, for tests).")] = False,
    output: OutputOpt = None,
) -> None:
    """Microbenchmark this machine (GEMM FLOP/s over sizes, memory bandwidth, per-call
    overhead) and write it as a device file for --hw."""
    from ..measure import DTYPES, device_yaml, measure_cpu

    if device is MeasureDevice.cuda:
        fail("--device cuda: measuring a GPU needs PyTorch and a GPU; this build measures the CPU")
    chosen = names("--dtype", dtype)
    for name in chosen:
        if name not in DTYPES:
            raise FieldError("dtype", name, f"the CPU is measured in {', '.join(DTYPES)}")
    result = measure_cpu(
        tuple(chosen), quick=quick, progress=lambda text: typer.echo(f"measuring {text}", err=True)
    )
    emit(device_yaml(result), None, output)
    if output is not None:
        typer.echo(f"wrote {output}", err=True)


@hardware_app.command("list")
@boundary
def hardware_list(fmt: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """Every device in the database, oldest first."""
    from ..hardware import list_devices
    from ..report import catalog as rc

    devices = list_devices()
    show(
        fmt,
        output,
        data=lambda: rc.device_rows(devices),
        rows=lambda: rc.device_csv_rows(devices),
        table=lambda: [rc.device_list_table(devices)],
    )


def _detail(kind: str, name: str, fmt: Format) -> None:
    """`hardware show` and `models show`: one device or model as text (table) or JSON."""
    from ..report import catalog as rc
    from ..report import to_json

    if fmt is Format.csv:
        others = "hardware list" if kind == "device" else "models list"
        fail(f"--format csv: {kind} details are table or json ({others} -f csv: every one)")
    if kind == "device":
        from ..hardware import get_device

        device = get_device(name)
        as_json = fmt is Format.json
        text = to_json(rc.device_dict(device)) if as_json else rc.device_detail(device) + "\n"
    else:
        from ..workloads import get_workload

        w = get_workload(name)
        data = rc.workload_dict(w) | {"params": w.params}
        text = to_json(data) if fmt is Format.json else rc.workload_detail(w)
    emit(text, None, None)


def _show_command(group: typer.Typer, kind: str, what: str, doc: str) -> None:
    """`hardware show NAME` or `models show NAME`."""

    def command(name: str, fmt: Format = Format.table) -> None:
        _detail(kind, name, fmt)

    command.__doc__ = doc
    command.__annotations__ = {  # objects, not the strings of `from __future__`
        "name": Annotated[str, typer.Argument(help=f"{what} name, alias or file.")],
        "fmt": FormatOpt,
        "return": None,
    }
    group.command("show")(boundary(command))


_show_command(
    hardware_app, "device", "Device",
    "One device: peaks per datatype, ridge points, memory, interconnect, source.",
)  # fmt: skip
_show_command(
    models_app, "model", "Model",
    "One model: architecture, computed and published figures, sources (-f json: every field).",
)  # fmt: skip


@models_app.command("list")
@boundary
def models_list(fmt: FormatOpt = Format.table) -> None:
    """Every model in the catalog."""
    from ..report import catalog as rc
    from ..workloads import list_workloads

    workloads = list_workloads()
    rows = [rc.workload_dict(w) | {"params": w.params} for w in workloads]
    show(
        fmt,
        None,
        data=lambda: rows,
        rows=lambda: [{k: r[k] for k in ("key", "name", "family", "params")} for r in rows],
        table=lambda: [rc.workload_list_table(workloads, [w.params for w in workloads])],
    )


@app.command()
@boundary
def schema(
    kind: Annotated[SchemaKind, typer.Argument(help="device, workload or run.")],
    output: OutputOpt = None,
) -> None:
    """The JSON Schema (draft 2020-12) of a device, workload or measured-run file, recorded
    from the loader itself (editors and CI can check files against it)."""
    import json

    from ..file_schema import file_schema

    emit(json.dumps(file_schema(kind.value), indent=2) + "\n", None, output)
