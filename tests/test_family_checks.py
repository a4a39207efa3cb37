"""check_architecture: every shipped family keeps the protocol's facts, and broken families
are refused with the member or the check named."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from roofline.layers import LayerTable
from roofline.scenario import RunConfig
from roofline.workloads import get_workload, list_workloads, load_workload_file
from roofline.workloads.base import Architecture, TensorSplit, Unsplit
from roofline.workloads.checks import CHECKS, ArchitectureCheckError, check_architecture
from roofline.workloads.cnn import CnnArch
from roofline.workloads.lstm import LstmArch
from roofline.workloads.onnx_graph import OnnxArch
from roofline.workloads.recsys import RecsysArch
from roofline.workloads.transformer import TransformerArch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "workloads"
PROTOCOL = {
    "takes_seq",
    "default_seq",
    "max_seq",
    "blocks",
    "tensor_split",
    "build",
    "kv_cache_elements",
    "boundary_elements",
    "active_params",
    "attention_core",
}


# ------------------------------------------------------------------ every shipped family


def _kind(arch: Architecture) -> str:
    if isinstance(arch, TransformerArch):
        if arch.experts:
            return "transformer moe"
        return "transformer vision" if arch.patch_size else f"transformer {arch.type}"
    return arch.family


def test_the_catalog_has_a_workload_of_every_kind_of_family():
    kinds = {_kind(w.arch) for w in list_workloads()}
    assert kinds >= {
        "transformer encoder",
        "transformer decoder",
        "transformer encoder-decoder",
        "transformer moe",
        "transformer vision",
        "cnn",
        "lstm",
        "recsys",
    }


@pytest.mark.parametrize("key", sorted(w.key for w in list_workloads()))
def test_every_shipped_workload_passes_the_checks(key):
    check_architecture(get_workload(key))


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_workloads_pass_the_checks(path):
    check_architecture(load_workload_file(path))


def test_an_architecture_alone_is_checked_too():
    check_architecture(get_workload("gpt-2").arch)


HF_CONFIGS = {
    "llama": {  # a small Llama: grouped-query attention, gated MLP, RMS norm
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 172,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 100,
        "max_position_embeddings": 64,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
    },
    "mixtral": {  # a small Mixtral: 4 experts, 2 a token
        "model_type": "mixtral",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "vocab_size": 50,
        "max_position_embeddings": 128,
        "hidden_act": "silu",
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
    },
    "bert": {
        "model_type": "bert",
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "vocab_size": 100,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "hidden_act": "gelu",
    },
}


@pytest.mark.parametrize("name", sorted(HF_CONFIGS))
def test_imported_hf_configs_pass_the_checks(tmp_path, name):
    path = tmp_path / name / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(HF_CONFIGS[name]))
    check_architecture(load_workload_file(path))


def _onnx_workloads(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    def save(graph, name):
        path = tmp_path / name
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        return load_workload_file(path)

    zeros = numpy_helper.from_array
    # a fixed-size conv net: conv, relu, pool, global pool, dense
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])
    conv_nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["m"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["y"], name="fc"),
    ]
    inits = [
        zeros(np.zeros((4, 3, 3, 3), np.float32), "w"),
        zeros(np.zeros(4, np.float32), "b"),
        zeros(np.zeros((4, 5), np.float32), "fc"),
    ]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    conv = save(helper.make_graph(conv_nodes, "conv", [x], [y], inits), "conv.onnx")
    # attention over a symbolic sequence, then a layer norm: takes seq, has no default
    shape = ["batch", 2, "seq", 4]
    q, k, v = (helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "qkv")
    attn_nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["s"], name="scores"),
        helper.make_node("Softmax", ["s"], ["p"], axis=-1, name="softmax"),
        helper.make_node("MatMul", ["p", "v"], ["o"], name="context"),
        helper.make_node("LayerNormalization", ["o", "g", "bb"], ["n"], axis=-1, name="norm"),
    ]
    inits = [zeros(np.ones(4, np.float32), "g"), zeros(np.zeros(4, np.float32), "bb")]
    n = helper.make_tensor_value_info("n", TensorProto.FLOAT, None)
    attention = save(helper.make_graph(attn_nodes, "attn", [q, k, v], [n], inits), "attn.onnx")
    return conv, attention


def test_onnx_graphs_built_here_pass_the_checks(tmp_path):
    conv, attention = _onnx_workloads(tmp_path)
    assert not conv.arch.takes_seq and attention.arch.takes_seq
    check_architecture(conv)
    check_architecture(attention)


# ------------------------------------------------------------------ the protocol itself


def test_every_member_of_the_protocol_is_abstract():
    """No silent defaults: a family that forgets a member cannot be made."""
    assert Architecture.__abstractmethods__ == PROTOCOL


@pytest.mark.parametrize("family", [TransformerArch, CnnArch, LstmArch, RecsysArch, OnnxArch])
def test_each_family_answers_every_member_in_its_own_class(family):
    """In the family's class, or by inheriting base.Unsplit, which says it for a family
    that runs whole and keeps nothing (never a default of the protocol itself)."""
    assert family.family
    answered = set(vars(family)) | (set(vars(Unsplit)) if issubclass(family, Unsplit) else set())
    missing = PROTOCOL - answered
    assert not missing, sorted(missing)


def test_every_check_is_public_named_and_documented():
    for check in CHECKS:
        assert check.__name__.startswith("check_") and check.__doc__, check


def _toy_members() -> dict[str, Any]:
    """A complete family from scratch: a recommendation model answered member by member."""
    inner = get_workload("baidu-recsys-c").arch

    def table(self: Any, run: RunConfig, model: str) -> LayerTable:
        return inner.build(run, model)

    return {
        "family": "toy",
        "takes_seq": property(lambda self: False),
        "default_seq": property(lambda self: None),
        "max_seq": property(lambda self: None),
        "blocks": property(lambda self: 0),
        "tensor_split": property(lambda self: None),
        "build": table,
        "kv_cache_elements": lambda self, run: 0.0,
        "boundary_elements": lambda self, run: 0.0,
        "active_params": lambda self, table: table.total_params,
        "attention_core": lambda self, table: np.zeros(len(table), dtype=bool),
        "describe": lambda self: {"toy": True},
    }


def test_a_complete_family_from_scratch_passes():
    toy = type("Toy", (Architecture,), _toy_members())
    check_architecture(toy())


@pytest.mark.parametrize("member", sorted(PROTOCOL))
def test_a_family_that_forgets_a_member_is_refused_with_its_name(member):
    members = _toy_members()
    del members[member]
    forgetful = type("Forgetful", (Architecture,), members)
    with pytest.raises(TypeError, match=member):
        forgetful()
    with pytest.raises(ArchitectureCheckError, match=f"does not answer {member}") as info:
        check_architecture(forgetful)
    assert info.value.check == "protocol"


def test_describe_of_a_family_that_is_not_a_dataclass_names_both():
    members = _toy_members()
    del members["describe"]
    toy = type("Toy", (Architecture,), members)
    with pytest.raises(NotImplementedError, match=r"Toy \(family 'toy'\).*describe\(\)"):
        toy().describe()
    with pytest.raises(ArchitectureCheckError, match="check_describe_is_json"):
        check_architecture(toy())


def test_only_architectures_and_workloads_are_checked():
    with pytest.raises(TypeError, match="Workload or an Architecture"):
        check_architecture("gpt-2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="instance of RecsysArch"):
        check_architecture(RecsysArch)


# ------------------------------------------------------------------ broken families


def _broken(key: str, cls: type) -> Architecture:
    """The architecture of `key` as an instance of `cls`, a subclass that breaks one fact."""
    arch = get_workload(key).arch
    assert isinstance(arch, cls.__mro__[1])
    return cls(**{f.name: getattr(arch, f.name) for f in fields(arch)})


class NegativeBytes(RecsysArch):
    def build(self, run, model):
        table = super().build(run, model)
        return replace(table, input_bytes=-table.input_bytes)


class Unnamed(RecsysArch):
    family: ClassVar[str] = ""


class QuadraticInBatch(RecsysArch):
    def build(self, run, model):
        table = super().build(run, model)
        return replace(table, flops=table.flops * run.batch)


class ParamsGrowWithBatch(RecsysArch):
    def build(self, run, model):
        table = super().build(run, model)
        return replace(table, params=table.params * run.batch)


class MoreActiveThanAll(TransformerArch):
    def active_params(self, table):
        return 2 * table.total_params


class CheapBackward(TransformerArch):
    def build(self, run, model):
        table = super().build(run, model)
        return replace(table, flops=table.flops / 4) if run.phase == "training" else table


class NoPipelineTraffic(TransformerArch):
    def boundary_elements(self, run):
        return 0.0


class CacheIgnoresContext(TransformerArch):
    def kv_cache_elements(self, run):
        return float(run.batch * 1000)


class DecodesWithoutCache(TransformerArch):
    def kv_cache_elements(self, run):
        return 0.0


class NoAllReduce(TransformerArch):
    @property
    def tensor_split(self):
        return TensorSplit((("heads", self.heads),), allreduces_per_block=0)


class LimitNotEnforced(LstmArch):
    @property
    def max_seq(self):
        return self.max_positions // 2

    @property
    def default_seq(self):
        return self.max_positions // 2


class NotJson(CnnArch):
    def describe(self):
        return {"input": object()}


class WeightsInTheCore(TransformerArch):
    def attention_core(self, table):
        return np.ones(len(table), dtype=bool)


class CrashingBuild(CnnArch):
    def build(self, run, model):
        raise ValueError("a builder bug")


@pytest.mark.parametrize(
    ("key", "cls", "check"),
    [
        ("baidu-recsys-c", NegativeBytes, "check_costs_non_negative"),
        ("baidu-recsys-c", Unnamed, "check_family_named"),
        ("baidu-recsys-c", QuadraticInBatch, "check_flops_linear_in_batch"),
        ("baidu-recsys-c", ParamsGrowWithBatch, "check_params_match_the_workload"),
        ("mixtral-8x7b", MoreActiveThanAll, "check_active_params_at_most_params"),
        ("bert-large", CheapBackward, "check_training_costs_more_than_inference"),
        ("gpt-2", NoPipelineTraffic, "check_boundary_traffic"),
        ("t5-base", CacheIgnoresContext, "check_kv_cache"),
        ("gpt-2", DecodesWithoutCache, "check_decode_follows_the_kv_cache"),
        ("gpt-2", NoAllReduce, "check_protocol_answers"),
        ("elmo", LimitNotEnforced, "check_seq_limits"),
        ("resnet-50", NotJson, "check_describe_is_json"),
        ("gpt-2", WeightsInTheCore, "check_attention_core_mask"),
        ("resnet-50", CrashingBuild, "check_table_well_formed"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_a_broken_family_is_refused_naming_the_check(key, cls, check):
    with pytest.raises(ArchitectureCheckError) as info:
        check_architecture(_broken(key, cls))
    assert info.value.check == check
    message = str(info.value)
    assert f"fails {check}: " in message and "\n" not in message
    doc = " ".join((next(c for c in CHECKS if c.__name__ == check).__doc__ or "").split())
    assert message.endswith(f"[{doc}]")  # the physical fact the check enforces


def test_the_message_says_what_was_seen():
    with pytest.raises(ArchitectureCheckError) as info:
        check_architecture(_broken("baidu-recsys-c", NegativeBytes))
    assert info.value.problem == "inference: input_bytes of row mlp1 is -32000.0"
    with pytest.raises(ArchitectureCheckError) as info:
        check_architecture(_broken("gpt-2", NoPipelineTraffic))
    assert "48 blocks but no boundary traffic" in info.value.problem
    with pytest.raises(ArchitectureCheckError, match="ValueError: a builder bug"):
        check_architecture(_broken("resnet-50", CrashingBuild))
