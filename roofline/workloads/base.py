"""The family protocol: everything code outside `workloads/` may ask of an architecture.

Each family's frozen architecture dataclass (transformer, CNN, LSTM, recsys) and the
product of each loader (an imported ONNX graph) derives from `Architecture` and answers:

  family            the family's name, for tables and the command matrix
  takes_seq         whether --seq applies (text models), default_seq and max_seq
  blocks            how many identical blocks the model repeats (the units a pipeline splits
                    into stages); 0: not modelled as repeated blocks (no pipeline)
  tensor_split      the sizes tensor parallelism divides and the all-reduces it needs per
                    block; None: tensor parallelism is not modelled for the family
  build(run)        the forward LayerTable of one run (the backward pass and the optimizer
                    update are added by `layers.training_step`, the same for every family);
                    rows that may run in the epilogue of the GEMM before them carry
                    `fuse_aux` (LayerTableBuilder.add), the family's own knowledge
  kv_cache_elements values kept between decode steps (K and V), whole batch
  boundary_elements activation values crossing one block boundary, whole batch (pipeline
                    sends; tensor-parallel all-reduces are of this size)
  active_params     parameters one token uses (mixture of experts: not the idle experts)
  attention_core    which rows selective recomputation recomputes (Korthikanti et al.
                    2022: the attention's scores, softmax and context), as a row mask

A new family is a module here with `parse_architecture(Fields)` returning such a dataclass,
registered in `workloads.FAMILIES`; nothing outside `workloads/` changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from ..layers import LayerTable
    from ..scenario import RunConfig


@dataclass(frozen=True)
class TensorSplit:
    """What tensor parallelism (Megatron-style) splits: each named size must divide by the
    degree; each block all-reduces its output `allreduces_per_block` times in the forward
    pass (and as often again in the backward pass)."""

    dims: tuple[tuple[str, int], ...]
    allreduces_per_block: int


class Architecture:
    """Defaults for the protocol; families override what applies to them."""

    family: ClassVar[str] = ""

    @property
    def takes_seq(self) -> bool:
        return False

    @property
    def default_seq(self) -> int | None:
        return None

    @property
    def max_seq(self) -> int | None:
        return None

    @property
    def blocks(self) -> int:
        return 0

    @property
    def tensor_split(self) -> TensorSplit | None:
        return None

    def build(self, run: RunConfig, model: str) -> LayerTable:
        raise NotImplementedError

    def kv_cache_elements(self, run: RunConfig) -> float:
        return 0.0

    def boundary_elements(self, run: RunConfig) -> float:
        return 0.0

    def active_params(self, table: LayerTable) -> float:
        return table.total_params

    def attention_core(self, table: LayerTable) -> np.ndarray:
        return np.zeros(len(table), dtype=bool)

    def describe(self) -> dict[str, Any]:
        """The architecture as plain data (for `models show`)."""
        data: dict[str, Any] = asdict(self)  # type: ignore[call-overload]
        return data
