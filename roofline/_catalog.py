"""A catalog of data files (devices, models): look items up by key, alias or file path.

Files are read on first use, not at import, and the whole folder only when a name is not a
file name. Only the loaders know the file layouts; this module knows names and folders.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from ._paths import data_dir
from .errors import FieldError, SpecError, UnknownNameError


class Named(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...
    @property
    def path(self) -> str: ...


T = TypeVar("T", bound=Named)


class Catalog(Generic[T]):
    def __init__(
        self,
        kind: str,
        what: str,
        field: str,
        load: Callable[[Path, str], T],
        suffixes: tuple[str, ...] = (".yaml", ".yml"),
    ) -> None:
        self.kind = kind  # the data folder: "hardware" or "workloads"
        self.what = what  # "device", "model"
        self.field = field  # the name of the field that names one, in error messages
        self.load = load  # (path, shown name) -> item
        self.suffixes = suffixes
        self._files: dict[tuple[str, int, int], T] = {}
        self._by_name: dict[str, T] = {}  # shipped items by the key they were asked for

    def shown(self, path: Path) -> str:
        """A shipped file as `hardware/a100.yaml`; any other file as given."""
        try:
            return str(path.resolve().relative_to(data_dir(self.kind).parent))
        except ValueError:
            return str(path)

    def load_file(self, path: str | os.PathLike[str]) -> T:
        """Read a file once per process: later calls return the same frozen item while the
        file's size and modification time are unchanged."""
        path = Path(path)
        try:
            stat = path.stat()
            stamp: tuple[str, int, int] | None = (
                str(path.resolve()),
                stat.st_mtime_ns,
                stat.st_size,
            )
        except OSError:
            stamp = None  # the loader reports the problem
        if stamp is not None and stamp in self._files:
            return self._files[stamp]
        item = self.load(path, self.shown(path))
        if stamp is not None:
            self._files[stamp] = item
        return item

    @cached_property
    def items(self) -> dict[str, T]:
        """Every shipped item by key (its file name)."""
        loaded = (self.load_file(p) for p in sorted(data_dir(self.kind).glob("*.yaml")))
        return {item.key: item for item in loaded}

    @cached_property
    def aliases(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for item in self.items.values():
            for alias in (item.key, *item.aliases):
                if alias in index and index[alias] != item.key:
                    raise SpecError(
                        item.path, [f"aliases: {alias!r} is already used by {index[alias]}"]
                    )
                index[alias] = item.key
        return index

    def get(self, name: str) -> T:
        """An item by key, alias, or path to a file this catalog can read."""
        if not isinstance(name, str) or not name.strip():
            raise FieldError(self.field, name, f"empty; give a {self.what} name or file")
        if "\0" in name:
            raise FieldError(self.field, name, "a name cannot contain a NUL character")
        if name.lower().endswith(self.suffixes) or os.sep in name:
            path = Path(name)
            if path.is_dir():
                raise FieldError(self.field, name, f"is a folder, not a {self.what} file")
            if not path.is_file():
                raise FieldError(self.field, name, "no such file")
            return self.load_file(name)
        wanted = name.strip().lower()
        if wanted in self._by_name:  # a shipped item asked for again: no file system work
            return self._by_name[wanted]
        direct = data_dir(self.kind) / f"{wanted}.yaml"
        if direct.is_file():  # one file, not the whole folder
            item = self._by_name[wanted] = self.load_file(direct)
            return item
        if wanted in self.aliases:
            return self.items[self.aliases[wanted]]
        hint = f"see `roofline {'hardware' if self.kind == 'hardware' else 'models'} list`"
        raise UnknownNameError(self.what, name, self.aliases, hint)
