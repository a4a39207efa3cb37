"""Output paths as typed (a module of its own: io.py and options.py both use it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def output_path(text: str) -> Path:
    """An output file's path as typed: a name that ends in '/' names a folder (Path would
    drop the slash and write a file of that name), and an empty one names nothing."""
    if not text:
        raise typer.BadParameter("empty; give a file name")
    if text.endswith("/") and text != "/dev/stdout/":
        raise typer.BadParameter(f"{text}: names a folder (it ends in /); give a file name")
    return Path(text)


def output_option(help: str, *flags: str) -> Any:
    """The -o/--output option (or another file option) read by output_path."""
    return typer.Option(*(flags or ("--output", "-o")), help=help, parser=output_path)
