"""RunConfig: *how* a workload runs, the only description of it that library code takes.

A RunConfig holds the scenario (batch, sequence, context, datatype, phase), the training
settings (optimizer, fp32 master weights, activation recomputation) and the parallel
`Layout`. Library functions take a RunConfig, never loose keywords for these; adding an
option means adding it here, to its check in `__post_init__`, and to the code that uses it.

Every value is checked when the config is made; a bad one raises `FieldError` naming the
field (`batch`, `layout.tensor`, ...), which the CLI shows as its flag (`--batch`, `--tp`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .dtypes import (
    BYTES_PER_ELEMENT,
    KV_BYTES,
    WEIGHT_BYTES,
    WEIGHT_FORMATS,
    check_dtype,
    check_storage,
)
from .errors import FieldError

# inference: one forward pass over batch x seq tokens (for a decoder this is the prefill);
# prefill: the same, named for decoders; decode: one new token per sample against `context`
# cached keys and values; training: forward + backward (+ the optimizer update).
PHASES = ("inference", "prefill", "decode", "training")
# activation recomputation (checkpointing) in training: none; selective (Korthikanti et al.
# 2022: keep everything but attention's s x s tensors, recompute those); full (keep each
# repeated block's input only and recompute the block in the backward pass)
RECOMPUTE = ("none", "selective", "full")
# attention kernels: eager (scores, softmax and context as three kernels, the s x s matrix
# in memory) or flash (one fused kernel, no s x s matrix, the causal mask's blocks skipped)
ATTENTION = ("eager", "flash")
# logits of a forward pass (inference, prefill): of every position, or of the last one only
# (what a serving stack computes to pick the next token)
LOGITS = ("all", "last")
ZERO_STAGES = (0, 1, 2, 3)
# LoRA (Hu et al. 2021, arXiv:2106.09685): the projections an adapter may sit on, by the
# names PEFT's Llama targets use (q_proj, k_proj, v_proj, o_proj, up_proj, gate_proj,
# down_proj); all seven by default, as QLoRA (Dettmers et al. 2023, arXiv:2305.14314,
# sec. 4) found adapters on every linear layer of a block needed to match full fine-tuning
LORA_TARGETS = ("q", "k", "v", "o", "up", "gate", "down")
MAX_LORA_RANK = 65536
# The largest batch, sequence, context or device count a run may name: far beyond any real
# run (a global batch of 10^9 samples), small enough that every cost stays a finite float64
# and a search over layouts stays short.
MAX_SIZE = 10**9
MAX_DEVICES = 2**20  # devices in one layout (about a million)


def check_size(name: str, value: object, *, maximum: int = MAX_SIZE) -> int:
    """A whole number in [1, maximum], or a FieldError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise FieldError(name, value, f"must be a whole number from 1 to {maximum:,}")
    return value


@dataclass(frozen=True)
class Layout:
    """How a run splits over devices: data x tensor x pipeline parallel, and the ZeRO stage
    that shards the data-parallel replicas' training state (1: optimizer state, 2: also
    gradients, 3: also parameters)."""

    data: int = 1
    tensor: int = 1
    pipeline: int = 1
    zero: int = 0

    def __post_init__(self) -> None:
        for name in ("data", "tensor", "pipeline"):
            check_size(f"layout.{name}", getattr(self, name), maximum=MAX_DEVICES)
        if isinstance(self.zero, bool) or self.zero not in ZERO_STAGES:
            raise FieldError("layout.zero", self.zero, "allowed: 0, 1, 2, 3")

    @property
    def devices(self) -> int:
        return self.data * self.tensor * self.pipeline

    @property
    def model_split(self) -> int:
        """Devices one replica's model is split over (tensor x pipeline)."""
        return self.tensor * self.pipeline


SINGLE = Layout()


@dataclass(frozen=True)
class Cluster:
    """The machine a layout runs on, beyond one device: devices per node (sharing the
    scale-up interconnect) and the scale-out network between nodes, per device and
    direction. None in a RunConfig: the device file's `network:`, else its vendor's
    default (hardware/defaults/efficiency.yaml)."""

    node_size: int
    network_bandwidth_bytes_per_s: float
    network_latency_s: float
    source: str = ""

    def __post_init__(self) -> None:
        check_size("cluster.node_size", self.node_size, maximum=MAX_DEVICES)
        for name in ("network_bandwidth_bytes_per_s", "network_latency_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < 1e16):
                raise FieldError(f"cluster.{name}", value, "must be > 0 and finite")


@dataclass(frozen=True)
class RunConfig:
    """One scenario and how it runs. `seq` is tokens per sample (None: the model's own
    default input size); `context` is the number of cached tokens a decode step attends to
    (None: `seq`); `batch` is the global batch, split over `layout.data` replicas."""

    batch: int = 1
    seq: int | None = None
    dtype: str = "fp16"
    phase: str = "inference"
    context: int | None = None
    optimizer: str | None = "adam"  # training: whose update is part of the step (None: none)
    master_weights: bool = True  # training below fp32: keep an fp32 copy of the weights
    recompute: str = "none"
    layout: Layout = field(default=SINGLE)
    ideal: bool = False  # expected times = the roofline bound (no efficiency terms)
    attention: str = "eager"
    # the datatype attention's core computes in (None: the run's `dtype`, but bf16, else
    # fp16, for an fp8 or int8 run, whose stacks quantize the GEMMs only: dtypes.
    # attention_dtype); "fp8" states an FP8 attention kernel (FlashAttention-3's, TensorRT-
    # LLM's use_fp8_context_fmha)
    attention_dtype: str | None = None
    logits: str = "all"
    # pipeline micro-batch (samples); None: the local batch when layout.pipeline is 1 (no
    # pipelining), 1 otherwise
    micro_batch: int | None = None
    cluster: Cluster | None = None
    # share of the data-parallel gradient all-reduce hidden behind the backward pass
    # (0: none, as Megatron-LM 2021 ran; PyTorch DDP and later Megatron overlap it)
    dp_overlap: float = 0.0
    # inference storage formats (None: `dtype`): weight-only quantization of the parameters
    # (int8, int4, fp8...) and the KV cache's format (fp8, int8); compute stays in `dtype`
    weights: str | None = None
    kv_dtype: str | None = None
    # a grouped weight format's group size (weights that share one scale and zero point;
    # None: the format's default, 128 for int4: dtypes.WEIGHT_FORMATS)
    group_size: int | None = None
    # interleaved 1F1B (Narayanan et al. 2021): model chunks a pipeline rank holds; the
    # bubble shrinks v-fold and each micro-batch crosses v x as many stage boundaries
    virtual_stages: int = 1
    # the share of the per-kernel expected throughput a training step sustains end to end
    # (None: the fitted value in hardware/defaults/calibration.yaml; 1: off)
    sustained: float | None = None
    # sequence parallelism (Korthikanti et al. 2022) with tensor parallelism: the norms,
    # dropouts and residual adds, and the activations they keep, split over the tensor
    # ranks along the sequence. False: plain Megatron tensor parallelism, which runs them
    # whole on every rank (no effect at tensor 1)
    sequence_parallel: bool = True
    # activations fused into the epilogue of the GEMM before them (GELU or SwiGLU after the
    # first MLP projection, ReLU after a convolution with no norm between): no round trip of
    # the GEMM's output through DRAM and no kernel of their own. Which rows may fuse is the
    # family's builder's to say (LayerTable.fuse_aux)
    fused_epilogues: bool = False
    # the input gradient of the first layer: not computed (False, the default: what
    # frameworks do, since the input is data that needs no gradient; a first GEMM-like
    # layer runs one GEMM in its backward pass (dW), not two) or computed (True, as if the
    # model's input were an activation). A text model's first layer is an embedding
    # lookup, which has no input gradient either way
    first_input_grad: bool = False
    # set by `replica()`, not by users: the tensor degree over which the rows sequence
    # parallelism would split run whole on every rank (1: none, with sequence parallelism or
    # at tensor 1). A replica's layer table counts those rows once per rank, so that its
    # costs divided by the tensor degree leave each rank its whole copy
    replicated_over: int = 1
    # LoRA fine-tuning (training only): adapters of this rank on the `lora_targets`
    # projections (comma-separated, of LORA_TARGETS); every base weight frozen (no weight
    # gradient, no optimizer state), stored as `weights` says (int4: QLoRA). None: off
    lora_rank: int | None = None
    lora_targets: str = ",".join(LORA_TARGETS)

    def __post_init__(self) -> None:
        check_size("batch", self.batch)
        for name in ("seq", "context"):
            if getattr(self, name) is not None:
                check_size(name, getattr(self, name))
        check_dtype(self.dtype)
        if self.attention_dtype is not None:
            check_dtype(self.attention_dtype, "attention_dtype")
        if self.weights is not None:
            check_storage(self.weights, "weights", WEIGHT_BYTES)
            if self.phase == "training" and self.lora_rank is None:
                raise FieldError(
                    "weights",
                    self.weights,
                    "weight-only quantization is for inference phases, or a LoRA fine-tune's "
                    "frozen base (QLoRA: give lora_rank)",
                )
        if self.group_size is not None:
            check_size("group_size", self.group_size, maximum=2**20)
            if self.weights is None or not WEIGHT_FORMATS[self.weights].grouped:
                raise FieldError(
                    "group_size",
                    self.group_size,
                    "applies to grouped weight formats (weights int4, int8)",
                )
        if self.kv_dtype is not None:
            check_storage(self.kv_dtype, "kv_dtype", KV_BYTES)
            if self.phase == "training":
                raise FieldError(
                    "kv_dtype", self.kv_dtype, "a training step keeps no KV cache; for inference"
                )
        if self.phase not in PHASES:
            raise FieldError("phase", self.phase, f"allowed: {', '.join(PHASES)}")
        self._check_lora()
        if self.optimizer is not None:
            from .optimizers import check_optimizer

            check_optimizer(self.optimizer)
        for name in (
            "master_weights",
            "ideal",
            "sequence_parallel",
            "fused_epilogues",
            "first_input_grad",
        ):
            if not isinstance(getattr(self, name), bool):
                raise FieldError(name, getattr(self, name), "must be true or false")
        for name, allowed in (
            ("recompute", RECOMPUTE),
            ("attention", ATTENTION),
            ("logits", LOGITS),
        ):
            if getattr(self, name) not in allowed:
                raise FieldError(name, getattr(self, name), f"allowed: {', '.join(allowed)}")
        if self.context is not None and self.phase != "decode":
            raise FieldError("context", self.context, "applies to phase decode only")
        if not isinstance(self.layout, Layout):
            raise TypeError(f"layout must be a Layout, got {type(self.layout).__name__}")
        if self.batch % self.layout.data:
            raise FieldError(
                "layout.data",
                self.layout.data,
                f"the batch of {self.batch} cannot be split into {self.layout.data} equal "
                "data-parallel shares",
            )
        if not (isinstance(self.dp_overlap, int | float) and 0 <= self.dp_overlap <= 1):
            raise FieldError("dp_overlap", self.dp_overlap, "a share from 0 to 1")
        check_size("virtual_stages", self.virtual_stages, maximum=1024)  # no effect at pp 1
        check_size("replicated_over", self.replicated_over, maximum=MAX_DEVICES)
        if self.sustained is not None and not (
            isinstance(self.sustained, int | float) and 0 < self.sustained <= 1
        ):
            raise FieldError("sustained", self.sustained, "a share above 0 and at most 1")
        if self.micro_batch is not None:
            check_size("micro_batch", self.micro_batch)
            if self.local_batch % self.micro_batch:
                raise FieldError(
                    "micro_batch",
                    self.micro_batch,
                    f"must divide the batch of one data-parallel replica ({self.local_batch})",
                )

    def _check_lora(self) -> None:
        if not isinstance(self.lora_targets, str):
            raise FieldError("lora_targets", self.lora_targets, "comma-separated projections")
        targets = [t.strip() for t in self.lora_targets.split(",")]
        for t in targets:
            if t not in LORA_TARGETS:
                raise FieldError(
                    "lora_targets", self.lora_targets, f"allowed: {', '.join(LORA_TARGETS)}"
                )
        if len(set(targets)) != len(targets):
            raise FieldError("lora_targets", self.lora_targets, "names a projection twice")
        if self.lora_rank is None:
            if set(targets) != set(LORA_TARGETS):
                raise FieldError(
                    "lora_targets", self.lora_targets, "applies with a LoRA rank (lora_rank)"
                )
            return
        check_size("lora_rank", self.lora_rank, maximum=MAX_LORA_RANK)
        if self.phase not in ("training", "inference"):  # inference: its forward pass
            raise FieldError(
                "lora_rank", self.lora_rank, "a LoRA fine-tune is a training run (phase training)"
            )

    @property
    def lora(self) -> frozenset[str]:
        """The projections LoRA adapts (empty: no LoRA)."""
        if self.lora_rank is None:
            return frozenset()
        return frozenset(t.strip() for t in self.lora_targets.split(","))

    @property
    def element_bytes(self) -> tuple[float, float, float]:
        """Bytes an element of (activations, weights, KV cache) as this run stores them."""
        nb = float(BYTES_PER_ELEMENT[self.dtype])
        weights = nb
        if self.weights is not None:
            weights = WEIGHT_FORMATS[self.weights].bytes_per_weight(self.group_size)
        kv = KV_BYTES[self.kv_dtype] if self.kv_dtype is not None else nb
        return nb, weights, kv

    @property
    def precision(self) -> str:
        """The datatype, and the storage formats where they differ from it:
        'fp16', 'fp16, int4 weights, fp8 KV cache'."""
        parts = [self.dtype]
        if self.weights not in (None, self.dtype):
            groups = f" in groups of {self.group_size}" if self.group_size else ""
            parts.append(f"{self.weights} weights{groups}")
        if self.lora_rank is not None:
            parts.append(f"LoRA rank {self.lora_rank} on {self.lora_targets}")
        if self.kv_dtype not in (None, self.dtype):
            parts.append(f"{self.kv_dtype} KV cache")
        if self.attention_dtype not in (None, self.dtype):
            parts.append(f"{self.attention_dtype} attention")
        return ", ".join(parts)

    @property
    def training(self) -> bool:
        return self.phase == "training"

    @property
    def local_batch(self) -> int:
        """Samples one data-parallel replica processes."""
        return self.batch // self.layout.data

    @property
    def micro_batch_size(self) -> int:
        """Samples per pipeline micro-batch (the default of `micro_batch` resolved)."""
        return int(self.micro_batch_of(self.local_batch))

    @property
    def micro_batches(self) -> int:
        """Micro-batches one replica runs per step (gradient accumulation when pipeline=1)."""
        return self.local_batch // self.micro_batch_size

    def micro_batch_of(self, local_batch: Any) -> Any:
        """The micro-batch size at a local batch of `local_batch` samples (an int, or a
        sweep's array of them): `micro_batch` where given; else the whole local batch
        without pipelining, 1 with it."""
        if self.micro_batch is not None:
            return 0 * local_batch + self.micro_batch
        return local_batch if self.layout.pipeline == 1 else 0 * local_batch + 1

    def replica(self) -> RunConfig:
        """The same run for one data-parallel replica on one device: the local batch, no
        layout. Per-layer costs are built for this and then split over the layout (without
        sequence parallelism the rows it would split are counted once per tensor rank:
        `replicated_over`)."""
        tensor = self.layout.tensor
        return replace(
            self,
            batch=self.local_batch,
            layout=SINGLE,
            micro_batch=None,
            replicated_over=1 if self.sequence_parallel else tensor,
        )

    def micro(self) -> RunConfig:
        """One micro-batch of a step on one device, no layout: the replica at
        `micro_batch_size` samples (its whole batch without pipelining or accumulation)."""
        return replace(self.replica(), batch=self.micro_batch_size)

    def forward(self) -> RunConfig:
        """The run's forward pass alone: a training run as phase inference (what its
        activations are made of and what recomputation runs again); other runs are
        forward passes already."""
        return replace(self, phase="inference") if self.training else self

    def scenario(
        self,
        batch: int,
        seq: int | None,
        context: int | None,
        dtype: str,
        data: int | None = None,
    ) -> RunConfig:
        """This run at one scenario of a sweep, checked as any run is: a sweep's axes own
        the batch, seq, context, dtype and (data) the data-parallel degree; the rest (phase,
        training settings, tensor and pipeline, micro-batch) is this run's."""
        layout = self.layout if data is None else replace(self.layout, data=data)
        return replace(self, batch=batch, seq=seq, context=context, dtype=dtype, layout=layout)

    def with_layout(self, layout: Layout) -> RunConfig:
        return replace(self, layout=layout)
