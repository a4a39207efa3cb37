"""Memory footprint of a run per device: parameters, gradients, optimizer state,
activations, KV cache. One formula (`footprint`), used by the per-run path and by sweeps.

Per replica (the data-parallel share of the batch, on one device), in bytes:
  params       P x bytes(dtype)
  gradients    training: P x bytes(dtype)
               (LoRA: the base frozen, gradients, optimizer state and master copy are the
               adapters' only; the base is kept in its storage format, int4 for QLoRA)
  optimizer    training: fp32 state values per parameter (SGD 0, SGD with momentum 1,
               Adam/AdamW/LAMB 2, Adafactor ~0: factored second moments) x 4 bytes, plus a
               4-byte fp32 master copy of every parameter when the dtype is narrower than
               fp32 (mixed precision; RunConfig.master_weights)
  activations  training: what the layers keep for the backward pass (LayerTable.saved_bytes:
               each family's builder counts every kept tensor once); with recompute "full"
               (activation checkpointing at block boundaries) only each repeated block's
               input plus one block's activations. Inference: the transient working set, the
               largest layer's inputs + outputs
  kv_cache     decoders: K and V for every cached token (the family's kv_cache_elements)
Split over the layout (Rajbhandari et al. 2020 for ZeRO):
  params / (tensor x pipeline)  (/ data as well with ZeRO-3)
  gradients likewise            (/ data with ZeRO >= 2)
  optimizer likewise            (/ data with ZeRO >= 1)
  activations, kv_cache / (tensor x pipeline)  (an even split: pipeline bubbles and
                                                in-flight micro-batches are not modelled)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .dtypes import BYTES_PER_ELEMENT
from .hardware import Device
from .optimizers import FP32, STATE_VALUES
from .scenario import RunConfig
from .workloads import Workload

Array = Any  # a float, or a numpy array of one value per scenario


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes of each part of a run's footprint on one device. Each field is a float for one
    run, or an array of one value per scenario in a sweep."""

    params: Array
    gradients: Array
    optimizer: Array
    activations: Array
    kv_cache: Array

    @property
    def total(self) -> Array:
        return self.params + self.gradients + self.optimizer + self.activations + self.kv_cache

    def as_dict(self) -> dict[str, float]:
        return {
            "params": float(self.params),
            "gradients": float(self.gradients),
            "optimizer": float(self.optimizer),
            "activations": float(self.activations),
            "kv_cache": float(self.kv_cache),
            "total": float(self.total),
        }


def footprint(
    run: RunConfig,
    params: float,
    activations: Array,
    kv_cache: Array,
    *,
    bytes_per_element: Array | None = None,
    data: Array | None = None,
    adapters: float | None = None,
) -> MemoryBreakdown:
    """Per-device bytes of `run` under its layout, from the replica's `activations` and
    `kv_cache` bytes. A sweep passes arrays for what it varies per scenario: the bytes per
    element (its dtype axis) and the data-parallel degree (its device-count axis); the rest
    (optimizer, master weights, tensor, pipeline, ZeRO stage) comes from `run`.
    A LoRA fine-tune (`run.lora_rank`) passes its `adapters`' parameter count
    (Workload.trainable_params) beside the frozen base's `params`: the base stored as
    `run.weights` says (int4: QLoRA), the adapters in the run's dtype, and gradients,
    optimizer state and the fp32 master copy for the adapters alone."""
    nb = BYTES_PER_ELEMENT[run.dtype] if bytes_per_element is None else bytes_per_element
    dp = run.layout.data if data is None else data
    split = run.layout.model_split
    zero = run.layout.zero
    weights = params * (nb if run.weights is None else run.element_bytes[1])
    none = 0.0 * nb  # a zero of the same shape (float or per-scenario array)
    if run.lora_rank is not None:
        if adapters is None:  # a caller's mistake, not the user's
            raise ValueError("a LoRA run's footprint needs its adapters' parameter count")
        weights = weights + adapters * nb
    if not run.training:
        return MemoryBreakdown(weights / split, none, none, activations / split, kv_cache / split)
    trained = params if adapters is None else adapters
    state = STATE_VALUES[run.optimizer or "sgd"] * FP32 * trained
    master = np.where(np.asarray(nb) < FP32, FP32 * trained, 0.0) if run.master_weights else 0.0
    return MemoryBreakdown(
        params=weights / split / (dp if zero >= 3 else 1),
        gradients=trained * nb / split / (dp if zero >= 2 else 1),
        optimizer=(state + master) / split / (dp if zero >= 1 else 1),
        activations=activations / split,
        kv_cache=none,  # nothing is cached between training steps
    )


def _recomputed(saved: np.ndarray, count: np.ndarray, inputs: np.ndarray) -> float:
    """Full checkpointing: one block's activations live at a time (recomputed in the
    backward pass); of the other blocks only their input is kept."""
    repeated = count > 1
    if not repeated.any():
        return float(np.sum(saved * count))
    blocks = int(count[repeated].max())
    first = int(np.argmax(repeated))  # the first row of the repeated block
    once = float(np.sum(saved[~repeated] * count[~repeated]))
    one_block = float(np.sum(saved[repeated]))
    return once + blocks * float(inputs[first]) + one_block


def activation_bytes(w: Workload, run: RunConfig) -> float:
    """Activation bytes of one device running `run` whole (no layout): kept for the
    backward pass in training (recomputed per `run.recompute`), the working set otherwise.
    Selective recomputation keeps everything but what the attention core's softmax keeps
    (the s x s probabilities, their dropout mask and output: Korthikanti et al. 2022)."""
    table = w.layers(run)
    if run.training:
        if run.recompute == "full":
            forward = w.layers(run.forward())  # the blocks' inputs
            return _recomputed(table.saved_bytes, table.count, forward.input_bytes)
        if run.recompute == "selective":
            dropped = w.arch.attention_core(table) & (table.kind == "softmax")
            return table.total_saved_bytes - float(
                np.sum(table.saved_bytes[dropped] * table.count[dropped])
            )
        return table.total_saved_bytes
    return float(np.max(table.input_bytes + table.output_bytes)) if len(table) else 0.0


def kv_cache_bytes(w: Workload, run: RunConfig) -> float:
    """K and V kept between decode steps, whole batch (0 for models without a cache), in
    the run's KV-cache format."""
    return w.arch.kv_cache_elements(run) * run.element_bytes[2]


def memory_breakdown(w: Workload, run: RunConfig) -> MemoryBreakdown:
    """The footprint of one training step or inference pass on each device of `run.layout`
    (with the default single-device layout: the whole run on one device)."""
    w.check_layout(run.layout)
    replica = run.replica()
    return footprint(
        run,
        w.params,
        held_activations(w, run),
        kv_cache_bytes(w, replica),
        adapters=w.trainable_params(run) if run.lora_rank is not None else None,
    )


def in_flight(run: RunConfig, micro_batches: Array | None = None) -> Array:
    """Micro-batches whose activations one pipeline stage holds at once under 1F1B: the
    first stage has run the forward pass of `pipeline` of them before the first backward
    (Narayanan et al. 2021), or all of them when there are fewer. A sweep passes its
    micro-batches a step (an array); by default the run's."""
    m = run.micro_batches if micro_batches is None else micro_batches
    return np.minimum(run.layout.pipeline, m) if np.ndim(m) else min(run.layout.pipeline, m)


def held_activations(w: Workload, run: RunConfig) -> float:
    """Activation bytes one replica holds at its peak, before the tensor x pipeline split:
    one micro-batch's activations x the micro-batches in flight. Without pipelining the
    default micro-batch is the whole local batch (one micro-batch in flight). Divided by
    tensor x pipeline, this is Korthikanti et al. 2022's activation memory of the first
    stage: L s b h (34 + 5 a s / h) / t for a micro-batch of b (with sequence parallelism)."""
    if not run.training:  # a forward pass keeps nothing: its working set, whole batch
        return activation_bytes(w, run.replica())
    return activation_bytes(w, run.micro()) * float(in_flight(run))


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
    total = float((whole or breakdown).total)
    return [
        Fit(
            d,
            float(breakdown.total) <= d.memory_capacity_bytes,
            max(1, math.ceil(total / d.memory_capacity_bytes)),
        )
        for d in devices
    ]


@dataclass(frozen=True)
class LongestContext:
    """The longest decode context (tokens in the KV cache before the step) that fits a
    device's memory at the run's batch, layout and datatypes."""

    device: Device
    dtype: str
    batch: int
    context: int  # 0: not even a context of 1 fits
    memory_bytes: float  # the footprint per device at `context` (at 1 when nothing fits)
    capacity_bytes: float
    limit: str  # "memory": the next token would not fit; "model": the model's positions


def longest_context(w: Workload, run: RunConfig, device: Device) -> LongestContext:
    """By bisection on memory_breakdown (the footprint grows with the context): the largest
    context c whose decode step fits `device`, up to the model's positions less the new
    token (max_seq - 1; the KV cache then holds max_seq tokens). Capacity is the device's
    whole memory, as a what-if's `fits` counts it."""
    from .scenario import MAX_SIZE

    run = replace(run, phase="decode", seq=None)
    capacity = float(device.memory_capacity_bytes)

    def need(context: int) -> float:
        return float(memory_breakdown(w, replace(run, context=context)).total)

    top = (w.arch.max_seq or MAX_SIZE) - 1
    if need(1) > capacity:
        return LongestContext(device, run.dtype, run.batch, 0, need(1), capacity, "memory")
    if need(top) <= capacity:
        return LongestContext(device, run.dtype, run.batch, top, need(top), capacity, "model")
    low, high = 1, top  # need(low) fits, need(high) does not
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if need(mid) <= capacity else (low, mid)
    return LongestContext(device, run.dtype, run.batch, low, need(low), capacity, "memory")
