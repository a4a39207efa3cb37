"""`roofline schema`: the JSON Schemas recorded from the loaders agree with the loaders.

Every shipped data file passes its schema, and each way of breaking a file that the loader
refuses (a required field removed, an unknown field, a quantity without its unit, a value
outside an enumeration, a whole number out of range) is refused by the schema too.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from roofline.cli import app
from roofline.errors import SpecError
from roofline.file_schema import KINDS, file_schema
from roofline.hardware import parse_device
from roofline.runs import parse_run
from roofline.workloads import parse_workload

REPO = Path(__file__).resolve().parent.parent
FILES = {
    "device": sorted((REPO / "hardware").glob("*.yaml")),
    "workload": sorted((REPO / "workloads").glob("*.yaml"))
    + sorted((REPO / "workloads/runs/models").glob("*.yaml"))
    + sorted((REPO / "examples/workloads").glob("*.yaml")),
    "run": sorted((REPO / "workloads/runs").glob("*.yaml")),
}
PARSE = {
    "device": lambda d: parse_device(d, "t.yaml", "t"),
    "workload": lambda d: parse_workload(d, "t.yaml", "t"),
    "run": lambda d: parse_run(d, "t.yaml", "t", REPO / "workloads/runs"),
}


def _json(value):
    """YAML's dates as the text they were written as (JSON has no dates)."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def _validator(kind):
    schema = file_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _load(path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind", KINDS)
def test_every_shipped_file_passes_its_schema(kind):
    v = _validator(kind)
    assert len(FILES[kind]) >= {"device": 30, "workload": 45, "run": 35}[kind]
    for path in FILES[kind]:
        errors = [e.message for e in v.iter_errors(_json(_load(path)))]
        assert not errors, (path.name, errors[:3])


def _refused_by_both(kind, data):
    with pytest.raises(SpecError):
        PARSE[kind](copy.deepcopy(data))
    assert not _validator(kind).is_valid(_json(data))


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("device", "hardware/a100.yaml"),
        ("device", "hardware/h100.yaml"),
        ("workload", "workloads/bert-large.yaml"),
        ("workload", "workloads/resnet-50.yaml"),
        ("run", "workloads/runs/megatron-gpt3-175b-1024.yaml"),
    ],
)
def test_each_required_field_removed_is_refused_by_both(kind, path):
    data = _load(REPO / path)
    PARSE[kind](copy.deepcopy(data))  # the file itself loads
    required = file_schema(kind)["required"]
    assert set(required) >= {"name", "source" if kind != "workload" else "sources"}
    for key in required:
        broken = {k: v for k, v in data.items() if k != key}
        _refused_by_both(kind, broken)


def test_breakages_the_loader_refuses_the_schema_refuses():
    a100 = _load(REPO / "hardware/a100.yaml")
    bert = _load(REPO / "workloads/bert-large.yaml")
    run = _load(REPO / "workloads/runs/megatron-gpt3-175b-1024.yaml")
    cases = [
        ("device", a100, lambda d: d.update(nmae="x")),  # unknown field
        ("device", a100, lambda d: d["memory"].update(bandwidth="2039")),  # no unit
        ("device", a100, lambda d: d["memory"].update(bandwidth="2039 GFLOP/s")),  # wrong kind
        ("device", a100, lambda d: d["peak"].update(fp12="1 TFLOP/s")),  # unknown dtype
        ("device", a100, lambda d: d.update(release="2020-13")),  # month 13
        ("device", a100, lambda d: d.update(compute_units=0)),  # below 1
        ("device", a100, lambda d: d["interconnect"].update(counted="sideways")),
        ("workload", bert, lambda d: d.update(family="rnn")),
        ("workload", bert, lambda d: d["architecture"].update(norm="batchnorm9")),
        ("workload", bert, lambda d: d["architecture"].update(heads=0)),
        ("workload", bert, lambda d: d["architecture"].update(hidden="1024")),
        ("workload", bert, lambda d: d["architecture"].update(filters=[[1, 2]])),  # lstm's
        ("workload", bert, lambda d: d.update(errata=[{"metric": "params"}])),  # no reason
        ("run", run, lambda d: d["run"].update(phase="warmup")),
        ("run", run, lambda d: d["measured"].update(metric="speed")),
    ]
    for kind, original, breakage in cases:
        data = copy.deepcopy(original)
        breakage(data)
        _refused_by_both(kind, data)


def test_each_family_has_its_own_architecture_fields():
    families = {
        a["if"]["properties"]["family"]["const"]: a["then"]["properties"]["architecture"]
        for a in file_schema("workload")["allOf"]
    }
    assert set(families) == {"transformer", "cnn", "lstm", "recsys"}
    # written out from the workload files' documentation, not from the loader
    assert {"layers", "hidden", "heads", "ffn", "kv_heads", "experts"} <= set(
        families["transformer"]["properties"]
    )
    assert set(families["cnn"]["properties"]) == {"input", "layers", "defaults"}
    assert set(families["cnn"]["required"]) == {"input", "layers"}
    assert set(families["recsys"]["required"]) == {"rows", "dim", "slots", "mlp", "activation"}
    # a quantity is a number with a unit of its kind
    rate = file_schema("device")["properties"]["peak"]["properties"]["fp16"]
    check = jsonschema.Draft202012Validator(rate)
    assert check.is_valid("312 TFLOP/s") and check.is_valid("1.5e2 TOP/s")
    assert not check.is_valid("312") and not check.is_valid("312 GB/s")


def test_schema_command():
    res = CliRunner().invoke(app, ["schema", "workload"])
    assert res.exit_code == 0
    schema = json.loads(res.stdout)
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["required"] == ["name", "family", "architecture", "sources"]
    bad = CliRunner().invoke(app, ["schema", "devices"])
    assert bad.exit_code == 2 and "device, workload, run" in bad.output.replace("'", "")


def test_models_show_reads_as_a_summary():
    res = CliRunner().invoke(app, ["models", "show", "bert-large"])
    assert res.exit_code == 0
    # BERT-Large by hand: embeddings (30522 + 512 + 2) x 1024 + LayerNorm 2 x 1024; per layer
    # attention 4 x (1024^2 + 1024), FFN 2 x 1024 x 4096 + 4096 + 1024, two LayerNorms 4 x 1024;
    # pooler 1024^2 + 1024
    layer = 4 * (1024**2 + 1024) + 2 * 1024 * 4096 + 4096 + 1024 + 4 * 1024
    params = (30522 + 512 + 2) * 1024 + 2 * 1024 + 24 * layer + 1024**2 + 1024
    assert params == 335_141_888
    assert "335M computed; 330M published (+1.6%)" in res.stdout  # 335.14 / 330 = 1.0156
    assert "layers 24, hidden 1024, heads 16" in res.stdout
    as_json = CliRunner().invoke(app, ["models", "show", "bert-large", "-f", "json"])
    assert json.loads(as_json.stdout)["params"] == params
