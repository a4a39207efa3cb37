"""Attention variants (issue 29), one layer of each kind by hand: sliding-window attention
(Mistral), alternating local/global layers (Gemma 2), QK-norm (Qwen3), Q/K/V-only biases
(Qwen2), soft-capping (Gemma 2), multi-head latent attention (DeepSeek-V3), absorbed or
not, and a routed + shared MoE layer with dense first layers (DeepSeekMoE). FLOPs count one
multiply-accumulate as 2; every expected value is written out from the shapes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from roofline.errors import SpecError
from roofline.memory import kv_cache_bytes
from roofline.scenario import RunConfig
from roofline.workloads import load_workload_file

BASE = """\
name: {name}
family: transformer
architecture:
  type: decoder
  layers: {layers}
  hidden: 16
  heads: 4
  kv_heads: 2
  ffn: 32
  ffn_gated: true
  activation: silu
  vocab: 50
  max_positions: 64
  position: rotary
  norm: rmsnorm
  norm_position: pre
  bias: false
  head: lm
  tie_embeddings: false
{extra}sources: ["hand-made for the tests"]
"""


def _model(tmp_path, extra: str = "", layers: int = 2, name: str = "tiny"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(BASE.format(name=name, layers=layers, extra=extra))
    return load_workload_file(path)


def _row(table, name):
    names = [str(n) for n in table.name]
    return names.index(name)


def test_sliding_window_layer_by_hand(tmp_path):
    # 4 heads of 4 (q 16), 2 KV heads (kv 8); window 3; one sample of 6 tokens
    w = _model(tmp_path, "  sliding_window: 3\n")
    run = RunConfig(batch=1, seq=6, attention="flash")
    t = w.layers(run)
    i = _row(t, "block.attn_local.flash")
    assert "block.attn.flash" not in [str(n) for n in t.name]  # every layer local
    # query-key pairs: 1 + 2 + 3 + 3 + 3 + 3 = 15 (at most 3 keys a query), 4 heads
    pairs = 15 * 4
    assert t.flops[i] == 2 * pairs * (4 + 4) + 6 * pairs  # QK^T + PV, softmax 6 an element
    assert t.count[i] == 2
    # the cache: 2 layers x min(6, 3) tokens x K and V of 8 = 96 values, fp16
    assert w.arch.kv_cache_elements(RunConfig(batch=1, seq=6, phase="prefill")) == 96
    # decode with 10 cached tokens: 11 tokens, of which each layer keeps 3: 2 x 3 x 16
    step = RunConfig(batch=1, seq=6, phase="decode", context=10, attention="flash")
    assert w.arch.kv_cache_elements(step) == 2 * 3 * 16
    assert kv_cache_bytes(w, step) == 2 * 3 * 16 * 2
    d = w.layers(step)
    j = _row(d, "block.attn_local.flash")
    # one query over min(11, 3) = 3 keys, 4 heads: 12 scores
    assert d.flops[j] == 2 * 12 * 8 + 6 * 12
    assert d.bytes[j] == 2 * (16 + 3 * 16 + 16)  # Q in, K and V of 3 tokens, context out


def test_sliding_window_matches_causal_below_the_window(tmp_path):
    plain = _model(tmp_path, name="plain")
    window = _model(tmp_path, "  sliding_window: 8\n", name="window")
    run = RunConfig(batch=2, seq=8, attention="flash")
    assert window.layers(run).total_flops.sum() == pytest.approx(
        plain.layers(run).total_flops.sum()
    )
    assert window.params == plain.params


def test_local_and_global_layers_by_hand(tmp_path):
    # Gemma 2's pattern: every 2nd layer global, 4 layers: 2 local (window 3), 2 global
    w = _model(tmp_path, "  sliding_window: 3\n  global_every: 2\n", layers=4)
    run = RunConfig(batch=1, seq=6, attention="flash")
    t = w.layers(run)
    g, loc = _row(t, "block.attn.flash"), _row(t, "block.attn_local.flash")
    assert (t.count[g], t.count[loc]) == (2, 2)
    assert t.flops[g] == 2 * 21 * 4 * 8 + 6 * 21 * 4  # causal: 6 x 7 / 2 = 21 pairs a head
    assert t.flops[loc] == 2 * 15 * 4 * 8 + 6 * 15 * 4
    # decode over 10 cached + 1 new: global layers keep 11 tokens, local ones 3
    step = RunConfig(batch=1, seq=6, phase="decode", context=10)
    assert w.arch.kv_cache_elements(step) == (2 * 11 + 2 * 3) * 16
    # eager (the masked matrix computed whole): a local layer's decode reads 3 keys
    d = w.layers(step)
    assert d.flops[_row(d, "block.attn_local.scores")] == 2 * (4 * 3) * 4


def test_qk_norm_and_qkv_only_biases_by_hand(tmp_path):
    plain = _model(tmp_path, name="plain")
    qwen3 = _model(tmp_path, "  qk_norm: true\n", name="qwen3")
    qwen2 = _model(tmp_path, "  qkv_bias: true\n", name="qwen2")
    # QK-norm: an RMS scale of head_dim for Q and one for K, a layer: 2 x 4 x 2 layers
    assert qwen3.params - plain.params == 2 * 4 * 2
    t = qwen3.layers(RunConfig(batch=1, seq=5))
    i = _row(t, "block.attn.qk_norm")
    assert t.flops[i] == 4 * 5 * (16 + 8)  # 4 FLOPs an element over Q (16) and K (8)
    # Qwen2: a bias on Q, K and V only (16 + 8 + 8 a layer), none on o_proj or the MLP
    assert qwen2.params - plain.params == 2 * (16 + 8 + 8)
    t2 = qwen2.layers(RunConfig(batch=1, seq=5))
    assert t2.flops[_row(t2, "block.attn.qkv_proj")] == 2 * 5 * 16 * 32 + 5 * 32
    assert t2.params[_row(t2, "block.attn.out_proj")] == 2 * 16 * 16


def test_soft_capping_and_post_norms_by_hand(tmp_path):
    plain = _model(tmp_path, name="plain")
    gemma = _model(
        tmp_path,
        "  attn_softcap: true\n  logit_softcap: true\n  post_norms: true\n",
        name="gemma",
    )
    run = RunConfig(batch=1, seq=5)
    p, g = plain.layers(run), gemma.layers(run)
    scores = 4 * 5 * 5  # heads x q x k
    soft = _row(g, "block.attn.softmax")
    assert g.flops[soft] - p.flops[_row(p, "block.attn.softmax")] == 3 * scores
    assert g.flops[_row(g, "lm_softcap")] == 3 * 5 * 50  # every logit
    # two more RMS norms a layer (after attention and after the FFN): 16 scales each
    assert gemma.params - plain.params == 2 * 2 * 16


MLA = """\
  heads: 4
  head_dim: 8
  q_lora_rank: 6
  kv_lora_rank: 10
  qk_rope_head_dim: 2
  v_head_dim: 4
"""


def _mla(tmp_path, absorb: str = "decode"):
    text = BASE.format(name="mla", layers=2, extra=f"  mla_absorb: {absorb}\n")
    text = text.replace("  heads: 4\n  kv_heads: 2\n", MLA)
    path = tmp_path / f"mla-{absorb}.yaml"
    path.write_text(text)
    return load_workload_file(path)


def test_mla_parameters_and_cache_by_hand(tmp_path):
    w = _mla(tmp_path)
    # hidden 16, 4 heads; nope 8 + rope 2 = 10 a query head; v 4; q rank 6; kv rank 10
    attn = (
        16 * 6  # W_DQ
        + 6  # its RMS norm
        + 6 * 4 * 10  # W_UQ
        + 16 * (10 + 2)  # W_DKV and the rotary key
        + 10  # the latent's RMS norm
        + 10 * 4 * (8 + 4)  # W_UK and W_UV
        + 4 * 4 * 16  # W_O
    )
    ffn = 3 * 16 * 32
    assert w.params == 2 * (attn + ffn + 2 * 16) + 16 + 2 * 50 * 16
    # the cache: latent 10 + rotary key 2 = 12 a token a layer (not 2 x heads x dims)
    step = RunConfig(batch=3, seq=4, phase="decode", context=9)
    assert w.arch.kv_cache_elements(step) == 3 * 2 * 12 * 10


def test_mla_flops_absorbed_and_not_by_hand(tmp_path):
    w = _mla(tmp_path)  # absorbed in decode steps only
    prefill = w.layers(RunConfig(batch=1, seq=5, attention="flash"))
    rows = {str(n): k for k, n in enumerate(prefill.name)}
    assert prefill.flops[rows["block.attn.kv_up"]] == 2 * 5 * 10 * 4 * (8 + 4)
    pairs = 15 * 4  # causal over 5 tokens, 4 heads
    assert prefill.flops[rows["block.attn.flash"]] == 2 * pairs * (10 + 4) + 6 * pairs
    assert "block.attn.q_absorb" not in rows
    step = RunConfig(batch=1, seq=5, phase="decode", context=6, attention="flash")
    d = w.layers(step)
    r = {str(n): k for k, n in enumerate(d.name)}
    assert d.flops[r["block.attn.q_absorb"]] == 2 * 4 * 8 * 10  # per head nope -> rank
    scores = 4 * 7  # 4 heads over 6 cached + 1 tokens
    # scores over latent + rope (12), context over the latent (10)
    assert d.flops[r["block.attn.flash"]] == 2 * scores * (12 + 10) + 6 * scores
    assert d.bytes[r["block.attn.flash"]] == 2 * (4 * 12 + 7 * 12 + 4 * 10)
    assert d.flops[r["block.attn.v_up"]] == 2 * 4 * 10 * 4
    assert "block.attn.kv_up" not in r
    # not absorbed: every cached latent is up-projected again, each step
    never = _mla(tmp_path, "never").layers(step)
    n = {str(k): i for i, k in enumerate(never.name)}
    assert never.flops[n["block.attn.kv_up"]] == 2 * 7 * 10 * 4 * (8 + 4)
    # the two are the same weights: the parameter counts agree
    assert _mla(tmp_path, "never").params == w.params


DEEPSEEK_MOE = """\
  experts: 8
  top_k: 2
  moe_ffn: 4
  shared_experts: 1
  dense_layers: 1
  router_bias: true
"""


def test_routed_and_shared_moe_layer_by_hand(tmp_path):
    w = _model(tmp_path, DEEPSEEK_MOE, layers=3, name="dsmoe")
    t = w.layers(RunConfig(batch=1, seq=5))
    r = {str(n): i for i, n in enumerate(t.name)}
    assert t.count[r["block.ffn_up"]] == 1 and t.count[r["block.moe.router"]] == 2
    assert t.flops[r["block.moe.router"]] == 2 * 5 * 16 * 8 + 5 * 8  # + the score bias
    assert t.params[r["block.moe.router"]] == 2 * (16 * 8 + 8)
    # 5 tokens x 2 experts, each a gated FFN of 4: up 16 -> 8, down 4 -> 16
    assert t.flops[r["block.moe.expert_up"]] == 2 * 10 * 16 * 8
    assert t.flops[r["block.moe.expert_down"]] == 2 * 10 * 4 * 16
    # the shared expert: every token through one FFN of 1 x 4
    assert t.flops[r["block.moe.shared_up"]] == 2 * 5 * 16 * 8
    assert t.flops[r["block.moe.shared_down"]] == 2 * 5 * 4 * 16
    expert = 3 * 16 * 4
    moe = 8 * expert + expert + 16 * 8 + 8
    assert w.params - _model(tmp_path, layers=3, name="dense").params == 2 * (moe - 3 * 16 * 32)
    # active: the idle 6 of 8 routed experts' weights are not used
    assert w.active_params == pytest.approx(w.params - 2 * 6 * expert)


def test_mtp_modules_by_hand(tmp_path):
    """DeepSeek-V3's MTP module runs beside the model (training: the MTP loss; serving: a
    drafted token), on the same tokens, with a KV cache of its own."""
    w = _model(tmp_path, DEEPSEEK_MOE + "  mtp_layers: 1\n", layers=3, name="mtp")
    plain = _model(tmp_path, DEEPSEEK_MOE, layers=3, name="plain")
    t = w.layers(RunConfig(batch=1, seq=5))
    rows = {str(n): i for i, n in enumerate(t.name)}
    assert t.flops[rows["mtp.proj"]] == 2 * 5 * 32 * 16  # [hidden; embedding] 2h -> h
    assert t.flops[rows["mtp.lm_head"]] == 2 * 5 * 16 * 50  # the shared head
    # parameters: 2 norms + 2h x h + one MoE block (attention, norms, MoE) + its final norm
    attn = 16 * (16 + 2 * 8) + 16 * 16
    moe = 9 * 3 * 16 * 4 + 16 * 8 + 8
    assert w.params - plain.params == 2 * 16 + 2 * 16 * 16 + attn + 2 * 16 + moe + 16
    step = RunConfig(batch=1, seq=5, phase="decode", context=6)
    assert w.arch.kv_cache_elements(step) == (3 + 1) * 7 * 16
    assert w.active_params == pytest.approx(plain.active_params)  # it predicts other tokens


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  global_every: 2\n", "global_every: needs sliding_window"),
        ("  v_head_dim: 4\n", "kv_lora_rank: q_lora_rank and v_head_dim"),
        ("  shared_experts: 1\n", "experts: moe_ffn, shared_experts"),
        ("  experts: 4\n  top_k: 1\n  dense_layers: 2\n", "dense_layers: needs experts"),
        ("  mla_absorb: sometimes\n", "mla_absorb"),
    ],
)
def test_attention_variant_errors_name_the_field(tmp_path, extra, message):
    with pytest.raises(SpecError, match=message):
        _model(tmp_path, extra)


def test_flash_share_unchanged_for_plain_causal(tmp_path):
    w = _model(tmp_path)
    run = RunConfig(batch=1, seq=8)
    eager = w.layers(run)
    flash = w.layers(replace(run, attention="flash"))
    full = sum(
        eager.flops[_row(eager, f"block.attn.{k}")] for k in ("scores", "softmax", "context")
    )
    assert flash.flops[_row(flash, "block.attn.flash")] == pytest.approx(full * 9 / 16)
