"""What-if sweeps: scenario rows (built from columns), answers as JSON and tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from . import csv_cell, new_table, plain, seconds

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from rich.console import RenderableType

    from ..answers import Answer
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


def top_rows(sweep: Sweep, k: int = 20) -> list[dict[str, Any]]:
    """The k best (scenario, device) pairs of a sweep of any size, as scenario_rows rows:
    those that fit first, then the highest tokens/s (samples/s); found chunk by chunk, so
    memory does not grow with the grid."""
    from ..sweep import evaluate_grid
    from ..whatif import SCENARIO_COLUMNS, scenario_columns

    best: list[tuple[tuple[bool, float], dict[str, Any]]] = []

    def reduce(start: int, out: SweepOutput) -> None:
        cols = scenario_columns(sweep, out, start)
        rate = cols["tokens_per_s"] if "tokens_per_s" in cols else cols["samples_per_s"]
        rate = np.where(np.isfinite(rate), rate, -np.inf)
        order = np.lexsort((-rate, ~cols["fits"]))[:k]  # fitting first, then the fastest
        for i in order:
            row = {c: plain(cols[c][i]) if c in cols else None for c in SCENARIO_COLUMNS}
            best.append(((not bool(cols["fits"][i]), -float(rate[i])), row))
        best.sort(key=lambda item: item[0])
        del best[k:]

    evaluate_grid(sweep.model, sweep.grid, keep=False, reduce=reduce)
    return [row for _, row in best]


def write_scenarios(
    sweep: Sweep,
    sink: str | BinaryIO,
    kind: str = "csv",
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Every (scenario, device) pair of the sweep as CSV or Parquet into `sink` (a path or a
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

    def reduce(start: int, out: SweepOutput) -> None:
        nonlocal written
        table = scenario_table(sweep, out, start, csv_cell if kind == "csv" else str)
        if kind == "csv":
            shown = pc.if_else(table["fits"], "True", "False")
            table = table.set_column(fits, "fits", shown)
        writer.write_table(table)
        written += table.num_rows

    try:
        evaluate_grid(sweep.model, sweep.grid, progress=progress, keep=False, reduce=reduce)
    finally:
        writer.close()
    return written


def answer_dict(a: Answer) -> dict[str, Any]:
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
        row["training"] = [plain(t) for t in a.training]
    return row


def whatif_dict(answers: list[Answer], rows: list[dict[str, Any]], pairs: int) -> dict[str, Any]:
    return {
        "answers": [answer_dict(a) for a in answers],
        "scenarios": rows,
        "scenario_device_pairs": pairs,
    }


def _fmt(value: Any, fmt: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and not np.isfinite(value))
        else fmt.format(value)
    )


def whatif_tables(
    name: str,
    sweep: Sweep,
    answers: list[Answer],
    rows: list[dict[str, Any]],
    top: bool = False,
) -> list[RenderableType]:
    """The scenario rows (all of them, or with `top` the best of a larger sweep) and the
    answers."""
    items: list[RenderableType] = []
    n = sweep.grid.scenarios * len(sweep.devices)
    if rows:
        title = f"{name}: {sweep.phase} (time per step; memory per device, GB = 1e9 B)"
        if top:
            title = (
                f"{name}: {sweep.phase}, the {len(rows)} fastest of {n:,} pairs, fitting first "
                "(time per step; memory per device, GB = 1e9 B)"
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
                "-"
                if cost is None
                else f"{cost:,.2f} {r['currency']}"
                if cost >= 0.01
                else f"{cost:.2g} {r['currency']}",
            )
        items.append(scenarios)
    if top or not rows:
        items.append(
            f"{n:,} (scenario, device) pairs evaluated; "
            "--format csv (or --output NAME.parquet) writes all of them"
        )
    ans = new_table(
        "Answers (at the longest swept sequence/context)",
        (
            "device",
            "dtype",
            "ridge FLOP/B",
            "compute-bound from batch",
            "largest batch that fits",
            "fastest fitting scenario",
            "time to train",
        ),
        left=("device", "dtype", "fastest fitting scenario", "time to train"),
    )
    for a in answers:
        best = a.best
        if best is None:
            best_text = "nothing fits"
        else:
            rate = (
                f"{best.rate:,.0f} tokens/s"
                if best.unit == "tokens_per_s"
                else f"{best.rate:,.1f} samples/s"
            )
            where = ""
            if sweep.phase == "decode":
                where = f", context {best.context}"
            elif sweep.model.takes_seq:
                where = f", seq {best.seq}"
            best_text = f"batch {best.batch}{where}, {best.devices} dev: {rate}"
        train = (
            "; ".join(
                f"{t.devices} dev: {t.days:,.1f} days"
                + (f", {t.cost:,.0f} {t.currency or ''}".rstrip() if t.cost is not None else "")
                + (
                    f" (expected {t.expected_days:,.1f} days)"
                    if t.expected_days is not None
                    else ""
                )
                for t in a.training
            )
            or "-"
        )
        ans.add_row(
            a.device,
            a.dtype,
            f"{a.ridge_point:,.1f}",
            str(a.compute_bound_batch) if a.compute_bound_batch is not None else "never",
            f"{a.max_batch:,}" if a.max_batch is not None else "any (fixed micro-batch)",
            best_text,
            train,
        )
    items.append(ans)
    return items
