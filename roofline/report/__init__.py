"""Edges: turn results into rows, strict JSON, CSV, rich tables and DataFrames, by topic
(run, catalog, validation, memory, whatif, memwall). This module holds what they share.

Machine formats (JSON, CSV) are in SI units; tables show scaled units, named in headers
(GB = 1e9 bytes). JSON is strict: a value that does not exist is null (with a reason field
beside it where the reader needs one), never NaN or Infinity.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

    from ..efficiency import Ceilings
    from ..intervals import Interval


def plain(obj: Any) -> Any:
    """JSON-ready data: dataclasses and numpy values as plain Python, non-finite floats as
    None (a figure that does not exist)."""
    import numpy as np  # here, not at the top: the command line's frame imports report.output

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [plain(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


def ceiling_dict(c: Ceilings) -> dict[str, Any]:
    """What a device reaches (hardware.ceilings), SI units, with where it comes from."""
    return {
        "gemm_flops_per_s": c.flops_per_s,
        "attention_flops_per_s": c.attention_flops_per_s,
        "attention_dtype": c.attention_dtype or None,  # None: the GEMMs' datatype
        "memory_bandwidth_bytes_per_s": c.bandwidth_bytes_per_s,
        "compute_units": c.compute_units,
        "gemm_tile": [c.tile_m, c.tile_n],
        "kernel_overhead_s": c.kernel_overhead_s,
        "transcendentals_per_s": c.transcendentals_per_s,
        "cache_bytes": c.cache_bytes,
        "cache_bandwidth_bytes_per_s": c.cache_bandwidth_bytes_per_s,
        "default": c.default,
        "gemm_measured": c.gemm_measured,
        "bandwidth_measured": c.bandwidth_measured,
        "source": c.source,
    }


def to_json(obj: Any) -> str:
    return json.dumps(plain(obj), indent=2, allow_nan=False) + "\n"


# A spreadsheet evaluates a cell that starts with one of these as a formula, quoted or not
# (OWASP, "CSV Injection"): `=1+1`, `+cmd|' /C calc'!A0`, `-2+3`, `@SUM(1+1)`, and a tab or
# carriage return before any of them; a line feed too, to be safe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(text: str) -> str:
    """A text cell as it is safe in a spreadsheet: one that a spreadsheet would read as a
    formula gets a leading apostrophe (OWASP's rule), which spreadsheets show as text and
    do not display. A carriage return becomes a line feed (which the CSV writers quote; a
    bare one would end the row for some readers). Numbers are not text cells; JSON and
    Parquet keep the value exact."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Rows of scalars as CSV (a nested value is a bug of the caller: refused); every text
    cell, the header's too, through csv_cell, so no name from a file or a graph becomes a
    formula."""
    buffer = io.StringIO()
    if rows:
        keys = list(dict.fromkeys(k for row in rows for k in row))
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([csv_cell(str(k)) for k in keys])
        for row in rows:
            clean = plain(row)
            cells = []
            for key in keys:
                value = clean.get(key)
                if isinstance(value, (dict, list)):
                    raise TypeError(f"CSV cell {key!r} holds a nested value")
                cells.append(csv_cell(value) if isinstance(value, str) else value)
            writer.writerow(cells)
    return buffer.getvalue()


# ---------------------------------------------------------------- human-readable formatting

_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(value: float, unit: str, digits: int = 3) -> str:
    """3 significant digits with an SI prefix: si(3.364e11, 'FLOP') -> '336 GFLOP'."""
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def count(value: float) -> str:
    """Parameter counts the way ML papers write them: 335M, 6.74B, 2T."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.0f}"


def _time_unit(value: float) -> tuple[float, str]:
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if value >= scale:
            return scale, unit
    return 1e-9, "ns"


def seconds(value: float) -> str:
    scale, unit = _time_unit(value)
    return f"{value / scale:.3g} {unit}"


def with_interval(
    value: float, iv: Interval | None, scale: float = 1.0, unit: str = "", spec: str = ".3g"
) -> str:
    """An expected time and its interval, both ends in the time's unit: "25.6 s (80 %:
    22.5-33.1 s)" (`unit` given: the value / `scale` in that unit, written with `spec`:
    "12.3 days (80 %: 10.8-15.9 days)"); the time alone where there is no interval."""
    if not unit:
        scale, unit = _time_unit(value)
    text = f"{value / scale:{spec}} {unit}"
    if iv is None:
        return text
    low, high = f"{iv.low / scale:{spec}}", f"{iv.high / scale:{spec}}"
    return f"{text} ({100 * iv.coverage:.0f} %: {low}-{high} {unit})"


def interval_fields(
    prefix: str, iv: Interval | None, reason: str, unit: str = "_s"
) -> dict[str, Any]:
    """`<prefix><unit>`: the interval as {coverage, low, high, kind}, or null and
    `<prefix>_reason` beside it saying why (strict JSON: a figure that does not exist is
    null, with why; the reason is null where the interval is given)."""
    return {
        f"{prefix}{unit}": None if iv is None else iv.as_dict(),
        f"{prefix}_reason": reason or None,
    }


def flat_interval(prefix: str, value: Any, unit: str = "_s") -> dict[str, Any]:
    """An interval field of a JSON row as flat CSV columns: `<prefix>_coverage`,
    `<prefix>_low<unit>`, `<prefix>_high<unit>` (empty where the interval is null)."""
    iv = value if isinstance(value, dict) else {}
    return {
        f"{prefix}_coverage": iv.get("coverage"),
        f"{prefix}_low{unit}": iv.get("low"),
        f"{prefix}_high{unit}": iv.get("high"),
    }


def new_table(title: str, headers: tuple[str, ...], left: tuple[str, ...]) -> Table:
    """A rich Table with a left-justified title; `left` columns left-aligned, others right."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, justify="left" if header in left else "right")
    return table


def natural_width(console: Console, item: Any) -> int:
    """The width a renderable takes when nothing squeezes it (a table: every cell whole)."""
    from rich.measure import Measurement

    options = console.options.update(width=100_000, max_width=100_000)
    return Measurement.get(console, options, item).maximum


def records(table: Table, width: int) -> RenderableType:
    """A table too wide for `width` as records: the title, then each row's first cell on a
    line and its other cells as `header value` pairs, packed into lines of at most `width`
    characters (a pair longer than that folds), so no figure is cut or dropped."""
    from rich.console import Group
    from rich.text import Text

    def plain_text(cell: Any) -> str:
        return " ".join(str(cell.plain if isinstance(cell, Text) else cell).split())

    columns = table.columns
    heads = [plain_text(c.header) for c in columns]
    cells = [[plain_text(c) for c in col._cells] for col in columns]
    lines: list[Text] = []
    if table.title:
        lines.append(Text(plain_text(table.title), style="bold"))
    for r in range(table.row_count):
        lines.append(Text(f"{heads[0]} {cells[0][r]}", style="bold"))
        line = " "
        for head, col in zip(heads[1:], cells[1:]):
            pair = f"{head} {col[r]}"
            if len(line) > 1 and len(line) + 2 + len(pair) > width:
                lines.append(Text(line, overflow="fold"))
                line = " "
            line += ("  " if len(line) > 1 else " ") + pair
        if len(line) > 1:
            lines.append(Text(line, overflow="fold"))
    return Group(*lines)


def fit(console: Console, item: Any) -> Any:
    """A renderable as it fits `console`'s width: a table wider than that as records (rich
    would otherwise squeeze its columns until cells show '…' or nothing)."""
    from rich.table import Table

    if isinstance(item, Table) and natural_width(console, item) > console.width:
        return records(item, console.width)
    return item


_CONTROL = {c: " " for c in range(32)} | {127: " "}


def plain_cells(item: Any) -> Any:
    """A table's text cells and title without control characters (a name with a tab or a
    newline, from a file or a graph, would break the table's columns); other items as
    they are. The table itself is changed and returned."""
    from rich.table import Table

    if isinstance(item, Table):
        for column in item.columns:
            column._cells = [
                c.translate(_CONTROL) if isinstance(c, str) else c for c in column._cells
            ]
        if isinstance(item.title, str):
            item.title = item.title.translate(_CONTROL)
    return item
