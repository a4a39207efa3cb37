"""Command line: parse, call one library function, format. No arithmetic here.

Every error a user can cause ends as one line on stderr, `roofline: error: ...`, with exit
code 2: domain errors (RooflineError; a FieldError's field is shown as its flag, e.g.
`layout.tensor` as `--tp`) are caught by one boundary around every command, and the
parser's own usage errors (`--batch abc`, an unknown option) by the top-level group.
Output goes to stdout or to `--output` (report/output.py writes files whole); progress and
notes go to stderr.

One module on purpose (over 400 lines): every command with its flags, read top to bottom,
and the shared option types, error boundary and formats they use, in one place.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TextIO, TypeVar

import typer
from typer.core import TyperGroup

from .errors import FieldError, RooflineError
from .report.output import Interrupted, write_text, write_whole

# the library's field names -> this CLI's flags (errors name what the user typed)
FLAGS = {
    "batch": "--batch",
    "seq": "--seq",
    "context": "--context",
    "dtype": "--dtype",
    "phase": "--phase",
    "optimizer": "--optimizer",
    "recompute": "--recompute",
    "master_weights": "--master-weights",
    "layout.data": "--dp",
    "layout.tensor": "--tp",
    "layout.pipeline": "--pp",
    "layout.zero": "--zero",
    "model": "--model",
    "device": "--hw",
    "replicas": "--devices",
    "flops_scale": "--flops-scale",
    "bandwidth_scale": "--bw-scale",
    "capacity_scale": "--capacity-scale",
    "utilization": "--utilization",
    "tokens": "--tokens",
    "price": "--price",
    "output": "--output",
    "top": "--top",
    "prompt": "--prompt",
    "output_tokens": "--output",
    "reserve": "--reserve",
    "ideal": "--ideal",
    "attention": "--attention",
    "logits": "--logits",
    "micro_batch": "--micro-batch",
    "dp_overlap": "--dp-overlap",
    "virtual_stages": "--virtual-stages",
    "sustained": "--sustained",
    "ttft_percentile": "--ttft-percentile",
    "weights": "--weights",
    "kv_dtype": "--kv-dtype",
    "sweep_batch": "--sweep-batch",
    "sweep_seq": "--sweep-seq",
    "max_time": "--max-time",
    "rate": "--rate",
    "ttft": "--ttft",
    "tpot": "--tpot",
}


def _click_class(name: str) -> type[Exception]:
    """The parser's exception classes, whichever click typer runs on (vendored or not)."""
    cls: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)
    return cls


class OneLineErrors(TyperGroup):
    """The top-level group: the parser's usage errors as one line, exit code 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        standalone_mode = kwargs.pop("standalone_mode", True)
        click_exception = _click_class("ClickException")
        try:
            rv = super().main(*args, **(kwargs | {"standalone_mode": False}))
        except click_exception as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `roofline`: the help
                exc.show()  # type: ignore[attr-defined]
                sys.exit(0)
            message = exc.format_message()  # type: ignore[attr-defined]
            _say(f"roofline: error: {' '.join(message.split())}")
            sys.exit(2)
        except (typer.Abort, KeyboardInterrupt):
            _say("roofline: interrupted by SIGINT")
            sys.exit(128 + signal.SIGINT)
        except Interrupted as exc:
            _say(f"roofline: interrupted by {exc.name}")
            sys.exit(128 + exc.signum)
        except OSError as exc:  # a stream that failed outside the writers above
            _say(f"roofline: error: {exc.strerror or exc}")
            sys.exit(2)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"roofline {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="roofline",
    cls=OneLineErrors,
    help="Hardware-aware roofline simulator: per-layer FLOPs, bytes, intensity and time "
    "of ML models on real devices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
hardware_app = typer.Typer(help="The device database.", no_args_is_help=True)
models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)
app.add_typer(hardware_app, name="hardware")
app.add_typer(models_app, name="models")


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Hardware-aware roofline simulator."""


F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> NoReturn:
    _say(f"roofline: error: {' '.join(message.split())}")
    raise typer.Exit(2)


def boundary(fn: F) -> F:
    """The one error boundary: a RooflineError from the library becomes one line."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            for name in ("output", "output_file"):  # before any work, not after it
                if isinstance(kwargs.get(name), Path):
                    _check_output(kwargs[name])
            return fn(*args, **kwargs)
        except FieldError as exc:
            _fail(exc.render(FLAGS.get(exc.field, exc.field)))
        except RooflineError as exc:
            _fail(str(exc))

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------- shared options
class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class Recompute(str, Enum):
    none = "none"
    selective = "selective"
    full = "full"


class Attention(str, Enum):
    eager = "eager"
    flash = "flash"


class Logits(str, Enum):
    all = "all"
    last = "last"


AttentionOpt = Annotated[
    Attention,
    typer.Option(help="eager: scores, softmax, context as 3 kernels; flash: one fused kernel."),
]
LogitsOpt = Annotated[
    Logits, typer.Option(help="Inference/prefill: logits of every position, or the last only.")
]
RecomputeOpt = Annotated[
    Recompute,
    typer.Option(help="Training: activation recomputation none, selective (attention) or full."),
]

SequenceParallelOpt = Annotated[
    bool,
    typer.Option(
        help="With --tp: norms, residual adds and their activations split over the tensor "
        "ranks (sequence parallelism); off: every rank runs them whole."
    ),
]
FuseOpt = Annotated[
    bool,
    typer.Option(
        help="Run activations (GELU, SwiGLU, a ReLU right after its convolution) in the "
        "epilogue of the GEMM before them."
    ),
]
FirstInputGradOpt = Annotated[
    bool,
    typer.Option(
        help="Training: compute the first layer's input gradient (off: frameworks skip it, "
        "the input being data; no effect where the first layer is an embedding)."
    ),
]

ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Model name or alias, or a model file.")
]
DeviceOpt = Annotated[str, typer.Option("--hw", help="Device name or alias, or a device YAML.")]
DevicesOpt = Annotated[str, typer.Option("--hw", help="Devices, comma-separated.")]
BatchOpt = Annotated[int, typer.Option(help="Samples per batch (the global batch).")]
SeqOpt = Annotated[
    int | None, typer.Option(help="Tokens per sample [default: the model's own input size].")
]
DtypeOpt = Annotated[str, typer.Option(help="fp16, bf16, fp32, tf32, fp8, int8, fp64.")]
WeightsOpt = Annotated[
    str | None,
    typer.Option(
        help="Inference: the weights' storage (weight-only quantization): fp32, fp16, bf16, "
        "fp8, int8, int4 [default: --dtype]."
    ),
]
KvDtypeOpt = Annotated[
    str | None,
    typer.Option(
        help="Decode: the KV cache's storage: fp32, fp16, bf16, fp8, int8 [default: --dtype]."
    ),
]
ContextOpt = Annotated[
    int | None,
    typer.Option(help="Decode only: tokens in the KV cache [default: --seq]."),
]
OptimizerOpt = Annotated[
    str, typer.Option(help="Training: sgd, sgd-momentum, adam, adamw, lamb, adafactor.")
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
IdealOpt = Annotated[
    bool,
    typer.Option(help="Expected times = the roofline bound (no efficiency terms)."),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write to this file instead of stdout ('-': stdout)."),
]
FigureOpt = Annotated[Path, typer.Option("--output", "-o", help="File: .png, .svg or .pdf.")]
PriceOpt = Annotated[
    str | None,
    typer.Option(
        help="Price per device-hour: one figure for all devices, or per device "
        "(h100=2.5,a100=1.2) [default: each device file's price, where it has one]."
    ),
]
CurrencyOpt = Annotated[str, typer.Option(help="Currency of --price (a three-letter code).")]

INFERENCE_PHASES = "inference (= prefill), prefill, decode or training."


# ---------------------------------------------------------------- output
def _stdout() -> TextIO:
    """Standard output, or one line when it is closed (`>&-`)."""
    if sys.stdout is None:
        _fail("standard output is closed; give --output FILE")
    return sys.stdout


def _stdout_failed(exc: OSError) -> NoReturn:
    """A write to stdout failed: a broken pipe (`| head`) ends quietly, anything else (a
    full disk, /dev/full) with one line; exit code 1 and 2. Stdout then points at
    /dev/null, so the interpreter's last flush cannot raise again."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass  # stdout without a descriptor: nothing to point elsewhere
    if isinstance(exc, BrokenPipeError):
        raise typer.Exit(1)
    _fail(f"cannot write to standard output: {exc.strerror or exc}")


def _write_stdout(text: str) -> None:
    stream = _stdout()
    try:
        stream.write(text)
        stream.flush()
    except OSError as exc:
        _stdout_failed(exc)


def _no_bar() -> bool:
    """A progress bar only on a terminal: in a log or a closed stderr it is noise."""
    return sys.stderr is None or not sys.stderr.isatty()


def _waiting(message: str) -> None:
    typer.echo(f"roofline: {message} (Ctrl-C stops)", err=True)


def _emit(text: str | None, renderables: list[Any] | None, output: Path | None) -> None:
    """Print, or write the whole file at once. A table wider than the terminal is shown as
    records (report.fit); in a file or a pipe every table has its natural width."""
    if renderables is not None:
        import io

        from rich.console import Console
        from rich.table import Table

        from .report import fit, natural_width

        if output is None and _stdout().isatty():
            terminal = Console(file=sys.stdout)
            try:
                for item in renderables:
                    terminal.print(fit(terminal, item))
                sys.stdout.flush()
            except OSError as exc:
                _stdout_failed(exc)
            return
        buffer = io.StringIO()
        console = Console(file=buffer, width=160, color_system=None)
        for item in renderables:
            wide = isinstance(item, Table) and natural_width(console, item) > console.width
            console.print(item, width=natural_width(console, item) if wide else None)
        text = "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())
    assert text is not None  # one of the two is always given
    if output is None or str(output) == "-":
        _write_stdout(text)
        return

    write_text(output, text, waiting=_waiting)


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


def _stream_rows(sweep: Any, output: Path | None, kind: str) -> None:
    """A what-if's rows as CSV or Parquet of any size, chunk by chunk, with a progress bar
    on stderr."""
    from rich.console import Console
    from rich.progress import Progress

    from .report import whatif as rw

    with Progress(console=Console(stderr=True), transient=True, disable=_no_bar()) as bar:
        task = bar.add_task("writing rows", total=sweep.grid.scenarios)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done)

        def write(path: str) -> None:
            rows = rw.write_scenarios(sweep, path, kind, progress)
            typer.echo(f"wrote {rows:,} rows", err=True)

        if output is None or str(output) == "-":
            stream = _stdout()
            try:
                stream.flush()
                rw.write_scenarios(sweep, stream.buffer, kind, progress)
                stream.buffer.flush()
            except OSError as exc:
                _stdout_failed(exc)
        else:
            write_whole(output, write, waiting=_waiting)


def _matplotlib_home() -> None:
    """Before matplotlib is imported: an MPLCONFIGDIR that cannot be used (not a folder, not
    writable) would make matplotlib print two warnings of its own; say it in one line and
    give it a temporary folder instead (removed at exit)."""
    import atexit
    import shutil
    import tempfile

    home = os.environ.get("MPLCONFIGDIR")
    if not home or "matplotlib" in sys.modules:
        return
    try:
        os.makedirs(home, exist_ok=True)
        usable = os.path.isdir(home) and os.access(home, os.W_OK | os.X_OK)
    except OSError:
        usable = False
    if usable:
        return
    temporary = tempfile.mkdtemp(prefix="roofline-matplotlib-")
    atexit.register(shutil.rmtree, temporary, True)
    os.environ["MPLCONFIGDIR"] = temporary
    _say(f"roofline: MPLCONFIGDIR {home} is not a writable folder; using a temporary one")


FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
TABLE_ROWS = 200  # a what-if table shows its rows up to this many pairs
TOP_ROWS = 20  # beyond that, the best this many
ROW_LIMIT = 1_000_000  # JSON rows built in memory (CSV and Parquet are streamed)


def _check_output(output: Path | None) -> None:
    """Refuse an output path that cannot be written before a long computation, not after
    it: a folder, or a file in a folder that does not exist."""
    if output is None or str(output) == "-":
        return
    from .report.output import writable

    writable(output)


def _save_figure(fig: Any, output: Path) -> None:
    """Write a matplotlib Figure whole, format from the suffix."""
    suffix = output.suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        _fail(f"--output {output}: the file must end in {', '.join(FIGURE_SUFFIXES)}")
    write_whole(
        output,
        lambda path: fig.savefig(path, format=suffix[1:], dpi=150),
        suffix,
        waiting=_waiting,
    )
    typer.echo(f"wrote {output}", err=True)


def _no_effect(
    phase: str,
    *,
    pp: int = 1,
    recompute: Recompute = Recompute.none,
    dp_overlap: float = 0.0,
    virtual_stages: int = 1,
    logits: Logits = Logits.all,
    first_input_grad: bool = True,
) -> None:
    """Refuse a flag that would do nothing in this run (a silently ignored flag reads as an
    answer to a question that was not asked)."""
    training = phase == "training"
    unused = [
        ("--recompute", recompute.value, recompute is not Recompute.none and not training),
        ("--dp-overlap", f"{dp_overlap:g}", dp_overlap != 0 and not training),
        ("--no-first-input-grad", None, not first_input_grad and not training),
    ]
    for flag, value, bad in unused:
        if bad:
            shown = flag if value is None else f"{flag} {value}"
            _fail(f"{shown}: applies to phase training only (this run is --phase {phase})")
    if logits is Logits.last and training:
        _fail("--logits last: applies to inference phases (training computes every logit)")
    if virtual_stages != 1 and pp == 1:
        _fail(f"--virtual-stages {virtual_stages}: interleaves pipeline stages; give --pp > 1")


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
            _fail(f"{flag} {text!r}: expected whole numbers separated by commas")
    if not values:
        _fail(f"{flag}: empty sweep axis; give at least one value")
    return values


def _names(flag: str, text: str) -> list[str]:
    values = [p.strip() for p in text.split(",") if p.strip()]
    if not values:
        _fail(f"{flag}: empty; give at least one name")
    return values


def _prices(text: str) -> float | dict[str, float]:
    """--price: one figure (every device) or device=figure pairs, comma-separated."""
    allowed = "one price per device-hour (2.5) or device=price pairs (h100=2.5,a100=1.2)"

    def number(part: str) -> float:
        try:
            value = float(part)
        except ValueError:
            _fail(f"--price {text!r}: expected {allowed}")
        if not 0 < value < 1e6:  # also nan and inf
            _fail(f"--price {part}: a price must be > 0 and < 1e6 (per device-hour)")
        return value

    if "=" not in text:
        return number(text.strip())
    out: dict[str, float] = {}
    for part in text.split(","):
        if part.strip():
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                _fail(f"--price {text!r}: expected {allowed}")
            out[name.strip().lower()] = number(value.strip())
    return out


def _currency(text: str) -> str:
    code = text.strip()
    if not (len(code) == 3 and code.isalpha()):
        _fail(f"--currency {text!r}: a three-letter currency code such as USD, EUR")
    return code.upper()


def _devices(text: str | None) -> list[Any]:
    """Devices named in a comma-separated --hw, or all devices when --hw is left out."""
    from .hardware import get_device, list_devices

    if text is None:
        return list_devices()
    return [get_device(n) for n in _names("--hw", text)]


def _sweep_devices(text: str, dtypes: list[str]) -> list[Any]:
    """--hw of a sweep: named devices, or `all`: every device with peaks for all of `dtypes`
    (the ones without are named on stderr, so nothing is dropped silently)."""
    from .hardware import get_device, list_devices

    if text.strip().lower() != "all":
        return [get_device(n) for n in _names("--hw", text)]
    every = list_devices()
    kept = [d for d in every if all(t in d.dtypes for t in dtypes)]
    skipped = [d.key for d in every if d not in kept]
    if not kept:
        _fail(f"--hw all: no device has peaks for --dtype {','.join(dtypes)}")
    if skipped:
        typer.echo(
            f"--hw all: {len(kept)} devices; without {','.join(dtypes)}: {', '.join(skipped)}",
            err=True,
        )
    return kept


# ---------------------------------------------------------------- commands
@app.command()
@boundary
def run(
    model: ModelOpt,
    hw: DeviceOpt,
    batch: BatchOpt = 1,
    seq: SeqOpt = None,
    dtype: DtypeOpt = "fp16",
    phase: Annotated[str, typer.Option(help=f"Phase: {INFERENCE_PHASES}")] = "inference",
    context: ContextOpt = None,
    optimizer: OptimizerOpt = "adam",
    attention: AttentionOpt = Attention.eager,
    logits: LogitsOpt = Logits.all,
    fuse_epilogues: FuseOpt = False,
    first_input_grad: FirstInputGradOpt = True,
    weights: WeightsOpt = None,
    kv_dtype: KvDtypeOpt = None,
    ideal: IdealOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Per-layer roofline of MODEL on device HW, with a summary: the bound, the expected
    time on the real device and the losses between them."""
    from .analysis import analyze
    from .report import run as rr
    from .scenario import RunConfig

    _no_effect(phase, logits=logits, first_input_grad=first_input_grad)
    config = RunConfig(
        batch=batch,
        seq=seq,
        dtype=dtype,
        phase=phase,
        context=context,
        optimizer=optimizer,
        attention=attention.value,
        logits=logits.value,
        fused_epilogues=fuse_epilogues,
        first_input_grad=first_input_grad,
        weights=weights,
        kv_dtype=kv_dtype,
        ideal=ideal,
    )
    result = analyze(model, hw, config)
    _show(
        fmt,
        output,
        data=lambda: rr.result_dict(result),
        rows=lambda: rr.layer_rows(result),
        table=lambda: rr.result_table(result),
    )


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
            "report the error on the other half.",
        ),
    ] = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Computed params, inference and training FLOPs of every model vs the published dataset,
    and the places where the published data contradicts itself; with --runs, the expected
    time against published measured training and serving runs."""
    if fit and not runs:
        raise FieldError("--fit", True, "goes with --runs")
    if runs and fit:
        from .calibration import calibration
        from .report import runs as rr
        from .runs import KINDS, fit_sustained

        fits = [fit_sustained(kind=kind) for kind in ("training", "serving")]
        shipped = calibration()
        _show(
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
        from .report import runs as rr
        from .runs import by_source, error_summary, median_abs_error, validate_runs

        predictions = validate_runs()
        median = median_abs_error(predictions)
        _show(
            fmt,
            output,
            data=lambda: {
                "median_abs_error": median,
                "errors": error_summary(predictions),
                "by_source": by_source(predictions),
                "runs": rr.run_rows(predictions),
            },
            rows=lambda: rr.run_rows(predictions),
            table=lambda: rr.runs_table(predictions, median),
        )
        return
    from .report import validation as rv
    from .validate import validate as run_validation

    checks = run_validation()
    _show(
        fmt,
        output,
        data=lambda: rv.check_rows(checks),
        rows=lambda: rv.check_rows(checks),
        table=lambda: rv.validation_table(checks),
    )


@app.command()
@boundary
def memory(
    model: ModelOpt,
    hw: Annotated[
        str | None, typer.Option("--hw", help="Devices, comma-separated [default: all].")
    ] = None,
    batch: BatchOpt = 1,
    seq: SeqOpt = None,
    dtype: DtypeOpt = "fp16",
    phase: Annotated[str, typer.Option(help=f"Phase: {INFERENCE_PHASES}")] = "training",
    context: ContextOpt = None,
    optimizer: OptimizerOpt = "adam",
    master_weights: Annotated[
        bool, typer.Option(help="Keep an fp32 master copy of 16/8-bit weights.")
    ] = True,
    recompute: RecomputeOpt = Recompute.none,
    dp: Annotated[int, typer.Option(help="Data-parallel replicas of the layout.")] = 1,
    tp: Annotated[int, typer.Option(help="Tensor-parallel ways.")] = 1,
    pp: Annotated[int, typer.Option(help="Pipeline stages.")] = 1,
    zero: Annotated[int, typer.Option(help="ZeRO stage 0-3 over the data-parallel replicas.")] = 0,
    micro_batch: Annotated[
        int | None,
        typer.Option(help="Pipeline micro-batch [default: the local batch, 1 with --pp > 1]."),
    ] = None,
    attention: AttentionOpt = Attention.eager,
    sequence_parallel: SequenceParallelOpt = True,
    fuse_epilogues: FuseOpt = False,
    first_input_grad: FirstInputGradOpt = True,
    dp_overlap: Annotated[
        float, typer.Option(help="Share of the gradient all-reduce hidden by backward (0-1).")
    ] = 0.0,
    virtual_stages: Annotated[
        int,
        typer.Option(help="Interleaved 1F1B: model chunks a pipeline rank holds (1: plain 1F1B)."),
    ] = 1,
    sustained: Annotated[
        float | None,
        typer.Option(
            help="Share of the kernels' expected throughput a step sustains (0-1] "
            "[default: the fitted value for training or inference, "
            "hardware/defaults/calibration.yaml; 1: off]."
        ),
    ] = None,
    weights: WeightsOpt = None,
    kv_dtype: KvDtypeOpt = None,
    ideal: IdealOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Memory footprint of a training step or an inference pass (per device of a
    --dp/--tp/--pp/--zero layout), where it fits, the smallest layout that fits, and the
    layout's communication and step time on each device."""
    from .capacity import memory_report
    from .report import memory as rm
    from .scenario import Layout, RunConfig
    from .workloads import get_workload

    _no_effect(
        phase,
        pp=pp,
        recompute=recompute,
        dp_overlap=dp_overlap,
        virtual_stages=virtual_stages,
        first_input_grad=first_input_grad,
    )
    config = RunConfig(
        batch=batch,
        seq=seq,
        dtype=dtype,
        phase=phase,
        context=context,
        optimizer=optimizer,
        master_weights=master_weights,
        recompute=recompute.value,
        layout=Layout(dp, tp, pp, zero),
        micro_batch=micro_batch,
        attention=attention.value,
        sequence_parallel=sequence_parallel,
        fused_epilogues=fuse_epilogues,
        first_input_grad=first_input_grad,
        dp_overlap=dp_overlap,
        virtual_stages=virtual_stages,
        sustained=sustained,
        weights=weights,
        kv_dtype=kv_dtype,
        ideal=ideal,
    )
    report = memory_report(get_workload(model), config, _devices(hw))
    _show(
        fmt,
        output,
        data=lambda: rm.memory_dict(report),
        rows=lambda: rm.memory_rows(report),
        table=lambda: rm.memory_table(report),
    )


@app.command()
@boundary
def whatif(
    model: ModelOpt,
    hw: DevicesOpt,
    batch: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1",
    seq: Annotated[str | None, typer.Option(help="Sequence lengths, comma-separated.")] = None,
    context: Annotated[str | None, typer.Option(help="Decode contexts, comma-separated.")] = None,
    dtype: Annotated[str, typer.Option(help="Datatypes, comma-separated.")] = "fp16",
    devices: Annotated[
        str, typer.Option(help="Data-parallel device counts, comma-separated.")
    ] = "1",
    phase: Annotated[str, typer.Option(help=f"Phase: {INFERENCE_PHASES}")] = "inference",
    optimizer: OptimizerOpt = "adam",
    attention: AttentionOpt = Attention.eager,
    recompute: RecomputeOpt = Recompute.none,
    tp: Annotated[int, typer.Option(help="Tensor-parallel ways of every replica.")] = 1,
    pp: Annotated[int, typer.Option(help="Pipeline stages of every replica.")] = 1,
    zero: Annotated[int, typer.Option(help="ZeRO stage 0-3 over the --devices replicas.")] = 0,
    micro_batch: Annotated[
        int | None, typer.Option(help="Pipeline micro-batch [default: as in memory].")
    ] = None,
    sequence_parallel: SequenceParallelOpt = True,
    fuse_epilogues: FuseOpt = False,
    first_input_grad: FirstInputGradOpt = True,
    weights: WeightsOpt = None,
    kv_dtype: KvDtypeOpt = None,
    flops_scale: Annotated[float, typer.Option(help="Scale every device's peaks.")] = 1.0,
    bw_scale: Annotated[float, typer.Option(help="Scale every device's memory bandwidth.")] = 1.0,
    capacity_scale: Annotated[float, typer.Option(help="Scale every device's memory.")] = 1.0,
    utilization: Annotated[
        float | None, typer.Option(help="Fraction of peak reached, for time to train.")
    ] = None,
    price: PriceOpt = None,
    currency: CurrencyOpt = "USD",
    tokens: Annotated[
        float | None,
        typer.Option(help="Training tokens, for time to train [default: the published run]."),
    ] = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Sweep batch, sequence, context, dtype, device (--hw all: every device with the
    dtypes) and device count (data-parallel
    replicas of a --tp x --pp layout); answer the batch at which a step turns compute-bound,
    the largest batch that fits, time to train and cost. CSV (-f csv) and Parquet
    (-o NAME.parquet) hold every (scenario, device) pair, at any size."""
    from .answers import answers
    from .report import whatif as rw
    from .scenario import Layout, RunConfig
    from .whatif import build_sweep, priced, run_sweep, scaled
    from .workloads import get_workload

    _no_effect(phase, recompute=recompute, first_input_grad=first_input_grad)
    w = get_workload(model)
    dtypes = _names("--dtype", dtype)
    devs = [scaled(d, flops_scale, bw_scale, capacity_scale) for d in _sweep_devices(hw, dtypes)]
    if price is not None:
        devs = priced(devs, _prices(price), _currency(currency))
    sweep = build_sweep(
        w,
        devs,
        RunConfig(
            phase=phase,
            optimizer=optimizer,
            attention=attention.value,
            recompute=recompute.value,
            layout=Layout(1, tp, pp, zero),
            micro_batch=micro_batch,
            sequence_parallel=sequence_parallel,
            fused_epilogues=fuse_epilogues,
            first_input_grad=first_input_grad,
            weights=weights,
            kv_dtype=kv_dtype,
        ),
        batches=_ints("--batch", batch),
        seqs=[None] if seq is None else list(_ints("--seq", seq)),
        contexts=[None] if context is None else list(_ints("--context", context)),
        dtypes=dtypes,
        replicas=_ints("--devices", devices),
    )
    pairs = sweep.grid.scenarios * len(devs)
    limit = TABLE_ROWS if fmt is Format.table else ROW_LIMIT
    if output is not None and output.suffix.lower() == ".parquet":
        _stream_rows(sweep, output, "parquet")  # every row, any size, whatever --format
        return
    if fmt is Format.csv:  # any size: streamed in chunks, progress on stderr
        _stream_rows(sweep, output, "csv")
        return
    if fmt is Format.json and pairs > limit:
        _fail(
            f"{pairs:,} (scenario, device) pairs are more than {limit:,} JSON rows; use "
            "--format csv (streamed, any size) or narrow the sweep"
        )
    top = fmt is Format.table and pairs > limit
    if top:  # a table of a big sweep: its best rows, and how many there are
        rows = rw.top_rows(sweep, TOP_ROWS)
    else:
        rows = rw.scenario_rows(sweep, run_sweep(sweep)) if pairs <= limit else []
    if pairs > 20_000_000:  # more than about a second: show progress on stderr
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True, disable=_no_bar()) as bar:
            task = bar.add_task("sweep", total=sweep.grid.scenarios)
            found = answers(
                sweep,
                utilization=utilization,
                progress=lambda done, total: bar.update(task, completed=done),
                tokens=tokens,
            )
    else:
        found = answers(sweep, utilization=utilization, tokens=tokens)
    _show(
        fmt,
        output,
        data=lambda: rw.whatif_dict(found, rows, pairs),
        rows=lambda: rows,
        table=lambda: rw.whatif_tables(w.name, sweep, found, rows, top),
    )


@app.command()
@boundary
def plot(
    model: ModelOpt,
    hw: Annotated[str, typer.Option("--hw", help="Devices, comma-separated (up to 6).")],
    output: FigureOpt,
    batch: BatchOpt = 1,
    seq: SeqOpt = None,
    dtype: DtypeOpt = "fp16",
    phase: Annotated[str, typer.Option(help=f"Phase: {INFERENCE_PHASES}")] = "inference",
    context: ContextOpt = None,
    attention: AttentionOpt = Attention.eager,
    fuse_epilogues: FuseOpt = False,
    all_dtypes: Annotated[bool, typer.Option(help="Draw every dtype's compute ceiling.")] = False,
    top: Annotated[int, typer.Option(help="Label this many layers by time.")] = 5,
    panels: Annotated[
        bool, typer.Option(help="One panel per device (small multiples), not one chart.")
    ] = False,
) -> None:
    """Roofline chart of MODEL on one or more devices."""
    _matplotlib_home()
    from . import plot as plots
    from .analysis import analyze
    from .scenario import RunConfig
    from .workloads import get_workload

    if not 0 <= top <= 50:
        raise FieldError("top", top, "must be from 0 to 50")
    w = get_workload(model)
    config = RunConfig(
        batch=batch,
        seq=seq,
        dtype=dtype,
        phase=phase,
        context=context,
        attention=attention.value,
        fused_epilogues=fuse_epilogues,
    )
    results = [analyze(w, d, config) for d in _devices(hw)]
    draw = plots.roofline_panels if panels else plots.roofline
    _save_figure(draw(results, all_dtypes=all_dtypes, top=top), output)


@app.command()
@boundary
def report(
    model: ModelOpt,
    hw: Annotated[str, typer.Option("--hw", help="Devices, comma-separated (up to 8).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The page: a .html file.")],
    batch: BatchOpt = 1,
    seq: SeqOpt = None,
    dtype: DtypeOpt = "fp16",
    phase: Annotated[str, typer.Option(help=f"Phase: {INFERENCE_PHASES}")] = "inference",
    context: ContextOpt = None,
    optimizer: OptimizerOpt = "adam",
    recompute: RecomputeOpt = Recompute.none,
    attention: AttentionOpt = Attention.eager,
    logits: LogitsOpt = Logits.all,
    fuse_epilogues: FuseOpt = False,
    first_input_grad: FirstInputGradOpt = True,
    ideal: IdealOpt = False,
    sweep_batch: Annotated[
        str | None,
        typer.Option(help="What-if batches, comma-separated [default: 1, 2, 4 ... 128]."),
    ] = None,
    sweep_seq: Annotated[
        str | None,
        typer.Option(
            help="What-if sequence lengths (decode: contexts), comma-separated "
            "[default: powers of 2 up to --seq]."
        ),
    ] = None,
) -> None:
    """One self-contained HTML page of MODEL on the devices of --hw: summary, roofline
    chart, per-layer table, what-if heatmaps of batch x sequence, memory and fit."""
    _matplotlib_home()
    from .report.html import build_report, render_html
    from .scenario import RunConfig
    from .workloads import get_workload

    if output.suffix.lower() not in (".html", ".htm"):
        _fail(f"--output {output}: the file must end in .html")
    _no_effect(phase, recompute=recompute, logits=logits, first_input_grad=first_input_grad)
    config = RunConfig(
        batch=batch,
        seq=seq,
        dtype=dtype,
        phase=phase,
        context=context,
        optimizer=optimizer,
        recompute=recompute.value,
        attention=attention.value,
        logits=logits.value,
        fused_epilogues=fuse_epilogues,
        first_input_grad=first_input_grad,
        ideal=ideal,
    )
    page = build_report(
        get_workload(model),
        _devices(hw),
        config,
        batches=None if sweep_batch is None else _ints("--sweep-batch", sweep_batch),
        seqs=None if sweep_seq is None else _ints("--sweep-seq", sweep_seq),
    )
    write_text(output, render_html(page), waiting=_waiting)
    typer.echo(f"wrote {output}", err=True)


@app.command()
@boundary
def serve(
    model: ModelOpt,
    hw: DevicesOpt,
    batch: Annotated[
        int, typer.Option(help="Requests served together (a decode step's batch).")
    ] = 1,
    prompt: Annotated[int, typer.Option(help="Prompt tokens a request.")] = 512,
    output: Annotated[int, typer.Option("--output", help="Output tokens a request.")] = 256,
    tp: Annotated[int, typer.Option(help="Tensor-parallel ways of a replica.")] = 1,
    pp: Annotated[int, typer.Option(help="Pipeline stages of a replica.")] = 1,
    dtype: DtypeOpt = "fp16",
    weights: WeightsOpt = None,
    kv_dtype: KvDtypeOpt = None,
    attention: AttentionOpt = Attention.flash,
    sequence_parallel: SequenceParallelOpt = True,
    fuse_epilogues: FuseOpt = False,
    reserve: Annotated[
        float, typer.Option(help="Share of each device's memory kept for the runtime.")
    ] = 0.1,
    price: PriceOpt = None,
    currency: CurrencyOpt = "USD",
    rate: Annotated[
        float | None,
        typer.Option(
            help="Plan for this many requests a second: the fewest devices of each --hw "
            "type (tp and concurrency chosen) within --ttft and --tpot; at most 100,000 "
            "devices of a type (a rate that needs more is refused with the most they serve)."
        ),
    ] = None,
    ttft: Annotated[
        float | None, typer.Option(help="With --rate: time to first token SLO, s [default: 2].")
    ] = None,
    tpot: Annotated[
        float | None,
        typer.Option(help="With --rate: time per output token SLO, s [default: 0.05]."),
    ] = None,
    ttft_percentile: Annotated[
        float | None,
        typer.Option(
            help="With --rate: hold the TTFT target for this quantile of the queueing wait "
            "(0.5 to 0.999, e.g. 0.99) [default: the mean]."
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
    output_file: Annotated[
        Path | None,
        typer.Option("--output-file", "-o", help="Write to this file instead of stdout."),
    ] = None,
) -> None:
    """Serve an LLM: time to first token, time per output token, tokens/s, the requests the
    KV cache holds, and the memory per device, on each device of --hw."""
    from .report import serve as rs
    from .scenario import Layout, RunConfig
    from .serve import Request
    from .serve import serve as serve_on
    from .workloads import get_workload

    w = get_workload(model)
    run_config = RunConfig(
        batch=batch,
        dtype=dtype,
        phase="decode",
        attention=attention.value,
        layout=Layout(1, tp, pp, 0),
        sequence_parallel=sequence_parallel,
        fused_epilogues=fuse_epilogues,
        weights=weights,
        kv_dtype=kv_dtype,
    )
    request = Request(prompt, output, reserve)
    devs = _devices(hw)
    if price is not None:
        from .whatif import priced

        devs = priced(devs, _prices(price), _currency(currency))
    q = ttft_percentile
    if rate is None:
        for flag, value in (("--ttft", ttft), ("--tpot", tpot), ("--ttft-percentile", q)):
            if value is not None:
                _fail(f"{flag} {value:g}: a target of the planner; give --rate too")
    else:  # the SLO planner
        from .serve import Slo, plan

        ttft = 2.0 if ttft is None else ttft
        tpot = 0.05 if tpot is None else tpot

        slo = Slo(rate, ttft, tpot, ttft_percentile)
        plans = [plan(w, run_config, d, request, slo) for d in devs]
        heading = (
            f"{w.name}: {rate:g} requests/s of {prompt} tokens in, {output} out, "
            f"{run_config.precision}; "
            f"TTFT <= {ttft:g} s"
            + ("" if ttft_percentile is None else f" at p{100 * ttft_percentile:g} of the wait")
            + f", TPOT <= {tpot * 1e3:g} ms"
        )
        _show(
            fmt,
            output_file,
            data=lambda: [rs.plan_dict(p) | {"model": w.key} for p in plans],
            rows=lambda: [rs.plan_dict(p) | {"model": w.key} for p in plans],
            table=lambda: rs.plan_table(plans, heading),
        )
        return
    results = [serve_on(w, run_config, d, request) for d in devs]
    title = (
        f"{w.name}: serving batch {batch}, {prompt} tokens in, {output} out, "
        f"{run_config.precision}, "
        f"{attention.value} attention"
    )
    _show(
        fmt,
        output_file,
        data=lambda: (
            [rs.serve_dict(r) | {"model": w.key} for r in results]
            if len(results) > 1
            else rs.serve_dict(results[0]) | {"model": w.key}
        ),
        rows=lambda: rs.serve_rows(results, w.key),
        table=lambda: rs.serve_table(results, title),
    )


class MeasureDevice(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


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
    from .measure import DTYPES, device_yaml, measure_cpu

    if device is MeasureDevice.cuda:
        _fail("--device cuda: measuring a GPU needs PyTorch and a GPU; this build measures the CPU")
    names = _names("--dtype", dtype)
    for name in names:
        if name not in DTYPES:
            raise FieldError("dtype", name, f"the CPU is measured in {', '.join(DTYPES)}")
    result = measure_cpu(
        tuple(names), quick=quick, progress=lambda text: typer.echo(f"measuring {text}", err=True)
    )
    _emit(device_yaml(result), None, output)
    if output is not None:
        typer.echo(f"wrote {output}", err=True)


@app.command()
@boundary
def check(
    model: ModelOpt,
    hw: Annotated[
        str,
        typer.Option(
            "--hw", help="This machine's device file, written here by `roofline measure`."
        ),
    ],
    batch: BatchOpt = 1,
    seq: SeqOpt = None,
    dtype: Annotated[str, typer.Option(help="fp32 or fp64 (numpy).")] = "fp32",
    phase: Annotated[str, typer.Option(help="inference, prefill or decode.")] = "inference",
    context: ContextOpt = None,
    max_time: Annotated[
        float | None,
        typer.Option(
            "--max-time",
            help="Refuse a check predicted to run longer than this many seconds [default: 60].",
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Run MODEL's forward pass layer by layer in numpy on this machine and set the
    measured times beside the predicted ones (bound and expected) for this machine's own
    device file. Refused before it runs: another machine's file, more memory than half of
    what is free, more time than --max-time."""
    from .check import check as run_check
    from .hardware import get_device
    from .report import check as rc
    from .scenario import RunConfig
    from .workloads import get_workload

    config = RunConfig(batch=batch, seq=seq, dtype=dtype, phase=phase, context=context)
    result = run_check(
        get_workload(model),
        get_device(hw),
        config,
        max_time_s=max_time,
        progress=lambda i, n, name: _say(f"checking layer {i} of {n}: {name}"),
    )
    _show(
        fmt,
        output,
        data=lambda: rc.check_dict(result),
        rows=lambda: rc.check_rows(result),
        table=lambda: rc.check_table(result),
    )


class WallFigure(str, Enum):
    scaling = "scaling"
    models = "models"
    compute = "compute"
    memory = "memory"


@app.command()
@boundary
def memwall(
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Show one workload across generations.")
    ] = None,
    hw: Annotated[str | None, typer.Option("--hw", help="Devices [default: all].")] = None,
    batch: BatchOpt = 1,
    seq: SeqOpt = None,
    phase: Annotated[str, typer.Option(help=f"Phase: {INFERENCE_PHASES}")] = "inference",
    figure: Annotated[
        WallFigure, typer.Option(help="Which chart --output draws.")
    ] = WallFigure.scaling,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Chart: .png, .svg, .pdf.")
    ] = None,
    fmt: FormatOpt = Format.table,
    paper: Annotated[
        bool, typer.Option(help="The paper's flagship training devices to 2022, not --hw.")
    ] = False,
) -> None:
    """Growth per two years of peak FLOP/s, DRAM and interconnect bandwidth and memory
    capacity, fitted over the device database, next to the paper's; or, with --model, the
    workload on every device in release order."""
    from . import memwall as wall
    from .report import memwall as rw
    from .scenario import RunConfig
    from .workloads import get_workload, list_workloads

    if paper and hw is not None:
        _fail("--paper picks the devices: give --paper or --hw, not both")
    if output is not None:
        _matplotlib_home()
    devices = _devices(",".join(wall.PAPER_DEVICES) if paper else hw)
    if model is not None:
        w = get_workload(model)
        gens = wall.generations(w, devices, RunConfig(batch=batch, seq=seq, phase=phase))
        if output is not None:
            from . import plot as plots

            run = RunConfig(batch=batch, seq=seq, phase=phase)
            size = f", seq {seq}" if seq else ""
            title = f"{w.name} ({run.phase}, batch {batch}{size}, each device's headline dtype)"
            _save_figure(plots.generations(gens, name=title), output)
        _show(
            fmt,
            None,
            data=lambda: rw.generation_rows(gens),
            rows=lambda: rw.generation_rows(gens),
            table=lambda: [rw.generation_table(w.name, gens)],
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
        data=lambda: rw.rates_dict(trends),
        rows=lambda: rw.rates_dict(trends)["series"],
        table=lambda: [rw.rates_table(trends)],
    )


@hardware_app.command("list")
@boundary
def hardware_list(fmt: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """Every device in the database, oldest first."""
    from .hardware import list_devices
    from .report import catalog as rc

    devices = list_devices()
    _show(
        fmt,
        output,
        data=lambda: rc.device_rows(devices),
        rows=lambda: rc.device_csv_rows(devices),
        table=lambda: [rc.device_list_table(devices)],
    )


@hardware_app.command("show")
@boundary
def hardware_show(
    name: Annotated[str, typer.Argument(help="Device name, alias or YAML file.")],
    fmt: FormatOpt = Format.table,
) -> None:
    """One device: peaks per datatype, ridge points, memory, interconnect, source."""
    from .hardware import get_device
    from .report import catalog as rc
    from .report import to_json

    device = get_device(name)
    if fmt is Format.json:
        _emit(to_json(rc.device_dict(device)), None, None)
    else:
        _emit(rc.device_detail(device) + "\n", None, None)


@models_app.command("list")
@boundary
def models_list(fmt: FormatOpt = Format.table) -> None:
    """Every model in the catalog."""
    from .report import catalog as rc
    from .workloads import list_workloads

    workloads = list_workloads()
    rows = [rc.workload_dict(w) | {"params": w.params} for w in workloads]
    _show(
        fmt,
        None,
        data=lambda: rows,
        rows=lambda: [{k: r[k] for k in ("key", "name", "family", "params")} for r in rows],
        table=lambda: [rc.workload_list_table(workloads, [w.params for w in workloads])],
    )


@models_app.command("show")
@boundary
def models_show(
    name: Annotated[str, typer.Argument(help="Model name, alias or YAML file.")],
    fmt: FormatOpt = Format.table,
) -> None:
    """One model: architecture, computed and published figures, sources (-f json: every
    field)."""
    from .report import catalog as rc
    from .report import to_json
    from .workloads import get_workload

    w = get_workload(name)
    if fmt is Format.csv:
        _fail("--format csv: models show writes table or json")
    if fmt is Format.json:
        _emit(to_json(rc.workload_dict(w) | {"params": w.params}), None, None)
    else:
        _emit(rc.workload_detail(w), None, None)


class SchemaKind(str, Enum):
    device = "device"
    workload = "workload"
    run = "run"


@app.command()
@boundary
def schema(
    kind: Annotated[SchemaKind, typer.Argument(help="device, workload or run.")],
    output: OutputOpt = None,
) -> None:
    """The JSON Schema (draft 2020-12) of a device, workload or measured-run file, recorded
    from the loader itself (editors and CI can check files against it)."""
    import json

    from .file_schema import file_schema

    _emit(json.dumps(file_schema(kind.value), indent=2) + "\n", None, output)


def _interrupt(signum: int, frame: object) -> None:
    """SIGINT, SIGTERM and SIGHUP as an exception, so that every temp file is removed on the
    way out (report/output.py) and the command ends with one line, exit code 128 + signal."""
    raise Interrupted(signum, signal.Signals(signum).name)


def _say(line: str) -> None:
    """One line on stderr, if stderr can still take it (closed or full: nothing)."""
    with contextlib.suppress(OSError, ValueError):
        typer.echo(line, err=True)


def main() -> None:
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _interrupt)
    # a terminal or pipe that cannot encode a character (PYTHONIOENCODING=ascii) shows '?'
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    app()


if __name__ == "__main__":
    main()
