"""RunConfig: *how* a workload runs (batch, sequence, datatype, phase)."""

from __future__ import annotations

from dataclasses import dataclass

from .dtypes import check_dtype
from .errors import RooflineError

PHASES = ("inference", "training")


@dataclass(frozen=True)
class RunConfig:
    """One scenario. `seq` is tokens per sample for sequence models (ignored by others)."""

    batch: int = 1
    seq: int | None = None  # None: the model's own default input size
    dtype: str = "fp16"
    phase: str = "inference"

    def __post_init__(self) -> None:
        for flag, value in (("--batch", self.batch), ("--seq", self.seq)):
            if value is None and flag == "--seq":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise RooflineError(f"{flag} {value}: must be a whole number >= 1")
        check_dtype(self.dtype)
        if self.phase not in PHASES:
            raise RooflineError(f"--phase {self.phase!r}: allowed: {', '.join(PHASES)}")
