"""The simulate command: a deployment under a request stream, iteration by iteration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..report.output import write_whole
from .app import app
from .io import Format, FormatOpt, OutputOpt, show
from .options import SERVING, scenario_command
from .paths import output_option
from .spec import Spec
from .values import OutputTokensOpt, PromptTokensOpt

Dist = Annotated[str, typer.Option(help="fixed, uniform, normal or lognormal.")]


@scenario_command(app, "simulate", takes=SERVING - {"batch"}, defaults={"attention": "flash"},
                  save=False)  # fmt: skip
def simulate(
    spec: Spec,
    hw: Annotated[str | None, typer.Option("--hw", help="The device of each replica.")] = None,
    rate: Annotated[float | None, typer.Option(help="Requests a second (or --trace).")] = None,
    requests: Annotated[int, typer.Option(help="Requests to simulate.")] = 1000,
    arrival: Annotated[str, typer.Option(help="poisson, gamma (with --cv) or fixed.")] = "poisson",
    cv: Annotated[
        float, typer.Option(help="Gamma arrivals: gaps' coefficient of variation.")
    ] = 1.0,
    prompt_tokens: PromptTokensOpt = 512,
    output_tokens: OutputTokensOpt = 256,
    prompt_dist: Dist = "fixed",
    output_dist: Dist = "fixed",
    spread: Annotated[
        float, typer.Option(help="Lengths: uniform +- this share, or the coefficient of variation.")
    ] = 0.0,
    trace: Annotated[
        Path | None,
        typer.Option(help="CSV or JSONL of arrival_s, prompt_tokens, output_tokens per request."),
    ] = None,
    engine_name: Annotated[
        str,
        typer.Option(
            "--engine",
            help="vllm (V1), vllm-v0, sglang, trtllm or static: each one's scheduling defaults "
            "(hardware/defaults/engines.yaml).",
        ),
    ] = "vllm",
    max_num_seqs: Annotated[int | None, typer.Option(help="Requests running at once.")] = None,
    max_batched_tokens: Annotated[
        int | None, typer.Option(help="Tokens an iteration takes (prefill chunks and decodes).")
    ] = None,
    memory_fraction: Annotated[
        float | None, typer.Option(help="Share of each device's memory the engine takes.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the arrivals and lengths.")] = 0,
    chart: Annotated[
        Path | None,
        output_option(
            "Also draw the requests running and waiting and the KV blocks in use "
            "over time: .png, .svg or .pdf.",
            "--chart",
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Simulate serving MODEL on HW under a stream of requests (Poisson, gamma, fixed or a
    trace), iteration by iteration as the engine schedules them: TTFT, TPOT and end-to-end
    latency (mean, p50, p90, p99), throughput, preemptions. -f csv or -o NAME.parquet: one
    record a request."""
    from dataclasses import replace

    from .. import simulate as sim
    from .. import traffic
    from ..errors import FieldError
    from ..hardware import get_device
    from ..report import simulate as rs
    from ..workloads import get_workload

    w, device = get_workload(spec.need_model()), get_device(spec.need_hw())
    run = replace(spec.run, phase="decode")
    if trace is not None:
        from ..trace import read_trace

        stream = read_trace(trace)
    else:
        if rate is None:
            raise FieldError("rate", None, "give --rate (requests a second) or --trace FILE")
        stream = traffic.Requests(
            traffic.arrivals(requests, rate, kind=arrival, cv=cv, seed=seed),
            traffic.lengths(requests, prompt_tokens, kind=prompt_dist, spread=spread, seed=seed + 1,
                        name="prompt"),
            traffic.lengths(requests, output_tokens, kind=output_dist, spread=spread, seed=seed + 2,
                        name="output_tokens"),
        )  # fmt: skip
    eng = traffic.engine(
        engine_name, device, max_seq=w.arch.max_seq, tensor=run.layout.tensor,
        memory_fraction=memory_fraction, max_num_seqs=max_num_seqs,
        max_batched_tokens=max_batched_tokens,
    )  # fmt: skip
    result = sim.simulate(w, run, device, stream, eng)
    title = f"{w.name} on {device.name}, {run.precision}: {len(stream.arrival_s):,} requests"
    if chart is not None:
        from .io import matplotlib_home, save_figure

        matplotlib_home()
        from .. import plot as plots

        save_figure(plots.simulation(result, title), chart)
    if output is not None and output.suffix.lower() == ".parquet":
        write_whole(output, lambda path: rs.write_records(result, path), ".parquet")
        typer.echo(f"wrote {output}", err=True)
        return
    show(
        fmt,
        output,
        data=lambda: rs.simulation_dict(result, w.key, device.key),
        rows=lambda: rs.record_rows(result),
        table=lambda: rs.simulation_table(result, title),
    )
