"""Outputs that cannot hurt (issue 25): spreadsheet-safe CSV cells, `-o` that keeps a file's
mode and owner and follows links, temp files removed on SIGINT/SIGTERM/SIGHUP, a FIFO with
no reader announced, closed/full/broken stdout as one line, tables that fold on a narrow
terminal, and the messages that name the flag or the file's own field. Signals, streams and
terminals are real: subprocesses, /dev/full, a pseudo-terminal."""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from roofline.cli import app
from roofline.errors import SpecError
from roofline.report import csv_cell, fit, to_csv
from roofline.runs import parse_run
from roofline.workloads import load_workload_file

REPO = Path(__file__).resolve().parent.parent
RUN = ["run", "-m", "bert-large", "--hw", "a100"]
# what a spreadsheet reads as a formula (OWASP "CSV Injection"), written here on its own
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
PAYLOADS = ["=1+1", "+cmd", "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1"]


def _main(
    args: list[str], timeout: float = 120, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    options: dict[str, object] = {"capture_output": True} | kwargs
    if "stdout" in kwargs or "stderr" in kwargs:
        options.pop("capture_output")
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "roofline", *args], text=True, timeout=timeout, **options
    )


def _formulas(text: str) -> list[str]:
    """Cells of a CSV that a spreadsheet would evaluate: text starting with a dangerous
    character (a number such as -2.5 is a number, not a formula)."""
    bad = []
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if cell.startswith(DANGEROUS):
                try:
                    float(cell)
                except ValueError:
                    bad.append(cell)
    return bad


# ---------------------------------------------------------------- spreadsheet cells
@pytest.mark.parametrize("payload", PAYLOADS)
def test_csv_cell_neutralises_each_leading_character(payload):
    # OWASP: a leading apostrophe; a carriage return as a line feed (quoted by the writer)
    assert csv_cell(payload) == "'" + payload.replace("\r", "\n")
    text = to_csv([{"name": payload, "value": -2.5}])
    assert not _formulas(text)
    assert list(csv.reader(io.StringIO(text)))[1] == [csv_cell(payload), "-2.5"]  # one row


def test_csv_cell_leaves_plain_text_alone():
    for text in ("a100", "block.ffn_up", "1 x 1 x 2 = 2, ZeRO-0", "'quoted", ""):
        assert csv_cell(text) == text


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory):
    """A device file and a model file named by each payload (file names are names)."""
    folder = tmp_path_factory.mktemp("hostile")
    files = []
    for i, payload in enumerate(PAYLOADS):
        device = folder / f"{payload}.yaml"
        shutil.copy(REPO / "hardware" / "a100.yaml", device)
        sub = folder / f"m{i}"
        sub.mkdir()
        model = sub / f"{payload}x.yaml"
        shutil.copy(REPO / "workloads" / "llama-2-7b.yaml", model)
        files.append((str(device), str(model)))
    return files


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["memory", "--phase", "inference"],
        ["serve"],
        ["serve", "--rate", "1"],
        ["whatif", "--batch", "1,2"],
    ],
    ids=["run", "memory", "serve", "serve-rate", "whatif-streamed"],
)
def test_no_csv_cell_is_a_formula(hostile_files, command):
    for device, model in hostile_files:
        args = [command[0], "-m", model, "--hw", device, *command[1:], "-f", "csv"]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        assert not _formulas(res.stdout), (args, _formulas(res.stdout))
        name = Path(device).stem.lower()
        if command[0] != "run":  # the device's name is there, neutralised
            assert "'" + name.replace("\r", "\n") in res.stdout.replace('"', "")


def test_json_keeps_the_exact_name(hostile_files):
    device, model = hostile_files[0]
    res = CliRunner().invoke(app, ["serve", "-m", model, "--hw", device, "-f", "json"])
    assert json.loads(res.stdout)["device"] == "=1+1"


def test_onnx_node_named_like_a_formula(tmp_path):
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    payload = '=HYPERLINK("http://example.invalid","click")'
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.zeros((8, 4), np.float32), "w")
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name=payload)
    graph = helper.make_graph([node], "g", [x], [y], [w])
    path = tmp_path / "formula.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    res = CliRunner().invoke(app, ["run", "-m", str(path), "--hw", "a100", "-f", "csv"])
    assert res.exit_code == 0, res.output
    assert not _formulas(res.stdout)
    assert next(csv.DictReader(io.StringIO(res.stdout)))["name"] == "'" + payload
    res = CliRunner().invoke(app, ["run", "-m", str(path), "--hw", "a100", "-f", "json"])
    assert json.loads(res.stdout)["layers"][0]["name"] == payload


# ---------------------------------------------------------------- -o: mode, owner, links
def test_a_private_file_stays_private(tmp_path):
    out = tmp_path / "private.json"
    out.write_text("old")
    out.chmod(0o600)
    res = CliRunner().invoke(app, [*RUN, "-f", "json", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["model"] == "bert-large"


def test_a_new_file_gets_the_umask_mode(tmp_path):
    out = tmp_path / "new.json"
    old = os.umask(0o027)
    try:
        res = CliRunner().invoke(app, [*RUN, "-f", "json", "-o", str(out)])
    finally:
        os.umask(old)
    assert res.exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # 0666 & ~0027


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may give a file to another user")
def test_owner_and_group_are_kept(tmp_path):
    out = tmp_path / "theirs.json"
    out.write_text("old")
    os.chown(out, 12345, 23456)
    res = CliRunner().invoke(app, [*RUN, "-f", "json", "-o", str(out)])
    assert res.exit_code == 0
    assert (out.stat().st_uid, out.stat().st_gid) == (12345, 23456)


def test_a_symbolic_link_is_followed(tmp_path):
    target = tmp_path / "real" / "data.json"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(Path("real") / "data.json")  # a relative link
    res = CliRunner().invoke(app, [*RUN, "-f", "json", "-o", str(link)])
    assert res.exit_code == 0, res.output
    assert link.is_symlink()  # still a link
    assert json.loads(target.read_text())["model"] == "bert-large"  # its target replaced
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert not list(tmp_path.glob(".*"))
    assert not list(target.parent.glob(".*"))


def test_a_dangling_link_creates_its_target(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "later.json")
    res = CliRunner().invoke(app, [*RUN, "-f", "json", "-o", str(link)])
    assert res.exit_code == 0, res.output
    assert link.is_symlink() and (tmp_path / "later.json").is_file()


def test_a_link_loop_is_one_line(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.symlink_to(b)
    b.symlink_to(a)
    res = CliRunner().invoke(app, [*RUN, "-o", str(a)])
    assert res.exit_code == 2
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("roofline: error: --output ")
    assert line.endswith(": is a symbolic link that loops")


# ---------------------------------------------------------------- signals
BIG_SWEEP = [
    "whatif",
    "-m",
    "bert-large",
    "--hw",
    "all",
    "--batch",
    ",".join(map(str, range(1, 20001))),
    "--seq",
    ",".join(map(str, range(8, 520, 8))),
    "-f",
    "csv",
]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
@pytest.mark.slow  # a real subprocess
def test_a_signal_leaves_no_temp_file_and_says_so(tmp_path, sig):
    out = tmp_path / "big.csv"
    out.write_text("old\n")
    out.chmod(0o600)
    proc = subprocess.Popen(
        [sys.executable, "-m", "roofline", *BIG_SWEEP, "-o", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    start = time.monotonic()
    while not glob.glob(str(tmp_path / ".big.csv.*")) and time.monotonic() - start < 120:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    assert glob.glob(str(tmp_path / ".big.csv.*")), "the writer never started"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig  # 130, 143, 129
    assert err.strip().splitlines()[-1] == f"roofline: interrupted by {sig.name}"
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]  # no temp file left
    assert out.read_text() == "old\n" and stat.S_IMODE(out.stat().st_mode) == 0o600


# ---------------------------------------------------------------- a FIFO nobody reads
@pytest.mark.slow  # a real subprocess
def test_a_fifo_without_reader_is_announced_then_written(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "roofline", *RUN, "-f", "json", "-o", str(fifo)],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stderr.readline()), daemon=True)
    reader.start()
    reader.join(timeout=120)
    assert lines and "named pipe with no reader; waiting for one" in lines[0], lines
    assert proc.poll() is None  # waits for a reader, says so, does not give up
    data = fifo.read_bytes()  # the reader arrives
    assert proc.wait(timeout=60) == 0
    assert json.loads(data)["model"] == "bert-large"
    assert stat.S_ISFIFO(fifo.stat().st_mode)


# ---------------------------------------------------------------- closed, full, broken streams
STREAM_COMMANDS = [
    RUN,
    ["whatif", "-m", "bert-large", "--hw", "a100", "--batch", "1,2"],
    ["whatif", "-m", "bert-large", "--hw", "a100", "--batch", "1,2", "-f", "csv"],
    ["schema", "device"],
]


@pytest.mark.parametrize("args", STREAM_COMMANDS, ids=["run", "whatif", "whatif-csv", "schema"])
@pytest.mark.slow  # a real subprocess
def test_stdout_on_a_full_device_is_one_line(args):
    with open("/dev/full", "w") as full:
        res = _main(args, stdout=full, stderr=subprocess.PIPE)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "roofline: error: cannot write to standard output: No space left on device"
    ]


@pytest.mark.parametrize("args", STREAM_COMMANDS, ids=["run", "whatif", "whatif-csv", "schema"])
@pytest.mark.slow  # a real subprocess
def test_stdout_closed_is_one_line(args):
    res = _main(args, stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "roofline: error: cannot write to standard output: standard output is closed"
    ]


@pytest.mark.slow  # a real subprocess
def test_stdout_closed_is_fine_with_an_output_file(tmp_path):
    out = tmp_path / "r.json"
    res = _main([*RUN, "-f", "json", "-o", str(out)], preexec_fn=lambda: os.close(1))
    assert res.returncode == 0 and json.loads(out.read_text())["model"] == "bert-large"


@pytest.mark.slow  # a real subprocess
def test_stderr_closed_or_full_never_tracebacks():
    with open("/dev/full", "w") as full:
        closed = _main(["run", "-m", "nope", "--hw", "a100"], preexec_fn=lambda: os.close(2))
        filled = _main(["run", "-m", "nope", "--hw", "a100"], stdout=full, stderr=full)
        both = _main(RUN, stdout=full, stderr=full)
    assert closed.returncode == filled.returncode == both.returncode == 2
    assert "Traceback" not in closed.stdout


@pytest.mark.slow  # a real subprocess
def test_a_broken_pipe_ends_quietly():
    read, write = os.pipe()
    os.close(read)  # nobody will read
    try:
        res = _main(STREAM_COMMANDS[2], stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert res.returncode == 1
    assert res.stderr == ""


# ---------------------------------------------------------------- narrow terminals
def _cells(table: Table) -> list[str]:
    return [" ".join(str(c).split()) for col in table.columns for c in col._cells]


def test_fit_shows_every_cell_of_a_table_too_wide():
    table = Table(title="t")
    for header in ("device", "TTFT", "cost / M tokens"):
        table.add_column(header)
    table.add_row("a100", "51.3 ms", "11.28 USD")
    table.add_row("h100", "14.5 ms", "14.27 USD")
    console = Console(file=io.StringIO(), width=20, color_system=None)
    console.print(fit(console, table))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert all(len(line) <= 20 for line in text.splitlines())
    for cell in _cells(table):
        assert cell in text
    wide = Console(file=io.StringIO(), width=200)
    assert fit(wide, table) is table  # a table that fits is left as it is


def _in_a_terminal(args: list[str], columns: int) -> str:
    import fcntl
    import pty
    import struct
    import termios

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roofline", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env | {"NO_COLOR": "1", "TERM": "xterm"},
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(main)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "-m", "llama-2-7b", "--hw", "a100,h100"],
        ["whatif", "-m", "llama-2-7b", "--hw", "a100", "--batch", "1,2"],
        RUN,
    ],
    ids=["serve", "whatif", "run"],
)
@pytest.mark.slow  # a real subprocess
def test_a_narrow_terminal_drops_no_figure(args):
    wide = _main(args)  # a pipe: every table at its natural width
    assert wide.returncode == 0
    cells = {
        c.strip()
        for line in wide.stdout.splitlines()
        if line.startswith("│")
        for c in line.strip("│").split("│")
        if c.strip()
    }
    narrow = _in_a_terminal(args, 20)
    flat = " ".join(narrow.split())
    missing = [c for c in cells if " ".join(c.split()) not in flat]
    assert not missing, missing
    assert "…" not in narrow


# ---------------------------------------------------------------- messages
def _refused(args: list[str], message: str) -> None:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roofline: error: "), res.stderr
    assert message in lines[0], lines[0]


SERVE = ["serve", "-m", "llama-2-7b", "--hw", "a100"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*SERVE, "--rate", "0"], "--rate 0.0: must be from 1e-06 to 100000"),
        ([*SERVE, "--rate", "1", "--ttft", "0"], "--ttft 0.0: must be from 1e-06"),
        ([*SERVE, "--rate", "1", "--tpot", "-1"], "--tpot -1.0: must be from 1e-06"),
        ([*SERVE, "--ttft", "1"], "--ttft 1: a target of the planner; give --rate too"),
        ([*SERVE, "--tpot", "0.02"], "--tpot 0.02: a target of the planner; give --rate too"),
        ([*SERVE, "--ttft-percentile", "0.99"], "--ttft-percentile 0.99: a target of the"),
        (
            ["memory", "-m", "llama-2-7b", "--hw", "a100", "--kv-dtype", "fp8"],
            "--kv-dtype fp8: a training step keeps no KV cache",
        ),
    ],
)
def test_messages_name_the_flag(args, message):
    _refused(args, message)


def test_measure_refuses_a_folder_before_measuring(tmp_path):
    start = time.monotonic()
    _refused(["measure", "-o", str(tmp_path)], ": is a folder; give a file name")
    assert time.monotonic() - start < 10  # not after a minute of measuring


@pytest.mark.slow  # a real subprocess
def test_an_unusable_mplconfigdir_is_one_line(tmp_path):
    out = tmp_path / "r.png"
    res = subprocess.run(
        [sys.executable, "-m", "roofline", "plot", *RUN[1:], "-o", str(out)],
        capture_output=True,
        text=True,
        env=os.environ | {"MPLCONFIGDIR": "/dev/null/x"},
        timeout=120,
    )
    assert res.returncode == 0 and out.stat().st_size > 0
    assert res.stderr.strip().splitlines() == [
        "roofline: MPLCONFIGDIR /dev/null/x is not a writable folder; using a temporary one",
        f"wrote {out}",
    ]


def test_an_hf_config_with_a_duplicate_key_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "llama", "hidden_size": 512, "hidden_size": 8192}')
    with pytest.raises(SpecError, match="duplicate key 'hidden_size'"):
        load_workload_file(path)


def test_hf_errors_name_the_config_fields(tmp_path):
    config = {
        "model_type": "llama",
        "num_hidden_layers": 2,
        "hidden_size": 512,
        "num_attention_heads": 8,
        "num_key_value_heads": 3,
        "intermediate_size": 1024,
        "vocab_size": 1000,
        "max_position_embeddings": 512,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(SpecError) as info:
        load_workload_file(path)
    text = str(info.value)
    assert "num_attention_heads (8) must be a multiple of num_key_value_heads (3)" in text
    assert "kv_heads" not in text.replace("num_key_value_heads", "")
    assert "architecture." not in text


def test_a_run_file_whose_kind_contradicts_its_phase(tmp_path):
    import yaml

    shipped = REPO / "workloads" / "runs"
    source = next(p for p in sorted(shipped.glob("*.yaml")) if "phase: decode" in p.read_text())
    data = yaml.safe_load(source.read_text())
    assert data["kind"] == "serving"
    data["kind"] = "training"
    with pytest.raises(SpecError, match=r"kind: training does not match run\.phase decode"):
        parse_run(data, "bad.yaml", "bad", shipped)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["memory", "-m", "llama-2-7b", "--phase", "inference", "--recompute", "full"],
            "--recompute full: applies to phase training only",
        ),
        (
            ["memory", "-m", "llama-2-7b", "--phase", "decode", "--dp-overlap", "0.5"],
            "--dp-overlap 0.5: applies to phase training only",
        ),
        (
            ["run", "-m", "bert-large", "--hw", "a100", "--first-input-grad"],
            "--first-input-grad: applies to phase training only",
        ),
        (
            ["run", "-m", "bert-large", "--hw", "a100", "--phase", "training", "--logits", "last"],
            "--logits last: applies to phase inference or prefill only (this run is --phase "
            "training)",
        ),
        (
            ["memory", "-m", "llama-2-7b", "--virtual-stages", "2"],
            "--virtual-stages 2: interleaves pipeline stages; give --pp > 1",
        ),
        (
            ["whatif", "-m", "llama-2-7b", "--hw", "a100", "--recompute", "selective"],
            "--recompute selective: applies to phase training only",
        ),
    ],
)
def test_a_flag_that_would_do_nothing_is_refused(args, message):
    _refused(args, message)


# ---------------------------------------------------------------- a red-team pass (issue 25)
def test_a_name_ending_in_a_slash_is_a_folder(tmp_path):
    res = CliRunner().invoke(app, [*RUN, "-o", f"{tmp_path}/newdir/"])
    assert res.exit_code == 2 and "names a folder (it ends in /)" in res.stderr
    assert not (tmp_path / "newdir").exists()


def test_a_long_file_name_is_written(tmp_path):
    out = tmp_path / ("n" * 251 + ".txt")  # 255 bytes: the temp name must be shorter
    res = CliRunner().invoke(app, [*RUN, "-f", "json", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["model"] == "bert-large"


@pytest.mark.slow  # a real subprocess
def test_dev_stdout_appends_to_a_log(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("PRE\n")
    with open(log, "a") as handle:
        res = _main([*RUN, "-f", "csv", "-o", "/dev/stdout"], stdout=handle, stderr=subprocess.PIPE)
    assert res.returncode == 0, res.stderr
    lines = log.read_text().splitlines()
    assert lines[0] == "PRE" and lines[1].startswith("name,kind,count")  # kept, then appended


@pytest.mark.slow  # a real subprocess
def test_a_png_into_a_fifo(tmp_path):
    """PNG and Parquet writers seek: into a FIFO they write a temp file, then copy it."""
    fifo = tmp_path / "chart.png"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "roofline", "plot", *RUN[1:], "-o", str(fifo)],
        stderr=subprocess.PIPE,
    )
    data = fifo.read_bytes()
    assert proc.wait(timeout=120) == 0
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


@pytest.mark.slow  # a real subprocess
def test_a_signal_ends_a_write_blocked_on_a_full_pipe(tmp_path):
    """The main thread is blocked in Arrow's write to a pipe nobody reads: the signal
    thread still ends the command with its line and exit code."""
    read, write = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "roofline", *BIG_SWEEP[:-2], "-f", "csv"],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write)
    time.sleep(8)  # long enough to fill the pipe's buffer
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    os.close(read)
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == "roofline: interrupted by SIGTERM"


@pytest.mark.slow  # a real subprocess
def test_an_ignored_signal_stays_ignored(tmp_path):
    """nohup (SIGHUP ignored when the command starts): SIGHUP does not end it."""
    out = tmp_path / "big.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "roofline", *BIG_SWEEP, "-o", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    start = time.monotonic()
    while not glob.glob(str(tmp_path / ".big.csv.*")) and time.monotonic() - start < 120:
        time.sleep(0.02)
    proc.send_signal(signal.SIGHUP)
    time.sleep(1)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert alive and proc.returncode == 143, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temp left, nothing written


@pytest.mark.slow  # a real subprocess
@pytest.mark.parametrize("args", [["--help"], ["--version"], ["run", "--help"]])
def test_help_and_version_into_closed_or_broken_streams(args):
    closed = _main(args, stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    assert closed.returncode == 2
    assert closed.stderr.strip().splitlines() == [
        "roofline: error: cannot write to standard output: standard output is closed"
    ]
    read, write = os.pipe()
    os.close(read)  # nobody reads, and stderr is closed too: a quiet non-zero exit
    try:
        broken = _main(args, stdout=write, preexec_fn=lambda: os.close(2))
    finally:
        os.close(write)
    assert broken.returncode == 1


@pytest.mark.slow  # a pseudo-terminal
def test_columns_zero_still_prints_every_figure():
    narrow = _in_a_terminal(RUN, 80)
    assert "expected time" in narrow
    env_zero = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "0"
    try:
        zero = _in_a_terminal_with_columns(RUN)
    finally:
        if env_zero is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = env_zero
    assert "expected time" in zero and "block.ffn_up" in zero


def _in_a_terminal_with_columns(args: list[str]) -> str:
    import pty

    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "roofline", *args], stdin=child, stdout=child, stderr=child,
        env=os.environ | {"NO_COLOR": "1", "TERM": "xterm"},
    )  # fmt: skip
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(main)
    return b"".join(chunks).decode("utf-8", "replace")


def test_a_tab_in_a_name_does_not_break_a_table(tmp_path):
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.zeros((8, 4), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="a\tb")], "g",
                              [x], [y], [w])  # fmt: skip
    path = tmp_path / "tab.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    res = CliRunner().invoke(app, ["run", "-m", str(path), "--hw", "a100"])
    assert res.exit_code == 0 and "a b" in res.stdout and "…" not in res.stdout


def test_output_csv_or_json_by_its_suffix(tmp_path):
    out = tmp_path / "r.csv"
    assert CliRunner().invoke(app, [*RUN, "-o", str(out)]).exit_code == 0
    assert out.read_text().startswith("name,kind,count")
    out = tmp_path / "r.json"
    assert CliRunner().invoke(app, [*RUN, "-o", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["model"] == "bert-large"


def test_a_number_too_long_to_read_is_one_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "llama", "hidden_size": ' + "9" * 5000 + "}")
    with pytest.raises(SpecError, match="a number too long to read"):
        load_workload_file(path)
    model = tmp_path / "big.yaml"
    model.write_text((REPO / "workloads" / "gpt-2.yaml").read_text() + "\nx: " + "9" * 5000)
    with pytest.raises(SpecError, match="a number too long to read"):
        load_workload_file(model)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hardware", "show", "a100", "-f", "csv"], "--format csv: device details are"),
        ([*RUN, "-o", "r.parquet"], "Parquet holds the rows of whatif and simulate"),
        ([*SERVE, "--currency", "EUR"], "--currency: names the currency of --price"),
        (["whatif", "-m", "gpt-2", "--hw", "a100", "--tokens", "1e9"], "--tokens 1e+09: time"),
        ([*SERVE, "--rate", "5", "--batch", "8"], "--batch with --rate: the planner chooses"),
        ([*SERVE, "--rate", "1e-300"], "--rate 1e-300: must be from 1e-06"),
        (["memwall", "--batch", "8"], "--batch: sets the workload of --model"),
        (["memwall", "--figure", "compute"], "--figure compute: the chart --output draws"),
        ([*RUN, "--no-sequence-parallel"], "--no-sequence-parallel: applies with --tp > 1"),
        (
            ["serve", "-m", "llama-2-70b", "--hw", "h100", "--prompt-tokens", "5000",
             "--output-tokens", "10"],
            "--prompt-tokens 5000: + 10 output tokens = 5010: llama-2-70b takes at most 4096",
        ),
    ],
)  # fmt: skip
def test_more_flags_that_would_do_nothing_or_mislead(args, message):
    _refused(args, message)


def test_serve_rate_keeps_the_tensor_parallelism_asked():
    res = CliRunner().invoke(app, [*SERVE, "--rate", "5", "--tp", "2", "-f", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["tensor"] == 2
