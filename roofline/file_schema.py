"""JSON Schemas of the data files, recorded from the loaders themselves (`_schema.record`).

`file_schema("device" | "workload" | "run")` runs the loader in recording mode: each field it
reads becomes a property with its type, unit pattern, range, enumeration and whether it is
required. The workload schema is recorded once per family and joins the families'
`architecture:` mappings with if/then on `family`. A field the loader reads only on some
branch (e.g. `seq` becomes required when `tokens` is given) is recorded as optional; the
loader's own message stays the final word on such rules.
"""

from __future__ import annotations

from typing import Any

from ._schema import record
from .hardware import parse_device
from .runs import parse_run
from .workloads import FAMILIES, parse_workload

KINDS = ("device", "workload", "run")
_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_TITLES = {
    "device": "roofline device file (hardware/*.yaml)",
    "workload": "roofline workload file (workloads/*.yaml)",
    "run": "roofline measured-run file (workloads/runs/*.yaml)",
}


def file_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one kind of data file."""
    if kind == "device":
        body = record(lambda data: parse_device(data, "schema", "schema"))
    elif kind == "run":
        body = record(lambda data: parse_run(data, "schema", "schema"))
    elif kind == "workload":
        body = _workload()
    else:
        raise ValueError(f"unknown schema {kind!r}; one of {', '.join(KINDS)}")
    return {"$schema": _DRAFT, "title": _TITLES[kind], **body}


def _workload() -> dict[str, Any]:
    per_family = {
        family: record(
            lambda data: parse_workload(data, "schema", "schema"), choose={"family": family}
        )
        for family in FAMILIES
    }
    architectures = {f: schema["properties"]["architecture"] for f, schema in per_family.items()}
    body = per_family[next(iter(FAMILIES))]
    body["properties"]["architecture"] = {
        "type": "object",
        "description": "the layers of the model; its fields depend on `family`",
    }
    body["allOf"] = [
        {
            "if": {"properties": {"family": {"const": family}}, "required": ["family"]},
            "then": {"properties": {"architecture": architecture}},
        }
        for family, architecture in architectures.items()
    ]
    return body
