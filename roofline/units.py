"""Parse the quantities written in data files ("2039 GB/s", "312 TFLOP/s", "32 GiB").

Conversion to SI happens here, once; everything past the loaders is FLOP, byte, second,
FLOP/s, byte/s, watt. GB = 1e9 bytes, GiB = 2**30 bytes.
"""

from __future__ import annotations

import re

_PREFIX = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}

# quantity kind -> {unit spelling -> factor to SI}
UNITS: dict[str, dict[str, float]] = {
    "rate": {f"{p}FLOP/s": f for p, f in _PREFIX.items()}
    | {f"{p}OP/s": f for p, f in _PREFIX.items()},
    "bandwidth": {f"{p}B/s": f for p, f in _PREFIX.items()}
    | {f"{p}B/s": f for p, f in _BINARY.items()},
    "size": {f"{p}B": f for p, f in _PREFIX.items()} | {f"{p}B": f for p, f in _BINARY.items()},
    "power": {"W": 1.0, "kW": 1e3},
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9},
}

# The sane range of each kind, in SI: far beyond any real device in both directions, and
# every value a normal, finite float (1e400 TFLOP/s, 1e-320 GB/s are refused).
RANGE: dict[str, tuple[float, float, str]] = {
    "rate": (1.0, 1e21, "FLOP/s"),
    "bandwidth": (1.0, 1e16, "B/s"),
    "size": (1.0, 1e16, "B"),
    "power": (1e-3, 1e7, "W"),
    "time": (1e-12, 1e4, "s"),
}

_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-zµ/]+)\s*$")


def parse_quantity(value: object, kind: str) -> float:
    """Return `value` (a string like "2039 GB/s") in SI units; raise ValueError with the fix."""
    units = UNITS[kind]
    allowed = ", ".join(_examples(kind))
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"expected a number with a unit ({allowed}), got {value!r}")
    if value.strip().startswith("-"):
        raise ValueError(f"must be > 0, got {value!r}")
    match = _QUANTITY.match(value)
    if not match:
        raise ValueError(f"expected a number with a unit ({allowed}), got {value!r}")
    number, unit = float(match.group(1)), match.group(2)
    if unit not in units:
        raise ValueError(f"unknown unit {unit!r} in {value!r}; use one of {allowed}")
    if not number > 0:
        raise ValueError(f"must be > 0, got {value!r}")
    si = number * units[unit]
    low, high, base = RANGE[kind]
    if not low <= si <= high:  # also inf and nan
        raise ValueError(f"must be from {low:g} to {high:g} {base}, got {value!r}")
    return si


def _examples(kind: str) -> list[str]:
    return {
        "rate": ["TFLOP/s", "GFLOP/s", "TOP/s"],
        "bandwidth": ["GB/s", "TB/s", "GiB/s"],
        "size": ["GB", "GiB", "MB", "MiB"],
        "power": ["W"],
        "time": ["us", "ms", "ns", "s"],
    }[kind]
