"""Scale-out: how a run splits over devices, what each device holds, what they exchange.

A layout is data x tensor x pipeline parallel, with a ZeRO stage for the data-parallel
replicas (Rajbhandari et al. 2020): stage 1 shards optimizer state, 2 also gradients,
3 also parameters. Per device (bytes):

  params      P / (tensor x pipeline)              (/ data as well with ZeRO-3)
  gradients   G / (tensor x pipeline)              (/ data with ZeRO >= 2)
  optimizer   O / (tensor x pipeline)              (/ data with ZeRO >= 1)
  activations A(batch / data) / (tensor x pipeline)   (even split; pipeline bubbles and
                                                   in-flight micro-batches not modelled)
  kv cache    K(batch / data) / (tensor x pipeline)

Communication per device per training step, on the interconnect roofline (ring
collectives move 2(n-1)/n of the data for an all-reduce, (n-1)/n for an all-gather or a
reduce-scatter; the per-direction link bandwidth is half a bidirectional figure):

  data parallel      all-reduce of the gradients (ZeRO-3: all-gather the parameters twice
                     and reduce-scatter the gradients, 1.5x the traffic)
  tensor parallel    2 all-reduces of the layer output per transformer block forward, 2 in
                     backward (Megatron-LM), of batch/data x seq x hidden values
  pipeline parallel  the activations and their gradients across each stage boundary
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .dtypes import BYTES_PER_ELEMENT
from .errors import RooflineError
from .hardware import Device
from .memory import MemoryBreakdown, memory_breakdown
from .scenario import RunConfig
from .workloads import Workload


@dataclass(frozen=True)
class Layout:
    data: int = 1
    tensor: int = 1
    pipeline: int = 1
    zero: int = 0

    @property
    def devices(self) -> int:
        return self.data * self.tensor * self.pipeline


def check_layout(w: Workload, run: RunConfig, layout: Layout) -> None:
    """One clear error for a layout the model or the batch cannot be divided by."""
    for flag, value in (("--dp", layout.data), ("--tp", layout.tensor), ("--pp", layout.pipeline)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RooflineError(f"{flag} {value}: must be a whole number >= 1")
    if layout.zero not in (0, 1, 2, 3):
        raise RooflineError(f"--zero {layout.zero}: allowed: 0, 1, 2, 3")
    if run.batch % layout.data:
        raise RooflineError(
            f"--dp {layout.data}: the batch of {run.batch} cannot be split into {layout.data} "
            "equal data-parallel shares"
        )
    arch = w.arch
    if layout.tensor > 1:
        if w.family != "transformer":
            raise RooflineError(
                f"--tp {layout.tensor}: tensor parallelism is modelled for transformers only"
            )
        for name, size in (("heads", arch.heads), ("kv_heads", arch.kv_heads), ("ffn", arch.ffn)):
            if size % layout.tensor:
                raise RooflineError(
                    f"--tp {layout.tensor}: {w.key} has {size} {name}, "
                    f"not divisible by {layout.tensor}"
                )
    if layout.pipeline > 1:
        layers = getattr(arch, "layers", 0) + getattr(arch, "decoder_layers", 0)
        if w.family not in ("transformer", "lstm") or layers % layout.pipeline:
            raise RooflineError(
                f"--pp {layout.pipeline}: {w.key}'s {layers or 'non-layered'} layers cannot be "
                f"split into {layout.pipeline} equal pipeline stages"
            )


def per_device_memory(
    w: Workload,
    run: RunConfig,
    layout: Layout,
    optimizer: str = "adam",
    *,
    master_weights: bool = True,
    recompute: bool = False,
) -> MemoryBreakdown:
    check_layout(w, run, layout)
    local = replace(run, batch=run.batch // layout.data)
    m = memory_breakdown(w, local, optimizer, master_weights=master_weights, recompute=recompute)
    split = layout.tensor * layout.pipeline
    dp = layout.data
    return MemoryBreakdown(
        params=m.params / split / (dp if layout.zero >= 3 else 1),
        gradients=m.gradients / split / (dp if layout.zero >= 2 else 1),
        optimizer=m.optimizer / split / (dp if layout.zero >= 1 else 1),
        activations=m.activations / split,
        kv_cache=m.kv_cache / split,
    )


@dataclass(frozen=True)
class Communication:
    data_bytes: float  # per device per step
    tensor_bytes: float
    pipeline_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.data_bytes + self.tensor_bytes + self.pipeline_bytes

    def time_s(self, device: Device) -> float:
        """Time on the device's scale-up link, per direction (no overlap with compute)."""
        if self.total_bytes == 0:
            return 0.0
        bw = device.interconnect_bandwidth_bytes_per_s
        if not bw:
            raise RooflineError(
                f"{device.key} has no scale-up interconnect in its file; a multi-device layout "
                "needs one (interconnect.bandwidth)"
            )
        per_direction = bw / 2 if device.interconnect_counting == "bidirectional" else bw
        return self.total_bytes / per_direction


def communication(w: Workload, run: RunConfig, layout: Layout) -> Communication:
    check_layout(w, run, layout)
    nbytes = BYTES_PER_ELEMENT[run.dtype]
    training = run.phase == "training"
    p = w.params
    d, t, pp = layout.data, layout.tensor, layout.pipeline
    data = 0.0
    if training and d > 1:
        grads = p * nbytes / (t * pp)
        factor = 1.5 if layout.zero >= 3 else 1.0
        data = factor * 2 * (d - 1) / d * grads
    tensor = pipe = 0.0
    if w.family == "transformer":
        a = w.arch
        seq = run.seq if run.seq is not None else a.default_seq
        tokens = run.batch // d * (1 if run.phase == "decode" else seq)
        layers = a.layers + a.decoder_layers
        activation = tokens * a.hidden * nbytes
        if t > 1:
            per_layer = (4 if training else 2) * 2 * (t - 1) / t * activation
            tensor = layers / pp * per_layer
        if pp > 1:
            pipe = (2 if training else 1) * activation / t
    return Communication(data, tensor, pipe)


def min_layout(
    w: Workload,
    run: RunConfig,
    device: Device,
    optimizer: str = "adam",
    *,
    zero: int = 3,
    max_tensor: int = 8,
    recompute: bool = False,
) -> Layout | None:
    """The layout with the fewest devices whose per-device memory fits `device`: tensor
    parallel up to `max_tensor` (one node), then pipeline, then data parallel with ZeRO."""
    best: Layout | None = None
    arch = w.arch
    layers = getattr(arch, "layers", 1) + getattr(arch, "decoder_layers", 0)
    tensors = [t for t in (1, 2, 4, 8, 16) if t <= max_tensor]
    for t in tensors:
        for pp in [n for n in range(1, layers + 1) if layers % n == 0]:
            for dp in [n for n in range(1, run.batch + 1) if run.batch % n == 0]:
                # ZeRO shards training state; an inference replica holds all its weights
                stage = zero if dp > 1 and run.phase == "training" else 0
                layout = Layout(dp, t, pp, stage)
                if best is not None and layout.devices >= best.devices:
                    continue
                try:
                    m = per_device_memory(w, run, layout, optimizer, recompute=recompute)
                except RooflineError:
                    continue
                if m.total <= device.memory_capacity_bytes:
                    best = layout
    return best


def step_time(w: Workload, run: RunConfig, layout: Layout, device: Device) -> tuple[float, float]:
    """(compute, communication) seconds of one step on `device` under `layout`: the
    data-parallel share's roofline time split evenly over tensor x pipeline devices (no
    pipeline bubble), plus the layout's communication on the interconnect, not overlapped."""
    from .analysis import analyze

    check_layout(w, run, layout)
    local = replace(run, batch=run.batch // layout.data)
    compute = analyze(w, device, local).total_time_s / (layout.tensor * layout.pipeline)
    return compute, communication(w, run, layout).time_s(device)
