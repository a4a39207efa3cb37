"""Sweeps, what-if answers and parallel layouts, against the per-scenario path and by hand."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from roofline import RunConfig, analyze, get_device, get_workload
from roofline.answers import answers
from roofline.cli import app
from roofline.costmodel import cost_model
from roofline.errors import RooflineError
from roofline.memory import memory_breakdown
from roofline.parallel import communication, min_layout
from roofline.scenario import Layout
from roofline.step import step_time
from roofline.sweep import evaluate_grid
from roofline.whatif import build_sweep, run_sweep, scaled

DEVICES = ["a100", "h100", "mi300x", "tpu-v4"]


@pytest.mark.parametrize(
    ("key", "phase", "batches", "seqs", "contexts", "dtype"),
    [
        ("bert-large", "inference", [1, 8, 64], [128, 512], [None], "bf16"),
        ("bert-large", "training", [4, 16], [64, 512], [None], "bf16"),
        ("resnet-50", "training", [1, 32], [None], [None], "bf16"),
        ("llama-2-7b", "decode", [1, 16], [None], [256, 4096], "bf16"),
        ("t5-base", "inference", [2], [100, 300], [None], "bf16"),
        ("elmo", "training", [3], [20], [None], "bf16"),
    ],
)
def test_sweep_matches_the_per_scenario_path(key, phase, batches, seqs, contexts, dtype):
    w = get_workload(key)
    devs = [get_device(d) for d in DEVICES]
    sweep = build_sweep(
        w,
        devs,
        batches=batches,
        seqs=seqs,
        contexts=contexts,
        dtypes=[dtype],
        replicas=[1],
        run=RunConfig(phase=phase),
    )
    out = run_sweep(sweep)
    g = sweep.grid
    for i in range(g.scenarios):
        seq = int(g.seq[i]) if w.arch.takes_seq and phase != "decode" else None
        ctx = int(g.context[i]) if phase == "decode" else None
        run = RunConfig(batch=int(g.batch[i]), seq=seq, dtype=dtype, phase=phase, context=ctx)
        assert out.memory_bytes[i] == pytest.approx(memory_breakdown(w, run).total, rel=1e-9)
        for j, d in enumerate(devs):
            r = analyze(w, d, run)
            assert out.time_s[i, j] == pytest.approx(r.total_time_s, rel=1e-9)
            assert out.memory_bound_share[i, j] == pytest.approx(
                r.memory_bound_time_share, abs=1e-9
            )


def test_mixture_of_experts_is_swept_scenario_by_scenario():
    from roofline.costmodel import NotPolynomial

    w = get_workload("mixtral-8x7b")
    with pytest.raises(NotPolynomial, match="not polynomial"):
        cost_model(w, RunConfig())
    devs = [get_device("h200"), get_device("mi300x")]
    for base, seqs, contexts in (
        (RunConfig(), [128, 1024], [None]),
        (RunConfig(phase="decode", layout=Layout(tensor=2)), [None], [256, 2048]),
    ):
        sweep = build_sweep(
            w,
            devs,
            base,
            batches=[1, 16],
            seqs=seqs,
            contexts=contexts,
            dtypes=["fp16"],
            replicas=[1],
        )
        out = run_sweep(sweep)
        g = sweep.grid
        for i in range(g.scenarios):
            seq = int(g.seq[i]) if base.phase != "decode" else None
            ctx = int(g.context[i]) if base.phase == "decode" else None
            run = replace(base, batch=int(g.batch[i]), seq=seq, context=ctx)
            assert out.memory_bytes[i] == pytest.approx(memory_breakdown(w, run).total, rel=1e-9)
            for j, d in enumerate(devs):
                step = step_time(w, run, d)
                assert out.time_s[i, j] == pytest.approx(step.total_s, rel=1e-9)
                assert out.expected_time_s[i, j] == pytest.approx(step.expected_s, rel=1e-9)
    # the compute-bound batch of a MoE prefill, found by bisection, against the slow path
    sweep = build_sweep(
        w, [devs[0]], batches=[1], seqs=[64], contexts=[None], dtypes=["fp16"], replicas=[1]
    )
    (ans,) = answers(sweep)
    b, ridge = ans.compute_bound_batch, devs[0].ridge_point("fp16")
    assert analyze(w, devs[0], RunConfig(batch=b, seq=64)).intensity_overall >= ridge
    assert b == 1 or analyze(w, devs[0], RunConfig(batch=b - 1, seq=64)).intensity_overall < ridge


def test_chunked_summaries_equal_the_full_grid():
    w = get_workload("bert-large")
    sweep = build_sweep(
        w,
        [get_device("a100"), get_device("h100")],
        batches=list(range(1, 40)),
        seqs=[64, 128, 256],
        contexts=[None],
        dtypes=["fp16", "bf16"],
        replicas=[1],
    )
    whole = evaluate_grid(sweep.model, sweep.grid, chunk=1 << 20)
    parts = []
    assert (
        evaluate_grid(
            sweep.model,
            sweep.grid,
            chunk=10,
            keep=False,
            reduce=lambda start, o: parts.append((start, o)),
        )
        is None
    )
    assert len(parts) == 24  # 234 scenarios in chunks of 10
    for start, o in parts:
        n = len(o.memory_bytes)
        np.testing.assert_array_equal(o.time_s, whole.time_s[start : start + n])
        np.testing.assert_array_equal(o.memory_bytes, whole.memory_bytes[start : start + n])
    # and one chunked scenario against the per-scenario path
    batch, seq, _, dt, _ = sweep.grid.chunk(233, 234)
    r = analyze(w, "h100", RunConfig(batch=int(batch[0]), seq=int(seq[0]), dtype="bf16"))
    assert int(dt[0]) == 1 and parts[-1][1].time_s[-1, 1] == pytest.approx(r.total_time_s, rel=1e-9)


def test_compute_bound_batch_and_max_batch_against_the_slow_path():
    w, a100 = get_workload("bert-large"), get_device("a100")
    sweep = build_sweep(
        w, [a100], batches=[1, 2], seqs=[512], contexts=[None], dtypes=["fp16"], replicas=[1]
    )
    (ans,) = answers(sweep)
    b = ans.compute_bound_batch
    ridge = 312e12 / 2039e9
    assert analyze(w, a100, RunConfig(batch=b, seq=512)).intensity_overall >= ridge
    assert analyze(w, a100, RunConfig(batch=b - 1, seq=512)).intensity_overall < ridge
    m = ans.max_batch
    assert memory_breakdown(w, RunConfig(batch=m, seq=512)).total <= 80 * 2**30
    assert memory_breakdown(w, RunConfig(batch=m + 1, seq=512)).total > 80 * 2**30


def test_decode_never_turns_compute_bound_at_long_context():
    # Llama-2-7B at 4096 tokens of context: each sample reads 2.1 GB of KV cache for ~18 GFLOP,
    # so intensity stays below ~9 FLOP/B whatever the batch: never above the A100's 153.
    w = get_workload("llama-2-7b")
    sweep = build_sweep(
        w,
        [get_device("a100")],
        batches=[1],
        seqs=[None],
        contexts=[4096],
        dtypes=["fp16"],
        replicas=[1],
        run=RunConfig(phase="decode"),
    )
    (ans,) = answers(sweep)
    assert ans.compute_bound_batch is None
    # By hand: fp16 weights 2 x 6,738,415,616 B; per sample the KV cache of 4,097 keys
    # (the new token attends to the 4,096 cached and itself) x 2 (K, V) x 32 layers x 4,096
    # x 2 B = 2,148,007,936 B, plus 33,833,024 B of activations (the 11,008-wide MLP, one
    # token), on 80 GiB (the A100's "80 GB" of HBM2e is binary, JEDEC):
    # (85,899,345,920 - 13,476,831,232) / 2,181,840,960 = 33.19 -> 33.
    assert ans.max_batch == 33
    assert ans.max_batch_note is None


def test_max_batch_shards_the_training_state_over_the_replicas():
    # Llama-2-7B, Adam with fp32 master weights (16 B/param), on 128 H100 (80 GB) with ZeRO-1:
    # one device alone cannot hold the 108 GB state, but ZeRO over 128 replicas can, so the
    # largest batch must be > 0 and agree with the per-run memory at 128-way data parallel.
    w, h100 = get_workload("llama-2-7b"), get_device("h100")
    run = RunConfig(phase="training", layout=Layout(zero=1))
    sweep = build_sweep(
        w, [h100], run, batches=[128], seqs=[2048], contexts=[None], dtypes=["bf16"], replicas=[128]
    )
    (ans,) = answers(sweep)
    m = ans.max_batch
    assert m is not None and m > 0 and ans.max_batch_note is None

    def per_device(b: int) -> float:
        return memory_breakdown(
            w, replace(run, batch=b, seq=2048, dtype="bf16", layout=Layout(data=128, zero=1))
        ).total

    assert m % 128 == 0  # whole samples per replica
    assert per_device(m) <= 80e9 < per_device(m + 128)


def test_max_batch_is_any_when_a_fixed_micro_batch_keeps_memory_flat():
    # With --micro-batch 1, more samples are more micro-batches: the footprint does not grow,
    # so there is no largest batch; the answer is None with the reason, null in JSON.
    w = get_workload("llama-2-7b")
    run = RunConfig(
        phase="training", layout=Layout(tensor=2, zero=1), micro_batch=1, recompute="full"
    )
    sweep = build_sweep(
        w,
        [get_device("h100")],
        run,
        batches=[64, 512],
        seqs=[4096],
        contexts=[None],
        dtypes=["bf16"],
        replicas=[64],
    )
    (ans,) = answers(sweep)
    assert ans.max_batch is None
    assert ans.max_batch_note is not None and "fixed micro-batch" in ans.max_batch_note


def test_time_to_train_gpt3_on_1024_a100s():
    w = get_workload("gpt-3")
    sweep = build_sweep(
        w,
        [get_device("a100")],
        batches=[1024],
        seqs=[2048],
        contexts=[None],
        dtypes=["fp16"],
        replicas=[1024],
        run=RunConfig(phase="training"),
    )
    (ans,) = answers(sweep, utilization=0.4, price_per_hour=2.0)
    (train,) = ans.training
    # by hand: 6 x 175e9 params x 300e9 tokens = 3.15e23 FLOP (plus attention, +2.6% here)
    # / (1024 x 312e12 FLOP/s x 0.4) = 2.46e6 s = 28.5 days
    assert train.days == pytest.approx(3.15e23 / (1024 * 312e12 * 0.4) / 86400, rel=0.05)
    assert train.days == pytest.approx(train.training_flops / (1024 * 312e12 * 0.4) / 86400)
    assert train.cost == pytest.approx(train.days * 24 * 1024 * 2.0)


def test_scaled_devices():
    a100 = get_device("a100")
    fast = scaled(a100, flops=0.5, bandwidth=2, capacity=1.5)
    assert fast.peak("fp16") == 156e12 and fast.memory_bandwidth_bytes_per_s == 4078e9
    assert fast.memory_capacity_bytes == 120 * 2**30 and fast.key == "a100[flopsx0.5,bwx2,capx1.5]"
    with pytest.raises(RooflineError, match="bandwidth_scale 0: must be > 0"):
        scaled(a100, bandwidth=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batches": []}, "batch: empty sweep axis"),
        ({"replicas": [3]}, "replicas 3: the batch of 8 cannot be split"),
        ({"dtypes": ["fp8"]}, "has no fp8 peak"),
        ({"contexts": [64]}, "context: applies to phase decode only"),
        ({"seqs": [4096]}, "takes at most 512 tokens"),
        # the axes own the batch: a micro-batch must divide each swept local batch (it was
        # floored: 6 // 4 = 1 micro-batch of a step of 6 samples)
        (
            {
                "run": RunConfig(batch=8, phase="training", layout=Layout(1, 1, 2), micro_batch=4),
                "batches": [8, 6],
            },
            r"micro_batch 4: must divide the batch of one data-parallel replica \(6\)",
        ),
    ],
)
def test_bad_sweeps(kwargs, message):
    args = {"batches": [8], "seqs": [128], "contexts": [None], "dtypes": ["fp16"], "replicas": [1]}
    with pytest.raises(RooflineError, match=message):
        build_sweep(get_workload("bert-large"), [get_device("v100")], **(args | kwargs))


def test_parallel_memory_and_communication_by_hand():
    w = get_workload("gpt-3")
    run = RunConfig(batch=64, seq=2048, dtype="fp16", phase="training")
    p = w.params
    layout = Layout(data=8, tensor=8, pipeline=4, zero=1)
    m = memory_breakdown(w, replace(run, layout=layout))
    assert m.params == pytest.approx(2 * p / 32)  # split over tensor x pipeline
    assert m.optimizer == pytest.approx(12 * p / 32 / 8)  # ZeRO-1 shards it over data too
    # 1F1B with the default micro-batch of 1 when pipelined: the first stage holds 4 (the
    # stages) of the 8 local micro-batches, each of a quarter of the layers, split over tp 8
    one = memory_breakdown(w, RunConfig(batch=1, seq=2048, dtype="fp16", phase="training"))
    assert m.activations == pytest.approx(one.activations * 4 / 32)
    c = communication(w, replace(run, layout=layout))
    assert c.data_bytes == pytest.approx(2 * 7 / 8 * 2 * p / 32)  # ring all-reduce of fp16 grads
    # tensor: 4 all-reduces a block (2 forward, 2 backward) of 8 x 2048 x 12288 fp16 values
    assert c.tensor_bytes == pytest.approx(96 / 4 * 4 * 2 * 7 / 8 * 8 * 2048 * 12288 * 2)
    assert c.time_s(get_device("a100")) == pytest.approx(c.total_bytes / 300e9)  # 600 bidir


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"tensor": 5}, "layout.tensor 5: gpt-3 has 96 heads, not divisible by 5"),
        ({"pipeline": 7}, "layout.pipeline 7: gpt-3 has 96 blocks; they cannot be split into 7"),
        ({"data": 3}, "layout.data 3: the batch of 64 cannot be split"),
        ({"zero": 4}, "layout.zero 4: allowed: 0, 1, 2, 3"),
    ],
)
def test_impossible_layouts(layout, message):
    w = get_workload("gpt-3")
    with pytest.raises(RooflineError, match=message):
        memory_breakdown(w, RunConfig(batch=64, phase="training", layout=Layout(**layout)))


def test_min_layout_fits():
    w, a100 = get_workload("llama-2-70b"), get_device("a100")
    run = RunConfig(batch=8, seq=4096, dtype="bf16", phase="training")
    run = replace(run, recompute="full")
    layout = min_layout(w, run, a100)
    assert layout is not None
    assert memory_breakdown(w, replace(run, layout=layout)).total <= 80e9
    # fp16 weights + grads + Adam state and master copy: 16 bytes x 69e9 = 1.1 TB: >= 14 A100s
    assert layout.devices >= 14


def test_whatif_cli_json_and_errors():
    res = CliRunner().invoke(
        app,
        [
            "whatif",
            "-m",
            "bert-large",
            "--hw",
            "a100,h100",
            "--batch",
            "1,8",
            "--seq",
            "128,512",
            "-f",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert len(data["scenarios"]) == 2 * 2 * 2
    assert {a["device"] for a in data["answers"]} == {"a100", "h100"}
    row = data["scenarios"][0]
    r = analyze("bert-large", row["device"], RunConfig(batch=row["batch"], seq=row["seq"]))
    assert row["time_s"] == pytest.approx(r.total_time_s)
    assert row["expected_time_s"] == pytest.approx(r.total_expected_time_s)
    assert row["tokens_per_s"] == pytest.approx(row["batch"] * row["seq"] / row["expected_time_s"])
    for args, message in (
        (["--batch", ""], "--batch: empty sweep axis"),
        (["--batch", "1,x"], "expected whole numbers"),
        (["--bw-scale", "-1"], "--bw-scale -1.0: must be > 0"),
        (["--optimizer", "adagrad"], "--optimizer adagrad: unknown"),
        (["--dp", "3", "--batch", "8"], "cannot be split into 3"),
    ):
        res = CliRunner().invoke(app, ["whatif", "-m", "bert-large", "--hw", "a100", *args])
        assert res.exit_code == 2, (args, res.output)
        assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_memory_cli_layouts():
    res = CliRunner().invoke(
        app,
        [
            "memory",
            "-m",
            "llama-2-70b",
            "--phase",
            "decode",
            "--batch",
            "8",
            "--context",
            "4096",
            "--tp",
            "4",
            "--hw",
            "h100",
            "-f",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["layout"] == {"data": 1, "tensor": 4, "pipeline": 1, "zero": 0, "devices": 4}
    # per device: a quarter of the fp16 weights and of the KV cache (8 x 4096 x 327,680 B)
    assert data["breakdown"]["params"] == pytest.approx(2 * 68_976_648_192 / 4)
    assert data["breakdown"]["kv_cache"] == pytest.approx(8 * (4096 + 1) * 327_680 / 4)
    (h100,) = data["devices"]
    assert h100["fits"] and h100["min_devices"] == 2  # 149 GB unsharded / 80 GB
    assert h100["min_layout"]["devices"] == 2 and h100["min_layout"]["zero"] == 0
    # tensor parallel decode: 2 all-reduces a layer of 8 tokens x 8192 values, ring over 4
    assert data["communication_bytes"]["tensor"] == pytest.approx(80 * 2 * 2 * 3 / 4 * 8 * 8192 * 2)
    assert h100["communication_time_s"] == pytest.approx(
        data["communication_bytes"]["tensor"] / 450e9
    )
    # step = the data-parallel share's roofline time over the 4 devices + the all-reduces
    share = analyze("llama-2-70b", "h100", RunConfig(batch=8, phase="decode", context=4096))
    expected = share.total_time_s / 4 + h100["communication_time_s"]
    assert h100["step_time_s"] == pytest.approx(expected)
    bad = CliRunner().invoke(app, ["memory", "-m", "gpt-3", "--tp", "5"])
    assert bad.exit_code == 2 and "--tp 5: gpt-3 has 96 heads" in bad.stderr


@settings(max_examples=40)
@given(
    key=st.sampled_from(["bert-large", "gpt-2", "resnet-50", "t5-base"]),
    batch=st.integers(1, 64),
    seq=st.integers(1, 512),
    phase=st.sampled_from(["inference", "training"]),
)
@pytest.mark.slow  # property test over many settings
def test_sweep_equals_the_slow_path_anywhere(key, batch, seq, phase):
    w = get_workload(key)
    s = seq if w.arch.takes_seq else None
    sweep = build_sweep(
        w,
        [get_device("h100")],
        batches=[batch],
        seqs=[s],
        contexts=[None],
        dtypes=["bf16"],
        replicas=[1],
        run=RunConfig(phase=phase),
    )
    out = run_sweep(sweep)
    run = RunConfig(batch=batch, seq=s, dtype="bf16", phase=phase)
    assert out.time_s[0, 0] == pytest.approx(analyze(w, "h100", run).total_time_s, rel=1e-9)
    assert out.memory_bytes[0] == pytest.approx(memory_breakdown(w, run).total, rel=1e-9)


@settings(max_examples=40)
@given(
    batch=st.integers(1, 256),
    seq=st.integers(1, 511),
    phase=st.sampled_from(["inference", "training"]),
)
def test_memory_never_shrinks_with_more_batch_or_sequence(batch, seq, phase):
    w = get_workload("bert-large")
    base = memory_breakdown(w, RunConfig(batch=batch, seq=seq, phase=phase)).total
    assert memory_breakdown(w, RunConfig(batch=batch + 1, seq=seq, phase=phase)).total >= base
    assert memory_breakdown(w, RunConfig(batch=batch, seq=seq + 1, phase=phase)).total >= base


@settings(max_examples=60)
@given(
    key=st.sampled_from(["gpt-2", "bert-large", "t5-base", "resnet-50", "elmo", "llama-2-7b"]),
    batch=st.sampled_from([4, 8, 12, 24]),
    seq=st.integers(1, 256),
    replicas=st.sampled_from([1, 2, 4]),
    optimizer=st.sampled_from(["sgd", "sgd-momentum", "adam", "adamw", "lamb", "adafactor"]),
    recompute=st.sampled_from(["none", "selective", "full"]),
    zero=st.sampled_from([0, 1, 2, 3]),
    tensor=st.sampled_from([1, 2, 4]),
    pipeline=st.sampled_from([1, 2, 3]),
    master=st.booleans(),
    dtype=st.sampled_from(["bf16", "fp32"]),
    sp=st.booleans(),
    fused=st.booleans(),
    first_grad=st.booleans(),
    overlap=st.sampled_from([0.0, 0.5, 1.0]),
)
@pytest.mark.slow  # property test over many settings
def test_sweep_equals_the_per_run_path_for_every_training_setting(
    key,
    batch,
    seq,
    replicas,
    optimizer,
    recompute,
    zero,
    tensor,
    pipeline,
    master,
    dtype,
    sp,
    fused,
    first_grad,
    overlap,
):
    """One formula per fact: the sweep's memory and step time are the per-run path's
    (memory.memory_breakdown, step.step_time) for every optimizer, recompute setting,
    ZeRO stage and layout the model can take."""
    from hypothesis import assume

    w = get_workload(key)
    layout = Layout(replicas, tensor, pipeline, zero)
    try:
        w.check_layout(layout)
    except RooflineError:
        assume(False)
    s = min(seq, w.arch.max_seq) if w.arch.takes_seq else None
    base = RunConfig(
        phase="training",
        optimizer=optimizer,
        recompute=recompute,
        master_weights=master,
        layout=Layout(1, tensor, pipeline, zero),
        sequence_parallel=sp,
        fused_epilogues=fused,
        first_input_grad=first_grad,
        dp_overlap=overlap,
    )
    devices = [get_device("h100"), get_device("a100"), _cpu_with_cache()]
    sweep = build_sweep(
        w,
        devices,
        base,
        batches=[batch],
        seqs=[s],
        contexts=[None],
        dtypes=[dtype],
        replicas=[replicas],
    )
    out = run_sweep(sweep)
    run = replace(base, batch=batch, seq=s, dtype=dtype, layout=layout)
    assert out.memory_bytes[0] == pytest.approx(memory_breakdown(w, run).total, rel=1e-9)
    for j, d in enumerate(devices):
        step = step_time(w, run, d)
        assert out.time_s[0, j] == pytest.approx(step.total_s, rel=1e-9)
        assert out.expected_time_s[0, j] == pytest.approx(step.expected_s, rel=1e-9)


def _cpu_with_cache():
    from pathlib import Path

    from roofline.hardware import load_device_file

    return load_device_file(Path(__file__).parent / "data" / "cpu-with-cache.yaml")


@pytest.mark.parametrize(
    ("device", "storage"),
    [
        ("h100", {}),
        ("cpu", {}),
        ("h100", {"weights": "int4", "kv_dtype": "fp8"}),
        ("h100", {"sequence_parallel": False, "fused_epilogues": True}),
    ],
)
def test_sweep_equals_the_per_run_path_for_tensor_parallel_decode(device, storage):
    w = get_workload("llama-2-7b")
    base = RunConfig(phase="decode", layout=Layout(1, 4, 1, 0), dtype="bf16", **storage)
    dev = get_device("h100") if device == "h100" else _cpu_with_cache()
    sweep = build_sweep(
        w,
        [dev],
        base,
        batches=[8, 16],
        seqs=[None],
        contexts=[512, 4096],
        dtypes=["bf16"],
        replicas=[1],
    )
    out = run_sweep(sweep)
    g = sweep.grid
    for i in range(g.scenarios):
        run = replace(base, batch=int(g.batch[i]), context=int(g.context[i]))
        assert out.memory_bytes[i] == pytest.approx(memory_breakdown(w, run).total, rel=1e-9)
        step = step_time(w, run, dev)
        assert out.time_s[i, 0] == pytest.approx(step.total_s, rel=1e-9)
        assert out.expected_time_s[i, 0] == pytest.approx(step.expected_s, rel=1e-9)


@pytest.mark.parametrize(
    ("device", "phase", "attention_dtype"),
    [("h100", "prefill", None), ("h100", "prefill", "fp8"), ("l40s", "training", None)],
)
def test_sweep_equals_the_per_run_path_for_fp8_attention(device, phase, attention_dtype):
    """An fp8 run's fused attention at the bf16 rate (a measured kernel on the H100, the
    bf16 GEMM ceiling on the L40S, FP8 where asked): the sweep's grid kernel gives the
    per-run path's expected time, fp8 and bf16 side by side in one sweep."""
    w = get_workload("llama-2-7b")
    base = RunConfig(phase=phase, attention="flash", attention_dtype=attention_dtype)
    dev = get_device(device)
    sweep = build_sweep(
        w, [dev], base, batches=[1, 4], seqs=[1024, 4096], contexts=[None],
        dtypes=["fp8", "bf16"], replicas=[1],
    )  # fmt: skip
    out = run_sweep(sweep)
    g = sweep.grid
    for i in range(g.scenarios):
        dtype = g.dtypes[int(g.dtype[i])]
        run = replace(base, batch=int(g.batch[i]), seq=int(g.seq[i]), dtype=dtype)
        step = step_time(w, run, dev)
        assert out.expected_time_s[i, 0] == pytest.approx(step.expected_s, rel=1e-9)


def test_whatif_csv_of_any_size_is_streamed(tmp_path, monkeypatch):
    """Beyond the in-memory limit a what-if's CSV is written chunk by chunk: the same rows
    as the in-memory path, every one of them, never an empty file."""
    import csv

    from roofline.cli import plan as cli

    args = ["whatif", "-m", "bert-large", "--hw", "a100,h100", "--batch", "1,2,3", "--seq"]
    args += ["64,128", "-f", "csv"]
    small = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "small.csv")])
    assert small.exit_code == 0, small.output
    monkeypatch.setattr(cli, "ROW_LIMIT", 5)  # 12 pairs: now streamed
    big = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "big.csv")])
    assert big.exit_code == 0, big.output
    assert "wrote 12 rows" in big.stderr
    rows = list(csv.DictReader((tmp_path / "big.csv").open()))
    want = list(csv.DictReader((tmp_path / "small.csv").open()))
    assert len(rows) == 12 and [r["device"] for r in rows] == [r["device"] for r in want]
    for r, w in zip(rows, want):
        assert float(r["expected_time_s"]) == pytest.approx(float(w["expected_time_s"]))
        assert r["fits"] == w["fits"] and int(r["batch"]) == int(w["batch"])
    refused = CliRunner().invoke(app, [*args[:-1], "json"])
    assert refused.exit_code == 2 and "--format csv" in refused.stderr


def test_whatif_layout_answers_as_memory_does():
    """The same layout through whatif and memory: the same memory per device, bound and
    expected step time."""
    common = ["-m", "bert-large", "--hw", "h100", "--phase", "training", "--seq", "512"]
    layout = ["--tp", "2", "--pp", "3", "--zero", "1", "-f", "json"]
    w = CliRunner().invoke(app, ["whatif", *common, "--batch", "16", "--dp", "2", *layout])
    m = CliRunner().invoke(app, ["memory", *common, "--batch", "16", "--dp", "2", *layout])
    assert w.exit_code == 0 and m.exit_code == 0, (w.output, m.output)
    (row,) = json.loads(w.stdout)["scenarios"]
    (dev,) = json.loads(m.stdout)["devices"]
    memory = json.loads(m.stdout)["breakdown"]["total"]
    assert row["memory_bytes_per_device"] == pytest.approx(memory, rel=1e-9)
    assert row["time_s"] == pytest.approx(dev["step_time_s"], rel=1e-9)
    assert row["expected_time_s"] == pytest.approx(dev["expected_step_time_s"], rel=1e-9)


def test_time_to_train_on_given_tokens_by_hand():
    """'How long to train a 7B model on 1T tokens on 256 H100 at 40 % MFU, and what does it
    cost?' 128 replicas x tp 2 = 256 devices; training FLOPs = 1e12 / 4096 samples x one
    sample's training-step FLOPs (forward + backward, from the layer table)."""
    w, h100 = get_workload("llama-2-7b"), get_device("h100")
    base = RunConfig(phase="training", layout=Layout(tensor=2))
    sweep = build_sweep(
        w,
        [h100],
        base,
        batches=[1024],
        seqs=[4096],
        contexts=[None],
        dtypes=["bf16"],
        replicas=[128],
    )
    (ans,) = answers(sweep, utilization=0.4, price_per_hour=2.5, tokens=1e12)
    (t,) = ans.training
    per_sample = w.layers(RunConfig(seq=4096, phase="training", optimizer=None)).total_flops
    flops = per_sample.sum() * 1e12 / 4096
    assert t.devices == 256 and t.training_flops == pytest.approx(flops)
    assert flops == pytest.approx(6 * w.params * 1e12, rel=0.25)  # 6 N D, plus attention
    days = flops / (256 * 989.4e12 * 0.4) / 86400
    assert t.days == pytest.approx(days) and t.cost == pytest.approx(days * 24 * 256 * 2.5)
    assert t.expected_days is not None and t.expected_days > 0
    with pytest.raises(RooflineError, match="tokens 0"):
        answers(sweep, utilization=0.4, tokens=0)


def test_whatif_hw_all_takes_every_device_with_the_dtype():
    from pathlib import Path

    import yaml

    # independently: the device files whose peak table names bf16 (custom/ and defaults/
    # are not devices)
    with_bf16 = set()
    for path in (Path(__file__).resolve().parent.parent / "hardware").glob("*.yaml"):
        if "bf16" in (yaml.safe_load(path.read_text(encoding="utf-8")).get("peak") or {}):
            with_bf16.add(path.stem)
    res = CliRunner().invoke(
        app, ["whatif", "-m", "bert-large", "--hw", "all", "--dtype", "bf16", "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {a["device"] for a in data["answers"]} == with_bf16
    assert "without bf16: gtx-580" in res.stderr  # the skipped ones are named


def test_prices_per_device_and_cost_per_million_tokens():
    """'Which GPU gives the most tokens per dollar for Llama-3-8B decode?' The files' prices:
    H100 $55.04 / 8 = $6.88 an hour (AWS p5.48xlarge), A100 80GB $27.44705 / 8 = $3.4309
    (p4de.24xlarge), MI300X $19.12 / 8 = $2.39 (RunPod 8 x MI300X); MI325X has none (no
    public on-demand listing found): null, said per row."""
    args = ["whatif", "-m", "llama-3-8b", "--hw", "h100,a100,mi300x,mi325x", "--phase", "decode"]
    args += ["--context", "2048", "--batch", "64", "--dtype", "bf16", "-f", "json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = {
        r["device"]: r for r in json.loads(res.stdout, parse_constant=_no_constants)["scenarios"]
    }
    for key, hourly in (("h100", 55.04 / 8), ("a100", 27.44705 / 8), ("mi300x", 19.12 / 8)):
        r = rows[key]
        assert r["price_per_device_hour"] == pytest.approx(hourly, rel=1e-4)
        assert r["currency"] == "USD" and r["seq"] is None  # decode: a context, no sequence
        # decode: 64 new tokens a step; a million of them cost hourly / 3600 x 1e6 / tokens/s
        assert r["tokens_per_s"] == pytest.approx(64 / r["expected_time_s"])
        want = hourly / 3600 * 1e6 / r["tokens_per_s"]
        assert r["cost_per_million_tokens"] == pytest.approx(want, rel=1e-4)
    assert rows["mi325x"]["price_per_device_hour"] is None
    assert rows["mi325x"]["cost_per_million_tokens"] is None
    # --price per device overrides the files; the currency is named
    res = CliRunner().invoke(app, [*args, "--price", "h100=2.5,MI325X=1.7", "--currency", "eur"])
    rows = {r["device"]: r for r in json.loads(res.stdout)["scenarios"]}
    assert (rows["h100"]["price_per_device_hour"], rows["h100"]["currency"]) == (2.5, "EUR")
    assert rows["mi325x"]["price_per_device_hour"] == 1.7
    assert rows["a100"]["price_per_device_hour"] == pytest.approx(3.4309)  # its file's
    for bad, message in (
        ("b200=3", "--price b200: not a swept device; give one of h100, a100, mi300x, mi325x"),
        ("h100=0", "--price 0: a price must be > 0"),
        ("h100:3", "expected one price per device-hour"),
    ):
        res = CliRunner().invoke(app, [*args, "--price", bad])
        assert res.exit_code == 2 and message in res.stderr, res.stderr
    res = CliRunner().invoke(app, [*args, "--price", "2", "--currency", "dollars"])
    assert res.exit_code == 2 and "three-letter currency code" in res.stderr


def test_training_cost_at_each_devices_price():
    # 64 H100 at $6.88 an hour for the utilization-based days: cost = days x 24 x 64 x 6.88
    w = get_workload("llama-2-7b")
    sweep = build_sweep(
        w,
        [get_device("h100")],
        RunConfig(phase="training"),
        batches=[64],
        seqs=[4096],
        contexts=[None],
        dtypes=["bf16"],
        replicas=[64],
    )
    (ans,) = answers(sweep, utilization=0.4, tokens=1e11)
    (t,) = ans.training
    assert t.currency == "USD"
    assert t.cost == pytest.approx(t.days * 24 * 64 * 55.04 / 8, rel=1e-9)


def _no_constants(name):
    raise ValueError(f"not strict JSON: {name}")


def test_rows_are_the_same_in_csv_parquet_json_and_the_dataframe(tmp_path):
    """One sweep four ways: the same column names (units in them) and the same values; CSV
    and Parquet through the streamed writers, JSON built in memory, the DataFrame from the
    API. A priced and an unpriced device: the unpriced one's cost is empty / null / NaN."""
    import csv

    import pyarrow.parquet as pq

    from roofline.report.whatif import scenario_frame
    from roofline.whatif import SCENARIO_COLUMNS

    args = ["whatif", "-m", "llama-2-7b", "--hw", "h100,mi325x", "--phase", "decode"]
    args += ["--batch", "1,8", "--context", "512,2048"]
    as_csv = CliRunner().invoke(app, [*args, "-f", "csv"])
    as_json = CliRunner().invoke(app, [*args, "-f", "json"])
    parquet = tmp_path / "w.parquet"
    as_parquet = CliRunner().invoke(app, [*args, "-o", str(parquet)])
    assert as_csv.exit_code == as_json.exit_code == as_parquet.exit_code == 0, as_csv.output
    csv_rows = list(csv.DictReader(as_csv.stdout.splitlines()))
    json_rows = json.loads(as_json.stdout)["scenarios"]
    table = pq.read_table(parquet).to_pylist()
    sweep = build_sweep(
        get_workload("llama-2-7b"),
        [get_device("h100"), get_device("mi325x")],
        RunConfig(phase="decode"),
        batches=[1, 8],
        seqs=[None],
        contexts=[512, 2048],
        dtypes=["fp16"],
        replicas=[1],
    )
    frame = scenario_frame(sweep)
    assert list(csv_rows[0]) == list(json_rows[0]) == list(table[0]) == list(frame.columns)
    assert list(frame.columns) == list(SCENARIO_COLUMNS)
    assert len(csv_rows) == len(json_rows) == len(table) == len(frame) == 2 * 2 * 2
    for c, j, p, (_, f) in zip(csv_rows, json_rows, table, frame.iterrows()):
        assert c["device"] == j["device"] == p["device"] == f["device"]
        assert int(c["context"]) == j["context"] == p["context"] == f["context"]
        assert c["seq"] == "" and j["seq"] is None and p["seq"] is None  # decode: no seq
        for key in ("expected_time_s", "tokens_per_s", "memory_bytes_per_device"):
            assert float(c[key]) == pytest.approx(j[key], rel=1e-12)
            assert p[key] == pytest.approx(j[key], rel=1e-12) == f[key]
        assert c["fits"] == str(j["fits"]) and p["fits"] == j["fits"]
        if j["device"] == "mi325x":  # no price in its device file
            assert c["cost_per_million_tokens"] == "" and p["cost_per_million_tokens"] is None
            assert j["cost_per_million_tokens"] is None
            assert np.isnan(f["cost_per_million_tokens"])
        else:  # $6.88 an hour: cost of a million tokens = 6.88 / 3600 / tokens_per_s x 1e6
            want = 6.88 / 3600 / j["tokens_per_s"] * 1e6
            assert float(c["cost_per_million_tokens"]) == pytest.approx(want, rel=1e-9)


def test_streamed_rows_many_chunks(tmp_path, monkeypatch):
    """A sweep of many chunks to CSV and Parquet: every row once, in grid order."""
    import pyarrow.parquet as pq

    from roofline import sweep as sweep_module
    from roofline.report.whatif import write_scenarios

    real = sweep_module.evaluate_grid

    def small_chunks(*args, **kwargs):
        kwargs["chunk"] = 7
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "evaluate_grid", small_chunks)
    sweep = build_sweep(
        get_workload("bert-large"),
        [get_device("a100"), get_device("h100"), get_device("t4")],
        batches=list(range(1, 11)),
        seqs=[64, 128, 256, 512, 384],
        contexts=[None],
        dtypes=["fp16"],
        replicas=[1],
    )
    for kind in ("csv", "parquet"):
        path = tmp_path / f"rows.{kind}"
        assert write_scenarios(sweep, str(path), kind) == 10 * 5 * 3
        if kind == "parquet":
            pq_file = pq.ParquetFile(path)
            assert pq_file.metadata.num_row_groups == 8  # ceil(50 scenarios / 7)
            rows = pq_file.read().to_pylist()
        else:
            import csv

            rows = list(csv.DictReader(path.open()))
        batches = [int(r["batch"]) for r in rows[::15]]  # scenario-major, batch outermost
        assert batches == list(range(1, 11))
        assert [r["device"] for r in rows[:3]] == ["a100", "h100", "t4"]


def test_a_big_table_shows_the_best_rows_and_how_many(monkeypatch):
    """Beyond the table limit the table shows the TOP_ROWS best pairs (those that fit first,
    then the highest tokens/s): the same as sorting every row of the JSON by hand."""
    from roofline import sweep as sweep_module
    from roofline.cli import plan as cli
    from roofline.report.whatif import top_rows

    args = ["whatif", "-m", "bert-large", "--hw", "a100,t4", "--batch", "1,16,256,4096"]
    args += ["--seq", "64,512"]
    every = json.loads(CliRunner().invoke(app, [*args, "-f", "json"]).stdout)["scenarios"]
    want = sorted(every, key=lambda r: (not r["fits"], -r["tokens_per_s"]))[:5]
    assert any(not r["fits"] for r in every)  # 4096 x 512 on a T4 does not fit
    real = sweep_module.evaluate_grid
    monkeypatch.setattr(
        sweep_module, "evaluate_grid", lambda *a, **k: real(*a, **(k | {"chunk": 3}))
    )
    sweep = build_sweep(
        get_workload("bert-large"),
        [get_device("a100"), get_device("t4")],
        batches=[1, 16, 256, 4096],
        seqs=[64, 512],
        contexts=[None],
        dtypes=["fp16"],
        replicas=[1],
    )
    got, best = top_rows(sweep, 5)
    assert [(r["device"], r["batch"], r["seq"]) for r in got] == [
        (r["device"], r["batch"], r["seq"]) for r in want
    ]
    monkeypatch.setattr(cli, "TABLE_ROWS", 4)
    monkeypatch.setattr(cli, "TOP_ROWS", 3)
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "the best 3 of 16 pairs, fitting first, by tokens/s" in table.stdout
    fits = [r for r in every if r["fits"]]
    assert best["fastest"] == max(fits, key=lambda r: r["tokens_per_s"])
    assert best["lowest_latency"] == min(fits, key=lambda r: r["expected_time_s"])
    assert "16 (scenario, device) pairs evaluated" in table.stdout
