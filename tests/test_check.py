"""roofline check: the layers run for real in numpy beside their predictions."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from roofline.check import check
from roofline.cli import app
from roofline.hardware import load_device_file
from roofline.scenario import RunConfig
from roofline.workloads import get_workload


@pytest.fixture(scope="module")
def here(tmp_path_factory):
    path = tmp_path_factory.mktemp("dev") / "here.yaml"
    res = CliRunner().invoke(app, ["measure", "--quick", "-o", str(path)])
    assert res.exit_code == 0, res.output
    return path


def test_check_runs_the_gemms_the_table_counts(here):
    w = get_workload("bert-large")
    c = check(w, load_device_file(here), RunConfig(batch=1, seq=32, dtype="fp32"))
    t = c.result.layers
    assert len(c.layers) == len(t) > 0
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
