"""A request trace for the serving simulation: a CSV (with a header) or JSONL file, one
request a row: `arrival_s` (seconds from the start), `prompt_tokens`, `output_tokens`.
Rows are sorted by arrival; every problem is named with its line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .errors import SpecError
from .traffic import Requests

COLUMNS = ("arrival_s", "prompt_tokens", "output_tokens")
MAX_ROWS = 10_000_000


def read_trace(path: Path) -> Requests:
    shown = str(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            if path.suffix.lower() in (".jsonl", ".ndjson"):
                rows = [json.loads(line) for line in handle if line.strip()]
            else:
                rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise SpecError(shown, [f"cannot read file: {exc.strerror or exc}"]) from None
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise SpecError(shown, [f"not a CSV or JSONL trace: {exc}"]) from None
    if not rows:
        raise SpecError(shown, ["no requests"])
    if len(rows) > MAX_ROWS:
        raise SpecError(shown, [f"more than {MAX_ROWS:,} requests"])
    values: dict[str, list[float]] = {c: [] for c in COLUMNS}
    for line, row in enumerate(rows, start=2):
        if not isinstance(row, dict):
            raise SpecError(shown, [f"line {line}: expected an object with {', '.join(COLUMNS)}"])
        for c in COLUMNS:
            try:
                x = float(row[c])
            except (KeyError, TypeError, ValueError):
                raise SpecError(shown, [f"line {line}: {c}: missing or not a number"]) from None
            if not np.isfinite(x) or x < 0 or (c != "arrival_s" and (x < 1 or x != int(x))):
                raise SpecError(shown, [f"line {line}: {c}: {row[c]!r} is out of range"])
            values[c].append(x)
    order = np.argsort(values["arrival_s"], kind="stable")
    arrival = np.asarray(values["arrival_s"])[order]
    prompt = np.asarray(values["prompt_tokens"], dtype=np.int64)[order]
    output = np.asarray(values["output_tokens"], dtype=np.int64)[order]
    return Requests(arrival - arrival[0], prompt, output)


def read_lengths(path: Path, name: str) -> np.ndarray:
    """An empirical distribution of lengths: a text or CSV file of whole numbers >= 1, one a
    line (a first line that is not a number is a header; blank lines are skipped)."""
    shown = str(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SpecError(shown, [f"cannot read file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError(shown, [f"not a text file of {name}: {exc}"]) from None
    values = []
    for number, text in enumerate(lines, start=1):
        cell = text.strip().split(",")[0].strip()
        if not cell:
            continue
        try:
            x = float(cell)
        except ValueError:
            if number == 1:
                continue  # a header
            raise SpecError(shown, [f"line {number}: {cell!r} is not a number of {name}"]) from None
        if not np.isfinite(x) or x < 1 or x != int(x) or x > 10**7:
            raise SpecError(shown, [f"line {number}: {cell!r}: {name} must be whole, 1 to 1e7"])
        values.append(int(x))
    if not values:
        raise SpecError(shown, [f"no {name} in the file"])
    if len(values) > MAX_ROWS:
        raise SpecError(shown, [f"more than {MAX_ROWS:,} lengths"])
    return np.asarray(values, dtype=np.int64)
