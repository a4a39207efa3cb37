"""The command line's frame: the typer app and its groups, and the one error boundary (the
process around them, signals and streams, is start.py). Every error a user can cause ends
as one line on stderr, `roofline: error: ...`, with exit code 2: domain errors
(RooflineError; a FieldError's field is shown as its flag, e.g. `layout.tensor` as `--tp`)
are caught by `boundary` around every command, the parser's own usage errors (`--batch
abc`, an unknown option) by the top-level group."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from ..errors import FieldError, RooflineError
from .options import BY_NAME, RUN_OPTIONS
from .start import say, stdout_failed

# the library's field names -> this CLI's flags (errors name what the user typed)
FLAGS = (
    {o.field: o.flag for o in RUN_OPTIONS if o.field}
    | {o.name: o.flag for o in RUN_OPTIONS if not o.field}
    | {
        "model": "--model",
        "device": "--hw",
        "replicas": BY_NAME["dp"].flag,  # whatif's axis of data-parallel replicas
        "flops_scale": "--flops-scale",
        "bandwidth_scale": "--bw-scale",
        "capacity_scale": "--capacity-scale",
        "utilization": "--utilization",
        "tokens": "--tokens",
        "price": "--price",
        "pue": "--pue",
        "node_power": "--node-power",
        "grid_intensity": "--grid-intensity",
        "output": "--output",
        "top": "--top",
        "prompt": "--prompt-tokens",
        "output_tokens": "--output-tokens",
        "reserve": "--reserve",
        "ttft_percentile": "--ttft-percentile",
        "sweep_batch": "--sweep-batch",
        "sweep_seq": "--sweep-seq",
        "max_time": "--max-time",
        "rate": "--rate",
        "ttft": "--ttft",
        "tpot": "--tpot",
        "run_file": "--run",
        "requests": "--requests",
        "arrival": "--arrival",
        "cv": "--cv",
        "prompt_dist": "--prompt-dist",
        "output_tokens_dist": "--output-dist",
        "max_num_seqs": "--max-num-seqs",
        "max_batched_tokens": "--max-batched-tokens",
        "memory_fraction": "--memory-fraction",
        "stages": "--stages",
        "prefix_tokens": "--prefix-tokens",
        "tpot_percentile": "--tpot-percentile",
        "concurrency": "--concurrency",
    }
)


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
            say(f"roofline: error: {' '.join(message.split())}")
            sys.exit(2)
        except (typer.Abort, KeyboardInterrupt):
            say("roofline: interrupted by SIGINT")
            sys.exit(128 + signal.SIGINT)
        except (OSError, ValueError) as exc:  # a stream failed outside the writers (help)
            stdout_failed(exc)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

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


def fail(message: str) -> NoReturn:
    say(f"roofline: error: {' '.join(message.split())}")
    raise typer.Exit(2)


def boundary(fn: F) -> F:
    """The one error boundary: a RooflineError from the library becomes one line; an output
    path is checked before any work (not after a long computation)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .io import check_output

        try:
            for name in ("output", "save_run", "chart"):
                check_output(kwargs.get(name))
            return fn(*args, **kwargs)
        except FieldError as exc:
            fail(exc.render(FLAGS.get(exc.field, exc.field)))
        except RooflineError as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]
