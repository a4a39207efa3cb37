"""A small strict reader for the mappings in data files.

It walks one mapping, converts each field once (quantities to SI, dates, enumerations),
collects every problem with the dotted path of its field, and reports unknown keys, so that a
loader can raise one SpecError listing everything wrong with a file.

The same reads describe the file: `record(parse)` runs a loader on `RECORD` instead of data, and
every accessor, instead of reading, writes its field's JSON Schema (type, range, unit pattern,
enumeration, required or not) into the mapping's schema. `roofline schema device|workload|run`
prints what the loaders read, so the schema cannot drift from them. In recording mode every
accessor returns None (or its default), problems are dropped, and a field read only after a
branch on another field's value is recorded only on that branch: `record(..., choose=...)`
picks the value a `choice` returns, so a family's architecture can be recorded family by family.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import difflib
import re
from collections.abc import Callable, Collection
from typing import Any

from .errors import shown
from .units import UNITS, parse_quantity

_MISSING = object()
# Whole numbers in a data file (layers, widths, heads, vocabularies, batch sizes) are at most
# MAX_INTEGER; other numbers (parameter counts, published FLOPs, fractions) lie within
# NUMBER_RANGE. Both far beyond any real model, and both keep every cost a finite float.
MAX_INTEGER = 2**40
NUMBER_RANGE = (1e-9, 1e30)
_MONTH = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


class Problems(list[str]):
    """The problems found in one file, in order (none are kept while recording a schema)."""

    recording = False

    def append(self, item: str) -> None:
        if not self.recording:
            super().append(item)


RECORD = object()  # passed to a loader in place of its data: record the schema, read nothing
# while recording: the schemas of the top-level mappings made, and the forced choice values
_ROOTS: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "roots", default=None
)
_CHOOSE: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "choose", default=None
)
_NUMBER = r"^\s*[0-9][0-9_,]*\.?[0-9]*(?:[eE][+-]?[0-9]+)?\s*$"
_DATE = r"^\d{4}-(0[1-9]|1[0-2])(-\d{2})?$"


def quantity_schema(kind: str) -> dict[str, Any]:
    """A quantity as data files write it: a positive number and one of the kind's units."""
    units = sorted(UNITS[kind], key=lambda u: (len(u), u))
    spelled = "|".join(re.escape(u) for u in units)
    return {
        "type": "string",
        "pattern": rf"^\s*[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?\s*({spelled})\s*$",
        "description": f"a number and a unit ({', '.join(units[:6])}, ...)",
    }


def record(
    parse: Callable[[Any], object], *, choose: dict[str, str] | None = None
) -> dict[str, Any]:
    """The JSON Schema of the mapping `parse` reads: `parse(RECORD)` run in recording mode.

    `choose` maps a field's dotted path to the value its `choice` returns. What `parse` does
    after its reads (building objects from the None it was given) may fail; that is expected
    and ignored: the schema is complete once the reads are done.
    """
    roots: list[dict[str, Any]] = []
    token = _ROOTS.set(roots)
    chosen = _CHOOSE.set(dict(choose or {}))
    try:
        with contextlib.suppress(Exception):
            parse(RECORD)
    finally:
        _ROOTS.reset(token)
        _CHOOSE.reset(chosen)
    if not roots:
        raise RuntimeError("the loader read no mapping")
    return roots[0]


class Fields:
    """Reads the keys of one mapping; call `done()` after the last read to flag unknown keys."""

    def __init__(self, data: Any, problems: Problems, path: str = "") -> None:
        self.problems = problems
        self.path = path
        # recording mode (see the module docstring): this mapping's JSON Schema
        self.schema: dict[str, Any] | None = None
        if data is RECORD:
            problems.recording = True
            self.schema = {"type": "object", "properties": {}, "additionalProperties": False}
            roots = _ROOTS.get()
            if roots is not None and not path:
                roots.append(self.schema)
            data = {}
        self.ok = isinstance(data, dict)
        if not self.ok:
            problems.append(f"{path or 'top level'}: expected a mapping, got {shown(data)}")
        self.data: dict[str, Any] = data if self.ok else {}
        self.read: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _record(
        self, key: str, schema: dict[str, Any], required: bool, nullable: bool = False
    ) -> None:
        assert self.schema is not None
        self.read.add(key)
        self.schema["properties"][key] = (
            {"anyOf": [schema, {"type": "null"}]} if nullable else schema
        )
        if required:
            self.schema.setdefault("required", []).append(key)

    def _get(self, key: str, required: bool, nullable: bool) -> Any:
        self.read.add(key)
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if required and self.ok:
                hint = " (write null if unknown)" if nullable else ""
                self.problems.append(f"{self._name(key)}: missing{hint}")
            return _MISSING
        if value is None and not nullable:
            self.problems.append(f"{self._name(key)}: must not be empty")
            return _MISSING
        return value

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{self._name(key)}: {message}")

    def text(self, key: str, *, required: bool = True, nullable: bool = False) -> str | None:
        if self.schema is not None:
            self._record(key, {"type": "string", "minLength": 1}, required, nullable)
            return None
        value = self._get(key, required, nullable)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected non-empty text, got {shown(value)}")
            return None
        return value.strip()

    def texts(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        """A list of non-empty strings."""
        if self.schema is not None:
            items = {"type": "string", "minLength": 1}
            listed = {"type": "array", "items": items, "minItems": 1 if required else 0}
            self._record(key, listed, required)
            return ()
        value = self._get(key, required, nullable=False)
        if value is _MISSING:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(key, f"expected a list of non-empty strings, got {shown(value)}")
            return ()
        if required and not value:
            self.fail(key, "must list at least one entry")
        return tuple(v.strip() for v in value)

    def names(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        """A list of lookup names (aliases), lower-cased."""
        return tuple(v.lower() for v in self.texts(key, required=required))

    def quantity(
        self, key: str, kind: str, *, required: bool = True, nullable: bool = False
    ) -> float | None:
        if self.schema is not None:
            self._record(key, quantity_schema(kind), required, nullable)
            return None
        value = self._get(key, required, nullable)
        if value is _MISSING or value is None:
            return None
        try:
            return parse_quantity(value, kind)
        except ValueError as exc:
            self.fail(key, str(exc))
            return None

    def integer(
        self,
        key: str,
        *,
        required: bool = True,
        minimum: int = 1,
        default: int | None = None,
        maximum: int = MAX_INTEGER,
    ) -> int | None:
        if self.schema is not None:
            schema: dict[str, Any] = {"type": "integer", "minimum": minimum, "maximum": maximum}
            if default is not None and not required:
                schema["default"] = default
            self._record(key, schema, required)
            return default
        value = self._get(key, required, nullable=False)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected a whole number >= {minimum}, got {shown(value)}")
            return default
        if not minimum <= value <= maximum:
            self.fail(key, f"must be from {minimum} to {maximum:,}, got {shown(value)}")
            return default
        return value

    def number(self, key: str, *, required: bool = True, nullable: bool = False) -> float | None:
        if self.schema is not None:
            low, high = NUMBER_RANGE
            number = {"type": "number", "minimum": low, "maximum": high}
            written = {"type": "string", "pattern": _NUMBER}  # 330e6: YAML reads it as text
            self._record(key, {"anyOf": [number, written]}, required, nullable)
            return None
        value = self._get(key, required, nullable)
        if value is _MISSING or value is None:
            return None
        if isinstance(value, str):  # PyYAML reads 330e6 (no dot) as text
            with contextlib.suppress(ValueError):
                value = float(value.replace(",", "").replace("_", ""))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"expected a number, got {shown(value)}")
            return None
        low, high = NUMBER_RANGE
        if not value > 0:
            self.fail(key, f"must be > 0, got {shown(value)}")
            return None
        if not low <= value <= high:  # also inf and nan
            self.fail(key, f"must be from {low:g} to {high:g}, got {shown(value)}")
            return None
        return float(value)

    def choice(
        self, key: str, allowed: Collection[str], *, required: bool = True, default: str = ""
    ) -> str:
        if self.schema is not None:
            schema: dict[str, Any] = {"enum": sorted(allowed)}
            if default and not required:
                schema["default"] = default
            self._record(key, schema, required)
            return (_CHOOSE.get() or {}).get(self._name(key), default)
        value = self._get(key, required, nullable=False)
        if value is _MISSING:
            return default
        if not isinstance(value, str) or value not in allowed:
            self.fail(key, f"must be one of {', '.join(sorted(allowed))}, got {shown(value)}")
            return default
        return value

    def flag(self, key: str, *, default: bool) -> bool:
        if self.schema is not None:
            self._record(key, {"type": "boolean", "default": default}, required=False)
            return default
        value = self._get(key, required=False, nullable=False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {shown(value)}")
            return default
        return value

    def month(self, key: str, *, required: bool = True) -> str | None:
        """A date written YYYY-MM or YYYY-MM-DD; returned as that text."""
        if self.schema is not None:
            self._record(key, {"type": "string", "pattern": _DATE}, required)
            return None
        value = self._get(key, required, nullable=False)
        if value is _MISSING:
            return None
        if isinstance(value, _dt.date):
            return value.isoformat()
        match = _MONTH.match(str(value)) if isinstance(value, str) else None
        if not match or not 1 <= int(match.group(2)) <= 12:
            self.fail(key, f"expected a date YYYY-MM or YYYY-MM-DD, got {shown(value)}")
            return None
        return str(value)

    def mapping(self, key: str, *, required: bool = True, nullable: bool = False) -> Fields | None:
        if self.schema is not None:
            child = Fields(RECORD, self.problems, self._name(key))
            assert child.schema is not None
            self._record(key, child.schema, required, nullable)
            return child
        value = self._get(key, required, nullable)
        if value is _MISSING or value is None:
            return None
        return Fields(value, self.problems, self._name(key))

    def items(self, key: str, *, required: bool = False) -> list[Fields]:
        """A list of mappings, each read with its own Fields (path `key[i]`)."""
        if self.schema is not None:
            child = Fields(RECORD, self.problems, f"{self._name(key)}[]")
            assert child.schema is not None
            self._record(key, {"type": "array", "items": child.schema}, required)
            return [child]
        value = self._get(key, required, nullable=False)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            self.fail(key, f"expected a list of mappings, got {shown(value)}")
            return []
        return [
            Fields(item, self.problems, f"{self._name(key)}[{i}]") for i, item in enumerate(value)
        ]

    def raw(self, key: str, schema: dict[str, Any] | None = None, *, required: bool = False) -> Any:
        """The value as written, checked by the caller; `schema` describes it for `record`
        (`required`: the caller refuses a missing value; only the schema reads it)."""
        if self.schema is not None:
            self._record(key, schema or {}, required)
            return None
        value = self._get(key, required=False, nullable=True)
        return None if value is _MISSING else value

    def done(self) -> None:
        if self.schema is not None:
            return
        known = sorted(self.read)
        for key in self.data:
            if key not in self.read:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = (
                    f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(known)}"
                )
                self.problems.append(f"{self._name(str(key))}: unknown field{hint}")
