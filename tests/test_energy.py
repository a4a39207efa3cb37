"""Energy, power and carbon (energy.py, energy_runs.py): each figure against a hand
calculation written out here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from roofline.energy import (
    iteration_energy,
    power_model,
    serving_energy,
    site,
)
from roofline.energy_runs import check_run, list_energy_runs
from roofline.errors import FieldError
from roofline.hardware import get_device
from roofline.scenario import RunConfig
from roofline.serve import Request, serve
from roofline.workloads import get_workload

ROOT = Path(__file__).resolve().parent.parent


def test_power_model_h100_from_tdp_and_the_default_idle_fraction():
    # hand: max = the 700 W TDP; idle = 0.115 x 700 = 80.5 W; P(0.5) = 80.5 + 619.5 / 2
    m = power_model(get_device("h100"))
    assert m is not None
    assert m.max_w == 700 and m.idle_w == pytest.approx(80.5)
    assert m.power_w(0.5) == pytest.approx(390.25)
    assert m.power_w(2.0) == 700 and m.power_w(-1) == pytest.approx(80.5)  # clipped
    assert "default" in m.source


def test_power_block_of_a_device_file_wins_h200_measured_idle():
    # hardware/h200.yaml power.idle: 80.3 W (measured), max 700 W
    m = power_model(get_device("h200"))
    assert m is not None and m.idle_w == 80.3 and m.max_w == 700
    assert "default" not in m.source


def test_step_energy_by_hand():
    # 2 s at a bound of 1 s (u = 0.5) on 8 H100: boards 390.25 W x 2 s x 8 = 6,244 J;
    # nodes 100 W x 2 s x 8 = 1,600 J; facility (6,244 + 1,600) x 1.2 = 9,412.8 J;
    # carbon 9,412.8 J / 3.6e6 J/kWh x 400 g/kWh = 1.0459 g
    e = iteration_energy(get_device("h100"), 2.0, 1.0, 8, site(1.2, 100.0, 400))
    assert e.device_power_w == pytest.approx(390.25)
    assert e.device_energy_j == pytest.approx(6244.0)
    assert e.node_energy_j == pytest.approx(1600.0)
    assert e.energy_j == pytest.approx(9412.8)
    assert e.co2_g == pytest.approx(9412.8 / 3.6e6 * 400)
    assert e.average_power_w == pytest.approx(9412.8 / 2)


def test_device_without_power_data_gives_null_energy_with_a_reason():
    e = iteration_energy(get_device("tpu-v5e"), 1.0, 0.5, 4)
    assert e.energy_j is None and e.co2_g is None and "no TDP" in e.reason
    assert e.as_dict()["energy_kwh"] is None


def test_site_defaults_regions_and_bad_input():
    s = site()
    assert (s.pue, s.node_power_w, s.grid, s.grid_g_per_kwh) == (1.1, 0.0, "world", 475)
    assert site(grid="France").grid_g_per_kwh == 57  # Luccioni et al. 2022
    assert site(grid="300").grid == "given"
    with pytest.raises(FieldError, match="region"):
        site(grid="mars")
    with pytest.raises(FieldError):
        site(pue=0.9)


@pytest.mark.parametrize("batch", [1, 64])
def test_joules_per_output_token_by_hand_at_two_batches(batch):
    # E = [P(u_prefill) x ttft + (O - 1) x P(u_decode) x tpot] x PUE, over batch x O tokens,
    # u = bound / expected; H100: idle 80.5 W, max 700 W
    w = get_workload("llama-3-8b")
    run = RunConfig(batch=batch, dtype="bf16", phase="decode", attention="flash")
    r = serve(w, run, get_device("h100"), Request(512, 256))
    assert r.ttft_s and r.tpot_s and r.ttft_bound_s and r.tpot_bound_s
    p1 = 80.5 + 619.5 * min(r.ttft_bound_s / r.ttft_s, 1)
    p2 = 80.5 + 619.5 * min(r.tpot_bound_s / r.tpot_s, 1)
    hand = (p1 * r.ttft_s + 255 * p2 * r.tpot_s) * 1.1 / (batch * 256)
    s = serving_energy(r, site(pue=1.1))
    assert s.joules_per_output_token == pytest.approx(hand, rel=1e-9)


def test_batching_lowers_joules_per_token():
    w = get_workload("llama-3-8b")
    per = []
    for b in (1, 64):
        run = RunConfig(batch=b, dtype="bf16", phase="decode", attention="flash")
        per.append(serving_energy(serve(w, run, get_device("h100"), Request(512, 256))))
    assert per[1].joules_per_output_token < per[0].joules_per_output_token / 10


def test_training_co2_by_the_llama_2_card_method():
    # Llama 2 7B: the card's 184,320 GPU-hours x 400 W x PUE 1.1 x 385 g/kWh = 31.22 t; the
    # check applies the same method to the predicted GPU-hours
    assert pytest.approx(31.22, abs=0.005) == 184320 * 0.4 * 1.1 * 385 / 1e6
    run = next(r for r in list_energy_runs() if r.key == "llama-2-7b-card")
    checks = {c.figure: c for c in check_run(run)}
    hours = checks["gpu_hours"].predicted
    assert hours is not None and checks["co2_t"].predicted is not None
    assert checks["co2_t"].predicted == pytest.approx(hours * 0.4 * 1.1 * 385 / 1e6)


def test_cli_refuses_a_bad_grid_in_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "roofline", "serve", "--model", "llama-3-8b", "--hw", "h100",
         "--grid-intensity", "mars"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "--grid-intensity mars" in out.stderr


def _whatif_json(*args: str) -> dict:
    import json

    out = subprocess.run(
        [sys.executable, "-m", "roofline", "whatif", "--phase", "training", "-f", "json", *args],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def test_whatif_energy_to_train_by_hand_gpu_hours_x_watts_x_pue_x_intensity():
    # --ideal: the expected step is its bound, u = 1, each A100 at its 400 W TDP (the file's).
    # GPU-hours = 1e9 tokens / (8 x 1024 a step) x the step's seconds / 3600 x 1 GPU;
    # kWh = GPU-hours x 0.4 kW x PUE 1.2; CO2 = kWh x 400 g/kWh
    d = _whatif_json("--model", "gpt-2", "--hw", "a100", "--batch", "8", "--seq", "1024",
                     "--utilization", "0.5", "--tokens", "1e9", "--ideal", "--pue", "1.2",
                     "--grid-intensity", "400")  # fmt: skip
    step_s = d["scenarios"][0]["expected_time_s"]
    t = d["answers"][0]["training"][0]
    hours = 1e9 / (8 * 1024) * step_s / 3600
    assert t["device_hours"] == pytest.approx(hours, rel=1e-9)
    e = t["energy"]
    assert e["utilization"] == 1.0 and e["device_power_w"] == 400
    assert e["energy_kwh"] == pytest.approx(hours * 0.4 * 1.2, rel=1e-9)
    assert e["co2_kg"] == pytest.approx(hours * 0.4 * 1.2 * 400 / 1e3, rel=1e-9)
    assert e["co2_t"] == pytest.approx(e["co2_kg"] / 1e3) and e["site"]["pue"] == 1.2


def test_whatif_energy_to_train_at_the_activity_of_the_expected_step_h200():
    # one H200, no communication: the row's bound is the kernels' bound, u = bound /
    # expected; P = 80.3 + (700 - 80.3) x u (hardware/h200.yaml's measured idle, TDP max);
    # kWh = GPU-hours x P / 1000 x PUE 1.1 (the default), CO2 at the world's 475 g/kWh
    d = _whatif_json("--model", "gpt-2", "--hw", "h200", "--batch", "8", "--seq", "1024",
                     "--utilization", "0.5", "--tokens", "1e9")  # fmt: skip
    row = d["scenarios"][0]
    u = row["time_s"] / row["expected_time_s"]
    assert 0.05 < u < 1
    t = d["answers"][0]["training"][0]
    hours = 1e9 / (8 * 1024) * row["expected_time_s"] / 3600
    watts = 80.3 + 619.7 * u
    e = t["energy"]
    assert e["utilization"] == pytest.approx(u, rel=1e-9)
    assert e["device_power_w"] == pytest.approx(watts, rel=1e-9)
    assert e["energy_kwh"] == pytest.approx(hours * watts / 1e3 * 1.1, rel=1e-9)
    assert e["co2_kg"] == pytest.approx(hours * watts / 1e3 * 1.1 * 475 / 1e3, rel=1e-9)
    # the same step on the per-run path (step.py) gives the same activity
    from roofline.step import step_time

    run = RunConfig(batch=8, seq=1024, dtype="bf16", phase="training")
    s = step_time(get_workload("gpt-2"), run, get_device("h200"))
    assert s.compute_s is not None and s.expected_s is not None
    assert u == pytest.approx(s.compute_s / s.expected_s, rel=1e-6)


def test_whatif_energy_flags_refused_outside_training_in_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "roofline", "whatif", "--model", "gpt-2", "--hw", "a100",
         "--phase", "decode", "--pue", "1.3"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "--pue 1.3" in out.stderr


def test_memory_step_energy_by_hand():
    # one H100, no communication: the step bound is the kernels' bound, u = bound /
    # expected; boards (80.5 + 619.5 u) W x expected s, node 100 W x expected s, x PUE 1.2;
    # CO2 at 300 g/kWh; J a token over 8 x 1024 tokens
    import json

    out = subprocess.run(
        [sys.executable, "-m", "roofline", "memory", "--model", "gpt-2", "--hw", "h100",
         "--batch", "8", "--seq", "1024", "--pue", "1.2", "--node-power", "100",
         "--grid-intensity", "300", "-f", "json"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    dev = json.loads(out.stdout)["devices"][0]
    bound, expected = dev["step_time_s"], dev["expected_step_time_s"]
    u = bound / expected
    joules = ((80.5 + 619.5 * u) * expected + 100 * expected) * 1.2
    e = dev["step_energy"]
    assert e["utilization"] == pytest.approx(u, rel=1e-9)
    assert e["energy_j"] == pytest.approx(joules, rel=1e-9)
    assert e["co2_kg"] == pytest.approx(joules / 3.6e6 * 300 / 1e3, rel=1e-9)
    assert e["joules_per_token"] == pytest.approx(joules / (8 * 1024), rel=1e-9)
    csv = subprocess.run(
        [sys.executable, "-m", "roofline", "memory", "--model", "gpt-2", "--hw", "h100,tpu-v5e",
         "--batch", "8", "--seq", "1024", "-f", "csv"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout  # fmt: skip
    import csv as csv_

    rows = list(csv_.DictReader(csv.splitlines()))
    assert float(rows[0]["step_energy_j"]) > 0 and rows[0]["energy_reason"] == ""
    assert rows[1]["step_energy_j"] == "" and "fp16" in rows[1]["energy_reason"]


def test_bloom_energy_by_the_papers_method():
    # Luccioni et al. 2022: 1,082,990 GPU-hours x 0.4 kW = 433,196 kWh (no PUE); x 57 g/kWh
    # = 24.69 t. The check applies the same method to the predicted GPU-hours.
    assert pytest.approx(433196) == 1082990 * 0.4
    assert pytest.approx(24.69, abs=0.005) == 433196 * 57 / 1e6
    run = next(r for r in list_energy_runs() if r.key == "bloom-176b-luccioni")
    assert run.workload.params == 176_247_271_424 and run.devices == 320
    checks = {c.figure: c for c in check_run(run)}
    hours = checks["gpu_hours"].predicted
    assert hours is not None
    assert checks["energy_kwh"].predicted == pytest.approx(hours * 0.4)
    assert checks["co2_t"].predicted == pytest.approx(hours * 0.4 * 57 / 1e6)
    # GPU-hours = 366e9 / (2048 x 2048) steps x the expected step x 320 GPUs / 3600
    from roofline.step import step_time

    step = step_time(run.workload, run.run, run.device)
    assert step.expected_s is not None
    assert hours == pytest.approx(366e9 / 2048**2 * step.expected_s * 320 / 3600)
