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


# Storage formats of the weights alone (weight-only quantization: the GEMMs compute in the
# run's dtype after dequantizing in registers, so only the bytes read and held change).
# int4 packs two values a byte (AWQ/GPTQ); the per-group scales (one fp16 per 128 weights,
# 1.6 % of int4's bytes) are not counted.
WEIGHT_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "fp16": 2.0,
    "bf16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}
# Storage formats of the KV cache (fp8/int8 KV caches: vLLM's and TensorRT-LLM's
# `kv_cache_dtype`); attention reads them and computes in the run's dtype.
KV_BYTES: dict[str, float] = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0}


def check_storage(value: str, field: str, allowed: dict[str, float]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise FieldError(field, value, f"unknown storage format; allowed: {', '.join(allowed)}")
    return value
