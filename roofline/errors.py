"""One exception family for everything a user can get wrong.

Library code raises these; only the CLI turns them into a one-line message and exit code 2.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable, Sequence


class RooflineError(Exception):
    """Bad input: an unknown name, a malformed file, an impossible scenario."""


class SpecError(RooflineError):
    """A data file (device or workload) failed validation; carries every problem found."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = [" ".join(str(p).split()) for p in problems]  # one line each
        if len(self.problems) == 1:
            text = f"{source}: {self.problems[0]}"
        else:
            text = f"{source}: {len(self.problems)} problems: " + "; ".join(self.problems)
        super().__init__(text)


class UnknownNameError(RooflineError):
    """A device or model name that is not in the catalog; suggests close matches."""

    def __init__(self, what: str, name: str, known: Iterable[str], hint: str = "") -> None:
        self.what = what
        self.name = name
        known = sorted(set(known))
        self.suggestions = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.5)
        text = f"unknown {what} {name!r}"
        if self.suggestions:
            text += "; did you mean " + ", ".join(self.suggestions) + "?"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 6, 50, 50


def shown(value: object, limit: int = 60) -> str:
    """A value as a message shows it: a bounded repr (never walks a huge or deeply nested
    value: a YAML alias bomb expands to billions of elements), cut to `limit` characters."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FieldError(RooflineError):
    """A bad value of one named field of a run (batch, seq, layout.tensor, ...).

    The library names its own fields; the CLI shows its flag for the field instead
    (`batch` -> `--batch`), so library messages never mention command-line spellings."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(self.render(field))

    def render(self, name: str) -> str:
        if self.value is None:
            return f"{name}: {self.problem}"
        plain_text = isinstance(self.value, str) and self.value.strip() and len(self.value) <= 60
        value = self.value if plain_text else shown(self.value)
        return f"{name} {value}: {self.problem}"
