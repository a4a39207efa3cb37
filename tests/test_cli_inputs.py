"""Hostile command lines, output paths and environments: each ends in a result or in one
line `roofline: error: ...` with exit code 2, and special files are never replaced."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from roofline.cli import app

RUN = ["run", "-m", "bert-large", "--hw", "a100", "-f", "json"]


def _refused(args: list[str], message: str) -> None:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roofline: error: "), res.stderr
    assert message in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "-m", "bert-large", "--hw", "a100", "--batch", "abc"], "'--batch'"),
        (["run", "-m", "bert-large", "--hw", "a100", "--bogus"], "--bogus"),
        (["run", "-m", "bert-large"], "--hw"),
        (["memwall", "--figure", "nope"], "'--figure'"),
        (["memory", "-m", "bert-large", "--recompute", "half"], "--recompute half: allowed"),
        (["run", "-m", "bert-large", "--hw", ""], "--hw '': empty"),
        (["run", "-m", " ", "--hw", "a100"], "--model ' ': empty"),
        (["run", "-m", "bert-large", "--hw", "a100", "--batch", str(10**12)], "--batch 1000"),
        (["memory", "-m", "gpt-3", "--batch", str(10**300)], "--batch"),
        (["memory", "-m", "gpt-3", "--tp", "5"], "--tp 5: gpt-3 has 96 heads"),
        (["memory", "-m", "gpt-3", "--pp", "5"], "--pp 5: gpt-3 has 96 blocks"),
        (["memory", "-m", "gpt-3", "--dp", "3", "--batch", "8"], "--dp 3: the batch of 8"),
        (["memory", "-m", "gpt-3", "--zero", "4"], "--zero 4: allowed"),
        (["memory", "-m", "resnet-50", "--tp", "2"], "--tp 2: tensor parallelism is not"),
        (["whatif", "-m", "bert-large", "--hw", "a100", "--flops-scale", "inf"], "--flops-scale"),
        (["whatif", "-m", "bert-large", "--hw", "a100", "--bw-scale", "1e-320"], "--bw-scale"),
        (["whatif", "-m", "bert-large", "--hw", "a100", "--capacity-scale", "nan"], "capacity"),
        (["whatif", "-m", "gpt-3", "--hw", "a100", "--utilization", "2"], "--utilization 2"),
        (
            ["whatif", "-m", "gpt-3", "--hw", "a100", "--utilization", "0.4", "--price", "inf"],
            "--price inf",
        ),
        (["plot", "-m", "bert-large", "--hw", "a100", "-o", "x.png", "--top", "-1"], "--top"),
        (["run", "-m", "bert-large", "--hw", "a100", "--dtype", "fp4"], "--dtype fp4: unknown"),
    ],
)
def test_bad_command_lines_are_one_line(args, message):
    _refused(args, message)


def test_fp4_is_not_suggested_as_fp64():
    res = CliRunner().invoke(app, ["run", "-m", "bert-large", "--hw", "a100", "--dtype", "fp4"])
    assert "fp64?" not in res.stderr and "allowed: fp64, fp32" in res.stderr


def test_a_folder_is_not_a_model_file(tmp_path):
    folder = tmp_path / "models.yaml"
    folder.mkdir()
    _refused(["run", "-m", str(folder), "--hw", "a100"], "is a folder")
    _refused([*RUN, "-o", str(tmp_path)], "is a folder")


def test_output_into_a_place_that_cannot_be_written():
    _refused([*RUN, "-o", "/proc/roofline-out.json"], "--output /proc/roofline-out.json")
    _refused([*RUN, "-o", "/no/such/dir/x.json"], "does not exist")


def test_output_to_dev_null_keeps_the_device():
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    res = CliRunner().invoke(app, [*RUN, "-o", "/dev/null"])
    assert res.exit_code == 0, res.output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_output_into_a_fifo_is_written_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    res = CliRunner().invoke(app, [*RUN, "-o", str(fifo)])
    reader.join(timeout=10)
    assert res.exit_code == 0, res.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a FIFO
    assert json.loads(got[0])["model"] == "bert-large"


def test_output_dash_is_stdout():
    res = CliRunner().invoke(app, [*RUN, "-o", "-"])
    assert res.exit_code == 0 and json.loads(res.stdout)["model"] == "bert-large"


def _main(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roofline", *args],
        capture_output=True,
        text=True,
        env=os.environ | env,
        timeout=120,
        cwd=Path(__file__).parent,
    )


def test_ascii_only_terminal():
    res = _main(["run", "-m", "bert-large", "--hw", "a100"], PYTHONIOENCODING="ascii")
    assert res.returncode == 0, res.stderr
    assert "expected time" in res.stdout


def test_bad_numba_environment_is_one_line():
    # a sweep large enough to run compiled (a small one runs as plain Python, numba unused)
    batches = ",".join(str(b) for b in range(1, 65))
    args = ["whatif", "-m", "bert-large", "--hw", "a100,h100,mi300x", "--batch", batches]
    res = _main([*args, "--seq", "128,256,384,512"], NUMBA_NUM_THREADS="0")
    assert res.returncode == 2, res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert "NUMBA_NUM_THREADS" in line


def test_version_and_module_entry():
    res = _main(["--version"])
    assert res.returncode == 0 and res.stdout.startswith("roofline ")


NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["0", "-1", "1e9", "1e400", "inf", "-inf", "nan", "1e-320", "0x10", "", " "]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(max_examples=60, deadline=None)
@given(
    option=st.sampled_from(["--batch", "--seq", "--context", "--top"]),
    value=NUMBERS,
    command=st.sampled_from(["run", "plot"]),
)
def test_random_numbers_on_the_command_line(tmp_path_factory, option, value, command):
    args = [command, "-m", "llama-2-7b", "--hw", "h100", "--phase", "decode", option, value]
    if command == "plot":
        args += ["-o", str(tmp_path_factory.mktemp("p") / "r.png")]
    elif option == "--top":
        return
    _outcome(args)


@settings(max_examples=40, deadline=None)
@given(
    option=st.sampled_from(
        ["--batch", "--dp", "--tp", "--pp", "--zero", "--flops-scale", "--utilization", "--price"]
    ),
    value=NUMBERS,
)
def test_random_numbers_in_memory_and_whatif(option, value):
    if option in ("--flops-scale", "--utilization", "--price"):
        args = ["whatif", "-m", "gpt-2", "--hw", "h100", "--utilization", "0.5", option, value]
    else:
        args = ["memory", "-m", "gpt-2", "--hw", "h100", "--batch", "8", option, value]
    _outcome(args)


def _outcome(args: list[str]) -> None:
    """Exit 0 with strict JSON-able output, or one `roofline: error:` line with exit 2."""
    res = CliRunner().invoke(app, args)
    if res.exit_code == 0:
        assert res.exception is None
        return
    assert res.exit_code == 2, (args, res.output)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roofline: error: "), (args, res.stderr)
