"""The validation set of published measured runs: the files load, every run is predicted,
and bad run files are refused in one line naming the field."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from roofline.cli import app
from roofline.errors import SpecError
from roofline.runs import list_runs, parse_run, validate_runs

RUN = {
    "name": "test run",
    "kind": "training",
    "model": "gpt-2",
    "device": "a100",
    "devices": 8,
    "date": "2024-01",
    "run": {"batch": 64, "seq": 1024, "phase": "training", "layout": {"data": 8}},
    "measured": {"metric": "tokens_per_s", "value": 1e5},
    "source": "a test",
}


def test_every_shipped_run_loads_and_is_predicted():
    runs = list_runs()
    assert runs
    for p in validate_runs(runs):
        assert p.predicted is not None and p.predicted > 0, p.run.key
        assert p.rel_error is not None


def test_prediction_of_a_simple_run_by_hand():
    r = parse_run(RUN, "test.yaml", "test")
    (p,) = validate_runs([r])
    # tokens/s = batch x seq / the expected step time
    assert p.predicted == pytest.approx(64 * 1024 / p.step.expected_s)
    assert p.bound == pytest.approx(64 * 1024 / p.step.total_s)
    assert p.bound > p.predicted


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"devices": 4}, "not the 4 devices"),
        ({"model": "gpt-5"}, "unknown model 'gpt-5'"),
        ({"measured": {"metric": "speed", "value": 1}}, "measured.metric"),
        ({"measured": {"metric": "mfu", "value": -1}}, "measured.value"),
        ({"run": {"batch": 63, "layout": {"data": 8}}}, "cannot be split"),
        ({"kind": "inference"}, "kind"),
    ],
)
def test_bad_run_files(change, message):
    with pytest.raises(SpecError, match=message):
        parse_run(RUN | change, "bad.yaml", "bad")


def test_validate_runs_cli_json():
    res = CliRunner().invoke(app, ["validate", "--runs", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["runs"] and data["median_abs_error"] is not None
    for row in data["runs"]:
        assert {"run", "metric", "predicted", "measured", "rel_error", "source"} <= set(row)
        assert row["rel_error"] == pytest.approx(row["predicted"] / row["measured"] - 1)


def test_request_latency_is_prefill_plus_decode_steps():
    from dataclasses import replace

    from roofline.step import step_time

    r = parse_run(
        RUN
        | {
            "kind": "serving",
            "model": "llama-2-7b",
            "devices": 1,
            "run": {"batch": 2, "phase": "decode", "attention": "flash"},
            "request": {"prompt": 16, "output": 4},
            "measured": {"metric": "request_latency_s", "value": 0.05},
        },
        "req.yaml",
        "req",
    )
    (p,) = validate_runs([r])
    # by hand: the prefill of 16 tokens (last-position logits), then 3 decode steps at
    # contexts 16, 17, 18 (each new token attends to them and itself)
    pre = replace(r.run, phase="prefill", seq=16, context=None, logits="last")
    steps = [step_time(r.workload, pre, r.device)]
    for ctx in (16, 17, 18):
        steps.append(step_time(r.workload, replace(r.run, context=ctx), r.device))
    assert p.predicted == pytest.approx(sum(s.expected_s for s in steps))
    assert p.bound == pytest.approx(sum(s.total_s for s in steps))
    # 50 ms is slower than the bound: a possible measurement; 1 us is not
    assert not p.beats_bound
    (fast,) = validate_runs([replace(r, measured=1e-6)])
    assert fast.beats_bound


def test_a_request_metric_needs_the_request():
    bad = RUN | {"measured": {"metric": "request_latency_s", "value": 1.0}}
    with pytest.raises(SpecError, match="request: missing"):
        parse_run(bad, "bad.yaml", "bad")
