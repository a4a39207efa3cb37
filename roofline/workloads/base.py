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
  describe()        the architecture as plain data (default: the dataclass's fields)

Every answer but `describe` is abstract: a family that forgets one cannot be instantiated
(TypeError naming the method), so no family gets "no pipeline traffic" or "no KV cache" by
omission. Where nothing is a real answer (a CNN keeps no KV cache), the family says so in its
own class, with the reason.

A new family is a module here with `parse_architecture(Fields)` returning such a dataclass,
registered in `workloads.FAMILIES`; nothing outside `workloads/` changes. Its author runs
`workloads.checks.check_architecture` on a workload of it: the physical facts every family
keeps (FLOPs linear in batch, no negative bytes, pipeline traffic where there are blocks...).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, is_dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np

    from ..layers import LayerTable
    from ..scenario import RunConfig


@dataclass(frozen=True)
class TensorSplit:
    """What tensor parallelism (Megatron-style) splits: each named size must divide by the
    degree; each block all-reduces its output `allreduces_per_block` times in the forward
    pass (and as often again in the backward pass)."""

    dims: tuple[tuple[str, int], ...]
    allreduces_per_block: int


class Architecture(ABC):
    """The protocol; each family answers every member in its own class (see the module)."""

    family: ClassVar[str] = ""  # each family names itself (check_architecture checks it)

    @property
    @abstractmethod
    def takes_seq(self) -> bool:
        """Whether the run's `seq` (tokens a sample) applies to the model."""

    @property
    @abstractmethod
    def default_seq(self) -> int | None:
        """The tokens a sample when the run gives no seq (None: seq must be given, or the
        model takes no sequence)."""

    @property
    @abstractmethod
    def max_seq(self) -> int | None:
        """The longest seq the model takes (None: no limit, or no sequence)."""

    @property
    @abstractmethod
    def blocks(self) -> int:
        """Identical repeated blocks, the units a pipeline splits into stages (0: none)."""

    @property
    @abstractmethod
    def tensor_split(self) -> TensorSplit | None:
        """What tensor parallelism divides (None: not modelled for the family)."""

    @abstractmethod
    def build(self, run: RunConfig, model: str) -> LayerTable:
        """The forward LayerTable of one run; `model` names the model in errors."""

    @abstractmethod
    def kv_cache_elements(self, run: RunConfig) -> float:
        """Values kept between decode steps (K and V), whole batch (0: no decode step)."""

    @abstractmethod
    def boundary_elements(self, run: RunConfig) -> float:
        """Activation values crossing one block boundary, whole batch (0: no blocks)."""

    @abstractmethod
    def active_params(self, table: LayerTable) -> float:
        """Parameters one token uses, from the run's forward table."""

    @abstractmethod
    def attention_core(self, table: LayerTable) -> np.ndarray:
        """(rows,) bool: the rows selective recomputation recomputes."""

    def describe(self) -> dict[str, Any]:
        """The architecture as plain data (for `models show`): the dataclass's fields."""
        if not is_dataclass(self):
            raise NotImplementedError(
                f"{type(self).__name__} (family {self.family!r}) is not a dataclass: "
                "define describe() to give the architecture as plain data"
            )
        data: dict[str, Any] = asdict(self)
        return data


class Unsplit(Architecture):
    """The protocol's answers for a family that runs whole on one device and keeps nothing
    between steps: no repeated blocks (so no pipeline stages and no stage boundary), no
    tensor split, no KV cache, every parameter active (no routing), no attention core to
    recompute selectively. A family inherits it to say so; the protocol itself has no
    defaults (CNN op graphs, recommendation models and imported ONNX graphs do)."""

    @property
    def blocks(self) -> int:
        return 0

    @property
    def tensor_split(self) -> None:
        return None

    def kv_cache_elements(self, run: RunConfig) -> float:
        return 0.0

    def boundary_elements(self, run: RunConfig) -> float:
        return 0.0

    def active_params(self, table: LayerTable) -> float:
        return float(table.total_params)

    def attention_core(self, table: LayerTable) -> np.ndarray:
        import numpy as np

        return np.zeros(len(table), dtype=bool)
