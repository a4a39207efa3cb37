"""Command line: parse, call one library function, format. No arithmetic here.

app.py      the typer app, the error boundary (one line, exit code 2), signals, main()
options.py  every run option declared once (flag, help, default, field, phases, sweeps)
            and `scenario_command`, which builds a command's options from them
spec.py     options + run file (--run) -> the RunConfig a command runs (--save-run)
io.py       stdout, files written whole, tables that fit the terminal, figures
values.py   device lists, prices, comma-separated numbers
analyze.py  run, memory, check          plan.py    whatif, serve
charts.py   plot, report, memwall       catalog.py validate, measure, hardware, models,
                                                   schema
"""

from __future__ import annotations

from . import analyze, catalog, charts, plan, simulate  # noqa: F401  (each registers commands)
from .app import app, main

__all__ = ["app", "main"]
