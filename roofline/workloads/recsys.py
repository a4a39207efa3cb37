"""The embedding-table family (recommendation models): huge sparse embedding tables looked
up once per feature slot, concatenated, then a small MLP. Almost all parameters sit in the
tables and almost none are touched per sample, so the work is a memory-bound gather.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .._schema import Fields
from ..errors import FieldError, shown
from ..layers import LayerTable, LayerTableBuilder
from ..scenario import RunConfig
from . import costs
from .base import Unsplit


@dataclass(frozen=True)
class RecsysArch(Unsplit):
    family: ClassVar[str] = "recsys"
    rows: float  # embedding rows in all tables together (hashed feature ids)
    dim: int  # embedding size
    slots: int  # feature slots looked up per sample
    mlp: tuple[int, ...]  # hidden sizes and the output size
    activation: str

    # The family protocol (base.Architecture): one lookup and one small MLP a sample, no
    # sequence; whole on one device, nothing kept between steps (Unsplit). "Active" is
    # about routing: a sample reads only `slots` rows of the tables, but routes none away.

    @property
    def takes_seq(self) -> bool:
        """No: a sample is `slots` feature ids, not a sequence."""
        return False

    @property
    def default_seq(self) -> None:
        return None

    @property
    def max_seq(self) -> None:
        return None

    def build(self, run: RunConfig, model: str) -> LayerTable:
        return build(self, run, model)


def parse_architecture(f: Fields) -> RecsysArch | None:
    rows = f.number("rows")
    dim = f.integer("dim")
    slots = f.integer("slots")
    mlp = f.raw(
        "mlp",
        {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
        required=True,
    )
    activation = f.choice("activation", tuple(costs.ACTIVATIONS))
    f.done()
    if not (isinstance(mlp, list) and mlp and all(isinstance(v, int) and v > 0 for v in mlp)):
        f.fail("mlp", f"expected a list of layer sizes > 0, got {shown(mlp)}")
        return None
    if rows is None or dim is None or slots is None:
        return None
    return RecsysArch(rows, dim, slots, tuple(mlp), activation)


def build(arch: RecsysArch, run: RunConfig, model: str) -> LayerTable:
    if run.seq is not None:
        raise FieldError("seq", run.seq, f"{model} is a recommendation model: it takes no seq")
    if run.phase in ("prefill", "decode"):
        raise FieldError(
            "phase", run.phase, f"{model} is a recommendation model: use inference or training"
        )
    a, b = arch, run.batch
    out = LayerTableBuilder()
    width = a.slots * a.dim
    out.add(
        "embedding_lookup",
        "embedding",
        flops=0,
        weights=b * width,
        inputs=0,
        outputs=b * width,
        params=a.rows * a.dim,
    )
    d = width
    for i, n in enumerate(a.mlp, start=1):
        out.linear(f"mlp{i}", b, d, n, bias=True)
        if i < len(a.mlp):
            out.add(
                f"mlp{i}.act",
                "activation",
                flops=costs.ACTIVATIONS[a.activation] * b * n,
                inputs=b * n,
                outputs=b * n,
                saved=b * n,
                transcendentals=costs.TRANSCENDENTALS[a.activation] * b * n,
                fuse_aux=0 if a.activation == "relu" else b * n,  # in mlp{i}'s epilogue
            )
        d = n
    return out.build(*run.element_bytes)
