"""The command line's outputs: stdout (closed, full or broken: one line), files written
whole (report/output.py), tables that fit the terminal, figures, streamed what-if rows."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TextIO

import typer

from ..report.output import write_text, write_whole
from .app import fail
from .paths import output_option
from .start import say


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
OutputOpt = Annotated[
    Path | None, output_option("Write to this file instead of stdout ('-': stdout).")
]
FigureOpt = Annotated[Path, output_option("File: .png, .svg or .pdf.")]
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def stdout() -> TextIO:
    """Standard output, or one line when it is closed (`>&-`)."""
    if sys.stdout is None:
        fail("cannot write to standard output: standard output is closed")
    return sys.stdout


def stdout_failed(exc: OSError) -> NoReturn:
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
    fail(f"cannot write to standard output: {exc.strerror or exc}")


def write_stdout(text: str) -> None:
    stream = stdout()
    try:
        stream.write(text)
        stream.flush()
    except OSError as exc:
        stdout_failed(exc)


def no_bar() -> bool:
    """A progress bar only on a terminal: in a log or a closed stderr it is noise."""
    return sys.stderr is None or not sys.stderr.isatty()


def waiting(message: str) -> None:
    typer.echo(f"roofline: {message} (Ctrl-C stops)", err=True)


def emit(text: str | None, renderables: list[Any] | None, output: Path | None) -> None:
    """Print, or write the whole file at once. A table wider than the terminal is shown as
    records (report.fit); in a file or a pipe every table has its natural width."""
    if renderables is not None:
        import io

        from rich.console import Console
        from rich.table import Table

        from ..report import fit, natural_width, plain_cells

        if output is None and stdout().isatty():
            terminal = Console(file=sys.stdout)
            if terminal.width < 20:  # COLUMNS=0 or nonsense: rich would print nothing
                terminal = Console(file=sys.stdout, width=80)
            try:
                for item in renderables:
                    terminal.print(fit(terminal, plain_cells(item)))
                sys.stdout.flush()
            except OSError as exc:
                stdout_failed(exc)
            return
        buffer = io.StringIO()
        console = Console(file=buffer, width=160, color_system=None)
        for item in renderables:
            plain_cells(item)
            wide = isinstance(item, Table) and natural_width(console, item) > console.width
            console.print(item, width=natural_width(console, item) if wide else None)
        text = "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())
    assert text is not None  # one of the two is always given
    if output is None or str(output) == "-":
        write_stdout(text)
        return

    write_text(output, text, waiting=waiting)


def show(
    fmt: Format,
    output: Path | None,
    *,
    data: Callable[[], Any],
    rows: Callable[[], list[dict[str, Any]]],
    table: Callable[[], list[Any]],
) -> None:
    """One result in the chosen format: `data` as JSON, `rows` as CSV, `table` for people.
    Only the chosen one is built."""
    from .. import report

    if output is not None and output.suffix.lower() == ".parquet":
        fail(
            f"--output {output}: Parquet holds the rows of whatif and simulate; give .csv or .json"
        )
    if fmt is Format.table and output is not None:  # -o NAME.csv or NAME.json: that format
        fmt = {".csv": Format.csv, ".json": Format.json}.get(output.suffix.lower(), fmt)
    if fmt is Format.json:
        emit(report.to_json(data()), None, output)
    elif fmt is Format.csv:
        emit(report.to_csv(rows()), None, output)
    else:
        emit(None, table(), output)


def show_of(
    fmt: Format,
    output: Path | None,
    value: Any,
    data: Callable[[Any], Any],
    rows: Callable[[Any], list[dict[str, Any]]],
    table: Callable[[Any], list[Any]],
) -> None:
    """show() of one library result through its report module's three views."""
    show(
        fmt, output, data=lambda: data(value), rows=lambda: rows(value), table=lambda: table(value)
    )


def stream_rows(sweeps: Any, output: Path | None, kind: str) -> None:
    """A what-if's rows as CSV or Parquet of any size, chunk by chunk, with a progress bar
    on stderr."""
    from rich.console import Console
    from rich.progress import Progress

    from ..report import whatif as rw

    with Progress(console=Console(stderr=True), transient=True, disable=no_bar()) as bar:
        every = sweeps if isinstance(sweeps, list) else [sweeps]
        task = bar.add_task("writing rows", total=sum(x.grid.scenarios for x in every))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done)

        def write(path: str) -> None:
            rows = rw.write_scenarios(every, path, kind, progress)
            typer.echo(f"wrote {rows:,} rows", err=True)

        if output is None or str(output) == "-":
            stream = stdout()
            if stream.closed:
                stdout_failed(OSError(errno.EBADF, "standard output is closed"))
            try:
                stream.flush()
                rw.write_scenarios(every, stream.buffer, kind, progress)
                stream.buffer.flush()
            except OSError as exc:
                stdout_failed(exc)
            except ValueError:  # Arrow's writer on a closed stream
                stdout_failed(OSError(errno.EBADF, "standard output is closed"))
        else:
            write_whole(output, write, waiting=waiting)


def matplotlib_home() -> None:
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
    say(f"roofline: MPLCONFIGDIR {home} is not a writable folder; using a temporary one")


def check_output(output: Path | None) -> None:
    """Refuse an output path that cannot be written before a long computation, not after
    it: a folder, or a file in a folder that does not exist."""
    if output is None or str(output) == "-":
        return
    from ..report.output import writable

    writable(output)


def save_figure(fig: Any, output: Path) -> None:
    """Write a matplotlib Figure whole, format from the suffix."""
    suffix = output.suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        fail(f"--output {output}: the file must end in {', '.join(FIGURE_SUFFIXES)}")
    write_whole(
        output,
        lambda path: fig.savefig(path, format=suffix[1:], dpi=150),
        suffix,
        waiting=waiting,
    )
    typer.echo(f"wrote {output}", err=True)


def write_file(output: Path, text: str) -> None:
    """A text file written whole, with the waiting note for a FIFO."""
    write_text(output, text, waiting=waiting)
