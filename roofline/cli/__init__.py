"""Command line: parse, call one library function, format. No arithmetic here.

start.py    main(): signals, closed and broken streams, `--version` (before typer loads)
app.py      the typer app, the error boundary (one line, exit code 2)
options.py  every run option declared once (flag, help, default, field, phases, sweeps)
            and `scenario_command`, which builds a command's options from them
spec.py     options + run file (--run) -> the RunConfig a command runs (--save-run)
io.py       stdout, files written whole, tables that fit the terminal, figures
values.py   device lists, prices, comma-separated numbers
analyze.py  run, memory, check          plan.py    whatif, serve
charts.py   plot, report, memwall       catalog.py validate, measure, hardware, models,
simulate.py simulate                               schema

Start-up is kept light: `import roofline.cli` loads neither typer nor the commands (`app`
is built on first use), and a command module imports the library (numpy, numba, pandas,
matplotlib) inside its command functions only.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from .start import main

if TYPE_CHECKING:
    import typer

__all__ = ["commands", "main"]  # and `app`, the typer app


def commands() -> typer.Typer:
    """The typer app with every command registered (each command module registers its own
    when imported)."""
    from . import analyze, catalog, charts, plan, simulate  # noqa: F401
    from .app import app

    return app


class _Package(types.ModuleType):
    """`roofline.cli.app` is the typer app, built on first use, and stays so whichever
    module was imported first: the import system binds each submodule to its package's
    attribute of the same name, and app.py would hide the app it holds."""

    @property
    def app(self) -> typer.Typer:
        return commands()

    @app.setter
    def app(self, module: types.ModuleType) -> None:
        return None  # the submodule app.py: `from .app import ...` finds it in sys.modules


sys.modules[__name__].__class__ = _Package
