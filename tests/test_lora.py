"""LoRA and QLoRA fine-tuning (Hu et al. 2021, arXiv:2106.09685; Dettmers et al. 2023,
arXiv:2305.14314), every figure checked against a hand calculation written here.

An adapter on a projection W0 (d_in -> d_out) of rank r: h = W0 x + (alpha / r) B A x, with
A: d_in x r and B: r x d_out, so r (d_in + d_out) parameters, 2 r (d_in + d_out) FLOPs a
token forward, and 2 FLOPs an output element to scale and add. The base is frozen: its
GEMMs run their forward and the input gradient dX = dY W^T (as many FLOPs again) but no
weight gradient; the adapters run forward + both gradients (3x forward)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from roofline.cli import app
from roofline.collectives import allreduce_bytes
from roofline.layers import lora_rows
from roofline.memory import memory_breakdown
from roofline.parallel import communication
from roofline.scenario import LORA_TARGETS, Layout, RunConfig
from roofline.workloads import get_workload

# Llama-2-13B (Touvron et al. 2023; its config.json): hidden 5120, 40 layers, FFN 13824,
# 40 heads of 128 (no GQA), vocabulary 32000
H, F, LAYERS, VOCAB = 5120, 13824, 40, 32000


def _full(run):
    """The same run as a full fine-tune."""
    return replace(run, lora_rank=None, lora_targets=",".join(LORA_TARGETS), weights=None)


def _lora(rank=16, targets="q,k,v,o,up,gate,down", **kw):
    return RunConfig(phase="training", lora_rank=rank, lora_targets=targets, **kw)


def test_adapter_parameters_llama_2_13b_by_hand():
    """r = 16 on q and v (PEFT's default targets for Llama): 2 adapters a layer of
    16 x (5120 + 5120): 40 x 2 x 163,840 = 13,107,200, the figure PEFT's
    print_trainable_parameters gives for this model and config. On all seven projections:
    q, k, v, o: 4 x 16 x (5120 + 5120); gate, up: 2 x 16 x (5120 + 13824); down:
    16 x (13824 + 5120), a layer 1,564,672, x 40 = 62,586,880."""
    w = get_workload("llama-2-13b")
    assert w.trainable_params(_lora(targets="q,v")) == 40 * 2 * 16 * (5120 + 5120)
    assert w.trainable_params(_lora(targets="q,v")) == 13_107_200
    per_layer = 4 * 16 * (H + H) + 2 * 16 * (H + F) + 16 * (F + H)
    assert per_layer == 1_564_672
    assert w.trainable_params(_lora()) == LAYERS * per_layer == 62_586_880
    # the base is unchanged, and a full fine-tune trains every parameter
    assert w.trainable_params(RunConfig(phase="training")) == w.params


def test_step_flops_of_one_layer_by_hand():
    """One Llama-2-13B layer, 512 tokens, LoRA r = 16 on q and v, no optimizer update:
    the fused QKV projection (5120 -> 3 x 5120) runs forward + dX: 2 x (2 t h 3h); each
    adapter's A (5120 -> 16) and B (16 -> 5120) forward + dX + dW: 3 x (2 t h r); its
    scale-and-add 2 FLOPs an output element, forward and backward (2x): 3 x 2 t h.
    The layer's whole step: a full fine-tune's less the base's weight gradients (one
    forward of each of its projections, t x 2 h (3h + h + 2F + F)) plus the adapters'
    3 x (2 x 2 t r (h + h) + 2 x 2 t h)."""
    w = get_workload("llama-2-13b")
    t, r = 512, 16
    run = _lora(targets="q,v", batch=1, seq=t, optimizer=None)
    table = w.layers(run)
    names = table.name.astype(str).tolist()

    def flops(name):
        return float(table.flops[names.index(name)])

    assert flops("block.attn.qkv_proj") == 2 * (2 * t * H * 3 * H)
    assert flops("block.attn.out_proj") == 2 * (2 * t * H * H)
    assert flops("block.ffn_up") == 2 * (2 * t * H * 2 * F)
    assert flops("block.ffn_down") == 2 * (2 * t * F * H)
    for target in ("q", "v"):
        p = f"block.attn.qkv_proj.lora_{target}"
        assert flops(f"{p}.a") == 3 * (2 * t * H * r)
        assert flops(f"{p}.b") == 3 * (2 * t * r * H)
        assert flops(f"{p}.add") == 3 * (2 * t * H)
    assert "block.attn.qkv_proj.lora_k.a" not in names
    full = w.layers(_full(run))
    block = np.char.startswith(table.name.astype(str), "block.")
    block_full = np.char.startswith(full.name.astype(str), "block.")
    lora_layer = float(np.sum(table.flops[block]))  # one instance of each row: one layer
    full_layer = float(np.sum(full.flops[block_full]))
    weight_grads = t * 2 * H * (3 * H + H + 2 * F + F)
    adapters = 3 * (2 * (2 * t * r * (H + H)) + 2 * (2 * t * H))
    assert lora_layer == pytest.approx(full_layer - weight_grads + adapters, rel=1e-12)
    # the frozen embedding lookup runs no backward; the frozen LM head forward + dX only
    assert float(table.flops[names.index("lm_head")]) == 2 * (2 * t * H * VOCAB)


def test_frozen_rows_bytes_and_no_update():
    """A frozen projection's backward reads dY once and W again and writes dX, no dW; the
    optimizer update (Adam, 12 FLOPs a parameter: optimizers.UPDATE_FLOPS) runs on the
    adapters alone: A of q has 5120 x 16 parameters, read and written as state."""
    w = get_workload("llama-2-13b")
    t = 64
    frozen = w.layers(_lora(targets="q", batch=1, seq=t))
    names = frozen.name.astype(str).tolist()
    i = names.index("block.attn.out_proj")
    x = y = t * H * 2.0  # fp16 activations in and out
    weights = H * H * 2.0
    assert frozen.weight_bytes[i] == 2 * weights  # forward, and again for dX
    assert frozen.input_bytes[i] == x + y  # x forward, dY once (no saved x for a dW)
    assert frozen.output_bytes[i] == y + x  # y forward, dX; no dW
    a = names.index("block.attn.qkv_proj.lora_q.a")
    forward = 2 * t * H * 16
    assert frozen.flops[a] == 3 * forward + 12 * H * 16
    assert frozen.flops[i] == 2 * (2 * t * H * H)  # no update for the frozen weights


def test_memory_lora_and_qlora_llama_2_13b_by_hand():
    """Llama-2-13B, LoRA r = 16 on all seven projections (A = 62,586,880 parameters), fp16
    with Adam and an fp32 master copy, 8 data-parallel replicas: parameters 2 (P + A)
    bytes, gradients 2 A, optimizer (8 + 4) A (two fp32 moments, the fp32 master copy), for
    the adapters only. QLoRA: the base in int4 (4 bits + a 2-byte scale and a 0.5-byte zero
    point a group of 128: 0.5 + 2.5 / 128 bytes a weight), the adapters in fp16."""
    w = get_workload("llama-2-13b")
    p, a = w.params, 62_586_880
    run = _lora(batch=8, seq=512, layout=Layout(data=8), recompute="full")
    m = memory_breakdown(w, run)
    assert m.params == 2 * (p + a)
    assert m.gradients == 2 * a
    assert m.optimizer == (8 + 4) * a
    full = memory_breakdown(w, _full(run))
    # full recomputation keeps one block's activations: each of its 7 adapters keeps x A,
    # 512 tokens x r = 16 at 2 bytes
    assert m.activations - full.activations == 7 * 512 * 16 * 2
    q = memory_breakdown(w, replace(run, weights="int4"))
    assert q.params == pytest.approx(p * (0.5 + 2.5 / 128) + 2 * a, rel=1e-12)
    assert q.gradients == 2 * a and q.optimizer == 12 * a
    # 40 GB cards: the LoRA fine-tune fits one A100 40GB a replica (26 GB of fp16 base)
    assert m.total < 40e9 < full.total


def test_gradient_all_reduce_of_the_adapters_only():
    """Data parallelism over 8 replicas all-reduces the adapters' fp16 gradients, a ring:
    2 (8 - 1) / 8 x 2 A bytes; a full fine-tune the whole model's."""
    w = get_workload("llama-2-13b")
    run = _lora(batch=8, seq=128, layout=Layout(data=8))
    comm = communication(w, run)
    assert comm.data_bytes == pytest.approx(allreduce_bytes(8, 2 * 62_586_880), rel=1e-12)
    assert comm.data_bytes == pytest.approx(2 * 7 / 8 * 2 * 62_586_880, rel=1e-12)
    # ZeRO-3 (FSDP-sharded base): the fp16 base all-gathered twice (2 x 7/8 x 2 P) and the
    # adapters' gradients reduce-scattered (7/8 x 2 A)
    zero3 = communication(w, replace(run, layout=Layout(data=8, zero=3)))
    p = w.params
    want = 2 * 7 / 8 * 2 * p + 7 / 8 * 2 * 62_586_880
    assert zero3.data_bytes == pytest.approx(want, rel=1e-12)


def test_training_flops_of_a_lora_epoch():
    """Time to train on --tokens counts a LoRA step's FLOPs: the full fine-tune's less one
    forward of every base projection's GEMMs a token (2 x 12.7 G parameters in the blocks'
    projections, 2 x 164 M in the LM head), plus the adapters' 3 x forward."""
    w = get_workload("llama-2-13b")
    t = 512
    run = _lora(targets="q,v", batch=1, seq=t)
    lora = w.training_flops(1, t, run)
    full = w.training_flops(1, t)
    projections = LAYERS * 2 * H * (3 * H + H + 2 * F + F) + 2 * H * VOCAB
    adapters = LAYERS * 2 * 3 * (2 * 16 * (H + H) + 2 * H)
    assert lora == pytest.approx(full - t * projections + t * adapters, rel=1e-12)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--phase", "inference", "--lora-rank", "16"], "--lora-rank"),
        (["--phase", "decode", "--lora-rank", "8"], "--lora-rank"),
        (["--phase", "training", "--lora-targets", "q,v"], "--lora-targets"),
        (["--phase", "training", "--lora-rank", "8", "--lora-targets", "q,x"], "--lora-targets"),
        (["--phase", "training", "--lora-rank", "0"], "--lora-rank"),
        (["--phase", "training", "--weights", "int4"], "--weights"),
    ],
)
def test_bad_lora_input_is_one_line_naming_the_flag(args, flag):
    res = CliRunner().invoke(app, ["memory", "-m", "llama-2-7b", "--hw", "a100", *args])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roofline: error: ") and flag in lines[0]


def test_lora_on_a_family_without_projections_is_refused_by_name():
    args = ["memory", "-m", "resnet-50", "--hw", "a100", "--phase", "training"]
    res = CliRunner().invoke(app, [*args, "--lora-rank", "8"])
    assert res.exit_code == 2
    assert "--lora-rank" in res.stderr and "resnet-50" in res.stderr


def test_lora_rows_and_qlora_adapters_stay_16_bit():
    """QLoRA's adapters are read in the run's dtype (2 bytes), the base at int4's."""
    w = get_workload("llama-2-7b")
    table = w.layers(_lora(targets="q", batch=1, seq=8, weights="int4", optimizer=None))
    names = table.name.astype(str).tolist()
    a = names.index("block.attn.qkv_proj.lora_q.a")
    assert table.weight_bytes[a] == 2 * 4096 * 16 * 2  # read forward, and again for dX
    qkv = names.index("block.attn.qkv_proj")
    per = 0.5 + 2.5 / 128
    assert table.weight_bytes[qkv] == pytest.approx(2 * 4096 * 3 * 4096 * per, rel=1e-12)
    assert lora_rows(table.name).sum() == 3  # a, b, add


def test_memory_json_names_the_adapters():
    args = ["memory", "-m", "llama-2-13b", "--hw", "a100-40gb", "--phase", "training"]
    res = CliRunner().invoke(
        app, [*args, "--lora-rank", "16", "--lora-targets", "q,v", "-f", "json"]
    )
    assert res.exit_code == 0, res.output
    lora = json.loads(res.stdout)["how"]["lora"]
    assert lora == {"rank": 16, "targets": ["q", "v"], "adapter_params": 13_107_200}
