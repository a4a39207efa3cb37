"""Where the shipped data files are: inside the wheel, or at the root of a source checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def data_dir(kind: str) -> Path:
    """The folder of shipped `hardware` or `workloads` files."""
    installed = Path(__file__).with_name("_data") / kind
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / kind
