"""The commands that draw: plot (roofline charts), report (the HTML page) and memwall (the
memory wall, and one workload across device generations)."""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import FieldError
from .app import app, fail
from .io import (
    FigureOpt,
    Format,
    FormatOpt,
    matplotlib_home,
    save_figure,
    show,
    write_file,
)
from .options import scenario_command
from .paths import output_option
from .spec import Spec
from .values import devices, ints, per_device_dtypes


@scenario_command(app, "plot")
def plot(
    spec: Spec,
    output: FigureOpt,
    hw: Annotated[
        str | None, typer.Option("--hw", help="Devices, comma-separated (up to 6).")
    ] = None,
    all_dtypes: Annotated[bool, typer.Option(help="Draw every dtype's compute ceiling.")] = False,
    top: Annotated[int, typer.Option(help="Label this many layers by time.")] = 5,
    panels: Annotated[
        bool, typer.Option(help="One panel per device (small multiples), not one chart.")
    ] = False,
) -> None:
    """Roofline chart of MODEL on one or more devices."""
    matplotlib_home()
    from .. import plot as plots
    from ..analysis import analyze
    from ..workloads import get_workload

    if not 0 <= top <= 50:
        raise FieldError("top", top, "must be from 0 to 50")
    w = get_workload(spec.need_model())
    devs = devices(spec.need_hw())
    # at the default fp16, a device without it draws at its 16-bit type (bf16), as all do
    chosen, _ = per_device_dtypes(devs, spec.run.dtype, "dtype" in spec.explicit)
    results = [analyze(w, d, replace(spec.run, dtype=t)) for d, t in zip(devs, chosen)]
    draw = plots.roofline_panels if panels else plots.roofline
    save_figure(draw(results, all_dtypes=all_dtypes, top=top), output)


SweepBatchOpt = Annotated[
    str | None, typer.Option(help="What-if batches, comma-separated [default: 1, 2, 4 ... 128].")
]
SweepSeqOpt = Annotated[
    str | None,
    typer.Option(
        help="What-if sequence lengths (decode: contexts), comma-separated "
        "[default: powers of 2 up to --seq]."
    ),
]


@scenario_command(app, "report")
def report(
    spec: Spec,
    output: Annotated[Path, output_option("The page: a .html file.")],
    hw: Annotated[
        str | None, typer.Option("--hw", help="Devices, comma-separated (up to 8).")
    ] = None,
    sweep_batch: SweepBatchOpt = None,
    sweep_seq: SweepSeqOpt = None,
) -> None:
    """One self-contained HTML page of MODEL on the devices of --hw: summary, roofline
    chart, per-layer table, what-if heatmaps of batch x sequence, memory and fit."""
    if output.suffix.lower() not in (".html", ".htm"):
        fail(f"--output {output}: the file must end in .html")
    matplotlib_home()
    from ..report.html import build_report, render_html
    from ..workloads import get_workload

    page = build_report(
        get_workload(spec.need_model()),
        devices(spec.need_hw()),
        spec.run,
        batches=None if sweep_batch is None else ints("--sweep-batch", sweep_batch),
        seqs=None if sweep_seq is None else ints("--sweep-seq", sweep_seq),
    )
    write_file(output, render_html(page))
    typer.echo(f"wrote {output}", err=True)


class WallFigure(str, Enum):
    scaling = "scaling"
    models = "models"
    compute = "compute"
    memory = "memory"


@scenario_command(app, "memwall", takes={"batch", "seq", "phase"}, save=False)
def memwall(
    spec: Spec,
    hw: Annotated[str | None, typer.Option("--hw", help="Devices [default: all].")] = None,
    figure: Annotated[
        WallFigure, typer.Option(help="Which chart --output draws.")
    ] = WallFigure.scaling,
    output: Annotated[Path | None, output_option("Chart: .png, .svg, .pdf.")] = None,
    fmt: FormatOpt = Format.table,
    paper: Annotated[
        bool, typer.Option(help="The paper's flagship training devices to 2022, not --hw.")
    ] = False,
) -> None:
    """Growth per two years of peak FLOP/s, DRAM and interconnect bandwidth and memory
    capacity, fitted over the device database (--paper: over the paper's flagship training
    devices to 2022; --hw: over those), next to the paper's; or, with --model, the workload
    on every device in release order."""
    if paper and spec.hw is not None:
        fail("--paper picks the devices: give --paper or --hw, not both")
    if spec.model is None:
        for name in ("batch", "seq", "phase"):
            if name in spec.explicit:
                fail(f"--{name}: sets the workload of --model; give --model too")
    if "figure" in spec.explicit and output is None:
        fail(f"--figure {figure.value}: the chart --output draws; give --output too")
    if output is not None:
        matplotlib_home()
    from .. import memwall as wall
    from ..report import memwall as rw
    from ..workloads import get_workload, list_workloads

    devs = devices(",".join(wall.PAPER_DEVICES) if paper else spec.hw)
    if spec.model is not None:
        w = get_workload(spec.model)
        gens = wall.generations(w, devs, spec.run)
        if output is not None:
            from .. import plot as plots

            run = spec.run
            size = f", seq {run.seq}" if run.seq else ""
            title = f"{w.name} ({run.phase}, batch {run.batch}{size}, each device's headline dtype)"
            save_figure(plots.generations(gens, name=title), output)
        show(
            fmt,
            None,
            data=lambda: rw.generation_rows(gens),
            rows=lambda: rw.generation_rows(gens),
            table=lambda: [rw.generation_table(w.name, gens)],
        )
        return
    trends = wall.rates(devs)
    over = (
        "the paper's flagship training devices to 2022 (--paper)"
        if paper
        else "the device database"
        if spec.hw is None
        else "the devices of --hw"
    )
    if output is not None:
        from .. import plot as plots

        workloads = list_workloads()
        fig = {
            WallFigure.scaling: lambda: plots.memory_wall(devs),
            WallFigure.models: lambda: plots.model_sizes(workloads, devs),
            WallFigure.compute: lambda: plots.training_compute(workloads),
            WallFigure.memory: lambda: plots.training_memory(workloads, devs),
        }[figure]()
        save_figure(fig, output)
    show(
        fmt,
        None,
        data=lambda: rw.rates_dict(trends),
        rows=lambda: rw.rates_dict(trends)["series"],
        table=lambda: [rw.rates_table(trends, over)],
    )
