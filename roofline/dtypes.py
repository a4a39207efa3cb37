"""Datatypes a run can use: bytes per stored element, and which device peak applies.

tf32 is a tensor-core compute mode on fp32 storage, so it moves 4 bytes an element.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# The datatypes whose runs quantize the GEMMs alone: the attention core (the fused
# FlashAttention kernel) stays in 16 bits unless an 8-bit attention kernel is asked for.
# FP8 training: Transformer Engine's recipes run the Linear GEMMs in FP8 and leave dot-product
# attention in 16 bits unless `fp8_dpa` is set (default False; transformer_engine.common.
# recipe, docs.nvidia.com/deeplearning/transformer-engine, Common API); FP8 and INT8 serving:
# TensorRT-LLM's FP8 context attention is its own opt-in (`use_fp8_context_fmha`; release
# 0.9.0's notes call its FP8 FMHA experimental, "the performance is not optimal"), vLLM's FP8
# checkpoints quantize the linear layers' weights and activations, attention computing in the
# model's 16-bit type (an FP8 KV cache is dequantized on load: `kv_dtype`).
GEMM_ONLY = frozenset({"fp8", "int8"})
SIXTEEN_BIT = ("bf16", "fp16")  # in this order of preference for such a run's attention


def attention_dtype(dtype: str, asked: str | None, available: tuple[str, ...]) -> str:
    """The datatype a run's attention core computes in on a device with peaks for
    `available`: `asked` where given (RunConfig.attention_dtype); else the run's `dtype`,
    but for an 8-bit GEMM datatype (GEMM_ONLY) the device's 16-bit one (bf16, else fp16;
    the run's own where the device has neither)."""
    if asked is not None:
        return asked
    if dtype in GEMM_ONLY:
        return next((d for d in SIXTEEN_BIT if d in available), dtype)
    return dtype


# Storage formats of the weights alone (weight-only quantization: the GEMMs compute in the
# run's dtype after dequantizing in registers, so only the bytes read and held change).
@dataclass(frozen=True)
class WeightFormat:
    """How one weight is stored: `bits` of value, and for a grouped format one scale (and
    one zero point) of `scale_bytes` (`zero_bytes`) per `group` consecutive weights of an
    input row; group None: the format's scales are not counted (one per tensor or per
    output channel of thousands of weights: under 0.05 %)."""

    bits: int
    group: int | None = None  # the default group size (RunConfig.group_size overrides it)
    scale_bytes: float = 0.0
    zero_bytes: float = 0.0

    @property
    def grouped(self) -> bool:
        """Scales by group can be counted: RunConfig.group_size applies."""
        return self.scale_bytes > 0

    def bytes_per_weight(self, group: int | None = None) -> float:
        """bits / 8 + (scale + zero-point bytes) / group size (`group`, else the default)."""
        size = group or self.group
        return self.bits / 8 + ((self.scale_bytes + self.zero_bytes) / size if size else 0.0)


WEIGHT_FORMATS: dict[str, WeightFormat] = {
    "fp32": WeightFormat(32),
    "fp16": WeightFormat(16),
    "bf16": WeightFormat(16),
    # FP8 checkpoints (ModelOpt, vLLM's fp8): one fp32 scale per tensor (or per channel)
    "fp8": WeightFormat(8),
    # INT8 weight-only (TensorRT-LLM's W8A16, bitsandbytes' LLM.int8 rows): symmetric, one
    # fp16 scale per output channel by default (not counted); --group-size g counts one
    # fp16 scale per g weights
    "int8": WeightFormat(8, None, 2.0),
    # INT4 as GPTQ and AWQ checkpoints store it (AutoGPTQ/AutoAWQ, the `qweight`, `scales`,
    # `qzeros` tensors): groups of 128 input weights, an fp16 scale and a 4-bit zero point
    # (packed eight to an int32) per group: 0.5 + 2.5 / 128 = 0.5195 bytes a weight. (Marlin's
    # symmetric format keeps the scale alone: "0.125 bits storage overhead of the group
    # scales", IST-DASLab/marlin README.)
    "int4": WeightFormat(4, 128, 2.0, 0.5),
}
WEIGHT_BYTES: dict[str, float] = {k: f.bytes_per_weight() for k, f in WEIGHT_FORMATS.items()}
# Storage formats of the KV cache (fp8/int8 KV caches: vLLM's and TensorRT-LLM's
# `kv_cache_dtype`); attention reads them and computes in the run's dtype.
KV_BYTES: dict[str, float] = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0}


def check_storage(value: str, field: str, allowed: dict[str, float]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise FieldError(field, value, f"unknown storage format; allowed: {', '.join(allowed)}")
    return value
