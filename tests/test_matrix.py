"""The command matrix: every catalog model (and an imported HF config and ONNX graph) through
every command path, on an old device without fp16, a current GPU and a TPU.

The only allowed outcomes are a success (exit 0; JSON output that strict parsers accept:
no NaN, no Infinity) or a refusal in one line `roofline: error: ...` with exit code 2.
Never a traceback. Run through CliRunner in-process to stay fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roofline.cli import app
from roofline.workloads import get_workload, list_workloads

pytestmark = pytest.mark.slow  # every command on every model: ~100 s

# (device, a datatype it has): GTX 580 (2010, no fp16), H100, TPU v4 (bf16, no fp16)
DEVICES = (("gtx-580", "fp32"), ("h100", "fp16"), ("tpu-v4", "bf16"))
PHASES = ("inference", "prefill", "decode", "training")
MODELS = [w.key for w in list_workloads()]
LAYOUT = ("--dp", "2", "--tp", "2", "--pp", "2", "--zero", "3")
COST = ("--utilization", "0.4", "--price", "2", "-f", "json")


def _strict(text: str) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def _invoke(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args)
    detail = f"{args}: {res.output}"
    if res.exit_code == 0:
        assert res.exception is None, detail
        return 0, res.stdout
    assert res.exit_code == 2, detail
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), detail
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roofline: error: "), detail
    assert "Traceback" not in res.output, detail
    return 2, ""


def _model_matrix(model: str, tmp: Path) -> dict[str, int]:
    """Exit codes of every command path for one model."""
    codes: dict[str, int] = {}

    def check(name: str, args: list[str], json_out: bool = True) -> None:
        code, out = _invoke(args)
        codes[name] = code
        if code == 0 and json_out:
            _strict(out)

    for hw, dtype in DEVICES:
        for phase in PHASES:
            check(
                f"run {phase} {hw}",
                ["run", "-m", model, "--hw", hw, "--dtype", dtype, "--phase", phase, "-f", "json"],
            )
    # how real stacks run: fused epilogues, no first-layer input gradient, plain tensor
    # parallelism (every family takes the options; those without the ops ignore them)
    fused = ("--fuse-epilogues", "-f", "json")
    for phase, extra in (("inference", ()), ("training", ("--first-input-grad",))):
        check(
            f"run fused {phase}",
            ["run", "-m", model, "--hw", "h100", "--phase", phase, *fused, *extra],
        )
    plain_tp = ("--no-sequence-parallel", "--fuse-epilogues", "-f", "json")
    check(
        "memory plain tp",
        ["memory", "-m", model, "--hw", "h100", "--batch", "8", *LAYOUT, *plain_tp],
    )
    check("run table", ["run", "-m", model, "--hw", "h100"], json_out=False)
    check("run csv", ["run", "-m", model, "--hw", "h100", "-f", "csv"], json_out=False)
    hws = ",".join(hw for hw, _ in DEVICES)
    for phase in ("training", "inference", "decode"):
        check(f"memory {phase}", ["memory", "-m", model, "--phase", phase, "-f", "json"])
    check(
        "memory layout",
        ["memory", "-m", model, "--hw", hws, "--batch", "8", *LAYOUT, "-f", "json"],
    )
    check(
        "memory csv",
        ["memory", "-m", model, "--hw", hws, "--batch", "4", "--dp", "2", "-f", "csv"],
        json_out=False,
    )
    # a LoRA (QLoRA: int4 base) fine-tune: transformers give it; the other families refuse
    # --lora-rank by name (no projections adapters are modelled on)
    lora = ("--phase", "training", "--lora-rank", "8", "-f", "json")
    at = ["memory", "-m", model, "--hw", "h100", *LAYOUT, "--batch", "8"]
    check("memory lora", [*at, *lora])
    check("memory lora's full fine-tune", [*at, *lora[:2], *lora[4:]])
    check("run qlora", ["run", "-m", model, "--hw", "h100", "--weights", "int4", *lora])
    check(
        "whatif lora",
        ["whatif", "-m", model, "--hw", "h100", "--batch", "1,4", "--tokens", "1e6", *lora],
    )
    for phase in ("inference", "training", "decode"):
        check(
            f"whatif {phase}",
            ["whatif", "-m", model, "--hw", "h100,a100", "--batch", "1,4", "--phase", phase, *COST],
        )
    check("whatif table", ["whatif", "-m", model, "--hw", "h100"], json_out=False)
    check(
        "memwall",
        ["memwall", "-m", model, "--hw", "gtx-580,v100,h100,tpu-v4", "-f", "json"],
    )
    check(
        "plot",
        ["plot", "-m", model, "--hw", "h100,tpu-v4", "--dtype", "bf16", "-o", str(tmp / "r.png")],
        json_out=False,
    )
    page = tmp / "r.html"
    check(
        "report",
        ["report", "-m", model, "--hw", "h100,tpu-v4", "--dtype", "bf16", "-o", str(page)],
        json_out=False,
    )
    if codes["report"] == 0:  # the page's data: strict JSON too
        html = page.read_text(encoding="utf-8")
        _strict(html.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    check(
        "report decode",
        ["report", "-m", model, "--hw", "a100", "--phase", "decode", "-o", str(page)],
        json_out=False,
    )
    check(
        "serve",
        [
            "serve",
            "-m",
            model,
            "--hw",
            "gtx-580,h100,tpu-v4",
            "--prompt-tokens",
            "64",
            "-f",
            "json",
        ],
    )
    check("models show", ["models", "show", model, "-f", "json"])
    check("models show table", ["models", "show", model], json_out=False)
    return codes


@pytest.mark.parametrize("model", MODELS)
def test_every_command_on_every_model(model, tmp_path):
    codes = _model_matrix(model, tmp_path)
    # the main job works on every model on a current GPU in its default phase
    assert codes["run inference h100"] == 0 or codes["run training h100"] == 0, codes
    assert codes["run table"] == 0 and codes["memory training"] == 0, codes
    assert codes["models show"] == 0 and codes["whatif table"] == 0, codes
    assert codes["models show table"] == 0, codes
    assert codes["report"] == 0, codes  # the HTML report works for every family
    assert codes["run fused inference"] == 0 or codes["run fused training"] == 0, codes
    if get_workload(model).family == "transformer":  # LoRA's adapters sit on its projections
        assert codes["memory lora"] == codes["memory lora's full fine-tune"], codes


def test_every_command_on_imported_models(tmp_path, repo):
    from test_import import _conv_net

    onnx_path = _conv_net(tmp_path)
    config = tmp_path / "tiny-llama" / "config.json"
    config.parent.mkdir()
    config.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 256,
                "intermediate_size": 688,
                "num_attention_heads": 8,
                "num_key_value_heads": 4,
                "num_hidden_layers": 4,
                "vocab_size": 1000,
                "max_position_embeddings": 512,
                "hidden_act": "silu",
                "tie_word_embeddings": False,
            }
        )
    )
    for path in (onnx_path, config):
        codes = _model_matrix(str(path), tmp_path)
        assert codes["run table"] == 0 and codes["report"] == 0, (path, codes)
        assert codes["run fused inference"] == 0, (path, codes)


def test_validate_and_catalog_commands():
    for args in (
        ["validate", "-f", "json"],
        ["hardware", "list", "-f", "json"],
        ["models", "list", "-f", "json"],
    ):
        code, out = _invoke(args)
        assert code == 0
        _strict(out)
    for args in (["validate"], ["hardware", "list", "-f", "csv"], ["models", "list", "-f", "csv"]):
        assert _invoke(args)[0] == 0
    for hw in ("gtx-580", "h100", "tpu-v4"):
        code, out = _invoke(["hardware", "show", hw, "-f", "json"])
        assert code == 0
        _strict(out)
