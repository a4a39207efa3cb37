"""Hostile and broken data files: each is refused with one SpecError naming the file and the
field, quickly and without expanding anything; fuzzed files only load or are refused."""

from __future__ import annotations

import math
import random
import re
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roofline.errors import RooflineError, SpecError
from roofline.hardware import load_device_file
from roofline.workloads import load_workload_file

REPO = Path(__file__).resolve().parent.parent
DEVICE_FILES = sorted((REPO / "hardware").glob("*.yaml"))
MODEL_FILES = sorted((REPO / "workloads").glob("*.yaml"))


def _bomb(levels: int = 20) -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 4, "not a UTF-8 text file"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not a UTF-8 text file"),
        (b"", "the file is empty"),
        (b"# nothing but\n# comments\n", "the file is empty"),
        (b"- a\n- b\n", "top level must be a mapping, got list"),
        (b"[" * 100_000, "nested more than 64 levels deep"),
        (b"a: " + b"{b: " * 200 + b"1" + b"}" * 200 + b"\n", "nested more than 64 levels"),
        (_bomb().encode(), "expands to more than 1,000,000 values"),
        (b"? [a]\n: b\n", "a key must be a plain value"),
        (b'name: "a\x00b"\n', "malformed YAML"),
        (b"name: x\nname: y\n", "duplicate key 'name'"),
    ],
)
@pytest.mark.parametrize("loader", [load_device_file, load_workload_file])
def test_broken_files_are_refused_quickly(tmp_path, content, message, loader):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    start = time.perf_counter()
    with pytest.raises(SpecError, match=message) as info:
        loader(path)
    assert time.perf_counter() - start < 1.0
    assert "bad.yaml" in str(info.value) and "\n" not in str(info.value)


def test_a_folder_is_not_a_file(tmp_path):
    folder = tmp_path / "x.yaml"
    folder.mkdir()
    with pytest.raises(SpecError, match="is a folder"):
        load_device_file(folder)


A100 = (REPO / "hardware" / "a100.yaml").read_text()
BERT = (REPO / "workloads" / "bert-large.yaml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("312 TFLOP/s", "1e400 TFLOP/s", "peak.fp16: must be from 1 to 1e+21 FLOP/s"),
        ("312 TFLOP/s", "1e-320 TFLOP/s", "peak.fp16: must be from 1"),
        ("312 TFLOP/s", "1e309 TFLOP/s", "peak.fp16"),
        ("2039 GB/s", "1e30 GB/s", "memory.bandwidth: must be from 1 to 1e+16 B/s"),
        ("80 GiB", ".nan", "memory.capacity: expected a number with a unit"),
        ("400 W", "1e400 W", "tdp"),
    ],
)
def test_device_numbers_out_of_range(tmp_path, old, new, message):
    path = tmp_path / "a100.yaml"
    path.write_text(A100.replace(old, new, 1))
    with pytest.raises(SpecError, match=re.escape(message)):
        load_device_file(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("layers: 24", "layers: 100000000000000000000", "architecture.layers: must be from 1"),
        ("hidden: 1024", "hidden: .inf", "architecture.hidden: expected a whole number"),
        ("hidden: 1024", "hidden: 1e20", "architecture.hidden"),
        ("heads: 16", "heads: -3", "architecture.heads"),
    ],
)
def test_workload_numbers_out_of_range(tmp_path, old, new, message):
    assert old in BERT
    path = tmp_path / "bert.yaml"
    path.write_text(BERT.replace(old, new, 1))
    with pytest.raises(SpecError, match=message):
        load_workload_file(path)


def _mutations(draw_random: random.Random, data: object, n: int) -> object:
    """`data` with n random leaves replaced, deleted or given a sibling."""
    weird = [
        0,
        -1,
        10**30,
        1e400,
        math.nan,
        1e-320,
        "",
        "x" * 500,
        None,
        [],
        {},
        [1, [2, [3]]],
        {"k": {"k": 1}},
        True,
        "1e999 TFLOP/s",
        "-5 GB",
    ]
    for _ in range(n):
        node, key = data, None
        path = []
        while isinstance(node, (dict, list)) and node:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            key = draw_random.choice(keys)
            path.append((node, key))
            if draw_random.random() < 0.35:
                break
            node = node[key]
        if not path:
            return data
        parent, key = path[-1]
        action = draw_random.random()
        if action < 0.7:
            parent[key] = draw_random.choice(weird)
        elif action < 0.85 and isinstance(parent, dict):
            del parent[key]
        elif isinstance(parent, dict):
            parent[f"extra{draw_random.randint(0, 9)}"] = draw_random.choice(weird)
    return data


def _only_results_or_refusals(loader, path: Path) -> None:
    try:
        loader(path)
    except RooflineError as exc:
        text = str(exc)
        assert path.name in text and "\n" not in text, text
        assert len(text) < 5000


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4), which=st.integers(0, 10**6))
def test_fuzzed_device_and_model_files(tmp_path, seed, n, which):
    rng = random.Random(seed)
    for files, loader in ((DEVICE_FILES, load_device_file), (MODEL_FILES, load_workload_file)):
        source = files[which % len(files)]
        data = _mutations(rng, yaml.safe_load(source.read_text()), n)
        path = tmp_path / f"fuzz-{source.name}"
        try:
            text = yaml.safe_dump(data, allow_unicode=True)
        except (ValueError, OverflowError):
            continue
        path.write_text(text)
        _only_results_or_refusals(loader, path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=400))
def test_random_bytes(tmp_path, content):
    for loader in (load_device_file, load_workload_file):
        path = tmp_path / "random.yaml"
        path.write_bytes(content)
        _only_results_or_refusals(loader, path)
