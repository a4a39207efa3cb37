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


def test_fused_epilogues_drop_the_element_wise_round_trips_llama():
    """Llama-2-7B, 512 tokens, fp16 (2 bytes): fused, the SwiGLU (read 2F, write F) goes
    into the up/gate projection, which writes F instead of 2F, and each residual add (read
    2H, write H) into the projection before it, which reads the residual stream (H) and
    writes the sum (H). Saved a layer: 2F + 2F + F - F = 4F and 2 x (H + 2H + H - 2H) =
    4H elements a token. FLOPs do not change; 3 kernels a layer fewer."""
    w = get_workload("llama-2-7b")
    run = RunConfig(batch=1, seq=512, dtype="fp16")
    plain, fused = w.layers(run), w.layers(replace(run, fused_epilogues=True))
    tokens, f, h, layers = 512, 11008, 4096, 32
    saved = plain.total_bytes.sum() - fused.total_bytes.sum()
    assert saved == pytest.approx(layers * tokens * (4 * f + 4 * h) * 2, rel=1e-12)
    assert fused.total_flops.sum() == pytest.approx(plain.total_flops.sum(), rel=1e-12)
    assert len(plain) - len(fused) == 3
    up = fused.name.astype(str).tolist().index("block.ffn_up+ffn_act")
    assert fused.output_bytes[up] == tokens * f * 2  # the activation's output only
    down = _rows(fused, "ffn_down+ffn_residual")[0]
    assert fused.input_bytes[down] == tokens * (f + h) * 2  # its input and the residual


def test_fused_epilogues_fold_batch_norm_at_inference_only_resnet():
    """ResNet-50's stem at batch 1, fp16: conv1 (64 x 112 x 112 out), its batch norm and
    ReLU. Fused at inference the conv writes once what the chain of three wrote and read
    five times: 4 x 64 x 112 x 112 x 2 bytes saved. In training batch norm needs the
    batch's statistics: the chain stops at the norm."""
    w = get_workload("resnet-50")
    run = RunConfig(batch=1, dtype="fp16")
    plain, fused = w.layers(run), w.layers(replace(run, fused_epilogues=True))
    assert fused.name[0] == "conv1+bn+act"
    out = 64 * 112 * 112
    # (the folded scale and shift are read either way)
    assert plain.bytes[:3].sum() - fused.bytes[0] == pytest.approx(4 * out * 2, rel=1e-12)
    train = replace(run, phase="training")
    assert str(w.layers(replace(train, fused_epilogues=True)).name[1]) == "conv1.bn"


def test_first_layer_input_gradient_skipped_resnet():
    """ResNet-50's conv1 (7x7, 3 -> 64, stride 2: 112 x 112 x 64 x 147 = 118,013,952
    multiply-adds an image): without its input gradient the training step runs 2x its
    forward FLOPs, not 3x: 236,027,904 FLOPs an image fewer."""
    w = get_workload("resnet-50")
    run = RunConfig(batch=8, dtype="fp16", phase="training")
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
    # as in test_memory: (96 x 10 + 2) s b h (1 - 1/t), batch 8 of 2048 tokens, h 12288
    assert gap == pytest.approx((96 * 10 + 2) * 8 * 2048 * 12288 * 7 / 8, rel=1e-9)
    fused = runner.invoke(
        app, ["run", "-m", "llama-2-7b", "--hw", "a100", "--fuse-epilogues", "-f", "json"]
    )
    assert fused.exit_code == 0, fused.output
    names = [row["name"] for row in json.loads(fused.output)["layers"]]
    assert "block.ffn_up+ffn_act" in names and "block.ffn_act" not in names
