"""Transformer builder: a tiny model computed by hand, BERT-Large against published figures."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from roofline.errors import RooflineError, SpecError, UnknownNameError
from roofline.scenario import RunConfig
from roofline.workloads import get_workload, load_workload_file

TINY = """\
name: Tiny encoder
family: transformer
architecture:
  type: encoder
  layers: 2
  hidden: 8
  heads: 2
  ffn: 32
  activation: gelu
  vocab: 10
  max_positions: 16
  position: learned
  norm: layernorm
  norm_position: post
  embedding_norm: true
  bias: true
  head: none
sources: ["hand-made for the tests"]
"""


@pytest.fixture()
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return load_workload_file(path)


def _rows(table):
    return {str(n): i for i, n in enumerate(table.name)}


def test_tiny_encoder_by_hand(tiny):
    # batch 2 x seq 4 = 8 tokens, hidden 8, 2 heads of 4, ffn 32, fp16 = 2 bytes an element
    t = tiny.layers(RunConfig(batch=2, seq=4, dtype="fp16"))
    r = _rows(t)
    assert list(t.count[[r["embeddings"], r["block.attn.qkv_proj"]]]) == [1, 2]

    qkv = r["block.attn.qkv_proj"]  # [8 tokens, 8] x [8, 24] + bias
    assert t.flops[qkv] == 2 * 8 * 8 * 24 + 8 * 24  # 3264
    assert t.params[qkv] == 2 * (8 * 24 + 24)  # 216 per layer, both layers
    assert t.bytes[qkv] == (216 + 8 * 8 + 8 * 24) * 2  # weights + input + output = 944

    scores = r["block.attn.scores"]  # per (sample, head): [4, 4] x [4, 4] -> 2*2*4*4 = 64 scores
    assert t.flops[scores] == 2 * 64 * 4  # 512
    assert t.bytes[scores] == (8 * 8 + 8 * 8 + 64) * 2  # Q, K read; scores written = 384
    assert t.params[scores] == 0

    softmax = r["block.attn.softmax"]
    assert t.flops[softmax] == 6 * 64
    assert t.bytes[softmax] == (64 + 64) * 2

    up, act, down = r["block.ffn_up"], r["block.ffn_act"], r["block.ffn_down"]
    assert t.flops[up] == 2 * 8 * 8 * 32 + 8 * 32  # 4352
    assert t.flops[act] == 9 * 8 * 32  # GELU, tanh form: 9 FLOPs an element
    assert t.flops[down] == 2 * 8 * 32 * 8 + 8 * 8  # 4160

    emb = r["embeddings"]  # token + position rows for 8 tokens, one add each
    assert t.flops[emb] == 8 * 8
    assert t.bytes[emb] == (2 * 8 * 8 + 8 * 8) * 2
    assert t.params[emb] == (10 + 16) * 8

    # parameters: embeddings 208 + emb norm 16 + 2 x (216 + 72 + 16 + 288 + 264 + 16)
    assert t.total_params == 208 + 16 + 2 * (216 + 72 + 16 + 288 + 264 + 16)


def test_training_step_by_hand(tiny):
    # Y = X W with X [8, 8], W [8, 24] (+bias): backward dX = dY W^T and dW = X^T dY
    inf = tiny.layers(RunConfig(batch=2, seq=4, dtype="fp32"))
    train = tiny.layers(RunConfig(batch=2, seq=4, dtype="fp32", phase="training", optimizer=None))
    i = _rows(inf)["block.attn.qkv_proj"]
    assert train.flops[i] == 3 * inf.flops[i]
    w, x, y = 216, 64, 192  # elements of weights, input, output
    fwd = w + x + y
    bwd = (2 * y + x + w) + (x + w)  # read dY twice, X and W; write dX and dW
    assert train.bytes[i] == (fwd + bwd) * 4
    j = _rows(inf)["block.ffn_act"]  # elementwise: read dY and saved X, write dX
    assert train.bytes[j] == (8 * 32 * 2 + 8 * 32 + 8 * 32 + 8 * 32) * 4
    # Adam in fp32 updates the 216 parameters: 12 FLOPs each; reads gradient, weight and
    # two moments (16 bytes), writes weight and moments (12 bytes)
    adam = tiny.layers(RunConfig(batch=2, seq=4, dtype="fp32", phase="training"))
    assert adam.flops[i] == train.flops[i] + 12 * 216
    assert adam.bytes[i] == train.bytes[i] + (16 + 12) * 216
    assert adam.bytes[j] == train.bytes[j]  # no parameters, no update


@pytest.mark.parametrize(
    ("optimizer", "dtype", "read", "written"),
    [
        ("adam", "fp32", 4 + 4 + 8, 4 + 8),  # gradient, weight, 2 moments; weight, moments
        ("adam", "bf16", 2 + 4 + 8, 2 + 4 + 8),  # + fp32 master copy, 16-bit weight written
        ("adam", "fp8", 1 + 4 + 8, 1 + 4 + 8),
        ("sgd", "fp32", 4 + 4, 4),
        ("sgd-momentum", "fp16", 2 + 4 + 4, 2 + 4 + 4),
    ],
)
def test_update_bytes_per_parameter(optimizer, dtype, read, written):
    from roofline.dtypes import BYTES_PER_ELEMENT
    from roofline.optimizers import update_bytes

    assert update_bytes(optimizer, BYTES_PER_ELEMENT[dtype]) == (read, written)


def test_shared_layers_are_updated_once_a_step(tmp_path):
    path = tmp_path / "shared.yaml"
    path.write_text(TINY.replace("  bias: true\n", "  bias: true\n  shared_layers: true\n"))
    w = load_workload_file(path)
    with_adam = w.layers(RunConfig(batch=1, seq=4, phase="training"))
    without = w.layers(RunConfig(batch=1, seq=4, phase="training", optimizer=None))
    extra = (with_adam.total_flops - without.total_flops).sum()
    assert extra == pytest.approx(12 * w.params)  # every parameter once, though 2 layers use it


def test_bert_large_parameters_match_architecture_and_publication():
    bert = get_workload("bert-large")
    h, f, v, p, layers = 1024, 4096, 30522, 512, 24
    embeddings = (v + p + 2) * h + 2 * h
    block = (3 * (h * h + h)) + (h * h + h) + 2 * h + (h * f + f) + (f * h + h) + 2 * h
    pooler = h * h + h
    assert bert.params == embeddings + layers * block + pooler == 335_141_888
    assert bert.params == pytest.approx(335e6, rel=0.01)  # Devlin et al. / HF: 335M


def test_bert_large_forward_flops_near_the_dataset():
    # "AI and Memory Wall" NLP table: BERT Large, 512 tokens, 340 GFLOPs (2 FLOPs a MAC)
    t = get_workload("bert-large").layers(RunConfig(batch=1, seq=512))
    assert t.total_flops.sum() == pytest.approx(340e9, rel=0.05)
    # and by hand: per layer 2*512*(4h^2 + 2hf) GEMM + 2 * 2*512*512*h attention
    gemm = 24 * 2 * 512 * (4 * 1024**2 + 2 * 1024 * 4096)
    attention = 24 * 2 * (2 * 512 * 512 * 1024)
    assert t.total_flops.sum() == pytest.approx(gemm + attention, rel=0.01)


def test_batch_scales_activation_costs_not_weights():
    bert = get_workload("bert-large")
    one = bert.layers(RunConfig(batch=1, seq=128))
    four = bert.layers(RunConfig(batch=4, seq=128))
    assert four.total_flops.sum() == pytest.approx(4 * one.total_flops.sum(), rel=1e-3)
    i = _rows(one)["block.ffn_up"]
    assert four.weight_bytes[i] == one.weight_bytes[i]
    assert four.input_bytes[i] == 4 * one.input_bytes[i]


def test_sequence_longer_than_the_model_allows():
    with pytest.raises(RooflineError, match=r"seq 1024: bert-large takes at most 512 tokens"):
        get_workload("bert-large").layers(RunConfig(seq=1024))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch": 0}, "^batch 0: must be a whole number from 1"),
        ({"batch": -3}, "^batch -3"),
        ({"seq": 0}, "^seq 0"),
        ({"dtype": "fp4"}, "^dtype fp4: unknown datatype"),
        ({"phase": "serving"}, "^phase serving: allowed: inference, prefill, decode, training"),
    ],
)
def test_bad_scenarios(kwargs, message):
    with pytest.raises(RooflineError, match=message):
        RunConfig(**kwargs)


def test_unknown_model_suggests():
    with pytest.raises(UnknownNameError, match="did you mean bert-large"):
        get_workload("bert-larg")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("  heads: 2\n", "  heads: 3\n", "hidden .8. must be a multiple of heads .3."),
        ("  layers: 2\n", "  layers: 0\n", r"architecture\.layers: must be from 1 to"),
        ("  layers: 2\n", "", r"architecture\.layers: missing"),
        ("  norm: layernorm\n", "  norm: batchnorm\n", r"architecture\.norm: must be one of"),
        ("  bias: true\n", "  bias: yes please\n", r"architecture\.bias: expected true or false"),
        ("  bias: true\n", "  bias: true\n  bias: false\n", "duplicate key 'bias'"),
        ("family: transformer", "family: rnn", "family: must be one of"),
        ("sources:", "source:", "sources: missing"),
    ],
)
def test_workload_validation(tmp_path, old, new, message):
    assert old in TINY
    path = tmp_path / "bad.yaml"
    path.write_text(TINY.replace(old, new))
    with pytest.raises(SpecError, match=message) as info:
        load_workload_file(path)
    assert str(info.value).startswith(str(path))


def test_shipped_workloads_load(repo):
    for path in Path(repo, "workloads").glob("*.yaml"):
        w = load_workload_file(path)
        assert w.sources and w.params > 0


def test_flash_attention_by_hand():
    """FlashAttention: one kernel, the same FLOPs as scores + softmax + context without a
    mask, half (+ the diagonal) with a causal one; DRAM sees Q, K, V and the output only."""
    from roofline import get_workload

    bert = get_workload("bert-large")  # encoder: no mask to skip
    run = RunConfig(batch=2, seq=128)
    eager = bert.layers(run)
    flash = bert.layers(replace(run, attention="flash"))
    e = {str(n): i for i, n in enumerate(eager.name)}
    f = {str(n): i for i, n in enumerate(flash.name)}
    assert "block.attn.scores" not in f and "block.attn.softmax" not in f
    core = sum(eager.flops[e[k]] for k in ("block.attn.scores", "block.attn.softmax"))
    core += eager.flops[e["block.attn.context"]]
    assert flash.flops[f["block.attn.flash"]] == core
    # bytes: Q, K, V in (3 x 256 tokens x 1024) and the context out (256 x 1024), fp16
    assert flash.bytes[f["block.attn.flash"]] == 2 * (3 * 256 * 1024 + 256 * 1024)
    # GPT-2 (decoder) in prefill: causal, (512 + 1) / (2 x 512) of the work
    gpt2 = get_workload("gpt-2")
    run = RunConfig(batch=1, seq=512)
    e2 = gpt2.layers(run)
    f2 = gpt2.layers(replace(run, attention="flash"))
    i = {str(n): k for k, n in enumerate(e2.name)}
    full = sum(
        e2.flops[i[k]] for k in ("block.attn.scores", "block.attn.softmax", "block.attn.context")
    )
    j = int(np.flatnonzero(f2.name == "block.attn.flash")[0])
    assert f2.flops[j] == pytest.approx(full * 513 / 1024)
    # training keeps Q, K, V and fp32 statistics instead of the 12 x 512 x 512 matrices
    t_eager = gpt2.layers(replace(run, phase="training")).total_saved_bytes
    t_flash = gpt2.layers(replace(run, phase="training", attention="flash")).total_saved_bytes
    assert t_flash < t_eager


def test_last_position_logits_in_prefill():
    from roofline import get_workload

    w = get_workload("llama-2-7b")
    run = RunConfig(batch=4, seq=1024, phase="prefill")
    lm = lambda t: int(np.flatnonzero(t.name == "lm_head")[0])  # noqa: E731
    all_ = w.layers(run)
    last = w.layers(replace(run, logits="last"))
    # 2 x tokens x 4096 x 32000: 4 x 1024 tokens, or the last of each of the 4 samples
    assert all_.flops[lm(all_)] == 2 * 4 * 1024 * 4096 * 32000
    assert last.flops[lm(last)] == 2 * 4 * 4096 * 32000
