"""roofline check: the layers run for real in numpy beside their predictions."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest
from typer.testing import CliRunner

import roofline.check as rc
from roofline.check import MAX_TIME_S, MEMORY_SHARE, MIN_FLUSH, check, elsewhere, plan_check
from roofline.cli import app
from roofline.errors import FieldError
from roofline.hardware import Machine, load_device_file
from roofline.measure import this_machine
from roofline.scenario import RunConfig
from roofline.workloads import get_workload


@pytest.fixture(scope="module")
def here(tmp_path_factory):
    path = tmp_path_factory.mktemp("dev") / "here.yaml"
    res = CliRunner().invoke(app, ["measure", "--quick", "-o", str(path)])
    assert res.exit_code == 0, res.output
    return path


@pytest.mark.slow  # runs numpy kernels
def test_check_runs_the_gemms_the_table_counts(here):
    w = get_workload("bert-large")
    started = []
    c = check(
        w,
        load_device_file(here),
        RunConfig(batch=1, seq=32, dtype="fp32"),
        progress=lambda i, n, name: started.append((i, n, name)),
        progress_after_s=0,  # report every check, however short
    )
    t = c.result.layers
    assert len(c.layers) == len(t) > 0
    # progress: once per row, as it starts, in order
    n = len(t)
    assert started == [(i + 1, n, str(t.name[i])) for i in range(n)]
    for i, x in enumerate(c.layers):
        # expected >= bound, except where the cache tier (faster than DRAM) served the row
        cached = c.result.losses["cache"][i] < 0
        assert x.measured_s > 0 and x.bound_s > 0 and (x.expected_s >= x.bound_s or cached)
        if x.kind == "matmul":
            # the GEMM check runs, g x (m x k).(k x n), is the row's FLOPs (one instance):
            # 2 g m n k, plus the bias add, one FLOP per output element (the pooler adds its
            # tanh, one more)
            g, m, n, k = (float(a[i]) for a in (t.gemm_groups, t.gemm_m, t.gemm_n, t.gemm_k))
            gemm = 2 * g * m * n * k
            assert gemm + g * m * n <= float(t.flops[i]) <= gemm + 2 * g * m * n
    # BERT-Large's QKV projection by hand: 32 tokens x 1024 -> 3 x 1024, in 24 layers
    (i,) = [j for j, x in enumerate(c.layers) if x.name == "block.attn.qkv_proj"]
    assert c.layers[i].count == 24
    assert float(t.flops[i]) == 2 * 32 * 1024 * 3072 + 32 * 3072  # 201,424,896
    # the total is the rows' sum (how close it lands is a timing, reported by the
    # command, not asserted here: a loaded CI machine can slow BLAS tenfold)
    assert c.measured_s == pytest.approx(sum(x.measured_s for x in c.layers))


@pytest.mark.slow  # runs numpy kernels
def test_check_cli_json_is_strict_and_refuses_training(here):
    res = CliRunner().invoke(
        app,
        ["check", "--model", "bert-large", "--hw", str(here), "--seq", "16", "--format", "json"],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout, parse_constant=lambda s: pytest.fail(s))
    assert data["measured_time_s"] == pytest.approx(
        sum(x["measured_time_s"] for x in data["layers"])
    )
    res = CliRunner().invoke(
        app, ["check", "--model", "bert-large", "--hw", str(here), "--phase", "training"]
    )
    assert res.exit_code == 2 and "phase" in res.stderr
    res = CliRunner().invoke(
        app, ["check", "--model", "bert-large", "--hw", str(here), "--dtype", "bf16"]
    )
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1


def _refused(res, *words):
    """A CLI refusal: exit 2, one line on stderr naming each of `words`, no traceback."""
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert "Traceback" not in res.output and all(w in lines[0] for w in words), lines[0]


def test_check_refuses_a_device_file_not_measured_here(here, tmp_path):
    # a datasheet device (no `machine:`): an A100's predictions beside this CPU's times
    res = CliRunner().invoke(app, ["check", "--model", "resnet-50", "--hw", "a100"])
    _refused(res, "--hw", "not measured on this machine", "roofline measure -o me.yaml")
    # a file measured on another machine: the same file with another CPU
    text = here.read_text()
    cpu = this_machine().cpu
    assert f"  cpu: {json.dumps(cpu)}" in text
    other = tmp_path / "other.yaml"
    other.write_text(text.replace(f"  cpu: {json.dumps(cpu)}", '  cpu: "Another CPU 9000"'))
    d = load_device_file(other)
    with pytest.raises(FieldError) as err:
        check(get_workload("bert-large"), d, RunConfig(seq=16, dtype="fp32"))
    assert err.value.field == "device" and "Another CPU 9000" in str(err.value)
    res = CliRunner().invoke(app, ["check", "--model", "bert-large", "--hw", str(other)])
    _refused(res, "--hw", "Another CPU 9000", cpu, "--hw me.yaml")
    # the fingerprint: CPU model, logical cores, memory (within 2%: rounding in the file)
    mine = load_device_file(here)
    assert mine.machine is not None and elsewhere(mine) == ""
    m = mine.machine
    assert elsewhere(mine, Machine(m.cpu, m.cores, m.memory_bytes * 1.01)) == ""
    for changed in (
        Machine(m.cpu, m.cores + 1, m.memory_bytes),
        Machine(m.cpu, m.cores, m.memory_bytes * 2),
        Machine(m.cpu + " v2", m.cores, m.memory_bytes),
    ):
        assert "measured on" in elsewhere(mine, changed)


def test_check_memory_estimate_by_hand(here):
    """BERT-Large, batch 1, 32 tokens, fp32: what each row's numpy work holds at once."""
    w = get_workload("bert-large")
    plan = plan_check(w, load_device_file(here), RunConfig(batch=1, seq=32, dtype="fp32"))
    rows = {r.name: r for r in plan.rows}
    # the QKV projection: x (32 x 1024) . w (1024 x 3072) -> out (32 x 3072), 4 bytes each
    qkv = rows["block.attn.qkv_proj"]
    assert qkv.nbytes == (32 * 1024 + 1024 * 3072 + 32 * 3072) * 4 == 13_107_200
    # the largest: the FFN's up (and down) projection, 32 x 1024 . 1024 x 4096
    ffn = (32 * 1024 + 1024 * 4096 + 32 * 4096) * 4
    assert plan.largest.nbytes == ffn == 17_432_576
    # the embedding gathers 32 rows of a 4096 x 1024 table (int64 indices)
    assert rows["embeddings"].nbytes == 4096 * 1024 * 4 + 32 * 8 + 32 * 1024 * 4
    # plus the cache flush buffer (rows with weights), at least 64 MiB
    assert plan.flush_bytes >= MIN_FLUSH
    assert plan.memory_bytes == ffn + plan.flush_bytes


@pytest.mark.slow  # runs numpy kernels
def test_check_memory_estimate_is_what_numpy_allocates(here):
    """Each row's estimate is what running it allocates (numpy reports its buffers to
    tracemalloc), within 1 MiB (the random block inputs repeat, the generator)."""
    plan = plan_check(
        get_workload("bert-large"), load_device_file(here), RunConfig(seq=32, dtype="fp32")
    )
    kernels = rc._kernels()
    for r in plan.rows:  # once first: loading a compiled kernel allocates too
        rc._run_row(r, "fp32", None, kernels)
    for r in plan.rows:
        tracemalloc.start()
        try:
            rc._run_row(r, "fp32", None, kernels)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert r.nbytes <= peak <= r.nbytes + 2**20, r.name


def test_check_refuses_a_batch_too_large_before_allocating(here, monkeypatch):
    def allocate(*args, **kwargs):
        pytest.fail("check allocated arrays for a check it should refuse")

    monkeypatch.setattr(rc, "_filled", allocate)
    monkeypatch.setattr(rc, "_kernels", allocate)
    w, d = get_workload("bert-large"), load_device_file(here)
    run = RunConfig(batch=100_000, dtype="fp32")
    start = time.perf_counter()
    with pytest.raises(FieldError) as err:
        check(w, d, run)
    assert time.perf_counter() - start < 5
    plan = plan_check(w, d, run)
    assert plan.memory_bytes > MEMORY_SHARE * plan.available_bytes  # terabytes
    text = str(err.value)
    assert err.value.field == "batch" and "a smaller batch" in text
    assert f"{MEMORY_SHARE:.0%} of the memory available" in text and "GiB" in text
    res = CliRunner().invoke(
        app, ["check", "--model", "bert-large", "--hw", str(here), "--batch", "100000"]
    )
    _refused(res, "--batch 100000", "memory available", "a smaller batch")
    # one token of a model whose rows fit nowhere: the model is what to change
    monkeypatch.setattr(rc, "available_memory_bytes", lambda: 2.0**20)
    with pytest.raises(FieldError) as err:
        check(w, d, RunConfig(batch=1, seq=1, dtype="fp32"))
    assert err.value.field == "model" and "a smaller model" in str(err.value)


def test_check_refuses_what_is_predicted_to_run_too_long(here, monkeypatch):
    monkeypatch.setattr(rc, "_filled", lambda *a: pytest.fail("allocated"))
    monkeypatch.setattr(rc, "available_memory_bytes", lambda: 2.0**50)  # memory aside
    assert MAX_TIME_S == 60
    w, d = get_workload("bert-large"), load_device_file(here)
    run = RunConfig(batch=1, seq=64, dtype="fp32")
    plan = plan_check(w, d, run)
    # the estimate: each row's predicted time, a warm-up and REPEATS calls of one instance,
    # at least; filling the arrays and flushing the caches come on top
    calls = sum(
        (1 + rc.REPEATS) * x / r.count for x, r in zip(plan.result.expected_time_s, plan.rows)
    )
    assert plan.time_s > calls > 0
    with pytest.raises(FieldError) as err:
        check(w, d, run, max_time_s=plan.time_s / 2)
    text = str(err.value)
    assert err.value.field == "seq" and f"{plan.time_s:.0f} s" in text
    assert f"limit of {plan.time_s / 2:g} s" in text and "a shorter sequence" in text
