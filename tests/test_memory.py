"""Memory footprint: hand calculations, published formulas, and the dataset's memory table."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from roofline.cli import app
from roofline.errors import RooflineError
from roofline.hardware import get_device
from roofline.memory import fits, kv_cache_bytes, memory_breakdown
from roofline.scenario import RunConfig
from roofline.validate import validate
from roofline.workloads import get_workload


def test_training_breakdown_by_hand():
    bert = get_workload("bert-large")
    p = 335_141_888
    run = RunConfig(batch=16, seq=512, dtype="fp16", phase="training")
    m = memory_breakdown(bert, run)  # Adam is the default optimizer
    assert m.params == 2 * p  # fp16 weights
    assert m.gradients == 2 * p
    assert m.optimizer == (2 * 4 + 4) * p  # Adam's two fp32 moments + an fp32 master copy
    assert m.kv_cache == 0
    assert memory_breakdown(bert, replace(run, optimizer="sgd-momentum")).optimizer == (4 + 4) * p
    assert (
        memory_breakdown(bert, replace(run, optimizer="sgd", master_weights=False)).optimizer == 0
    )
    fp32 = memory_breakdown(bert, RunConfig(batch=16, seq=512, dtype="fp32", phase="training"))
    assert fp32.optimizer == 2 * 4 * p  # no master copy needed in fp32
    assert m.total == m.params + m.gradients + m.optimizer + m.activations


def test_transformer_activations_follow_korthikanti():
    # Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer
    # Models", eq. 1): a transformer layer with dropout keeps s*b*h*(34 + 5*a*s/h) bytes in
    # 16-bit training. GPT-3: s=2048, b=1, h=12288, a=96.
    t = get_workload("gpt-3").layers(RunConfig(batch=1, seq=2048, dtype="fp16", phase="training"))
    block = np.char.startswith(t.name.astype(str), "block.") & (t.count == 96)
    per_layer = float(np.sum(t.saved_bytes[block]))
    s, b, h, a = 2048, 1, 12288, 96
    assert per_layer == s * b * h * (34 + 5 * a * s / h)


def test_recompute_keeps_block_inputs_and_one_block():
    gpt3 = get_workload("gpt-3")
    run = RunConfig(batch=1, seq=2048, dtype="fp16", phase="training")
    full = memory_breakdown(gpt3, run).activations
    ckpt = memory_breakdown(gpt3, replace(run, recompute="full")).activations
    per_layer = 2048 * 12288 * (34 + 5 * 96 * 2048 / 12288)
    outside = full - 96 * per_layer  # embeddings, final norm, LM head and its logits
    assert ckpt == pytest.approx(outside + 96 * 2 * 2048 * 12288 + per_layer, rel=1e-9)
    assert ckpt < full / 10


def test_kv_cache_per_token():
    # Llama-2-7B: 2 (K, V) x 32 layers x 4096 x 2 bytes = 524,288 bytes a token in fp16;
    # Llama-2-70B with grouped-query attention: 2 x 80 x (8 x 128) x 2 = 327,680
    for key, per_token in (("llama-2-7b", 524_288), ("llama-2-70b", 327_680)):
        w = get_workload(key)
        run = RunConfig(batch=4, dtype="fp16", phase="decode", context=1000)
        assert kv_cache_bytes(w, run) == 4 * (1000 + 1) * per_token  # cached + the new token
    assert kv_cache_bytes(get_workload("bert-large"), RunConfig()) == 0


def test_inference_fits_and_min_devices():
    w = get_workload("llama-2-70b")
    m = memory_breakdown(w, RunConfig(batch=1, dtype="fp16", phase="decode", context=4096))
    assert m.params == 2 * 68_976_648_192  # 138 GB of fp16 weights
    h100, h200 = get_device("h100"), get_device("h200")
    out = {f.device.key: f for f in fits(m, [h100, h200])}
    assert not out["h100"].fits and out["h100"].min_devices == 2  # 139.3 GB > 80 GB
    assert out["h200"].fits and out["h200"].min_devices == 1  # < 141 GB


def test_bad_optimizer():
    with pytest.raises(RooflineError, match="optimizer adagrad: unknown; allowed: sgd"):
        memory_breakdown(
            get_workload("bert-large"), RunConfig(phase="training", optimizer="adagrad")
        )


def test_dataset_memory_table_is_reproduced():
    """Params and optimizer within 3 % (or the half digit the table prints), activations
    within 15 %, for every row of the dataset's training memory table, except a row flagged
    with its reason."""
    rows = [
        c
        for c in validate()
        if c.metric in ("memory_params", "memory_optimizer", "memory_activations")
    ]
    assert len(rows) == 8 * 3
    for c in rows:
        assert c.ok, (c.model, c.metric, c.rel_error)
        if not c.flagged:
            assert abs(c.rel_error) <= c.tolerance
    flagged = {c.model for c in rows if c.flagged}
    assert flagged == {"transformer-big"}
    acts = {c.model: c for c in rows if c.metric == "memory_activations"}
    assert abs(acts["bert-large"].rel_error) < 0.05  # 14.92 GB vs 14.38
    assert abs(acts["resnet152"].rel_error) < 0.05


def test_memory_table_units_are_detected():
    flagged = {(c.model, c.metric): c.reason for c in validate() if c.flagged}
    assert "in GB (1e9 B)" in flagged[("bert-large", "memory_unit")]


def test_memory_cli_json():
    res = CliRunner().invoke(
        app,
        [
            "memory",
            "-m",
            "bert-large",
            "--batch",
            "16",
            "--seq",
            "512",
            "--hw",
            "v100,a100",
            "-f",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert set(data["breakdown"]) == {
        "params",
        "gradients",
        "optimizer",
        "activations",
        "kv_cache",
        "total",
    }
    assert data["breakdown"]["optimizer"] == 12 * 335_141_888
    devices = {d["device"]: d for d in data["devices"]}
    assert devices["v100"]["capacity_bytes"] == 16 * 2**30  # "16 GB" of HBM2: binary (JEDEC)
    total = data["breakdown"]["total"]
    assert devices["a100"]["fits"] == (total <= 80 * 2**30)
    assert devices["v100"]["min_devices"] == -(-total // (16 * 2**30))
    res = CliRunner().invoke(app, ["memory", "-m", "bert-large", "--optimizer", "rmsprop"])
    assert res.exit_code == 2 and "allowed: sgd" in res.stderr


@pytest.mark.parametrize(
    ("pp", "micro", "local", "in_flight"),
    [(8, 1, 16, 8), (8, 2, 16, 8), (8, 4, 16, 4), (32, 1, 16, 16), (1, 4, 16, 1)],
)
def test_1f1b_activations_follow_korthikanti(pp, micro, local, in_flight):
    """Korthikanti et al. 2022, sec. 4.2: under 1F1B the first stage holds the activations
    of `pp` micro-batches (fewer when there are fewer), each for L/pp layers, so per device
    L s b h (34 + 5 a s / h) / t with b the micro-batch: independent of pp. GPT-3 175B,
    s = 2048, h = 12288, a = 96, L = 96, tp 8 (even split, as with sequence parallelism)."""
    from roofline.scenario import Layout

    w = get_workload("gpt-3")
    t = 8
    run = RunConfig(
        batch=local * 2,
        seq=2048,
        dtype="fp16",
        phase="training",
        layout=Layout(data=2, tensor=t, pipeline=pp),
        micro_batch=micro,
    )
    m = memory_breakdown(w, run)
    s, h, a, layers = 2048, 12288, 96, 96
    per_layer = s * micro * h * (34 + 5 * a * s / h)
    blocks = layers / pp * per_layer * in_flight / t
    one_micro = memory_breakdown(
        w, RunConfig(batch=micro, seq=2048, dtype="fp16", phase="training")
    ).activations
    outside = one_micro - layers * per_layer  # embeddings, final norm, head: also split
    assert m.activations == pytest.approx(blocks + outside / pp * in_flight / t, rel=1e-12)
    if in_flight == pp:  # the paper's case: the first stage's memory does not depend on pp
        assert blocks == pytest.approx(layers * per_layer / t)


def test_selective_recompute_drops_the_attention_matrices():
    # Korthikanti et al. 2022, eq. 7: with selective recomputation a layer keeps 34 s b h
    # bytes (the 5 a s^2 b of softmax, its dropout mask and output are recomputed)
    w = get_workload("gpt-3")
    base = RunConfig(batch=1, seq=2048, dtype="fp16", phase="training")
    full = memory_breakdown(w, base).activations
    sel = memory_breakdown(w, replace(base, recompute="selective")).activations
    s, a = 2048, 96
    assert full - sel == pytest.approx(96 * 5 * a * s * s)


def test_tensor_parallel_without_sequence_parallelism_follows_korthikanti():
    """Korthikanti et al. 2022, eq. 2 against eq. 4: plain tensor parallelism keeps a
    layer's s b h (10 + 24/t + 5 a s/(h t)) bytes on every rank, sequence parallelism
    s b h (34/t + 5 a s/(h t)); the 10 s b h (two norm inputs, the inputs of the QKV and
    the first MLP projection, two dropout masks) are whole on every rank without it. So
    the difference per device is 96 layers x 10 s b h (1 - 1/t), plus, outside the layers
    (the paper's sec. 4.3), the final norm's input (2 s b h), the output layer's input
    (2 s b h) and the embedding's dropout mask (s b h), each x (1 - 1/t). GPT-3, s = 2048,
    b = 1, h = 12288, t = 8."""
    from roofline.scenario import Layout

    w = get_workload("gpt-3")
    s, b, h, t = 2048, 1, 12288, 8
    base = RunConfig(batch=b, seq=s, dtype="fp16", phase="training", layout=Layout(1, t, 1))
    sp = memory_breakdown(w, base).activations
    plain = memory_breakdown(w, replace(base, sequence_parallel=False)).activations
    assert plain - sp == pytest.approx((96 * 10 + 2 + 2 + 1) * s * b * h * (1 - 1 / t), rel=1e-12)
    # per layer, by the paper's two formulas
    per_layer_plain = s * b * h * (10 + 24 / t + 5 * 96 * s / (h * t))
    per_layer_sp = s * b * h * (34 / t + 5 * 96 * s / (h * t))
    assert per_layer_plain - per_layer_sp == pytest.approx(10 * s * b * h * (1 - 1 / t))
    # at tensor 1 the setting changes nothing
    one = replace(base, layout=Layout())
    assert memory_breakdown(w, one) == memory_breakdown(w, replace(one, sequence_parallel=False))
