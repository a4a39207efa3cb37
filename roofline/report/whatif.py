"""What-if sweeps: scenario rows (built from columns), answers as JSON and tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from . import csv_cell, interval_fields, new_table, plain, seconds, with_interval

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from rich.console import RenderableType

    from ..answers import Answer, TrainingEstimate
    from ..intervals import Interval
    from ..memory import LongestContext
    from ..scenario import RunConfig
    from ..sweep import SweepOutput
    from ..whatif import Sweep


# the Arrow type of each column (the rest are float64); strings are built by index (take)
_ARROW_TYPES = {
    "device": "string",
    "dtype": "string",
    "currency": "string",
    "batch": "int64",
    "seq": "int64",
    "context": "int64",
    "devices": "int64",
    "fits": "bool_",
}


def scenario_schema() -> pa.Schema:
    """The Arrow schema of every what-if table: SCENARIO_COLUMNS, each with one type."""
    import pyarrow as pa

    from ..whatif import SCENARIO_COLUMNS

    return pa.schema([(k, getattr(pa, _ARROW_TYPES.get(k, "float64"))()) for k in SCENARIO_COLUMNS])


def scenario_table(
    sweep: Sweep,
    out: SweepOutput,
    start: int = 0,
    text: Callable[[str], str] = str,
) -> pa.Table:
    """scenario_columns as an Arrow table with every column of SCENARIO_COLUMNS (null where
    it does not apply, NaN prices as null); the strings are taken by index from the devices'
    and dtypes' names, which is what keeps a chunk of 10^6 rows fast. `text` maps each name
    first (csv_cell for a CSV)."""
    import pyarrow as pa

    from ..whatif import scenario_columns

    schema = scenario_schema()
    cols = scenario_columns(sweep, out, start)
    n_dev = len(sweep.devices)
    n = len(cols["device"])
    on_device = pa.array(np.tile(np.arange(n_dev), n // n_dev))
    dt = sweep.grid.chunk(start, start + n // n_dev)[3]
    strings = {
        "device": pa.array([text(d.key) for d in sweep.devices], pa.string()).take(on_device),
        "dtype": pa.array([text(t) for t in sweep.grid.dtypes], pa.string()).take(
            pa.array(np.repeat(dt, n_dev))
        ),
    }
    if "currency" in cols:
        names = [text(d.price.currency) if d.price else None for d in sweep.devices]
        strings["currency"] = pa.array(names, pa.string()).take(on_device)
    arrays = []
    for field in schema:
        if field.name in strings:
            arrays.append(strings[field.name])
        elif field.name in cols:
            arrays.append(pa.array(cols[field.name], type=field.type, from_pandas=True))
        else:
            arrays.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def scenario_frame(sweep: Sweep, out: SweepOutput | None = None) -> pd.DataFrame:
    """Every (scenario, device) pair of the sweep as a tidy DataFrame: one row a pair, the
    columns SCENARIO_COLUMNS with their units in the names (the CSV's and JSON's names),
    built column-wise from the engine's arrays."""
    from ..whatif import run_sweep

    return scenario_table(sweep, out if out is not None else run_sweep(sweep)).to_pandas()


def scenario_rows(sweep: Sweep, out: SweepOutput) -> list[dict[str, Any]]:
    """Every (scenario, device) pair as a row; every row has every column (null where it
    does not apply), so JSON, CSV and DataFrame agree."""
    from ..whatif import SCENARIO_COLUMNS, scenario_columns

    cols = scenario_columns(sweep, out)
    n = len(cols["device"])
    lists = {k: plain(cols[k]) if k in cols else [None] * n for k in SCENARIO_COLUMNS}
    return [dict(zip(lists, values)) for values in zip(*lists.values())]


# how a what-if's rows are ranked (--sort): the figure and which way reads best
SORTS = {
    "throughput": "tokens/s (samples/s), highest first",
    "cost": "cost a million tokens (samples), lowest first",
    "latency": "expected time a step, lowest first",
}
# the best-per-question answers: the name, the figure it ranks by
QUESTIONS = (("fastest", "throughput"), ("cheapest", "cost"), ("lowest_latency", "latency"))


def rate_of(row: dict[str, Any]) -> float | None:
    rate = row.get("tokens_per_s")
    return row.get("samples_per_s") if rate is None else rate


def cost_of(row: dict[str, Any]) -> float | None:
    cost = row.get("cost_per_million_tokens")
    return row.get("cost_per_million_samples") if cost is None else cost


def _figure(row: dict[str, Any], by: str) -> float | None:
    value = {"throughput": rate_of, "cost": cost_of}.get(by, lambda r: r["expected_time_s"])(row)
    if value is None or not np.isfinite(value):
        return None
    return -value if by == "throughput" else value


def rank_key(row: dict[str, Any], by: str) -> tuple[bool, bool, float]:
    """The sort key of a row for --sort `by`: rows that fit first, then those with the
    figure (a device without a price has no cost), then the figure the way it reads best."""
    value = _figure(row, by)
    return (not row["fits"], value is None, 0.0 if value is None else value)


def ranked(rows: list[dict[str, Any]], by: str | None) -> list[dict[str, Any]]:
    """`rows` sorted for --sort `by` (stable: ties keep their order); as given for None."""
    return rows if by is None else sorted(rows, key=lambda r: rank_key(r, by))


def best_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """The best row per question among those that fit and have the figure: the fastest
    (most tokens/s), the cheapest (least cost a million tokens), the lowest latency (least
    expected time a step); None where no row qualifies."""
    best: dict[str, dict[str, Any] | None] = {}
    for name, by in QUESTIONS:
        have = [r for r in rows if r["fits"] and _figure(r, by) is not None]
        best[name] = min(have, key=lambda r: rank_key(r, by)) if have else None
    return best


def _key_columns(cols: dict[str, np.ndarray], by: str) -> tuple[np.ndarray, ...]:
    """rank_key as arrays, for np.lexsort (last key first)."""
    n = len(cols["fits"])
    rate = cols["tokens_per_s"] if "tokens_per_s" in cols else cols["samples_per_s"]
    cost = cols.get("cost_per_million_tokens", cols.get("cost_per_million_samples"))
    value = {
        "throughput": -np.asarray(rate, dtype=float),
        "cost": np.full(n, np.nan) if cost is None else np.asarray(cost, dtype=float),
        "latency": np.asarray(cols["expected_time_s"], dtype=float),
    }[by]
    missing = ~np.isfinite(value)
    return np.where(missing, 0.0, value), missing, ~cols["fits"]


def top_rows(
    sweeps: Sweep | Sequence[Sweep], k: int = 20, by: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any] | None]]:
    """The k best (scenario, device) pairs of what-ifs of any size, as scenario_rows rows,
    ranked for --sort `by` (default: throughput, fitting first), and the best row per
    question over every pair; found chunk by chunk, so memory does not grow with the grid."""
    from ..sweep import evaluate_grid
    from ..whatif import SCENARIO_COLUMNS, scenario_columns

    by = by or "throughput"
    best: list[dict[str, Any]] = []
    candidates: list[dict[str, Any]] = []

    def row(cols: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        return {c: plain(cols[c][i]) if c in cols else None for c in SCENARIO_COLUMNS}

    for sweep in [sweeps] if not isinstance(sweeps, Sequence) else sweeps:

        def reduce(start: int, out: SweepOutput, sweep: Sweep = sweep) -> None:
            cols = scenario_columns(sweep, out, start)
            best.extend(row(cols, i) for i in np.lexsort(_key_columns(cols, by))[:k])
            best.sort(key=lambda r: rank_key(r, by))
            del best[k:]
            for _, question in QUESTIONS:  # each question's best of this chunk
                candidates.append(row(cols, int(np.lexsort(_key_columns(cols, question))[0])))

        evaluate_grid(sweep.model, sweep.grid, keep=False, reduce=reduce)
    return best, best_rows(candidates)


def write_scenarios(
    sweeps: Sweep | Sequence[Sweep],
    sink: str | BinaryIO,
    kind: str = "csv",
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Every (scenario, device) pair of the sweep (or sweeps, one after another) as CSV or
    Parquet into `sink` (a path or a
    binary file), chunk by chunk through Arrow's writers (memory does not grow with the
    grid; a Parquet row group per chunk); the columns of scenario_rows. CSV writes `fits`
    as True/False, as Python writes a bool. Returns the number of rows written."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from ..sweep import evaluate_grid

    schema = scenario_schema()
    if kind == "csv":
        fits = schema.get_field_index("fits")
        schema = schema.set(fits, pa.field("fits", pa.string()))
        writer: Any = pcsv.CSVWriter(
            sink, schema, write_options=pcsv.WriteOptions(quoting_style="needed")
        )
    elif kind == "parquet":
        writer = pq.ParquetWriter(sink, schema)
    else:
        raise ValueError(f"unknown table format {kind!r}")
    written = 0

    done = 0

    def reduce(start: int, out: SweepOutput, sweep: Sweep) -> None:
        nonlocal written
        table = scenario_table(sweep, out, start, csv_cell if kind == "csv" else str)
        if kind == "csv":
            shown = pc.if_else(table["fits"], "True", "False")
            table = table.set_column(fits, "fits", shown)
        writer.write_table(table)
        written += table.num_rows

    every = [sweeps] if not isinstance(sweeps, Sequence) else list(sweeps)
    total = sum(x.grid.scenarios for x in every)
    try:
        for sweep in every:

            def step(n: int, _: int, d: int = done) -> None:
                if progress is not None:
                    progress(d + n, total)

            def chunk(start: int, out: SweepOutput, sweep: Sweep = sweep) -> None:
                reduce(start, out, sweep)

            evaluate_grid(sweep.model, sweep.grid, progress=step, keep=False, reduce=chunk)
            done += sweep.grid.scenarios
    finally:
        writer.close()
    return written


def days_interval(days: float | None, run: RunConfig | None) -> tuple[Interval | None, str]:
    """The expected time to train's interval: the training kind's (intervals.yaml) on the
    expected days, or why none (the bound at --ideal, a --sustained share of one's own)."""
    from ..intervals import expected_interval

    if days is None:
        return None, "no expected time to train"
    ideal = run.ideal if run is not None else False
    sustained = run.sustained if run is not None else None
    return expected_interval(days, "training", ideal=ideal, sustained=sustained)


def _training(t: TrainingEstimate, run: RunConfig | None) -> dict[str, Any]:
    iv, why = days_interval(t.expected_days, run)
    return training_dict(t) | interval_fields("expected_days_interval", iv, why, unit="")


def answer_dict(a: Answer, run: RunConfig | None = None) -> dict[str, Any]:
    best = None
    if a.best is not None:
        b = a.best
        best = {
            "batch": b.batch,
            "seq": b.seq,
            "context": b.context,
            "devices": b.devices,
            "time_s": b.time_s,
            b.unit: b.rate,
        }
    row: dict[str, Any] = {
        "device": a.device,
        "dtype": a.dtype,
        "seq": a.seq,
        "context": a.context,
        "ridge_point": a.ridge_point,
        "compute_bound_batch": a.compute_bound_batch,
        "max_batch": a.max_batch,
        "max_batch_note": a.max_batch_note,
        "best": best,
    }
    if a.training:
        row["training"] = [_training(t, run) for t in a.training]
    return row


def training_dict(t: TrainingEstimate) -> dict[str, Any]:
    """Time, cost, device-hours, and the energy and CO2 to train (at the expected step
    time on all the run's devices; null with the reason where there is none)."""
    row = {k: v for k, v in plain(t).items() if k != "energy"}
    row["device_hours"] = t.device_hours
    if t.energy is None:
        row["energy"] = None
        row["energy_reason"] = "no expected step time (the largest batch on these replicas)"
    else:
        e = t.energy.as_dict()
        e["energy_mwh"] = None if t.energy.energy_j is None else t.energy.energy_j / 3.6e9
        e["co2_t"] = None if t.energy.co2_g is None else t.energy.co2_g / 1e6
        row["energy"] = e
        row["energy_reason"] = t.energy.reason or None
    return row


def training_text(t: TrainingEstimate, interval: Interval | None = None) -> str:
    """One training estimate in a table cell: days and cost at the utilization, then at the
    expected step time (with its interval) and its energy and CO2."""
    text = f"{t.devices} dev: {_duration(t.days)}" + (
        f", {t.cost:,.0f} {t.currency or ''}".rstrip() if t.cost is not None else ""
    )
    if t.expected_days is None:
        return text
    days = t.expected_days
    shown = (
        with_interval(days, interval, unit="days", spec=",.1f")
        if days >= 1
        else with_interval(days, interval, scale=1 / 24, unit="hours", spec=",.2f")
    )
    text += f" (expected {shown}"
    e = t.energy
    if e is not None and e.energy_j is not None and e.co2_g is not None:
        text += f", {_energy(e.energy_j)}, {_tonnes(e.co2_g)} CO2eq"
    return text + ")"


def _energy(joules: float) -> str:
    mwh = joules / 3.6e9
    return f"{mwh:,.1f} MWh" if mwh >= 1 else f"{1e3 * mwh:,.1f} kWh"


def _tonnes(grams: float) -> str:
    return f"{grams / 1e6:,.2f} t" if grams >= 1e5 else f"{grams / 1e3:,.1f} kg"


def site_line(answers: list[Answer]) -> str | None:
    """Where the energy of time to train is counted: the site and the power model."""
    for a in answers:
        for t in a.training:
            if t.energy is not None:
                st = t.energy.site
                return (
                    f"energy to train: the devices' boards at the expected step's activity "
                    f"(bound / expected) + {st.node_power_w:g} W a device for the node, x PUE "
                    f"{st.pue:g}; CO2 at {st.grid_g_per_kwh:g} gCO2eq/kWh ({st.grid}, "
                    "location-based, operational only)"
                )
    return None


def whatif_dict(
    answers: list[Answer],
    rows: list[dict[str, Any]],
    pairs: int,
    best: dict[str, dict[str, Any] | None] | None = None,
    notes: Sequence[str] = (),
    run: RunConfig | None = None,
) -> dict[str, Any]:
    """The answers, the scenario rows, and `best`: per question (fastest, cheapest, lowest
    latency) the row that answers it among those that fit, null where none does; `run`:
    the swept run's settings (whether the expected time to train has an interval)."""
    return {
        "answers": [answer_dict(a, run) for a in answers],
        "best": best if best is not None else best_rows(rows),
        "scenarios": rows,
        "scenario_device_pairs": pairs,
        "notes": list(notes),
    }


def _where(r: dict[str, Any]) -> str:
    parts = [f"{r['device']} {r['dtype']}", f"batch {r['batch']}"]
    if r.get("seq") is not None:
        parts.append(f"seq {r['seq']}")
    if r.get("context") is not None:
        parts.append(f"context {r['context']}")
    if r["devices"] != 1:
        parts.append(f"{r['devices']} devices")
    return ", ".join(parts)


def best_line(best: dict[str, dict[str, Any] | None], unit: str) -> str:
    """One line: the best that fits per question, or why there is none."""
    fast, cheap, quick = best["fastest"], best["cheapest"], best["lowest_latency"]
    if fast is None:
        return "Best that fits: nothing fits"
    parts = [f"fastest {_where(fast)} ({rate_of(fast):,.1f} {unit}/s)"]
    if cheap is None:
        parts.append("cheapest: - (no fitting device has a price; give --price)")
    else:
        parts.append(
            f"cheapest {_where(cheap)} ({_money(cost_of(cheap), cheap['currency'])} a million "
            f"{unit})"
        )
    if quick is not None:
        parts.append(f"lowest latency {_where(quick)} ({seconds(quick['expected_time_s'])} a step)")
    return "Best that fits: " + "; ".join(parts)


def _money(cost: float | None, currency: str | None) -> str:
    if cost is None:
        return "-"
    return f"{cost:,.2f} {currency}" if cost >= 0.01 else f"{cost:.2g} {currency}"


def _fmt(value: Any, fmt: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and not np.isfinite(value))
        else fmt.format(value)
    )


def whatif_tables(
    name: str,
    sweeps: Sweep | Sequence[Sweep],
    answers: list[Answer],
    rows: list[dict[str, Any]],
    top: bool = False,
    best: dict[str, dict[str, Any] | None] | None = None,
    sort: str | None = None,
    notes: Sequence[str] = (),
    training_note: str | None = None,
) -> list[RenderableType]:
    """The scenario rows (all of them, or with `top` the best of a larger sweep; ranked by
    --sort where given), the best that fits per question, notes, and the answers."""
    every = [sweeps] if not isinstance(sweeps, Sequence) else list(sweeps)
    sweep = every[0]
    items: list[RenderableType] = []
    n = sum(x.grid.scenarios * len(x.devices) for x in every)
    unit = "tokens" if sweep.model.takes_seq else "samples"
    if rows:
        order = "" if sort is None else f", by {SORTS[sort]}"
        title = f"{name}: {sweep.phase}{order} (time per step; memory per device, GB = 1e9 B)"
        if top:
            title = (
                f"{name}: {sweep.phase}, the best {len(rows)} of {n:,} pairs, fitting first, "
                f"by {SORTS[sort or 'throughput']} (time per step; memory per device, "
                "GB = 1e9 B)"
            )
        scenarios = new_table(
            title,
            (
                "device",
                "dtype",
                "batch",
                "seq",
                "context",
                "devices",
                "bound",
                "expected",
                "tokens/s" if sweep.model.takes_seq else "samples/s",
                "memory GB",
                "fits",
                "memory-bound",
                "cost / M tokens" if sweep.model.takes_seq else "cost / M samples",
            ),
            left=("device", "dtype", "fits"),
        )
        for r in rows:
            t = r["time_s"]
            cost = r["cost_per_million_tokens"] or r["cost_per_million_samples"]
            scenarios.add_row(
                r["device"],
                r["dtype"],
                str(r["batch"]),
                str(r["seq"] or "-"),
                str(r["context"] or "-"),
                str(r["devices"]),
                "-" if t is None else seconds(t),
                "-" if r["expected_time_s"] is None else seconds(r["expected_time_s"]),
                _fmt(r["tokens_per_s"] or r["samples_per_s"], "{:,.1f}"),
                f"{r['memory_bytes_per_device'] / 1e9:,.2f}",
                "yes" if r["fits"] else "no",
                f"{100 * r['memory_bound_time_share']:.0f}%",
                _money(cost, r["currency"]),
            )
        items.append(scenarios)
        items.append(best_line(best if best is not None else best_rows(rows), unit))
        if any(cost_of(r) is None for r in rows):
            items.append("cost '-': the device file has no price; give --price")
    items.extend(notes)
    if top or not rows:
        items.append(
            f"{n:,} (scenario, device) pairs evaluated; "
            "--format csv (or --output NAME.parquet) writes all of them"
        )
    training = sweep.phase == "training"  # time to train: a column of training only
    ans = new_table(
        "Answers (at the longest swept sequence/context)",
        (
            "device",
            "dtype",
            "ridge FLOP/B",
            "compute-bound from batch",
            "largest batch that fits",
            "fastest fitting scenario",
            *(("time to train",) if training else ()),
        ),
        left=("device", "dtype", "fastest fitting scenario", "time to train"),
    )
    for a in answers:
        fit = a.best
        if fit is None:
            best_text = "nothing fits"
        else:
            rate = (
                f"{fit.rate:,.0f} tokens/s"
                if fit.unit == "tokens_per_s"
                else f"{fit.rate:,.1f} samples/s"
            )
            where = ""
            if sweep.phase == "decode":
                where = f", context {fit.context}"
            elif sweep.model.takes_seq:
                where = f", seq {fit.seq}"
            best_text = f"batch {fit.batch}{where}, {fit.devices} dev: {rate}"
        train = (
            "; ".join(training_text(t, days_interval(t.expected_days, sweep.run)[0])
                      for t in a.training)
            or f"- ({training_note})"
        )  # fmt: skip
        ans.add_row(
            a.device,
            a.dtype,
            f"{a.ridge_point:,.1f}",
            str(a.compute_bound_batch) if a.compute_bound_batch is not None else "never",
            f"{a.max_batch:,}" if a.max_batch is not None else "any (fixed micro-batch)",
            best_text,
            *((train,) if training else ()),
        )
    items.append(ans)
    if training and (line := site_line(answers)) is not None:
        items.append(line)
    return items


def context_rows(found: list[LongestContext], model: str) -> list[dict[str, Any]]:
    """whatif --max-context: one row per device, datatype and batch."""
    return [
        {
            "model": model,
            "device": c.device.key,
            "dtype": c.dtype,
            "batch": c.batch,
            "max_context": c.context,
            "memory_bytes_per_device": c.memory_bytes,
            "capacity_bytes": c.capacity_bytes,
            "limited_by": c.limit,
        }
        for c in found
    ]


def context_table(
    name: str, found: list[LongestContext], notes: Sequence[str] = ()
) -> list[RenderableType]:
    table = new_table(
        f"{name}: the longest decode context that fits (tokens in the KV cache; memory per "
        "device, GB = 1e9 B)",
        ("device", "dtype", "batch", "longest context", "memory GB", "capacity GB", "limit"),
        left=("device", "dtype", "limit"),
    )
    for c in found:
        limit = {
            "model": "the model's positions",
            "memory": "memory" if c.context else "memory: nothing fits",
        }[c.limit]
        table.add_row(
            c.device.key,
            c.dtype,
            str(c.batch),
            f"{c.context:,}",
            f"{c.memory_bytes / 1e9:,.2f}",
            f"{c.capacity_bytes / 1e9:,.2f}",
            limit,
        )
    why = (
        "Found by bisection on the memory model (weights, KV cache at context + 1 tokens, "
        "activations) against the device's whole memory; the model's limit is its positions "
        "less the new token."
    )
    return [table, *notes, why]


def _duration(days: float) -> str:
    """A training time in days, or in hours under a day (a fine-tune's epoch)."""
    return f"{days:,.1f} days" if days >= 1 else f"{days * 24:,.2f} hours"
