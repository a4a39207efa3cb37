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
                     (micro-batch x tokens x hidden), for the blocks of one pipeline stage,
                     once a micro-batch
  pipeline parallel  the boundary activation forward (and its gradient back in training),
                     split over the tensor-parallel devices, once a micro-batch and model
                     chunk (interleaved 1F1B: virtual_stages chunks a rank)
One function (`traffic`) gives these collectives; the roofline bound adds up their bytes
and the expected time (step.py) times each on its links.
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
class Collective:
    """One kind of collective in a step: `calls` calls, each sending `nbytes` per device in
    `steps` latency-bound steps, over a group whose ranks span `span` consecutive ranks.
    Floats, or arrays of one value per scenario."""

    nbytes: Array
    calls: Array
    steps: Array
    span: Array

    @property
    def total_bytes(self) -> Array:
        return self.calls * self.nbytes


@dataclass(frozen=True)
class Communication:
    """What each device sends per step: the bound adds up the bytes (`total_bytes`), the
    expected time times each collective on its links (step.communication_parts)."""

    tensor: Collective
    pipeline: Collective
    data: Collective

    @property
    def data_bytes(self) -> Array:
        return self.data.total_bytes

    @property
    def tensor_bytes(self) -> Array:
        return self.tensor.total_bytes

    @property
    def pipeline_bytes(self) -> Array:
        return self.pipeline.total_bytes

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
    micro_batches: Array | None = None,
    bytes_per_element: Array | None = None,
    data: Array | None = None,
    adapters: float | None = None,
) -> Communication:
    """The layout's collectives in one step, from the model's parameter count, the
    block-boundary activation bytes of one micro-batch (`run.micro()`), its blocks and the
    family's all-reduces a block. Each of the m micro-batches runs, in each pass (forward,
    and backward in training):
      tensor    the all-reduces of its stage's blocks (blocks / pipeline of them), ring over
                the tensor group: 2 (t - 1) steps
      pipeline  a send of its boundary activation / tensor to the next stage, v times with v
                model chunks a rank (interleaved 1F1B: each micro-batch crosses v x as many
                stage boundaries; Narayanan et al. 2021, sec. 2.2), over a group spanning
                tensor x data x pipeline ranks (tensor innermost, then data, then pipeline)
    and in training the replicas all-reduce the gradients once a step, P x bytes / (tensor
    x pipeline) (ZeRO-3: all-gather the parameters twice and reduce-scatter the gradients,
    1.5x the traffic), ring over the data group (stride tensor: it spans tensor x data).
    A LoRA fine-tune all-reduces its `adapters`' gradients only (the base is frozen); with
    ZeRO-3 it all-gathers the base twice (an all-reduce's volume) and reduce-scatters the
    adapters' gradients (half one).
    A sweep passes arrays for the micro-batches a step, the bytes per element, the
    data-parallel degree and the boundary bytes; the rest comes from `run`."""
    d = run.layout.data if data is None else data
    t, pp = run.layout.tensor, run.layout.pipeline
    m = run.micro_batches if micro_batches is None else micro_batches
    nb = BYTES_PER_ELEMENT[run.dtype] if bytes_per_element is None else bytes_per_element
    passes = 2 if run.training else 1  # forward, and backward in training
    calls = m * passes * allreduces_per_block * blocks / pp if t > 1 else 0.0
    tensor = Collective(allreduce_bytes(t, boundary_bytes), calls, 2 * (t - 1), t)
    sends = m * passes * run.virtual_stages if pp > 1 else 0.0
    pipeline = Collective(boundary_bytes / t, sends, 1, t * d * pp)
    grads = params * nb / (t * pp)
    factor = 1.5 if run.layout.zero >= 3 else 1.0
    reduce = factor * allreduce_bytes(d, grads)  # 0 for one replica
    if run.lora_rank is not None:
        if adapters is None:  # a caller's mistake, not the user's
            raise ValueError("a LoRA run's traffic needs its adapters' parameter count")
        base = params * (nb if run.weights is None else run.element_bytes[1]) / (t * pp)
        trained = allreduce_bytes(d, adapters * nb / (t * pp))
        reduce = allreduce_bytes(d, base) + 0.5 * trained if run.layout.zero >= 3 else trained
    gradients = Collective(reduce, 1.0 if run.training else 0.0, 2 * (d - 1), t * d)
    return Communication(tensor, pipeline, gradients)


def communication(w: Workload, run: RunConfig) -> Communication:
    """The layout's collectives in one step of `run` (traffic)."""
    w.check_layout(run.layout)
    split = w.arch.tensor_split
    boundary = w.arch.boundary_elements(run.micro()) * BYTES_PER_ELEMENT[run.dtype]
    return traffic(
        run,
        w.params,
        boundary,
        w.arch.blocks,
        split.allreduces_per_block if split else 0,
        adapters=w.trainable_params(run) if run.lora_rank is not None else None,
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
    adapters = w.trainable_params(run) if run.lora_rank is not None else None
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
                micro = candidate.micro() if run.training else candidate.replica()
                key = (micro.batch, micro.replicated_over)
                if key not in per_micro:
                    per_micro[key] = activation_bytes(w, micro)
                held = per_micro[key] * (in_flight(candidate) if run.training else 1)
                m = footprint(candidate, w.params, held, kv, adapters=adapters)
                if m.total <= device.memory_capacity_bytes:
                    best = layout
    return best
