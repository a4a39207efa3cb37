"""The commands that analyse one run: run (per-layer roofline), memory (footprint, fit,
layout, step time) and check (measured on this machine). Each parses, calls one library
function and formats; their run options come from options.py."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app
from .io import Format, FormatOpt, OutputOpt, show_of
from .options import NUMPY, scenario_command
from .spec import Spec
from .values import GridOpt, NodePowerOpt, PueOpt, devices

DeviceOpt = Annotated[
    str | None, typer.Option("--hw", help="Device name or alias, or a device YAML [or --run's].")
]


@scenario_command(app, "run")
def run(
    spec: Spec,
    hw: DeviceOpt = None,
    pue: PueOpt = None,
    node_power: NodePowerOpt = None,
    grid_intensity: GridOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Per-layer roofline of MODEL on device HW, with a summary: the bound, the expected
    time on the real device and the losses between them (with --dp/--tp/--pp: one device's
    share of each layer), and the step's energy, power and carbon on the layout's devices."""
    from ..analysis import analyze
    from ..energy import result_energy, site
    from ..report import energy as re_
    from ..report import run as rr

    result = analyze(spec.need_model(), spec.need_hw(), spec.run)
    e = result_energy(result, site(pue, node_power, grid_intensity))
    tokens = re_.step_tokens(result)
    show_of(
        fmt,
        output,
        result,
        lambda r: rr.result_dict(r) | {"energy": re_.step_dict(e, tokens)},
        rr.layer_rows,
        lambda r: [*rr.result_table(r), "\n".join(re_.energy_lines(e, tokens, "token"))],
    )


@scenario_command(app, "memory", defaults={"phase": "training"})
def memory(
    spec: Spec,
    hw: Annotated[
        str | None, typer.Option("--hw", help="Devices, comma-separated [default: all].")
    ] = None,
    pue: PueOpt = None,
    node_power: NodePowerOpt = None,
    grid_intensity: GridOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Memory footprint of a training step or an inference pass (per device of a
    --dp/--tp/--pp/--zero layout), where it fits, the smallest layout that fits, and the
    layout's communication, step time and the step's energy (--pue, --node-power,
    --grid-intensity) on each device."""
    from ..capacity import memory_report
    from ..energy import site
    from ..report import memory as rm
    from ..workloads import get_workload

    where = site(pue, node_power, grid_intensity)
    report = memory_report(get_workload(spec.need_model()), spec.run, devices(spec.hw), where)
    show_of(fmt, output, report, rm.memory_dict, rm.memory_rows, rm.memory_table)


@scenario_command(app, "check", takes=NUMPY, defaults={"dtype": "fp32"})
def check(
    spec: Spec,
    hw: Annotated[
        str | None,
        typer.Option(
            "--hw", help="This machine's device file, written here by `roofline measure`."
        ),
    ] = None,
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
    """Run MODEL's forward pass layer by layer in numpy on this machine (fp32 or fp64) and
    set the measured times beside the predicted ones (bound and expected) for this
    machine's own device file. Refused before it runs: another machine's file, more memory
    than half of what is free, more time than --max-time."""
    from ..check import check as run_check
    from ..hardware import get_device
    from ..report import check as rc
    from ..workloads import get_workload
    from .start import say

    result = run_check(
        get_workload(spec.need_model()),
        get_device(spec.need_hw()),
        spec.run,
        max_time_s=max_time,
        progress=lambda i, n, name: say(f"checking layer {i} of {n}: {name}"),
    )
    show_of(fmt, output, result, rc.check_dict, rc.check_rows, rc.check_table)
