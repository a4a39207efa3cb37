"""The planning commands: whatif (sweeps and capacity answers) and serve (serving figures
and the SLO planner)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

import typer

from .app import app, fail
from .io import Format, FormatOpt, OutputOpt, no_bar, show, stream_rows
from .options import BY_NAME, SERVING, scenario_command
from .spec import Spec
from .values import (
    CurrencyOpt,
    GridOpt,
    NodePowerOpt,
    OutputTokensOpt,
    PriceOpt,
    PromptTokensOpt,
    PueOpt,
    currency,
    devices,
    per_device_dtypes,
    prices,
    sweep_devices,
)

TABLE_ROWS = 200  # a what-if table shows its rows up to this many pairs
TOP_ROWS = 20  # beyond that, the best this many
ROW_LIMIT = 1_000_000  # JSON rows built in memory (CSV and Parquet are streamed)
GONE = "now --dp (data-parallel replicas of the --tp x --pp layout) or --gpus (all its devices)"
Hidden = Annotated[str | None, typer.Option(hidden=True)]


@scenario_command(app, "whatif", save=False)
def whatif(
    spec: Spec,
    hw: Annotated[
        str | None, typer.Option("--hw", help="Devices, comma-separated, or all.")
    ] = None,
    flops_scale: Annotated[float, typer.Option(help="Scale every device's peaks.")] = 1.0,
    bw_scale: Annotated[float, typer.Option(help="Scale every device's memory bandwidth.")] = 1.0,
    capacity_scale: Annotated[float, typer.Option(help="Scale every device's memory.")] = 1.0,
    utilization: Annotated[
        float | None, typer.Option(help="Fraction of peak reached, for time to train.")
    ] = None,
    price: PriceOpt = None,
    currency_code: CurrencyOpt = "USD",
    tokens: Annotated[
        float | None,
        typer.Option(help="Training tokens, for time to train [default: the published run]."),
    ] = None,
    max_context: Annotated[
        bool,
        typer.Option(
            help="Answer instead the longest decode context (tokens in the KV cache) that "
            "fits each device's memory at each --batch (bisection on the memory model, up "
            "to the model's positions)."
        ),
    ] = False,
    sort: Annotated[
        str | None,
        typer.Option(
            help="Rank the rows (fitting first): throughput (tokens/s or samples/s, highest "
            "first), cost (a million tokens or samples, lowest first) or latency (expected "
            "time a step, lowest first) [default: sweep order]."
        ),
    ] = None,
    pue: PueOpt = None,
    node_power: NodePowerOpt = None,
    grid_intensity: GridOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    devices_gone: Annotated[str | None, typer.Option("--devices", hidden=True)] = None,
) -> None:
    """Sweep batch, sequence, context, dtype, device (--hw all: every device with the
    dtypes) and data-parallel replicas (--dp, or --gpus for all devices) of a --tp x --pp
    layout; answer the batch at which a step turns compute-bound, the largest batch that
    fits, time to train and cost, and the energy and CO2 to train (--pue, --node-power,
    --grid-intensity). CSV (-f csv) and Parquet (-o NAME.parquet) hold every (scenario,
    device) pair, at any size."""
    from ..answers import answers
    from ..energy import site
    from ..report import whatif as rw
    from ..whatif import build_sweep, priced, run_sweep, scaled
    from ..workloads import get_workload

    if devices_gone is not None:
        fail(f"--devices {devices_gone}: {GONE}")
    if sort is not None and sort not in rw.SORTS:
        fail(f"--sort {sort}: allowed: {', '.join(rw.SORTS)}")
    w = get_workload(spec.need_model())
    axes = spec.axes
    fixed = "dtype" in spec.explicit or len(axes["dtype"]) > 1
    devs = [scaled(d, flops_scale, bw_scale, capacity_scale) for d in
            sweep_devices(spec.need_hw(), axes["dtype"], fixed)]  # fmt: skip
    if price is None and "currency_code" in spec.explicit:
        fail("--currency: names the currency of --price; give --price too")
    if price is not None:
        devs = priced(devs, prices(price), currency(currency_code))
    if spec.run.phase != "training":
        for flag, value in (("--tokens", tokens), ("--utilization", utilization)):
            if value is not None:
                fail(f"{flag} {value:g}: time to train; applies to --phase training")
    for flag, given in (("--pue", pue), ("--node-power", node_power),
                        ("--grid-intensity", grid_intensity)):  # fmt: skip
        if given is not None and (spec.run.phase != "training" or max_context):
            fail(f"{flag} {given}: the energy to train; applies to --phase training")
    where = site(pue, node_power, grid_intensity)
    chosen, note = per_device_dtypes(devs, axes["dtype"][0], fixed)
    if max_context:
        _longest_context(spec, w, devs, chosen if note else None, note, fmt, output)
        return
    groups = {t: [d for d, c in zip(devs, chosen) if c == t] for t in dict.fromkeys(chosen)}
    sweeps = [
        build_sweep(
            w,
            group,
            spec.run,
            batches=axes["batch"],
            seqs=axes["seq"],
            contexts=axes["context"],
            dtypes=[t] if note else axes["dtype"],
            replicas=axes["dp"],
        )
        for t, group in groups.items()
    ]
    notes = [f"--hw: {note}"] if note else []
    pairs = sum(x.grid.scenarios * len(x.devices) for x in sweeps)
    limit = TABLE_ROWS if fmt is Format.table else ROW_LIMIT
    if output is not None and output.suffix.lower() == ".parquet":
        stream_rows(sweeps, output, "parquet")  # every row, any size, whatever --format
        return
    if fmt is Format.csv:  # any size: streamed in chunks, progress on stderr
        stream_rows(sweeps, output, "csv")
        return
    if fmt is Format.json and pairs > limit:
        fail(
            f"{pairs:,} (scenario, device) pairs are more than {limit:,} JSON rows; use "
            "--format csv (streamed, any size) or narrow the sweep"
        )
    top = fmt is Format.table and pairs > limit
    if top:  # a table of a big sweep: its best rows, and how many there are
        rows, best = rw.top_rows(sweeps, TOP_ROWS, sort)
    else:
        rows = [r for x in sweeps for r in rw.scenario_rows(x, run_sweep(x))]
        rows = rw.ranked(rows, sort)
        best = rw.best_rows(rows)
    training_note, why = None, ""
    if spec.run.phase == "training" and utilization is None:
        training_note, why = "needs --utilization", "the share of the dense peak reached"
    elif spec.run.phase == "training" and tokens is None and w.training is None:
        training_note, why = "needs --tokens", f"{w.key} has no published training run"
    found = []
    for x in sweeps:
        if x.grid.scenarios * len(x.devices) > 20_000_000:  # about a second: progress
            from rich.console import Console
            from rich.progress import Progress

            bar = Progress(console=Console(stderr=True), transient=True, disable=no_bar())
            task = bar.add_task("sweep", total=x.grid.scenarios)

            def progress(done: int, _: int, b: Any = bar, k: Any = task) -> None:
                b.update(k, completed=done)

            with bar:
                found += answers(
                    x, utilization=utilization, progress=progress, tokens=tokens, site=where
                )
        else:
            found += answers(x, utilization=utilization, tokens=tokens, site=where)
    order = {d.key: i for i, d in enumerate(devs)}
    found.sort(key=lambda a: order[a.device])  # the devices' order, whatever their dtype
    if training_note:
        notes.append(f"time to train '-': {training_note} ({why})")
    show(
        fmt,
        output,
        data=lambda: rw.whatif_dict(found, rows, pairs, best, notes, spec.run),
        rows=lambda: rows,
        table=lambda: rw.whatif_tables(
            w.name, sweeps, found, rows, top, best, sort, notes, training_note
        ),
    )


def _longest_context(
    spec: Spec, w: Any, devs: list[Any], chosen: list[str] | None, note: str | None,
    fmt: Format, output: Any,
) -> None:  # fmt: skip
    """whatif --max-context: the longest context that fits, per device, dtype and batch."""
    from ..memory import longest_context
    from ..report import whatif as rw

    for name in ("context", "seq", "dp", "gpus"):
        if name in spec.explicit:
            fail(f"{BY_NAME[name].flag} with --max-context: the answer is the context; give "
                 "--batch, --tp, --pp and the datatypes")  # fmt: skip
    if "phase" in spec.explicit and spec.run.phase != "decode":
        fail(f"{BY_NAME['phase'].flag} {spec.run.phase}: --max-context answers for decode "
             "(the KV cache)")  # fmt: skip
    pairs = (
        list(zip(devs, chosen))
        if chosen is not None
        else [(d, t) for t in spec.axes["dtype"] for d in devs]
    )
    found = [
        longest_context(w, replace(spec.run, batch=b, dtype=t), d)
        for d, t in pairs
        for b in spec.axes["batch"]
    ]
    notes = [f"--hw: {note}"] if note else []
    show(
        fmt,
        output,
        data=lambda: {"longest_context": rw.context_rows(found, w.key), "notes": notes},
        rows=lambda: rw.context_rows(found, w.key),
        table=lambda: rw.context_table(w.name, found, notes),
    )


@scenario_command(app, "serve", takes=SERVING, defaults={"attention": "flash"})
def serve(
    spec: Spec,
    hw: Annotated[
        str | None, typer.Option("--hw", help="Devices, comma-separated, or all.")
    ] = None,
    prompt_tokens: PromptTokensOpt = 512,
    output_tokens: OutputTokensOpt = 256,
    reserve: Annotated[
        float, typer.Option(help="Share of each device's memory kept for the runtime.")
    ] = 0.1,
    price: PriceOpt = None,
    currency_code: CurrencyOpt = "USD",
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
            help="With --rate: hold the TTFT target at this quantile: of the simulated TTFT "
            "(0.5, 0.9 or 0.99), or with --planner formula of the queueing wait (0.5 to "
            "0.999) [default: the mean]."
        ),
    ] = None,
    tpot_percentile: Annotated[
        float | None,
        typer.Option(
            help="With --rate: hold the TPOT target at this quantile of the simulated TPOT "
            "(0.5, 0.9 or 0.99) [default: the mean]."
        ),
    ] = None,
    planner: Annotated[
        str,
        typer.Option(
            help="With --rate: sim (each candidate checked by the iteration-level "
            "simulation) or formula (the steady-state formula, an M/M/c queue)."
        ),
    ] = "sim",
    engine_name: Annotated[
        str,
        typer.Option(
            "--engine",
            help="With --rate: the serving engine the simulation schedules like: vllm, "
            "vllm-v0, sglang, trtllm or static (hardware/defaults/engines.yaml).",
        ),
    ] = "vllm",
    replicas: Annotated[
        int | None,
        typer.Option(
            help="With --rate: this many replicas (data-parallel copies of the layout): the "
            "answer says whether they meet the targets, and the most they serve "
            "[default: the fewest that meet them]."
        ),
    ] = None,
    pue: PueOpt = None,
    node_power: NodePowerOpt = None,
    grid_intensity: GridOpt = None,
    sort: Annotated[
        str | None,
        typer.Option(
            help="Rank the devices (fitting first): throughput (output tokens/s, highest "
            "first), cost (a million output tokens, lowest first), latency (TPOT, lowest "
            "first) or ttft (lowest first) [default: --hw's order]; not with --rate."
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    prompt: Hidden = None,
) -> None:
    """Serve an LLM: time to first token, time per output token, tokens/s, the requests the
    KV cache holds, and the memory per device, on each device of --hw; with --rate, the
    fewest devices of each type that meet the latency targets."""
    from ..report import serve as rs
    from ..serve import TENSOR_WAYS, Request, Slo, plan
    from ..serve import serve as serve_on
    from ..workloads import get_workload

    if prompt is not None:
        fail(f"--prompt {prompt}: the prompt's tokens are --prompt-tokens")
    if output is not None and output.name.isdigit():
        fail(f"--output {output}: the output file; the output's tokens are --output-tokens")
    p, o = spec.request  # a run file's request, where the flags leave it
    p = prompt_tokens if p is None or "prompt_tokens" in spec.explicit else p
    o = output_tokens if o is None or "output_tokens" in spec.explicit else o
    w = get_workload(spec.need_model())
    run_config = replace(spec.run, phase="decode")
    request = Request(p, o, reserve)
    every = spec.need_hw().strip().lower() == "all"
    devs = devices(None if every else spec.hw)
    if price is None and "currency_code" in spec.explicit:
        fail("--currency: names the currency of --price; give --price too")
    if price is not None:
        from ..whatif import priced

        devs = priced(devs, prices(price), currency(currency_code))
    q = ttft_percentile
    if rate is None:
        for flag, value in (("--ttft", ttft), ("--tpot", tpot), ("--ttft-percentile", q),
                            ("--tpot-percentile", tpot_percentile)):  # fmt: skip
            if value is not None:
                fail(f"{flag} {value:g}: a target of the planner; give --rate too")
        for flag, name, default in (("--planner", planner, "sim"),
                                    ("--engine", engine_name, "vllm")):  # fmt: skip
            if name != default:
                fail(f"{flag} {name}: goes with the planner; give --rate too")
        if replicas is not None:
            fail(f"--replicas {replicas}: the planner's replicas; give --rate too")
        if sort is not None and sort not in rs.SORTS:
            fail(f"--sort {sort}: allowed: {', '.join(rs.SORTS)}")
        from ..energy import serving_energy, site
        from ..report import energy as re_

        where = site(pue, node_power, grid_intensity)
        chosen, note = per_device_dtypes(devs, run_config.dtype, "dtype" in spec.explicit)
        results = [serve_on(w, replace(run_config, dtype=t), d, request)
                   for d, t in zip(devs, chosen)]  # fmt: skip
        results = rs.ranked(results, sort)
        best = rs.best_of(results)
        energies = [serving_energy(r, where) for r in results]
        title = (
            f"{w.name}: serving batch {run_config.batch}, {p} tokens in, {o} out, "
            f"{'16-bit' if note else run_config.precision}, {run_config.attention} attention"
            + ("" if sort is None else f", by {rs.SORTS[sort]}")
        )
        notes = (f"--hw: {note}",) if note else ()

        def one(r: Any, e: Any) -> dict[str, Any]:
            return rs.serve_dict(r) | {
                "model": w.key,
                "best_for": rs.best_for(r, best),
                "energy": e.as_dict(),
            }

        dicts = [one(r, e) for r, e in zip(results, energies)]
        show(
            fmt,
            output,
            data=lambda: dicts if len(dicts) > 1 else dicts[0],
            rows=lambda: [
                row | re_.serving_columns(e)
                for row, e in zip(rs.serve_rows(results, w.key, best), energies)
            ],
            table=lambda: (
                rs.serve_table(results, title, notes) + re_.serving_lines(results, energies)
            ),
        )
        return
    if sort is not None:
        fail(f"--sort {sort}: ranks plain serve's devices; the --rate planner's answer is "
             "the fewest devices of each type")  # fmt: skip
    for name in ("batch", "pp"):
        if name in spec.explicit:
            flag = BY_NAME[name].flag
            fail(f"{flag} with --rate: the planner chooses the requests in flight and plans "
                 "tensor-parallel replicas; give --tp to fix the layout")  # fmt: skip
    ways = (run_config.layout.tensor,) if "tp" in spec.explicit else TENSOR_WAYS
    if planner not in ("sim", "formula"):
        fail(f"--planner {planner}: allowed: sim, formula")
    if planner == "sim":
        from ..energy import site

        where = site(pue, node_power, grid_intensity)
        if replicas is not None and not (1 <= replicas <= 100_000):
            fail(f"--replicas {replicas}: a whole number from 1 to 100,000")
        _plan_by_simulation(spec, w, run_config, devs, p, o, rate, ttft, tpot, q,
                            tpot_percentile, ways, engine_name, fmt, output, where,
                            replicas)  # fmt: skip
        return
    for flag, given in (("--pue", pue), ("--node-power", node_power),
                        ("--grid-intensity", grid_intensity)):  # fmt: skip
        if given is not None:
            fail(f"{flag} {given}: the formula planner counts no energy; use --planner sim")
    if tpot_percentile is not None or engine_name != "vllm" or replicas is not None:
        fail("--tpot-percentile, --engine and --replicas go with --planner sim (the simulation)")
    slo = Slo(rate, 2.0 if ttft is None else ttft, 0.05 if tpot is None else tpot, q)
    plans = [plan(w, run_config, d, request, slo, ways) for d in devs]
    heading = (
        f"{w.name}: {rate:g} requests/s of {p} tokens in, {o} out, {run_config.precision}; "
        f"TTFT <= {slo.ttft_s:g} s"
        + ("" if q is None else f" at p{100 * q:g} of the wait")
        + f", TPOT <= {slo.tpot_s * 1e3:g} ms"
    )
    show(
        fmt,
        output,
        data=lambda: [rs.plan_dict(x) | {"model": w.key} for x in plans],
        rows=lambda: [rs.plan_dict(x) | {"model": w.key} for x in plans],
        table=lambda: rs.plan_table(plans, heading),
    )


def _plan_by_simulation(
    spec: Spec, w: Any, run: Any, devs: list[Any], p: int, o: int, rate: float,
    ttft: float | None, tpot: float | None, q: float | None, q_tpot: float | None,
    ways: tuple[int, ...], engine_name: str, fmt: Format, output: Any, where: Any = None,
    replicas: int | None = None,
) -> None:  # fmt: skip
    """serve --rate, each candidate checked by simulation (slo.py)."""
    from ..report import serve as rs
    from ..slo import Targets, plan_simulated
    from ..traffic import engine

    targets = Targets(rate, 2.0 if ttft is None else ttft, 0.05 if tpot is None else tpot, q,
                      q_tpot)  # fmt: skip
    engine(engine_name, devs[0])  # an unknown engine: refused before any work
    run = replace(run, layout=replace(run.layout, data=1))
    plans = [plan_simulated(w, run, d, p, o, targets, ways, engine_name, replicas, at=where)
             for d in devs]  # fmt: skip
    heading = (
        f"{w.name}: {rate:g} requests/s (Poisson) of {p} tokens in, {o} out, {run.precision}; "
        f"TTFT <= {targets.ttft_s:g} s at the {targets.held(targets.ttft_quantile)}, "
        f"TPOT <= {targets.tpot_s * 1e3:g} ms at the {targets.held(targets.tpot_quantile)}"
    )
    show(
        fmt,
        output,
        data=lambda: [rs.sim_plan_dict(x, targets) | {"model": w.key} for x in plans],
        rows=lambda: [rs.sim_plan_row(x, targets) | {"model": w.key} for x in plans],
        table=lambda: rs.sim_plan_table(plans, targets, heading),
    )
