"""The command line: output formats against independent figures, and one-line errors."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roofline.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_console_script_help():
    exe = shutil.which("roofline") or str(Path(sys.executable).with_name("roofline"))
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    for command in ("run", "hardware", "models"):
        assert command in proc.stdout


def test_run_table_shows_layers_and_summary():
    res = invoke("run", "--model", "bert-large", "--hw", "a100")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "BERT Large on NVIDIA A100 SXM4 80GB: inference, batch 1, seq 512, fp16" in out
    for name in ("block.attn.qkv_proj", "block.attn.softmax", "block.ffn_down", "pooler"):
        assert name in out
    # ridge point of the A100 80GB at fp16: 312e12 / 2039e9 = 153.0 FLOP/B (datasheet numbers)
    assert "ridge point of a100 at fp16: 153.0 FLOP/B" in out
    assert "parameters      335M" in out
    assert "total compute   336 GFLOP" in out
    assert "memory-bound" in out and "top layers" in out


def _json_run(*extra: str) -> dict:
    res = invoke("run", "--model", "bert-large", "--hw", "a100", "--format", "json", *extra)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_run_json_schema_and_values():
    data = _json_run()
    assert data["model"] == "bert-large" and data["device"] == "a100"
    assert data["scenario"] == {
        "batch": 1,
        "seq": 512,
        "dtype": "fp16",
        "weights": "fp16",
        "kv_dtype": "fp16",
        "phase": "inference",
        "ideal": False,
        # how it runs: the defaults (the first release's work)
        "attention": "eager",
        "logits": "all",
        "fused_epilogues": False,
        "layout": {"data": 1, "tensor": 1, "pipeline": 1, "zero": 0},  # one device
    }
    s = data["summary"]
    assert {"params", "flops", "bytes", "intensity", "time_s", "memory_bound_time_share"} <= set(s)
    assert s["params"] == 335_141_888  # hand count, see test_transformer
    assert s["flops"] == pytest.approx(340e9, rel=0.05)  # dataset: 340 GFLOPs
    assert s["ridge_point"] == pytest.approx(312e12 / 2039e9)
    assert s["intensity"] == pytest.approx(s["flops"] / s["bytes"])
    layers = data["layers"]
    assert {
        "name",
        "kind",
        "count",
        "flops",
        "bytes",
        "intensity",
        "attainable_flops",
        "time_s",
        "bound",
    } <= set(layers[0])
    assert sum(x["flops"] for x in layers) == pytest.approx(s["flops"])
    assert sum(x["time_s"] for x in layers) == pytest.approx(s["time_s"])
    mem = sum(x["time_s"] for x in layers if x["bound"] == "memory")
    assert mem / s["time_s"] == pytest.approx(s["memory_bound_time_share"])
    ffn_up = next(x for x in layers if x["name"] == "block.ffn_up")
    # 24 layers x (2 x 512 x 1024 x 4096 + 512 x 4096 bias) FLOPs, all repeats included
    assert ffn_up["count"] == 24
    assert ffn_up["flops"] == 24 * (2 * 512 * 1024 * 4096 + 512 * 4096)
    assert ffn_up["bound"] == "compute"
    assert ffn_up["time_s"] == pytest.approx(ffn_up["flops"] / 312e12)
    softmax = next(x for x in layers if x["name"] == "block.attn.softmax")
    # 24 x 16 heads x 512 x 512 fp16 scores read and written: memory-bound at 2039 GB/s
    assert softmax["bytes"] == 24 * 2 * (16 * 512 * 512) * 2
    assert softmax["time_s"] == pytest.approx(softmax["bytes"] / 2039e9)
    assert softmax["bound"] == "memory"


def test_run_scenario_options():
    data = _json_run("--batch", "8", "--seq", "128", "--dtype", "bf16", "--phase", "training")
    assert data["scenario"] == {
        "batch": 8,
        "seq": 128,
        "dtype": "bf16",
        "phase": "training",
        "ideal": False,
        # weights and KV cache are stored at the compute datatype unless told otherwise
        "weights": "bf16",
        "kv_dtype": "bf16",
        "attention": "eager",
        "logits": "all",
        "fused_epilogues": False,
        "layout": {"data": 1, "tensor": 1, "pipeline": 1, "zero": 0},
        "first_input_grad": False,
    }
    ffn_up = next(x for x in data["layers"] if x["name"] == "block.ffn_up")
    # training = forward + backward = 3x the forward GEMM, + Adam's update of the layer's
    # 24 x (1024 x 4096 + 4096) parameters at 12 FLOPs each
    params = 24 * (1024 * 4096 + 4096)
    assert ffn_up["flops"] == 3 * 24 * (2 * 8 * 128 * 1024 * 4096 + 8 * 128 * 4096) + 12 * params


def test_run_csv():
    res = invoke("run", "--model", "bert-large", "--hw", "h100", "--format", "csv")
    assert res.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows[0]["name"] == "embeddings"
    assert {r["bound"] for r in rows} == {"memory", "compute"}
    qkv = next(r for r in rows if r["name"] == "block.attn.qkv_proj")
    assert float(qkv["flops"]) == 24 * (2 * 512 * 1024 * 3072 + 512 * 3072)


def test_run_output_file(tmp_path):
    target = tmp_path / "bert.json"
    res = invoke("run", "-m", "bert-large", "--hw", "a100", "-f", "json", "-o", str(target))
    assert res.exit_code == 0 and res.stdout == ""
    assert json.loads(target.read_text())["model"] == "bert-large"
    assert [p.name for p in tmp_path.iterdir()] == ["bert.json"]  # no temp file left behind


def test_run_with_own_device_file(tmp_path, repo):
    chip = tmp_path / "mychip.yaml"
    text = (repo / "hardware" / "a100.yaml").read_text()
    chip.write_text(text.replace("  bandwidth: 2039 GB/s", "  bandwidth: 4078 GB/s"))
    data = json.loads(invoke("run", "-m", "bert-large", "--hw", str(chip), "-f", "json").stdout)
    assert data["summary"]["ridge_point"] == pytest.approx(312e12 / 4078e9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "bert-larg", "--hw", "a100"], "unknown model 'bert-larg'; did you mean bert-large"),
        (["-m", "bert-large", "--hw", "a1000"], "unknown device 'a1000'; did you mean a100"),
        (["-m", "bert-large", "--hw", "a100", "--batch", "0"], "--batch 0: must be"),
        (["-m", "bert-large", "--hw", "a100", "--batch", "-2"], "--batch -2: must be"),
        (["-m", "bert-large", "--hw", "a100", "--seq", "0"], "--seq 0: must be"),
        (["-m", "bert-large", "--hw", "a100", "--seq", "1024"], "takes at most 512 tokens"),
        (["-m", "bert-large", "--hw", "v100", "--dtype", "fp8"], "has no fp8 peak"),
        (["-m", "bert-large", "--hw", "tpu-v4", "--dtype", "fp16"], "has no fp16 peak"),
        (["-m", "bert-large", "--hw", "a100", "--dtype", "fp9"], "unknown datatype"),
        (
            ["-m", "bert-large", "--hw", "a100", "--phase", "x"],
            "allowed: inference, prefill, decode, training",
        ),
        (["-m", "bert-large", "--hw", "nowhere/chip.yaml"], "--hw nowhere/chip.yaml: no such"),
        (["-m", "bert-large", "--hw", "a100", "-o", "/no/such/dir/x.txt"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    res = invoke("run", *args)
    assert res.exit_code == 2
    assert res.stdout == ""
    err = res.stderr.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_malformed_device_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nname: y\n")
    res = invoke("run", "-m", "bert-large", "--hw", str(bad))
    assert res.exit_code == 2
    assert res.stderr.strip().startswith(f"roofline: error: {bad}: ")
    assert "duplicate key 'name'" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_hardware_list_and_show():
    res = invoke("hardware", "list")
    assert res.exit_code == 0
    for key in ("a100", "h100", "tpu-v4", "mi300x", "gaudi3", "gtx-580"):
        assert key in res.stdout
    rows = json.loads(invoke("hardware", "list", "-f", "json").stdout)
    assert len(rows) >= 32
    a100 = next(r for r in rows if r["key"] == "a100")
    assert a100["peak_flops_per_s"]["fp16"] == 312e12
    assert a100["memory_bandwidth_bytes_per_s"] == 2039e9
    csv_rows = list(csv.DictReader(io.StringIO(invoke("hardware", "list", "-f", "csv").stdout)))
    assert (
        float(next(r for r in csv_rows if r["key"] == "h100")["peak_fp16_flops_per_s"]) == 989.4e12
    )
    show = invoke("hardware", "show", "h100")
    assert show.exit_code == 0
    assert "989.40 TFLOP/s" in show.stdout and "3,350.0 GB/s" in show.stdout
    assert "ridge    295.3 FLOP/B" in show.stdout  # 989.4e12 / 3350e9
    bad = invoke("hardware", "show", "h1000")
    assert bad.exit_code == 2 and "did you mean" in bad.stderr


def test_models_list_and_show():
    res = invoke("models", "list")
    assert res.exit_code == 0 and "bert-large" in res.stdout and "335M" in res.stdout
    data = json.loads(invoke("models", "show", "bert-large", "-f", "json").stdout)
    assert data["architecture"]["layers"] == 24
    assert data["published"]["inference_flops"] == 340e9
    assert data["params"] == 335_141_888
    bad = invoke("models", "show", "bert-lage")
    assert bad.exit_code == 2 and "did you mean bert-large" in bad.stderr


def test_attention_dtype_option_and_run_file(tmp_path):
    """An fp8 prefill on an H100 prints attention's own datatype and rate (the bf16
    FlashAttention-2 kernel's 299 TFLOP/s, hardware/h100.yaml) beside the fp8 GEMM ceiling
    (1402.6 TFLOP/s); --attention-dtype fp8 states an FP8 kernel (none measured: the GEMM
    ceiling); a device without the datatype is refused in one line naming the flag."""
    base = ["run", "-m", "llama-2-7b", "--hw", "h100", "--phase", "prefill", "--seq", "4096"]
    base += ["--attention", "flash", "--dtype", "fp8"]
    res = invoke(*base)
    assert res.exit_code == 0, res.output
    assert "1.4 PFLOP/s GEMM, attention in bf16 299 TFLOP/s," in res.stdout
    data = json.loads(invoke(*base, "-f", "json").stdout)
    assert data["summary"]["ceilings"]["attention_dtype"] == "bf16"
    assert data["summary"]["ceilings"]["attention_flops_per_s"] == 299e12
    fp8 = json.loads(invoke(*base, "--attention-dtype", "e4m3", "-f", "json").stdout)
    assert fp8["summary"]["ceilings"]["attention_dtype"] is None  # the GEMMs' own: fp8
    assert fp8["summary"]["expected_time_s"] < data["summary"]["expected_time_s"]
    bad = invoke("run", "-m", "llama-2-7b", "--hw", "a100", "--attention-dtype", "fp8")
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines() == [
        "roofline: error: --attention-dtype fp8: NVIDIA A100 SXM4 80GB (a100) has no fp8 "
        "peak; it supports fp64, fp32, tf32, fp16, bf16, int8"
    ]
    # a run file carries it (--save-run writes it, --run reads it back)
    saved = tmp_path / "run.yaml"
    assert invoke(*base, "--attention-dtype", "fp8", "--save-run", str(saved)).exit_code == 0
    assert "attention_dtype: fp8" in saved.read_text()
    again = json.loads(invoke("run", "--run", str(saved), "-f", "json").stdout)
    assert again["summary"]["expected_time_s"] == fp8["summary"]["expected_time_s"]


def test_a_saved_run_at_batch_1_reads_back(tmp_path):
    """--save-run writes the batch even at its default of 1: the reader requires it (a
    file saved without it was refused by --run: `run.batch: missing`)."""
    saved = tmp_path / "run.yaml"
    args = ["run", "-m", "bert-large", "--hw", "a100", "-f", "json"]
    first = invoke(*args, "--save-run", str(saved))
    assert first.exit_code == 0, first.output
    assert "batch: 1" in saved.read_text()
    again = invoke("run", "--run", str(saved), "-f", "json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["summary"] == json.loads(first.stdout)["summary"]
