"""The simulate command: a deployment under a request stream, iteration by iteration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..report.output import write_whole
from .app import app
from .io import Format, FormatOpt, OutputOpt, show
from .options import SERVING, scenario_command
from .paths import output_option
from .spec import Spec
from .values import GridOpt, NodePowerOpt, OutputTokensOpt, PromptTokensOpt, PueOpt

Dist = Annotated[
    str,
    typer.Option(
        help="fixed, uniform, normal or lognormal (about the mean), or a file of lengths, one "
        "a line, drawn from with replacement (its own mean: the token flag is not used)."
    ),
]
KINDS = ("fixed", "uniform", "normal", "lognormal")


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
    stages: Annotated[
        str | None,
        typer.Option(
            help="A load in stages instead of --rate: RATE:SECONDS,RATE:SECONDS,... (e.g. "
            "5:60,20:120,5:60), --arrival's gaps within each; a summary a stage "
            "(--requests does not apply)."
        ),
    ] = None,
    prefix_tokens: Annotated[
        int,
        typer.Option(
            help="Tokens of a prefix every prompt shares (a system prompt), kept in the KV "
            "cache once and not prefilled again (prefix caching; whole blocks)."
        ),
    ] = 0,
    ttft: Annotated[
        float | None,
        typer.Option(help="A TTFT target, s: goodput counts the requests that meet it."),
    ] = None,
    tpot: Annotated[
        float | None,
        typer.Option(help="A TPOT target, s: goodput counts the requests that meet it."),
    ] = None,
    chart: Annotated[
        Path | None,
        output_option(
            "Also draw the requests running and waiting and the KV blocks in use "
            "over time: .png, .svg or .pdf.",
            "--chart",
        ),
    ] = None,
    pue: PueOpt = None,
    node_power: NodePowerOpt = None,
    grid_intensity: GridOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Simulate serving MODEL on HW under a stream of requests (Poisson, gamma, fixed, a load
    in stages or a trace), iteration by iteration as the engine (vllm, vllm-v0, sglang,
    trtllm, static) schedules them: TTFT, TPOT and end-to-end latency (mean, p50, p90, p99,
    with 80 % intervals), throughput, goodput under --ttft/--tpot, preemptions, energy and
    CO2 an output token. -f csv or -o NAME.parquet: one record a request."""
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
    edges = None
    if stages is not None and (rate is not None or trace is not None):
        raise FieldError("stages", stages, "a load of its own: give --stages, --rate or --trace")
    for name, target in (("ttft", ttft), ("tpot", tpot)):
        if target is not None and not (1e-6 <= target <= 1e9):
            raise FieldError(name, target, "a target in seconds, from 1e-06 to 1e+09")
    if trace is None:
        if stages is not None:
            times, edges = traffic.staged_arrivals(_stages(stages), kind=arrival, cv=cv, seed=seed)
            requests = len(times)
            if requests == 0:
                raise FieldError("stages", stages, "no request arrives in these stages")
        elif rate is None:
            raise FieldError("rate", None, "give --rate (requests a second), --stages or --trace")
        else:
            times = traffic.arrivals(requests, rate, kind=arrival, cv=cv, seed=seed)
        stream = traffic.Requests(
            times,
            _lengths(requests, prompt_tokens, prompt_dist, spread, seed + 1, "prompt"),
            _lengths(requests, output_tokens, output_dist, spread, seed + 2, "output_tokens"),
        )
    eng = traffic.engine(
        engine_name, device, max_seq=w.arch.max_seq, tensor=run.layout.tensor,
        memory_fraction=memory_fraction, max_num_seqs=max_num_seqs,
        max_batched_tokens=max_batched_tokens,
    )  # fmt: skip
    from ..energy import site

    where = site(pue, node_power, grid_intensity)
    result = sim.simulate(w, run, device, stream, eng, prefix_tokens=prefix_tokens)
    extra: dict[str, Any] = {}
    energy = sim.simulation_energy(result, device, run.layout.model_split, where)
    extra["energy"] = sim.energy_figures(energy, result)
    extra["stats_interval"] = sim.stat_intervals(result.stats)
    if edges is not None:
        extra["stages"] = sim.stage_stats(result, edges)
    if ttft is not None or tpot is not None:
        extra["goodput"] = {"ttft_target_s": ttft, "tpot_target_s": tpot} | sim.goodput(
            result, ttft, tpot
        )
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
        data=lambda: rs.simulation_dict(result, w.key, device.key) | extra,
        rows=lambda: rs.record_rows(result),
        table=lambda: rs.simulation_table(result, title, extra),
    )


def _stages(text: str) -> list[tuple[float, float]]:
    """RATE:SECONDS,... as (rate, seconds) pairs."""
    from ..errors import FieldError

    out = []
    for part in text.split(","):
        rate_text, sep, seconds_text = part.strip().partition(":")
        try:
            rate, seconds = float(rate_text), float(seconds_text)
        except ValueError:
            rate = seconds = float("nan")
        if not sep or not (1e-6 <= rate <= 1e6) or not (0 < seconds <= 1e7):
            raise FieldError(
                "stages", text, f"{part.strip()!r}: RATE:SECONDS, a rate from 1e-06 to 1e6 "
                "requests a second and a duration above 0 to 1e7 s"
            )  # fmt: skip
        out.append((rate, seconds))
    return out


def _lengths(n: int, mean: int, dist: str, spread: float, seed: int, name: str) -> Any:
    """n lengths: a named distribution about `mean`, or drawn from a file of lengths."""
    from .. import traffic

    if dist in KINDS or not (Path(dist).suffix or "/" in dist):
        return traffic.lengths(n, mean, kind=dist, spread=spread, seed=seed, name=name)
    from ..trace import read_lengths

    return traffic.resample(read_lengths(Path(dist), name), n, seed)
