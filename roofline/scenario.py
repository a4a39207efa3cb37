"""RunConfig: *how* a workload runs (batch, sequence, context, datatype, phase)."""

from __future__ import annotations

from dataclasses import dataclass

from .dtypes import check_dtype
from .errors import RooflineError

# inference: one forward pass over batch x seq tokens (for a decoder this is the prefill);
# prefill: the same, named for decoders; decode: one new token per sample against `context`
# cached keys and values; training: forward + backward.
PHASES = ("inference", "prefill", "decode", "training")


@dataclass(frozen=True)
class RunConfig:
    """One scenario. `seq` is tokens per sample (None: the model's own default input size);
    `context` is the number of cached tokens a decode step attends to (None: `seq`)."""

    batch: int = 1
    seq: int | None = None
    dtype: str = "fp16"
    phase: str = "inference"
    context: int | None = None
    optimizer: str | None = "adam"  # training: whose update is part of the step (None: none)

    def __post_init__(self) -> None:
        for flag, value in (
            ("--batch", self.batch),
            ("--seq", self.seq),
            ("--context", self.context),
        ):
            if value is None and flag != "--batch":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise RooflineError(f"{flag} {value}: must be a whole number >= 1")
        check_dtype(self.dtype)
        if self.phase not in PHASES:
            raise RooflineError(f"--phase {self.phase!r}: allowed: {', '.join(PHASES)}")
        if self.optimizer is not None:
            from .optimizers import check_optimizer

            check_optimizer(self.optimizer)
        if self.context is not None and self.phase != "decode":
            raise RooflineError(f"--context {self.context}: applies to --phase decode only")
