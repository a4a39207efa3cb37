"""Command line: parse, call one library function, format. No arithmetic here.

Domain errors (RooflineError) print as one line on stderr with exit code 2.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from .errors import RooflineError

app = typer.Typer(
    name="roofline",
    help="Hardware-aware roofline simulator: per-layer FLOPs, bytes, intensity and time "
    "of ML models on real devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
hardware_app = typer.Typer(help="The device database.", no_args_is_help=True)
models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)
app.add_typer(hardware_app, name="hardware")
app.add_typer(models_app, name="models")


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"roofline: error: {message}", err=True)
    raise typer.Exit(2)


def _readable(path: str) -> None:
    """Give a temp file the permissions a plain open() would have (mkstemp makes it 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _emit(text: str | None, renderables: list[Any] | None, output: Path | None) -> None:
    """Print, or write the whole file at once (temp file + rename: never half-written)."""
    if renderables is not None:
        from rich.console import Console

        buffer = None
        if output is not None or not sys.stdout.isatty():
            import io

            buffer = io.StringIO()
            console = Console(file=buffer, width=160, color_system=None)
        else:
            console = Console()
        for item in renderables:
            console.print(item)
        if buffer is None:
            return
        text = "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())
    if text is None:
        return
    if output is None:
        sys.stdout.write(text)
        return
    target = output.resolve()
    if not target.parent.is_dir():
        _fail(f"--output {output}: folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        _readable(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        _fail(f"--output {output}: {exc.strerror or exc}")


def _show(
    fmt: Format,
    output: Path | None,
    *,
    data: Callable[[], Any],
    rows: Callable[[], list[dict[str, Any]]],
    table: Callable[[], list[Any]],
) -> None:
    """One result in the chosen format: `data` as JSON, `rows` as CSV, `table` for people.
    Only the chosen one is built."""
    from . import report

    if fmt is Format.json:
        _emit(report.to_json(data()), None, output)
    elif fmt is Format.csv:
        _emit(report.to_csv(rows()), None, output)
    else:
        _emit(None, table(), output)


@app.command()
def run(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name, or a workload YAML.")],
    hw: Annotated[str, typer.Option("--hw", help="Device name or alias, or a device YAML.")],
    batch: Annotated[int, typer.Option(help="Samples per batch.")] = 1,
    seq: Annotated[
        int | None, typer.Option(help="Tokens per sample [default: the model's maximum].")
    ] = None,
    dtype: Annotated[str, typer.Option(help="fp16, bf16, fp32, tf32, fp8, int8, fp64.")] = "fp16",
    phase: Annotated[
        str, typer.Option(help="inference (= prefill), prefill, decode or training.")
    ] = "inference",
    context: Annotated[
        int | None,
        typer.Option(help="Decode only: tokens in the KV cache [default: --seq or the maximum]."),
    ] = None,
    optimizer: Annotated[
        str, typer.Option(help="Training: the optimizer whose update ends the step.")
    ] = "adam",
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Per-layer roofline of MODEL on device HW, with a summary."""
    try:
        from . import report
        from .analysis import analyze
        from .scenario import RunConfig

        run_config = RunConfig(
            batch=batch, seq=seq, dtype=dtype, phase=phase, context=context, optimizer=optimizer
        )
        result = analyze(model, hw, run_config)
        _show(
            fmt,
            output,
            data=lambda: report.result_dict(result),
            rows=lambda: report.layer_rows(result),
            table=lambda: report.result_table(result),
        )
    except RooflineError as exc:
        _fail(str(exc))


@app.command()
def validate(fmt: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """Computed params, inference and training FLOPs of every model vs the published dataset,
    and the places where the published data contradicts itself."""
    try:
        from . import report
        from .validate import validate as run_validation

        checks = run_validation()
        _show(
            fmt,
            output,
            data=lambda: report.check_rows(checks),
            rows=lambda: report.check_rows(checks),
            table=lambda: report.validation_table(checks),
        )
    except RooflineError as exc:
        _fail(str(exc))


def _step(w: Any, run: Any, layout: Any, device: Any) -> tuple[float, float] | None:
    """(compute, communication) seconds of a step, or None where the device cannot run it
    (no peak for the dtype, no interconnect for a multi-device layout)."""
    from .parallel import step_time

    try:
        return step_time(w, run, layout, device)
    except RooflineError:
        return None


@app.command()
def memory(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name, or a model file.")],
    hw: Annotated[
        str | None, typer.Option("--hw", help="Devices, comma-separated [default: all].")
    ] = None,
    batch: Annotated[int, typer.Option(help="Samples per batch.")] = 1,
    seq: Annotated[int | None, typer.Option(help="Tokens per sample.")] = None,
    dtype: Annotated[str, typer.Option(help="Datatype of weights and activations.")] = "fp16",
    phase: Annotated[
        str, typer.Option(help="training, inference, prefill or decode.")
    ] = "training",
    context: Annotated[int | None, typer.Option(help="Decode: tokens in the KV cache.")] = None,
    optimizer: Annotated[
        str, typer.Option(help="sgd, sgd-momentum, adam, adamw, lamb, adafactor.")
    ] = "adam",
    master_weights: Annotated[
        bool, typer.Option(help="Keep an fp32 master copy of 16/8-bit weights.")
    ] = True,
    recompute: Annotated[bool, typer.Option(help="Full activation checkpointing.")] = False,
    dp: Annotated[int, typer.Option(help="Data-parallel replicas of the layout.")] = 1,
    tp: Annotated[int, typer.Option(help="Tensor-parallel ways.")] = 1,
    pp: Annotated[int, typer.Option(help="Pipeline stages.")] = 1,
    zero: Annotated[int, typer.Option(help="ZeRO stage 0-3 over the data-parallel replicas.")] = 0,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Memory footprint of a training step or an inference pass (per device of a
    --dp/--tp/--pp/--zero layout), where it fits, the smallest layout that fits, and the
    layout's communication on each device's interconnect."""
    try:
        from . import report
        from .hardware import get_device, list_devices
        from .memory import fits
        from .parallel import Layout, communication, min_layout, per_device_memory
        from .scenario import RunConfig
        from .workloads import get_workload

        w = get_workload(model)
        run_config = RunConfig(batch=batch, seq=seq, dtype=dtype, phase=phase, context=context)
        layout = Layout(dp, tp, pp, zero)
        breakdown = per_device_memory(
            w, run_config, layout, optimizer, master_weights=master_weights, recompute=recompute
        )
        comm = communication(w, run_config, layout)
        devices = [get_device(n) for n in _names("--hw", hw)] if hw else list_devices()
        whole = per_device_memory(
            w, run_config, Layout(), optimizer, master_weights=master_weights, recompute=recompute
        )
        result = fits(breakdown, devices, whole)
        layouts = {
            d.key: min_layout(w, run_config, d, optimizer, recompute=recompute) for d in devices
        }
        steps = {d.key: _step(w, run_config, layout, d) for d in devices}
        data = report.memory_dict(breakdown, result, layout, comm, layouts, steps)
        rows = [
            d | {"total_bytes": breakdown.total, "min_layout": str(d["min_layout"])}
            for d in data["devices"]
        ]
        title = f"{w.name}: {phase}, batch {batch}, {dtype}" + (
            f", {optimizer}" if phase == "training" else ""
        )
        if layout.devices > 1:
            title += f"; per device of dp {dp} x tp {tp} x pp {pp}, ZeRO-{zero}"
        _show(
            fmt,
            output,
            data=lambda: data,
            rows=lambda: rows,
            table=lambda: report.memory_table(
                title, breakdown, result, layout, comm, layouts, steps
            ),
        )
    except RooflineError as exc:
        _fail(str(exc))


def _ints(flag: str, text: str) -> list[int]:
    """A comma-separated sweep axis of whole numbers."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            values.append(int(part))
        except ValueError:
            raise RooflineError(
                f"{flag} {text!r}: expected whole numbers separated by commas"
            ) from None
    if not values:
        raise RooflineError(f"{flag}: empty sweep axis; give at least one value")
    return values


def _names(flag: str, text: str) -> list[str]:
    values = [p.strip() for p in text.split(",") if p.strip()]
    if not values:
        raise RooflineError(f"{flag}: empty sweep axis; give at least one value")
    return values


@app.command()
def whatif(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name, or a model file.")],
    hw: Annotated[str, typer.Option("--hw", help="Devices, comma-separated.")],
    batch: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1",
    seq: Annotated[str | None, typer.Option(help="Sequence lengths, comma-separated.")] = None,
    context: Annotated[str | None, typer.Option(help="Decode contexts, comma-separated.")] = None,
    dtype: Annotated[str, typer.Option(help="Datatypes, comma-separated.")] = "fp16",
    devices: Annotated[
        str, typer.Option(help="Data-parallel device counts, comma-separated.")
    ] = "1",
    phase: Annotated[
        str, typer.Option(help="inference, prefill, decode or training.")
    ] = "inference",
    optimizer: Annotated[str, typer.Option(help="Training optimizer.")] = "adam",
    flops_scale: Annotated[float, typer.Option(help="Scale every device's peaks.")] = 1.0,
    bw_scale: Annotated[float, typer.Option(help="Scale every device's memory bandwidth.")] = 1.0,
    capacity_scale: Annotated[float, typer.Option(help="Scale every device's memory.")] = 1.0,
    utilization: Annotated[
        float | None, typer.Option(help="Fraction of peak reached, for time to train.")
    ] = None,
    price: Annotated[float | None, typer.Option(help="Price per device-hour, for cost.")] = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Sweep batch, sequence, context, dtype, device and device count; answer the batch at
    which a step turns compute-bound, the largest batch that fits, time to train and cost."""
    try:
        from . import report
        from .hardware import get_device
        from .whatif import answers, build_sweep, run_sweep, scaled
        from .workloads import get_workload

        w = get_workload(model)
        devs = [
            scaled(get_device(n), flops_scale, bw_scale, capacity_scale) for n in _names("--hw", hw)
        ]
        sweep = build_sweep(
            w,
            devs,
            batches=_ints("--batch", batch),
            seqs=[None] if seq is None else list(_ints("--seq", seq)),
            contexts=[None] if context is None else list(_ints("--context", context)),
            dtypes=_names("--dtype", dtype),
            replicas=_ints("--devices", devices),
            phase=phase,
            optimizer=optimizer,
        )
        pairs = sweep.grid.scenarios * len(devs)
        limit = 200 if fmt is Format.table else 1_000_000
        rows = report.whatif_rows(sweep, run_sweep(sweep)) if pairs <= limit else []
        if pairs > 20_000_000:  # more than about a second: show progress on stderr
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("sweep", total=sweep.grid.scenarios)
                found = answers(
                    sweep,
                    utilization=utilization,
                    price_per_hour=price,
                    progress=lambda done, total: bar.update(task, completed=done),
                )
        else:
            found = answers(sweep, utilization=utilization, price_per_hour=price)
        result: dict[str, Any] = {
            "answers": found,
            "scenarios": rows,
            "scenario_device_pairs": pairs,
        }
        _show(
            fmt,
            output,
            data=lambda: result,
            rows=lambda: rows,
            table=lambda: report.whatif_tables(w.name, sweep, result),
        )
    except RooflineError as exc:
        _fail(str(exc))


FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def _save_figure(fig: Any, output: Path) -> None:
    """Write a matplotlib Figure whole (temp file + rename), format from the suffix."""
    suffix = output.suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        _fail(f"--output {output}: the file must end in {', '.join(FIGURE_SUFFIXES)}")
    target = output.resolve()
    if not target.parent.is_dir():
        _fail(f"--output {output}: folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, format=suffix[1:], dpi=150)
        _readable(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        _fail(f"--output {output}: {exc.strerror or exc}")
    typer.echo(f"wrote {output}", err=True)


@app.command()
def plot(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name, or a model file.")],
    hw: Annotated[str, typer.Option("--hw", help="Devices, comma-separated (up to 6).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File: .png, .svg or .pdf.")],
    batch: Annotated[int, typer.Option(help="Samples per batch.")] = 1,
    seq: Annotated[int | None, typer.Option(help="Tokens per sample.")] = None,
    dtype: Annotated[str, typer.Option(help="Datatype.")] = "fp16",
    phase: Annotated[
        str, typer.Option(help="inference, prefill, decode or training.")
    ] = "inference",
    context: Annotated[int | None, typer.Option(help="Decode: tokens in the KV cache.")] = None,
    all_dtypes: Annotated[bool, typer.Option(help="Draw every dtype's compute ceiling.")] = False,
    top: Annotated[int, typer.Option(help="Label this many layers by time.")] = 5,
) -> None:
    """Roofline chart of MODEL on one or more devices."""
    try:
        from . import plot as plots
        from .analysis import analyze
        from .hardware import get_device
        from .scenario import RunConfig
        from .workloads import get_workload

        if top < 0:
            raise RooflineError(f"--top {top}: must be >= 0")
        w = get_workload(model)
        run_config = RunConfig(batch=batch, seq=seq, dtype=dtype, phase=phase, context=context)
        results = [analyze(w, get_device(n), run_config) for n in _names("--hw", hw)]
        _save_figure(plots.roofline(results, all_dtypes=all_dtypes, top=top), output)
    except RooflineError as exc:
        _fail(str(exc))


class WallFigure(str, Enum):
    scaling = "scaling"
    models = "models"
    compute = "compute"
    memory = "memory"


@app.command()
def memwall(
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Show one workload across generations.")
    ] = None,
    hw: Annotated[str | None, typer.Option("--hw", help="Devices [default: all].")] = None,
    batch: Annotated[int, typer.Option(help="Samples per batch (with --model).")] = 1,
    seq: Annotated[int | None, typer.Option(help="Tokens per sample (with --model).")] = None,
    phase: Annotated[str, typer.Option(help="Phase (with --model).")] = "inference",
    figure: Annotated[
        WallFigure, typer.Option(help="Which chart --output draws.")
    ] = WallFigure.scaling,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Chart: .png, .svg, .pdf.")
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Growth per two years of peak FLOP/s, DRAM and interconnect bandwidth and memory
    capacity, fitted over the device database, next to the paper's; or, with --model, the
    workload on every device in release order."""
    try:
        from . import memwall as wall
        from . import report
        from .hardware import get_device, list_devices
        from .scenario import RunConfig
        from .workloads import get_workload, list_workloads

        devices = [get_device(n) for n in _names("--hw", hw)] if hw else list_devices()
        if model is not None:
            w = get_workload(model)
            gens = wall.generations(w, devices, RunConfig(batch=batch, seq=seq, phase=phase))
            if output is not None:
                from . import plot as plots

                _save_figure(plots.generations(gens, name=w.name), output)
            _show(
                fmt,
                None,
                data=lambda: report.generation_rows(gens),
                rows=lambda: report.generation_rows(gens),
                table=lambda: [report.generation_table(w.name, gens)],
            )
            return
        trends = wall.rates(devices)
        if output is not None:
            from . import plot as plots

            workloads = list_workloads()
            fig = {
                WallFigure.scaling: lambda: plots.memory_wall(devices),
                WallFigure.models: lambda: plots.model_sizes(workloads, devices),
                WallFigure.compute: lambda: plots.training_compute(workloads),
                WallFigure.memory: lambda: plots.training_memory(workloads, devices),
            }[figure]()
            _save_figure(fig, output)
        _show(
            fmt,
            None,
            data=lambda: report.rates_dict(trends),
            rows=lambda: report.rates_dict(trends)["series"],
            table=lambda: [report.rates_table(trends)],
        )
    except RooflineError as exc:
        _fail(str(exc))


@hardware_app.command("list")
def hardware_list(fmt: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """Every device in the database, oldest first."""
    try:
        from . import report
        from .hardware import list_devices

        devices = list_devices()
        if fmt is Format.json:
            _emit(report.to_json(report.device_rows(devices)), None, output)
        elif fmt is Format.csv:
            rows = [
                {k: v for k, v in row.items() if k != "peak_flops_per_s"}
                | {f"peak_{k}_flops_per_s": v for k, v in row["peak_flops_per_s"].items()}
                for row in report.device_rows(devices)
            ]
            keys = list(dict.fromkeys(k for row in rows for k in row))
            _emit(report.to_csv([{k: row.get(k) for k in keys} for row in rows]), None, output)
        else:
            _emit(None, [report.device_list_table(devices)], output)
    except RooflineError as exc:
        _fail(str(exc))


@hardware_app.command("show")
def hardware_show(
    name: Annotated[str, typer.Argument(help="Device name, alias or YAML file.")],
    fmt: FormatOpt = Format.table,
) -> None:
    """One device: peaks per datatype, ridge points, memory, interconnect, source."""
    try:
        from . import report
        from .hardware import get_device

        device = get_device(name)
        if fmt is Format.json:
            _emit(report.to_json(report.device_dict(device)), None, None)
        else:
            _emit(report.device_detail(device) + "\n", None, None)
    except RooflineError as exc:
        _fail(str(exc))


@models_app.command("list")
def models_list(fmt: FormatOpt = Format.table) -> None:
    """Every model in the catalog."""
    try:
        from . import report
        from .workloads import list_workloads

        workloads = list_workloads()
        if fmt is Format.table:
            params = [w.params for w in workloads]
            _emit(None, [report.workload_list_table(workloads, params)], None)
        else:
            rows = [report.workload_dict(w) | {"params": w.params} for w in workloads]
            if fmt is Format.json:
                _emit(report.to_json(rows), None, None)
            else:
                flat = [{k: r[k] for k in ("key", "name", "family", "params")} for r in rows]
                _emit(report.to_csv(flat), None, None)
    except RooflineError as exc:
        _fail(str(exc))


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Model name, alias or YAML file.")],
) -> None:
    """One model: architecture, published figures, sources (JSON)."""
    try:
        from . import report
        from .workloads import get_workload

        w = get_workload(name)
        _emit(report.to_json(report.workload_dict(w) | {"params": w.params}), None, None)
    except RooflineError as exc:
        _fail(str(exc))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
