"""What-if sweeps: scenario rows (built from columns), answers as JSON and tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from . import new_table, plain, seconds

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..answers import Answer
    from ..sweep import SweepOutput
    from ..whatif import Sweep

# every scenario column a what-if can have, in order; absent ones do not apply to the model
SCENARIO_COLUMNS = (
    "device",
    "dtype",
    "batch",
    "seq",
    "context",
    "devices",
    "time_s",
    "expected_time_s",
    "samples_per_s",
    "tokens_per_s",
    "memory_bytes_per_device",
    "fits",
    "memory_bound_time_share",
    "currency",
    "price_per_device_hour",
    "cost_per_million_tokens",
    "cost_per_million_samples",
)


def scenario_rows(sweep: Sweep, out: SweepOutput) -> list[dict[str, Any]]:
    """Every (scenario, device) pair as a row; every row has every column (null where it
    does not apply), so JSON, CSV and DataFrame agree."""
    from ..whatif import scenario_columns

    cols = scenario_columns(sweep, out)
    n = len(cols["device"])
    lists = {k: plain(cols[k]) if k in cols else [None] * n for k in SCENARIO_COLUMNS}
    return [dict(zip(lists, values)) for values in zip(*lists.values())]


def write_scenarios_csv(
    sweep: Sweep, handle: TextIO, progress: Callable[[int, int], None] | None = None
) -> int:
    """Every (scenario, device) pair of the sweep as CSV into `handle`, chunk by chunk
    (memory does not grow with the grid); the same columns as scenario_rows. Returns the
    number of rows written."""
    import pandas as pd

    from ..sweep import evaluate_grid
    from ..whatif import scenario_columns

    written = 0

    def reduce(start: int, out: SweepOutput) -> None:
        nonlocal written
        cols = scenario_columns(sweep, out, start)
        n = len(cols["device"])
        frame = pd.DataFrame({k: cols.get(k, np.full(n, None)) for k in SCENARIO_COLUMNS})
        frame.to_csv(handle, header=written == 0, index=False, lineterminator="\n")
        written += n

    evaluate_grid(sweep.model, sweep.grid, progress=progress, keep=False, reduce=reduce)
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
    name: str, sweep: Sweep, answers: list[Answer], rows: list[dict[str, Any]]
) -> list[RenderableType]:
    items: list[RenderableType] = []
    if rows:
        scenarios = new_table(
            f"{name}: {sweep.phase} (time per step; memory per device, GB = 1e9 B)",
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
                "-" if cost is None else f"{cost:,.2f} {r['currency']}",
            )
        items.append(scenarios)
    else:
        n = sweep.grid.scenarios * len(sweep.devices)
        items.append(
            f"{n:,} (scenario, device) pairs evaluated; "
            "--format csv --output FILE writes all of them"
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
