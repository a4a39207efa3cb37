"""Published serving measurements under load (workloads/load_runs/) and the simulation's
predictions of them: every file is read strictly and names its source; the prediction is
wired as stated (a replica at rate / replicas, lengths at their means); the CLI's JSON is
strict and keeps every run, predicted or not, with the reason."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from roofline.cli import app
from roofline.errors import SpecError
from roofline.hardware import get_device
from roofline.load_runs import list_load_runs, parse_load_run, predict_load
from roofline.scenario import RunConfig
from roofline.step import step_time
from roofline.workloads import get_workload

FOLDER = Path(__file__).resolve().parent.parent / "workloads" / "load_runs"


def test_every_load_run_is_read_and_names_its_source():
    runs = list_load_runs()
    assert len(runs) >= 30
    assert len({r.key.split("-")[0] for r in runs}) >= 4  # publishers (the files' prefixes)
    for r in runs:
        assert r.source and r.measured, r.key
        assert r.kind in ("poisson", "concurrency", "offline")


def test_a_mistyped_field_is_refused():
    path = next(iter(sorted(FOLDER.glob("iog-*.yaml"))))
    data = yaml.safe_load(path.read_text())
    data["measured"]["ttft_mean"] = data["measured"].pop("ttft_mean_s")
    with pytest.raises(SpecError, match=r"measured\.ttft_mean: unknown field"):
        parse_load_run(data, "bad.yaml", "bad")


def _low_rate_run():
    """A deployment of the IOG set, at a rate so low that every request runs alone."""
    run = next(r for r in list_load_runs() if r.key == "iog-llama-3-8b-h100-pcie-1x-qps1")
    return replace(run, rate=1e-6, requests=5)  # gaps of ~11 days: no overlap


def test_a_request_alone_is_its_prefill_and_decode_steps():
    r = _low_rate_run()
    p = predict_load(r)
    assert not p.reason
    w, device = get_workload("llama-3-8b"), get_device("h100-pcie")
    prompt, out = round(r.prompt), round(r.output)
    run = RunConfig(dtype=r.dtype, attention="flash")
    prefill = step_time(w, replace(run, phase="prefill", seq=prompt, logits="all"), device)
    assert p.predicted["ttft_mean_s"] == pytest.approx(prefill.expected_s, rel=0.01)
    steps = [
        step_time(w, replace(run, phase="decode", context=prompt + j), device).expected_s
        for j in range(1, out)
    ]
    assert p.predicted["tpot_mean_s"] == pytest.approx(np.mean(steps), rel=0.01)


def test_replicas_share_the_rate():
    """Two replicas behind a balancer: each sees half the rate, the throughput is twice
    one replica's at that half rate."""
    base = replace(_low_rate_run(), rate=2.0, requests=200)
    one = predict_load(replace(base, rate=1.0))
    two = predict_load(replace(base, replicas=2, devices=2))
    assert two.predicted["requests_per_s"] == pytest.approx(2 * one.predicted["requests_per_s"])
    assert two.predicted["tpot_mean_s"] == pytest.approx(one.predicted["tpot_mean_s"])


def test_validate_load_json_keeps_every_run():
    res = CliRunner().invoke(app, ["validate", "--load", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    keys = {row["run"] for row in data["runs"]}
    assert keys == {r.key for r in list_load_runs()}
    not_predicted = [row for row in data["runs"] if row["reason"]]
    assert all(row["predicted"] is None for row in not_predicted)
    assert data["by_figure"]["tpot_mean_s"]["runs"] >= 20


def test_a_layout_that_does_not_cover_the_devices_is_not_predicted():
    base = _low_rate_run()
    p = predict_load(replace(base, devices=8))  # one replica of tp 1 said to use 8 devices
    assert p.predicted == {} and "does not cover its 8 devices" in p.reason


def test_lengths_are_drawn_with_the_datasets_spread():
    """datasets.yaml: ShareGPT outputs have a cv of 1.3, cut at 2,044 tokens; the prompts'
    spread is not published, so they stay at their mean. A lognormal of mean 200 and cv
    1.3 has sigma^2 = ln(1 + 1.3^2) = 0.990 and a median of 200 / sqrt(1 + 1.69) = 121.9."""
    from roofline.load_runs import _draw, datasets

    shapes = datasets()["sharegpt"]
    assert shapes["output_tokens"].cv == pytest.approx(1.3)
    assert shapes["output_tokens"].most == 2044 and shapes["prompt_tokens"].cv is None
    x = _draw(200, shapes["output_tokens"], 200_000, seed=1)
    assert x.max() <= 2044 and x.min() >= 1
    assert np.median(x) == pytest.approx(200 / np.sqrt(1 + 1.3**2), rel=0.02)
    assert (_draw(202.4, shapes["prompt_tokens"], 5, seed=1) == 202).all()


def test_the_calibration_split_keeps_each_deployment_on_one_side():
    from roofline.load_runs import deployment, engine_of, split

    runs = list_load_runs()
    halves = split(runs)
    assert set(halves) == {"vllm", "vllm-v0", "sglang", "trtllm"}
    for stack, (fit, held) in halves.items():
        assert {engine_of(r) for r in fit + held} == {stack}
        assert not {deployment(r) for r in fit} & {deployment(r) for r in held}
    assert sum(len(f) + len(h) for f, h in halves.values()) == len(runs)


def test_a_share_is_fitted_on_the_figures_that_measure_the_step():
    """step_figures: TPOT and ITL (mean, median) of every run, and the throughput of a run
    held at saturation; _loss sums |log(predicted / measured)| over them, a run not
    predicted counting 10."""
    from roofline.load_runs import LoadPrediction, _loss, step_figures

    base = _low_rate_run()  # IOG's result file: TPOT and ITL mean and median, TTFT, p99s
    assert step_figures(base) == ("tpot_mean_s", "tpot_p50_s", "itl_mean_s", "itl_p50_s")
    offline = replace(base, kind="offline", measured={"tpot_mean_s": 0.02,
                      "output_tokens_per_s": 1000.0, "ttft_mean_s": 1.0})  # fmt: skip
    assert step_figures(offline) == ("tpot_mean_s", "output_tokens_per_s")
    p = LoadPrediction(offline, {"tpot_mean_s": 0.04, "output_tokens_per_s": 500.0,
                                 "ttft_mean_s": 9.0})  # fmt: skip
    assert _loss([p]) == pytest.approx(2 * np.log(2))  # the TTFT is not counted
    assert _loss([LoadPrediction(offline, {}, "no")]) == 10.0
