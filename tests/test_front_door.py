"""The front door (issue 26): every run option declared once (roofline/cli/options.py) and
built into each scenario command from that declaration; a run written down once (--run,
--save-run); one name for one thing (-o is always the file, --dp and --gpus, aliases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from roofline.analysis import analyze
from roofline.cli import app
from roofline.cli.options import ALL, BY_NAME, NUMPY, RUN_OPTIONS, SERVING
from roofline.scenario import Layout, RunConfig

REPO = Path(__file__).resolve().parent.parent
# each scenario command and the run options it takes, with its own defaults
SCENARIO = {
    "run": (ALL, {}),
    "memory": (ALL, {"phase": "training"}),
    "whatif": (ALL, {}),
    "plot": (ALL, {}),
    "report": (ALL, {}),
    "serve": (SERVING, {"attention": "flash"}),
    "check": (NUMPY, {"dtype": "fp32"}),
    "memwall": ({"batch", "seq", "phase"}, {}),
}
OWN = {"model", "run_file", "save_run", "hw", "fmt", "output"}


def _commands() -> dict[str, typer.main.TyperCommand]:
    group = typer.main.get_command(app)
    return group.commands  # type: ignore[attr-defined, no-any-return]


def _invoke(args: list[str]) -> str:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return res.stdout


@pytest.mark.parametrize("command", sorted(SCENARIO))
def test_every_option_comes_from_its_declaration(command):
    takes, defaults = SCENARIO[command]
    params = {p.name: p for p in _commands()[command].params}
    for name in takes:
        o = BY_NAME[name]
        p = params.pop(name)
        assert o.flag in p.opts, (command, name, p.opts)
        if o.kind is bool:
            assert o.negation in p.secondary_opts
        assert p.help.startswith(o.help), (command, name)  # the one help text
        if command == "whatif" and o.axis:
            assert p.default is None  # an axis: the declared default when not given
        else:
            assert p.default == defaults.get(name, o.default), (command, name)
    for name in ALL - set(takes):
        assert name not in params  # an option a command does not take is not there
    assert {"model", "run_file"} <= set(params)


def test_one_flag_one_meaning_across_commands():
    seen: dict[str, str] = {}
    for name, command in _commands().items():
        if name not in SCENARIO:  # measure's --dtype is the datatypes it measures, not a run's
            continue
        for p in command.params:
            for flag in p.opts:
                if flag in ("--output", "-o"):
                    assert p.name == "output", (name, p.name)  # always the file
                if flag.lstrip("-") in (o.flag.lstrip("-") for o in RUN_OPTIONS):
                    text = p.help.split(" Comma-separated")[0].split(" [default here")[0]
                    assert seen.setdefault(flag, text) == text, (name, flag)


def test_no_option_declared_twice_in_the_cli_package():
    source = "".join(
        p.read_text() for p in (REPO / "roofline" / "cli").glob("*.py") if p.name != "catalog.py"
    )  # catalog.py: measure's --dtype, the datatypes it measures (no run)
    for o in RUN_OPTIONS:
        # a run option's flag is written once, in its declaration
        assert source.count(f'"{o.flag}"') == 1, o.flag


RUNS = [
    ["run", "-m", "llama-2-7b", "--hw", "a100", "--batch", "4", "--seq", "1024", "--dtype",
     "bf16", "--phase", "training", "--recompute", "selective", "--first-input-grad"],
    ["memory", "-m", "gpt-3", "--hw", "a100", "--batch", "1536", "--seq", "2048", "--dp",
     "16", "--tp", "8", "--pp", "8", "--virtual-stages", "3", "--micro-batch", "1"],
    ["serve", "-m", "llama-2-70b", "--hw", "h100", "--tp", "4", "--batch", "16",
     "--weights", "int4", "--kv-dtype", "fp8"],
    ["run", "-m", "llama-2-7b", "--hw", "h100", "--phase", "decode", "--batch", "8",
     "--context", "2048", "--kv-dtype", "fp8", "--tp", "2"],
]  # fmt: skip


@pytest.mark.parametrize("args", RUNS, ids=[" ".join(a[:2]) for a in RUNS])
def test_a_saved_run_file_gives_the_same_answer(tmp_path, args):
    path = tmp_path / "run.yaml"
    by_flags = _invoke([*args, "-f", "json", "--save-run", str(path)])
    written = yaml.safe_load(path.read_text())
    assert written["model"] == args[2] and written["device"] == args[4]
    by_file = _invoke([args[0], "--run", str(path), "-f", "json"])
    assert json.loads(by_file) == json.loads(by_flags)


def test_a_run_file_written_by_hand_and_flags_that_override_it(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "model: llama-2-7b\ndevice: a100\nrun:\n  batch: 8\n  seq: 2048\n  phase: training\n"
        "  layout: {data: 2, tensor: 2}\n"
    )
    flags = ["-m", "llama-2-7b", "--hw", "a100", "--batch", "8", "--seq", "2048"]
    layout = ["--phase", "training", "--dp", "2", "--tp", "2"]
    assert json.loads(_invoke(["memory", "--run", str(path), "-f", "json"])) == json.loads(
        _invoke(["memory", *flags, *layout, "-f", "json"])
    )
    over = json.loads(_invoke(["memory", "--run", str(path), "--batch", "16", "-f", "json"]))
    by_hand = json.loads(_invoke(["memory", *flags[:4], "--batch", "16", "--seq", "2048",
                                  *layout, "-f", "json"]))  # fmt: skip
    assert over == by_hand


def test_a_published_run_file_is_a_run_file():
    path = next(
        p
        for p in sorted((REPO / "workloads" / "runs").glob("megatron*.yaml"))
        if "cluster:" not in p.read_text() and "layout:" in p.read_text()
    )
    data = yaml.safe_load(path.read_text())
    run, lay = data["run"], data["run"].get("layout", {})
    model = data["model"]
    model = str(path.parent / model) if model.endswith(".yaml") else model
    flags = ["-m", model, "--hw", data["device"], "--batch", str(run["batch"])]
    flags += ["--seq", str(run["seq"])] if "seq" in run else []
    flags += ["--phase", run.get("phase", "training"), "--dtype", run.get("dtype", "fp16")]
    for key, flag in (("data", "--dp"), ("tensor", "--tp"), ("pipeline", "--pp")):
        flags += [flag, str(lay.get(key, 1))]
    for key in ("micro_batch", "virtual_stages", "recompute", "attention"):
        if key in run:
            flags += [BY_NAME[key].flag, str(run[key])]
    if run.get("sequence_parallel") is False:
        flags.append("--no-sequence-parallel")
    if "dp_overlap" in run:
        flags += ["--dp-overlap", str(run["dp_overlap"])]
    got = json.loads(_invoke(["memory", "--run", str(path), "-f", "json"]))
    assert got == json.loads(_invoke(["memory", *flags, "-f", "json"]))


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        (["--dtype", "float16"], ["--dtype", "fp16"]),
        (["--dtype", "BFloat16"], ["--dtype", "bf16"]),
        (["--phase", "train"], ["--phase", "training"]),
    ],
)
def test_common_aliases_are_accepted(alias, canonical):
    base = ["run", "-m", "bert-large", "--hw", "a100", "-f", "json"]
    assert json.loads(_invoke([*base, *alias])) == json.loads(_invoke([*base, *canonical]))


def test_gpus_is_the_layout_total():
    base = ["memory", "-m", "gpt-3", "--hw", "a100", "--batch", "1536", "-f", "json"]
    by_gpus = _invoke([*base, "--gpus", "1024", "--tp", "8", "--pp", "8"])
    by_dp = _invoke([*base, "--dp", "16", "--tp", "8", "--pp", "8"])  # 1024 / (8 x 8)
    assert json.loads(by_gpus) == json.loads(by_dp)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["memory", "-m", "gpt-3", "--gpus", "100", "--tp", "8"], "--gpus 100: must be a multiple"),
        (["memory", "-m", "gpt-3", "--gpus", "64", "--dp", "8"], "--gpus and --dp"),
        (["whatif", "-m", "bert-large", "--hw", "a100", "--devices", "8"], "--devices 8: now --dp"),
        (["serve", "-m", "llama-2-7b", "--hw", "a100", "--output", "256"], "--output-tokens"),
        (["serve", "-m", "llama-2-7b", "--hw", "a100", "--prompt", "100"], "--prompt-tokens"),
        (["run", "--hw", "a100"], "--model: give --model (or --run FILE)"),
        (["run", "-m", "bert-large"], "--hw: give --hw (or a run file with `device:`)"),
        (["run", "-m", "bert-large", "--hw", "a100", "--dtype", "fp4"], "--dtype fp4: unknown"),
    ],
)
def test_front_door_refusals(args, message):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()
    assert message in line, line


def test_run_with_a_layout_is_one_devices_share():
    # by hand: tensor parallelism splits every row's FLOPs and bytes over the ranks; a
    # pipeline stage holds 1/pp of the model; data parallelism leaves each device its
    # local batch (8 / 2 = 4 samples)
    whole = analyze("llama-2-7b", "a100", RunConfig(batch=4, seq=1024))
    split = analyze("llama-2-7b", "a100", RunConfig(batch=8, seq=1024, layout=Layout(2, 2, 2)))
    assert split.flops.sum() == pytest.approx(whole.flops.sum() / 4, rel=1e-12)
    assert split.bytes.sum() == pytest.approx(whole.bytes.sum() / 4, rel=1e-12)
    assert split.total_time_s < whole.total_time_s / 3
