"""Each layer family on a small model whose FLOPs, bytes and parameters are computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from roofline.errors import RooflineError, SpecError
from roofline.scenario import RunConfig
from roofline.validate import active_params
from roofline.workloads import get_workload, load_workload_file


def _load(tmp_path, text: str, name: str = "tiny.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_workload_file(path)


def _row(table, name):
    names = [str(n) for n in table.name]
    assert name in names, names
    return names.index(name)


CNN = """\
name: tiny cnn
family: cnn
architecture:
  input: [2, 8, 8]
  defaults: {bn: true, act: relu, bias: false}
  layers:
    - {conv: 4, k: 3, name: stem}
    - {residual: [{conv: 4, k: 3, act: none}], act: relu, name: res}
    - {concat: [[{conv: 2, k: 1}], []], name: mix}
    - {maxpool: 2}
    - {avgpool: global}
    - {fc: 3, name: fc}
sources: ["hand-made"]
"""


def test_cnn_by_hand(tmp_path):
    w = _load(tmp_path, CNN)
    t = w.layers(RunConfig(batch=2, dtype="fp32"))
    # stem: 2 -> 4 channels, 3x3 same padding on 8x8: 64 outputs x 4 x (2 x 9) MACs
    i = _row(t, "stem")
    assert t.flops[i] == 2 * (2 * 64 * 4 * 2 * 9)  # batch 2
    assert t.params[i] == 4 * 2 * 9
    assert t.bytes[i] == 4 * (72 + 2 * 2 * 64 + 2 * 4 * 64)  # weights, input, output in fp32
    assert t.flops[_row(t, "stem.bn")] == 2 * 2 * 256  # 2 FLOPs an element (folded BN)
    assert t.flops[_row(t, "stem.act")] == 2 * 256
    assert t.flops[_row(t, "res.conv1")] == 2 * (2 * 64 * 4 * 4 * 9)
    assert t.flops[_row(t, "res.add")] == 2 * 256
    assert t.bytes[_row(t, "res.add")] == 4 * 2 * (2 * 256 + 256)  # read two, write one
    assert t.flops[_row(t, "mix.b1.conv1")] == 2 * (2 * 64 * 2 * 4)
    concat = _row(t, "mix.concat")  # 4 + 2 channels of 8x8, copied
    assert t.flops[concat] == 0 and t.bytes[concat] == 4 * 2 * (2 * 6 * 64)
    assert t.flops[_row(t, "maxpool1")] == 2 * (4 * 6 * 16)  # 2x2 window per output
    assert t.flops[_row(t, "avgpool1")] == 2 * 6 * 16
    assert t.flops[_row(t, "fc")] == 2 * (2 * 6 * 3 + 3)
    # parameters: stem 72 + bn 8, res conv 144 + bn 8, mix conv 8 + bn 4, fc 6 x 3 + 3
    assert t.total_params == 72 + 8 + 144 + 8 + 8 + 4 + 21


def test_cnn_grouped_depthwise_and_repeat(tmp_path):
    text = CNN.replace(
        "    - {conv: 4, k: 3, name: stem}\n",
        "    - {conv: 4, k: 3, name: stem}\n"
        "    - {conv: 4, k: 3, groups: 2, name: grouped}\n"
        "    - {sepconv: 8, k: 3, name: sep}\n"
        "    - {conv: 4, k: 1, name: squeeze}\n"
        "    - {ops: [{conv: 4, k: 3}], repeat: 5, name: stage}\n",
    )
    t = _load(tmp_path, text).layers(RunConfig(batch=1))
    assert t.params[_row(t, "grouped")] == 4 * (4 // 2) * 9  # each output sees 2 inputs
    assert t.params[_row(t, "sep.depthwise")] == 4 * 1 * 9  # one 3x3 filter a channel
    assert t.params[_row(t, "sep.pointwise")] == 8 * 4
    i = _row(t, "stage[1-5].conv1")  # shape kept: five identical passes, one row
    assert t.count[i] == 5
    assert t.params[i] == 5 * 4 * 4 * 9


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{maxpool: 2}", "{maxpool: 16}", "does not fit a 8x8 input"),
        ("{conv: 2, k: 1}", "{conv: 2, k: 1, s: 2}", "concat: branch outputs differ"),
        ("{conv: 4, k: 3, act: none}", "{conv: 5, k: 3, act: none}", "residual: branch gives"),
        ("{fc: 3, name: fc}", "{fc: 3, nmae: fc}", "fc: unknown option"),
        ("{avgpool: global}", "{avgpool: global, conv: 3}", "name exactly one operation"),
        ("{conv: 4, k: 3, name: stem}", "{conv: 4, k: 3, groups: 3, name: stem}", "groups: must"),
        ("input: [2, 8, 8]", "input: [2, 8]", "input: expected"),
    ],
)
def test_cnn_errors_name_the_op(tmp_path, old, new, message):
    with pytest.raises(SpecError, match=message) as info:
        _load(tmp_path, CNN.replace(old, new))
    assert "tiny.yaml" in str(info.value)


def test_cnn_takes_no_sequence(tmp_path):
    with pytest.raises(RooflineError, match="is a CNN"):
        _load(tmp_path, CNN).layers(RunConfig(seq=8))


LSTM = """\
name: tiny lstm
family: lstm
architecture:
  layers: 2
  hidden: 3
  vocab: 10
  embedding_dim: 4
  softmax_vocab: 10
  max_positions: 8
sources: ["hand-made"]
"""


def test_lstm_by_hand(tmp_path):
    t = _load(tmp_path, LSTM).layers(RunConfig(batch=2, seq=5, dtype="fp32"))
    tokens = 10
    i = _row(t, "lstm.layer1.input_gemm")  # 4 inputs -> 4 gates x 3 cells, + gate bias
    assert t.flops[i] == 2 * tokens * 4 * 12 + tokens * 12
    assert t.params[i] == 4 * 3 * 4 + 12
    r = _row(t, "lstm.layer1.recurrent_gemm")  # one row per time step: 5 steps
    assert t.count[r] == 5
    assert t.flops[r] == 2 * 2 * 3 * 12 + 2 * 12  # batch 2 x state 3 -> 12 gates, + bias
    assert t.weight_bytes[r] == 4 * (12 * 3)  # re-read at every step
    assert t.params[r] == 12 * 3  # but the same parameters
    assert t.flops[_row(t, "lstm.layer1.cell")] == 15 * tokens * 3
    assert t.flops[_row(t, "lstm.layer2.input_gemm")] == 2 * tokens * 3 * 12 + tokens * 12
    assert t.flops[_row(t, "softmax.logits")] == 2 * tokens * 3 * 10 + tokens * 10
    # embedding 40, layer 1: 60 + 36, layer 2: 48 + 36, softmax 3 x 10 + 10
    assert t.total_params == 40 + 60 + 36 + 48 + 36 + 40
    # kept for backward, per layer: the input of the input GEMM (layer 1: 10 x 4, layer 2:
    # 10 x 3), the previous state at each of 5 steps (2 x 3), gates and cell (10 x 15); then
    # the logits' input (10 x 3) and the probabilities (10 x 10), 4 bytes each
    layers = (10 * 4 + 5 * 6 + 150) + (10 * 3 + 5 * 6 + 150)
    assert t.total_saved_bytes == 4 * (layers + 10 * 3 + 10 * 10)


RECSYS = """\
name: tiny recsys
family: recsys
architecture: {rows: 1000, dim: 4, slots: 3, mlp: [5, 1], activation: relu}
sources: ["hand-made"]
"""


def test_recsys_by_hand(tmp_path):
    t = _load(tmp_path, RECSYS).layers(RunConfig(batch=2, dtype="fp32"))
    i = _row(t, "embedding_lookup")
    assert t.params[i] == 4000
    assert t.weight_bytes[i] == 4 * 2 * 3 * 4  # only the 3 looked-up rows a sample are read
    assert t.flops[_row(t, "mlp1")] == 2 * 2 * 12 * 5 + 2 * 5
    assert t.total_params == 4000 + (12 * 5 + 5) + (5 + 1)


DECODER = """\
name: tiny decoder
family: transformer
architecture:
  type: decoder
  layers: 2
  hidden: 8
  heads: 4
  kv_heads: 2
  ffn: 16
  ffn_gated: true
  activation: silu
  vocab: 10
  max_positions: 32
  position: rotary
  norm: rmsnorm
  norm_position: pre
  bias: false
  head: lm
  tie_embeddings: false
sources: ["hand-made"]
"""


def test_grouped_query_attention_and_gated_ffn(tmp_path):
    t = _load(tmp_path, DECODER).layers(RunConfig(batch=1, seq=4, dtype="fp16"))
    # 4 query heads of 2, 2 KV heads of 2: Q 8 + K 4 + V 4 = 16 outputs, no bias
    assert t.params[_row(t, "block.attn.qkv_proj")] == 2 * 8 * 16
    assert t.flops[_row(t, "block.attn.qkv_proj")] == 2 * 4 * 8 * 16
    assert t.params[_row(t, "block.ffn_up")] == 2 * 8 * 32  # gate and up: 2 x 16
    assert t.flops[_row(t, "block.ffn_act")] == (4 + 1) * 4 * 16  # SiLU 4 + gate multiply 1
    assert t.params[_row(t, "block.attn_norm")] == 2 * 8  # RMS norm: scale only
    assert t.params[_row(t, "lm_head")] == 8 * 10  # untied


def test_decode_step_reads_the_kv_cache(tmp_path):
    w = _load(tmp_path, DECODER)
    t = w.layers(RunConfig(batch=3, dtype="fp16", phase="decode", context=20))
    s = _row(t, "block.attn.scores")
    # one query per sample, 4 heads of 2 dims, against 20 cached keys and its own: 21
    assert t.flops[s] == 2 * 3 * 4 * 1 * 21 * 2
    assert t.input_bytes[s] == 2 * (3 * 8 + 3 * 21 * 4)  # Q of the new tokens + K cache
    c = _row(t, "block.attn.context")
    assert t.input_bytes[c] == 2 * (3 * 4 * 21 + 3 * 21 * 4)  # probabilities + V cache
    assert t.flops[_row(t, "block.attn.qkv_proj")] == 2 * 3 * 8 * 16  # 3 new tokens
    assert t.flops[_row(t, "lm_head")] == 2 * 3 * 8 * 10
    with pytest.raises(RooflineError, match="context 64: tiny takes at most 32"):
        w.layers(RunConfig(phase="decode", context=64))
    with pytest.raises(RooflineError, match="applies to phase decode only"):
        RunConfig(context=5)


MOE = DECODER.replace(
    "  tie_embeddings: false\n", "  tie_embeddings: false\n  experts: 4\n  top_k: 2\n"
)


def test_mixture_of_experts(tmp_path):
    w = _load(tmp_path, MOE)
    t = w.layers(RunConfig(batch=1, seq=3, dtype="fp16"))
    up = _row(t, "block.moe.expert_up")
    # 3 tokens x 2 experts each, gated: 8 -> 32
    assert t.flops[up] == 2 * (3 * 2) * 8 * 32
    assert t.params[up] == 2 * 4 * 8 * 32  # 4 experts in each of 2 layers
    # expected experts touched by 3 tokens choosing 2 of 4: 4 x (1 - (1/2)^3) = 3.5
    assert t.weight_bytes[up] == 2 * 3.5 * 8 * 32
    assert t.flops[_row(t, "block.moe.router")] == 2 * 3 * 8 * 4
    expert = 2 * 4 * (8 * 32 + 16 * 8)  # up + down, 4 experts, 2 layers
    assert active_params(w) == w.params - expert / 2  # 2 of 4 experts idle per token


ENC_DEC = """\
name: tiny seq2seq transformer
family: transformer
architecture:
  type: encoder-decoder
  layers: 1
  decoder_layers: 2
  hidden: 4
  heads: 2
  ffn: 8
  activation: relu
  vocab: 10
  max_positions: 16
  position: sinusoidal
  norm: layernorm
  norm_position: post
  bias: true
  head: lm
  tie_embeddings: true
sources: ["hand-made"]
"""


def test_encoder_decoder(tmp_path):
    w = _load(tmp_path, ENC_DEC)
    t = w.layers(RunConfig(batch=1, seq=6, dtype="fp32"))
    assert t.count[_row(t, "encoder.block.attn.qkv_proj")] == 1
    assert t.count[_row(t, "decoder.block.cross.q_proj")] == 2
    kv = _row(t, "decoder.block.cross.kv_proj")  # encoder output 6 tokens -> K and V
    assert t.flops[kv] == 2 * 6 * 4 * 8 + 6 * 8
    assert t.params[_row(t, "decoder.embeddings")] == 0  # shares the encoder's table
    assert t.params[_row(t, "lm_head")] == 0  # tied
    # encoder block 4*(16+4) + 8 + (32+8) + (32+4) + 8 = 172; decoder block adds cross-attn
    # (80) and its norm (8): 260; embeddings 40; 1 encoder + 2 decoder blocks
    assert w.params == 40 + 172 + 2 * 260
    d = w.layers(RunConfig(batch=1, seq=6, phase="decode", context=3))
    names = [str(n) for n in d.name]
    assert not any(n.startswith("encoder.") for n in names)  # the encoder ran at prefill
    assert "decoder.block.cross.kv_proj" not in names  # cross K/V come from the cache


def test_shared_layers_count_parameters_once(tmp_path):
    text = (
        ENC_DEC.replace("type: encoder-decoder", "type: encoder")
        .replace("  decoder_layers: 2\n", "")
        .replace("head: lm", "head: none")
        .replace("  layers: 1\n", "  layers: 3\n")
    )
    plain = _load(tmp_path, text, "plain.yaml")
    shared_text = text.replace("  bias: true\n", "  bias: true\n  shared_layers: true\n")
    shared = _load(tmp_path, shared_text, "shared.yaml")
    assert plain.params - shared.params == 2 * 172  # two of three blocks are not stored
    a = plain.layers(RunConfig(seq=5)).total_flops.sum()
    b = shared.layers(RunConfig(seq=5)).total_flops.sum()
    assert a == b  # but every layer still runs


def test_encoder_cannot_decode():
    from roofline.workloads import get_workload

    with pytest.raises(RooflineError, match="bert-large is an encoder"):
        get_workload("bert-large").layers(RunConfig(phase="decode"))


def test_gemm_shapes_of_every_model_account_for_their_flops():
    """Each GEMM-like row carries (groups, m, n, k) with 2 g m n k = its FLOPs (up to the
    bias add, < 3.2 % here), for every catalog model; training keeps the forward shapes."""
    from roofline import list_workloads

    for w in list_workloads():
        t = w.layers(RunConfig(batch=2))
        gemm = t.gemm_groups > 0
        assert np.array_equal(gemm, np.isin(t.kind, ["matmul", "conv", "attention"])), w.key
        shape_flops = 2 * t.gemm_groups * t.gemm_m * t.gemm_n * t.gemm_k
        ratio = shape_flops[gemm] / t.flops[gemm]
        assert np.all((ratio > 0.968) & (ratio <= 1.0 + 1e-9)), w.key
        train = w.layers(RunConfig(batch=2, phase="training"))
        for col in ("gemm_groups", "gemm_m", "gemm_n", "gemm_k"):
            assert np.array_equal(getattr(train, col), getattr(t, col)), (w.key, col)


def test_gemm_shapes_by_hand():
    # BERT-Large, batch 2 x 128 tokens: the QKV projection is (256 x 1024) . (1024 x 3072);
    # attention scores are 2 x 16 heads of (128 x 64) . (64 x 128)
    t = get_workload("bert-large").layers(RunConfig(batch=2, seq=128))
    row = {str(n): i for i, n in enumerate(t.name)}
    i = row["block.attn.qkv_proj"]
    assert (t.gemm_groups[i], t.gemm_m[i], t.gemm_n[i], t.gemm_k[i]) == (1, 256, 3072, 1024)
    i = row["block.attn.scores"]
    assert (t.gemm_groups[i], t.gemm_m[i], t.gemm_n[i], t.gemm_k[i]) == (32, 128, 128, 64)
    # ResNet-50's first convolution, 7x7/2 from 3 to 64 channels on 224x224: per sample an
    # implicit GEMM of (112*112 x 64) . (3*7*7 x 64)
    t = get_workload("resnet-50").layers(RunConfig(batch=4))
    i = 0 if t.kind[0] == "conv" else int(np.argmax(t.kind == "conv"))
    assert (t.gemm_groups[i], t.gemm_m[i], t.gemm_n[i], t.gemm_k[i]) == (1, 4 * 112 * 112, 64, 147)
