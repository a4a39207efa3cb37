"""Scale-out: what the devices of a layout exchange, and the smallest layout that fits a
device (the step time of a layout is step.py's).

A layout (scenario.Layout) is data x tensor x pipeline parallel, with a ZeRO stage for the
data-parallel replicas; the memory each device holds is `memory.footprint`.

Communication per device per step (collectives.py for the ring formulas; the link is
Device.link_bytes_per_s, one direction):

  data parallel      training: all-reduce of the replica's gradients, P x bytes / (tensor x
                     pipeline) (ZeRO-3: all-gather the parameters twice and reduce-scatter the
                     gradients, 1.5x the traffic)
  tensor parallel    the family's all-reduces per block (Megatron-LM transformers: 2 in the
                     forward pass, 2 more in the backward) of the block-boundary activation
                     (batch/data x tokens x hidden), for the blocks of one pipeline stage
  pipeline parallel  the boundary activation forward (and its gradient back in training),
                     split over the tensor-parallel devices
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .collectives import allreduce_bytes, transfer_time_s
from .dtypes import BYTES_PER_ELEMENT
from .errors import RooflineError
from .hardware import Device
from .memory import activation_bytes, footprint, in_flight, kv_cache_bytes
from .scenario import MAX_DEVICES, Layout, RunConfig
from .workloads import Workload

Array = Any


@dataclass(frozen=True)
class Communication:
    """Bytes each device sends per step; floats, or arrays of one value per scenario."""

    data_bytes: Array
    tensor_bytes: Array
    pipeline_bytes: Array

    @property
    def total_bytes(self) -> Array:
        return self.data_bytes + self.tensor_bytes + self.pipeline_bytes

    def time_s(self, device: Device) -> float:
        """Time on the device's scale-up link, one direction, not overlapped with compute
        (infinite when there is traffic and the device has no interconnect)."""
        return float(transfer_time_s(self.total_bytes, device.link_bytes_per_s))


def traffic(
    run: RunConfig,
    params: float,
    boundary_bytes: Array,
    blocks: int,
    allreduces_per_block: int,
    *,
    bytes_per_element: Array | None = None,
    data: Array | None = None,
) -> Communication:
    """The layout's communication, from the model's parameter count, its block-boundary
    activation bytes for one replica, and its blocks. A sweep passes arrays for the bytes
    per element, the data-parallel degree and the boundary bytes; the rest comes from `run`."""
    d = run.layout.data if data is None else data
    t, pp, zero = run.layout.tensor, run.layout.pipeline, run.layout.zero
    nb = BYTES_PER_ELEMENT[run.dtype] if bytes_per_element is None else bytes_per_element
    passes = 2 if run.training else 1  # forward, and backward in training
    grads = params * nb / (t * pp)
    factor = 1.5 if zero >= 3 else 1.0
    data_bytes = factor * allreduce_bytes(d, grads) if run.training else 0.0 * d
    tensor_bytes = 0.0 * boundary_bytes
    if t > 1:
        per_block = passes * allreduces_per_block * allreduce_bytes(t, boundary_bytes)
        tensor_bytes = blocks / pp * per_block
    pipe_bytes = passes * boundary_bytes / t if pp > 1 else 0.0 * boundary_bytes
    return Communication(data_bytes, tensor_bytes, pipe_bytes)


def communication(w: Workload, run: RunConfig) -> Communication:
    w.check_layout(run.layout)
    replica = run.replica()
    split = w.arch.tensor_split
    boundary = w.arch.boundary_elements(replica) * BYTES_PER_ELEMENT[run.dtype]
    return traffic(
        run, w.params, boundary, w.arch.blocks, split.allreduces_per_block if split else 0
    )


def divisors(n: int) -> list[int]:
    """The divisors of n in ascending order (trial division up to sqrt(n))."""
    small, large = [], []
    i = 1
    while i * i <= n:
        if n % i == 0:
            small.append(i)
            if i * i != n:
                large.append(n // i)
        i += 1
    return small + large[::-1]


def min_layout(
    w: Workload, run: RunConfig, device: Device, *, zero: int = 3, max_tensor: int = 8
) -> Layout | None:
    """The layout with the fewest devices whose per-device memory fits `device`: tensor
    parallel up to `max_tensor` (one node), pipeline stages dividing the blocks, data
    parallel dividing the batch (training replicas with ZeRO stage `zero`; an inference
    replica holds all its weights). Activations are those memory.held_activations counts
    (the micro-batches a pipeline stage holds); each micro-batch size's are built once."""
    best: Layout | None = None
    tensors = [t for t in (1, 2, 4, 8, 16) if t <= max_tensor]
    stages = divisors(w.arch.blocks) if w.arch.blocks else [1]
    # activation bytes of one micro-batch, by its size and the tensor degree its norms are
    # replicated over (without sequence parallelism: each candidate's own)
    per_micro: dict[tuple[int, int], float] = {}
    for dp in divisors(run.batch):
        if dp > MAX_DEVICES or (best is not None and dp >= best.devices):
            break
        stage = zero if dp > 1 and run.training else 0
        replica = replace(run.replica(), batch=run.batch // dp, replicated_over=1)
        kv = None
        for t in tensors:
            for pp in stages:
                layout = Layout(dp, t, pp, stage)
                if best is not None and layout.devices >= best.devices:
                    continue
                try:
                    w.check_layout(layout)
                    candidate = run.with_layout(layout)
                except RooflineError:
                    continue
                if kv is None:
                    kv = kv_cache_bytes(w, replica)
                size = candidate.micro_batch_size if run.training else replica.batch
                key = (size, candidate.replica().replicated_over)
                if key not in per_micro:
                    micro = replace(replica, batch=size, replicated_over=key[1])
                    per_micro[key] = activation_bytes(w, micro)
                held = per_micro[key] * (in_flight(candidate) if run.training else 1)
                m = footprint(candidate, w.params, held, kv)
                if m.total <= device.memory_capacity_bytes:
                    best = layout
    return best
