"""Workloads: *what* runs. Load, validate and freeze `workloads/*.yaml`; build LayerTables.

A workload file names its `family`; each family has a module here whose
`parse_architecture(Fields)` returns a frozen architecture answering the family protocol
(`base.Architecture`: build, blocks, tensor split, KV cache, ...). Loaders of other formats
(a Hugging Face config.json, an ONNX graph) produce such an architecture too.
Adding a model of an existing family is a YAML file, no code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .._catalog import Catalog
from .._schema import Fields, Problems
from .._yaml import load_yaml_mapping
from ..dtypes import BYTES_PER_ELEMENT
from ..errors import FieldError, SpecError
from ..layers import LayerTable, fuse_epilogues, lora_rows, training_step
from ..scenario import Layout, RunConfig
from . import cnn, lstm, recsys, transformer
from .base import Architecture

# family name -> its parser of the `architecture:` mapping of a workload file
FAMILIES: dict[str, Callable[[Fields], Architecture | None]] = {
    "transformer": transformer.parse_architecture,
    "cnn": cnn.parse_architecture,
    "lstm": lstm.parse_architecture,
    "recsys": recsys.parse_architecture,
}


@dataclass(frozen=True)
class Published:
    """Figures as published in the dataset, in SI units (count, FLOP); None where blank."""

    date: str | None = None
    params: float | None = None
    active_params: float | None = None  # mixture of experts: parameters used per token
    features: float | None = None
    input_size: str | None = None
    inference_flops: float | None = None
    training_flops: float | None = None
    training_memory: TrainingMemory | None = None


@dataclass(frozen=True)
class TrainingMemory:
    """A row of the dataset's training-memory table, in bytes (GB = 1e9 bytes)."""

    input_size: str
    batch: int
    params_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    total_bytes: float


@dataclass(frozen=True)
class Training:
    """A published training run: how many samples of `seq` tokens were seen, and how."""

    samples: float
    seq: int | None
    optimizer: str
    note: str = ""


OPTIMIZERS = ("sgd", "sgd-momentum", "adam", "adamw", "adafactor", "lamb")
# what an erratum can be about: the published figures a validation compares, and the rest
# an input size as the dataset writes it: 224x224, 512 (tokens), ...
INPUT_SIZE = {"type": ["string", "integer", "number"]}
ERRATA_METRICS = ("params", "inference_flops", "training_flops", "date", "memory")


@dataclass(frozen=True)
class Erratum:
    """A published figure judged inconsistent, and why (shown by `roofline validate`)."""

    metric: str
    reason: str


@dataclass(frozen=True)
class Workload:
    key: str
    name: str
    arch: Architecture  # the family's frozen architecture (see base.Architecture)
    published: Published
    sources: tuple[str, ...]
    training: Training | None = None
    errata: tuple[Erratum, ...] = ()
    aliases: tuple[str, ...] = ()
    description: str = ""
    path: str = field(default="", compare=False)

    @property
    def family(self) -> str:
        return self.arch.family

    def layers(self, run: RunConfig) -> LayerTable:
        """The per-layer cost table of this workload for one scenario: the family's forward
        pass, and for training its backward pass and optimizer update (`training_step`)."""
        table = self.arch.build(run, self.key)
        frozen = None
        if run.lora_rank is not None:  # a LoRA fine-tune: only the adapters train
            frozen = ~lora_rows(table.name)
            if frozen.all():
                raise FieldError(
                    "lora_rank",
                    run.lora_rank,
                    f"{self.key} ({self.family}) has no projection LoRA adapters are modelled "
                    f"on among {run.lora_targets} (transformers: q, k, v, o, up, gate, down)",
                )
        if run.fused_epilogues:
            table = fuse_epilogues(table, run.phase == "training")
            frozen = None if frozen is None else ~lora_rows(table.name)
        if run.phase == "training":
            nb = BYTES_PER_ELEMENT[run.dtype]
            table = training_step(table, nb, run.optimizer, run.first_input_grad, frozen)
        return table

    def trainable_params(self, run: RunConfig) -> float:
        """Parameters whose gradients and optimizer state a training step of `run` keeps:
        every parameter, or in a LoRA fine-tune the adapters' only (the base is frozen)."""
        if run.lora_rank is None:
            return self.params
        small = replace(run, batch=1, seq=self.min_seq, layout=Layout(), micro_batch=None)
        table = self.layers(small)
        return float(np.sum(table.params[lora_rows(table.name)]))

    def check_layout(self, layout: Layout) -> None:
        """A clear error for a layout this model cannot be split by: tensor parallelism must
        divide the sizes the family splits, pipeline stages its repeated blocks (the batch
        split is RunConfig's own check)."""
        arch = self.arch
        if layout.tensor > 1:
            split = arch.tensor_split
            if split is None:
                raise FieldError(
                    "layout.tensor",
                    layout.tensor,
                    f"tensor parallelism is not modelled for {self.key} ({self.family})",
                )
            for name, size in split.dims:
                if size % layout.tensor:
                    raise FieldError(
                        "layout.tensor",
                        layout.tensor,
                        f"{self.key} has {size} {name}, not divisible by {layout.tensor}",
                    )
        if layout.pipeline > 1 and (not arch.blocks or arch.blocks % layout.pipeline):
            what = f"{arch.blocks} blocks" if arch.blocks else "no repeated blocks"
            raise FieldError(
                "layout.pipeline",
                layout.pipeline,
                f"{self.key} has {what}; they cannot be split into {layout.pipeline} stages",
            )

    @cached_property
    def params(self) -> float:
        """Parameter count computed from the architecture (independent of the scenario)."""
        return self.layers(RunConfig(batch=1, seq=self.min_seq)).total_params

    @cached_property
    def active_params(self) -> float:
        """Parameters one token uses (mixture of experts: all but the idle experts)."""
        return self.arch.active_params(self.layers(RunConfig(batch=1, seq=self.min_seq)))

    @property
    def min_seq(self) -> int | None:
        """The shortest valid --seq (None: the model takes one input size only)."""
        return 1 if self.arch.takes_seq else None

    def training_flops(
        self, samples: float | None = None, seq: int | None = None, how: RunConfig | None = None
    ) -> float | None:
        """FLOPs of a training run: one training step's FLOPs per sample (forward +
        backward, from the layer table) times the samples seen; by default the published
        run's samples and sequence (None when the catalog has no published run). `how`: a
        run whose LoRA settings apply (a fine-tune's step: the base's input gradients and
        the adapters', no weight gradients for the base)."""
        if samples is None:
            if self.training is None:
                return None
            samples, seq = self.training.samples, self.training.seq
        # per sample: forward + backward; the optimizer update runs once a step, not a sample
        run = RunConfig(batch=1, seq=seq, phase="training", optimizer=None)
        if how is not None and how.lora_rank is not None:
            run = replace(run, lora_rank=how.lora_rank, lora_targets=how.lora_targets)
        step = self.layers(run)
        return float(step.total_flops.sum()) * samples


def _training_memory(f: Fields | None) -> TrainingMemory | None:
    if f is None:
        return None
    raw_input = f.raw("input_size", INPUT_SIZE)
    batch = f.integer("batch")
    values = [f.number(k) for k in ("params_gb", "optimizer_gb", "activations_gb", "total_gb")]
    f.done()
    if raw_input is None:
        f.fail("input_size", "missing")
    if batch is None or raw_input is None or None in values:
        return None
    p, o, a, t = (v * 1e9 for v in values)  # type: ignore[operator]
    return TrainingMemory(str(raw_input), batch, p, o, a, t)


def parse_workload(data: dict[str, Any], source: str, key: str) -> Workload:
    problems = Problems()
    top = Fields(data, problems)
    name = top.text("name")
    aliases = top.names("aliases", required=False)
    description = top.text("description", required=False) or ""
    family = top.choice("family", tuple(FAMILIES))
    arch = None
    arch_fields = top.mapping("architecture")
    if arch_fields is not None and family:
        arch = FAMILIES[family](arch_fields)
    published = Published()
    pub = top.mapping("published", required=False)
    if pub is not None:
        written_size = pub.raw("input_size", INPUT_SIZE)
        gflops = pub.number("inference_gflops", required=False, nullable=True)
        pflops = pub.number("training_pflops", required=False, nullable=True)
        published = Published(
            date=pub.month("date", required=False),
            params=pub.number("params", required=False, nullable=True),
            active_params=pub.number("active_params", required=False, nullable=True),
            features=pub.number("features", required=False, nullable=True),
            input_size=None if written_size is None else str(written_size),
            inference_flops=gflops * 1e9 if gflops else None,
            training_flops=pflops * 1e15 if pflops else None,
            training_memory=_training_memory(pub.mapping("training_memory", required=False)),
        )
        pub.done()
    training = None
    tr = top.mapping("training", required=False)
    if tr is not None:
        samples = tr.number("samples", required=False)
        tokens = tr.number("tokens", required=False)
        seq = tr.integer("seq", required=tokens is not None)
        optimizer = tr.choice("optimizer", OPTIMIZERS)
        note = tr.text("note", required=False) or ""
        tr.done()
        if (samples is None) == (tokens is None):
            tr.fail("samples", "give either samples or tokens (tokens = samples x seq)")
        elif seq is not None or samples is not None:
            count = samples if samples is not None else (tokens or 0) / (seq or 1)
            training = Training(samples=count, seq=seq, optimizer=optimizer, note=note)
    errata = []
    for ef in top.items("errata"):
        metric = ef.choice("metric", ERRATA_METRICS)
        reason = ef.text("reason")
        ef.done()
        if metric and reason:
            errata.append(Erratum(metric, reason))
    sources = top.texts("sources")
    top.done()
    if problems:
        raise SpecError(source, problems)
    if name is None or arch is None:  # every path to here without a problem sets both
        raise SpecError(source, ["architecture: could not be read"])
    return Workload(
        key=key,
        name=name,
        arch=arch,
        published=published,
        sources=sources,
        training=training,
        errata=tuple(errata),
        aliases=aliases,
        description=description,
        path=source,
    )


MODEL_FILES = (".yaml", ".yml", ".json", ".onnx")


def _load(path: Path, shown: str) -> Workload:
    """A YAML file of the workload schema, a Hugging Face config.json or an ONNX graph."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        from .hf import load_hf_config, renamed

        key = path.parent.name.lower() if path.stem == "config" else path.stem.lower()
        doc, names = load_hf_config(path, shown)
        try:
            return parse_workload(doc, shown, key or "model")
        except SpecError as exc:  # in the config's own names, not the schema's
            raise SpecError(shown, [renamed(p, names) for p in exc.problems]) from None
    if suffix == ".onnx":
        from .onnx_graph import load_onnx

        workload: Workload = load_onnx(path, shown)
        return workload
    return parse_workload(load_yaml_mapping(path, shown), shown, path.stem.lower())


WORKLOADS: Catalog[Workload] = Catalog("workloads", "model", "model", _load, MODEL_FILES)


def load_workload_file(path: str | os.PathLike[str]) -> Workload:
    return WORKLOADS.load_file(path)


def list_workloads() -> list[Workload]:
    """All shipped workloads, by published date then name."""
    return sorted(WORKLOADS.items.values(), key=lambda w: (w.published.date or "9999", w.key))


def get_workload(name: str) -> Workload:
    """A workload by key, alias, or path to a model file (YAML, config.json, .onnx)."""
    return WORKLOADS.get(name)
