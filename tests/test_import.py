"""Bring your own model: Hugging Face config.json files and ONNX graphs made here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from roofline.cli import app
from roofline.errors import SpecError
from roofline.scenario import RunConfig
from roofline.workloads import get_workload, load_workload_file

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


LLAMA_7B = {  # the fields of meta-llama/Llama-2-7b-hf's config.json
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}


@pytest.mark.parametrize(
    ("config", "params"),
    [
        (LLAMA_7B, 6_738_415_616),  # HF Llama-2-7b-hf
        (  # HF bert-large-uncased
            {
                "model_type": "bert",
                "hidden_size": 1024,
                "num_hidden_layers": 24,
                "num_attention_heads": 16,
                "intermediate_size": 4096,
                "vocab_size": 30522,
                "max_position_embeddings": 512,
                "type_vocab_size": 2,
                "hidden_act": "gelu",
            },
            335_141_888,
        ),
        (  # HF gpt2 (124M): 124,439,808
            {
                "model_type": "gpt2",
                "n_embd": 768,
                "n_layer": 12,
                "n_head": 12,
                "vocab_size": 50257,
                "n_positions": 1024,
                "activation_function": "gelu_new",
            },
            124_439_808,
        ),
        (  # HF t5-small: 60,506,624
            {
                "model_type": "t5",
                "d_model": 512,
                "d_ff": 2048,
                "d_kv": 64,
                "num_heads": 8,
                "num_layers": 6,
                "vocab_size": 32128,
                "feed_forward_proj": "relu",
            },
            60_506_624,
        ),
        (  # HF mistralai/Mixtral-8x7B-v0.1: 46,702,792,704
            {
                "model_type": "mixtral",
                "hidden_size": 4096,
                "intermediate_size": 14336,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "vocab_size": 32000,
                "max_position_embeddings": 32768,
                "hidden_act": "silu",
                "num_local_experts": 8,
                "num_experts_per_tok": 2,
            },
            46_702_792_704,
        ),
    ],
    ids=["llama-2-7b", "bert-large", "gpt2", "t5-small", "mixtral"],
)
def test_hf_configs_give_published_parameter_counts(tmp_path, config, params):
    w = load_workload_file(_write(tmp_path, "config.json", config))
    assert w.params == params


def test_hf_config_through_the_cli(tmp_path):
    path = _write(tmp_path, "config.json", LLAMA_7B)
    res = CliRunner().invoke(
        app, ["run", "-m", str(path), "--hw", "h100", "--seq", "128", "-f", "json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["summary"]["params"] == 6_738_415_616


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model_type": "falcon"}, "model_type: 'falcon' is not supported; supported: bert"),
        ({k: v for k, v in LLAMA_7B.items() if k != "hidden_size"}, "hidden_size: missing"),
        (LLAMA_7B | {"hidden_act": "mish"}, "hidden_act: activation 'mish' is not supported"),
        (LLAMA_7B | {"num_hidden_layers": 0}, "num_hidden_layers: expected a whole number >= 1"),
    ],
)
def test_hf_config_errors_name_the_field(tmp_path, config, message):
    path = _write(tmp_path, "config.json", config)
    with pytest.raises(SpecError, match=message):
        load_workload_file(path)
    res = CliRunner().invoke(app, ["run", "-m", str(path), "--hw", "a100"])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1


def _conv_net(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [
        numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w"),
        numpy_helper.from_array(np.zeros((4,), np.float32), "b"),
        numpy_helper.from_array(np.zeros((4, 5), np.float32), "fc"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("GlobalAveragePool", ["m"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "fc"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(nodes, "tiny_cnn", [x], [y], inits)
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_onnx_conv_net_by_hand(tmp_path):
    w = get_workload(str(_conv_net(tmp_path)))
    t = w.layers(RunConfig(batch=2, dtype="fp32"))
    names = [str(n) for n in t.name]
    assert names == ["conv", "relu", "pool", "gap", "fc"]  # Flatten is a free view
    conv = names.index("conv")  # 2 samples x 4 x 8 x 8 outputs x 27 MACs + bias
    assert t.flops[conv] == 2 * (2 * 4 * 64) * 27 + 2 * 4 * 64
    assert t.weight_bytes[conv] == 4 * (108 + 4)
    assert t.input_bytes[conv] == 4 * 2 * 3 * 64
    assert t.output_bytes[conv] == 4 * 2 * 4 * 64
    assert t.flops[names.index("pool")] == 4 * (2 * 4 * 16)
    assert t.flops[names.index("fc")] == 2 * 2 * 4 * 5
    assert t.kind[names.index("fc")] == "matmul"
    assert w.params == 108 + 4 + 20


def test_onnx_attention_pattern(tmp_path):
    # scores = softmax(Q K^T) V with Q, K, V graph inputs [batch, heads, seq, dim]
    shape = ["batch", 2, "seq", 4]
    q, k, v = (helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "qkv")
    out = helper.make_tensor_value_info("o", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["s"], name="scores"),
        helper.make_node("Softmax", ["s"], ["p"], axis=-1, name="softmax"),
        helper.make_node("MatMul", ["p", "v"], ["o"], name="context"),
        helper.make_node("LayerNormalization", ["o", "g", "bb"], ["n"], axis=-1, name="norm"),
    ]
    inits = [
        numpy_helper.from_array(np.ones(4, np.float32), "g"),
        numpy_helper.from_array(np.zeros(4, np.float32), "bb"),
    ]
    nout = helper.make_tensor_value_info("n", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "attn", [q, k, v], [out, nout], inits)
    path = tmp_path / "attn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    w = get_workload(str(path))
    t = w.layers(RunConfig(batch=3, seq=5))
    names = [str(n) for n in t.name]
    s = names.index("scores")  # 3 x 2 heads x (5 x 4) @ (4 x 5)
    assert t.kind[s] == "attention" and t.flops[s] == 2 * 3 * 2 * 5 * 5 * 4
    assert t.flops[names.index("softmax")] == 6 * 3 * 2 * 5 * 5
    assert t.flops[names.index("norm")] == 8 * 3 * 2 * 5 * 4
    with pytest.raises(Exception, match="give seq"):
        w.layers(RunConfig(batch=1))


def test_onnx_unsupported_operator_is_named(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Einsum", ["x", "x"], ["y"], equation="ij,ij->ij", name="mystery")
    path = tmp_path / "bad.onnx"
    graph = helper.make_graph([node], "bad", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(SpecError, match=r"operator Einsum \(node mystery\) is not supported"):
        get_workload(str(path))
    res = CliRunner().invoke(app, ["run", "-m", str(path), "--hw", "a100"])
    assert res.exit_code == 2 and "Einsum" in res.stderr
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf")
    res = CliRunner().invoke(app, ["run", "-m", str(garbage), "--hw", "a100"])
    assert res.exit_code == 2 and "cannot read ONNX model" in res.stderr


def test_onnx_gemm_with_transposed_weights(tmp_path):
    # y = x W^T + b with x [batch, 16], W [8, 16] (transB=1), b [8]: 16 x 8 MACs a sample
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [
        numpy_helper.from_array(np.zeros((8, 16), np.float32), "w"),
        numpy_helper.from_array(np.zeros(8, np.float32), "b"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1, name="dense"),
        helper.make_node("Sigmoid", ["h"], ["y"], name="gate"),
    ]
    path = tmp_path / "mlp.onnx"
    graph = helper.make_graph(nodes, "mlp", [x], [y], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    t = get_workload(str(path)).layers(RunConfig(batch=4, dtype="fp32"))
    assert t.flops[0] == 2 * 4 * 16 * 8 + 4 * 8
    assert t.weight_bytes[0] == 4 * (8 * 16 + 8)
    assert t.flops[1] == 3 * 4 * 8  # sigmoid: exp, add, divide
    assert t.total_params == 8 * 16 + 8


def _graph(tmp_path, x_shape, w_dims=(4, 5), name="bad.onnx"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=list(w_dims))
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "g", [x], [y], [w])
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize(
    ("x_shape", "w_dims", "message"),
    [
        (["batch", -3], (4, 5), "input 'x': dimension -3"),
        (["batch", 0], (4, 5), "input 'x': dimension 0"),
        (["batch", 4], (4, -5), "initializer 'w': negative dimension"),
        (["batch", "seq", 4], (4, 5), "give seq"),  # symbolic: refused until --seq is given
    ],
)
def test_onnx_malformed_graphs_refused_in_one_line(tmp_path, x_shape, w_dims, message):
    path = _graph(tmp_path, x_shape, w_dims)
    res = CliRunner().invoke(app, ["run", "-m", str(path), "--hw", "a100"])
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("roofline: error:") and message in line


def test_onnx_file_that_is_not_onnx(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00\x01not a protobuf at all" * 10)
    res = CliRunner().invoke(app, ["run", "-m", str(path), "--hw", "a100"])
    assert res.exit_code == 2 and "junk.onnx" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00binary\x00" * 20, "not a UTF-8 text file"),
        (b"[" * 100_000, "nested too deeply"),
        (b"", "malformed JSON"),
        (b'{"model_type": "llama", "hidden_size": NaN}', "hidden_size: expected a whole number"),
        (b'{"model_type": ["x"] }', "model_type: ['x'] is not supported"),
        (b'{"model_type": "' + b"x" * 10_000 + b'"}', "..."),  # long values are cut
    ],
)
def test_hostile_hf_configs_are_one_line(tmp_path, content, message):
    path = tmp_path / "m" / "config.json"
    path.parent.mkdir()
    path.write_bytes(content)
    res = CliRunner().invoke(app, ["run", "-m", str(path), "--hw", "a100"])
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()
    assert message in line and len(line) < 600, line
