"""A small strict reader for the mappings in data files.

It walks one mapping, converts each field once (quantities to SI, dates, enumerations),
collects every problem with the dotted path of its field, and reports unknown keys, so that a
loader can raise one SpecError listing everything wrong with a file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import difflib
import re
from collections.abc import Collection
from typing import Any

from .errors import shown
from .units import parse_quantity

_MISSING = object()
# Whole numbers in a data file (layers, widths, heads, vocabularies, batch sizes) are at most
# MAX_INTEGER; other numbers (parameter counts, published FLOPs, fractions) lie within
# NUMBER_RANGE. Both far beyond any real model, and both keep every cost a finite float.
MAX_INTEGER = 2**40
NUMBER_RANGE = (1e-9, 1e30)
_MONTH = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


class Problems(list[str]):
    """The problems found in one file, in order."""


class Fields:
    """Reads the keys of one mapping; call `done()` after the last read to flag unknown keys."""

    def __init__(self, data: Any, problems: Problems, path: str = "") -> None:
        self.problems = problems
        self.path = path
        self.ok = isinstance(data, dict)
        if not self.ok:
            problems.append(f"{path or 'top level'}: expected a mapping, got {shown(data)}")
        self.data: dict[str, Any] = data if self.ok else {}
        self.read: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

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
        value = self._get(key, required, nullable)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected non-empty text, got {shown(value)}")
            return None
        return value.strip()

    def texts(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        """A list of non-empty strings."""
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
        value = self._get(key, required, nullable=False)
        if value is _MISSING:
            return default
        if not isinstance(value, str) or value not in allowed:
            self.fail(key, f"must be one of {', '.join(sorted(allowed))}, got {shown(value)}")
            return default
        return value

    def flag(self, key: str, *, default: bool) -> bool:
        value = self._get(key, required=False, nullable=False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {shown(value)}")
            return default
        return value

    def month(self, key: str, *, required: bool = True) -> str | None:
        """A date written YYYY-MM or YYYY-MM-DD; returned as that text."""
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
        value = self._get(key, required, nullable)
        if value is _MISSING or value is None:
            return None
        return Fields(value, self.problems, self._name(key))

    def raw(self, key: str) -> Any:
        value = self._get(key, required=False, nullable=True)
        return None if value is _MISSING else value

    def done(self) -> None:
        known = sorted(self.read)
        for key in self.data:
            if key not in self.read:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = (
                    f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(known)}"
                )
                self.problems.append(f"{self._name(str(key))}: unknown field{hint}")
