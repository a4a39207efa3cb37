"""Datatypes a run can use: bytes per stored element, and which device peak applies.

tf32 is a tensor-core compute mode on fp32 storage, so it moves 4 bytes an element.
"""

from __future__ import annotations

from .errors import FieldError

BYTES_PER_ELEMENT: dict[str, int] = {
    "fp64": 8,
    "fp32": 4,
    "tf32": 4,
    "fp16": 2,
    "bf16": 2,
    "fp8": 1,
    "int8": 1,
}

DTYPES: tuple[str, ...] = tuple(BYTES_PER_ELEMENT)


def check_dtype(dtype: str, field: str = "dtype") -> str:
    if not isinstance(dtype, str) or dtype not in BYTES_PER_ELEMENT:
        raise FieldError(field, dtype, f"unknown datatype; allowed: {', '.join(DTYPES)}")
    return dtype
