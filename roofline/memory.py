"""Memory footprint of a run: parameters, gradients, optimizer state, activations, KV cache.

Training (per step, all in bytes):
  params       P x bytes(dtype)
  gradients    P x bytes(dtype)
  optimizer    fp32 state values per parameter (SGD 0, SGD with momentum 1, Adam/AdamW/LAMB 2,
               Adafactor ~0: factored second moments) x 4 bytes, plus a 4-byte fp32 master
               copy of every parameter when the run's dtype is narrower than fp32 (mixed
               precision; on by default, `master_weights=False` to drop it)
  activations  what the layers keep for the backward pass (LayerTable.saved_bytes: each
               family's builder counts every kept tensor once; see README); with
               `recompute` (full activation checkpointing at block boundaries) only each
               repeated block's input plus one block's activations
Inference:
  params       P x bytes(dtype)
  kv_cache     decoders: 2 (K and V) x layers x batch x context x kv_heads x head_dim x bytes
  activations  the transient working set: the largest layer's inputs + outputs
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .dtypes import BYTES_PER_ELEMENT
from .hardware import Device
from .optimizers import STATE_VALUES, check_optimizer
from .scenario import RunConfig
from .workloads import Workload


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes of each part of a run's footprint on one device (unsharded)."""

    params: float
    gradients: float
    optimizer: float
    activations: float
    kv_cache: float

    @property
    def total(self) -> float:
        return self.params + self.gradients + self.optimizer + self.activations + self.kv_cache

    def as_dict(self) -> dict[str, float]:
        return {
            "params": self.params,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "activations": self.activations,
            "kv_cache": self.kv_cache,
            "total": self.total,
        }


def kv_cache_bytes(workload: Workload, run: RunConfig) -> float:
    """K and V of every decoder layer for `context` tokens (prefill: `seq`) per sample."""
    arch = workload.arch
    if workload.family != "transformer" or arch.type == "encoder":
        return 0.0
    seq = run.seq if run.seq is not None else arch.default_seq
    tokens = run.context if run.context is not None else seq
    layers = arch.layers if arch.type == "decoder" else arch.decoder_layers
    per_token = 2 * layers * arch.kv_dim * BYTES_PER_ELEMENT[run.dtype]
    cross = 0.0
    if arch.type == "encoder-decoder":  # cross-attention K and V over the source
        cross = 2 * layers * arch.kv_dim * seq * BYTES_PER_ELEMENT[run.dtype]
    return float(run.batch * (tokens * per_token + cross))


def _recomputed(table_saved: np.ndarray, count: np.ndarray, inputs: np.ndarray) -> float:
    """Full checkpointing: one block's activations live at a time (recomputed in the
    backward pass); of the other blocks only their input is kept."""
    repeated = count > 1
    if not repeated.any():
        return float(np.sum(table_saved * count))
    blocks = int(count[repeated].max())
    first = int(np.argmax(repeated))  # the first row of the repeated block
    once = float(np.sum(table_saved[~repeated] * count[~repeated]))
    one_block = float(np.sum(table_saved[repeated]))
    return once + blocks * float(inputs[first]) + one_block


def memory_breakdown(
    workload: Workload,
    run: RunConfig,
    optimizer: str = "adam",
    *,
    master_weights: bool = True,
    recompute: bool = False,
) -> MemoryBreakdown:
    """The footprint of one training step or one inference pass, on one device."""
    check_optimizer(optimizer)
    nbytes = BYTES_PER_ELEMENT[run.dtype]
    table = workload.layers(run)
    p = table.total_params
    if run.phase == "training":
        if recompute:  # block boundaries: the forward inputs of the first repeated row
            forward = workload.layers(replace(run, phase="inference"))
            acts = _recomputed(table.saved_bytes, table.count, forward.input_bytes)
        else:
            acts = table.total_saved_bytes
        master = 4 * p if master_weights and nbytes < 4 else 0.0
        return MemoryBreakdown(
            params=p * nbytes,
            gradients=p * nbytes,
            optimizer=STATE_VALUES[optimizer] * 4 * p + master,
            activations=acts,
            kv_cache=0.0,
        )
    working = float(np.max(table.input_bytes + table.output_bytes)) if len(table) else 0.0
    return MemoryBreakdown(
        params=p * nbytes,
        gradients=0.0,
        optimizer=0.0,
        activations=working,
        kv_cache=kv_cache_bytes(workload, run),
    )


@dataclass(frozen=True)
class Fit:
    device: Device
    fits: bool
    min_devices: int  # devices needed when every part is sharded evenly across them


def fits(
    breakdown: MemoryBreakdown, devices: list[Device], whole: MemoryBreakdown | None = None
) -> list[Fit]:
    """Whether `breakdown` (one device's share) fits each device, and how many devices the
    `whole` footprint (default: `breakdown`) needs when sharded evenly."""
    total = (whole or breakdown).total
    return [
        Fit(
            d,
            breakdown.total <= d.memory_capacity_bytes,
            max(1, math.ceil(total / d.memory_capacity_bytes)),
        )
        for d in devices
    ]
