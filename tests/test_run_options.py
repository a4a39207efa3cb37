"""How real stacks run, as RunConfig options, each checked by hand: fused element-wise
epilogues, the first layer's input gradient, sequence parallelism in the step time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from roofline.hardware import get_device
from roofline.scenario import Layout, RunConfig
from roofline.step import step_time
from roofline.workloads import get_workload


def _rows(table, suffix):
    return [i for i, n in enumerate(table.name.astype(str)) if n.endswith(suffix)]


def test_fused_epilogues_run_the_activation_in_its_gemm_llama():
    """Llama-2-7B, 512 tokens, fp16 (2 bytes): fused, the SwiGLU (read 2F, write F) runs
    in the up/gate projection's epilogue, which writes F instead of 2F: saved a layer
    2F + 2F + F - F = 4F elements a token. FLOPs do not change; one kernel a layer fewer.
    Residual adds stay kernels of their own (after a row-parallel projection they follow
    its all-reduce)."""
    w = get_workload("llama-2-7b")
    run = RunConfig(batch=1, seq=512, dtype="fp16")
    plain, fused = w.layers(run), w.layers(replace(run, fused_epilogues=True))
    tokens, f, layers = 512, 11008, 32
    saved = plain.total_bytes.sum() - fused.total_bytes.sum()
    assert saved == pytest.approx(layers * tokens * 4 * f * 2, rel=1e-12)
    assert fused.total_flops.sum() == pytest.approx(plain.total_flops.sum(), rel=1e-12)
    assert len(plain) - len(fused) == 1
    up = fused.name.astype(str).tolist().index("block.ffn_up+ffn_act")
    assert fused.output_bytes[up] == tokens * f * 2  # the activation's output only
    assert "block.ffn_residual" in fused.name.astype(str).tolist()
    # in training the epilogue also writes the pre-activation SiLU's backward needs (2F)
    from roofline.layers import fuse_epilogues

    train = replace(run, phase="training", optimizer=None)
    forward = fuse_epilogues(w.arch.build(train, w.key), training=True)
    assert forward.output_bytes[up] == tokens * (f + 2 * f) * 2
    t_plain, t_fused = w.layers(train), w.layers(replace(train, fused_epilogues=True))
    assert t_fused.total_flops.sum() == pytest.approx(t_plain.total_flops.sum(), rel=1e-12)


def test_fused_epilogues_conv_and_relu_vgg_but_not_across_a_norm():
    """VGG-19's first convolution (64 x 224 x 224 out) and its ReLU at batch 1, fp16:
    fused, the conv writes once what the pair wrote and read three times: 2 x 64 x 224 x
    224 x 2 bytes saved; a ReLU's backward needs only its output, so training writes
    nothing more. Where a norm sits between (ResNet's batch norm, AlexNet's LRN) nothing
    fuses: a batch norm in training needs the batch's statistics, and an LRN is no
    epilogue."""
    w = get_workload("vgg-19")
    run = RunConfig(batch=1, dtype="fp16")
    plain, fused = w.layers(run), w.layers(replace(run, fused_epilogues=True))
    assert fused.name[0] == "block1.conv1+act"
    out = 64 * 224 * 224
    assert plain.bytes[:2].sum() - fused.bytes[0] == pytest.approx(2 * out * 2, rel=1e-12)
    # the first layer's input gradient computed: skipped, the fused row (one GEMM row)
    # would skip the ReLU's share of the backward along with the convolution's dX
    train = replace(run, phase="training", optimizer=None, first_input_grad=True)
    from roofline.layers import fuse_epilogues

    forward = fuse_epilogues(w.arch.build(train, w.key), training=True)
    assert forward.output_bytes[0] == out * 2  # no auxiliary write for a ReLU
    tf = w.layers(replace(train, fused_epilogues=True))
    assert tf.total_flops.sum() == pytest.approx(w.layers(train).total_flops.sum())
    resnet = get_workload("resnet-50")
    assert len(resnet.layers(replace(run, fused_epilogues=True))) == len(resnet.layers(run))
    alexnet = get_workload("alexnet").layers(replace(run, fused_epilogues=True))
    assert "conv1+act" in alexnet.name.astype(str).tolist()
    assert "lrn1" in alexnet.name.astype(str).tolist()


@pytest.mark.parametrize("key", ["gpt-2", "llama-2-7b", "vgg-19", "resnet-50", "mixtral-8x7b"])
@pytest.mark.parametrize("recompute", ["none", "selective", "full"])
def test_fusion_keeps_the_activation_memory(key, recompute):
    """Fusing an epilogue moves kernels, not what the backward pass keeps: the activation
    memory of a training step is the same with and without it, for every recomputation."""
    from roofline.memory import activation_bytes

    w = get_workload(key)
    run = RunConfig(batch=2, seq=w.min_seq and 64, phase="training", recompute=recompute)
    assert activation_bytes(w, replace(run, fused_epilogues=True)) == pytest.approx(
        activation_bytes(w, run), rel=1e-12
    )


def test_first_layer_input_gradient_skipped_resnet():
    """ResNet-50's conv1 (7x7, 3 -> 64, stride 2: 112 x 112 x 64 x 147 = 118,013,952
    multiply-adds an image): without its input gradient the training step runs 2x its
    forward FLOPs, not 3x: 236,027,904 FLOPs an image fewer."""
    w = get_workload("resnet-50")
    run = RunConfig(batch=8, dtype="fp16", phase="training", first_input_grad=True)
    assert not RunConfig().first_input_grad  # off unless asked for, as frameworks do
    full = w.layers(run).total_flops.sum()
    skip = w.layers(replace(run, first_input_grad=False)).total_flops.sum()
    assert full - skip == pytest.approx(8 * 2 * 118_013_952, rel=1e-12)
    # and it writes no dX: the image's bytes, 3 x 224 x 224 x 2 a sample
    full_b = w.layers(run).output_bytes[0]
    skip_b = w.layers(replace(run, first_input_grad=False)).output_bytes[0]
    assert full_b - skip_b == pytest.approx(8 * 3 * 224 * 224 * 2)


def test_without_sequence_parallelism_every_rank_runs_the_norms_whole():
    """GPT-3 on 8 tensor ranks, micro-batch 1 of 2048 tokens, ideal (the bound): without
    sequence parallelism each rank runs the 2 layer norms and 2 residual adds of each of
    96 layers (and the final norm) whole instead of an eighth: the step bound grows by
    7/8 of their time. Each is memory-bound on an A100: a LayerNorm reads and writes
    s x h (+ 2h weights), an add reads 2 s h and writes s h, fp16, over 2039 GB/s."""
    w = get_workload("gpt-3")
    a100 = get_device("a100")
    s, h, t = 2048, 12288, 8
    run = RunConfig(
        batch=1, seq=s, dtype="fp16", phase="training", layout=Layout(1, t, 1), ideal=True
    )
    sp = step_time(w, run, a100).compute_s
    plain = step_time(w, replace(run, sequence_parallel=False), a100).compute_s
    assert sp is not None and plain is not None
    # training: forward + backward elements of a norm (x, y, w = 2h: forward reads x and
    # w, writes y; backward reads dy and x, writes dx and dw) and of an add (forward reads
    # 2, writes 1; backward reads dy and the 2 inputs, writes dx of 2); the optimizer's
    # update of the norm's weights is the same either way
    norm = (s * h + 2 * h + s * h) + (s * h + s * h) + (s * h + 2 * h)
    add = 3 * s * h + (s * h + 2 * s * h) + 2 * s * h
    elements = 96 * (2 * norm + 2 * add) + norm  # and the final norm
    assert plain - sp == pytest.approx(elements * 2 / 2039e9 * (1 - 1 / t), rel=1e-9)
    assert np.isfinite(plain)


def test_the_options_on_the_command_line():
    import json

    from typer.testing import CliRunner

    from roofline.cli import app

    runner = CliRunner()
    args = ["memory", "-m", "gpt-3", "--hw", "a100", "--batch", "8", "--seq", "2048", "--tp", "8"]
    sp = runner.invoke(app, [*args, "-f", "json"])
    plain = runner.invoke(app, [*args, "--no-sequence-parallel", "-f", "json"])
    assert sp.exit_code == 0 and plain.exit_code == 0, plain.output
    gap = json.loads(plain.output)["breakdown"]["activations"]
    gap -= json.loads(sp.output)["breakdown"]["activations"]
    # as in test_memory: (96 x 10 + 5) s b h (1 - 1/t), batch 8 of 2048 tokens, h 12288
    assert gap == pytest.approx((96 * 10 + 5) * 8 * 2048 * 12288 * 7 / 8, rel=1e-9)
    fused = runner.invoke(
        app, ["run", "-m", "llama-2-7b", "--hw", "a100", "--fuse-epilogues", "-f", "json"]
    )
    assert fused.exit_code == 0, fused.output
    names = [row["name"] for row in json.loads(fused.output)["layers"]]
    assert "block.ffn_up+ffn_act" in names and "block.ffn_act" not in names


@pytest.mark.parametrize(
    ("weights", "group", "per_weight"),
    [
        # GPTQ/AWQ int4: 4 bits, and per group of 128 an fp16 scale (2 bytes) and a 4-bit
        # zero point (0.5 bytes): 0.5 + 2.5 / 128
        ("int4", None, 0.5 + 2.5 / 128),
        ("int4", 32, 0.5 + 2.5 / 32),
        ("int4", 64, 0.5 + 2.5 / 64),
        # int8 weight-only: per-channel scales not counted; grouped: an fp16 scale, no zero
        ("int8", None, 1.0),
        ("int8", 128, 1.0 + 2 / 128),
        ("fp8", None, 1.0),
        ("fp16", None, 2.0),
    ],
)
def test_weight_bytes_with_group_scales_by_hand(weights, group, per_weight):
    """Bytes a weight = bits / 8 + (scale + zero-point bytes) / group; Llama-2-7B's
    6,738,415,616 parameters (the published count) held in that format."""
    from roofline.memory import memory_breakdown

    run = RunConfig(phase="decode", context=128, weights=weights, group_size=group)
    assert run.element_bytes[1] == per_weight
    m = memory_breakdown(get_workload("llama-2-7b"), run)
    assert float(m.params) == pytest.approx(6_738_415_616 * per_weight, rel=1e-12)


def test_group_size_refused_where_it_has_no_meaning(tmp_path):
    from typer.testing import CliRunner

    from roofline.cli import app
    from roofline.errors import FieldError

    with pytest.raises(FieldError, match="group_size 64: applies to grouped weight formats"):
        RunConfig(group_size=64)  # the weights are the fp16 of the run
    with pytest.raises(FieldError, match="group_size 64: applies to grouped"):
        RunConfig(weights="fp8", group_size=64)
    with pytest.raises(FieldError, match="group_size 0: must be a whole number"):
        RunConfig(weights="int4", group_size=0)
    runner = CliRunner()
    res = runner.invoke(app, ["run", "-m", "llama-2-7b", "--hw", "a100", "--group-size", "64"])
    assert res.exit_code == 2
    assert res.output.strip() == (
        "roofline: error: --group-size 64: applies to grouped weight formats (weights int4, int8)"
    )
    # a run file: one line naming the file and the field
    bad = tmp_path / "run.yaml"
    bad.write_text("model: llama-2-7b\nrun: {batch: 1, phase: decode, weights: int4, "
                   "group_size: -8}\n")  # fmt: skip
    res = runner.invoke(app, ["run", "--run", str(bad), "--hw", "a100"])
    assert res.exit_code == 2
    assert f"{bad}: run.group_size" in res.output and len(res.output.strip().splitlines()) == 1
