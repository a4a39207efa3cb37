"""Intervals on every expected time (issue 28): split conformal ends from the residuals of
the fit half, shipped in hardware/defaults/intervals.yaml, their coverage on the held-out
half, and the figures shown with them (run, memory, whatif, serve), each checked against a
hand calculation."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from roofline.cli import app
from roofline.interval_fit import KindResiduals, coverage_summary, run_residuals
from roofline.intervals import (
    Band,
    conformal_ends,
    expected_interval,
    interval,
    intervals,
    load_intervals,
    time_residual,
)
from roofline.runs import validate_runs


def strict(text: str) -> object:
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))


# ---------------------------------------------------------------- the arithmetic, by hand
def test_conformal_ends_of_nine_residuals_by_hand():
    """n = 9 residuals, c = 0.8: k_lo = floor(10 x 0.1) = 1, k_hi = ceil(10 x 0.9) = 9, so
    the ends are the smallest and the largest (order given shuffled)."""
    r = [0.05, -0.2, 0.3, 0.0, -0.1, 0.1, 0.2, -0.05, 0.15]
    assert conformal_ends(r, 0.8) == (-0.2, 0.3)
    # c = 0.5: k_lo = floor(10 x 0.25) = 2 -> -0.1; k_hi = ceil(10 x 0.75) = 8 -> 0.2
    assert conformal_ends(r, 0.5) == (-0.1, 0.2)
    # c = 0.9: k_hi = ceil(10 x 0.95) = 10 > 9: the fit half cannot bound the high tail;
    # k_lo = floor(10 x 0.05) = 0: nor the low one
    assert conformal_ends(r, 0.9) == (-math.inf, math.inf)


def test_conformal_ends_of_nineteen_residuals_by_hand():
    # r(i) = i / 100 for i = 1..19; c = 0.8: k_lo = floor(20 x 0.1) = 2, k_hi = ceil(20 x
    # 0.9) = 18: the ends are 0.02 and 0.18
    r = [i / 100 for i in range(19, 0, -1)]
    assert conformal_ends(r, 0.8) == (0.02, 0.18)


def test_a_band_and_its_interval_by_hand():
    # the residuals log(0.9), 0, log(1.25) ... nine of them: ends at the smallest and largest
    r = [math.log(x) for x in (0.9, 1.0, 1.25, 1.1, 0.95, 1.05, 1.0, 1.2, 0.98)]
    res = KindResiduals("training", tuple((f"r{i}", x) for i, x in enumerate(r)), ())
    band = res.band(0.8)
    assert (band.low_factor, band.high_factor, band.runs) == (0.9, 1.25, 9)
    # a 25.6 s step: [25.6 x 0.9, 25.6 x 1.25] = [23.04, 32.0] s
    iv = interval(25.6, "training", band=band)
    assert (iv.low, iv.high, iv.coverage) == (pytest.approx(23.04), pytest.approx(32.0), 0.8)
    # a throughput of 1000 tokens/s falls as time grows: [1000 / 1.25, 1000 / 0.9]
    iv = interval(1000.0, "training", lower_is_better=False, band=band)
    assert (iv.low, iv.high) == (pytest.approx(800.0), pytest.approx(1111.111, rel=1e-6))


def test_residuals_are_the_times_ratio():
    # a time measured 1.2 s, predicted 1.0 s: log(1.2); a throughput measured 100, predicted
    # 120 (the time is 1.2 x the predicted): log(1.2) too
    assert time_residual(1.0, 1.2, True) == pytest.approx(math.log(1.2))
    assert time_residual(120.0, 100.0, False) == pytest.approx(math.log(1.2))


def test_coverage_of_a_held_out_half_by_hand():
    band = Band("serving", 0.8, 0.8, 1.5, 9)
    held = tuple(
        (k, math.log(x)) for k, x in (("a", 0.7), ("b", 0.8), ("c", 1.0), ("d", 1.49), ("e", 2.0))
    )
    res = KindResiduals("serving", (), held)
    # inside [0.8, 1.5]: b (an end), c, d: 3 of 5
    s = coverage_summary(res, band)
    assert (s["inside"], s["held_out_runs"], s["held_out_coverage"]) == (3, 5, 0.6)


def test_no_interval_for_the_bound_nor_a_share_of_ones_own():
    assert expected_interval(1.0, "training", ideal=True)[0] is None
    iv, why = expected_interval(1.0, "decode", sustained=0.5)
    assert iv is None and "--sustained" in why
    iv, why = expected_interval(2.0, "prefill")
    b = intervals().bands["serving"]
    assert why == "" and (iv.low, iv.high) == (2 * b.low_factor, 2 * b.high_factor)


def test_load_intervals_hook():
    b = intervals().bands["load"]
    got = load_intervals({"ttft_mean_s": 0.5, "output_tokens_per_s": 1000.0, "tpot_p99_s": None})
    assert (got["ttft_mean_s"].low, got["ttft_mean_s"].high) == (
        pytest.approx(0.5 * b.low_factor),
        pytest.approx(0.5 * b.high_factor),
    )
    assert got["output_tokens_per_s"].low == pytest.approx(1000 / b.high_factor)
    assert got["tpot_p99_s"] is None


# ---------------------------------------------------------------- the shipped file and coverage
NOMINAL = 0.8


@pytest.fixture(scope="module")
def shipped_predictions():
    return validate_runs()


@pytest.mark.parametrize("kind", ["training", "serving"])
def test_regenerating_gives_the_shipped_band(shipped_predictions, kind):
    res = run_residuals(shipped_predictions, kind)
    shipped = intervals().bands[kind]
    assert res.band(shipped.coverage) == shipped
    # by hand from the residuals: n = runs, ends at floor(0.1 (n + 1)) and ceil(0.9 (n + 1))
    r = sorted(x for _, x in res.fit)
    n = len(r)
    lo, hi = r[math.floor(0.1 * (n + 1) + 1e-9) - 1], r[math.ceil(0.9 * (n + 1) - 1e-9) - 1]
    assert shipped.low_factor == round(math.exp(lo), 4)
    assert shipped.high_factor == round(math.exp(hi), 4)


def test_training_coverage_on_the_held_out_half_is_within_5_points(shipped_predictions):
    res = run_residuals(shipped_predictions, "training")
    got = res.coverage(intervals().bands["training"])
    assert got is not None and abs(got - NOMINAL) <= 0.05, got


@pytest.mark.xfail(
    strict=True,
    reason="issue 28: the serving residuals' held-out coverage is 93.3 % (42 of 45) at "
    "nominal 80 %, outside 75-85 %; reported, not tuned",
)
def test_serving_coverage_on_the_held_out_half_is_within_5_points(shipped_predictions):
    res = run_residuals(shipped_predictions, "serving")
    got = res.coverage(intervals().bands["serving"])
    assert got is not None and abs(got - NOMINAL) <= 0.05, got


def test_validate_runs_prints_the_coverage_and_each_runs_interval():
    res = CliRunner().invoke(app, ["validate", "--runs", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = strict(res.stdout)
    bands = intervals().bands
    rows = {r["run"]: r for r in data["runs"]}
    # each row's interval: the predicted figure x the kind's factors (a time), or / them
    for row in data["runs"]:
        iv, b = row["predicted_interval"], bands[row["kind"]]
        if row["metric"] in ("step_time_s", "ttft_s", "tpot_s", "request_latency_s"):
            assert iv["low"] == pytest.approx(row["predicted"] * b.low_factor)
            assert iv["high"] == pytest.approx(row["predicted"] * b.high_factor)
        else:
            assert iv["low"] == pytest.approx(row["predicted"] / b.high_factor)
            assert iv["high"] == pytest.approx(row["predicted"] / b.low_factor)
        assert row["inside_interval"] == (iv["low"] <= row["measured"] <= iv["high"])
    # the coverage: the held-out half (odd positions in key order) inside, counted here
    for c in data["interval_coverage"]:
        keys = sorted(k for k, r in rows.items() if r["kind"] == c["kind"])[1::2]
        inside = sum(rows[k]["inside_interval"] for k in keys)
        assert (c["inside"], c["held_out_runs"]) == (inside, len(keys))
        assert c["held_out_coverage"] == pytest.approx(inside / len(keys))
    table = CliRunner().invoke(app, ["validate", "--runs"]).stdout
    training = data["interval_coverage"][0]
    assert (
        f"training {100 * training['held_out_coverage']:.1f} % "
        f"({training['inside']} of {training['held_out_runs']})" in table
    )


@pytest.mark.slow  # simulates every load run
def test_validate_runs_intervals_regenerates_the_shipped_file():
    res = CliRunner().invoke(app, ["validate", "--runs", "--intervals", "-f", "json"])
    assert res.exit_code == 0, res.output
    kinds = strict(res.stdout)["kinds"]
    bands = intervals().bands
    assert [k["kind"] for k in kinds] == ["training", "serving", "load"]
    for k in kinds:
        b = bands[k["kind"]]
        assert (k["low_factor"], k["high_factor"], k["fit_runs"]) == (
            b.low_factor,
            b.high_factor,
            b.runs,
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "--intervals"], "--runs"),
        (["validate", "--runs", "--fit", "--intervals"], "alone"),
        (["validate", "--load", "--intervals"], "--runs"),
    ],
)
def test_intervals_flag_misuse_is_one_line(args, message):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


# ---------------------------------------------------------------- shown beside every time
def _run_json(*args: str) -> dict:
    res = CliRunner().invoke(app, [*args, "-f", "json"])
    assert res.exit_code == 0, res.output
    return strict(res.stdout)  # type: ignore[return-value]


def test_run_summary_has_the_interval_by_hand():
    args = ("run", "--model", "gpt-2", "--hw", "a100", "--batch", "8", "--seq", "1024")
    s = _run_json(*args, "--phase", "training")["summary"]
    b = intervals().bands["training"]
    t = s["expected_time_s"]
    assert s["expected_time_interval_s"] == {
        "coverage": 0.8,
        "low": pytest.approx(t * b.low_factor),
        "high": pytest.approx(t * b.high_factor),
        "kind": "training",
    }
    assert s["expected_time_interval_reason"] is None
    table = CliRunner().invoke(app, [*args, "--phase", "training"]).stdout
    ms = t * 1e3  # the table writes 3 significant digits of each, in ms
    line = f"{ms:.3g} ms (80 %: {ms * b.low_factor:.3g}-{ms * b.high_factor:.3g} ms)"
    assert line in table
    # the bound (--ideal) has none, and says why
    s = _run_json(*args, "--ideal")["summary"]
    assert s["expected_time_interval_s"] is None
    assert "--ideal" in s["expected_time_interval_reason"]


def test_memory_step_time_has_the_interval():
    m = _run_json("memory", "--model", "gpt-2", "--hw", "a100", "--batch", "8", "--seq", "1024")
    (d,) = m["devices"]
    b = intervals().bands["training"]
    iv = d["expected_step_time_interval_s"]
    assert iv["low"] == pytest.approx(d["expected_step_time_s"] * b.low_factor)
    assert iv["high"] == pytest.approx(d["expected_step_time_s"] * b.high_factor)


def test_serve_ttft_and_tpot_have_the_serving_interval():
    data = _run_json("serve", "--model", "llama-2-7b", "--hw", "a100")
    r = data  # one device: its result
    b = intervals().bands["serving"]
    for name in ("ttft", "tpot"):
        iv = r[f"{name}_interval_s"]
        assert iv["low"] == pytest.approx(r[f"{name}_s"] * b.low_factor)
        assert iv["high"] == pytest.approx(r[f"{name}_s"] * b.high_factor)
        assert iv["kind"] == "serving"


def test_whatif_time_to_train_has_the_training_interval():
    args = ["whatif", "--model", "gpt-2", "--hw", "a100", "--phase", "training"]
    args += ["--utilization", "0.4", "--tokens", "1e10"]
    data = _run_json(*args)
    (t,) = data["answers"][0]["training"]
    b = intervals().bands["training"]
    assert t["expected_days_interval"]["low"] == pytest.approx(t["expected_days"] * b.low_factor)
    assert t["expected_days_interval"]["high"] == pytest.approx(t["expected_days"] * b.high_factor)
    table = CliRunner().invoke(app, args, env={"COLUMNS": "300"}).stdout
    days = t["expected_days"]
    text = f"{days:,.1f} days (80 %: {days * b.low_factor:,.1f}-{days * b.high_factor:,.1f} days)"
    assert text in table


def test_validate_runs_csv_has_the_interval_as_flat_columns():
    import csv
    import io

    res = CliRunner().invoke(app, ["validate", "--runs", "-f", "csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    b = intervals().bands["training"]
    row = next(r for r in rows if r["metric"] == "step_time_s" and r["kind"] == "training")
    assert float(row["predicted_interval_low"]) == pytest.approx(
        float(row["predicted"]) * b.low_factor
    )
    assert float(row["predicted_interval_coverage"]) == 0.8


def test_only_your_runs_have_no_shipped_coverage(tmp_path):
    import shutil

    from roofline._paths import data_dir

    src = data_dir("workloads") / "runs" / "llmfoundry-mpt-30b-h100x16-s2048.yaml"
    shutil.copy(src, tmp_path / "mine.yaml")
    data = _run_json("validate", "--runs", str(tmp_path / "mine.yaml"), "--only")
    assert data["interval_coverage"] is None
    (row,) = data["runs"]
    assert row["predicted_interval"]["kind"] == "training"
