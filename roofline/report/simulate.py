"""A serving simulation's results: the summary (JSON, a table) and the per-request records
(CSV, Parquet), SI units in the names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import new_table, plain, seconds

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..simulate import SimulationResult

RECORD_COLUMNS = ("arrival_s", "ttft_s", "e2e_s", "tpot_s", "prompt_tokens", "output_tokens",
                  "preemptions")  # fmt: skip


def records(r: SimulationResult) -> dict[str, np.ndarray]:
    """One row a request: when it came, its latencies, its tokens, its preemptions."""
    ttft = r.first_token_s - r.arrival_s
    tpot = np.where(r.output > 1, (r.finish_s - r.first_token_s) / np.maximum(r.output - 1, 1),
                    np.nan)  # fmt: skip
    return {
        "arrival_s": r.arrival_s,
        "ttft_s": ttft,
        "e2e_s": r.finish_s - r.arrival_s,
        "tpot_s": tpot,
        "prompt_tokens": r.prompt,
        "output_tokens": r.output,
        "preemptions": r.preemptions,
    }


def record_rows(r: SimulationResult) -> list[dict[str, Any]]:
    cols = records(r)
    return [
        dict(zip(RECORD_COLUMNS, row)) for row in zip(*(cols[k].tolist() for k in RECORD_COLUMNS))
    ]


def write_records(r: SimulationResult, path: str) -> None:
    """The per-request records as Parquet (null where a figure does not exist)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = records(r)
    table = pa.table({k: pa.array(v, from_pandas=True) for k, v in cols.items()})
    pq.write_table(table, path)


def simulation_dict(r: SimulationResult, model: str, device: str) -> dict[str, Any]:
    e = r.engine
    return {
        "model": model,
        "device": device,
        "requests": len(r.arrival_s),
        "engine": {
            "name": e.name,
            "max_num_seqs": e.max_num_seqs,
            "max_batched_tokens": e.max_batched_tokens,
            "memory_fraction": e.memory_fraction,
            "block_tokens": e.block_tokens,
            "static": e.static,
            "host_overhead_s": e.host_overhead_s,
            "source": e.source,
        },
        "kv_blocks": r.blocks,
        "stats": plain(r.stats),
    }


def simulation_table(
    r: SimulationResult, title: str, extra: dict[str, Any] | None = None
) -> list[RenderableType]:
    s = r.stats
    table = new_table(title, ("latency", "mean", "p50", "p90", "p99"), left=("latency",))
    for name, key in (("time to first token", "ttft"), ("time per output token", "tpot"),
                      ("end to end", "e2e")):  # fmt: skip
        row = [s.get(f"{key}_mean_s")] + [s.get(f"{key}_p{q}_s") for q in (50, 90, 99)]
        table.add_row(name, *("-" if v is None else seconds(v) for v in row))
    e = r.engine
    lines = [
        f"throughput    {s['requests_per_s'] or 0:.3g} requests/s, "
        f"{s['output_tokens_per_s'] or 0:,.0f} output tokens/s, "
        f"{s['input_tokens_per_s'] or 0:,.0f} input tokens/s",
        f"in the system {s['mean_in_system'] or 0:.3g} requests on average; "
        f"{s['preemptions']:.0f} preemptions; {s['iterations']:,.0f} iterations",
        f"engine        {e.name}: {e.max_num_seqs} running, {e.max_batched_tokens:,} tokens an "
        f"iteration, {e.memory_fraction:.0%} of memory, {r.blocks:,} KV blocks of "
        f"{e.block_tokens} tokens",
    ]
    if s.get("saturated"):
        lines.append(
            f"saturated     {s['offered_requests_per_s']:.3g} requests/s came, "
            f"{s['served_while_arriving_per_s']:.3g} a second were served while they came: the "
            "queue grows as long as the rate lasts (latencies depend on the run's length)"
        )
    if s.get("prefix_cached_tokens"):
        lines.append(f"prefix cache  {s['prefix_cached_tokens']:,.0f} tokens of every prompt "
                     "cached once, not prefilled")  # fmt: skip
    extra = extra or {}
    en = extra.get("energy")
    if en:
        if en["energy_j"] is None:
            lines.append(f"energy        - ({en['reason']})")
        else:
            lines.append(
                f"energy        {en['joules_per_output_token']:.3g} J an output token, "
                f"{en['average_power_w']:,.0f} W on average ({en['devices']} device(s), "
                f"PUE {en['site']['pue']:g}), {en['co2_g_per_output_token']:.3g} gCO2eq a token "
                f"({en['site']['grid']} grid, location-based)"
            )
    ivs = extra.get("stats_interval") or {}
    shown = []
    for name, key in (("TTFT", "ttft_mean_s"), ("TPOT", "tpot_mean_s"), ("E2E", "e2e_mean_s")):
        iv = ivs.get(key)
        if iv is not None:
            lo, hi = seconds(iv["low"]), seconds(iv["high"])
            shown.append(f"{name} mean {lo}-{hi}")
    if shown:
        lines.append(f"80 % intervals {'; '.join(shown)} (the load points' residuals, "
                     "validate --load)")  # fmt: skip
    good = extra.get("goodput")
    if good:
        held = ", ".join(
            f"{name} <= {seconds(good[key])}" for name, key in
            (("TTFT", "ttft_target_s"), ("TPOT", "tpot_target_s")) if good[key] is not None
        )  # fmt: skip
        lines.append(f"goodput       {good['goodput_requests_per_s']:.3g} requests/s met {held} "
                     f"({good['slo_attainment']:.1%} of the requests)")  # fmt: skip
    from rich.text import Text

    out: list[RenderableType] = [table, Text("\n".join(lines))]
    if extra.get("stages"):
        st = new_table(
            "By stage (the requests that arrived in it)",
            ("stage", "from", "to", "requests/s", "TTFT p50", "TTFT p99", "TPOT p50",
             "TPOT p99", "E2E p99"),
            left=("stage",),
        )  # fmt: skip
        for i, row in enumerate(extra["stages"], 1):
            figures = [row.get(k) for k in ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s",
                                            "tpot_p99_s", "e2e_p99_s")]  # fmt: skip
            st.add_row(
                str(i), f"{row['start_s']:g} s", f"{row['end_s']:g} s",
                f"{row['offered_requests_per_s']:.3g}",
                *("-" if v is None else seconds(v) for v in figures),
            )  # fmt: skip
        out.append(st)
    return out
